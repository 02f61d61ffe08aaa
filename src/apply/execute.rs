//! The shared core of `up` and `down`: look at the steps, lock, back up, then
//! run each section in its own transaction with its tracking change. Split by
//! what each part decides: `confirm` (before any lock), `lock_and_back_up`
//! (SPEC `up`: no unnoticed writer between the backup and the first
//! migration), `run_steps` (the loop; `step` dispatches on the migration's
//! kind) and `fail` (what a failure reports).

use std::path::Path;
use std::sync::Arc;

use rusqlite::Connection;

use super::failure::Watcher;
use super::launch::Launch;
use super::preflight::confirm;
use super::runner::{Failed, RunRecord, Runner, Step};
use super::session::Session;
use super::step::{First, Stepper};
use super::{python, Applied, Cause, RunFailure};
use crate::backup::{self, BackupInfo};
use crate::db::{self, busy, Access, Schema};
use crate::error::{Error, Result};
use crate::history::{self, Outcome};
use crate::inspect;
use crate::migration::{Kind, Migration, Section, Version};
use crate::observe::{Direction, Event, Interrupt, Observer};
use crate::settings::Settings;
use crate::source::Layout;

/// What `execute` runs and how it is recorded.
pub(crate) struct Job<'a> {
    pub command: &'a str,
    pub step: Step,
    pub no_backup: bool,
    /// The tracking rows the plan was made from: checked again under the lock.
    pub planned_on: &'a [history::AppliedRow],
    pub layout: Layout,
    /// Create the database file if it does not exist (`up` only).
    pub create: bool,
    /// Schema drift the user accepted for this run (recorded in its log row).
    pub accepted_drift: Option<&'a crate::db::Drift>,
}

pub(crate) struct Executed {
    pub created: bool,
    pub applied: Vec<Applied>,
    pub backup: Option<BackupInfo>,
    pub destructive: Vec<inspect::Destructive>,
}

/// What holds from the backup on: taken under the write lock.
struct Locked {
    data_version: i64,
    schema_before: Schema,
    backup: Option<BackupInfo>,
    /// Who holds the lock for the first step.
    first: First,
}

pub(crate) fn execute(
    settings: &Settings,
    job: &Job<'_>,
    existing: Option<db::Opened>,
    steps: &[(&Migration, &Section)],
    obs: &mut dyn Observer,
    interrupt: &Interrupt,
) -> Result<Executed> {
    // Busy waits (a lock held by the app) stop on Ctrl-C and are announced.
    busy::observed(settings, obs, interrupt, |obs| {
        execute_within(settings, job, existing, steps, obs, interrupt)
    })
}

fn execute_within(
    settings: &Settings,
    job: &Job<'_>,
    existing: Option<db::Opened>,
    steps: &[(&Migration, &Section)],
    obs: &mut dyn Observer,
    interrupt: &Interrupt,
) -> Result<Executed> {
    let path = &settings.database;
    // Before any lock: a missing Python, or a `.py` file it cannot compile,
    // is refused here (issue 12).
    let launch = Launch::prepare(settings, steps)?;
    let destructive = confirm(
        path,
        job,
        existing,
        steps,
        &settings.extensions,
        obs,
        interrupt,
    )?;
    let access = if job.create {
        Access::Create
    } else {
        Access::Write
    };
    let opened = db::open_configured(settings, access)?
        .ok_or_else(|| Error::NoDatabase { path: path.clone() })?;
    db::check_writable(path)?;
    if opened.created {
        obs.event(Event::DatabaseCreated { path });
    }
    let conn = opened.conn;
    interrupt.watch(&conn);
    let session = Session::new(&conn, path)?;
    let mut runner = Runner::new(&conn, interrupt, obs.ticker());
    let locked = lock_and_back_up(settings, job, &session, &launch, steps[0], obs, interrupt)?;
    let mut done = Executed {
        created: opened.created,
        applied: Vec::new(),
        backup: locked.backup.clone(),
        destructive,
    };
    let at_backup = locked.data_version;
    let mut stepper = Stepper::new(&launch, interrupt, at_backup);
    let outcome = run_steps(
        path,
        job,
        &mut runner,
        &mut stepper,
        locked,
        steps,
        &mut done,
        obs,
    );
    let watch_from = stepper.baseline().unwrap_or(at_backup);
    drop(runner);
    drop(session);
    match outcome {
        Ok(()) => Ok(done),
        Err(Error::Migration(mut failure)) => {
            // Kept for the failure prompt, which may wait a while: outside
            // this command's busy scope it waits SQLite's own way.
            let _ = conn.busy_timeout(settings.busy_timeout);
            failure.watch = Some(Arc::new(Watcher::new(conn, watch_from)));
            Err(Error::Migration(failure))
        }
        Err(e) => Err(e),
    }
}

