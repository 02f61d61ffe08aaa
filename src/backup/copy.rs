//! Copying the live database into a temporary file, consistently beside other
//! connections: a byte copy under SQLite's SHARED lock for rollback-journal
//! databases, SQLite's online backup API for WAL ones (part of their content
//! lives in the `-wal`). Verifying and publishing the copy are `verify` and
//! `publish`'s.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use sha2::{Digest, Sha256};

use super::file::DbFile;
use super::fingerprint::{self, Fingerprint};
use super::verify::{open_backup, parallel_verify, quick_check};
use super::{Held, Problem};
use crate::checksum::hex;
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
    let src = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(Problem::Sqlite)?;
    crate::db::busy::install(&src, busy).map_err(Problem::Sqlite)?;
    load_extensions(&src, to.extensions)?;
    // The state a WAL copy records must be the one it copies, never a newer
    // one: no commit may land between reading the log and taking the snapshot.
    let gate = match held {
        Held::Nothing if fingerprint::is_wal(db) => Gate::close(db),
        // Rollback mode: the counter is read from the copied bytes themselves.
        _ => Gate::NotNeeded,
    };
    let before = fingerprint::read(db).ok();
    // One read transaction for the whole copy: a consistent snapshot, and
    // writers cannot change what it reads (rollback mode: SHARED keeps them
    // from committing; WAL: the snapshot stays while they append).
    src.execute_batch("BEGIN").map_err(Problem::Sqlite)?;
    src.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
        .map_err(Problem::Sqlite)?;
    let exact = gate.exact();
    drop(gate);
    // Read under the lock: the mode cannot switch between this and the copy.
    let journal_mode: String = src
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .map_err(Problem::Sqlite)?;
    if journal_mode.eq_ignore_ascii_case("wal") {
        backup_api(&src, to, obs)?;
        drop(src);
        let (sha256, size) = parallel_verify(to.tmp, to.extensions, to.interrupt)?;
        Ok(Copied {
            size,
            sha256,
            journal_mode,
            change_counter: None,
            fingerprint: if exact {
                before
            } else {
                before.map(fingerprint::one_commit_back)
            },
        })
    } else {
        // (A hot journal left by a crash was rolled back when the command
        // opened the database.)
        let mtime = std::fs::metadata(db).ok();
        let (sha256, size, counter) = copy_locked(src, db, to, obs)?;
        Ok(Copied {
            size,
            sha256,
            journal_mode,
            change_counter: counter,
            fingerprint: counter.map(|c| rollback_fingerprint(c, size, mtime)),
        })
    }
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

/// Keeps other connections from committing while a WAL copy records the
/// log and takes its snapshot. A writer appends a commit's frames to the
/// `-wal` before it publishes them in the wal-index (wal.c), so without the
/// write lock the log can hold one commit the snapshot does not: a backup
/// that said "this is the state" while missing it would let a later restore
/// undo that commit in silence.
enum Gate {
    /// The caller holds the write lock, or the database is not in WAL mode.
    NotNeeded,
    /// This connection holds it until dropped (rolled back: it writes nothing).
    Closed(Connection),
    /// Not possible (read-only file, a long transaction of the app's).
    Open,
}

