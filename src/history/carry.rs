//! The run log across a restore (SPEC "Restore": the runs recorded after the
//! backup are carried into the restored database, so `log` still shows what
//! happened). Part of `history`, the one module that names the tables.

use rusqlite::{params, Connection};

use super::{ensure, table_exists, Outcome, RUNS};

/// A `_backstop_runs` row with every column as stored, to carry it across a
/// restore (SPEC "Restore": the runs recorded after the backup are carried
/// into the restored database, so `log` still shows what happened).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredRun {
    pub command: String,
    pub tool_version: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub outcome: String,
    pub migrations: String,
    pub error: Option<String>,
    pub backup: Option<String>,
    pub schema_before: Option<String>,
    pub schema_after: Option<String>,
    #[serde(skip)]
    pub schema_objects: Option<String>,
    pub detail: Option<String>,
}

/// Every run row, oldest first; empty when the table does not exist.
pub fn stored_runs(conn: &Connection) -> rusqlite::Result<Vec<StoredRun>> {
    if !table_exists(conn, RUNS)? {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare(&format!(
        "SELECT command, tool_version, started_at, finished_at, outcome, migrations, error,
                backup, schema_before, schema_after, schema_objects, detail
         FROM {RUNS} ORDER BY id"
    ))?;
    let rows = stmt.query_map([], |r| {
        Ok(StoredRun {
            command: r.get(0)?,
            tool_version: r.get(1)?,
            started_at: r.get(2)?,
            finished_at: r.get(3)?,
            outcome: r.get(4)?,
            migrations: r.get(5)?,
            error: r.get(6)?,
            backup: r.get(7)?,
            schema_before: r.get(8)?,
            schema_after: r.get(9)?,
            schema_objects: r.get(10)?,
            detail: r.get(11)?,
        })
    })?;
    rows.collect()
}

/// The runs of `live` that `backup` does not hold: recorded after the backup
/// was taken. A run is known by when it started and what it was (row ids are
/// renumbered when runs are carried).
pub fn runs_after(live: Vec<StoredRun>, backup: &[StoredRun]) -> Vec<StoredRun> {
    live.into_iter()
        .filter(|r| {
            !backup
                .iter()
                .any(|b| b.started_at == r.started_at && b.command == r.command)
        })
        .collect()
}

/// Appends `runs` to this database's run log, in order, creating the tables
/// if the database predates them. Runs inside the caller's transaction.
pub fn carry_runs(conn: &Connection, runs: &[StoredRun]) -> rusqlite::Result<()> {
    ensure(conn)?;
    let mut stmt = conn.prepare(&format!(
        "INSERT INTO {RUNS} (command, tool_version, started_at, finished_at, outcome, migrations,
            error, backup, schema_before, schema_after, schema_objects, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
    ))?;
    for r in runs {
        // A run killed before it finished is over now: its row says so,
        // since its migrations (which `runs` would consult) are not carried.
        let outcome = match r.finished_at {
            None => Outcome::Interrupted.as_str(),
            Some(_) => r.outcome.as_str(),
        };
        stmt.execute(params![
            r.command,
            r.tool_version,
            r.started_at,
            r.finished_at,
            outcome,
            r.migrations,
            r.error,
            r.backup,
            r.schema_before,
            r.schema_after,
            r.schema_objects,
            r.detail,
        ])?;
    }
    Ok(())
}
