//! Files and paths the topic modules share: a path as text, copying a tree, reading a WSO2
//! file in its declared encoding, and whether this is a CI run.

use std::path::Path;

use super::cli::snapshot;

/// `p` as text (the tests make UTF-8 paths only).
pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// True under `CI=true` (`.ci/run`), where whatever the tests need must be present.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Copies the directories and regular files below `from` to `to` (links followed; sockets and
/// the like left out), as an operator unpacks a product or copies a set.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("cannot create {}: {e}", to.display()));
    let entries =
        std::fs::read_dir(from).unwrap_or_else(|e| panic!("cannot read {}: {e}", from.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        let target = to.join(path.file_name().expect("file name"));
        if path.is_dir() {
            copy_tree(&path, &target);
        } else if path.is_file() {
            std::fs::copy(&path, &target)
                .unwrap_or_else(|e| panic!("cannot copy {}: {e}", path.display()));
        }
    }
}

/// Copies every file [`snapshot`] sees below `from` (a set's `.lock` excepted) to `to`.
pub fn copy_files(from: &Path, to: &Path) {
    for (rel, bytes) in snapshot(from) {
        let dest = to.join(&rel);
        std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
        std::fs::write(&dest, bytes).expect("copy");
    }
}

/// Text of a WSO2 file in its declared encoding (ISO-8859-1 or UTF-8).
pub fn decode(bytes: &[u8]) -> String {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).to_ascii_lowercase();
    if head.contains("encoding=\"iso-8859-1\"") {
        bytes.iter().map(|b| char::from(*b)).collect()
    } else {
        String::from_utf8_lossy(bytes).into_owned()
    }
}