/// Holds the write lock from before the backup until the first section commits,
/// so nobody can write in between unnoticed (SPEC `up`). The backup is read
/// through a second connection, which this lock does not block.
///
/// A Python module (issue 12) runs in a process of its own, which cannot take
/// the lock while backstop holds it, and releasing it first would leave a gap.
/// So for a module the order is turned round: its runner takes the lock
/// (`BEGIN IMMEDIATE`) and waits; backstop checks the plan and takes the
/// backup under the runner's lock, then lets it go on. The lock is held across
/// both, as for SQL. A script opens the database itself and cannot be handed
/// a lock: backstop releases its own just before the script starts, and
/// `step::Writers` reports that writes made while a script ran cannot be
/// attributed (README "Executable migrations").
#[allow(clippy::too_many_arguments)]
fn lock_and_back_up(
    settings: &Settings,
    job: &Job<'_>,
    session: &Session<'_>,
    launch: &Launch,
    (m, first): (&Migration, &Section),
    obs: &mut dyn Observer,
    interrupt: &Interrupt,
) -> Result<Locked> {
    let conn = session.conn;
    let path = session.path;
    let lock = if m.kind == Kind::Module {
        match python::lock(launch, m, first, job.step, obs, interrupt) {
            Ok(held) => First::Held(held),
            Err((failed, _)) => return Err(not_locked(path, m, failed)),
        }
    } else {
        // Enforcement is decided before BEGIN: inside a transaction SQLite ignores it.
        db::set_foreign_keys(conn, first.options.foreign_keys)
            .map_err(|e| Error::from_sqlite(path, e))?;
        session.sql("BEGIN IMMEDIATE")?;
        First::RustLock
    };
    // Another run may have applied migrations since the plan was made (two
    // `backstop up` at once): never run a stale plan.
    let now = history::applied(conn, job.layout).map_err(|e| Error::from_sqlite(path, e))?;
    if now != job.planned_on {
        return Err(Error::Raced {
            path: path.to_path_buf(),
        });
    }
    let newest_applied = now.iter().map(|r| &r.version).max();
    let data_version = data_version(conn).map_err(|e| Error::from_sqlite(path, e))?;
    let schema_before = Schema::read(conn).map_err(|e| Error::from_sqlite(path, e))?;
    let reason = format!("before-{}", job.command);
    let backup = if job.no_backup {
        None
    } else {
        // Taken while this process holds the write lock (see `backup::Held`).
        let request = backup::Request {
            held: backup::Held::Writer,
            ..backup::Request::new(settings, &reason, newest_applied)
        };
        Some(backup::take(&request, obs)?)
    };
    Ok(Locked {
        data_version,
        schema_before,
        backup,
        first: lock,
    })
}

/// The first step's runner could not take the lock: nothing changed yet.
fn not_locked(path: &Path, m: &Migration, failed: Failed) -> Error {
    let problem = match failed.cause {
        Cause::Locked { .. } => {
            return Error::Locked {
                path: path.to_path_buf(),
            }
        }
        Cause::Interrupted => return Error::Interrupted,
        Cause::Exited {
            message, stderr, ..
        } => format!("{message}: {}", stderr.join(" / ")),
        Cause::Module { message, .. } | Cause::Sql { message } => message,
        Cause::ForeignKeys { .. } => "foreign keys".into(),
    };
    Error::Runner {
        path: m.path.clone(),
        problem,
    }
}

