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
use super::verify::{parallel_verify, quick_check};
use super::Problem;
use crate::checksum::hex;
use crate::observe::{Event, Observer};

/// What the copy found out on the way.
pub(super) struct Copied {
    pub size: u64,
    pub sha256: String,
    pub journal_mode: String,
    pub change_counter: Option<u32>,
}

/// Copies `db` into `out` (the temporary file at `tmp`), hashed and checked.
pub(super) fn copy_verified(
    req: &super::Request<'_>,
    out: &File,
    tmp: &Path,
    obs: &mut dyn Observer,
) -> Result<Copied, Problem> {
    let db = req.database;
    let src = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(Problem::Sqlite)?;
    src.busy_timeout(req.busy).map_err(Problem::Sqlite)?;
    load_extensions(&src, req.extensions)?;
    let journal_mode: String = src
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .map_err(Problem::Sqlite)?;
    if journal_mode.eq_ignore_ascii_case("wal") {
        backup_api(&src, out, tmp, obs)?;
        let (sha256, size) = parallel_verify(tmp, req.extensions)?;
        Ok(Copied {
            size,
            sha256,
            journal_mode,
            change_counter: None,
        })
    } else {
        // The read transaction holds SHARED until the copy is done: writers can
        // prepare but not commit, so the file is stable. (A hot journal left by
        // a crash was rolled back when the command opened the database.)
        src.execute_batch("BEGIN").map_err(Problem::Sqlite)?;
        src.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
            .map_err(Problem::Sqlite)?;
        let result = copy_locked(src, db, out, tmp, obs);
        result.map(|(sha256, size, change_counter)| Copied {
            size,
            sha256,
            journal_mode,
            change_counter,
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

pub(super) const CHUNK: usize = 4 << 20;

/// A chunk of bytes lent to the hashing thread. The lender waits for the
/// thread's acknowledgement before the bytes are released or reused.
struct Lent(*const u8, usize);

// SAFETY: the bytes are only read, and the lender keeps them alive and
// unchanged until the borrower acknowledges (see `copy_locked`).
unsafe impl Send for Lent {}

/// Copies `db` to `tmp` while `locked` holds the SHARED lock. Three things run
/// at once: the copy (chunks written straight from SQLite's memory map of the
/// file where it has one), SHA-256 of the same chunks on a second thread, and
/// quick_check on the locked connection on a third, so the data is read once.
fn copy_locked(
    locked: Connection,
    db: &Path,
    mut out: &File,
    tmp: &Path,
    obs: &mut dyn Observer,
) -> Result<(String, u64, Option<u32>), Problem> {
    std::thread::scope(|scope| {
        // The connection comes back with the result: the lock must outlive the copy.
        let check = scope.spawn(move || (quick_check(&locked, db), locked));
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
            let io = |path: &Path| {
                let path = path.to_path_buf();
                move |source| Problem::Io { path, source }
            };
            // Not `File::open(db)`: closing our own descriptor of the database
            // would drop the locks this process holds on it (see `DbFile`).
            let mut input = DbFile::open(db)?;
            let total = input.size;
            let mut counter = None;
            let mut buf = Vec::new();
            let mut done = 0u64;
            loop {
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
                let n = n.map_err(io(tmp))?;
                if n == 0 {
                    break;
                }
                done += n as u64;
                obs.event(Event::BackupProgress { done, total });
            }
            out.sync_all().map_err(io(tmp))?;
            Ok((done, counter))
        })();
        drop(lend);
        let sha = hasher.join().map_err(|_| Problem::Check {
            path: tmp.to_path_buf(),
            detail: "hashing thread failed".into(),
        })?;
        let (checked, locked) = check.join().map_err(|_| Problem::Check {
            path: db.to_path_buf(),
            detail: "quick_check thread failed".into(),
        })?;
        drop(locked);
        let (size, counter) = copy?;
        checked?;
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

/// SQLite's online backup API: consistent with WAL content and other writers.
fn backup_api(
    src: &Connection,
    out: &File,
    tmp: &Path,
    obs: &mut dyn Observer,
) -> Result<(), Problem> {
    let mut dst = Connection::open(tmp).map_err(Problem::Sqlite)?;
    {
        let backup = rusqlite::backup::Backup::new(src, &mut dst).map_err(Problem::Sqlite)?;
        let page_size: i64 = src
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap_or(4096);
        loop {
            match backup.step(4096).map_err(Problem::Sqlite)? {
                rusqlite::backup::StepResult::Done => break,
                rusqlite::backup::StepResult::More => {}
                // Busy/Locked: another connection holds a lock; wait and retry.
                _ => std::thread::sleep(Duration::from_millis(20)),
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
    out.sync_all().map_err(|source| Problem::Io {
        path: tmp.to_path_buf(),
        source,
    })
}
