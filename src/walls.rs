//! The walls inside this crate that no compiler keeps, checked on the source text: the topology
//! parser knows no crypto, no writer, no WSO2 file editing; verify re-reads and never issues.
//! (The keystore codecs and the config editors are crates of their own: there the compiler keeps
//! the wall.) Production code only: a file is read up to its `#[cfg(test)] mod` (tests may make
//! keys and certificates freely).

use std::path::{Path, PathBuf};

/// A folder of `src/` and what its production code must not contain, with the reason.
const WALLS: &[(&str, &[&str], &str)] = &[
    (
        "topology",
        &[
            // (crate::keystore is allowed: its KeystoreFormat is the topology's `format`.)
            "crate::pki",
            "crate::reconcile",
            "crate::output",
            "crate::config",
            "crate::verify",
        ],
        "parsing and validating a topology knows no crypto, writes nothing, edits no WSO2 file",
    ),
    (
        "verify",
        &[
            "Key::generate",
            "generate_keys",
            "self_signed(",
            ".issue(",
            "Ca::create",
            "crate::reconcile",
        ],
        "verify re-reads a set and never issues a key or certificate",
    ),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module `name`: `src/name.rs` and everything under `src/name/`.
fn module_files(src: &Path, name: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let file = src.join(format!("{name}.rs"));
    if file.is_file() {
        files.push(file);
    }
    if src.join(name).is_dir() {
        rust_files(&src.join(name), &mut files);
    }
    assert!(!files.is_empty(), "no module {name} in {}", src.display());
    files
}

/// The text before the file's test module.
fn production(text: &str) -> &str {
    text.find("#[cfg(test)]\nmod ")
        .map_or(text, |end| &text[..end])
}

#[test]
fn modules_keep_their_walls() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut breaches = Vec::new();
    for (module, forbidden, why) in WALLS {
        for file in module_files(&src, module) {
            let text = std::fs::read_to_string(&file).expect("read source");
            for (n, line) in production(&text).lines().enumerate() {
                for pattern in forbidden.iter().filter(|p| line.contains(*p)) {
                    let at = file.strip_prefix(&src).unwrap_or(&file).display();
                    breaches.push(format!("src/{at}:{}: `{pattern}` ({why})", n + 1));
                }
            }
        }
    }
    assert!(
        breaches.is_empty(),
        "walls breached:\n{}",
        breaches.join("\n")
    );
}

#[test]
fn the_check_sees_a_breach_and_skips_tests() {
    let text = "use crate::pki::Key;\n#[cfg(test)]\nmod tests {\n    use crate::reconcile;\n}\n";
    assert!(production(text).contains("crate::pki"));
    assert!(!production(text).contains("crate::reconcile"));
}
