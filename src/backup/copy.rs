//! Copying the live database into a temporary file, consistently beside other
//! connections: a byte copy under SQLite's SHARED lock for rollback-journal
//! databases; for WAL ones a byte copy too when a read transaction's snapshot
//! lies wholly in the main file (see `wal`), else SQLite's online backup API.
//! Verifying and publishing the copy are `verify` and `publish`'s.

use std::fs::File;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::file::DbFile;
use super::fingerprint::{self, Fingerprint};
use super::stream::{copy_bytes, Header, Streamed};
use super::verify::{open_backup, parallel_verify, quick_check};
use super::wal::{self, Gate};
use super::{mapped, Held, Problem};
use crate::observe::{Event, Interrupt, Observer};

/// What the copy found out on the way.
pub(super) struct Copied {
    pub size: u64,
    pub sha256: String,
    pub journal_mode: String,
    pub change_counter: Option<u32>,
    pub fingerprint: Option<Fingerprint>,
}

/// Where the copy goes and what stops it.
pub(super) struct Target<'a> {
    pub out: &'a File,
    pub tmp: &'a Path,
    pub interrupt: &'a Interrupt,
    /// Loaded on the connections that check the copy (see `Request::extensions`).
    pub extensions: &'a [std::path::PathBuf],
}

/// Copies `db` into the temporary file, hashed and checked.
pub(super) fn copy_verified(
    db: &Path,
    to: &Target<'_>,
    busy: Duration,
    held: Held,
    obs: &mut dyn Observer,
) -> Result<Copied, Problem> {
    if held == Held::Exclusive {
        return copy_under_callers_lock(db, to, obs);
    }
    // The checking VFS: quick_check runs on this connection, which holds the lock.
    let src = mapped::open(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(Problem::Sqlite)?;
    crate::db::busy::install(&src, busy).map_err(Problem::Sqlite)?;
    load_extensions(&src, to.extensions)?;
    let is_wal = fingerprint::is_wal(db);
    // The bulk of the log goes to the main file before anyone is kept waiting.
    let checkpointer = is_wal.then(|| wal::Checkpointer::open(db)).flatten();
    if let Some(c) = &checkpointer {
        c.checkpoint();
    }
    // The state a WAL copy records must be the one it copies, never a newer
    // one: no commit may land between reading the log and taking the snapshot.
    let gate = match held {
        Held::Nothing if is_wal => Gate::close(db),
        // Rollback mode: the counter is read from the copied bytes themselves.
        _ => Gate::NotNeeded,
    };
    // With commits kept out, a complete checkpoint now means the snapshot
    // about to be taken lies wholly in the main file (see `wal`).
    let in_main_file = gate.exact() && checkpointer.as_ref().is_some_and(|c| c.checkpoint());
    drop(checkpointer);
    let before = fingerprint::read(db).ok();
    // One read transaction for the whole copy: a consistent snapshot, and
    // writers cannot change what it reads (rollback mode: SHARED keeps them
    // from committing; WAL: the snapshot stays while they append, and no
    // checkpoint may write past it into the main file).
    src.execute_batch("BEGIN").map_err(Problem::Sqlite)?;
    src.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
        .map_err(Problem::Sqlite)?;
    let exact = gate.exact();
    drop(gate);
    // Read under the lock: the mode cannot switch between this and the copy.
    let journal_mode: String = src
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .map_err(Problem::Sqlite)?;
    if !journal_mode.eq_ignore_ascii_case("wal") {
        // (A hot journal left by a crash was rolled back when the command
        // opened the database.)
        let mtime = std::fs::metadata(db).ok();
        let s = copy_locked(src, db, Header::AsIs, None, to, obs)?;
        return Ok(Copied::rollback(s, journal_mode, mtime));
    }
    let fingerprint = if exact {
        before
    } else {
        before.map(fingerprint::one_commit_back)
    };
    let (size, sha256) = if in_main_file {
        let len = wal::snapshot_len(&src).map_err(Problem::Sqlite)?;
        let s = copy_locked(src, db, Header::RollbackJournal, Some(len), to, obs)?;
        (s.size, s.sha256)
    } else {
        backup_api(&src, to, obs)?;
        drop(src);
        let (sha256, size) = parallel_verify(to.tmp, to.extensions, to.interrupt)?;
        (size, sha256)
    };
    Ok(Copied {
        size,
        sha256,
        journal_mode,
        change_counter: None,
        fingerprint,
    })
}

/// The configured extensions on a checking connection (see `Request::extensions`).
pub(super) fn load_extensions(
    conn: &Connection,
    paths: &[std::path::PathBuf],
) -> Result<(), Problem> {
    crate::db::extensions::load(conn, paths).map_err(|e| {
        Problem::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(e.to_string()),
        ))
    })
}

impl Copied {
    /// A rollback-journal database copied byte for byte under a lock: its
    /// fingerprint is the change counter of the copied bytes.
    fn rollback(s: Streamed, journal_mode: String, mtime: Option<std::fs::Metadata>) -> Copied {
        Copied {
            fingerprint: s
                .change_counter
                .map(|c| rollback_fingerprint(c, s.size, mtime)),
            size: s.size,
            sha256: s.sha256,
            journal_mode,
            change_counter: s.change_counter,
        }
    }
}

