//! The commit phase: files are staged to temporary files as they are assembled (so memory holds
//! one node's files, not the set), then one journaled commit puts them in place: previous
//! versions of replaced files and files leaving the set go to history/STAMP/, secrets.toml and
//! the CA first, inventory.json last. A run killed before the journal is written leaves the old
//! files (and temporaries the next run removes); after, the next run completes the journal.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use crate::output::fsio::Access;
use crate::output::inventory::{Artifact, ArtifactKind, Inventory, FORMAT_VERSION};
use crate::output::journal::{Journal, Op, Staged};
use crate::output::layout;
use crate::topology::Topology;

use super::dir::Dir;
use super::error::GenerateError;
use super::model::{Cas, FileOut, Passwords};

/// Stages assembled files for one commit.
pub(super) struct Stager<'a> {
    dir: Dir<'a>,
    journal: &'a Journal,
    stamp: String,
    /// (rank, path, staged file): the commit replaces files in this order.
    staged: Mutex<Vec<(u8, String, Staged)>>,
    /// Copies of the previous versions of replaced files, to history/.
    copies: Mutex<Vec<Op>>,
}

/// The order files take their place: secrets.toml, the CA key, the CA certificate, the rest,
/// inventory.json last.
fn rank(kind: Option<ArtifactKind>) -> u8 {
    match kind {
        Some(ArtifactKind::Secrets) => 0,
        Some(ArtifactKind::CaKey) => 1,
        Some(ArtifactKind::CaCert) => 2,
        Some(_) => 3,
        None => 4,
    }
}

