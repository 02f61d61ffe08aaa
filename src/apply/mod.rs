//! `up`: apply pending migrations, each in its own `BEGIN IMMEDIATE`
//! transaction together with its tracking row, after a verified backup taken
//! while the write lock is held (SPEC `up`, steps 1-6).

use std::fmt;
use std::path::PathBuf;
use std::time::Instant;

use rusqlite::Connection;

use crate::backup::{self, BackupInfo};
use crate::db::{self, Access, Schema};
use crate::error::{Error, Result};
use crate::history::{self, Outcome};
use crate::inspect;
use crate::migration::{Migration, Section, Version};
use crate::observe::{Direction, Event, Interrupt, Observer};
use crate::plan::Plan;
use crate::settings::Settings;

mod runner;

pub(crate) use runner::{message, RunRecord, Runner, Step};

/// Options of `up`, as plain values.
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    pub to: Option<Version>,
    pub allow_out_of_order: bool,
    /// `--no-backup`: skip the pre-run backup, explicitly.
    pub no_backup: bool,
}

/// A migration that committed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Applied {
    pub version: Version,
    pub name: String,
    pub duration_ms: u64,
    /// The same, in microseconds: small migrations take well under a millisecond.
    pub duration_us: u64,
    pub rows_changed: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct UpReport {
    pub database: PathBuf,
    pub created: bool,
    pub applied: Vec<Applied>,
    pub backup: Option<BackupInfo>,
    pub duration_ms: u64,
    pub destructive: Vec<inspect::Destructive>,
}

/// Why a migration stopped.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Cause {
    Sql {
        message: String,
    },
    /// The migration left rows whose parent is missing (enforcement is off while
    /// migrations run, so SQLite did not stop it).
    ForeignKeys {
        violations: Vec<Violation>,
        total: usize,
    },
    Interrupted,
    /// Another connection held a lock past the busy timeout (a reader's open
    /// transaction blocks COMMIT): nothing is wrong with the migration, and the
    /// database is unavailable (SPEC `up` step 1: exit 4).
    Locked {
        message: String,
    },
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Violation {
    pub table: String,
    pub rowid: Option<i64>,
    pub parent: String,
}

/// A failed run, as data: what failed and where, what committed before it, and
/// the pre-run backup the CLI may offer to restore.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunFailure {
    pub database: PathBuf,
    pub version: Version,
    pub name: String,
    pub path: PathBuf,
    pub line: usize,
    pub cause: Cause,
    pub applied: Vec<Applied>,
    pub backup: Option<BackupInfo>,
    /// Another connection committed after the backup was taken: restoring the
    /// backup would undo those writes too.
    pub others_wrote: bool,
    /// The failed section ran in a transaction, so none of its changes stayed.
    /// False for `transaction:false`: its statements before the failure stay
    /// applied (untracked), and only the backup undoes them.
    pub rolled_back: bool,
}

impl RunFailure {
    pub fn interrupted(&self) -> bool {
        matches!(self.cause, Cause::Interrupted)
    }

    pub fn locked(&self) -> bool {
        matches!(self.cause, Cause::Locked { .. })
    }

    /// What became of the failed migration's own changes.
    fn fate(&self) -> &'static str {
        if self.rolled_back {
            "rolled back"
        } else {
            "NOT rolled back: it runs outside a transaction (transaction:false), so its \
             statements before this point stay applied; restore the backup to undo them"
        }
    }
}

impl fmt::Display for RunFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = format!("{}:{}", self.path.display(), self.line);
        match &self.cause {
            Cause::Sql { message } => {
                write!(f, "{at}: migration {} failed: {message}", self.version)?;
                if !self.rolled_back {
                    write!(f, "\n  {}", self.fate())?;
                }
                Ok(())
            }
            Cause::Interrupted => write!(
                f,
                "{at}: migration {} interrupted; {}",
                self.version,
                self.fate()
            ),
            Cause::Locked { message } => write!(
                f,
                "{at}: migration {} stopped: {} is locked by another connection ({message}); {}",
                self.version,
                self.database.display(),
                self.fate()
            ),
            Cause::ForeignKeys { violations, total } => {
                write!(
                    f,
                    "{}: migration {} left {total} row(s) whose parent is missing; {}",
                    self.path.display(),
                    self.version,
                    self.fate()
                )?;
                for v in violations {
                    match v.rowid {
                        Some(id) => {
                            write!(f, "\n  {} rowid {} → missing {}", v.table, id, v.parent)?
                        }
                        None => write!(f, "\n  {} → missing {}", v.table, v.parent)?,
                    }
                }
                write!(
                    f,
                    "\n  (foreign keys are not enforced while migrations run, so ON DELETE CASCADE \
                     does not fire; delete or fix the child rows in the migration, or mark it \
                     `-- migrate:up foreign_keys:on`)"
                )
            }
        }
    }
}

