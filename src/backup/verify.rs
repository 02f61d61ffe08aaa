//! Checking backups: SHA-256 against the manifest and `quick_check`, read in
//! parallel so a file is read once; listing each backup with what its check found.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use sha2::{Digest, Sha256};

use super::copy::interrupted_or;
use super::manifest::{self, Manifest};
use super::stream::{read_full, CHUNK};
use super::{list, Listed, Problem};
use crate::checksum::hex;
use crate::observe::{Check, Event, Interrupt, Observer};

/// Hashes `path` and runs quick_check on it at the same time.
pub fn parallel_verify(
    path: &Path,
    extensions: &[PathBuf],
    interrupt: &Interrupt,
) -> Result<(String, u64), Problem> {
    let (hashed, checked) = hash_and_check(path, extensions, interrupt);
    let hashed = hashed?;
    checked?;
    Ok(hashed)
}

/// Both results, so a caller can tell a damaged file (hash differs) from one
/// that was damaged before it was hashed, without reading it twice.
fn hash_and_check(
    path: &Path,
    extensions: &[PathBuf],
    interrupt: &Interrupt,
) -> (Result<(String, u64), Problem>, Result<(), Problem>) {
    std::thread::scope(|scope| {
        let check = scope.spawn(|| {
            let conn = open_backup(path)?;
            super::copy::load_extensions(&conn, extensions)?;
            interrupt.stop_on(&conn);
            quick_check(&conn, path).map_err(|p| interrupted_or(p, interrupt))
        });
        let hashed = hash_file(path, interrupt);
        let checked = check.join().unwrap_or_else(|_| {
            Err(Problem::Check {
                path: path.to_path_buf(),
                detail: "quick_check thread failed".into(),
            })
        });
        (hashed, checked)
    })
}

/// SHA-256 and size of a file, read in constant memory; stops on Ctrl-C.
pub fn hash_file(path: &Path, interrupt: &Interrupt) -> Result<(String, u64), Problem> {
    let io = |source| Problem::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = File::open(path).map_err(io)?;
    let mut h = Sha256::new();
    let mut buf = vec![0; CHUNK];
    let mut size = 0;
    loop {
        if interrupt.is_set() {
            return Err(Problem::Interrupted);
        }
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
/// beside it (`immutable=1`: nothing else changes a finished backup), through
/// the checking VFS (`mapped`).
pub fn open_backup(path: &Path) -> Result<Connection, Problem> {
    let abs = fs::canonicalize(path).map_err(|source| Problem::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let uri = format!("file:{}?immutable=1", uri_path(&abs));
    // Read through the checking VFS: quick_check at memory-map speed.
    super::mapped::open(
        uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(Problem::Sqlite)
}

/// The path part of a `file:` URI: `%`, `?` and `#` (and every byte that is
/// not printable ASCII) percent-encoded, as SQLite's URI parser expects.
fn uri_path(path: &Path) -> String {
    use percent_encoding::{percent_encode, AsciiSet, CONTROLS};
    const URI: &AsciiSet = &CONTROLS.add(b'%').add(b'?').add(b'#').add(b' ');
    percent_encode(path_bytes(path).as_ref(), URI).to_string()
}

#[cfg(unix)]
fn path_bytes(path: &Path) -> std::borrow::Cow<'_, [u8]> {
    use std::os::unix::ffi::OsStrExt;
    std::borrow::Cow::Borrowed(path.as_os_str().as_bytes())
}

/// Elsewhere paths are not bytes; SQLite reads URIs as UTF-8.
#[cfg(not(unix))]
fn path_bytes(path: &Path) -> std::borrow::Cow<'_, [u8]> {
    match path.to_string_lossy() {
        std::borrow::Cow::Borrowed(s) => std::borrow::Cow::Borrowed(s.as_bytes()),
        std::borrow::Cow::Owned(s) => std::borrow::Cow::Owned(s.into_bytes()),
    }
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

/// Checks a backup against its manifest (SHA-256) and with quick_check, on a
/// connection with the configured `extensions` loaded.
pub fn verify(
    path: &Path,
    extensions: &[PathBuf],
    interrupt: &Interrupt,
) -> Result<Manifest, Problem> {
    if !path.is_file() {
        return Err(Problem::NotFound {
            path: path.to_path_buf(),
        });
    }
    let manifest = read_manifest(path)?;
    let (hashed, checked) = hash_and_check(path, extensions, interrupt);
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

/// What checking a listed backup against its manifest found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Intact {
    Yes,
    Damaged,
    NoManifest,
    Unreadable(String),
}

/// The backups of `database`, newest first, each hashed against its manifest:
/// a full read per backup, but that is the point of listing them before a
/// restore. None when Ctrl-C stopped the hashing. Temporaries a killed
/// backstop left in the folder are removed first (SPEC "Backups").
pub fn list_checked(
    folder: &Path,
    database: &Path,
    obs: &mut dyn Observer,
    interrupt: &Interrupt,
) -> std::io::Result<Option<Vec<(Listed, Intact)>>> {
    for path in super::sweep(folder, None) {
        obs.event(Event::TemporaryRemoved { path: &path });
    }
    let listed = list(folder, database)?;
    obs.event(Event::CheckStarted {
        check: Check::Backups,
        path: folder,
        bytes: listed
            .iter()
            .filter_map(|b| b.manifest.as_ref().map(|m| m.size))
            .sum(),
    });
    let mut out = Vec::new();
    for b in listed {
        let intact = match &b.manifest {
            None => Intact::NoManifest,
            Some(m) => match hash_file(&b.path, interrupt) {
                Ok((sha, _)) if sha == m.sha256 => Intact::Yes,
                Ok(_) => Intact::Damaged,
                Err(Problem::Interrupted) => return Ok(None),
                Err(e) => Intact::Unreadable(e.to_string()),
            },
        };
        out.push((b, intact));
    }
    Ok(Some(out))
}
