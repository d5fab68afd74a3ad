//! Installing files into a product home (`apply`): one writer at a time, every original backed
//! up under `APIM_HOME/.apim-pki-backup/STAMP/` (0600), the new files committed through a
//! journal so an interrupted apply is completed by the next one, and nothing written through a
//! symbolic link.
//!
//! The lock is `.apim-pki-backup/.lock` and the journal `.apim-pki-backup/.journal`: apply
//! creates nothing else in the home outside the files it configures.

use std::path::{Path, PathBuf};

use crate::output::fsio::{self, Access, DirLock, FsError, LockError};
use crate::output::journal::{Journal, Op};

/// The directory of apply's backups, its lock and its journal, relative to the home.
pub(crate) const BACKUP_DIR: &str = ".apim-pki-backup";
const LOCK: &str = ".lock";

fn journal(home: &Path) -> Journal {
    Journal::new(home, &format!("{BACKUP_DIR}/.journal"))
}

/// One file to install.
#[derive(Debug, Clone)]
pub(crate) struct Install<'a> {
    /// Relative to the home.
    pub rel: &'a str,
    pub bytes: &'a [u8],
    pub access: Access,
    /// A file this one replaces and that is removed afterwards.
    pub consumes: Option<&'a str>,
}

/// Locks the home for `apply`, completes what an interrupted apply left (its journal) and
/// removes its temporaries from the `known` directories (relative to the home) it writes in.
pub(crate) fn lock_home(home: &Path, known: &[&Path]) -> Result<DirLock, LockError> {
    fsio::refuse_links(home, Path::new(BACKUP_DIR))?;
    let lock = DirLock::acquire(&home.join(BACKUP_DIR), LOCK, "apply")?;
    journal(home).recover()?;
    let mut dirs = known.to_vec();
    dirs.push(Path::new(BACKUP_DIR));
    dirs.sort();
    dirs.dedup();
    for dir in dirs {
        if fsio::refuse_links(home, dir).is_ok() {
            fsio::remove_stale_temporaries(&home.join(dir), false);
        }
    }
    Ok(lock)
}

/// Installs `files` into `home` (the caller holds [`lock_home`]'s lock): backs up every
/// original, then replaces the files and removes the consumed ones, all in one journaled
/// commit. Keeps the owner of each replaced file. Returns the backup directory.
pub(crate) fn install(home: &Path, files: &[Install]) -> Result<PathBuf, FsError> {
    let stamp = fsio::unique_stamp(&home.join(BACKUP_DIR), time::OffsetDateTime::now_utc());
    let backup_rel = format!("{BACKUP_DIR}/{stamp}");
    let journal = journal(home);
    let mut ops = Vec::new();
    let mut staged = Vec::new();
    let result = (|| {
        for f in files {
            for rel in std::iter::once(f.rel).chain(f.consumes) {
                fsio::refuse_links(home, Path::new(rel))?;
                if home.join(rel).exists() {
                    ops.push(Op::Copy {
                        from: rel.to_string(),
                        to: format!("{backup_rel}/{rel}"),
                    });
                }
            }
            let s = journal.stage(f.rel, f.bytes, f.access)?;
            if let Ok(meta) = std::fs::metadata(home.join(f.rel)) {
                use std::os::unix::fs::MetadataExt;
                let _ = std::os::unix::fs::chown(s.tmp(), Some(meta.uid()), Some(meta.gid()));
            }
            staged.push(s);
            if let Some(consumed) = f.consumes {
                ops.push(Op::Remove {
                    path: consumed.to_string(),
                });
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        journal.abandon(staged);
        return Err(e);
    }
    journal.commit(staged, ops)?;
    Ok(home.join(backup_rel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_backs_up_replaces_and_removes_consumed_files() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let home = tmp.path();
        std::fs::create_dir_all(home.join("conf")).expect("mkdir");
        std::fs::write(home.join("conf/a.xml"), b"old").expect("write");
        std::fs::write(home.join("conf/a_TM.xml"), b"tm").expect("write");
        let _lock = lock_home(home, &[Path::new("conf")]).expect("lock");
        let backup = install(
            home,
            &[Install {
                rel: "conf/a.xml",
                bytes: b"new",
                access: Access::Secret,
                consumes: Some("conf/a_TM.xml"),
            }],
        )
        .expect("install");
        assert_eq!(
            std::fs::read(home.join("conf/a.xml")).expect("read"),
            b"new"
        );
        assert!(!home.join("conf/a_TM.xml").exists());
        assert_eq!(
            std::fs::read(backup.join("conf/a.xml")).expect("read"),
            b"old"
        );
        assert_eq!(
            std::fs::read(backup.join("conf/a_TM.xml")).expect("read"),
            b"tm"
        );
        assert!(!home.join(BACKUP_DIR).join(".journal").exists());
    }

    #[test]
    fn a_linked_config_file_is_refused_and_left_alone() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let home = tmp.path().join("home");
        std::fs::create_dir_all(home.join("conf")).expect("mkdir");
        std::fs::write(tmp.path().join("shared.xml"), b"shared").expect("write");
        std::os::unix::fs::symlink(tmp.path().join("shared.xml"), home.join("conf/a.xml"))
            .expect("symlink");
        let _lock = lock_home(&home, &[]).expect("lock");
        let e = install(
            &home,
            &[Install {
                rel: "conf/a.xml",
                bytes: b"new",
                access: Access::Secret,
                consumes: None,
            }],
        )
        .expect_err("refused");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(home.join("conf/a.xml").is_symlink());
        assert_eq!(
            std::fs::read(tmp.path().join("shared.xml")).expect("read"),
            b"shared"
        );
    }
}