#[allow(clippy::too_many_arguments)]
fn run_steps(
    path: &Path,
    job: &Job<'_>,
    runner: &mut Runner<'_>,
    stepper: &mut Stepper<'_>,
    locked: Locked,
    steps: &[(&Migration, &Section)],
    done: &mut Executed,
    obs: &mut dyn Observer,
) -> Result<()> {
    let run_started = history::now();
    let backup_name = locked
        .backup
        .as_ref()
        .map(|b| b.path.to_string_lossy().into_owned());
    let detail = job
        .accepted_drift
        .map(|d| serde_json::json!({ "accepted_drift": d }).to_string());
    let mut run = RunRecord {
        id: None,
        command: job.command,
        started_at: &run_started,
        backup: backup_name.as_deref(),
        schema_before: locked.schema_before.hash(),
        detail: detail.as_deref(),
    };
    let direction = match job.step {
        Step::Up => Direction::Up,
        Step::Down => Direction::Down,
    };
    let mut first = Some(locked.first);
    for (index, &(m, section)) in steps.iter().enumerate() {
        obs.event(Event::MigrationStarted {
            index,
            total: steps.len(),
            migration: m,
            direction,
        });
        let lock = first.take().unwrap_or(First::No);
        let (result, output) = stepper.run(runner, m, section, lock, &mut run, obs, job.step);
        match result {
            Ok((duration, rows)) => {
                obs.event(Event::MigrationCommitted {
                    migration: m,
                    duration,
                    rows,
                });
                done.applied.push(Applied {
                    version: m.version.clone(),
                    name: m.name.clone(),
                    duration_ms: duration.as_millis() as u64,
                    duration_us: duration.as_micros() as u64,
                    rows_changed: rows,
                    kind: m.kind,
                    output,
                });
            }
            Err(failed) => {
                let (others_wrote, script_wrote) = stepper.others_wrote(runner.conn());
                let failure = RunFailure {
                    database: path.to_path_buf(),
                    version: m.version.clone(),
                    name: m.name.clone(),
                    path: section.path.clone(),
                    line: failed.line,
                    cause: failed.cause,
                    applied: done.applied.clone(),
                    backup: locked.backup.clone(),
                    others_wrote,
                    rolled_back: section.options.transaction,
                    kind: m.kind,
                    script_wrote,
                    output,
                    revertible: revertible(job, steps, index, section),
                    watch: None,
                };
                return Err(fail(runner, &mut run, failure, m, obs));
            }
        }
    }
    let versions: Vec<Version> = done.applied.iter().map(|a| a.version.clone()).collect();
    runner
        .finish_run(&mut run, Outcome::Ok, &versions, None)
        .map_err(|e| Error::from_sqlite(path, e))
}

/// Whether the migrations this `up` applied before step `failed` can be
/// reverted with their down sections: each has one, nothing of the failed one
/// stayed, and they are the newest applied (so `down` reverts exactly them).
fn revertible(
    job: &Job<'_>,
    steps: &[(&Migration, &Section)],
    failed: usize,
    section: &Section,
) -> bool {
    let ran = &steps[..failed];
    job.step == Step::Up
        && section.options.transaction
        && !ran.is_empty()
        && ran.iter().all(|(m, _)| m.down.is_some())
        && job
            .planned_on
            .iter()
            .all(|r| ran.iter().all(|(m, _)| r.version < m.version))
}

/// Reports the failure and records the run; the migration's own error wins
/// over a failure to record it.
fn fail(
    runner: &mut Runner<'_>,
    run: &mut RunRecord<'_>,
    failure: RunFailure,
    m: &Migration,
    obs: &mut dyn Observer,
) -> Error {
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
    // After Ctrl-C the progress handler would stop the recording itself.
    runner.disarm();
    let versions: Vec<Version> = failure.applied.iter().map(|a| a.version.clone()).collect();
    let _ = runner.finish_run(run, outcome, &versions, Some(&message));
    Error::Migration(Box::new(failure))
}

pub(crate) fn data_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA data_version", [], |r| r.get(0))
}
