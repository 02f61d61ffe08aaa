//! The copy-in of a healthy database, without a moment in which another
//! writer could slip in unnoticed (issue 9: "no window without a lock").
//!
//! The backup API takes the destination's write lock on its first step and
//! holds it across steps until the copy is done (backup.c: the destination
//! transaction is begun with `sqlite3BtreeBeginTrans(pDest, 2)` once and
//! committed at SQLITE_DONE; in rollback-journal mode that is EXCLUSIVE, in
//! WAL mode the writer lock), and dropping the backup object before then
//! rolls the destination back. So: a first step that copies nothing takes the
//! lock; under it the database is compared with what the preview saw, the
//! before-restore copy is taken, and only then are the pages stepped in, in
//! chunks, stopping on Ctrl-C.

use std::path::Path;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::Record;
use crate::backup::{self, fingerprint, BackupInfo, Fingerprint, Held, Problem, Since};
use crate::db::busy;
use crate::error::{Error, Result};
use crate::history::StoredRun;
use crate::migration::Version;
use crate::observe::{Event, Interrupt, Observer};
use crate::settings::Settings;

/// Pages per step of the copy-in: a few MiB between progress events and
/// Ctrl-C checks.
const STEP_PAGES: i32 = 1024;

pub(super) struct Job<'a> {
    pub settings: &'a Settings,
    pub backup: &'a Path,
    /// The database as the preview saw it.
    pub expect: Option<&'a Fingerprint>,
    pub accept_new_writes: bool,
    pub newest_version: Option<&'a Version>,
    pub later_runs: &'a [StoredRun],
    pub record: &'a Record,
}

pub(super) struct Done {
    pub safety: BackupInfo,
}

pub(super) fn copy_in(
    job: &Job<'_>,
    obs: &mut dyn Observer,
    interrupt: &Interrupt,
) -> Result<Done> {
    let database = &job.settings.database;
    let sqlite = |e| Error::from_sqlite(database, e);
    let mut dst = Connection::open_with_flags(
        database,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite)?;
    busy::install(&dst, job.settings.busy_timeout).map_err(sqlite)?;
    let journal_mode: String = dst
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .map_err(sqlite)?;
    let src = source(job.backup, &dst).map_err(|p| fail(job.backup, p))?;
    let page_size: u64 = src
        .query_row("PRAGMA page_size", [], |r| r.get::<_, i64>(0))
        .map(|n| n.max(0) as u64)
        .unwrap_or(4096);
    let bytes = std::fs::metadata(job.backup).map(|m| m.len()).unwrap_or(0);
    let safety = {
        let copy = Backup::new(&src, &mut dst).map_err(sqlite)?;
        lock(&copy, database)?;
        // Under the lock: nobody can commit now. Did anyone since the preview?
        check_unchanged(job, database)?;
        let held = if journal_mode.eq_ignore_ascii_case("wal") {
            Held::Writer
        } else {
            Held::Exclusive
        };
        let request = backup::Request {
            held,
            protect: vec![job.backup.to_path_buf()],
            ..backup::Request::new(job.settings, backup::RESTORE_SAFETY, job.newest_version)
        };
        // Any error from here drops `copy`, which rolls the destination back.
        let safety = backup::take(&request, obs)?;
        obs.event(Event::RestoreStarted {
            backup: job.backup,
            bytes,
        });
        step_all(&copy, job.backup, page_size, obs, interrupt)?;
        safety
    };
    obs.event(Event::RestoreProgress {
        done: bytes,
        total: bytes,
    });
    // The run log: what happened after the backup, then this restore. Best
    // effort: the restore itself is done.
    let extra =
        serde_json::json!({ "safety_backup": safety.path, "carried_runs": job.later_runs.len() });
    let _ = super::write_log(&dst, job.later_runs, job.record, extra);
    Ok(Done { safety })
}

/// The backup file, opened without locks or journals. A backup of an empty
/// (zero-page) database would make the first step finish the whole copy, so
/// it is replaced by an empty one-page database of the destination's page size.
fn source(backup_path: &Path, dst: &Connection) -> Result<Connection, Problem> {
    let src = backup::open_backup(backup_path)?;
    let pages: i64 = src
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .map_err(Problem::Sqlite)?;
    if pages > 0 {
        return Ok(src);
    }
    let page_size: i64 = dst
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .map_err(Problem::Sqlite)?;
    let empty = Connection::open_in_memory().map_err(Problem::Sqlite)?;
    empty
        .execute_batch(&format!(
            "PRAGMA page_size = {page_size}; CREATE TABLE t (x); DROP TABLE t;"
        ))
        .map_err(Problem::Sqlite)?;
    Ok(empty)
}

/// A step of no pages: takes the destination's write lock (waiting as the
/// busy handler decides) and copies nothing.
fn lock(copy: &Backup<'_, '_>, database: &Path) -> Result<()> {
    match copy.step(0) {
        Ok(StepResult::More) => Ok(()),
        Ok(StepResult::Busy | StepResult::Locked) => Err(Error::Locked {
            path: database.to_path_buf(),
        }),
        Ok(other) => Err(Error::Database {
            path: database.to_path_buf(),
            source: rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_INTERNAL),
                Some(format!("the restore's first step ended with {other:?}")),
            ),
        }),
        Err(e) => Err(Error::from_sqlite(database, e)),
    }
}

/// Compares the locked database with what the preview saw: a commit in
/// between is refused unless the caller accepts it. A preview that could not
/// read the file's state already said it cannot tell; there is nothing to
/// compare then.
fn check_unchanged(job: &Job<'_>, database: &Path) -> Result<()> {
    let Some(then) = job.expect.filter(|_| !job.accept_new_writes) else {
        return Ok(());
    };
    let since = match fingerprint::read(database) {
        Ok(now) => fingerprint::since(then, &now),
        Err(_) => Since::CannotTell {
            why: backup::Unknown::Unreadable,
        },
    };
    if since.maybe_written() {
        return Err(Error::WrittenMeanwhile {
            path: database.to_path_buf(),
            since,
        });
    }
    Ok(())
}

/// Steps every page in, in chunks; Ctrl-C between chunks returns (and the
/// caller's drop of the backup object rolls the destination back).
fn step_all(
    copy: &Backup<'_, '_>,
    backup_path: &Path,
    page_size: u64,
    obs: &mut dyn Observer,
    interrupt: &Interrupt,
) -> Result<()> {
    loop {
        interrupt.check()?;
        match copy
            .step(STEP_PAGES)
            .map_err(|e| fail(backup_path, Problem::Sqlite(e)))?
        {
            StepResult::Done => return Ok(()),
            StepResult::More => {}
            other => {
                // The lock is held and the source is immutable: nothing can
                // be busy here.
                return Err(fail(
                    backup_path,
                    Problem::Sqlite(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                        Some(format!("restore step: {other:?}")),
                    )),
                ));
            }
        }
        let p = copy.progress();
        let page = |n: i32| n.max(0) as u64;
        let total = page(p.pagecount);
        obs.event(Event::RestoreProgress {
            done: (total - page(p.remaining)) * page_size,
            total: total * page_size,
        });
    }
}

fn fail(backup: &Path, problem: Problem) -> Error {
    super::restore_error(backup, problem)
}