/// The fingerprint of a rollback-journal database whose bytes were just copied
/// under a lock: the counter from those bytes.
fn rollback_fingerprint(counter: u32, size: u64, meta: Option<std::fs::Metadata>) -> Fingerprint {
    Fingerprint {
        wal_mode: false,
        change_counter: counter,
        size,
        mtime_ns: meta
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| u64::try_from(d.as_nanos()).ok()),
        log: None,
    }
}

/// Restore holds EXCLUSIVE on a rollback-journal database through another
/// connection: no reader can get in (not even one of ours), and nobody can
/// write. The bytes are read through SQLite's file handle without a lock, and
/// the copy (not the locked source) gets the quick_check.
fn copy_under_callers_lock(
    db: &Path,
    to: &Target<'_>,
    obs: &mut dyn Observer,
) -> Result<Copied, Problem> {
    let mtime = std::fs::metadata(db).ok();
    let s = copy_bytes(DbFile::open(db)?, Header::AsIs, to, obs)?;
    let conn = open_backup(to.tmp)?;
    load_extensions(&conn, to.extensions)?;
    to.interrupt.stop_on(&conn);
    quick_check(&conn, to.tmp).map_err(|p| interrupted_or(p, to.interrupt))?;
    Ok(Copied::rollback(s, "delete".into(), mtime))
}

/// A check stopped by Ctrl-C fails as an interruption, not as damage.
pub(super) fn interrupted_or(p: Problem, interrupt: &Interrupt) -> Problem {
    if interrupt.is_set() {
        Problem::Interrupted
    } else {
        p
    }
}

/// Copies `db` while `locked` holds its read lock (at most `len` bytes, when
/// given), with quick_check on the locked connection on a thread of its own:
/// the check reads the same snapshot the copy does, from the page cache.
fn copy_locked(
    locked: Connection,
    db: &Path,
    header: Header,
    len: Option<u64>,
    to: &Target<'_>,
    obs: &mut dyn Observer,
) -> Result<Streamed, Problem> {
    let mut input = DbFile::open(db)?;
    if let Some(len) = len {
        if !input.truncate_to(len) {
            return Err(Problem::Check {
                path: db.to_path_buf(),
                detail: format!("the file is shorter than its {len} bytes of pages"),
            });
        }
    }
    to.interrupt.stop_on(&locked);
    std::thread::scope(|scope| {
        // The connection comes back with the result: the lock must outlive the copy.
        let check = scope.spawn(move || (quick_check(&locked, db), locked));
        let copied = copy_bytes(input, header, to, obs);
        let (checked, locked) = check.join().map_err(|_| Problem::Check {
            path: db.to_path_buf(),
            detail: "quick_check thread failed".into(),
        })?;
        drop(locked);
        let copied = copied?;
        checked.map_err(|p| interrupted_or(p, to.interrupt))?;
        Ok(copied)
    })
}

/// Pages per backup step: a few MiB between progress events and Ctrl-C checks.
const STEP_PAGES: i32 = 1024;

/// SQLite's online backup API from `src`, which holds a read transaction for
/// the whole copy. That matters beside a busy writer: without one, each step
/// opens its own read transaction, sees the writer's new commit and starts the
/// copy over (backup.c, `sqlite3BackupRestart`), so a backup beside an app that
/// writes every few milliseconds barely progresses. With it, the copy is one
/// snapshot and takes as long as the data does.
fn backup_api(src: &Connection, to: &Target<'_>, obs: &mut dyn Observer) -> Result<(), Problem> {
    let mut dst = Connection::open(to.tmp).map_err(Problem::Sqlite)?;
    {
        let backup = rusqlite::backup::Backup::new(src, &mut dst).map_err(Problem::Sqlite)?;
        let page_size: i64 = src
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap_or(4096);
        loop {
            if to.interrupt.is_set() {
                return Err(Problem::Interrupted);
            }
            match backup.step(STEP_PAGES).map_err(Problem::Sqlite)? {
                rusqlite::backup::StepResult::Done => break,
                rusqlite::backup::StepResult::More => {}
                // Nothing else writes the private temporary, and the source's
                // snapshot is held: a lock here is a real failure.
                other => {
                    return Err(Problem::Sqlite(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                        Some(format!("backup step: {other:?}")),
                    )))
                }
            }
            let p = backup.progress();
            let total = (p.pagecount.max(0) as u64) * page_size as u64;
            let left = (p.remaining.max(0) as u64) * page_size as u64;
            obs.event(Event::BackupProgress {
                done: total - left,
                total,
            });
        }
    }
    // Leave the copy in rollback-journal mode: a backup file must open on its own.
    dst.execute_batch("PRAGMA journal_mode = DELETE")
        .map_err(Problem::Sqlite)?;
    dst.close().map_err(|(_, e)| Problem::Sqlite(e))?;
    // The same file as SQLite's: syncing any descriptor of it syncs its data.
    to.out.sync_all().map_err(|source| Problem::Io {
        path: to.tmp.to_path_buf(),
        source,
    })
}
