//! The tracking tables inside the database (SPEC "Tracking tables"). The only
//! module that names them; every value goes through bound parameters.

use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use crate::checksum::Checksum;
use crate::migration::{Migration, Version};
use crate::source::Layout;

mod elsewhere;
mod kept;

pub use elsewhere::{statements_elsewhere, Change, Statement};
mod carry;
mod runs;

pub use carry::{carry_runs, runs_after, stored_runs, StoredRun};
pub use runs::{
    finish_run, last_schema_hash, record_done, runs, schema_objects, start_run, Outcome, RunEnd,
    RunRow, RunStart,
};

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
    // Cached: `up` records one row per migration, a thousand in a row.
    conn.prepare_cached(&format!(
        "INSERT INTO {MIGRATIONS} (version, name, checksum, up_sql, down_checksum, applied_at,
            duration_ms, rows_changed, run_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    ))?
    .execute(params![
        m.version.id(),
        m.name,
        m.checksum.as_str(),
        kept::encode(&m.up.text),
        m.down_checksum.as_ref().map(Checksum::as_str),
        now(),
        duration.as_millis() as i64,
        rows as i64,
        run_id,
    ])?;
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

/// RFC 3339 UTC with milliseconds.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
