//! Temporary files in the backups folder (and the database's folder, for the
//! emergency restore): created exclusively under random names, owner-only,
//! and locked for as long as their writer lives, so a later command can tell
//! one a killed backstop abandoned from one still being written (SPEC
//! "Backups": "Temporary files abandoned by a killed backstop are removed by
//! the next command that uses the folder").
//!
//! The lock is `flock` on the temporary's own descriptor: the kernel drops it
//! when the writer exits, however it ends (kill -9 included). It does not
//! interact with the POSIX locks SQLite takes on the same file while the
//! backup API writes it.

use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::NamedTempFile;

/// A temporary younger than this whose writer's process id still runs is
/// left alone even when it is not locked: its writer may be between creating
/// it and locking it.
const GRACE: Duration = Duration::from_secs(10);

/// A new owner-only temporary file in `folder` for `name`, locked by this
/// process until it is persisted or dropped. The name carries the process id:
/// `.<name>.<pid>.<random>.tmp`.
pub(crate) fn temporary(folder: &Path, name: &str) -> io::Result<NamedTempFile> {
    temporary_with_mode(folder, name, 0o600)
}

/// Like [`temporary`], created with `mode` (less the umask): the emergency
/// restore's replacement for a database that is gone is created as SQLite
/// would create it, not owner-only.
pub(crate) fn temporary_with_mode(
    folder: &Path,
    name: &str,
    mode: u32,
) -> io::Result<NamedTempFile> {
    let prefix = format!(".{name}.{}.", std::process::id());
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Backups hold the user's data: readable by their owner only.
        builder.permissions(fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = mode;
    let tmp = builder.tempfile_in(folder)?;
    lock(tmp.as_file())?;
    Ok(tmp)
}

/// Removes the temporaries in `folder` whose writer is provably gone: not
/// locked, and either their process id no longer runs or they are older than
/// [`GRACE`]; with them, the `-journal`, `-wal` and `-shm` SQLite left
/// beside one. `only` limits it to temporaries whose name starts with `.<only>.` (the database folder,
/// which holds other people's files too). Never follows a symlink. Returns
/// what it removed; best effort, since a leftover must never fail a command.
pub(crate) fn sweep(folder: &Path, only: Option<&str>) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = temporary_pid(&name, only) else {
            continue;
        };
        let path = entry.path();
        if let Some(sidecar) = SIDECARS.iter().find(|s| name.ends_with(*s)) {
            // A journal, WAL or shm whose temporary is gone belongs to nobody.
            let base = PathBuf::from(path.to_string_lossy().trim_end_matches(sidecar));
            if fs::symlink_metadata(&base).is_err() && fs::remove_file(&path).is_ok() {
                removed.push(path);
            }
            continue;
        }
        if abandoned(&path, pid) && fs::remove_file(&path).is_ok() {
            for sidecar in SIDECARS {
                let _ = fs::remove_file(format!("{}{sidecar}", path.display()));
            }
            removed.push(path);
        }
    }
    if !removed.is_empty() {
        super::sync_dir(folder);
    }
    removed
}

/// What SQLite leaves beside a temporary it writes: the copy of a WAL
/// database passes through WAL mode on its way back to a rollback journal.
const SIDECARS: [&str; 3] = ["-journal", "-wal", "-shm"];

/// The writer's process id if `name` is one of our temporaries (or its journal).
fn temporary_pid(name: &str, only: Option<&str>) -> Option<u32> {
    let rest = name.strip_prefix('.')?;
    if let Some(prefix) = only {
        rest.strip_prefix(prefix)?.strip_prefix('.')?;
    }
    let stem = rest.strip_suffix(".tmp").or_else(|| {
        SIDECARS
            .iter()
            .find_map(|s| rest.strip_suffix(&format!(".tmp{s}")))
    })?;
    // `<name>.<pid>.<random>`: the pid is the second part from the end.
    let mut parts = stem.rsplit('.');
    let _random = parts.next()?;
    let pid = parts.next()?;
    parts.next()?;
    pid.parse().ok()
}

fn abandoned(path: &Path, pid: u32) -> bool {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return false;
    };
    if !meta.file_type().is_file() {
        return false;
    }
    let Ok(file) = open_no_follow(path) else {
        return false;
    };
    // Held by a live writer (the kernel drops it with the process).
    if lock(&file).is_err() {
        return false;
    }
    let young = meta
        .modified()
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_none_or(|age| age < GRACE);
    !(young && process_runs(pid))
}

