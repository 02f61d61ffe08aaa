//! Putting a backup back (SPEC "Restore"): check the backup first, say whether
//! the database was written after it, save what it replaces, then copy it in
//! with SQLite's backup API so open readers and WAL stay consistent, and carry
//! the run log across. `locked` does the copy-in under the database's write
//! lock; `emergency` is the path for a missing or damaged file.

mod emergency;
mod locked;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::backup::{self, fingerprint, BackupInfo, Fingerprint, InUse, Manifest, Problem, Since};
use crate::db::{self, busy};
use crate::error::{Error, Result};
use crate::history::{self, StoredRun};
use crate::migration::Version;
use crate::observe::{Interrupt, Observer};
use crate::settings::Settings;
use crate::source::Layout;

/// The state of the live database before a restore.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Current {
    Missing,
    Healthy {
        newest_version: Option<Version>,
        size: u64,
    },
    Damaged {
        detail: String,
    },
}

/// A checked backup and what it would replace, for the confirmation.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Preview {
    pub database: PathBuf,
    pub backup: PathBuf,
    pub manifest: Manifest,
    pub current: Current,
    /// Whether the database was written after the backup was taken (SPEC
    /// "Restore": it can tell in both journal modes; "cannot tell" is treated
    /// as written).
    pub written: Since,
    /// Runs recorded in the database after the backup: `up`, `down` and the
    /// like, which the restore carries into the restored database's log.
    pub later_runs: Vec<StoredRun>,
    /// The database as this preview saw it: the restore refuses to go on if
    /// it changed by the time the lock is held, unless told otherwise.
    #[serde(skip)]
    observed: Option<Fingerprint>,
    /// Keeps retention in every process away from the chosen backup.
    #[serde(skip)]
    _in_use: Option<Arc<InUse>>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RestoreReport {
    pub database: PathBuf,
    pub backup: PathBuf,
    /// The `before-restore` backup of what was replaced.
    pub safety: Option<BackupInfo>,
    /// Plain copies of a damaged database (and its -wal/-journal).
    pub damaged: Vec<PathBuf>,
    /// Runs recorded after the backup, now in the restored database's log.
    pub carried_runs: usize,
    /// What the preview could tell about writes after the backup.
    pub written: Since,
    pub duration_ms: u64,
}

/// How a restore treats what it finds under the lock.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions<'a> {
    /// Recorded in the run row (e.g. the error of the failed run being undone).
    pub note: Option<&'a str>,
    /// Go ahead even if another program wrote after the preview looked
    /// (`--yes`, `--force`): otherwise that is `Error::WrittenMeanwhile`.
    pub accept_new_writes: bool,
}

/// Puts the pre-run backup of a failed run back (SPEC `up` step 5), for the
/// failure prompt and the library's `Policy::Restore` alike. `seen` is the
/// run connection's data version the decision was made on: if another
/// program wrote since (the run's connection tells others' commits from the
/// run's own, which a file fingerprint cannot), nothing is restored
/// (`Error::WrittenMeanwhile`) unless `force`. From the preview on, the
/// restore itself checks under its lock that the file did not change.
pub(crate) fn undo_run(
    settings: &Settings,
    failure: &crate::apply::RunFailure,
    backup: &Path,
    force: bool,
    seen: Option<i64>,
    obs: &mut dyn Observer,
    interrupt: &Interrupt,
) -> Result<RestoreReport> {
    let p = preview(settings, backup, interrupt)?;
    if let (false, Some(at), Some(w)) = (force, seen, &failure.watch) {
        if w.version() != Some(at) {
            return Err(Error::WrittenMeanwhile {
                path: settings.database.clone(),
                since: backup::Since::Written { commits: None },
            });
        }
    }
    let note = failure.to_string();
    let opts = RestoreOptions {
        note: Some(&note),
        accept_new_writes: force,
    };
    run(settings, &p, &opts, obs, interrupt)
}