impl Gate {
    fn close(db: &Path) -> Gate {
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

    fn exact(&self) -> bool {
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
    let (sha256, size, counter) = copy_bytes(db, to, obs)?;
    let conn = open_backup(to.tmp)?;
    load_extensions(&conn, to.extensions)?;
    to.interrupt.stop_on(&conn);
    quick_check(&conn, to.tmp).map_err(|p| interrupted_or(p, to.interrupt))?;
    Ok(Copied {
        size,
        sha256,
        journal_mode: "delete".into(),
        change_counter: counter,
        fingerprint: counter.map(|c| rollback_fingerprint(c, size, mtime)),
    })
}

/// A check stopped by Ctrl-C fails as an interruption, not as damage.
pub(super) fn interrupted_or(p: Problem, interrupt: &Interrupt) -> Problem {
    if interrupt.is_set() {
        Problem::Interrupted
    } else {
        p
    }
}

pub(super) const CHUNK: usize = 4 << 20;

/// A chunk of bytes lent to the hashing thread. The lender waits for the
/// thread's acknowledgement before the bytes are released or reused.
struct Lent(*const u8, usize);

// SAFETY: the bytes are only read, and the lender keeps them alive and
// unchanged until the borrower acknowledges (see `copy_bytes`).
unsafe impl Send for Lent {}

/// Copies `db` while `locked` holds the SHARED lock, with quick_check on the
/// locked connection on a thread of its own, so the data is read once.
fn copy_locked(
    locked: Connection,
    db: &Path,
    to: &Target<'_>,
    obs: &mut dyn Observer,
) -> Result<(String, u64, Option<u32>), Problem> {
    to.interrupt.stop_on(&locked);
    std::thread::scope(|scope| {
        // The connection comes back with the result: the lock must outlive the copy.
        let check = scope.spawn(move || (quick_check(&locked, db), locked));
        let copied = copy_bytes(db, to, obs);
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

/// Copies the bytes of `db` to the temporary file: chunks written straight
/// from SQLite's memory map of the file where it has one, SHA-256 of the same
/// chunks on a second thread. Returns the hash, the size and the header's
/// change counter. Stops between chunks on Ctrl-C.
fn copy_bytes(
    db: &Path,
    to: &Target<'_>,
    obs: &mut dyn Observer,
) -> Result<(String, u64, Option<u32>), Problem> {
    let mut out = to.out;
    std::thread::scope(|scope| {
        let (lend, borrowed) = mpsc::sync_channel::<Lent>(0);
        let (ack, acked) = mpsc::sync_channel::<()>(1);
        let hasher = scope.spawn(move || {
            let mut h = Sha256::new();
            for Lent(p, n) in borrowed {
                // SAFETY: see `Lent`: valid and unchanged until the ack below.
                h.update(unsafe { std::slice::from_raw_parts(p, n) });
                if ack.send(()).is_err() {
                    break;
                }
            }
            hex(&h.finalize())
        });
        let copy = (|| -> Result<(u64, Option<u32>), Problem> {
            let io = |source| Problem::Io {
                path: to.tmp.to_path_buf(),
                source,
            };
            // Not `File::open(db)`: closing our own descriptor of the database
            // would drop the locks this process holds on it (see `DbFile`).
            let mut input = DbFile::open(db)?;
            let total = input.size;
            let mut counter = None;
            let mut buf = Vec::new();
            let mut done = 0u64;
            loop {
                if to.interrupt.is_set() {
                    return Err(Problem::Interrupted);
                }
                let n = input.next_chunk(CHUNK, &mut buf, |bytes| {
                    if done == 0 && bytes.len() >= 28 {
                        counter = Some(u32::from_be_bytes([
                            bytes[24], bytes[25], bytes[26], bytes[27],
                        ]));
                    }
                    let lent = lend.send(Lent(bytes.as_ptr(), bytes.len())).is_ok();
                    let written = out.write_all(bytes);
                    // The bytes go away when this returns: wait for the hash.
                    if lent && acked.recv().is_err() {
                        return Err(io::Error::other("the hashing thread stopped"));
                    }
                    written
                });
                let n = n.map_err(io)?;
                if n == 0 {
                    break;
                }
                done += n as u64;
                obs.event(Event::BackupProgress { done, total });
            }
            out.sync_all().map_err(io)?;
            // An empty file is an empty database: counter 0.
            Ok((done, counter.or((done == 0).then_some(0))))
        })();
        drop(lend);
        let sha = hasher.join().map_err(|_| Problem::Check {
            path: to.tmp.to_path_buf(),
            detail: "hashing thread failed".into(),
        })?;
        let (size, counter) = copy?;
        Ok((sha, size, counter))
    })
}

pub(super) fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
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
