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
    T::deserialize(De {
        value,
        at: &Chain::Root,
        track: &track,
    })
    .map_err(|error| Misfit {
        path: track.0.into_inner().unwrap_or_default(),
        error,
    })
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
    fn at(&self, chain: &Chain<'_>, error: Error) -> Error {
        let path = self.0.take().unwrap_or_else(|| {
            let mut out = String::new();
            chain.write(&mut out);
            out
        });
        self.0.set(Some(path));
        error
    }
}

/// What serde says a JSON value is, for "invalid type" messages.
fn unexpected(value: &Json) -> Unexpected<'_> {
    match value {
        Json::Null => Unexpected::Unit,
        Json::Bool(b) => Unexpected::Bool(*b),
        Json::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Unexpected::Unsigned(u),
            (None, Some(i)) => Unexpected::Signed(i),
            _ => Unexpected::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Unexpected::Str(s),
        Json::Array(_) => Unexpected::Seq,
        Json::Object(_) => Unexpected::Map,
    }
}

fn invalid(value: &Json, expected: &dyn Expected) -> Error {
    Error::invalid_type(unexpected(value), expected)
}

/// One value and where it sits.
struct De<'a> {
    value: Json,
    at: &'a Chain<'a>,
    track: &'a Track,
}

impl<'a> De<'a> {
    fn number<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.value {
            Json::Number(n) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => visitor.visit_u64(u),
                (None, Some(i)) => visitor.visit_i64(i),
                _ => visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN)),
            },
            other => Err(invalid(other, &visitor)),
        }
    }

    fn string<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Json::String(s) => visitor.visit_string(s),
            other => Err(invalid(&other, &visitor)),
        }
    }

    fn seq<'de, V: Visitor<'de>>(
        items: Vec<Json>,
        at: &Chain<'_>,
        track: &Track,
        visitor: V,
    ) -> Result<V::Value, Error> {
        let len = items.len();
        let mut access = Items {
            items: items.into_iter(),
            index: 0,
            at,
            track,
        };
        let out = visitor.visit_seq(&mut access)?;
        match access.items.len() {
            0 => Ok(out),
            _ => Err(Error::invalid_length(len, &"fewer elements in array")),
        }
    }

    fn map<'de, V: Visitor<'de>>(
        entries: Map<String, Json>,
        at: &Chain<'_>,
        track: &Track,
        visitor: V,
    ) -> Result<V::Value, Error> {
        let len = entries.len();
        let mut access = Entries {
            entries: entries.into_iter(),
            pending: None,
            at,
            track,
        };
        let out = visitor.visit_map(&mut access)?;
        match access.entries.len() {
            0 => Ok(out),
            _ => Err(Error::invalid_length(len, &"fewer elements in map")),
        }
    }
}

impl<'de> de::Deserializer<'de> for De<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let (at, track) = (self.at, self.track);
        match self.value {
            Json::Null => visitor.visit_unit(),
            Json::Bool(b) => visitor.visit_bool(b),
            Json::Number(_) => self.number(visitor),
            Json::String(s) => visitor.visit_string(s),
            Json::Array(items) => De::seq(items, at, track, visitor),
            Json::Object(entries) => De::map(entries, at, track, visitor),
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

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let (at, track) = (self.at, self.track);
        self.number(visitor).map_err(|e| track.at(at, e))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let (at, track) = (self.at, self.track);
        self.string(visitor).map_err(|e| track.at(at, e))
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
        match self.value {
            Json::Array(items) => De::seq(items, at, track, visitor),
            other => Err(invalid(&other, &visitor)),
        }
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
        match self.value {
            Json::Object(entries) => De::map(entries, at, track, visitor),
            other => Err(invalid(&other, &visitor)),
        }
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

    /// A unit variant is its name (`"merged"`); any other variant an object of one key.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let (at, track) = (self.at, self.track);
        let (variant, value) = match self.value {
            Json::String(name) => (name, None),
            Json::Object(entries) if entries.len() == 1 => {
                let (name, value) = entries.into_iter().next().expect("one entry");
                (name, Some(value))
            }
            Json::Object(_) => {
                let e = Error::invalid_value(Unexpected::Map, &"map with a single key");
                return Err(track.at(at, e));
            }
            other => return Err(track.at(at, invalid(&other, &"string or map"))),
        };
        visitor
            .visit_enum(Variant {
                name: variant,
                value,
                at,
                track,
            })
            .map_err(|e| track.at(at, e))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        drop(self.value);
        visitor.visit_unit()
    }

    forward_to_deserialize_any! { bytes byte_buf }

    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_u64(visitor)
    }
    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_u64(visitor)
    }
    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_u64(visitor)
    }
    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_u64(visitor)
    }
    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_u64(visitor)
    }
    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_u64(visitor)
    }
    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_u64(visitor)
    }
    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_u64(visitor)
    }
    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_u64(visitor)
    }
    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_u64(visitor)
    }
    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_u64(visitor)
    }
    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_string(visitor)
    }
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_string(visitor)
    }
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_string(visitor)
    }
}

/// An array's elements, each at its index.
struct Items<'a> {
    items: std::vec::IntoIter<Json>,
    index: usize,
    at: &'a Chain<'a>,
    track: &'a Track,
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
    /// The key just read and the value that goes with it.
    pending: Option<(String, Json)>,
    at: &'a Chain<'a>,
    track: &'a Track,
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
        let read = seed.deserialize(Key(&key)).map_err(|e| {
            let at = Chain::Key {
                parent: self.at,
                key: &key,
            };
            self.track.at(&at, e)
        })?;
        self.pending = Some((key, value));
        Ok(Some(read))
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
            Json::Array(items) => De::seq(items, de.at, de.track, visitor),
            other => Err(invalid(&other, &"tuple variant")),
        })
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.content("struct variant", |de| match de.value {
            Json::Object(entries) => De::map(entries, de.at, de.track, visitor),
            other => Err(invalid(&other, &"struct variant")),
        })
    }
}