/// Verifies `backup` (SHA-256 against its manifest, quick_check), looks at the
/// live database and compares it with the backup's fingerprint. Changes
/// nothing. Ctrl-C stops it.
pub fn preview(settings: &Settings, backup_path: &Path, interrupt: &Interrupt) -> Result<Preview> {
    let database = settings.database.clone();
    busy::within(&database, settings.busy_timeout, interrupt, None, || {
        let in_use = InUse::mark(backup_path).ok().map(Arc::new);
        let manifest = backup::verify(backup_path, &settings.extensions, interrupt)
            .map_err(|problem| restore_error(backup_path, problem))?;
        let layout = crate::project::layout_or_default(settings);
        let (current, live_runs) = inspect_current(&database, settings, layout, interrupt)?;
        interrupt.check()?;
        let observed = match current {
            Current::Healthy { .. } => fingerprint::read(&database).ok(),
            _ => None,
        };
        let written = match (&current, recorded(&manifest), &observed) {
            (Current::Healthy { .. }, Some(then), Some(now)) => fingerprint::since(&then, now),
            (Current::Healthy { .. }, None, _) => Since::CannotTell {
                why: backup::Unknown::NotRecorded,
            },
            _ => Since::CannotTell {
                why: backup::Unknown::Unreadable,
            },
        };
        let later_runs = history::runs_after(live_runs, &backup_runs(backup_path));
        Ok(Preview {
            database: database.clone(),
            backup: backup_path.to_path_buf(),
            manifest,
            current,
            written,
            later_runs,
            observed,
            _in_use: in_use,
        })
    })
}

/// The fingerprint a manifest recorded; for manifests older than
/// fingerprints, the rollback-journal change counter they kept.
fn recorded(m: &Manifest) -> Option<Fingerprint> {
    m.fingerprint.clone().or_else(|| {
        m.change_counter.map(|c| Fingerprint {
            wal_mode: false,
            change_counter: c,
            size: m.size,
            mtime_ns: None,
            log: None,
        })
    })
}

fn restore_error(backup: &Path, problem: Problem) -> Error {
    match problem {
        Problem::Interrupted => Error::Interrupted,
        problem => Error::Restore {
            backup: backup.to_path_buf(),
            problem,
        },
    }
}

/// The run log inside a backup file (read-only, immutable).
fn backup_runs(backup_path: &Path) -> Vec<StoredRun> {
    backup::open_backup(backup_path)
        .ok()
        .and_then(|c| history::stored_runs(&c).ok())
        .unwrap_or_default()
}

/// What the live database holds, and its run log. `layout` reads its
/// versions; a restore must work even when the migrations folder does not, so
/// it is only a reading aid.
fn inspect_current(
    path: &Path,
    settings: &Settings,
    layout: Layout,
    interrupt: &Interrupt,
) -> Result<(Current, Vec<StoredRun>)> {
    let size = || fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if !path.exists() {
        return Ok((Current::Missing, Vec::new()));
    }
    let opened = match db::open(path, db::Access::Inspect, settings.busy_timeout) {
        Ok(Some(o)) => o,
        Ok(None) => return Ok((Current::Missing, Vec::new())),
        Err(Error::Locked { .. }) => {
            let current = Current::Healthy {
                newest_version: None,
                size: size(),
            };
            return Ok((current, Vec::new()));
        }
        // Not ours to read or write (the app's file, another user's folder):
        // unavailable, not damaged, or the emergency path would replace a
        // healthy database it merely cannot open. A hot journal a read-only
        // connection may not roll back is a crash's leftover, kept with the
        // damaged copy.
        Err(e @ Error::ReadOnly { .. }) if !e.needs_recovery() => return Err(e),
        Err(e) => {
            let current = Current::Damaged {
                detail: e.to_string(),
            };
            return Ok((current, Vec::new()));
        }
    };
    interrupt.stop_on(&opened.conn);
    let runs = history::stored_runs(&opened.conn).unwrap_or_default();
    // quick_check evaluates CHECK constraints, which may call an extension's
    // function (issue 11). Without the extension such a check fails on a
    // healthy file: that is not damage, and must not send it down the
    // damaged-file path.
    let loaded = db::extensions::load(&opened.conn, &settings.extensions).is_ok();
    if let Err(Problem::Check { detail, .. }) = backup::quick_check(&opened.conn, path) {
        let unknown = detail.contains("function") || detail.contains("no such module");
        if loaded || !unknown {
            return Ok((Current::Damaged { detail }, runs));
        }
    }
    let newest_version = history::applied(&opened.conn, layout)
        .ok()
        .and_then(|rows| rows.into_iter().map(|r| r.version).max());
    let current = Current::Healthy {
        newest_version,
        size: size(),
    };
    Ok((current, runs))
}

