//! All-or-nothing commits: a run that writes several files stages each new version in a
//! temporary file next to its target, then writes a journal listing every step (keep a copy of
//! the previous version, move a file to history, rename a staged file into place, remove a
//! file), then performs the steps and deletes the journal.
//!
//! Writing the journal is the commit point. A run killed before it leaves the old files (and
//! temporaries the next run removes); a run killed after it leaves a journal that the next run
//! (holding the lock) replays: every step is idempotent, so replaying a half-done journal
//! completes it. Either way a key that existed before is still in place or kept under the
//! journal's copies (history/ or the backup directory).

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::fsio::{self, fs_err, Access, FsError};

/// One step of a commit. Paths are relative to the journal's root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub(crate) enum Op {
    /// Copy `from` to `to` (mode 0600) unless `to` exists: the previous version of a file about
    /// to be replaced. Every copy comes before every replacement, so when `to` is missing no
    /// replacement has happened yet and `from` is still the previous version.
    Copy { from: String, to: String },
    /// Rename `from` to `to` unless `to` exists (a file moving to history/).
    Move { from: String, to: String },
    /// Rename the staged file `tmp` over `to` when `tmp` still exists.
    Replace { tmp: String, to: String },
    /// Remove `path` when it exists.
    Remove { path: String },
}

impl Op {
    fn order(&self) -> u8 {
        match self {
            Op::Copy { .. } => 0,
            Op::Move { .. } => 1,
            Op::Replace { .. } => 2,
            Op::Remove { .. } => 3,
        }
    }

    fn paths(&self) -> Vec<&str> {
        match self {
            Op::Copy { from, to } | Op::Move { from, to } => vec![from, to],
            Op::Replace { tmp, to } => vec![tmp, to],
            Op::Remove { path } => vec![path],
        }
    }
}

/// The journal of one directory (the set's DIR, or an API-M home).
#[derive(Debug, Clone)]
pub(crate) struct Journal {
    root: PathBuf,
    file: PathBuf,
}

/// A file staged for a commit: its temporary file is removed if the commit does not happen.
#[derive(Debug)]
pub(crate) struct Staged {
    op: Op,
    tmp: PathBuf,
}

impl Staged {
    /// The staged temporary file (to set its owner, say).
    pub(crate) fn tmp(&self) -> &Path {
        &self.tmp
    }
}

impl Journal {
    /// The journal `root/name`.
    pub(crate) fn new(root: &Path, name: &str) -> Journal {
        Journal {
            root: root.to_path_buf(),
            file: root.join(name),
        }
    }

