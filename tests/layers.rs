//! The crate's layering, guarded: every module of `src/` sits on a floor, and no production code
//! imports a module on a higher floor (same-floor imports are allowed). The floors are drawn in
//! the README ("Layout"); this test also checks that the drawing lists the same modules.
//!
//! An import is any `crate::<module>` path in code (a `use`, a `crate::{...}` group, a full
//! path), outside comments and outside the file's `#[cfg(test)]` module.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The floors, from the ground up: each module of `src/` (its folder or file name) on exactly one.
const FLOORS: &[&[&str]] = &[
    // What the town is made of and says: plain data and pure functions over it, and how typed
    // values are read from JSON.
    &["vocabulary", "json"],
    // The platform's ports (SQL, clock, ids, HTTP) and plain utilities.
    &["sql", "ports", "log", "jwt", "settings", "concurrency"],
    // SQL per table family; the analytics points.
    &["store", "metrics"],
    // Operations on the town's entities and how each event changes them.
    &["domain"],
    // The pure rules over their snapshot, its loader and the invariants.
    &["reconciler"],
    // The outbound clients: container and PR host.
    &["effects"],
    // The alarm tick: orchestration of everything below.
    &["tick"],
    // The HTTP surface, the Durable Object and the development-only parts.
    &["http", "runtime", "bench", "testing"],
];

/// Crate-root items that are not modules, and the module defining them.
const ROOT_ITEMS: &[(&str, &str)] = &[("params", "sql")];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn floor_of(module: &str) -> Option<usize> {
    FLOORS.iter().position(|f| f.contains(&module))
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module a file of `src/` belongs to (`None` for `lib.rs`).
fn module_of(file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src()).expect("under src");
    let first = rel.components().next()?.as_os_str().to_str()?.to_owned();
    match first.strip_suffix(".rs") {
        Some("lib") => None,
        Some(stem) => Some(stem.to_owned()),
        None => Some(first),
    }
}

/// The production code of a file: without its `#[cfg(test)] mod tests` and its comments.
fn production(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod tests"))
        {
            break;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The crate-root names `code` uses: `crate::name`, and each first name of a `crate::{...}`.
fn imported(code: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut current = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        names.push(first_name(&current));
                        current.clear();
                    }
                    c => current.push(c),
                }
            }
            names.push(first_name(&current));
        } else {
            names.push(first_name(rest));
        }
    }
    names.retain(|n| !n.is_empty() && n != "self");
    names
}

fn first_name(path: &str) -> String {
    path.trim()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

#[test]
fn every_module_of_src_is_on_one_floor() {
    let mut files = Vec::new();
    sources(&src(), &mut files);
    let mut modules: Vec<String> = files.iter().filter_map(|f| module_of(f)).collect();
    modules.sort();
    modules.dedup();
    let unplaced: Vec<&String> = modules.iter().filter(|m| floor_of(m).is_none()).collect();
    assert!(unplaced.is_empty(), "modules on no floor: {unplaced:?}");
    let listed: Vec<&str> = FLOORS.iter().flat_map(|f| f.iter().copied()).collect();
    let gone: Vec<&&str> = listed
        .iter()
        .filter(|m| !modules.iter().any(|n| n == *m))
        .collect();
    assert!(
        gone.is_empty(),
        "floors name modules that do not exist: {gone:?}"
    );
}

#[test]
fn no_module_imports_one_on_a_higher_floor() {
    let mut files = Vec::new();
    sources(&src(), &mut files);
    let mut upward: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in &files {
        let Some(module) = module_of(file) else {
            continue;
        };
        let own = floor_of(&module).expect("placed (checked above)");
        let code = production(&fs::read_to_string(file).expect("readable"));
        for name in imported(&code) {
            let target = ROOT_ITEMS
                .iter()
                .find(|(item, _)| *item == name)
                .map_or(name.as_str(), |(_, m)| m);
            let Some(floor) = floor_of(target) else {
                panic!("{} imports crate::{name}, on no floor", file.display());
            };
            if floor > own {
                upward
                    .entry(file.strip_prefix(src()).unwrap().display().to_string())
                    .or_default()
                    .push(format!("{target} (floor {} > {})", floor + 1, own + 1));
            }
        }
    }
    assert!(upward.is_empty(), "imports that run back up: {upward:#?}");
}

#[test]
fn the_readme_draws_the_same_floors() {
    let readme = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let drawing: Vec<Vec<String>> = readme
        .lines()
        .skip_while(|l| !l.starts_with("<!-- layers -->"))
        .skip(1)
        .take_while(|l| !l.starts_with("<!-- /layers -->"))
        .filter_map(|l| {
            let (floor, rest) = l.trim().split_once(' ')?;
            floor.parse::<usize>().ok()?;
            let modules = rest.split('|').next()?;
            Some(
                modules
                    .split(',')
                    .map(|m| m.trim().trim_end_matches('/').to_owned())
                    .filter(|m| !m.is_empty())
                    .collect(),
            )
        })
        .collect();
    let mut expected: Vec<Vec<String>> = FLOORS
        .iter()
        .map(|f| f.iter().map(|m| (*m).to_owned()).collect())
        .collect();
    expected.reverse();
    assert_eq!(drawing, expected, "README's layers, top floor first");
}

#[test]
fn the_reader_of_imports_sees_groups_paths_and_macros() {
    let code = "use crate::{domain::Ctx, sql::{atomically, Sql}};\nlet p = crate::params![1];\n\
                use crate::vocabulary::model::Bead;";
    assert_eq!(imported(code), ["domain", "sql", "params", "vocabulary"]);
    let with_tests =
        "use crate::store;\n// crate::tick in a comment\n#[cfg(test)]\nmod tests {\n    \
                      use crate::testing::town;\n}\n";
    assert_eq!(imported(&production(with_tests)), ["store"]);
}
