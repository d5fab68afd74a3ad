//! Writing files safely: every file goes through a temporary file and a rename, so an interrupted
//! run never leaves a half-written file; files with keys or passwords are created 0600, the
//! directories apim-pki creates 0700 (whatever the umask). Nothing is written through a
//! symbolic link: a link below the folder apim-pki writes is refused with an error naming it.
//!
//! Test hook: with `APIM_PKI_TEST_KILL_AT=N` in the environment, the process kills itself with
//! SIGKILL right before its Nth file replacement (a rename into place, or a journal step; see
//! [`crate::output::journal`]). The crash-safety suite (tests/crash.rs, scripts/crash-sweep.sh)
//! uses it to interrupt a run at every replacement deterministically.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

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
pub(crate) enum Access {
    /// Mode 0600: keys, keystores, passwords.
    Secret,
    /// Mode 0644: certificates, configuration.
    Public,
}

impl Access {
    fn mode(self) -> u32 {
        match self {
            Access::Secret => 0o600,
            Access::Public => 0o644,
        }
    }
}

/// The mode of every directory apim-pki creates: they hold keys, keystores or backups of files
/// with passwords, so only the owner may list or enter them.
pub(crate) const DIR_MODE: u32 = 0o700;

pub(crate) fn fs_err<'a>(
    path: &'a Path,
    action: &'static str,
) -> impl FnOnce(std::io::Error) -> FsError + 'a {
    move |source| FsError {
        path: path.to_path_buf(),
        action,
        source,
    }
}

/// The error for a symbolic link found where apim-pki would write.
pub(crate) fn link_error(path: &Path) -> FsError {
    FsError {
        path: path.to_path_buf(),
        action: "is a symbolic link",
        source: std::io::Error::other(
            "apim-pki does not write through links it did not create; replace the link with the \
             file or directory itself (or point the command at the link's target)",
        ),
    }
}

/// Refuses when `rel` (relative to `root`), or any directory on the way to it, is a symbolic
/// link. `root` itself may be a link: the user named it. Stops at the first missing component.
pub(crate) fn refuse_links(root: &Path, rel: &Path) -> Result<(), FsError> {
    let mut path = root.to_path_buf();
    for component in rel.components() {
        match component {
            Component::Normal(name) => path.push(name),
            Component::CurDir => continue,
            _ => {
                return Err(FsError {
                    path: root.join(rel),
                    action: "is not a plain relative path",
                    source: std::io::Error::other("refusing to write outside the directory"),
                })
            }
        }
        match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => return Err(link_error(&path)),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(fs_err(&path, "cannot read")(e)),
        }
    }
    Ok(())
}

/// The first symbolic link below `root` (history/ is checked but not walked), if any.
pub(crate) fn first_link_below(root: &Path) -> Option<PathBuf> {
    let entries = fs::read_dir(root).ok()?;
    for entry in entries.flatten() {
        match entry.file_type() {
            Ok(t) if t.is_symlink() => return Some(entry.path()),
            Ok(t) if t.is_dir() && entry.file_name() != super::layout::HISTORY => {
                if let Some(link) = first_link_below(&entry.path()) {
                    return Some(link);
                }
            }
            _ => {}
        }
    }
    None
}

/// Creates `dir` and its missing parents with mode 0700 (set exactly: the umask is ignored).
/// Existing directories keep their mode.
pub(crate) fn create_dirs(dir: &Path) -> Result<(), FsError> {
    match fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(m) if m.file_type().is_symlink() && dir.is_dir() => return Ok(()),
        _ => {}
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dirs(parent)?;
    }
    match fs::DirBuilder::new().mode(DIR_MODE).create(dir) {
        Ok(()) => fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE))
            .map_err(fs_err(dir, "cannot set the mode of the directory")),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(fs_err(dir, "cannot create the directory")(e)),
    }
}

/// The test hook: called right before every file replacement.
pub(crate) fn replacement_point() {
    static KILL_AT: OnceLock<Option<u64>> = OnceLock::new();
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let Some(at) = *KILL_AT.get_or_init(|| {
        std::env::var("APIM_PKI_TEST_KILL_AT")
            .ok()
            .and_then(|v| v.parse().ok())
    }) else {
        return;
    };
    if COUNT.fetch_add(1, Ordering::SeqCst) + 1 == at {
        // SIGKILL, not abort(): the test checks that nothing at all ran after this point.
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        loop {
            std::thread::park();
        }
    }
}

