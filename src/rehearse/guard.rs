//! The real database while executable migrations rehearse on the copy (issue
//! 12: "`--dry-run` never touches the real database, including for scripts
//! that open a path of their own"). They are given the copy's path, but a
//! script may hard-code `dev.db` relative to the project folder, which is the
//! real file. Two defences:
//!
//! - backstop holds the real database's write lock (`BEGIN IMMEDIATE`, on a
//!   connection of its own) for the whole rehearsal, so such a script's writes
//!   wait and fail with "database is locked" instead of landing; readers are
//!   not blocked, writers of other programs wait meanwhile;
//! - the real file is fingerprinted (device, inode, size, modification and
//!   change times; the sizes of its `-wal` and `-journal`) under that lock
//!   before and after: a change means something wrote around SQLite's locks,
//!   and the rehearsal is refused. Only sizes for the side files: SQLite
//!   itself creates an empty `-wal` when a connection, even a read-only one,
//!   first reads a WAL database. `stat` only: opening and closing a
//!   descriptor of the file here would drop this process's POSIX locks, the
//!   guard's own.
//!
//! Only when executables are pending: SQL cannot reach the real file, and
//! blocking a live app's writes is then not worth it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, Result};

/// The lock on the real database and how it looked when taken.
pub(super) struct Guard {
    path: PathBuf,
    /// None when the real file does not exist (a rehearsal of the first run).
    _lock: Option<Connection>,
    before: Fingerprint,
}

#[derive(Debug, PartialEq, Eq)]
struct Fingerprint {
    db: Option<[i64; 7]>,
    /// `-wal` and `-journal` sizes, 0 when absent.
    sides: [u64; 2],
}

impl Guard {
    pub fn take(path: &Path, busy: Duration) -> Result<Guard> {
        let lock = if path.is_file() {
            let sqlite = |e| Error::from_sqlite(path, e);
            let conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(sqlite)?;
            conn.busy_timeout(busy).map_err(sqlite)?;
            // Closing the last connection to a WAL database checkpoints it,
            // which writes the file: a rehearsal must not.
            conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
                .map_err(sqlite)?;
            conn.execute_batch("BEGIN IMMEDIATE").map_err(sqlite)?;
            Some(conn)
        } else {
            None
        };
        Ok(Guard {
            path: path.to_path_buf(),
            _lock: lock,
            before: fingerprint(path),
        })
    }

    /// Whether the real file is as it was when the guard was taken.
    pub fn untouched(&self) -> bool {
        fingerprint(&self.path) == self.before
    }
}

fn fingerprint(db: &Path) -> Fingerprint {
    use std::os::unix::fs::MetadataExt;
    let side = |suffix: &str| {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        std::fs::symlink_metadata(PathBuf::from(p)).map_or(0, |m| m.size())
    };
    Fingerprint {
        db: std::fs::symlink_metadata(db).ok().map(|m| {
            [
                m.dev() as i64,
                m.ino() as i64,
                m.size() as i64,
                m.mtime(),
                m.mtime_nsec(),
                m.ctime(),
                m.ctime_nsec(),
            ]
        }),
        sides: [side("-wal"), side("-journal")],
    }
}
