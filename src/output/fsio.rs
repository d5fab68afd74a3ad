//! Writing files safely: every file goes through a temporary file and a rename, so an interrupted
//! run never leaves a half-written file; files with keys or passwords are created 0600.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A file operation that failed, with the path.
#[derive(Debug, thiserror::Error)]
#[error("{}: {action}: {source}", path.display())]
pub struct FsError {
    pub path: PathBuf,
    pub action: &'static str,
    #[source]
    pub source: std::io::Error,
}

/// Who may read a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Mode 0600: keys, keystores, passwords.
    Secret,
    /// Mode 0644: certificates, configuration.
    Public,
}

fn fs_err<'a>(path: &'a Path, action: &'static str) -> impl FnOnce(std::io::Error) -> FsError + 'a {
    move |source| FsError {
        path: path.to_path_buf(),
        action,
        source,
    }
}

/// Writes `bytes` to `path` atomically (temporary file in the same directory, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8], access: Access) -> Result<(), FsError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.tmp-{}-{unique}", std::process::id()));
    let mode = match access {
        Access::Secret => 0o600,
        Access::Public => 0o644,
    };
    let open = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
    };
    // Directories are created only when missing: on big sets metadata calls dominate.
    let mut file = match open() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(fs_err(dir, "cannot create the directory"))?;
            open()
        }
        other => other,
    }
    .map_err(fs_err(path, "cannot write"))?;
    let result = (|| {
        // The mode given to open() is filtered by the umask; set it exactly.
        file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
        file.write_all(bytes)?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        FsError {
            path: path.to_path_buf(),
            action: "cannot write",
            source: e,
        }
    })
}

/// Removes temporary files that an interrupted run left below `dir` (`.NAME.tmp-PID-N`).
/// Call it only while holding the directory's lock.
pub fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        match entry.file_type() {
            Ok(t) if t.is_dir() && name != super::layout::HISTORY => {
                remove_stale_temporaries(&path)
            }
            Ok(t) if t.is_file() && name.starts_with('.') && name.contains(".tmp-") => {
                let _ = fs::remove_file(&path);
            }
            _ => {}
        }
    }
}

/// Moves `from` to `to`, creating `to`'s directory.
pub fn move_file(from: &Path, to: &Path) -> Result<(), FsError> {
    if let Some(dir) = to.parent() {
        fs::create_dir_all(dir).map_err(fs_err(dir, "cannot create the directory"))?;
    }
    fs::rename(from, to).map_err(fs_err(from, "cannot move to history"))
}

/// An exclusive lock on DIR (its `.lock` file), held while a command writes DIR.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

/// Why DIR could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error("{}: another apim-pki command is writing this directory", .0.display())]
    Busy(PathBuf),
}

impl DirLock {
    /// Creates DIR if needed and takes its lock; a second writer gets [`LockError::Busy`].
    pub fn acquire(dir: &Path) -> Result<DirLock, LockError> {
        fs::create_dir_all(dir).map_err(fs_err(dir, "cannot create the output directory"))?;
        let path = dir.join(super::layout::LOCK);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(fs_err(
                &path,
                "cannot create the lock file (is the directory writable?)",
            ))?;
        match file.try_lock() {
            Ok(()) => Ok(DirLock { _file: file }),
            Err(fs::TryLockError::WouldBlock) => Err(LockError::Busy(dir.to_path_buf())),
            Err(fs::TryLockError::Error(e)) => Err(FsError {
                path,
                action: "cannot lock",
                source: e,
            }
            .into()),
        }
    }
}
