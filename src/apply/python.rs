//! Module mode (issue 12): a Python migration module runs through backstop's
//! own runner (`python_runner.py`, embedded below) in ONE transaction with its
//! tracking row, so it is recorded if and only if it committed, as SQL is.
//!
//! The conversation, one JSON line each way at a time:
//! 1. backstop sends the job on stdin (module, function, database, busy
//!    timeout, foreign-key setting); the runner switches foreign keys off,
//!    takes `BEGIN IMMEDIATE` and answers `locked` on fd 3 (`lock`);
//! 2. backstop may now take its backup (the first migration of a run: the
//!    write lock is held across the backup and the migration, SPEC `up`),
//!    then sends `go` with the tracking statements, built by `history` (the
//!    only module that names the tracking tables), or nothing when it stops;
//! 3. the runner imports the module, calls it, checks foreign keys, runs the
//!    statements, commits and answers `done`, or rolls back and answers
//!    `failed` with the cause (`finish`).
//!
//! A runner that ends without an answer (killed, crashed) is judged by the
//! database itself: the tracking row is there if and only if it committed.

use std::collections::HashMap;
use std::time::Duration;

use rusqlite::Connection;

use super::exec::{describe, Child, Next};
use super::launch::Launch;
use super::runner::{Failed, Step};
use super::{Cause, Violation};
use crate::history::{self, Statement};
use crate::migration::{Migration, Section};
use crate::observe::{Event, Interrupt, Observer, OutputLine};

const RUNNER: &str = include_str!("python_runner.py");

/// A runner holding the database's write lock, waiting for `go`. Dropped
/// without `finish`, its process group is killed: it wrote nothing yet.
pub(super) struct Held {
    child: Child,
}

/// A module that committed.
pub(super) struct Done {
    pub duration: Duration,
    pub rows: u64,
    /// The run row the runner inserted (this was the run's first commit).
    pub run_id: Option<i64>,
}

/// A runner's message on fd 3.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct Message {
    event: String,
    cause: String,
    message: String,
    line: Option<usize>,
    traceback: Vec<String>,
    violations: Vec<Orphan>,
    total: usize,
    duration_us: u64,
    rows_changed: u64,
    returned: HashMap<String, i64>,
    preexisting_orphans: usize,
    compared: bool,
}

/// What a locked runner is told to go on with: the tracking statements, and
/// the pre-run backup.
pub(super) struct Go<'a> {
    pub statements: Vec<Statement>,
    pub backup: Option<&'a str>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct Orphan {
    table: String,
    rowid: Option<i64>,
    parent: String,
}

/// Starts the runner for `section` of `m` and waits until it holds the lock.
pub(super) fn lock(
    launch: &Launch,
    m: &Migration,
    section: &Section,
    step: Step,
    obs: &mut dyn Observer,
    interrupt: &Interrupt,
) -> Result<Held, (Failed, Vec<OutputLine>)> {
    let started = Child::spawn(launch.runner(RUNNER), true, true);
    let mut child = started.map_err(|e| {
        let failed = module_failed(format!("cannot start the Python runner: {e}"));
        (failed, Vec::new())
    })?;
    let job = serde_json::json!({
        "module": std::path::absolute(&m.path).unwrap_or_else(|_| m.path.clone()),
        "function": match step {
            Step::Up => "up",
            Step::Down => "down",
        },
        "database": launch.database(),
        "busy_ms": launch.busy.as_millis() as u64,
        "foreign_keys": section.options.foreign_keys,
        "extensions": launch.extensions,
    });
    if child.send(&job.to_string()).is_err() {
        let status = child.wait(m, obs, interrupt);
        return Err(lost(&mut child, status));
    }
    match child.next(m, obs, interrupt) {
        Next::Message(text) => match parse(&text) {
            Some(msg) if msg.event == "locked" => Ok(Held { child }),
            Some(msg) => {
                let failed = failed_of(&child, msg);
                child.wait(m, obs, interrupt);
                Err((failed, child.take_output()))
            }
            None => Err(garbled(&mut child, &text)),
        },
        Next::Exited(status) => Err(lost(&mut child, status)),
    }
}

