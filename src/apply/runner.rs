//! Runs one section (up or down) of a migration on one connection: its
//! statements, the foreign-key check and the tracking change, in one
//! transaction. `watch` guards and times the statements; `execute` decides
//! what runs and in which order.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::hooks::{AuthContext, Authorization};
use rusqlite::Connection;

use super::foreign_keys::{self, ForeignKeys, Judged, Touched};
use super::watch::Watch;
use super::Cause;
use crate::db::{set_foreign_keys, Schema};
use crate::history::{self, Outcome};
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
    /// JSON for the run's `detail` (an accepted drift).
    pub detail: Option<&'a str>,
}

impl RunRecord<'_> {
    /// What the run row starts with (for a process that inserts it, issue 12).
    pub fn start(&self) -> history::RunStart<'_> {
        history::RunStart {
            command: self.command,
            started_at: self.started_at,
            backup: self.backup,
            schema_before: &self.schema_before,
        }
    }
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
    watch: Watch,
    interrupt: Interrupt,
    foreign_keys: ForeignKeys,
    /// The tracking tables exist (committed) on this connection.
    tables_ready: std::cell::Cell<bool>,
}

impl<'c> Runner<'c> {
    pub fn new(
        conn: &'c Connection,
        interrupt: &Interrupt,
        ticker: Option<crate::observe::Ticker>,
    ) -> Runner<'c> {
        Runner {
            conn,
            watch: Watch::install(conn, interrupt, ticker),
            interrupt: interrupt.clone(),
            foreign_keys: ForeignKeys::default(),
            tables_ready: std::cell::Cell::new(false),
        }
    }

    pub fn conn(&self) -> &'c Connection {
        self.conn
    }

    /// Stops watching for Ctrl-C and guarding statements: after an interrupt
    /// the progress handler would stop the recording of the run too.
    pub fn disarm(&self) {
        self.watch.guard(false);
        self.conn.progress_handler(0, None::<fn() -> bool>);
    }

    /// BEGIN or COMMIT, prepared once for the whole run.
    fn control(&self, sql: &str) -> rusqlite::Result<()> {
        self.conn.prepare_cached(sql)?.execute([]).map(|_| ())
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
            set_foreign_keys(self.conn, section.options.foreign_keys)
                .map_err(|e| sql_err(section.first_line, e))?;
        }
        if !lock_txn && transactional {
            self.control("BEGIN IMMEDIATE")
                .map_err(|e| sql_err(section.first_line, e))?;
        }
        let run_inserted_here = run.id.is_none();
        let result = self.run_body(m, section, run, obs, step, transactional);
        match result {
            Ok(v) => Ok(v),
            Err(failed) => {
                self.watch.guard(false);
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
        self.watch.track(transactional);
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
            self.watch.statement_started();
            let t0 = Instant::now();
            let result = st.run();
            if let Err(e) = result {
                return Err(self.failed(st.line, e));
            }
            obs.event(Event::StatementFinished {
                migration: m,
                line: st.line,
                duration: t0.elapsed(),
            });
        }
        self.watch.guard(false);
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
            let (touched, altered) = self.watch.touched();
            let backup = run.backup.map(Path::new);
            let judged = self
                .foreign_keys
                .judge(
                    self.conn,
                    Touched {
                        tables: &touched,
                        altered,
                        references: Touched::mentions_references(&section.text),
                    },
                    transactional,
                    backup,
                )
                .map_err(|e| sql_err(first_line, e))?;
            match judged {
                Judged::Clean => {}
                Judged::Introduced(cause) => {
                    return Err(Failed {
                        line: first_line,
                        cause,
                    })
                }
                Judged::OnlyOld(n) => obs.event(Event::Warning {
                    message: &foreign_keys::left_alone(m, n),
                }),
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
            Step::Down => history::unrecord(self.conn, &m.version).map(|_| ()),
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
            self.control("COMMIT").map_err(|e| sql_err(first_line, e))?;
        }
        Ok((duration, rows))
    }

    /// Records a migration that ran in a process of its own and committed its
    /// own changes (a script, issue 12): the tracking change in a transaction
    /// of its own, as for `transaction:false`. Not atomic with the script.
    pub fn record_outside(
        &mut self,
        m: &Migration,
        duration: Duration,
        run: &mut RunRecord<'_>,
        step: Step,
    ) -> std::result::Result<(), Failed> {
        if self.interrupted() {
            // The script finished, Ctrl-C or not: its writes are in, so its
            // row must be too (the progress handler would stop this).
            self.disarm();
        }
        let run_inserted_here = run.id.is_none();
        let recorded = self.conn.execute_batch("BEGIN IMMEDIATE").and_then(|()| {
            self.ensure_run(run)?;
            match step {
                Step::Up => self
                    .ensure_tables()
                    .and_then(|()| history::record(self.conn, m, duration, 0, run.id))?,
                Step::Down => history::unrecord(self.conn, &m.version).map(|_| ())?,
            }
            self.conn.execute_batch("COMMIT")
        });
        recorded.map_err(|e| {
            if !self.conn.is_autocommit() {
                let _ = self.conn.execute_batch("ROLLBACK");
            }
            self.tables_ready.set(false);
            if run_inserted_here {
                run.id = None;
            }
            Runner::failed_sql(e)
        })
    }

    /// A failure of backstop's own statement around a migration.
    pub fn failed_sql(e: rusqlite::Error) -> Failed {
        Failed {
            line: 1,
            cause: cause_of(&e),
        }
    }

    fn failed(&self, line: usize, e: rusqlite::Error) -> Failed {
        let hostile = self.watch.take_hostile();
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
        self.watch.guard(false);
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
                    detail: run.detail,
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
}

impl Drop for Runner<'_> {
    fn drop(&mut self) {
        self.conn
            .authorizer(None::<fn(AuthContext<'_>) -> Authorization>);
        self.conn.progress_handler(0, None::<fn() -> bool>);
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
