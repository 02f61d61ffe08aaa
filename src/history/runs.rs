//! The run log, `_backstop_runs`: one row per run that changed something,
//! with its outcome, its backup and the schema before and after (drift is a
//! schema that differs from the last run's "after").

use rusqlite::{params, Connection, OptionalExtension};

use super::{ensure, now, table_exists, MIGRATIONS, RUNS};
use crate::db::Schema;
use crate::migration::Version;

/// How a run ended (SPEC: ok, failed, interrupted, restored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Written as a literal by `start_run`'s INSERT; read back by `runs`.
    #[allow(dead_code)]
    Running,
    Ok,
    Failed,
    Interrupted,
    Restored,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Running => "running",
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Interrupted => "interrupted",
            Outcome::Restored => "restored",
        }
    }
}

/// What a run row starts with.
#[derive(Debug, Clone)]
pub struct RunStart<'a> {
    pub command: &'a str,
    pub started_at: &'a str,
    pub backup: Option<&'a str>,
    pub schema_before: &'a str,
}

/// Inserts a run row; returns its id.
pub fn start_run(conn: &Connection, run: &RunStart<'_>) -> rusqlite::Result<i64> {
    conn.execute(
        &format!(
            "INSERT INTO {RUNS} (command, tool_version, started_at, outcome, backup, schema_before)
             VALUES (?1, ?2, ?3, 'running', ?4, ?5)"
        ),
        params![
            run.command,
            env!("CARGO_PKG_VERSION"),
            run.started_at,
            run.backup,
            run.schema_before
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

/// How a run row ends.
#[derive(Debug, Clone)]
pub struct RunEnd<'a> {
    pub outcome: Outcome,
    pub migrations: &'a [Version],
    pub error: Option<&'a str>,
    pub schema_after: &'a Schema,
    pub detail: Option<&'a str>,
}

pub fn finish_run(conn: &Connection, id: i64, end: &RunEnd<'_>) -> rusqlite::Result<()> {
    // Shown as the files write them: `log` is read by people.
    let versions: Vec<String> = end
        .migrations
        .iter()
        .map(|v| v.label().to_owned())
        .collect();
    conn.execute(
        &format!(
            "UPDATE {RUNS} SET finished_at = ?2, outcome = ?3, migrations = ?4, error = ?5,
                schema_after = ?6, schema_objects = ?7, detail = ?8 WHERE id = ?1"
        ),
        params![
            id,
            now(),
            end.outcome.as_str(),
            serde_json::to_string(&versions).unwrap_or_default(),
            end.error,
            end.schema_after.hash(),
            serde_json::to_string(end.schema_after).unwrap_or_default(),
            end.detail,
        ],
    )?;
    Ok(())
}

/// Records a run that is over as soon as it starts (`repair`, `baseline`,
/// `restore`): one row, with the current schema as both "before" and "after".
pub fn record_done(
    conn: &Connection,
    command: &str,
    backup: Option<&str>,
    outcome: Outcome,
    migrations: &[Version],
    error: Option<&str>,
    detail: &str,
) -> rusqlite::Result<()> {
    ensure(conn)?;
    let schema = Schema::read(conn)?;
    let started_at = now();
    let id = start_run(
        conn,
        &RunStart {
            command,
            started_at: &started_at,
            backup,
            schema_before: &schema.hash(),
        },
    )?;
    finish_run(
        conn,
        id,
        &RunEnd {
            outcome,
            migrations,
            error,
            schema_after: &schema,
            detail: Some(detail),
        },
    )
}

/// A row of `_backstop_runs`, for `log`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunRow {
    pub id: i64,
    pub command: String,
    pub tool_version: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub outcome: String,
    pub migrations: Vec<String>,
    pub error: Option<String>,
    pub backup: Option<String>,
    pub schema_before: Option<String>,
    pub schema_after: Option<String>,
    pub detail: Option<serde_json::Value>,
}

/// Runs, newest first.
pub fn runs(conn: &Connection) -> rusqlite::Result<Vec<RunRow>> {
    if !table_exists(conn, RUNS)? {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare(&format!(
        "SELECT id, command, tool_version, started_at, finished_at, outcome, migrations, error,
                backup, schema_before, schema_after, detail FROM {RUNS} ORDER BY id DESC"
    ))?;
    let rows = stmt.query_map([], |r| {
        let migrations: String = r.get(6)?;
        let detail: Option<String> = r.get(11)?;
        Ok(RunRow {
            id: r.get(0)?,
            command: r.get(1)?,
            tool_version: r.get(2)?,
            started_at: r.get(3)?,
            finished_at: r.get(4)?,
            outcome: r.get(5)?,
            migrations: serde_json::from_str(&migrations).unwrap_or_default(),
            error: r.get(7)?,
            backup: r.get(8)?,
            schema_before: r.get(9)?,
            schema_after: r.get(10)?,
            detail: detail.and_then(|d| serde_json::from_str(&d).ok()),
        })
    })?;
    let mut runs: Vec<RunRow> = rows.collect::<rusqlite::Result<_>>()?;
    // A run killed before it finished never wrote its list: the tracking rows
    // still say which migrations it committed.
    let mut by_run = conn.prepare(&format!(
        "SELECT version FROM {MIGRATIONS} WHERE run_id = ?1 ORDER BY applied_at, rowid"
    ))?;
    for run in runs.iter_mut().filter(|r| r.finished_at.is_none()) {
        // SPEC's outcomes: a run that never finished was interrupted (killed).
        run.outcome = Outcome::Interrupted.as_str().to_owned();
        if run.migrations.is_empty() {
            run.migrations = by_run
                .query_map([run.id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
        }
    }
    Ok(runs)
}

/// The schema hash recorded after the last run that finished, with its row id
/// (for `schema_objects`), for drift detection.
pub fn last_schema_hash(conn: &Connection) -> rusqlite::Result<Option<(i64, String)>> {
    if !table_exists(conn, RUNS)? {
        return Ok(None);
    }
    conn.query_row(
        &format!(
            "SELECT id, schema_after FROM {RUNS}
             WHERE schema_after IS NOT NULL AND schema_objects IS NOT NULL
             ORDER BY id DESC LIMIT 1"
        ),
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}

/// The objects of the schema recorded by run `id` (only read when the hash
/// differs: parsing them is most of the cost of a drift check).
pub fn schema_objects(conn: &Connection, id: i64) -> rusqlite::Result<Option<Schema>> {
    let text: Option<String> = conn
        .query_row(
            &format!("SELECT schema_objects FROM {RUNS} WHERE id = ?1"),
            [id],
            |r| r.get(0),
        )
        .optional()?;
    Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
}
