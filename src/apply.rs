//! `up`: apply pending migrations, each in its own `BEGIN IMMEDIATE`
//! transaction together with its tracking row, after a verified backup taken
//! while the write lock is held (SPEC `up`, steps 1-6).

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::Connection;

use crate::backup::{self, BackupInfo};
use crate::db::{self, Access, Schema};
use crate::error::{Error, Result};
use crate::history::{self, Outcome};
use crate::inspect::{self, Action};
use crate::migration::{Migration, Section, Version};
use crate::observe::{Direction, Event, Interrupt, Observer};
use crate::plan::Plan;
use crate::script::Script;
use crate::settings::Settings;

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
        applied: 0,
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
        let backup = if job.no_backup {
            None
        } else {
            Some(backup::take(
                &backup::Request {
                    database: path,
                    folder: &settings.backups,
                    reason: &format!("before-{}", job.command),
                    keep: settings.keep,
                    newest_version: newest_applied,
                    busy: settings.busy_timeout,
                },
                obs,
            )?)
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

fn sql(conn: &Connection, path: &std::path::Path, s: &str) -> Result<()> {
    conn.execute_batch(s)
        .map_err(|e| Error::from_sqlite(path, e))
}

pub(crate) fn data_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA data_version", [], |r| r.get(0))
}

/// The run row in `_backstop_runs`: inserted with the first migration that
/// commits (so a run that changed nothing before failing still gets one at the end).
pub(crate) struct RunRecord<'a> {
    pub id: Option<i64>,
    pub command: &'a str,
    pub started_at: &'a str,
    pub backup: Option<&'a str>,
    pub schema_before: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Up,
    Down,
}

/// Where and why a migration stopped.
pub(crate) struct Failed {
    pub line: usize,
    pub cause: Cause,
}

/// Runs migrations on one connection: statements, authorizer, progress
/// handler, foreign-key checks, tracking rows.
pub(crate) struct Runner<'c> {
    conn: &'c Connection,
    path: PathBuf,
    touched: Arc<Mutex<Touched>>,
    statement_started: Arc<AtomicU64>,
    clock: Instant,
    interrupt: Interrupt,
    /// child → parents, built once per run and refreshed for touched tables.
    fk_graph: Option<HashMap<String, Vec<String>>>,
    /// The tracking tables exist (committed) on this connection.
    tables_ready: std::cell::Cell<bool>,
}

#[derive(Default)]
struct Touched {
    tables: BTreeSet<String>,
    /// Set while a transactional migration runs: transaction control and
    /// ATTACH are refused at prepare time, so nothing can commit early.
    guard: bool,
    hostile: Option<String>,
    /// An ALTER TABLE ran (renames change other tables' foreign keys).
    altered: bool,
}