    /// The journal file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.file
    }

    /// Stages `bytes` as the next version of `rel`: refuses a symbolic link on the way, writes
    /// a temporary file next to the target. Safe to call from several threads.
    pub(crate) fn stage(&self, rel: &str, bytes: &[u8], access: Access) -> Result<Staged, FsError> {
        fsio::refuse_links(&self.root, Path::new(rel))?;
        let target = self.root.join(rel);
        let tmp = fsio::write_temporary(&target, bytes, access)?;
        let tmp_rel = tmp
            .strip_prefix(&self.root)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Staged {
            op: Op::Replace {
                tmp: tmp_rel,
                to: rel.to_string(),
            },
            tmp,
        })
    }

    /// Commits `staged` files and `other` steps: writes the journal, performs every step in
    /// order (copies, moves, replacements, removals), deletes the journal. When a step fails the
    /// journal stays, and the next run completes it ([`Journal::recover`]).
    pub(crate) fn commit(&self, staged: Vec<Staged>, other: Vec<Op>) -> Result<(), FsError> {
        let mut ops: Vec<Op> = other;
        ops.extend(staged.into_iter().map(|s| s.op));
        if ops.is_empty() {
            return Ok(());
        }
        ops.sort_by_key(Op::order);
        // Staged files were checked by stage().
        let checked = ops
            .iter()
            .filter(|op| !matches!(op, Op::Replace { .. }))
            .try_for_each(|op| self.check(op));
        let written = checked
            .and_then(|()| self.prepare_dirs(&ops))
            .and_then(|()| {
                let json = serde_json::to_vec_pretty(&ops).unwrap_or_default();
                fsio::write_atomic(&self.file, &json, Access::Secret)
            });
        if let Err(e) = written {
            self.discard(&ops);
            return Err(e);
        }
        self.replay(&ops)
    }

    /// Removes the staged files of a commit that did not happen.
    fn discard(&self, ops: &[Op]) {
        for op in ops {
            if let Op::Replace { tmp, .. } = op {
                let _ = fs::remove_file(self.root.join(tmp));
            }
        }
    }

    /// Removes staged files without committing them (a run that stopped on an error).
    pub(crate) fn abandon(&self, staged: Vec<Staged>) {
        for s in staged {
            let _ = fs::remove_file(&s.tmp);
        }
    }

    /// Completes the commit an interrupted run left, if any. Returns true when there was one.
    /// Call it only while holding the directory's lock.
    pub(crate) fn recover(&self) -> Result<bool, FsError> {
        let bytes = match crate::input::read(&self.file, crate::input::Limit::SetFile) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(fs_err(&self.file, "cannot read the journal")(e)),
        };
        if fs::symlink_metadata(&self.file).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(fsio::link_error(&self.file));
        }
        let ops: Vec<Op> = serde_json::from_slice(&bytes).map_err(|e| FsError {
            path: self.file.clone(),
            action: "is not a journal apim-pki wrote",
            source: std::io::Error::other(format!(
                "{e}; move it away only after checking the directory against a backup"
            )),
        })?;
        ops.iter().try_for_each(|op| self.check(op))?;
        self.prepare_dirs(&ops)?;
        // A copy the kill interrupted left its temporary next to the copy.
        for dir in self.copy_dirs(&ops) {
            fsio::remove_stale_temporaries(&dir, false);
        }
        self.replay(&ops)?;
        Ok(true)
    }

    /// Refuses a step that would leave the root or go through a symbolic link.
    fn check(&self, op: &Op) -> Result<(), FsError> {
        op.paths()
            .into_iter()
            .try_for_each(|p| fsio::refuse_links(&self.root, Path::new(p)))
    }

    /// Creates the directories the steps write into, before the journal: a full disk then stops
    /// the run before the commit point.
    fn prepare_dirs(&self, ops: &[Op]) -> Result<(), FsError> {
        self.copy_dirs(ops)
            .iter()
            .try_for_each(|d| fsio::create_dirs(d))
    }

    /// The directories copies and moves write into.
    fn copy_dirs(&self, ops: &[Op]) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = ops
            .iter()
            .filter_map(|op| match op {
                Op::Copy { to, .. } | Op::Move { to, .. } => {
                    self.root.join(to).parent().map(Path::to_path_buf)
                }
                _ => None,
            })
            .collect();
        dirs.sort();
        dirs.dedup();
        dirs
    }

    fn replay(&self, ops: &[Op]) -> Result<(), FsError> {
        for op in ops {
            self.step(op)?;
        }
        fsio::replacement_point();
        fs::remove_file(&self.file).map_err(fs_err(&self.file, "cannot remove the journal"))
    }

    fn step(&self, op: &Op) -> Result<(), FsError> {
        let path = |rel: &str| self.root.join(rel);
        match op {
            Op::Copy { from, to } => {
                if path(to).exists() {
                    return Ok(());
                }
                // The largest limit of the files a journal copies (keystores, configuration).
                match crate::input::read(path(from), crate::input::Limit::Config) {
                    Ok(bytes) => fsio::write_atomic(&path(to), &bytes, Access::Secret),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(fs_err(&path(from), "cannot read")(e)),
                }
            }
            Op::Move { from, to } => {
                if path(to).exists() || !path(from).exists() {
                    return Ok(());
                }
                fsio::move_file(&path(from), &path(to))
            }
            Op::Replace { tmp, to } => {
                if !path(tmp).exists() {
                    return Ok(());
                }
                if let Some(dir) = path(to).parent() {
                    fsio::create_dirs(dir)?;
                }
                fsio::replace(&path(tmp), &path(to))
            }
            Op::Remove { path: rel } => match fs::remove_file(path(rel)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(fs_err(&path(rel), "cannot remove")(e))
                }
                _ => Ok(()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal(root: &Path) -> Journal {
        Journal::new(root, ".journal")
    }

    #[test]
    fn commit_replaces_keeps_the_previous_version_and_removes_the_journal() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        fs::create_dir_all(root.join("ca")).expect("mkdir");
        fs::write(root.join("ca/ca.key"), b"old").expect("write");
        let j = journal(root);
        let staged = vec![
            j.stage("ca/ca.key", b"new", Access::Secret).expect("stage"),
            j.stage("ca/ca.crt", b"cert", Access::Public)
                .expect("stage"),
        ];
        let copy = Op::Copy {
            from: "ca/ca.key".into(),
            to: "history/1/ca/ca.key".into(),
        };
        j.commit(staged, vec![copy]).expect("commit");
        assert_eq!(fs::read(root.join("ca/ca.key")).expect("read"), b"new");
        assert_eq!(fs::read(root.join("ca/ca.crt")).expect("read"), b"cert");
        assert_eq!(
            fs::read(root.join("history/1/ca/ca.key")).expect("read"),
            b"old"
        );
        assert!(!j.path().exists());
    }

    #[test]
    fn a_half_replayed_journal_is_completed_by_recover() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        fs::write(root.join("a"), b"old-a").expect("write");
        fs::write(root.join("b"), b"old-b").expect("write");
        let j = journal(root);
        let a = j.stage("a", b"new-a", Access::Secret).expect("stage");
        let b = j.stage("b", b"new-b", Access::Secret).expect("stage");
        let mut ops = vec![
            Op::Copy {
                from: "a".into(),
                to: "history/a".into(),
            },
            Op::Copy {
                from: "b".into(),
                to: "history/b".into(),
            },
        ];
        ops.push(a.op.clone());
        ops.push(b.op.clone());
        fs::write(j.path(), serde_json::to_vec(&ops).expect("json")).expect("journal");
        // The run died after the copies and the first replacement.
        fs::create_dir_all(root.join("history")).expect("mkdir");
        fs::write(root.join("history/a"), b"old-a").expect("write");
        fs::write(root.join("history/b"), b"old-b").expect("write");
        fs::rename(a.tmp(), root.join("a")).expect("rename");
        assert!(j.recover().expect("recover"));
        assert_eq!(fs::read(root.join("a")).expect("read"), b"new-a");
        assert_eq!(fs::read(root.join("b")).expect("read"), b"new-b");
        assert_eq!(fs::read(root.join("history/a")).expect("read"), b"old-a");
        assert_eq!(fs::read(root.join("history/b")).expect("read"), b"old-b");
        assert!(!j.path().exists());
        assert!(!j.recover().expect("nothing left"));
    }

    #[test]
    fn a_journal_pointing_outside_is_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("root");
        fs::create_dir_all(&root).expect("mkdir");
        let j = journal(&root);
        let ops = vec![Op::Remove {
            path: "../victim".into(),
        }];
        fs::write(j.path(), serde_json::to_vec(&ops).expect("json")).expect("journal");
        fs::write(tmp.path().join("victim"), b"x").expect("write");
        assert!(j.recover().is_err());
        assert!(tmp.path().join("victim").exists());
    }
}
