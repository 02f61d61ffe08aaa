//! Verified backups (SPEC "Backups"): consistent beside a running app and in WAL
//! mode, written under a temporary name, fsynced, checked with `quick_check`,
//! hashed, and only then given their final name beside a manifest.
//!
//! Rollback-journal databases are copied byte for byte while a read transaction
//! holds SQLite's SHARED lock (no writer can change the file meanwhile), hashing
//! on a second thread and running `quick_check` on the same locked file in
//! parallel, so the data is read once at copy speed. WAL databases go through
//! SQLite's online backup API, since part of their content lives in the `-wal`.

mod file;
mod manifest;
mod retention;

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags};
use sha2::{Digest, Sha256};

pub use manifest::{file_name, parse_name, slug, stem as manifest_stem, Manifest, TIMESTAMP};
pub use retention::{list, prune, Listed};

use crate::checksum::hex;
use crate::error::{Error, Result};
use crate::migration::Version;
use crate::observe::{Event, Observer};
use crate::settings::Settings;

/// Why a backup or a restore could not be completed.
#[derive(Debug)]
pub enum Problem {
    Folder {
        path: PathBuf,
        source: io::Error,
    },
    NoSpace {
        folder: PathBuf,
        needed: u64,
        available: u64,
    },
    Io {
        path: PathBuf,
        source: io::Error,
    },
    Sqlite(rusqlite::Error),
    Check {
        path: PathBuf,
        detail: String,
    },
    HashMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    Manifest {
        path: PathBuf,
        detail: String,
    },
    NotFound {
        path: PathBuf,
    },
    Interrupted,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Folder { path, source } => {
                write!(f, "backups folder {} is not usable: {source}", path.display())
            }
            Problem::NoSpace { folder, needed, available } => write!(
                f,
                "not enough free space in {}: {} needed, {} available",
                folder.display(),
                human(*needed),
                human(*available)
            ),
            Problem::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Problem::Sqlite(e) => write!(f, "{e}"),
            Problem::Check { path, detail } => {
                write!(f, "{} fails quick_check: {detail}", path.display())
            }
            Problem::HashMismatch { path, expected, actual } => write!(
                f,
                "{} does not match its manifest (SHA-256 {actual}, manifest says {expected}): the file is damaged",
                path.display()
            ),
            Problem::Manifest { path, detail } => write!(f, "manifest {}: {detail}", path.display()),
            Problem::NotFound { path } => write!(f, "{} does not exist", path.display()),
            Problem::Interrupted => f.write_str("interrupted"),
        }
    }
}

/// A backup with its final name and manifest.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackupInfo {
    pub path: PathBuf,
    pub manifest: Manifest,
}

/// What to back up and where.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub database: &'a Path,
    pub folder: &'a Path,
    /// `before-up`, `manual`, a label's slug…: a word without dots.
    pub reason: &'a str,
    pub keep: usize,
    pub newest_version: Option<Version>,
    pub busy: Duration,
}

impl<'a> Request<'a> {
    /// A backup of the configured database into the configured folder.
    pub fn new(settings: &'a Settings, reason: &'a str, newest_version: Option<Version>) -> Self {
        Request {
            database: &settings.database,
            folder: &settings.backups,
            reason,
            keep: settings.keep,
            newest_version,
            busy: settings.busy_timeout,
        }
    }
}