/// Writes `bytes` into a new temporary file next to `path` (`.NAME.tmp-PID-N`, mode set
/// exactly) and returns the temporary file's path. The directory is created (0700) if missing.
pub(crate) fn write_temporary(
    path: &Path,
    bytes: &[u8],
    access: Access,
) -> Result<PathBuf, FsError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.tmp-{}-{unique}", std::process::id()));
    let mode = access.mode();
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
            create_dirs(dir)?;
            open()
        }
        other => other,
    }
    .map_err(fs_err(path, "cannot write"))?;
    let result = (|| {
        // The mode given to open() is filtered by the umask; set it exactly.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(bytes)
    })();
    drop(file);
    match result {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(fs_err(path, "cannot write")(e))
        }
    }
}

/// Renames `from` over `to` (a file replacement: the test hook counts it). Refuses when `to`
/// is a symbolic link.
pub(crate) fn replace(from: &Path, to: &Path) -> Result<(), FsError> {
    if fs::symlink_metadata(to).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(link_error(to));
    }
    replacement_point();
    fs::rename(from, to).map_err(fs_err(to, "cannot write"))
}

/// Writes `bytes` to `path` atomically (temporary file in the same directory, then rename).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], access: Access) -> Result<(), FsError> {
    let tmp = write_temporary(path, bytes, access)?;
    replace(&tmp, path).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

/// True for the name of a temporary file apim-pki writes (`.NAME.tmp-PID-N`).
pub(crate) fn is_temporary(name: &str) -> bool {
    name.starts_with('.')
        && name.rsplit_once(".tmp-").is_some_and(|(_, tail)| {
            tail.split_once('-').is_some_and(|(pid, n)| {
                !pid.is_empty()
                    && !n.is_empty()
                    && pid.bytes().all(|b| b.is_ascii_digit())
                    && n.bytes().all(|b| b.is_ascii_digit())
            })
        })
}

/// Removes temporary files that an interrupted run left below `dir` (`.NAME.tmp-PID-N`), in
/// every subdirectory but history/ when `recursive`. Call it only while holding the lock.
pub(crate) fn remove_stale_temporaries(dir: &Path, recursive: bool) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        match entry.file_type() {
            Ok(t) if recursive && t.is_dir() && name != super::layout::HISTORY => {
                remove_stale_temporaries(&path, true)
            }
            Ok(t) if t.is_file() && is_temporary(&name) => {
                let _ = fs::remove_file(&path);
            }
            _ => {}
        }
    }
}

/// Moves `from` to `to`, creating `to`'s directory (0700).
pub(crate) fn move_file(from: &Path, to: &Path) -> Result<(), FsError> {
    if let Some(dir) = to.parent() {
        create_dirs(dir)?;
    }
    replacement_point();
    fs::rename(from, to).map_err(fs_err(from, "cannot move to history"))
}

/// An exclusive lock on a directory (its lock file), held while a command writes it. The lock
/// file records who holds it (pid and command), so a refused writer can name the holder.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

/// Why a directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error("{}: another apim-pki command is writing this directory ({holder})", .dir.display())]
    Busy { dir: PathBuf, holder: String },
    #[error("{}: another apim-pki command ({holder}) wrote this new directory while this one was preparing; this run wrote nothing", .dir.display())]
    Raced { dir: PathBuf, holder: String },
}

impl DirLock {
    /// Creates `dir` if needed (0700) and takes the lock `dir/lock_name`; while another process
    /// holds it, [`LockError::Busy`] names that process. `command` is recorded for the next
    /// writer's message. The lock file must not be a symbolic link.
    pub(crate) fn acquire(
        dir: &Path,
        lock_name: &str,
        command: &str,
    ) -> Result<DirLock, LockError> {
        DirLock::take(dir, lock_name, command).map(|(lock, _)| lock)
    }

