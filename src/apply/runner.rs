//! Runs one section (up or down) of a migration on one connection: its
//! statements, the authorizer guard, the progress handler, the foreign-key
//! check and the tracking change, in one transaction. `apply` decides what
//! runs and in which order.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::Connection;

use super::{sql, Cause, Violation};
use crate::db::Schema;
use crate::error::{Error, Result};
use crate::history::{self, Outcome};
use crate::inspect::Action;
use crate::migration::{Migration, Section, Version};
use crate::observe::{Event, Interrupt, Observer};
use crate::script::Script;

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
                if !history::is_internal(name) {
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
                    detail: None,
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
        let mut check: BTreeSet<&String> = BTreeSet::new();
        for (child, ps) in self.fk_graph.iter().flatten() {
            if touched.contains(child) || ps.iter().any(|p| touched.contains(p)) {
                check.insert(child);
            }
        }
        let mut violations = Vec::new();
        let mut total = 0;
        let mut stmt = self
            .conn
            .prepare("SELECT \"table\", rowid, parent FROM pragma_foreign_key_check(?1)")?;
        for table in check {
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