/// Takes a verified backup and prunes old ones. On error no file is left under
/// a final name, and the database was only read.
pub fn take(req: &Request<'_>, obs: &mut dyn Observer) -> Result<BackupInfo> {
    let fail = |problem| Error::Backup {
        database: req.database.to_path_buf(),
        problem,
    };
    fs::create_dir_all(req.folder).map_err(|source| {
        fail(Problem::Folder {
            path: req.folder.to_path_buf(),
            source,
        })
    })?;
    let size = fs::metadata(req.database).map(|m| m.len()).unwrap_or(0)
        + fs::metadata(wal_path(req.database))
            .map(|m| m.len())
            .unwrap_or(0);
    check_space(req.folder, size).map_err(fail)?;

    let stem = manifest::stem(req.database);
    let at = Utc::now();
    let name = manifest::file_name(&stem, at, req.reason);
    let tmp = req
        .folder
        .join(format!(".{name}.{}.tmp", std::process::id()));
    obs.event(Event::BackupStarted {
        database: req.database,
        bytes: size,
    });
    let copied = copy_verified(req.database, &tmp, req.busy, obs);
    let copied = match copied {
        Ok(c) => c,
        Err(p) => {
            let _ = fs::remove_file(&tmp);
            return Err(fail(p));
        }
    };
    let manifest = Manifest {
        source: fs::canonicalize(req.database).unwrap_or_else(|_| req.database.to_path_buf()),
        created_at: at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        reason: req.reason.to_owned(),
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        newest_version: req.newest_version.map(|v| v.0),
        size: copied.size,
        sha256: copied.sha256,
        journal_mode: copied.journal_mode,
        change_counter: copied.change_counter,
    };
    let path = match publish(req.folder, &stem, at, req.reason, &tmp, &manifest) {
        Ok(p) => p,
        Err(p) => {
            let _ = fs::remove_file(&tmp);
            return Err(fail(p));
        }
    };
    let info = BackupInfo { path, manifest };
    obs.event(Event::BackupDone { backup: &info });
    // Retention never fails the backup that was just taken.
    for pruned in prune(req.folder, req.database, req.keep, &info.path).unwrap_or_default() {
        obs.event(Event::BackupPruned { path: &pruned });
    }
    Ok(info)
}

struct Copied {
    size: u64,
    sha256: String,
    journal_mode: String,
    change_counter: Option<u32>,
}

fn copy_verified(
    db: &Path,
    tmp: &Path,
    busy: Duration,
    obs: &mut dyn Observer,
) -> Result<Copied, Problem> {
    let src = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(Problem::Sqlite)?;
    src.busy_timeout(busy).map_err(Problem::Sqlite)?;
    let journal_mode: String = src
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .map_err(Problem::Sqlite)?;
    if journal_mode.eq_ignore_ascii_case("wal") {
        backup_api(&src, tmp, obs)?;
        let (sha256, size) = parallel_verify(tmp)?;
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
        let result = copy_locked(src, db, tmp, obs);
        result.map(|(sha256, size, change_counter)| Copied {
            size,
            sha256,
            journal_mode,
            change_counter,
        })
    }
}

const CHUNK: usize = 4 << 20;

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
            let mut input = file::DbFile::open(db)?;
            let total = input.size;
            let mut out = create_private(tmp).map_err(io(tmp))?;
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

pub(crate) fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
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
fn backup_api(src: &Connection, tmp: &Path, obs: &mut dyn Observer) -> Result<(), Problem> {
    create_private(tmp).map_err(|source| Problem::Io {
        path: tmp.to_path_buf(),
        source,
    })?;
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
    File::open(tmp)
        .and_then(|f| f.sync_all())
        .map_err(|source| Problem::Io {
            path: tmp.to_path_buf(),
            source,
        })
}

/// Hashes `path` and runs quick_check on it at the same time.
pub fn parallel_verify(path: &Path) -> Result<(String, u64), Problem> {
    let (hashed, checked) = hash_and_check(path);
    checked?;
    hashed
}

/// Both results, so a caller can tell a damaged file (hash differs) from one
/// that was damaged before it was hashed, without reading it twice.
fn hash_and_check(path: &Path) -> (Result<(String, u64), Problem>, Result<(), Problem>) {
    std::thread::scope(|scope| {
        let check = scope.spawn(|| {
            let conn = open_backup(path)?;
            quick_check(&conn, path)
        });
        let hashed = hash_file(path);
        let checked = check.join().unwrap_or_else(|_| {
            Err(Problem::Check {
                path: path.to_path_buf(),
                detail: "quick_check thread failed".into(),
            })
        });
        (hashed, checked)
    })
}

/// SHA-256 and size of a file, read in constant memory.
pub fn hash_file(path: &Path) -> Result<(String, u64), Problem> {
    let io = |source| Problem::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = File::open(path).map_err(io)?;
    let mut h = Sha256::new();
    let mut buf = vec![0; CHUNK];
    let mut size = 0;
    loop {
        let n = read_full(&mut f, &mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex(&h.finalize()), size))
}

/// Opens a backup file without locks or journals, so reading it never writes
/// beside it (`immutable=1`: nothing else changes a finished backup).
pub fn open_backup(path: &Path) -> Result<Connection, Problem> {
    let abs = fs::canonicalize(path).map_err(|source| Problem::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let uri = format!("file:{}?immutable=1", uri_escape(&abs.to_string_lossy()));
    Connection::open_with_flags(
        uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(Problem::Sqlite)
}

fn uri_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'%' | b'?' | b'#' => out.push_str(&format!("%{b:02X}")),
            _ => out.push(b as char),
        }
    }
    out
}

