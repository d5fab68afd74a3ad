//! DIR as the run found it: the list of its files, read once, and reads that cost no system
//! call for a file that is not there.

use std::collections::HashSet;
use std::path::Path;

use crate::output::layout;

use super::error::GenerateError;

/// DIR, with the list of files it held when the run started: checking a file that is not
/// there costs no system call (on big sets, metadata calls dominate).
#[derive(Clone, Copy)]
pub(super) struct Dir<'a> {
    pub root: &'a Path,
    files: &'a HashSet<String>,
}

impl<'a> Dir<'a> {
    /// Lists every file below `root` (history/ aside), relative, with `/`.
    pub(super) fn index(root: &Path) -> HashSet<String> {
        fn walk(root: &Path, dir: &Path, out: &mut HashSet<String>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                match entry.file_type() {
                    Ok(t) if t.is_dir() && path != root.join(layout::HISTORY) => {
                        walk(root, &path, out)
                    }
                    Ok(t) if t.is_file() => {
                        if let Ok(rel) = path.strip_prefix(root) {
                            out.insert(rel.to_string_lossy().replace('\\', "/"));
                        }
                    }
                    _ => {}
                }
            }
        }
        let mut out = std::collections::HashSet::new();
        walk(root, root, &mut out);
        out
    }

    pub(super) fn new(root: &'a Path, files: &'a HashSet<String>) -> Dir<'a> {
        Dir { root, files }
    }

    /// The full path of `rel`.
    pub(super) fn join(&self, rel: impl AsRef<Path>) -> std::path::PathBuf {
        self.root.join(rel)
    }

    /// The bytes of `rel`, when it existed at the start and still reads.
    pub(super) fn read(&self, rel: &str) -> Option<Vec<u8>> {
        if !self.files.contains(rel) {
            return None;
        }
        crate::input::read(self.root.join(rel), crate::input::Limit::Keystore).ok()
    }

    /// Refuses a set holding a file larger than apim-pki reads: [`Dir::read`] would see it as
    /// missing and replace it. One metadata call per file, none of them per key.
    pub(super) fn check_sizes(&self) -> Result<(), GenerateError> {
        let limit = crate::input::Limit::Keystore;
        for rel in self.files {
            let path = self.root.join(rel);
            if std::fs::symlink_metadata(&path).is_ok_and(|m| m.len() > limit.bytes()) {
                // The reader's own words for the limit (or the limit, for a file that shrank meanwhile).
                let source = crate::input::read(&path, limit).err().unwrap_or_else(|| {
                    std::io::Error::other(format!("larger than {} bytes", limit.bytes()))
                });
                return Err(GenerateError::TooLarge { path, source });
            }
        }
        Ok(())
    }

    /// True when `rel` existed at the start.
    pub(super) fn has(&self, rel: &str) -> bool {
        self.files.contains(rel)
    }
}

impl From<Dir<'_>> for std::path::PathBuf {
    fn from(dir: Dir<'_>) -> std::path::PathBuf {
        dir.root.to_path_buf()
    }
}
