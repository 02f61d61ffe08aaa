//! Putting a backup back (SPEC "Restore"): check the backup first, save what it
//! replaces, then copy it in with SQLite's backup API so open readers and WAL
//! stay consistent. Also the emergency path for a missing or damaged file.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::backup::{self, BackupInfo, Manifest, Problem};
use crate::db;
use crate::error::{Error, Result};
use crate::history;
use crate::migration::Version;
use crate::observe::{Event, Observer};
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
    /// Some(true) when the database was written after the backup was taken (it
    /// can tell in rollback-journal mode); None when it cannot tell.
    pub changed_since: Option<bool>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RestoreReport {
    pub database: PathBuf,
    pub backup: PathBuf,
    /// The `before-restore` backup of what was replaced.
    pub safety: Option<BackupInfo>,
    /// Plain copies of a damaged database (and its -wal/-journal).
    pub damaged: Vec<PathBuf>,
    pub duration_ms: u64,
}

/// Verifies `backup` (SHA-256 against its manifest, quick_check) and looks at the
/// live database. Changes nothing.
pub fn preview(settings: &Settings, backup_path: &Path) -> Result<Preview> {
    let manifest =
        backup::verify(backup_path, &settings.extensions).map_err(|problem| Error::Restore {
            backup: backup_path.to_path_buf(),
            problem,
        })?;
    let database = settings.database.clone();
    let current = inspect_current(
        &database,
        settings,
        crate::project::layout_or_default(settings),
    );
    let changed_since = match (&current, manifest.change_counter) {
        (Current::Healthy { .. }, Some(then)) if !is_wal(&database) => {
            backup::change_counter(&database).map(|now| now != then)
        }
        _ => None,
    };
    Ok(Preview {
        database,
        backup: backup_path.to_path_buf(),
        manifest,
        current,
        changed_since,
    })
}

/// Header bytes 18 and 19 are 2 for WAL databases. Reads only the header; no
/// lock is held on the database by this process when it runs.
fn is_wal(db: &Path) -> bool {
    use std::io::Read;
    let mut header = [0u8; 20];
    fs::File::open(db)
        .and_then(|mut f| f.read_exact(&mut header))
        .map(|_| header[18] == 2 && header[19] == 2)
        .unwrap_or(false)
}

/// What the live database holds. `layout` reads its versions; a restore must
/// work even when the migrations folder does not, so it is only a reading aid.
fn inspect_current(path: &Path, settings: &Settings, layout: Layout) -> Current {
    if !path.exists() {
        return Current::Missing;
    }
    let opened = match db::open(path, db::Access::Inspect, settings.busy_timeout) {
        Ok(Some(o)) => o,
        Ok(None) => return Current::Missing,
        Err(Error::Locked { .. }) => {
            return Current::Healthy {
                newest_version: None,
                size: fs::metadata(path).map(|m| m.len()).unwrap_or(0),
            }
        }
        Err(e) => {
            return Current::Damaged {
                detail: e.to_string(),
            }
        }
    };
    // quick_check evaluates CHECK constraints, which may call an extension's
    // function (issue 11). Without the extension such a check fails on a
    // healthy file: that is not damage, and must not send it down the
    // damaged-file path.
    let loaded = db::extensions::load(&opened.conn, &settings.extensions).is_ok();
    if let Err(Problem::Check { detail, .. }) = backup::quick_check(&opened.conn, path) {
        let unknown = detail.contains("function") || detail.contains("no such module");
        if loaded || !unknown {
            return Current::Damaged { detail };
        }
    }
    let newest_version = history::applied(&opened.conn, layout)
        .ok()
        .and_then(|rows| rows.into_iter().map(|r| r.version).max());
    Current::Healthy {
        newest_version,
        size: fs::metadata(path).map(|m| m.len()).unwrap_or(0),
    }
}