    /// Takes the lock; returns it with what the lock file said about its previous holder.
    fn take(dir: &Path, lock_name: &str, command: &str) -> Result<(DirLock, String), LockError> {
        create_dirs(dir)?;
        let path = dir.join(lock_name);
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| {
                if e.raw_os_error() == Some(libc::ELOOP) {
                    link_error(&path)
                } else {
                    fs_err(
                        &path,
                        "cannot create the lock file (is the directory writable?)",
                    )(e)
                }
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                // The holder writes its name right after locking: give it a moment.
                let mut holder = holder_of(&mut file);
                for _ in 0..100 {
                    if holder != UNKNOWN {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    holder = holder_of(&mut file);
                }
                return Err(LockError::Busy {
                    dir: dir.to_path_buf(),
                    holder,
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(fs_err(&path, "cannot lock")(e).into()),
        }
        let previous = holder_of(&mut file);
        let me = format!("pid {}, apim-pki {command}", std::process::id());
        // Who holds the lock is advisory: a failure to record it does not stop the run.
        let _ = file
            .set_len(0)
            .and_then(|()| file.write_all_at(me.as_bytes(), 0));
        Ok((DirLock { _file: file }, previous))
    }

    /// Like [`DirLock::acquire`] for a directory that did not exist when the run started: once
    /// locked, it must hold nothing but the lock file (and temporaries of a killed run),
    /// otherwise another command created it meanwhile and this run must not write.
    pub(crate) fn acquire_new(
        dir: &Path,
        lock_name: &str,
        command: &str,
    ) -> Result<DirLock, LockError> {
        let (lock, previous) = DirLock::take(dir, lock_name, command)?;
        let entries = fs::read_dir(dir).map_err(fs_err(dir, "cannot read"))?;
        let foreign = entries.flatten().any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name != lock_name && !is_temporary(&name)
        });
        if foreign {
            return Err(LockError::Raced {
                dir: dir.to_path_buf(),
                holder: previous,
            });
        }
        Ok(lock)
    }
}

const UNKNOWN: &str = "holder unknown";

/// What the lock file says about its holder.
fn holder_of(file: &mut File) -> String {
    let mut buf = [0u8; 200];
    let n = file.read_at(&mut buf, 0).unwrap_or(0);
    let text = String::from_utf8_lossy(&buf[..n]);
    let text = text.trim();
    if text.is_empty() || !text.chars().all(|c| !c.is_control()) {
        UNKNOWN.into()
    } else {
        text.to_string()
    }
}

/// A timestamp name (`20261129T091500.123Z`, then `-1`, `-2`, ...) for a new directory under
/// `parent` that no earlier run used: history/ and apply's backups.
pub(crate) fn unique_stamp(parent: &Path, now: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[year][month][day]T[hour][minute][second].[subsecond digits:3]Z"
    );
    let base = now
        .format(&format)
        .unwrap_or_else(|_| now.unix_timestamp().to_string());
    (0..)
        .map(|n| {
            if n == 0 {
                base.clone()
            } else {
                format!("{base}-{n}")
            }
        })
        .find(|s| !parent.join(s).exists())
        .unwrap_or(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names() {
        assert!(is_temporary(".ca.key.tmp-123-0"));
        assert!(is_temporary(".wso2carbon.jks.tmp-9-12"));
        assert!(!is_temporary("ca.key.tmp-123-0"));
        assert!(!is_temporary(".ca.key.tmp-x-0"));
        assert!(!is_temporary(".lock"));
        assert!(!is_temporary(".ca.key.tmp-12-"));
    }

    #[test]
    fn directories_are_0700_whatever_the_umask() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let deep = tmp.path().join("a/b/c");
        create_dirs(&deep).expect("create");
        for d in ["a", "a/b", "a/b/c"] {
            let mode = fs::metadata(tmp.path().join(d))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o7777, 0o700, "{d}");
        }
    }

    #[test]
    fn links_on_the_way_are_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("root");
        fs::create_dir_all(root.join("real")).expect("mkdir");
        std::os::unix::fs::symlink(tmp.path(), root.join("link")).expect("symlink");
        assert!(refuse_links(&root, Path::new("real/x")).is_ok());
        assert!(refuse_links(&root, Path::new("missing/x")).is_ok());
        let e = refuse_links(&root, Path::new("link/x")).expect_err("link refused");
        assert_eq!(e.path, root.join("link"));
        assert!(refuse_links(&root, Path::new("../x")).is_err());
    }

    #[test]
    fn a_new_folder_another_run_filled_is_not_written() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("new");
        drop(DirLock::acquire(&dir, ".lock", "generate").expect("first run"));
        fs::write(dir.join("inventory.json"), b"{}").expect("write");
        match DirLock::acquire_new(&dir, ".lock", "generate") {
            Err(LockError::Raced { holder, .. }) => {
                assert!(holder.contains("apim-pki generate"), "{holder}")
            }
            other => panic!("expected Raced, got {other:?}"),
        }
        // Only the lock and a killed run's temporaries: still new.
        let fresh = tmp.path().join("fresh");
        fs::create_dir_all(&fresh).expect("mkdir");
        fs::write(fresh.join(".ca.key.tmp-1-0"), b"half").expect("write");
        DirLock::acquire_new(&fresh, ".lock", "generate").expect("a new folder");
    }

    #[test]
    fn a_second_lock_names_the_holder() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("new");
        let _held = DirLock::acquire(&dir, ".lock", "generate").expect("first");
        match DirLock::acquire(&dir, ".lock", "rotate") {
            Err(LockError::Busy { holder, .. }) => {
                assert_eq!(
                    holder,
                    format!("pid {}, apim-pki generate", std::process::id())
                )
            }
            other => panic!("expected Busy, got {other:?}"),
        }
    }
}
