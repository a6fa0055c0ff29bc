//! Typed values from JSON: one deserializer, over `serde_json::Value`, for every type the town
//! reads, and the path of the field that did not fit.
//!
//! Every text the town reads becomes a `Value` first (`serde_json::from_slice`: one copy of the
//! parser), and every typed value is read from that `Value` by [`read`]. Each deserializer a type
//! meets is another copy of its code in the Wasm, so there is one, kept thin: the visitor methods
//! it calls are only those the value's JSON kind needs, and a struct is read from an object only
//! (serde_json's own `Value` deserializer also fills a struct from an array of its fields in
//! order, a form no client sends, at the price of a second copy of every struct's visitor).
//!
//! Otherwise it answers as `serde_json::from_value` wrapped in `serde_path_to_error` does, which
//! the tests check it against: the same values, the same `serde_json::Error` messages, and the
//! path of the innermost field an error came out of (`a.b[2].c`).

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, Error as _, Expected, IntoDeserializer,
    MapAccess, SeqAccess, Unexpected, VariantAccess, Visitor,
};
use serde::forward_to_deserialize_any;
use serde_json::{Error, Map, Value as Json};
use std::cell::Cell;
use std::fmt;

/// A value that did not fit its type: where, and serde's words for why.
#[derive(Debug)]
pub struct Misfit {
    /// The field's path, `a.b[2].c`; empty when the value as a whole did not fit.
    pub path: String,
    pub error: Error,
}

impl fmt::Display for Misfit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.error)
        } else {
            write!(f, "{}: {}", self.path, self.error)
        }
    }
}

impl std::error::Error for Misfit {}

/// Reads a `T` from `value`, or says which field did not fit and why.
pub fn read<T: DeserializeOwned>(value: Json) -> Result<T, Misfit> {
    let track = Track::default();
    let read = T::deserialize(De {
        value,
        at: &Chain::Root,
        track: &track,
    });
    read.map_err(|error| track.misfit(error))
}

/// Parses `text` and reads a `T` from it. A text that is not JSON is a misfit of the whole
/// (empty path), in serde_json's words.
pub fn from_slice<T: DeserializeOwned>(text: &[u8]) -> Result<T, Misfit> {
    let value = serde_json::from_slice(text).map_err(|error| Misfit {
        path: String::new(),
        error,
    })?;
    read(value)
}

/// Where a value sits: the keys and indexes from the root, borrowed down the call stack, so a
/// path is only written out when something fails.
enum Chain<'a> {
    Root,
    Key { parent: &'a Chain<'a>, key: &'a str },
    Index { parent: &'a Chain<'a>, index: usize },
}

impl Chain<'_> {
    fn write(&self, out: &mut String) {
        match self {
            Chain::Root => {}
            Chain::Key { parent, key } => {
                parent.write(out);
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Chain::Index { parent, index } => {
                parent.write(out);
                out.push_str(&format!("[{index}]"));
            }
        }
    }
}

/// The path of the first (innermost) failure: errors travel outwards, so the first place that
/// sees one is the deepest.
#[derive(Default)]
struct Track(Cell<Option<String>>);

impl Track {
    // Not inlined: the generic code that fails only calls these.
    #[inline(never)]
    fn at(&self, chain: &Chain<'_>, error: Error) -> Error {
        let path = self.0.take().unwrap_or_else(|| {
            let mut out = String::new();
            chain.write(&mut out);
            out
        });
        self.0.set(Some(path));
        error
    }

    #[inline(never)]
    fn misfit(self, error: Error) -> Misfit {
        Misfit {
            path: self.0.into_inner().unwrap_or_default(),
            error,
        }
    }
}

/// What serde says a JSON value is, for "invalid type" messages.
fn unexpected(value: &Json) -> Unexpected<'_> {
    match value {
        Json::Null => Unexpected::Unit,
        Json::Bool(b) => Unexpected::Bool(*b),
        Json::Number(n) => match number(n) {
            Number::Unsigned(u) => Unexpected::Unsigned(u),
            Number::Signed(i) => Unexpected::Signed(i),
            Number::Float(f) => Unexpected::Float(f),
        },
        Json::String(s) => Unexpected::Str(s),
        Json::Array(_) => Unexpected::Seq,
        Json::Object(_) => Unexpected::Map,
    }
}

#[inline(never)]
fn invalid(value: &Json, expected: &dyn Expected) -> Error {
    Error::invalid_type(unexpected(value), expected)
}

/// A JSON number as serde_json hands it to a visitor.
enum Number {
    Unsigned(u64),
    Signed(i64),
    Float(f64),
}

fn number(n: &serde_json::Number) -> Number {
    match (n.as_u64(), n.as_i64(), n.as_f64()) {
        (Some(u), _, _) => Number::Unsigned(u),
        (None, Some(i), _) => Number::Signed(i),
        (None, None, f) => Number::Float(f.unwrap_or(f64::NAN)),
    }
}