/// Restores `preview.backup` over the live database. `note` is recorded in the
/// run row (e.g. the error of the failed run being undone).
pub fn run(
    settings: &Settings,
    preview: &Preview,
    note: Option<&str>,
    obs: &mut dyn Observer,
) -> Result<RestoreReport> {
    let started = Instant::now();
    let database = &settings.database;
    let fail = |problem| Error::Restore {
        backup: preview.backup.clone(),
        problem,
    };
    let mut report = RestoreReport {
        database: database.clone(),
        backup: preview.backup.clone(),
        safety: None,
        damaged: Vec::new(),
        duration_ms: 0,
    };
    let current = inspect_current(
        database,
        settings,
        crate::project::layout_or_default(settings),
    );
    match current {
        Current::Healthy { newest_version, .. } => {
            db::check_writable(database)?;
            let sqlite = |e| Error::from_sqlite(database, e);
            let mut dst = Connection::open(database).map_err(sqlite)?;
            dst.busy_timeout(settings.busy_timeout).map_err(sqlite)?;
            // Never replace anything without a copy of it first. The backup API
            // cannot run while this process holds a transaction on the
            // destination, so instead of a lock: if another connection committed
            // while the safety copy was taken, take it again.
            let mut safety = None;
            for _ in 0..3 {
                let before = crate::apply::data_version(&dst).map_err(sqlite)?;
                let request = backup::Request {
                    // With keep = 1 the safety copy would prune the very backup
                    // being restored.
                    keep: settings.keep.max(2),
                    ..backup::Request::new(settings, "before-restore", newest_version.as_ref())
                };
                let taken = backup::take(&request, obs)?;
                let settled = crate::apply::data_version(&dst).map_err(sqlite)? == before;
                safety = Some(taken);
                if settled {
                    break;
                }
            }
            report.safety = safety;
            copy_in(&preview.backup, &mut dst, settings.busy_timeout, obs).map_err(
                |e| match e {
                    CopyError::Locked => Error::Locked {
                        path: database.clone(),
                    },
                    CopyError::Problem(p) => fail(p),
                },
            )?;
        }
        Current::Missing | Current::Damaged { .. } => {
            let folder = db::folder_of(database);
            if !folder.is_dir() {
                return Err(Error::NoFolder {
                    path: database.clone(),
                    folder,
                });
            }
            report.damaged = save_damaged(database, &settings.backups).map_err(fail)?;
            replace_file(&preview.backup, database).map_err(fail)?;
        }
    }
    record(database, preview, &report, note, settings.busy_timeout);
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

enum CopyError {
    Locked,
    Problem(Problem),
}

/// Backup API from the backup file into the live database: one write
/// transaction, so a crash leaves the old or the new state, never a mix.
fn copy_in(
    backup_path: &Path,
    dst: &mut Connection,
    busy: Duration,
    obs: &mut dyn Observer,
) -> std::result::Result<(), CopyError> {
    let src = backup::open_backup(backup_path).map_err(CopyError::Problem)?;
    let bytes = fs::metadata(backup_path).map(|m| m.len()).unwrap_or(0);
    obs.event(Event::RestoreStarted {
        backup: backup_path,
        bytes,
    });
    let page_size: i64 = src
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap_or(4096);
    let b = rusqlite::backup::Backup::new(&src, dst)
        .map_err(|e| CopyError::Problem(Problem::Sqlite(e)))?;
    let deadline = Instant::now() + busy;
    loop {
        // All pages in one step: the destination is written in one transaction.
        match b
            .step(-1)
            .map_err(|e| CopyError::Problem(Problem::Sqlite(e)))?
        {
            rusqlite::backup::StepResult::Done => break,
            rusqlite::backup::StepResult::More => {}
            _ if Instant::now() > deadline => return Err(CopyError::Locked),
            _ => std::thread::sleep(Duration::from_millis(25)),
        }
        let p = b.progress();
        let total = p.pagecount.max(0) as u64 * page_size as u64;
        obs.event(Event::RestoreProgress {
            done: total - p.remaining.max(0) as u64 * page_size as u64,
            total,
        });
    }
    obs.event(Event::RestoreProgress {
        done: bytes,
        total: bytes,
    });
    Ok(())
}

/// Plain copies of a damaged database and its journals: `<stem>.<ts>.damaged`.
/// Not backups: never listed, never chosen by `--latest`, never pruned.
fn save_damaged(database: &Path, folder: &Path) -> std::result::Result<Vec<PathBuf>, Problem> {
    fs::create_dir_all(folder).map_err(|source| Problem::Folder {
        path: folder.to_path_buf(),
        source,
    })?;
    let stem = crate::backup::manifest_stem(database);
    let ts = chrono::Utc::now().format(crate::backup::TIMESTAMP);
    let mut saved = Vec::new();
    for (suffix, src) in [
        ("", database.to_path_buf()),
        ("-wal", with_suffix(database, "-wal")),
        ("-journal", with_suffix(database, "-journal")),
    ] {
        if !src.is_file() {
            continue;
        }
        let dst = folder.join(format!("{stem}.{ts}.damaged{suffix}"));
        copy_synced(&src, &dst)?;
        saved.push(dst);
    }
    backup::sync_dir(folder);
    Ok(saved)
}

/// Puts a copy of `backup_path` in place of `database` by rename: the stale
/// `-wal`/`-journal` are removed first, or SQLite would replay them onto it.
fn replace_file(backup_path: &Path, database: &Path) -> std::result::Result<(), Problem> {
    let name = database
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let folder = db::folder_of(database);
    let mut tmp =
        backup::temporary(&folder, &format!("{name}.restore")).map_err(|source| Problem::Io {
            path: folder.clone(),
            source,
        })?;
    let tmp_path = tmp.path().to_path_buf();
    copy_into(backup_path, tmp.as_file_mut(), &tmp_path)?;
    for suffix in ["-wal", "-journal", "-shm"] {
        let p = with_suffix(database, suffix);
        if p.exists() {
            fs::remove_file(&p).map_err(|source| Problem::Io {
                path: p.clone(),
                source,
            })?;
        }
    }
    // Replacing the damaged file is the point here: rename over it.
    tmp.persist(database).map_err(|e| Problem::Io {
        path: database.to_path_buf(),
        source: e.error,
    })?;
    backup::sync_dir(&folder);
    Ok(())
}

/// A plain copy of `src` at `dst`, which must not exist yet (a `.damaged` name).
fn copy_synced(src: &Path, dst: &Path) -> std::result::Result<(), Problem> {
    let folder = db::folder_of(dst);
    let name = dst
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = backup::temporary(&folder, &name).map_err(|source| Problem::Io {
        path: folder.clone(),
        source,
    })?;
    let tmp_path = tmp.path().to_path_buf();
    copy_into(src, tmp.as_file_mut(), &tmp_path)?;
    tmp.persist_noclobber(dst)
        .map(drop)
        .map_err(|e| Problem::Io {
            path: dst.to_path_buf(),
            source: e.error,
        })
}

fn copy_into(src: &Path, out: &mut fs::File, out_path: &Path) -> std::result::Result<(), Problem> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Problem::Io { path, source }
    };
    let mut input = fs::File::open(src).map_err(io(src))?;
    std::io::copy(&mut input, out).map_err(io(out_path))?;
    out.sync_all().map_err(io(out_path))
}
fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Notes the restore in the restored database's `_backstop_runs` (best effort:
/// the restore itself already succeeded).
fn record(
    database: &Path,
    preview: &Preview,
    report: &RestoreReport,
    note: Option<&str>,
    busy: Duration,
) {
    let Ok(Some(opened)) = db::open(database, db::Access::Write, busy) else {
        return;
    };
    let conn = opened.conn;
    let detail = serde_json::json!({
        "restored_from": preview.backup,
        "safety_backup": report.safety.as_ref().map(|s| &s.path),
        "damaged_copies": report.damaged,
        "backup_newest_version": preview.manifest.newest_version,
    })
    .to_string();
    let _ = (|| -> rusqlite::Result<()> {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        history::record_done(
            &conn,
            "restore",
            Some(&preview.backup.to_string_lossy()),
            history::Outcome::Restored,
            &[],
            note,
            &detail,
        )?;
        conn.execute_batch("COMMIT")
    })();
}