/// Restores `preview.backup` over the live database. Nothing is replaced
/// before a copy of it is saved; Ctrl-C before the copy-in completes leaves
/// the database as it was (`Error::Interrupted`).
pub fn run(
    settings: &Settings,
    preview: &Preview,
    opts: &RestoreOptions<'_>,
    obs: &mut dyn Observer,
    interrupt: &Interrupt,
) -> Result<RestoreReport> {
    busy::observed(settings, obs, interrupt, |obs| {
        run_within(settings, preview, opts, obs, interrupt)
    })
}

fn run_within(
    settings: &Settings,
    preview: &Preview,
    opts: &RestoreOptions<'_>,
    obs: &mut dyn Observer,
    interrupt: &Interrupt,
) -> Result<RestoreReport> {
    let started = Instant::now();
    let database = &settings.database;
    let mut report = RestoreReport {
        database: database.clone(),
        backup: preview.backup.clone(),
        safety: None,
        damaged: Vec::new(),
        carried_runs: 0,
        written: preview.written,
        duration_ms: 0,
    };
    let layout = crate::project::layout_or_default(settings);
    let (current, live_runs) = inspect_current(database, settings, layout, interrupt)?;
    interrupt.check()?;
    let later = history::runs_after(live_runs, &backup_runs(&preview.backup));
    match current {
        Current::Healthy { newest_version, .. } => {
            db::check_writable(database)?;
            let done = locked::copy_in(
                &locked::Job {
                    settings,
                    backup: &preview.backup,
                    expect: preview.observed.as_ref(),
                    accept_new_writes: opts.accept_new_writes,
                    newest_version: newest_version.as_ref(),
                    later_runs: &later,
                    record: &record_detail(preview, opts.note),
                },
                obs,
                interrupt,
            )?;
            report.safety = Some(done.safety);
            report.carried_runs = later.len();
        }
        Current::Missing | Current::Damaged { .. } => {
            report.damaged = emergency::replace(settings, &preview.backup, obs, interrupt)?;
            report.carried_runs =
                emergency::record(database, &later, &record_detail(preview, opts.note));
        }
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// What the restore's own row in `_backstop_runs` says.
pub(crate) struct Record {
    pub backup: String,
    pub note: Option<String>,
    pub detail: serde_json::Value,
}

fn record_detail(preview: &Preview, note: Option<&str>) -> Record {
    Record {
        backup: preview.backup.to_string_lossy().into_owned(),
        note: note.map(str::to_owned),
        detail: serde_json::json!({
            "restored_from": preview.backup,
            "backup_newest_version": preview.manifest.newest_version,
            "written_after_backup": preview.written,
        }),
    }
}

/// Appends the carried runs and the restore's own row, in one transaction.
pub(crate) fn write_log(
    conn: &rusqlite::Connection,
    later: &[StoredRun],
    record: &Record,
    extra: serde_json::Value,
) -> rusqlite::Result<()> {
    let mut detail = record.detail.clone();
    if let (Some(d), serde_json::Value::Object(more)) = (detail.as_object_mut(), extra) {
        d.extend(more);
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| {
        history::carry_runs(conn, later)?;
        history::record_done(
            conn,
            "restore",
            Some(&record.backup),
            history::Outcome::Restored,
            &[],
            record.note.as_deref(),
            &detail.to_string(),
        )
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT"),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

pub(crate) fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

#[cfg(test)]
mod tests;