pub fn quick_check(conn: &Connection, path: &Path) -> Result<(), Problem> {
    let mut stmt = conn
        .prepare("PRAGMA quick_check")
        .map_err(|e| Problem::Check {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| Problem::Check {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
    if rows.len() == 1 && rows[0] == "ok" {
        Ok(())
    } else {
        Err(Problem::Check {
            path: path.to_path_buf(),
            detail: rows.into_iter().take(3).collect::<Vec<_>>().join("; "),
        })
    }
}

/// Writes the manifest, then gives the verified copy its final name without
/// ever replacing an existing file. Directory fsynced so the names survive a crash.
fn publish(
    folder: &Path,
    stem: &str,
    mut at: DateTime<Utc>,
    reason: &str,
    tmp: &Path,
    manifest: &Manifest,
) -> Result<PathBuf, Problem> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Problem::Io { path, source }
    };
    for _ in 0..100 {
        let path = folder.join(manifest::file_name(stem, at, reason));
        let mpath = manifest::path_for(&path);
        if path.exists() || mpath.exists() {
            at += chrono::Duration::milliseconds(1);
            continue;
        }
        let mut m = manifest.clone();
        m.created_at = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        write_atomically(&mpath, &serde_json::to_vec_pretty(&m).unwrap_or_default())
            .map_err(io(&mpath))?;
        // hard_link fails if the name exists: no backup is ever overwritten.
        match fs::hard_link(tmp, &path) {
            Ok(()) => {
                let _ = fs::remove_file(tmp);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let _ = fs::remove_file(&mpath);
                at += chrono::Duration::milliseconds(1);
                continue;
            }
            Err(_) => fs::rename(tmp, &path).map_err(io(&path))?,
        }
        sync_dir(folder);
        return Ok(path);
    }
    Err(Problem::Io {
        path: tmp.to_path_buf(),
        source: io::Error::new(io::ErrorKind::AlreadyExists, "no free backup name"),
    })
}

pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = create_private(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Backups hold the user's data: readable by their owner only.
pub(crate) fn create_private(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

pub(crate) fn wal_path(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push("-wal");
    PathBuf::from(s)
}

fn check_space(folder: &Path, needed: u64) -> Result<(), Problem> {
    let available = free_space(folder).map_err(|source| Problem::Folder {
        path: folder.to_path_buf(),
        source,
    })?;
    // A little headroom for the manifest and the filesystem's own bookkeeping.
    let needed = needed + needed / 100 + 64 * 1024;
    if available < needed {
        return Err(Problem::NoSpace {
            folder: folder.to_path_buf(),
            needed,
            available,
        });
    }
    Ok(())
}

pub fn free_space(folder: &Path) -> io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(folder.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: statvfs fills the zeroed struct; `c` is a valid C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// Checks a backup against its manifest (SHA-256) and with quick_check.
pub fn verify(path: &Path) -> Result<Manifest, Problem> {
    if !path.is_file() {
        return Err(Problem::NotFound {
            path: path.to_path_buf(),
        });
    }
    let manifest = read_manifest(path)?;
    let (hashed, checked) = hash_and_check(path);
    let (sha, _) = hashed?;
    // A damaged file fails both; the hash mismatch is the more precise thing to say.
    if sha != manifest.sha256 {
        return Err(Problem::HashMismatch {
            path: path.to_path_buf(),
            expected: manifest.sha256,
            actual: sha,
        });
    }
    checked?;
    Ok(manifest)
}

pub fn read_manifest(backup: &Path) -> Result<Manifest, Problem> {
    let mpath = manifest::path_for(backup);
    let text = fs::read_to_string(&mpath).map_err(|e| Problem::Manifest {
        path: mpath.clone(),
        detail: e.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|e| Problem::Manifest {
        path: mpath,
        detail: e.to_string(),
    })
}

/// SQLite's file change counter from the header of a rollback-journal database.
pub fn change_counter(db: &Path) -> Option<u32> {
    let mut f = File::open(db).ok()?;
    let mut header = [0u8; 28];
    f.read_exact(&mut header).ok()?;
    Some(u32::from_be_bytes([
        header[24], header[25], header[26], header[27],
    ]))
}
