//! Verified backups (SPEC "Backups"): consistent beside a running app and in WAL
//! mode, written under a temporary name, fsynced, checked with `quick_check`,
//! hashed, and only then given their final name beside a manifest.
//!
//! Rollback-journal databases are copied byte for byte while a read transaction
//! holds SQLite's SHARED lock (no writer can change the file meanwhile), hashing
//! on a second thread and running `quick_check` on the same locked file in
//! parallel, so the data is read once at copy speed. WAL databases go through
//! SQLite's online backup API, since part of their content lives in the `-wal`.

mod copy;
mod file;
mod manifest;
mod publish;
mod retention;
mod space;
mod verify;

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;

pub use manifest::{slug, stem as manifest_stem, Manifest, TIMESTAMP};
pub(crate) use publish::{sync_dir, temporary};
pub use retention::{list, prune, Listed};
pub use verify::{list_checked, open_backup, quick_check, read_manifest, verify, Intact};

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
    /// Manifests are JSON: a path that is not UTF-8 cannot be recorded in one.
    PathNotUtf8 {
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
                mib(*needed),
                mib(*available)
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
            Problem::PathNotUtf8 { path } => write!(
                f,
                "the path {} is not valid UTF-8, so its manifest (JSON) could not record it; \
                 rename the file or its folder",
                path.display()
            ),
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
    /// As the migration files write it.
    pub newest_version: Option<String>,
    pub busy: Duration,
    /// Loaded on the connections that check the copy: `quick_check` evaluates
    /// CHECK constraints, which may call an extension's function (issue 11).
    pub extensions: &'a [PathBuf],
}

impl<'a> Request<'a> {
    /// A backup of the configured database into the configured folder.
    pub fn new(settings: &'a Settings, reason: &'a str, newest_version: Option<&Version>) -> Self {
        Request {
            database: &settings.database,
            folder: &settings.backups,
            reason,
            keep: settings.keep,
            newest_version: newest_version.map(ToString::to_string),
            busy: settings.busy_timeout,
            extensions: &settings.extensions,
        }
    }
}

/// `backstop backup [--label TEXT]`: a verified backup of the configured
/// database now, its reason the label's slug (or `manual`).
pub fn manual(
    settings: &Settings,
    label: Option<&str>,
    obs: &mut dyn Observer,
) -> Result<BackupInfo> {
    let reason = match label.map(slug) {
        Some(s) if !s.is_empty() => s,
        Some(_) => {
            return Err(Error::Setting {
                setting: "--label",
                value: label.unwrap_or("").into(),
                expected: "letters or digits",
            })
        }
        None => "manual".into(),
    };
    let path = &settings.database;
    let opened = crate::db::open_configured(settings, crate::db::Access::Read)?
        .ok_or_else(|| Error::NoDatabase { path: path.clone() })?;
    let layout = crate::project::layout_or_default(settings);
    let newest = crate::history::applied(&opened.conn, layout)
        .map_err(|e| Error::from_sqlite(path, e))?
        .into_iter()
        .map(|r| r.version)
        .max();
    drop(opened);
    take(&Request::new(settings, &reason, newest.as_ref()), obs)
}

/// Takes a verified backup and prunes old ones. On error no file is left under
/// a final name, and the database was only read.
pub fn take(req: &Request<'_>, obs: &mut dyn Observer) -> Result<BackupInfo> {
    let fail = |problem| Error::Backup {
        database: req.database.to_path_buf(),
        problem,
    };
    let source = fs::canonicalize(req.database).unwrap_or_else(|_| req.database.to_path_buf());
    if source.to_str().is_none() {
        return Err(fail(Problem::PathNotUtf8 { path: source }));
    }
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
    space::check_space(req.folder, size).map_err(fail)?;

    let stem = manifest::stem(req.database);
    let at = Utc::now();
    let name = manifest::file_name(&stem, at, req.reason);
    let io = |source| Problem::Folder {
        path: req.folder.to_path_buf(),
        source,
    };
    // Removed on every early return: a temporary is never left behind.
    let tmp = temporary(req.folder, &name).map_err(|e| fail(io(e)))?;
    obs.event(Event::BackupStarted {
        database: req.database,
        bytes: size,
    });
    let copied = copy::copy_verified(req, tmp.as_file(), tmp.path(), obs).map_err(fail)?;
    let manifest = Manifest {
        source,
        created_at: at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        reason: req.reason.to_owned(),
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        newest_version: req.newest_version.clone(),
        size: copied.size,
        sha256: copied.sha256,
        journal_mode: copied.journal_mode,
        change_counter: copied.change_counter,
    };
    let path = publish::publish(req.folder, &stem, at, req.reason, tmp, &manifest).map_err(fail)?;
    let info = BackupInfo { path, manifest };
    obs.event(Event::BackupDone { backup: &info });
    // Retention never fails the backup that was just taken.
    for pruned in prune(req.folder, req.database, req.keep, &info.path).unwrap_or_default() {
        obs.event(Event::BackupPruned { path: &pruned });
    }
    Ok(info)
}

pub(crate) fn wal_path(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push("-wal");
    PathBuf::from(s)
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

/// Sizes in error messages (the CLI formats its own with indicatif).
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}
