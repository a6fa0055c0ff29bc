//! Build metadata and the ordered schema migrations.
//!
//! Every `migrations/NNNN_name.sql` file becomes one entry of `MIGRATIONS` (ordered by its
//! number, which must be unique and contiguous from 1), so adding a migration is adding a file.
//! The short git commit is exposed as `GASTOWN_GIT_COMMIT` for the health route.

use std::{env, fs, path::Path, process::Command};

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=.git/HEAD");
    let mut found: Vec<(u32, String, String)> = fs::read_dir("migrations")
        .expect("migrations/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .map(|p| {
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            let (num, name) = stem
                .split_once('_')
                .unwrap_or_else(|| panic!("{stem}: want NNNN_name.sql"));
            let version = num.parse().unwrap_or_else(|_| panic!("{stem}: bad number"));
            let abs = fs::canonicalize(&p).unwrap().to_string_lossy().into_owned();
            (version, name.to_owned(), abs)
        })
        .collect();
    found.sort();
    for (i, (version, name, _)) in found.iter().enumerate() {
        assert_eq!(
            *version as usize,
            i + 1,
            "migration {name}: numbers must run 1, 2, 3, ..."
        );
    }
    let entries: String = found
        .iter()
        .map(|(v, n, p)| {
            format!("    Migration {{ version: {v}, name: {n:?}, sql: include_str!({p:?}) }},\n")
        })
        .collect();
    let out = Path::new(&env::var("OUT_DIR").unwrap()).join("migrations.rs");
    fs::write(
        out,
        format!("pub const MIGRATIONS: &[Migration] = &[\n{entries}];\n"),
    )
    .unwrap();

    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=GASTOWN_GIT_COMMIT={commit}");
}