/// Lets a locked runner go on: the module, its foreign-key check, the
/// `statements` (the tracking change) and COMMIT. `conn` (backstop's own)
/// judges a runner that ended without an answer.
pub(super) fn finish(
    mut held: Held,
    go: Go<'_>,
    conn: &Connection,
    m: &Migration,
    step: Step,
    obs: &mut dyn Observer,
    interrupt: &Interrupt,
) -> (Result<Done, Failed>, Vec<OutputLine>) {
    let child = &mut held.child;
    if interrupt.is_set() {
        // Ctrl-C while the lock was taken or the backup made: stop here.
        let _ = child.send(r#"{"go": false}"#);
        child.close_stdin();
        child.wait(m, obs, interrupt);
        let stop = Failed {
            line: 1,
            cause: Cause::Interrupted,
        };
        return (Err(stop), child.take_output());
    }
    // The backup is the foreign-key check's fallback for the state before.
    let backup = go
        .backup
        .map(|b| std::path::absolute(b).unwrap_or_else(|_| b.into()));
    let go = serde_json::json!({ "go": true, "statements": go.statements, "backup": backup });
    let sent = child.send(&go.to_string());
    // Nothing more to say: a module that reads stdin gets EOF, not a hang.
    child.close_stdin();
    let answer = match sent {
        Ok(()) => match child.next(m, obs, interrupt) {
            Next::Message(text) => Some(text),
            Next::Exited(_) => None,
        },
        Err(_) => None,
    };
    // Wait for the end in every case: a rollback finishes before backstop
    // takes the lock again.
    let status = child.wait(m, obs, interrupt);
    let result = match answer.as_deref().map(|t| (t, parse(t))) {
        Some((_, Some(msg))) if msg.event == "done" => {
            if msg.preexisting_orphans > 0 {
                obs.event(Event::Warning {
                    message: &super::foreign_keys::left_alone(m, msg.preexisting_orphans),
                });
            }
            Ok(Done {
                duration: Duration::from_micros(msg.duration_us),
                rows: msg.rows_changed,
                run_id: msg.returned.get("run_id").copied(),
            })
        }
        Some((_, Some(msg))) if msg.event == "failed" => Err(failed_of(child, msg)),
        Some((text, _)) => Err(garbled(child, text).0),
        None => Err(lost(child, status).0),
    };
    // The database has the last word: the tracking change is there if and
    // only if the runner's transaction committed, whatever it said (or did
    // not say: killed, crashed).
    let result = match (result, committed(conn, m, step)) {
        (Ok(done), _) => Ok(done),
        (Err(_), Some(run_id)) => Ok(Done {
            duration: child.elapsed(),
            rows: 0,
            run_id,
        }),
        (Err(failed), None) => Err(failed),
    };
    (result, child.take_output())
}

/// `Some(run id)` when the tracking change of `step` is in the database.
fn committed(conn: &Connection, m: &Migration, step: Step) -> Option<Option<i64>> {
    match (history::recorded_run(conn, &m.version).ok()?, step) {
        (Some(run_id), Step::Up) => Some(run_id),
        (None, Step::Down) => Some(None),
        _ => None,
    }
}

fn parse(text: &str) -> Option<Message> {
    serde_json::from_str(text).ok()
}

fn failed_of(child: &Child, msg: Message) -> Failed {
    let line = msg.line.unwrap_or(1);
    let cause = match msg.cause.as_str() {
        _ if child.interrupted() => Cause::Interrupted,
        "interrupted" => Cause::Interrupted,
        "locked" => Cause::Locked {
            message: msg.message,
        },
        "sql" => Cause::Sql {
            message: msg.message,
        },
        "foreign-keys" => Cause::ForeignKeys {
            violations: msg
                .violations
                .into_iter()
                .map(|o| Violation {
                    table: o.table,
                    rowid: o.rowid,
                    parent: o.parent,
                })
                .collect(),
            total: msg.total,
            compared: msg.compared,
        },
        _ => Cause::Module {
            message: msg.message,
            traceback: msg.traceback,
        },
    };
    Failed { line, cause }
}

fn module_failed(message: String) -> Failed {
    Failed {
        line: 1,
        cause: Cause::Module {
            message,
            traceback: Vec::new(),
        },
    }
}

/// The runner ended without a readable answer.
fn lost(child: &mut Child, status: std::process::ExitStatus) -> (Failed, Vec<OutputLine>) {
    let failed = if child.interrupted() {
        Failed {
            line: 1,
            cause: Cause::Interrupted,
        }
    } else {
        Failed {
            line: 1,
            cause: Cause::Exited {
                message: format!("(backstop's Python runner) {}", describe(status)),
                code: status.code(),
                stderr: child.stderr_tail(10),
            },
        }
    };
    (failed, child.take_output())
}

fn garbled(child: &mut Child, text: &str) -> (Failed, Vec<OutputLine>) {
    let failed = module_failed(format!(
        "the Python runner said something unexpected: {text}"
    ));
    (failed, child.take_output())
}