fn visit_number<'de, V: Visitor<'de>>(
    n: &serde_json::Number,
    visitor: V,
) -> Result<V::Value, Error> {
    match number(n) {
        Number::Unsigned(u) => visitor.visit_u64(u),
        Number::Signed(i) => visitor.visit_i64(i),
        Number::Float(f) => visitor.visit_f64(f),
    }
}

fn visit_items<'de, V: Visitor<'de>>(mut items: Items<'_>, visitor: V) -> Result<V::Value, Error> {
    let read = visitor.visit_seq(&mut items)?;
    items.end().map(|()| read)
}

fn visit_entries<'de, V: Visitor<'de>>(
    mut entries: Entries<'_>,
    visitor: V,
) -> Result<V::Value, Error> {
    let read = visitor.visit_map(&mut entries)?;
    entries.end().map(|()| read)
}

/// One value and where it sits.
struct De<'a> {
    value: Json,
    at: &'a Chain<'a>,
    track: &'a Track,
}

impl<'a> De<'a> {
    /// The array's elements, or why this value is not an array.
    fn items(self, expected: &dyn Expected) -> Result<Items<'a>, Error> {
        match self.value {
            Json::Array(items) => Ok(Items::new(items, self.at, self.track)),
            other => Err(invalid(&other, expected)),
        }
    }

    /// The enum variant this value names: a unit variant is its name (`"merged"`), any other
    /// an object of one key.
    fn variant(self) -> Result<Variant<'a>, Error> {
        let (name, value) = match self.value {
            Json::String(name) => (name, None),
            Json::Object(entries) if entries.len() == 1 => {
                let (name, value) = entries.into_iter().next().expect("one entry");
                (name, Some(value))
            }
            Json::Object(_) => {
                return Err(Error::invalid_value(
                    Unexpected::Map,
                    &"map with a single key",
                ))
            }
            other => return Err(invalid(&other, &"string or map")),
        };
        Ok(Variant {
            name,
            value,
            at: self.at,
            track: self.track,
        })
    }

    /// The object's entries, or why this value is not an object.
    fn entries(self, expected: &dyn Expected) -> Result<Entries<'a>, Error> {
        match self.value {
            Json::Object(entries) => Ok(Entries::new(entries, self.at, self.track)),
            other => Err(invalid(&other, expected)),
        }
    }
}

/// Deserializer methods that read as another one does.
macro_rules! read_as {
    ($target:ident: $($method:ident)+) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.$target(visitor)
        })+
    };
}

impl<'de> de::Deserializer<'de> for De<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let (at, track) = (self.at, self.track);
        match self.value {
            Json::Null => visitor.visit_unit(),
            Json::Bool(b) => visitor.visit_bool(b),
            Json::Number(n) => visit_number(&n, visitor),
            Json::String(s) => visitor.visit_string(s),
            Json::Array(items) => visit_items(Items::new(items, at, track), visitor),
            Json::Object(entries) => visit_entries(Entries::new(entries, at, track), visitor),
        }
        .map_err(|e| track.at(at, e))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let (at, track) = (self.at, self.track);
        match self.value {
            Json::Bool(b) => visitor.visit_bool(b),
            other => Err(invalid(&other, &visitor)),
        }
        .map_err(|e| track.at(at, e))
    }

    /// Every number type: the visitor gets the number as serde_json holds it (`u64`, `i64` or
    /// `f64`) and converts or refuses it itself.
    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let (at, track) = (self.at, self.track);
        match self.value {
            Json::Number(n) => visit_number(&n, visitor),
            other => Err(invalid(&other, &visitor)),
        }
        .map_err(|e| track.at(at, e))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let (at, track) = (self.at, self.track);
        match self.value {
            Json::String(s) => visitor.visit_string(s),
            other => Err(invalid(&other, &visitor)),
        }
        .map_err(|e| track.at(at, e))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let (at, track) = (self.at, self.track);
        match self.value {
            Json::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
        .map_err(|e| track.at(at, e))
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let (at, track) = (self.at, self.track);
        match self.value {
            Json::Null => visitor.visit_unit(),
            other => Err(invalid(&other, &visitor)),
        }
        .map_err(|e| track.at(at, e))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        let (at, track) = (self.at, self.track);
        visitor
            .visit_newtype_struct(self)
            .map_err(|e| track.at(at, e))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let (at, track) = (self.at, self.track);
        self.items(&visitor)
            .and_then(|items| visit_items(items, visitor))
            .map_err(|e| track.at(at, e))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let (at, track) = (self.at, self.track);
        self.entries(&visitor)
            .and_then(|entries| visit_entries(entries, visitor))
            .map_err(|e| track.at(at, e))
    }

    /// From an object only: see the module's doc.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let (at, track) = (self.at, self.track);
        self.variant()
            .and_then(|variant| visitor.visit_enum(variant))
            .map_err(|e| track.at(at, e))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        drop(self.value);
        visitor.visit_unit()
    }

    forward_to_deserialize_any! { bytes byte_buf }

    read_as!(deserialize_u64: deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u128);
    read_as!(deserialize_u64: deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64);
    read_as!(deserialize_u64: deserialize_i128 deserialize_f32 deserialize_f64);
    read_as!(deserialize_string: deserialize_char deserialize_str deserialize_identifier);
}

