//! The tracking tables inside the database (SPEC "Tracking tables"). The only
//! module that names them; every value goes through bound parameters.

use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use crate::checksum::Checksum;
use crate::db::Schema;
use crate::migration::{Migration, Version};
use crate::source::Layout;

mod elsewhere;
mod kept;

pub use elsewhere::{statements_elsewhere, Change, Statement};
mod carry;

pub use carry::{carry_runs, runs_after, stored_runs, StoredRun};

const MIGRATIONS: &str = "_backstop_migrations";
const RUNS: &str = "_backstop_runs";

/// A row of `_backstop_migrations`: what was applied, as recorded then.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AppliedRow {
    pub version: Version,
    pub name: String,
    pub checksum: Checksum,
    pub down_checksum: Option<Checksum>,
    pub applied_at: String,
    pub duration_ms: u64,
    pub rows_changed: u64,
    pub run_id: Option<i64>,
}

/// SQLite's own tables and backstop's: never the user's data.
pub fn is_internal(table: &str) -> bool {
    table.starts_with("sqlite_") || table.starts_with("_backstop_")
}

/// Creates the tracking tables if needed. Runs inside the caller's transaction.
pub fn ensure(conn: &Connection) -> rusqlite::Result<()> {
    for ddl in create_tables() {
        conn.execute_batch(&ddl)?;
    }
    Ok(())
}

fn create_tables() -> [String; 2] {
    // Versions are stored as text: numbered ones in decimal (SQLite integers
    // are signed 64-bit, and a version may be any unsigned 64-bit number), the
    // other layouts as their canonical id (see `migration::Version`).
    [
        format!(
            "CREATE TABLE IF NOT EXISTS {MIGRATIONS} (
            version       TEXT PRIMARY KEY,
            name          TEXT NOT NULL,
            checksum      TEXT NOT NULL,
            up_sql        TEXT NOT NULL,
            down_checksum TEXT,
            applied_at    TEXT NOT NULL,
            duration_ms   INTEGER NOT NULL,
            rows_changed  INTEGER NOT NULL,
            run_id        INTEGER
        )"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {RUNS} (
            id             INTEGER PRIMARY KEY,
            command        TEXT NOT NULL,
            tool_version   TEXT NOT NULL,
            started_at     TEXT NOT NULL,
            finished_at    TEXT,
            outcome        TEXT NOT NULL,
            migrations     TEXT NOT NULL DEFAULT '[]',
            error          TEXT,
            backup         TEXT,
            schema_before  TEXT,
            schema_after   TEXT,
            schema_objects TEXT,
            detail         TEXT
        )"
        ),
    ]
}

fn table_exists(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

/// Every applied migration, ordered by version as `layout` orders them. Empty
/// when not tracked yet.
pub fn applied(conn: &Connection, layout: Layout) -> rusqlite::Result<Vec<AppliedRow>> {
    if !table_exists(conn, MIGRATIONS)? {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare(&format!(
        "SELECT version, name, checksum, down_checksum, applied_at, duration_ms,
                rows_changed, run_id FROM {MIGRATIONS}"
    ))?;
    let rows = stmt.query_map([], |r| {
        let v: String = r.get(0)?;
        Ok(AppliedRow {
            version: layout.recorded(&v),
            name: r.get(1)?,
            checksum: Checksum::from_hex(r.get(2)?),
            down_checksum: r.get::<_, Option<String>>(3)?.map(Checksum::from_hex),
            applied_at: r.get(4)?,
            duration_ms: r.get::<_, i64>(5)?.max(0) as u64,
            rows_changed: r.get::<_, i64>(6)?.max(0) as u64,
            run_id: r.get(7)?,
        })
    })?;
    let mut out: Vec<AppliedRow> = rows.collect::<rusqlite::Result<_>>()?;
    out.sort_by(|a, b| a.version.cmp(&b.version));
    Ok(out)
}

/// The up text recorded when `version` was applied (for `repair`'s diff). Not
/// part of `applied`: every command reads that, and only `repair` needs this.
pub fn applied_text(conn: &Connection, version: &Version) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        &format!("SELECT up_sql FROM {MIGRATIONS} WHERE version = ?1"),
        [version.id()],
        |r| Ok(kept::decode(r.get_ref(0)?)),
    )
    .optional()
    .map(Option::flatten)
}

/// Records `m` as applied. Must run in the same transaction as the migration's
/// statements, so a migration is recorded if and only if it committed.
pub fn record(
    conn: &Connection,
    m: &Migration,
    duration: Duration,
    rows: u64,
    run_id: Option<i64>,
) -> rusqlite::Result<()> {
    conn.execute(
        &format!(
            "INSERT INTO {MIGRATIONS} (version, name, checksum, up_sql, down_checksum, applied_at,
                duration_ms, rows_changed, run_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        ),
        params![
            m.version.id(),
            m.name,
            m.checksum.as_str(),
            kept::encode(&m.up.text),
            m.down_checksum.as_ref().map(Checksum::as_str),
            now(),
            duration.as_millis() as i64,
            rows as i64,
            run_id,
        ],
    )?;
    Ok(())
}

/// `version`'s tracking row, as the run it names (`None`: not recorded). After
/// a migration ran in another process that ended without saying how, this
/// tells whether it committed (recorded if and only if committed).
pub fn recorded_run(conn: &Connection, version: &Version) -> rusqlite::Result<Option<Option<i64>>> {
    if !table_exists(conn, MIGRATIONS)? {
        return Ok(None);
    }
    conn.query_row(
        &format!("SELECT run_id FROM {MIGRATIONS} WHERE version = ?1"),
        [version.id()],
        |r| r.get::<_, Option<i64>>(0),
    )
    .optional()
}

/// Removes the tracking row of a migration that was rolled back by `down`.
pub fn unrecord(conn: &Connection, version: &Version) -> rusqlite::Result<usize> {
    conn.execute(
        &format!("DELETE FROM {MIGRATIONS} WHERE version = ?1"),
        [version.id()],
    )
}

/// Accepts the file's current text for an applied migration (`repair`).
pub fn rechecksum(conn: &Connection, m: &Migration) -> rusqlite::Result<usize> {
    conn.execute(
        &format!(
            "UPDATE {MIGRATIONS} SET checksum = ?2, up_sql = ?3, down_checksum = ?4, name = ?5
             WHERE version = ?1"
        ),
        params![
            m.version.id(),
            m.checksum.as_str(),
            kept::encode(&m.up.text),
            m.down_checksum.as_ref().map(Checksum::as_str),
            m.name
        ],
    )
}

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

/// RFC 3339 UTC with milliseconds.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
