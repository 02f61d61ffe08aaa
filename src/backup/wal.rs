//! WAL databases copied byte for byte (issue 14). SQLite's backup API copies
//! page by page through the pager and restarts on every commit of another
//! connection unless a read transaction is held; a byte copy of the main file
//! runs at the speed of `cp`, but only when the main file alone holds the
//! snapshot being copied and nothing can change it meanwhile:
//!
//! - a checkpoint that completes while no commit can land (the copy's gate,
//!   or the caller's write lock) leaves every committed frame in the main
//!   file, so the read transaction begun right after needs nothing from the log;
//! - while that transaction is open no checkpoint writes into the main file:
//!   backfilling needs an exclusive lock on read-mark 0 (held shared by a
//!   reader that reads the main file only) and never goes past the read mark
//!   of any other reader (wal.c, `walCheckpoint`).
//!
//! When the checkpoint cannot complete (a reader of the app on an older
//! snapshot, a read-only file, commits that could not be kept out) the copy
//! goes through the backup API as before.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// A connection that runs passive checkpoints: they never wait, never block
/// the app, and write only what every reader has moved past.
pub(super) struct Checkpointer(Connection);

impl Checkpointer {
    /// None when the database cannot be opened for writing (the copy then
    /// falls back to the backup API).
    pub(super) fn open(db: &Path) -> Option<Checkpointer> {
        Connection::open_with_flags(
            db,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .ok()
        .map(Checkpointer)
    }

    /// Whether every frame of the log is now in the main file.
    pub(super) fn checkpoint(&self) -> bool {
        // (busy, frames in the log, frames checkpointed); -1s when not in WAL mode.
        self.0
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .is_ok_and(|(busy, log, done)| busy == 0 && log >= 0 && log == done)
    }
}

/// The bytes of the snapshot `conn` reads: its pages, which the main file may
/// be longer than.
pub(super) fn snapshot_len(conn: &Connection) -> rusqlite::Result<u64> {
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    Ok(pages.max(0) as u64 * size.max(0) as u64)
}

/// Keeps other connections from committing while a WAL copy records the
/// log and takes its snapshot. A writer appends a commit's frames to the
/// `-wal` before it publishes them in the wal-index (wal.c), so without the
/// write lock the log can hold one commit the snapshot does not: a backup
/// that said "this is the state" while missing it would let a later restore
/// undo that commit in silence.
pub(super) enum Gate {
    /// The caller holds the write lock, or the database is not in WAL mode.
    NotNeeded,
    /// This connection holds it until dropped (rolled back: it writes nothing).
    Closed(Connection),
    /// Not possible (read-only file, a long transaction of the app's).
    Open,
}

impl Gate {
    pub(super) fn close(db: &Path) -> Gate {
        let conn = match Connection::open_with_flags(
            db,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        ) {
            Ok(c) => c,
            Err(_) => return Gate::Open,
        };
        // Not worth waiting long for: without it the record steps back a commit.
        let ok = conn.busy_timeout(Duration::from_millis(250)).is_ok()
            && conn.execute_batch("BEGIN IMMEDIATE").is_ok();
        if ok {
            Gate::Closed(conn)
        } else {
            Gate::Open
        }
    }

    pub(super) fn exact(&self) -> bool {
        !matches!(self, Gate::Open)
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        if let Gate::Closed(conn) = self {
            let _ = conn.execute_batch("ROLLBACK");
        }
    }
}