fn open_no_follow(path: &Path) -> io::Result<fs::File> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path)
}

/// An exclusive lock, without waiting: fails while anyone else holds one.
#[cfg(unix)]
fn lock(file: &fs::File) -> io::Result<()> {
    use rustix::fs::{flock, FlockOperation};
    flock(file, FlockOperation::NonBlockingLockExclusive).map_err(io::Error::from)
}

#[cfg(not(unix))]
fn lock(_file: &fs::File) -> io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn process_runs(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    match rustix::process::test_kill_process(pid) {
        Ok(()) => true,
        // It exists but belongs to someone else.
        Err(e) => e == rustix::io::Errno::PERM,
    }
}

#[cfg(not(unix))]
fn process_runs(_pid: u32) -> bool {
    true
}

/// A backup that a command is using (being restored): a shared `flock` on it
/// until dropped, so retention in any process leaves it alone.
#[derive(Debug)]
pub struct InUse {
    _file: fs::File,
}

impl InUse {
    pub fn mark(path: &Path) -> io::Result<InUse> {
        let file = open_no_follow(path)?;
        #[cfg(unix)]
        rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockShared)?;
        Ok(InUse { _file: file })
    }
}

/// Whether some command holds [`InUse`] on `path` (checked before pruning it).
pub(crate) fn in_use(path: &Path) -> bool {
    match open_no_follow(path) {
        Ok(file) => lock(&file).is_err(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_pids() {
        assert_eq!(
            temporary_pid(".a.db.1.sqlite3.123.AbC9x0.tmp", None),
            Some(123)
        );
        assert_eq!(temporary_pid(".a.123.xyz.tmp-journal", None), Some(123));
        assert_eq!(temporary_pid(".a.123.xyz.tmp-wal", None), Some(123));
        assert_eq!(temporary_pid(".a.123.xyz.tmp-shm", None), Some(123));
        assert_eq!(
            temporary_pid(".dev.db.restore.9.ab.tmp", Some("dev.db.restore")),
            Some(9)
        );
        assert_eq!(
            temporary_pid(".other.9.ab.tmp", Some("dev.db.restore")),
            None
        );
        assert_eq!(temporary_pid("a.123.b.tmp", None), None);
        assert_eq!(temporary_pid(".a.notpid.b.tmp", None), None);
    }

    #[test]
    fn a_live_temporary_is_kept_and_an_abandoned_one_removed() {
        let dir = tempfile::tempdir().unwrap();
        let live = temporary(dir.path(), "x.sqlite3").unwrap();
        // Left by a process that is gone (pid 0x7fff_fff0 does not run).
        let dead = dir.path().join(".x.sqlite3.2147483632.abcdef.tmp");
        fs::write(&dead, b"half a backup").unwrap();
        let sidecars: Vec<PathBuf> = SIDECARS
            .iter()
            .map(|s| {
                dir.path()
                    .join(format!(".x.sqlite3.2147483632.abcdef.tmp{s}"))
            })
            .collect();
        for sidecar in &sidecars {
            fs::write(sidecar, b"j").unwrap();
        }
        // A WAL whose temporary is already gone, and one of a live temporary.
        let orphan = dir.path().join(".z.sqlite3.2147483632.abcdef.tmp-wal");
        fs::write(&orphan, b"w").unwrap();
        let live_wal = PathBuf::from(format!("{}-wal", live.path().display()));
        fs::write(&live_wal, b"w").unwrap();
        // A symlink with a temporary's name is not ours to judge.
        #[cfg(unix)]
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join(".y.2147483632.abcdef.tmp"))
            .unwrap();
        let removed = sweep(dir.path(), None);
        assert!(removed.contains(&dead), "{removed:?}");
        assert!(live.path().exists());
        assert!(!dead.exists());
        for sidecar in &sidecars {
            assert!(!sidecar.exists(), "{} left", sidecar.display());
        }
        assert!(!orphan.exists());
        assert!(live_wal.exists(), "the live temporary's WAL was removed");
        assert!(fs::symlink_metadata(dir.path().join(".y.2147483632.abcdef.tmp")).is_ok());
        drop(live);
    }

    #[test]
    fn a_backup_in_use_is_seen_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b.sqlite3");
        fs::write(&p, b"x").unwrap();
        assert!(!in_use(&p));
        let mark = InUse::mark(&p).unwrap();
        assert!(in_use(&p));
        drop(mark);
        assert!(!in_use(&p));
    }
}
