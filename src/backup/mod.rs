//! Verified backups (SPEC "Backups"): consistent beside a running app and in WAL
//! mode, written under a temporary name, fsynced, checked with `quick_check`,
//! hashed, and only then given their final name beside a manifest.
//!
//! The data is read once, at copy speed (issue 14): the file is copied byte
//! for byte while a read transaction keeps it still (`copy`, `stream`), hashed
//! on a second thread, and `quick_check` runs on that same locked connection
//! on a third, through a memory map that keeps resident memory flat
//! (`mapped`). Rollback-journal databases are always copied so; WAL ones when
//! a checkpoint leaves the whole snapshot in the main file (`wal`), else
//! through SQLite's online backup API. Each manifest records the file's
//! `fingerprint`, so `restore` can later say whether the database was written
//! after the backup.

mod copy;
mod file;
pub mod fingerprint;
mod folder;
mod manifest;
mod map;
mod mapped;
mod os_copy;
mod publish;
mod retention;
mod space;
mod stream;
mod temporary;
mod verify;
mod wal;

#[cfg(test)]
mod tests;

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;

pub use fingerprint::{Fingerprint, Since, Unknown};
pub use folder::{check_existing as check_folder, prepare as prepare_folder, Concern};
pub use manifest::{slug, stem as manifest_stem, Manifest, TIMESTAMP};
pub(crate) use publish::sync_dir;
pub use retention::{latest, list, prune, Listed, RESTORE_SAFETY};
pub use temporary::InUse;
pub(crate) use temporary::{sweep, temporary, temporary_with_mode};
pub use verify::{list_checked, open_backup, quick_check, read_manifest, verify, Intact};

use crate::error::{Error, Result};
use crate::migration::Version;
use crate::observe::{Event, Interrupt, Observer};
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
    /// The backups folder can be written by other users.
    FolderOpen {
        path: PathBuf,
        mode: u32,
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
            Problem::FolderOpen { path, mode } => write!(
                f,
                "backups folder {} can be written by other users (mode {mode:04o}): anyone \
                 could delete a backup there or plant one for `restore` to pick",
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
    /// What the caller already holds on the database.
    pub held: Held,
    /// Never pruned by this backup (besides the one it takes): the backup a
    /// restore is putting back.
    pub protect: Vec<PathBuf>,
}

/// A lock the caller holds on the database through another connection of
/// this process, which changes how the copy may read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Held {
    /// Nothing: the copy takes its own read lock, and in WAL mode briefly the
    /// write lock too, so the state it records is exactly the one it copies.
    #[default]
    Nothing,
    /// The write lock (`BEGIN IMMEDIATE`: `up`, `repair`…; restore's WAL
    /// copy-in): nobody else can commit, and readers still get in.
    Writer,
    /// EXCLUSIVE on a rollback-journal database (restore's copy-in): nobody,
    /// not even this process, can read through SQLite, and nobody can write.
    Exclusive,
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
            held: Held::Nothing,
            protect: Vec::new(),
        }
    }
}

/// `backstop backup [--label TEXT]`: a verified backup of the configured
/// database now, its reason the label's slug (or `manual`). Ctrl-C stops it
/// through the observer's interrupt.
pub fn manual(
    settings: &Settings,
    label: Option<&str>,
    obs: &mut dyn Observer,
) -> Result<BackupInfo> {
    let reason = match label.map(slug) {
        // backstop's own reasons: a label must not make a manual backup pass
        // for a pre-run one (kept by retention) or a before-restore copy
        // (skipped by `--latest`).
        Some(s) if !s.is_empty() && !retention::is_reserved(&s) => s,
        Some(_) => {
            return Err(Error::Setting {
                setting: "--label",
                value: label.unwrap_or("").into(),
                expected: "letters or digits, not one of backstop's own reasons \
                           (before-up, before-down, before-repair, before-baseline, \
                           before-adopt, before-restore)",
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
/// a final name, and the database was only read. Ctrl-C (the observer's
/// interrupt) stops it between chunks: `Error::Interrupted`.
pub fn take(req: &Request<'_>, obs: &mut dyn Observer) -> Result<BackupInfo> {
    let interrupt = obs.interrupt().cloned().unwrap_or_default();
    let notify = obs.notify();
    crate::db::busy::within(
        req.database,
        req.busy,
        &interrupt,
        notify,
        || match take_within(req, &interrupt, obs) {
            Err(Error::Backup {
                problem: Problem::Interrupted,
                ..
            }) => Err(Error::Interrupted),
            other => other,
        },
    )
}

fn take_within(
    req: &Request<'_>,
    interrupt: &Interrupt,
    obs: &mut dyn Observer,
) -> Result<BackupInfo> {
    let fail = |problem| Error::Backup {
        database: req.database.to_path_buf(),
        problem,
    };
    // Refused before anything is written: a manifest must record the path
    // losslessly (JSON strings are UTF-8), never an empty or lossy one.
    let source = fs::canonicalize(req.database).unwrap_or_else(|_| req.database.to_path_buf());
    if source.to_str().is_none() {
        return Err(fail(Problem::PathNotUtf8 { path: source }));
    }
    if let Some(Concern::GroupWritable { mode }) = folder::prepare(req.folder).map_err(fail)? {
        obs.event(Event::Warning {
            message: &format!(
                "backups folder {} can be written by its group (mode {mode:04o}); \
                 consider `chmod g-w {}`",
                req.folder.display(),
                req.folder.display()
            ),
        });
    }
    for path in sweep(req.folder, None) {
        obs.event(Event::TemporaryRemoved { path: &path });
    }
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
    let target = copy::Target {
        out: tmp.as_file(),
        tmp: tmp.path(),
        interrupt,
        extensions: req.extensions,
    };
    let copied =
        copy::copy_verified(req.database, &target, req.busy, req.held, obs).map_err(fail)?;
    interrupt.check()?;
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
        fingerprint: copied.fingerprint,
    };
    // The manifest is written and synced before the backup takes its name,
    // and the folder after: "verified" (BackupDone) only once both are durable.
    let path = publish::publish(req.folder, &stem, at, req.reason, tmp, &manifest).map_err(fail)?;
    let info = BackupInfo { path, manifest };
    obs.event(Event::BackupDone { backup: &info });
    // Retention never fails the backup that was just taken.
    let mut protect: Vec<&Path> = req.protect.iter().map(PathBuf::as_path).collect();
    protect.push(&info.path);
    for pruned in prune(req.folder, req.database, req.keep, &protect).unwrap_or_default() {
        obs.event(Event::BackupPruned { path: &pruned });
    }
    Ok(info)
}

pub(crate) fn wal_path(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push("-wal");
    PathBuf::from(s)
}

/// Sizes in error messages (the CLI formats its own with indicatif).
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}
