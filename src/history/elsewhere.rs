//! Tracking changes made by another process (issue 12): backstop's Python
//! runner writes a module's tracking row in the module's own transaction, so
//! the statements come from here, where the tracking tables are named, and
//! travel to the runner as text with named parameters.

use super::{create_tables, RunStart, MIGRATIONS, RUNS};
use crate::checksum::Checksum;
use crate::migration::{Migration, Version};

/// One statement of a tracking change that another process makes: backstop's
/// Python runner (apply/python.rs) runs these in order after the module, in the
/// module's own transaction, so the module's work and its row commit together
/// (issue 12). Parameters are named; the runner binds `duration_ms` and
/// `rows_changed` itself (it measures them), and a statement's `returns` name
/// to its `last_insert_rowid()` for the statements after it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Statement {
    pub sql: String,
    pub params: serde_json::Map<String, serde_json::Value>,
    pub returns: Option<&'static str>,
}

/// What a migration run elsewhere changes in the tracking table.
#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    /// `up`: its row, as `record` writes it.
    Record(&'a Migration),
    /// `down`: its row removed, as `unrecord` does.
    Unrecord(&'a Version),
}

/// The statements for `change`: the tables if missing, the run row when the
/// run has none yet (`run_id` None: this migration is the run's first to
/// commit), then the migration's row.
pub fn statements_elsewhere(
    change: Change<'_>,
    run_id: Option<i64>,
    run: &RunStart<'_>,
) -> Vec<Statement> {
    use serde_json::{json, Map, Value};
    let stmt = |sql: String, params: Value, returns| Statement {
        sql,
        params: match params {
            Value::Object(map) => map,
            _ => Map::new(),
        },
        returns,
    };
    let mut out: Vec<Statement> = create_tables()
        .into_iter()
        .map(|ddl| stmt(ddl, json!({}), None))
        .collect();
    if run_id.is_none() {
        out.push(stmt(
            format!(
                "INSERT INTO {RUNS} (command, tool_version, started_at, outcome, backup, schema_before)
                 VALUES (:command, :tool_version, :started_at, 'running', :backup, :schema_before)"
            ),
            json!({
                "command": run.command,
                "tool_version": env!("CARGO_PKG_VERSION"),
                "started_at": run.started_at,
                "backup": run.backup,
                "schema_before": run.schema_before,
            }),
            Some("run_id"),
        ));
    }
    out.push(match change {
        // applied_at as `now()` writes it: RFC 3339 UTC with milliseconds.
        Change::Record(m) => stmt(
            format!(
                "INSERT INTO {MIGRATIONS} (version, name, checksum, up_sql, down_checksum, applied_at,
                    duration_ms, rows_changed, run_id)
                 VALUES (:version, :name, :checksum, :up_sql, :down_checksum,
                    strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), :duration_ms, :rows_changed, :run_id)"
            ),
            json!({
                "version": m.version.id(),
                "name": m.name,
                "checksum": m.checksum.as_str(),
                "up_sql": m.up.text.as_str(),
                "down_checksum": m.down_checksum.as_ref().map(Checksum::as_str),
                "run_id": run_id,
                // Measured and bound by the runner.
                "duration_ms": null,
                "rows_changed": null,
            }),
            None,
        ),
        Change::Unrecord(v) => stmt(
            format!("DELETE FROM {MIGRATIONS} WHERE version = :version"),
            json!({ "version": v.id() }),
            None,
        ),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migration::{Options, Section};
    use rusqlite::types::Value;
    use rusqlite::Connection;

    /// Runs `statements` as the Python runner does: named parameters, the
    /// measured ones filled in, `returns` carried to later statements.
    fn run_as_the_runner(conn: &Connection, statements: &[Statement]) {
        let mut values = serde_json::json!({ "duration_ms": 7, "rows_changed": 3 });
        for st in statements {
            let mut named: Vec<(String, Value)> = Vec::new();
            for (k, v) in &st.params {
                let v = values.get(k).unwrap_or(v);
                let v = match v {
                    serde_json::Value::Null => Value::Null,
                    serde_json::Value::Number(n) => Value::Integer(n.as_i64().unwrap()),
                    other => Value::Text(other.as_str().unwrap().to_owned()),
                };
                named.push((format!(":{k}"), v));
            }
            let refs: Vec<(&str, &dyn rusqlite::ToSql)> = named
                .iter()
                .map(|(k, v)| (k.as_str(), v as &dyn rusqlite::ToSql))
                .collect();
            conn.execute(&st.sql, refs.as_slice()).unwrap();
            if let Some(name) = st.returns {
                values[name] = conn.last_insert_rowid().into();
            }
        }
    }

    #[test]
    fn the_runners_statements_record_what_record_records() {
        let section = Section {
            path: "2_x.py".into(),
            text: "def up(conn): pass\n".into(),
            first_line: 1,
            options: Options::default(),
        };
        let m = Migration::new(Version::number(2, "2"), "x".into(), section, None);
        let start = RunStart {
            command: "up",
            started_at: "2026-01-01T00:00:00.000Z",
            backup: Some("b.sqlite3"),
            schema_before: "h",
        };
        let conn = Connection::open_in_memory().unwrap();
        run_as_the_runner(
            &conn,
            &statements_elsewhere(Change::Record(&m), None, &start),
        );
        let rows = crate::history::applied(&conn, crate::source::Layout::Numbered).unwrap();
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!((r.version.id(), r.name.as_str()), ("2", "x"));
        assert_eq!(
            (&r.checksum, r.duration_ms, r.rows_changed),
            (&m.checksum, 7, 3)
        );
        assert!(
            r.applied_at.ends_with('Z') && r.applied_at.len() == 24,
            "{}",
            r.applied_at
        );
        let runs = crate::history::runs(&conn).unwrap();
        assert_eq!(r.run_id, Some(runs[0].id));
        assert_eq!(runs[0].backup.as_deref(), Some("b.sqlite3"));
        // A known run: no second run row; then down removes the row.
        run_as_the_runner(
            &conn,
            &statements_elsewhere(Change::Unrecord(&m.version), r.run_id, &start),
        );
        assert!(
            crate::history::applied(&conn, crate::source::Layout::Numbered)
                .unwrap()
                .is_empty()
        );
        assert_eq!(crate::history::runs(&conn).unwrap().len(), 1);
    }
}