impl<'a> Stager<'a> {
    pub(super) fn new(dir: Dir<'a>, journal: &'a Journal, stamp: String) -> Stager<'a> {
        Stager {
            dir,
            journal,
            stamp,
            staged: Mutex::new(Vec::new()),
            copies: Mutex::new(Vec::new()),
        }
    }

    fn history(&self, rel: &str) -> String {
        format!("{}/{}/{rel}", layout::HISTORY, self.stamp)
    }

    /// Stages `f`'s bytes (when it is to be written) and drops them from memory.
    pub(super) fn stage(&self, f: &mut FileOut) -> Result<(), GenerateError> {
        let Some(bytes) = f.bytes.take() else {
            if f.action != super::types::ActionKind::Keep {
                let what = format!("{} is to be written but has no content", f.path);
                return Err(crate::error::Bug::new(what).into());
            }
            return Ok(());
        };
        self.stage_bytes(&f.path, Some(f.kind), &bytes, f.access)
    }

    /// Stages `bytes` as `rel`; the previous version of a replaced file (inventory.json aside)
    /// is copied to history/.
    fn stage_bytes(
        &self,
        rel: &str,
        kind: Option<ArtifactKind>,
        bytes: &[u8],
        access: Access,
    ) -> Result<(), GenerateError> {
        let replaced = kind.is_some()
            && self.dir.has(rel)
            && crate::input::read(self.dir.join(rel), crate::input::Limit::Keystore)
                .is_ok_and(|previous| previous != bytes);
        let staged = self.journal.stage(rel, bytes, access)?;
        if replaced {
            let copy = Op::Copy {
                from: rel.to_string(),
                to: self.history(rel),
            };
            lock(&self.copies).push(copy);
        }
        lock(&self.staged).push((rank(kind), rel.to_string(), staged));
        Ok(())
    }

    /// Removes every staged file (a run that stopped on an error).
    pub(super) fn abandon(self) {
        let staged = self.staged.into_inner().unwrap_or_else(|e| e.into_inner());
        self.journal
            .abandon(staged.into_iter().map(|(_, _, s)| s).collect());
    }

    /// Commits the staged files, inventory.json (when it changed), and the moves to history/ of
    /// `strays` and `removed` files.
    pub(super) fn commit(
        self,
        inventory: Option<&[u8]>,
        strays: &[String],
        removed: &[&Artifact],
    ) -> Result<(), GenerateError> {
        if let Some(bytes) = inventory {
            if let Err(e) = self.stage_bytes(layout::INVENTORY, None, bytes, Access::Public) {
                self.abandon();
                return Err(e);
            }
        }
        let mut ops: Vec<Op> = strays
            .iter()
            .map(String::as_str)
            .chain(removed.iter().map(|a| a.path.as_str()))
            .map(|rel| Op::Move {
                from: rel.to_string(),
                to: self.history(rel),
            })
            .collect();
        let mut copies = self.copies.into_inner().unwrap_or_else(|e| e.into_inner());
        copies.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        ops.extend(copies);
        let mut staged = self.staged.into_inner().unwrap_or_else(|e| e.into_inner());
        staged.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        Ok(self
            .journal
            .commit(staged.into_iter().map(|(_, _, s)| s).collect(), ops)?)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// inventory.json of the set the files make.
pub(super) fn build_inventory(
    topology: &Topology,
    passwords: &Passwords,
    files: &[FileOut],
    cas: &Cas,
) -> Inventory {
    let pw: BTreeMap<String, _> = passwords
        .roles()
        .into_iter()
        .filter_map(|(role, r)| r.map(|r| (role.to_string(), r.source.clone())))
        .collect();
    let artifacts = files
        .iter()
        .map(|f| Artifact {
            path: f.path.clone(),
            kind: f.kind,
            node: f.node.clone(),
            load_balancer: f.lb.clone(),
            store_type: f.store_type.map(|t| t.java_type().to_string()),
            password: f.password.map(str::to_string),
            entries: f.entries.clone(),
        })
        .collect();
    Inventory {
        format_version: FORMAT_VERSION,
        name: topology.name.clone(),
        product: topology.product,
        ca_stage: cas.stage.as_str().into(),
        ca_generation: cas.generation,
        passwords: pw,
        artifacts,
        topology: serde_json::to_value(topology).unwrap_or(serde_json::Value::Null),
        engine: None,
    }
}

/// Removes the directories `rel` leaves empty below `dir`.
pub(super) fn remove_empty_parents(dir: &Path, rel: &str) {
    let mut path = dir.join(rel);
    while path.pop() && path != dir {
        if std::fs::remove_dir(&path).is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::super::types::ActionKind;
    use super::*;

    fn file(path: &str, kind: ArtifactKind, bytes: Option<&[u8]>) -> FileOut {
        FileOut {
            path: path.into(),
            kind,
            node: None,
            lb: None,
            access: Access::Secret,
            bytes: bytes.map(<[u8]>::to_vec),
            action: if bytes.is_some() {
                ActionKind::Update
            } else {
                ActionKind::Keep
            },
            reason: String::new(),
            store_type: None,
            password: None,
            entries: Vec::new(),
        }
    }

    fn temporaries(dir: &Path) -> usize {
        std::fs::read_dir(dir.join("nodes/a"))
            .map(|r| {
                r.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
                    .count()
            })
            .unwrap_or(0)
    }

    #[test]
    fn staged_files_drop_their_bytes_and_commit_with_history_copies() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        std::fs::create_dir_all(root.join("nodes/a")).expect("mkdir");
        std::fs::write(root.join("nodes/a/node.toml"), b"old").expect("write");
        let index: HashSet<String> = ["nodes/a/node.toml".to_string()].into();
        let journal = Journal::new(root, layout::JOURNAL);
        let stager = Stager::new(Dir::new(root, &index), &journal, "S".into());
        let mut changed = file("nodes/a/node.toml", ArtifactKind::NodeConfig, Some(b"new"));
        let mut kept = file("nodes/a/other", ArtifactKind::NodeConfig, None);
        stager.stage(&mut changed).expect("stage");
        stager.stage(&mut kept).expect("stage");
        assert!(changed.bytes.is_none(), "staged bytes leave memory");
        assert_eq!(temporaries(root), 1);
        assert_eq!(
            std::fs::read(root.join("nodes/a/node.toml")).expect("read"),
            b"old"
        );
        stager.commit(Some(b"{}"), &[], &[]).expect("commit");
        assert_eq!(
            std::fs::read(root.join("nodes/a/node.toml")).expect("read"),
            b"new"
        );
        assert_eq!(
            std::fs::read(root.join("history/S/nodes/a/node.toml")).expect("read"),
            b"old"
        );
        assert_eq!(
            std::fs::read(root.join(layout::INVENTORY)).expect("read"),
            b"{}"
        );
        assert!(!journal.path().exists() && temporaries(root) == 0);
    }

    #[test]
    fn an_abandoned_stage_leaves_the_old_files_and_no_temporary() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        let index = HashSet::new();
        let journal = Journal::new(root, layout::JOURNAL);
        let stager = Stager::new(Dir::new(root, &index), &journal, "S".into());
        let mut f = file("nodes/a/node.toml", ArtifactKind::NodeConfig, Some(b"new"));
        stager.stage(&mut f).expect("stage");
        assert_eq!(temporaries(root), 1);
        stager.abandon();
        assert_eq!(temporaries(root), 0);
        assert!(!root.join("nodes/a/node.toml").exists() && !journal.path().exists());
        let mut empty = file("x", ArtifactKind::NodeConfig, None);
        empty.action = ActionKind::Create;
        let stager = Stager::new(Dir::new(root, &index), &journal, "S".into());
        assert!(
            stager.stage(&mut empty).is_err(),
            "a file to write without content is a bug"
        );
    }
}