/// An array's elements, each at its index.
struct Items<'a> {
    items: std::vec::IntoIter<Json>,
    len: usize,
    index: usize,
    at: &'a Chain<'a>,
    track: &'a Track,
}

impl<'a> Items<'a> {
    fn new(items: Vec<Json>, at: &'a Chain<'a>, track: &'a Track) -> Self {
        Self {
            len: items.len(),
            items: items.into_iter(),
            index: 0,
            at,
            track,
        }
    }

    /// An error when the visitor left elements unread.
    fn end(&self) -> Result<(), Error> {
        match self.items.len() {
            0 => Ok(()),
            _ => Err(Error::invalid_length(self.len, &"fewer elements in array")),
        }
    }
}

impl<'de> SeqAccess<'de> for Items<'_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        let Some(value) = self.items.next() else {
            return Ok(None);
        };
        let at = Chain::Index {
            parent: self.at,
            index: self.index,
        };
        self.index += 1;
        seed.deserialize(De {
            value,
            at: &at,
            track: self.track,
        })
        .map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// An object's entries, each value at its key.
struct Entries<'a> {
    entries: serde_json::map::IntoIter,
    len: usize,
    /// The key just read and the value that goes with it.
    pending: Option<(String, Json)>,
    at: &'a Chain<'a>,
    track: &'a Track,
}

impl<'a> Entries<'a> {
    fn new(entries: Map<String, Json>, at: &'a Chain<'a>, track: &'a Track) -> Self {
        Self {
            len: entries.len(),
            entries: entries.into_iter(),
            pending: None,
            at,
            track,
        }
    }

    /// An error when the visitor left entries unread.
    fn end(&self) -> Result<(), Error> {
        match self.entries.len() {
            0 => Ok(()),
            _ => Err(Error::invalid_length(self.len, &"fewer elements in map")),
        }
    }

    /// `error`, which reading `key` itself gave (an unknown field), placed at that key.
    #[inline(never)]
    fn at_key(&self, key: &str, error: Error) -> Error {
        let at = Chain::Key {
            parent: self.at,
            key,
        };
        self.track.at(&at, error)
    }
}

impl<'de> MapAccess<'de> for Entries<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        match seed.deserialize(Key(&key)) {
            Ok(read) => {
                self.pending = Some((key, value));
                Ok(Some(read))
            }
            Err(e) => Err(self.at_key(&key, e)),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let Some((key, value)) = self.pending.take() else {
            return Err(Error::custom("value is missing"));
        };
        seed.deserialize(De {
            value,
            at: &Chain::Key {
                parent: self.at,
                key: &key,
            },
            track: self.track,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// An object's key: a field's name, or a map's key.
struct Key<'k>(&'k str);

impl<'de> de::Deserializer<'de> for Key<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_str(self.0)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier
        ignored_any
    }
}

/// An enum's variant: its name, and what the object held under it.
struct Variant<'a> {
    name: String,
    value: Option<Json>,
    at: &'a Chain<'a>,
    track: &'a Track,
}

impl<'de, 'a> EnumAccess<'de> for Variant<'a> {
    type Error = Error;
    type Variant = Variant<'a>;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self), Error> {
        let read = seed.deserialize(self.name.as_str().into_deserializer())?;
        Ok((read, self))
    }
}

impl Variant<'_> {
    /// Reads the variant's content with `read`, failing at the variant's own path.
    fn content<R>(
        self,
        expected: &str,
        read: impl FnOnce(De<'_>) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let at = Chain::Key {
            parent: self.at,
            key: &self.name,
        };
        match self.value {
            Some(value) => read(De {
                value,
                at: &at,
                track: self.track,
            }),
            None => Err(Error::invalid_type(Unexpected::UnitVariant, &expected)),
        }
        .map_err(|e| self.track.at(&at, e))
    }
}

impl<'de> VariantAccess<'de> for Variant<'_> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        if self.value.is_none() {
            return Ok(());
        }
        self.content("unit", |de| match de.value {
            Json::Null => Ok(()),
            other => Err(invalid(&other, &"unit")),
        })
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        self.content("newtype variant", |de| seed.deserialize(de))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        self.content("tuple variant", |de| match de.value {
            Json::Array(items) if items.is_empty() => visitor.visit_unit(),
            Json::Array(items) => visit_items(Items::new(items, de.at, de.track), visitor),
            other => Err(invalid(&other, &"tuple variant")),
        })
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.content("struct variant", |de| match de.value {
            Json::Object(entries) => visit_entries(Entries::new(entries, de.at, de.track), visitor),
            other => Err(invalid(&other, &"struct variant")),
        })
    }
}