impl<'c> Runner<'c> {
    pub fn new(
        conn: &'c Connection,
        path: PathBuf,
        interrupt: &Interrupt,
        ticker: Option<crate::observe::Ticker>,
    ) -> Runner<'c> {
        let touched: Arc<Mutex<Touched>> = Arc::default();
        let sink = touched.clone();
        conn.authorizer(Some(move |ctx: AuthContext<'_>| {
            let Ok(mut t) = sink.lock() else {
                return Authorization::Allow;
            };
            if t.guard {
                if let Some(k) = Action::from(&ctx).and_then(|a| a.hostile()) {
                    t.hostile = Some(k);
                    return Authorization::Deny;
                }
            }
            let table = match ctx.action {
                AuthAction::Insert { table_name }
                | AuthAction::Delete { table_name }
                | AuthAction::CreateTable { table_name }
                | AuthAction::DropTable { table_name }
                | AuthAction::AlterTable { table_name, .. } => Some(table_name),
                AuthAction::Update { table_name, .. } => Some(table_name),
                _ => None,
            };
            if matches!(ctx.action, AuthAction::AlterTable { .. }) {
                t.altered = true;
            }
            if let Some(name) = table {
                if !name.starts_with("sqlite_") && !name.starts_with("_backstop_") {
                    t.tables.insert(name.to_lowercase());
                }
            }
            Authorization::Allow
        }));
        let clock = Instant::now();
        let statement_started = Arc::new(AtomicU64::new(0));
        let started = statement_started.clone();
        let stop = interrupt.flag();
        let last_tick = AtomicU64::new(0);
        // SQLite calls this every few thousand VM steps: the place to notice
        // Ctrl-C inside a long statement and to report elapsed time truthfully.
        conn.progress_handler(
            10_000,
            Some(move || {
                if stop() {
                    return true;
                }
                if let Some(tick) = &ticker {
                    let now = clock.elapsed().as_millis() as u64;
                    if now.saturating_sub(last_tick.load(Ordering::Relaxed)) >= 100 {
                        last_tick.store(now, Ordering::Relaxed);
                        let since = now.saturating_sub(started.load(Ordering::Relaxed));
                        tick(Duration::from_millis(since));
                    }
                }
                false
            }),
        );
        Runner {
            conn,
            path,
            touched,
            statement_started,
            clock,
            interrupt: interrupt.clone(),
            fk_graph: None,
            tables_ready: std::cell::Cell::new(false),
        }
    }

    pub fn foreign_keys(&self) -> Result<bool> {
        self.conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get::<_, i64>(0))
            .map(|v| v != 0)
            .map_err(|e| Error::from_sqlite(&self.path, e))
    }

    /// Must be called outside a transaction: inside one SQLite silently ignores it.
    pub fn set_foreign_keys(&self, on: bool) -> Result<()> {
        sql(self.conn, &self.path, fk_pragma(on))
    }

    /// Starts collecting touched tables for one migration; `guard` refuses
    /// transaction control while it runs.
    fn track(&self, guard: bool) {
        if let Ok(mut t) = self.touched.lock() {
            t.guard = guard;
            t.hostile = None;
            t.altered = false;
            t.tables.clear();
        }
    }

    fn guard(&self, on: bool) {
        if let Ok(mut t) = self.touched.lock() {
            t.guard = on;
        }
    }

    fn interrupted(&self) -> bool {
        self.interrupt.is_set()
    }

    /// Applies one section in its own transaction with its tracking change.
    /// `lock_txn`: a `BEGIN IMMEDIATE` is already open (taken before the backup).
    pub fn apply(
        &mut self,
        m: &Migration,
        section: &Section,
        lock_txn: bool,
        run: &mut RunRecord<'_>,
        obs: &mut dyn Observer,
        step: Step,
    ) -> std::result::Result<(Duration, u64), Failed> {
        let transactional = section.options.transaction;
        let sql_err = |line: usize, e: rusqlite::Error| Failed {
            line,
            cause: cause_of(&e),
        };
        if lock_txn && !transactional {
            // The lock transaction was only there to cover the backup.
            let _ = self.conn.execute_batch("COMMIT");
        }
        if !lock_txn || !transactional {
            self.conn
                .execute_batch(fk_pragma(section.options.foreign_keys))
                .map_err(|e| sql_err(section.first_line, e))?;
        }
        if !lock_txn && transactional {
            self.conn
                .execute_batch("BEGIN IMMEDIATE")
                .map_err(|e| sql_err(section.first_line, e))?;
        }
        let run_inserted_here = run.id.is_none();
        let result = self.run_body(m, section, run, obs, step, transactional);
        match result {
            Ok(v) => Ok(v),
            Err(failed) => {
                self.guard(false);
                if !self.conn.is_autocommit() {
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
                // What this transaction created is gone with it.
                self.tables_ready.set(false);
                if run_inserted_here && transactional {
                    run.id = None;
                }
                Err(failed)
            }
        }
    }

    fn run_body(
        &mut self,
        m: &Migration,
        section: &Section,
        run: &mut RunRecord<'_>,
        obs: &mut dyn Observer,
        step: Step,
        transactional: bool,
    ) -> std::result::Result<(Duration, u64), Failed> {
        let started = Instant::now();
        let first_line = section.first_line;
        let sql_err = |line: usize, e: rusqlite::Error| Failed {
            line,
            cause: cause_of(&e),
        };
        if transactional {
            self.ensure_run(run).map_err(|e| sql_err(first_line, e))?;
        }
        self.track(transactional);
        let changes_before = self.conn.total_changes();
        let mut script = Script::new(section);
        loop {
            if self.interrupted() {
                return Err(Failed {
                    line: script.next_line(),
                    cause: Cause::Interrupted,
                });
            }
            let mut st = match script.next(self.conn) {
                Ok(Some(st)) => st,
                Ok(None) => break,
                Err(e) => return Err(self.failed(e.line, e.error)),
            };
            obs.event(Event::StatementStarted {
                migration: m,
                line: st.line,
                sql: st.sql,
            });
            self.statement_started
                .store(self.clock.elapsed().as_millis() as u64, Ordering::Relaxed);
            let t0 = Instant::now();
            let result = st.run(self.conn);
            if let Err(e) = result {
                return Err(self.failed(st.line, e));
            }
            obs.event(Event::StatementFinished {
                migration: m,
                line: st.line,
                duration: t0.elapsed(),
            });
        }
        self.guard(false);
        // A `transaction:false` section manages its own BEGIN/COMMIT. One left
        // open would swallow the tracking row and the run record, and end in
        // "cannot start a transaction within a transaction" (exit 4) with the
        // migration reported applied but never committed. Fail it instead: the
        // caller rolls back what followed the BEGIN.
        if !transactional && !self.conn.is_autocommit() {
            return Err(Failed {
                line: first_line,
                cause: Cause::Sql {
                    message: "the section ends inside a transaction it began (BEGIN without \
                              COMMIT); what followed the BEGIN was rolled back"
                        .into(),
                },
            });
        }
        let rows = self.conn.total_changes().saturating_sub(changes_before);
        if !section.options.foreign_keys {
            let (violations, total) = self
                .foreign_key_check()
                .map_err(|e| sql_err(first_line, e))?;
            if total > 0 {
                return Err(Failed {
                    line: first_line,
                    cause: Cause::ForeignKeys { violations, total },
                });
            }
        }
        if !transactional {
            self.ensure_run(run).map_err(|e| sql_err(first_line, e))?;
        }
        let duration = started.elapsed();
        // The tracking change commits with the migration: recorded iff committed.
        let tracked = match step {
            Step::Up => self
                .ensure_tables()
                .and_then(|_| history::record(self.conn, m, duration, rows, run.id)),
            Step::Down => history::unrecord(self.conn, m.version).map(|_| ()),
        };
        tracked.map_err(|e| sql_err(first_line, e))?;
        if transactional {
            // Ctrl-C after the last statement still means "stop": roll back.
            if self.interrupted() {
                return Err(Failed {
                    line: first_line,
                    cause: Cause::Interrupted,
                });
            }
            self.conn
                .execute_batch("COMMIT")
                .map_err(|e| sql_err(first_line, e))?;
        }
        Ok((duration, rows))
    }

    fn failed(&self, line: usize, e: rusqlite::Error) -> Failed {
        let hostile = self.touched.lock().ok().and_then(|mut t| t.hostile.take());
        if let Some(keyword) = hostile {
            return Failed {
                line,
                cause: Cause::Sql {
                    message: format!(
                        "`{keyword}` cannot run inside the migration's transaction; mark the section `transaction:false`"
                    ),
                },
            };
        }
        Failed {
            line,
            cause: cause_of(&e),
        }
    }

    /// Creates the tracking tables once per run (in the first migration's
    /// transaction, so they exist exactly when something was recorded).
    fn ensure_tables(&self) -> rusqlite::Result<()> {
        if !self.tables_ready.get() {
            history::ensure(self.conn)?;
            self.tables_ready.set(true);
        }
        Ok(())
    }

    fn ensure_run(&self, run: &mut RunRecord<'_>) -> rusqlite::Result<()> {
        if run.id.is_none() {
            self.ensure_tables()?;
            run.id = Some(history::start_run(
                self.conn,
                &history::RunStart {
                    command: run.command,
                    started_at: run.started_at,
                    backup: run.backup,
                    schema_before: &run.schema_before,
                },
            )?);
        }
        Ok(())
    }

    /// Records how the run ended, in its own transaction.
    pub fn finish_run(
        &self,
        run: &mut RunRecord<'_>,
        outcome: Outcome,
        versions: &[Version],
        error: Option<&str>,
    ) -> rusqlite::Result<()> {
        self.finish_run_with(run, outcome, versions, error, None)
    }

    pub fn finish_run_with(
        &self,
        run: &mut RunRecord<'_>,
        outcome: Outcome,
        versions: &[Version],
        error: Option<&str>,
        detail: Option<&str>,
    ) -> rusqlite::Result<()> {
        self.guard(false);
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        let result = (|| {
            self.ensure_run(run)?;
            let after = Schema::read(self.conn)?;
            history::finish_run(
                self.conn,
                run.id.unwrap_or_default(),
                &history::RunEnd {
                    outcome,
                    migrations: versions,
                    error,
                    schema_after: &after,
                    detail,
                },
            )
        })();
        match result {
            Ok(()) => self.conn.execute_batch("COMMIT"),
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// `PRAGMA foreign_key_check` on the tables the migration touched and on the
    /// tables whose foreign keys point at them (deleting a parent orphans children).
    fn foreign_key_check(&mut self) -> rusqlite::Result<(Vec<Violation>, usize)> {
        let (touched, altered) = self
            .touched
            .lock()
            .map(|t| (t.tables.clone(), t.altered))
            .unwrap_or_default();
        if touched.is_empty() {
            return Ok((Vec::new(), 0));
        }
        // A rename rewrites other tables' references, so rebuild the whole map
        // then; otherwise refresh only the touched tables (cheap per migration).
        match &mut self.fk_graph {
            Some(graph) if !altered => {
                for t in &touched {
                    graph.remove(t);
                    let ps = parents_of(self.conn, t)?;
                    if !ps.is_empty() {
                        graph.insert(t.clone(), ps);
                    }
                }
            }
            _ => self.fk_graph = Some(parents_by_child(self.conn)?),
        }
        let parents = self.fk_graph.as_ref().cloned().unwrap_or_default();
        let mut check: BTreeSet<String> = BTreeSet::new();
        for (child, ps) in &parents {
            if touched.contains(child) || ps.iter().any(|p| touched.contains(p)) {
                check.insert(child.clone());
            }
        }
        let mut violations = Vec::new();
        let mut total = 0;
        for table in check {
            let mut stmt = self
                .conn
                .prepare("SELECT \"table\", rowid, parent FROM pragma_foreign_key_check(?1)")?;
            let rows = stmt.query_map([&table], |r| {
                Ok(Violation {
                    table: r.get(0)?,
                    rowid: r.get(1)?,
                    parent: r.get(2)?,
                })
            })?;
            for v in rows {
                total += 1;
                if violations.len() < 10 {
                    violations.push(v?);
                }
            }
        }
        Ok((violations, total))
    }
}

impl Drop for Runner<'_> {
    fn drop(&mut self) {
        self.conn
            .authorizer(None::<fn(AuthContext<'_>) -> Authorization>);
        self.conn.progress_handler(0, None::<fn() -> bool>);
    }
}

/// child table → the tables its foreign keys reference (lowercase). Tables
/// without foreign keys are left out, so the check is cheap for most schemas.
fn parents_by_child(conn: &Connection) -> rusqlite::Result<HashMap<String, Vec<String>>> {
    let mut stmt = conn.prepare(
        "SELECT lower(m.name), lower(f.\"table\") FROM sqlite_schema m, pragma_foreign_key_list(m.name) f
         WHERE m.type = 'table'",
    )?;
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))? {
        let (child, parent) = row?;
        out.entry(child).or_default().push(parent);
    }
    Ok(out)
}

fn parents_of(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT lower(\"table\") FROM pragma_foreign_key_list(?1)")?;
    let rows = stmt.query_map([table], |r| r.get::<_, String>(0))?;
    rows.collect()
}

fn fk_pragma(on: bool) -> &'static str {
    if on {
        "PRAGMA foreign_keys = ON"
    } else {
        "PRAGMA foreign_keys = OFF"
    }
}

fn cause_of(e: &rusqlite::Error) -> Cause {
    use rusqlite::ErrorCode as C;
    match e.sqlite_error_code() {
        Some(C::OperationInterrupted) => Cause::Interrupted,
        Some(C::DatabaseBusy | C::DatabaseLocked) => Cause::Locked {
            message: message(e),
        },
        _ => Cause::Sql {
            message: message(e),
        },
    }
}

/// SQLite's own message, without rusqlite's wrapping.
pub(crate) fn message(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqliteFailure(_, Some(msg)) => msg.clone(),
        other => other.to_string(),
    }
}