/// Runs `up` against `settings.database`.
pub fn up(
    settings: &Settings,
    opts: &UpOptions,
    obs: &mut dyn Observer,
    interrupt: &Interrupt,
) -> Result<UpReport> {
    // The plan is made before the write lock is taken; if another run changed
    // the tracking table in between, plan again (see `execute`).
    let mut attempts = 0;
    loop {
        match up_once(settings, opts, obs, interrupt) {
            Err(Error::Raced { .. }) if attempts < 2 => attempts += 1,
            other => return other,
        }
    }
}

fn up_once(
    settings: &Settings,
    opts: &UpOptions,
    obs: &mut dyn Observer,
    interrupt: &Interrupt,
) -> Result<UpReport> {
    let started = Instant::now();
    let path = &settings.database;
    let files = crate::source::discover(&settings.migrations)?;
    // Plan on what exists; the file is only created when there is work to do.
    let existing = db::open(path, Access::Read, settings.busy_timeout)?;
    let rows = match &existing {
        Some(o) => history::applied(&o.conn).map_err(|e| Error::from_sqlite(path, e))?,
        None => Vec::new(),
    };
    let plan = Plan::build(&files, &rows);
    let problems = plan.problems(opts.allow_out_of_order);
    if !problems.is_empty() {
        return Err(Error::Blocked(problems));
    }
    let pending = plan.pending(opts.to, opts.allow_out_of_order);
    let mut report = UpReport {
        database: path.clone(),
        created: false,
        applied: Vec::new(),
        backup: None,
        duration_ms: 0,
        destructive: Vec::new(),
    };
    if !pending.is_empty() {
        let steps: Vec<(&Migration, &Section)> = pending.iter().map(|m| (*m, &m.up)).collect();
        let done = execute(
            settings,
            &Job {
                command: "up",
                step: Step::Up,
                no_backup: opts.no_backup,
                planned_on: &rows,
                create: true,
            },
            existing,
            &steps,
            obs,
            interrupt,
        )?;
        report.created = done.created;
        report.applied = done.applied;
        report.backup = done.backup;
        report.destructive = done.destructive;
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// What `execute` runs and how it is recorded.
pub(crate) struct Job<'a> {
    pub command: &'a str,
    pub step: Step,
    pub no_backup: bool,
    /// The tracking rows the plan was made from: checked again under the lock.
    pub planned_on: &'a [history::AppliedRow],
    /// Create the database file if it does not exist (`up` only).
    pub create: bool,
}

pub(crate) struct Executed {
    pub created: bool,
    pub applied: Vec<Applied>,
    pub backup: Option<BackupInfo>,
    pub destructive: Vec<inspect::Destructive>,
}

/// The shared core of `up` and `down`: inspect, lock, back up, then run each
/// section in its own transaction with its tracking change.
pub(crate) fn execute(
    settings: &Settings,
    job: &Job<'_>,
    existing: Option<db::Opened>,
    steps: &[(&Migration, &Section)],
    obs: &mut dyn Observer,
    interrupt: &Interrupt,
) -> Result<Executed> {
    let path = &settings.database;
    let findings = inspect::inspect(existing.as_ref().map(|o| &o.conn), steps)?;
    drop(existing);
    if !findings.destructive.is_empty() {
        obs.event(Event::Destructive {
            items: &findings.destructive,
        });
        if !obs.confirm_destructive(&findings.destructive) {
            return Err(Error::Declined {
                what: format!(
                    "running migrations that drop or delete data in {}",
                    path.display()
                ),
            });
        }
    }
    if interrupt.is_set() {
        return Err(Error::Interrupted);
    }
    obs.event(Event::PlanReady {
        pending: steps.len(),
    });

    let access = if job.create {
        Access::Create
    } else {
        Access::Write
    };
    let opened = db::open(path, access, settings.busy_timeout)?
        .ok_or_else(|| Error::NoDatabase { path: path.clone() })?;
    db::check_writable(path)?;
    if opened.created {
        obs.event(Event::DatabaseCreated { path });
    }
    let mut done = Executed {
        created: opened.created,
        applied: Vec::new(),
        backup: None,
        destructive: findings.destructive,
    };
    let conn = opened.conn;
    interrupt.watch(&conn);
    let mut runner = Runner::new(&conn, path.clone(), interrupt, obs.ticker());
    let fk_before = runner.foreign_keys()?;

    // Hold the write lock from before the backup until the first section
    // commits, so nobody can write in between unnoticed (SPEC `up`). The backup
    // is read through a second connection, which this lock does not block.
    runner.set_foreign_keys(steps[0].1.options.foreign_keys)?;
    sql(&conn, path, "BEGIN IMMEDIATE")?;
    let mut lock_held = || -> Result<(i64, Schema, Option<BackupInfo>)> {
        // Another run may have applied migrations since the plan was made (two
        // `backstop up` at once): never run a stale plan.
        let now = history::applied(&conn).map_err(|e| Error::from_sqlite(path, e))?;
        if now != job.planned_on {
            return Err(Error::Raced { path: path.clone() });
        }
        let newest_applied = now.iter().map(|r| r.version).max();
        let data_version = data_version(&conn).map_err(|e| Error::from_sqlite(path, e))?;
        let before = Schema::read(&conn).map_err(|e| Error::from_sqlite(path, e))?;
        let reason = format!("before-{}", job.command);
        let backup = if job.no_backup {
            None
        } else {
            let request = backup::Request::new(settings, &reason, newest_applied);
            Some(backup::take(&request, obs)?)
        };
        Ok((data_version, before, backup))
    };
    let (data_version_0, schema_before, backup) = match lock_held() {
        Ok(v) => v,
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            let _ = runner.set_foreign_keys(fk_before);
            return Err(e);
        }
    };
    done.backup = backup.clone();
    let run_started = history::now();
    let backup_name = backup
        .as_ref()
        .map(|b| b.path.to_string_lossy().into_owned());
    let mut run = RunRecord {
        id: None,
        command: job.command,
        started_at: &run_started,
        backup: backup_name.as_deref(),
        schema_before: schema_before.hash(),
    };
    let direction = match job.step {
        Step::Up => Direction::Up,
        Step::Down => Direction::Down,
    };
    let total = steps.len();
    for (index, &(m, section)) in steps.iter().enumerate() {
        obs.event(Event::MigrationStarted {
            index,
            total,
            migration: m,
            direction,
        });
        match runner.apply(m, section, index == 0, &mut run, obs, job.step) {
            Ok((duration, rows)) => {
                obs.event(Event::MigrationCommitted {
                    migration: m,
                    duration,
                    rows,
                });
                done.applied.push(Applied {
                    version: m.version,
                    name: m.name.clone(),
                    duration_ms: duration.as_millis() as u64,
                    duration_us: duration.as_micros() as u64,
                    rows_changed: rows,
                });
            }
            Err(failed) => {
                let others_wrote = data_version(&conn)
                    .map(|v| v != data_version_0)
                    .unwrap_or(true);
                let failure = RunFailure {
                    database: path.clone(),
                    version: m.version,
                    name: m.name.clone(),
                    path: section.path.clone(),
                    line: failed.line,
                    cause: failed.cause,
                    applied: done.applied.clone(),
                    backup,
                    others_wrote,
                    rolled_back: section.options.transaction,
                };
                let message = failure.to_string();
                obs.event(Event::MigrationFailed {
                    migration: m,
                    line: failure.line,
                    message: &message,
                });
                let outcome = if failure.interrupted() {
                    Outcome::Interrupted
                } else {
                    Outcome::Failed
                };
                let versions: Vec<Version> = done.applied.iter().map(|a| a.version).collect();
                // Best effort: recording the run must not hide the migration's error.
                let _ = runner.finish_run(&mut run, outcome, &versions, Some(&message));
                let _ = runner.set_foreign_keys(fk_before);
                return Err(Error::Migration(Box::new(failure)));
            }
        }
    }
    let versions: Vec<Version> = done.applied.iter().map(|a| a.version).collect();
    runner
        .finish_run(&mut run, Outcome::Ok, &versions, None)
        .map_err(|e| Error::from_sqlite(path, e))?;
    runner.set_foreign_keys(fk_before)?;
    Ok(done)
}

pub(crate) fn sql(conn: &Connection, path: &std::path::Path, s: &str) -> Result<()> {
    conn.execute_batch(s)
        .map_err(|e| Error::from_sqlite(path, e))
}

pub(crate) fn data_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA data_version", [], |r| r.get(0))
}
