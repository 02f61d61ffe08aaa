//! Looks at pending migrations before anything runs, on an in-memory copy of
//! the database's schema (no rows): which statements cannot run inside a
//! transaction, and which steps drop or delete. SQLite's parser and authorizer
//! do the reading, so comments and string literals cannot fool it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization, TransactionOperation};
use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::migration::{Migration, Section, Version};
use crate::script::Script;

/// A statement that SQLite refuses or ignores inside a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hostile {
    pub keyword: String,
    pub line: usize,
}

/// A step that loses data or schema, shown before the run starts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Destructive {
    DropTable {
        version: Version,
        table: String,
        rows: Option<u64>,
    },
    DropView {
        version: Version,
        view: String,
    },
    DropColumn {
        version: Version,
        table: String,
        column: String,
        rows: Option<u64>,
    },
    /// Create new, copy, drop old, rename: reported as a rebuild, not a drop.
    Rebuild {
        version: Version,
        table: String,
        rows: Option<u64>,
        dropped_columns: Vec<String>,
    },
    DeleteRows {
        version: Version,
        table: String,
        rows: Option<u64>,
    },
}

impl std::fmt::Display for Destructive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rows = |r: &Option<u64>| match r {
            Some(1) => " (1 row)".to_string(),
            Some(n) => format!(" ({n} rows)"),
            None => String::new(),
        };
        match self {
            Destructive::DropTable {
                version,
                table,
                rows: r,
            } => {
                write!(f, "{version}: drops table {table}{}", rows(r))
            }
            Destructive::DropView { version, view } => write!(f, "{version}: drops view {view}"),
            Destructive::DropColumn {
                version,
                table,
                column,
                rows: r,
            } => {
                write!(f, "{version}: drops column {table}.{column}{}", rows(r))
            }
            Destructive::Rebuild {
                version,
                table,
                rows: r,
                dropped_columns,
            } => {
                write!(f, "{version}: rebuilds table {table}{}", rows(r))?;
                if !dropped_columns.is_empty() {
                    write!(f, ", without column(s) {}", dropped_columns.join(", "))?;
                }
                Ok(())
            }
            Destructive::DeleteRows {
                version,
                table,
                rows: r,
            } => {
                write!(f, "{version}: deletes rows from {table}{}", rows(r))
            }
        }
    }
}

/// What the inspection found for the whole plan.
#[derive(Debug, Default)]
pub struct Findings {
    pub destructive: Vec<Destructive>,
    /// False when some statement could not be followed on the schema copy (an
    /// extension, an attached database): checks then fall back to run time.
    pub complete: bool,
}

/// Inspects the sections to run, in order, against the schema of `real` (None: a
/// new database). Refuses with `Error::Hostile` for transaction-hostile statements.
pub fn inspect(real: Option<&Connection>, steps: &[(&Migration, &Section)]) -> Result<Findings> {
    let scratch = Connection::open_in_memory().map_err(|e| Error::from_sqlite(":memory:", e))?;
    let mut complete = match real {
        Some(conn) => seed(conn, &scratch).unwrap_or(false),
        None => true,
    };
    let log: Arc<Mutex<Vec<Action>>> = Arc::default();
    let sink = log.clone();
    scratch.authorizer(Some(move |ctx: AuthContext<'_>| {
        if let Ok(mut l) = sink.lock() {
            l.push(Action::from(&ctx).unwrap_or(Action::Other));
        }
        Authorization::Allow
    }));
    let mut destructive = Vec::new();
    // Column lists of every table, kept up to date migration by migration: only
    // the tables a migration touches are re-read, so 1,000 pending migrations
    // stay cheap.
    let mut known = tables(&scratch, None);
    for &(m, section) in steps {
        // The copy runs each section the way the real run will: the bundled
        // SQLite enables foreign keys by default, and with them on, a DELETE of
        // a parent would show its children's cascade as deleted rows.
        let _ = scratch.execute_batch(if section.options.foreign_keys {
            "PRAGMA foreign_keys = ON"
        } else {
            "PRAGMA foreign_keys = OFF"
        });
        let mut dropped = BTreeSet::new();
        let mut deleted = BTreeSet::new();
        let mut views = BTreeSet::new();
        let mut touched = BTreeSet::new();
        let mut altered = false;
        let followed = walk(&scratch, section, &log, |actions, hostile, line| {
            if let Some(keyword) = hostile {
                if section.options.transaction {
                    return Err(Error::Hostile {
                        path: section.path.clone(),
                        line,
                        keyword,
                    });
                }
            }
            let drops = actions.iter().any(|a| matches!(a, Action::DropTable(_)));
            for a in actions {
                match a {
                    Action::DropTable(t) => {
                        dropped.insert(t.clone());
                        touched.insert(t.to_lowercase());
                    }
                    Action::DropView(v) => {
                        views.insert(v.clone());
                    }
                    // DROP TABLE asks to delete its rows (and, through foreign-key
                    // actions, its children's): all of that is the drop.
                    Action::Delete(t) if !drops => {
                        deleted.insert(t.clone());
                    }
                    Action::CreateTable(t) => {
                        touched.insert(t.to_lowercase());
                    }
                    Action::AlterTable(t) => {
                        altered = true;
                        touched.insert(t.to_lowercase());
                    }
                    _ => {}
                }
            }
            Ok(())
        })?;
        complete &= followed;
        let before = subset(&known, &touched);
        // A rename gives a table a name the authorizer does not report: re-read all.
        let after = if altered {
            tables(&scratch, None)
        } else {
            tables(&scratch, Some(&touched))
        };
        let rows = |t: &str| real.and_then(|c| count(c, t));
        for t in &dropped {
            let key = t.to_lowercase();
            match (before.get(&key), after.get(&key)) {
                (Some(old), Some(new)) => destructive.push(Destructive::Rebuild {
                    version: m.version,
                    table: t.clone(),
                    rows: rows(t),
                    dropped_columns: old.iter().filter(|c| !new.contains(*c)).cloned().collect(),
                }),
                (Some(_), None) => destructive.push(Destructive::DropTable {
                    version: m.version,
                    table: t.clone(),
                    rows: rows(t),
                }),
                // Created and dropped within the migration: a temporary table.
                _ => {}
            }
        }
        for (key, old) in &before {
            if dropped.iter().any(|d| d.to_lowercase() == *key) {
                continue;
            }
            if let Some(new) = after.get(key) {
                for c in old.iter().filter(|c| !new.contains(*c)) {
                    destructive.push(Destructive::DropColumn {
                        version: m.version,
                        table: key.clone(),
                        column: c.clone(),
                        rows: rows(key),
                    });
                }
            }
        }
        for v in views {
            destructive.push(Destructive::DropView {
                version: m.version,
                view: v,
            });
        }
        for t in deleted {
            // Rows of a table created by this same migration were never the user's.
            if !known.contains_key(&t.to_lowercase()) {
                continue;
            }
            destructive.push(Destructive::DeleteRows {
                version: m.version,
                table: t.clone(),
                rows: rows(&t),
            });
        }
        if altered {
            known = after;
        } else {
            for t in &touched {
                match after.get(t) {
                    Some(cols) => known.insert(t.clone(), cols.clone()),
                    None => known.remove(t),
                };
            }
        }
    }
    Ok(Findings {
        destructive,
        complete,
    })
}

/// Runs `section` statement by statement on the scratch database, calling `each`
/// with what the authorizer saw, the hostile keyword if any, and the line.
/// Returns false if a statement could not be followed. One that cannot be
/// prepared ends the walk (its end is unknown); one that only fails when run
/// on the copy (it has no rows, so `NOT NULL`, `max()` and the like can differ)
/// does not, so a hostile statement after it is still refused before anything runs.
fn walk(
    scratch: &Connection,
    section: &Section,
    log: &Arc<Mutex<Vec<Action>>>,
    mut each: impl FnMut(&[Action], Option<String>, usize) -> Result<()>,
) -> Result<bool> {
    let mut script = Script::new(section);
    let mut followed = true;
    loop {
        clear(log);
        let mut st = match script.next(scratch) {
            Ok(Some(st)) => st,
            Ok(None) => return Ok(followed),
            Err(_) => return Ok(false),
        };
        let actions = take(log);
        let mut hostile = actions.iter().find_map(Action::hostile);
        // VACUUM asks the authorizer nothing; statements that ask nothing are
        // rare, so only they pay for a look at the bytecode.
        if hostile.is_none() && actions.is_empty() && is_vacuum(scratch, st.sql) {
            hostile = Some("VACUUM".to_owned());
        }
        each(&actions, hostile.clone(), st.line)?;
        // Only statements that change the schema are replayed on the copy: rows
        // do not matter here, a huge data migration must not fill memory, and a
        // slow query must not run twice out of Ctrl-C's reach (issue 4).
        // Statements that act on the transaction or on files are never replayed
        // (ATTACH would touch a real file). A statement that fails only on the
        // empty copy does not stop the scan of the statements after it.
        let schema_change = actions.iter().any(Action::changes_schema);
        if hostile.is_none() && schema_change && !replay(scratch, &mut st) {
            followed = false;
        }
    }
}

fn clear(log: &Arc<Mutex<Vec<Action>>>) {
    if let Ok(mut l) = log.lock() {
        l.clear();
    }
}

fn take(log: &Arc<Mutex<Vec<Action>>>) -> Vec<Action> {
    log.lock()
        .map(|mut l| std::mem::take(&mut *l))
        .unwrap_or_default()
}

/// VM steps after which a replayed statement is stopped. Schema changes on a
/// copy without rows take a few thousand; more means the statement computes
/// (say, an INSERT fed by a recursive CTE), which only the real run should do.
const REPLAY_STEPS: u64 = 5_000_000;

/// Runs `sql` on the copy within `REPLAY_STEPS`; false if it failed or was
/// stopped (the section then counts as not followed).
fn replay(scratch: &Connection, st: &mut crate::script::Statement<'_>) -> bool {
    let steps = AtomicU64::new(0);
    scratch.progress_handler(
        1_000,
        Some(move || steps.fetch_add(1_000, Ordering::Relaxed) >= REPLAY_STEPS),
    );
    let ok = st.run(scratch).is_ok();
    scratch.progress_handler(0, None::<fn() -> bool>);
    ok
}

/// VACUUM has no authorizer code; its bytecode has an opcode of its own.
fn is_vacuum(scratch: &Connection, sql: &str) -> bool {
    let Ok(mut stmt) = scratch.prepare(&format!("EXPLAIN {sql}")) else {
        return false;
    };
    let Ok(mut rows) = stmt.query([]) else {
        return false;
    };
    while let Ok(Some(row)) = rows.next() {
        if row.get::<_, String>(1).is_ok_and(|op| op == "Vacuum") {
            return true;
        }
    }
    false
}

/// The parts of an authorizer request that matter here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Transaction(&'static str),
    Attach,
    Detach,
    JournalMode,
    DropTable(String),
    DropView(String),
    Delete(String),
    CreateTable(String),
    AlterTable(String),
    /// Anything else that changes the schema (indexes, views, triggers, …).
    Schema,
    /// Reads, functions and the like: nothing to act on here.
    Other,
}

impl Action {
    pub fn from(ctx: &AuthContext<'_>) -> Option<Action> {
        let internal = crate::history::is_internal;
        Some(match ctx.action {
            AuthAction::Transaction { operation } => Action::Transaction(match operation {
                TransactionOperation::Begin => "BEGIN",
                TransactionOperation::Release => "COMMIT",
                TransactionOperation::Rollback => "ROLLBACK",
                // SQLite says "COMMIT", which rusqlite does not name.
                _ => "COMMIT",
            }),
            AuthAction::Attach { .. } => Action::Attach,
            AuthAction::Detach { .. } => Action::Detach,
            AuthAction::Pragma {
                pragma_name,
                pragma_value: Some(_),
            } if pragma_name.eq_ignore_ascii_case("journal_mode") => Action::JournalMode,
            AuthAction::DropTable { table_name } if !internal(table_name) => {
                Action::DropTable(table_name.to_owned())
            }
            AuthAction::DropView { view_name } => Action::DropView(view_name.to_owned()),
            AuthAction::Delete { table_name } if !internal(table_name) => {
                Action::Delete(table_name.to_owned())
            }
            AuthAction::CreateTable { table_name } if !internal(table_name) => {
                Action::CreateTable(table_name.to_owned())
            }
            AuthAction::AlterTable { table_name, .. } if !internal(table_name) => {
                Action::AlterTable(table_name.to_owned())
            }
            AuthAction::CreateIndex { .. }
            | AuthAction::CreateTempIndex { .. }
            | AuthAction::CreateTempTable { .. }
            | AuthAction::CreateTempTrigger { .. }
            | AuthAction::CreateTempView { .. }
            | AuthAction::CreateTrigger { .. }
            | AuthAction::CreateView { .. }
            | AuthAction::CreateVtable { .. }
            | AuthAction::DropIndex { .. }
            | AuthAction::DropTempIndex { .. }
            | AuthAction::DropTempTable { .. }
            | AuthAction::DropTempTrigger { .. }
            | AuthAction::DropTempView { .. }
            | AuthAction::DropTrigger { .. }
            | AuthAction::DropVtable { .. }
            | AuthAction::Analyze { .. }
            | AuthAction::Pragma { .. } => Action::Schema,
            _ => return None,
        })
    }

    pub fn changes_schema(&self) -> bool {
        matches!(
            self,
            Action::DropTable(_)
                | Action::DropView(_)
                | Action::CreateTable(_)
                | Action::AlterTable(_)
                | Action::Schema
        )
    }

    /// The keyword to name when this cannot run inside a transaction.
    pub fn hostile(&self) -> Option<String> {
        match self {
            Action::Transaction(k) => Some((*k).to_owned()),
            Action::Attach => Some("ATTACH".into()),
            Action::Detach => Some("DETACH".into()),
            Action::JournalMode => Some("PRAGMA journal_mode".into()),
            _ => None,
        }
    }
}

/// Copies the real schema (no rows) into the scratch database. Returns false if
/// some object could not be recreated there.
fn seed(real: &Connection, scratch: &Connection) -> rusqlite::Result<bool> {
    let mut stmt = real.prepare(
        "SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL
           AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid",
    )?;
    let sqls: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut ok = true;
    for sql in sqls {
        if let Err(e) = scratch.execute_batch(&sql) {
            // Shadow tables of virtual tables are created by the table itself.
            if !e.to_string().contains("already exists") {
                ok = false;
            }
        }
    }
    Ok(ok)
}

type Columns = BTreeMap<String, Vec<String>>;

fn subset(all: &Columns, keys: &BTreeSet<String>) -> Columns {
    keys.iter()
        .filter_map(|k| all.get(k).map(|v| (k.clone(), v.clone())))
        .collect()
}

/// Tables and their columns, keyed by lowercase name: all of them, or `only`
/// these (asked one by one, so the cost follows what a migration touched, not
/// the size of the schema).
fn tables(conn: &Connection, only: Option<&BTreeSet<String>>) -> Columns {
    let mut out = BTreeMap::new();
    let Some(only) = only else {
        let Ok(mut stmt) = conn.prepare(
            "SELECT m.name, p.name FROM sqlite_schema m, pragma_table_info(m.name) p
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
        ) else {
            return out;
        };
        let Ok(rows) = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        else {
            return out;
        };
        for (t, c) in rows.flatten() {
            out.entry(t.to_lowercase()).or_insert_with(Vec::new).push(c);
        }
        return out;
    };
    let Ok(mut stmt) = conn.prepare("SELECT name FROM pragma_table_info(?1)") else {
        return out;
    };
    for table in only {
        let cols: Vec<String> = stmt
            .query_map([table], |r| r.get(0))
            .map(|rows| rows.flatten().collect())
            .unwrap_or_default();
        // pragma_table_info of a view lists its columns too; only tables count.
        if !cols.is_empty() && is_table(conn, table) {
            out.insert(table.clone(), cols);
        }
    }
    out
}

fn is_table(conn: &Connection, name: &str) -> bool {
    conn.query_row(
        "SELECT count(*) FROM pragma_table_list(?1) WHERE type = 'table'",
        [name],
        |r| r.get::<_, i64>(0),
    )
    .is_ok_and(|n| n > 0)
}

/// Row count of a table in the real database (cheap enough for a warning).
fn count(conn: &Connection, table: &str) -> Option<u64> {
    let quoted = table.replace('"', "\"\"");
    conn.query_row(&format!("SELECT count(*) FROM \"{quoted}\""), [], |r| {
        r.get::<_, i64>(0)
    })
    .ok()
    .map(|n| n.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migration::Options;

    fn mig(v: u64, text: &str, transaction: bool) -> Migration {
        Migration::new(
            Version(v),
            "m".into(),
            Section {
                path: "m.sql".into(),
                text: text.into(),
                first_line: 1,
                options: Options {
                    transaction,
                    foreign_keys: false,
                },
            },
            None,
        )
    }

    fn hostile(text: &str) -> Option<(String, usize)> {
        let m = mig(1, text, true);
        match inspect(None, &[(&m, &m.up)]) {
            Err(Error::Hostile { keyword, line, .. }) => Some((keyword, line)),
            Err(e) => panic!("{e}"),
            Ok(_) => None,
        }
    }

    #[test]
    fn finds_transaction_hostile_statements() {
        assert_eq!(
            hostile("CREATE TABLE a(x);\nBEGIN;"),
            Some(("BEGIN".into(), 2))
        );
        assert_eq!(hostile("COMMIT"), Some(("COMMIT".into(), 1)));
        assert_eq!(hostile("END TRANSACTION;"), Some(("COMMIT".into(), 1)));
        assert_eq!(hostile("\n\nVACUUM;"), Some(("VACUUM".into(), 3)));
        assert_eq!(hostile("ATTACH 'x.db' AS x;"), Some(("ATTACH".into(), 1)));
        assert_eq!(
            hostile("PRAGMA journal_mode = WAL;"),
            Some(("PRAGMA journal_mode".into(), 1))
        );
    }

    #[test]
    fn comments_and_strings_do_not_fool_it() {
        assert_eq!(
            hostile("-- BEGIN;\n/* VACUUM; */ CREATE TABLE a(x TEXT DEFAULT 'COMMIT;');"),
            None
        );
        assert_eq!(
            hostile("CREATE TABLE a(x);\nCREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; END;"),
            None
        );
        assert_eq!(
            hostile("SAVEPOINT s; RELEASE s; PRAGMA foreign_keys = OFF;"),
            None
        );
    }

    #[test]
    fn a_statement_failing_on_the_rowless_copy_does_not_hide_later_ones() {
        let real = Connection::open_in_memory().unwrap();
        real.execute_batch("CREATE TABLE a(x); INSERT INTO a VALUES (5);")
            .unwrap();
        // On the copy `a` is empty, so max(x) is NULL and the INSERT fails there.
        let m = mig(
            2,
            "CREATE TABLE n(v NOT NULL);\nINSERT INTO n SELECT max(x) FROM a;\nVACUUM;",
            true,
        );
        match inspect(Some(&real), &[(&m, &m.up)]) {
            Err(Error::Hostile { keyword, line, .. }) => {
                assert_eq!((keyword.as_str(), line), ("VACUUM", 3))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn allowed_outside_a_transaction() {
        let m = mig(1, "VACUUM; BEGIN; CREATE TABLE a(x); COMMIT;", false);
        assert!(inspect(None, &[(&m, &m.up)]).is_ok());
    }

    #[test]
    fn rebuild_is_not_a_drop() {
        let real = Connection::open_in_memory().unwrap();
        real.execute_batch("CREATE TABLE t(a, b); INSERT INTO t VALUES (1, 2); CREATE TABLE u(x); CREATE VIEW v AS SELECT 1;").unwrap();
        let m = mig(
            7,
            "CREATE TABLE t_new(a); INSERT INTO t_new SELECT a FROM t; DROP TABLE t; ALTER TABLE t_new RENAME TO t;\n\
             DROP TABLE u; DROP VIEW v; DELETE FROM t WHERE a > 5; -- DROP TABLE nothing",
            true,
        );
        let f = inspect(Some(&real), &[(&m, &m.up)]).unwrap();
        assert!(f.complete);
        assert!(
            f.destructive.contains(&Destructive::Rebuild {
                version: Version(7),
                table: "t".into(),
                rows: Some(1),
                dropped_columns: vec!["b".into()]
            }),
            "{:?}",
            f.destructive
        );
        assert!(f.destructive.contains(&Destructive::DropTable {
            version: Version(7),
            table: "u".into(),
            rows: Some(0)
        }));
        assert!(f.destructive.contains(&Destructive::DropView {
            version: Version(7),
            view: "v".into()
        }));
        assert!(f
            .destructive
            .iter()
            .any(|d| matches!(d, Destructive::DeleteRows { table, .. } if table == "t")));
        assert_eq!(f.destructive.len(), 4, "{:?}", f.destructive);
    }

    #[test]
    fn drop_column_is_seen() {
        let real = Connection::open_in_memory().unwrap();
        real.execute_batch("CREATE TABLE t(a, b);").unwrap();
        let m = mig(2, "ALTER TABLE t DROP COLUMN b;", true);
        let f = inspect(Some(&real), &[(&m, &m.up)]).unwrap();
        assert_eq!(
            f.destructive,
            vec![Destructive::DropColumn {
                version: Version(2),
                table: "t".into(),
                column: "b".into(),
                rows: Some(0)
            }]
        );
    }

    /// Issue 4: the pre-run inspection must not run a slow statement a first
    /// time on the copy (minutes before any progress, deaf to Ctrl-C).
    #[test]
    fn slow_statements_are_not_run_on_the_copy() {
        let slow =
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 50000000)";
        let started = std::time::Instant::now();
        // A read-only one is skipped; what follows it is still checked.
        let m = mig(
            1,
            &format!("CREATE TABLE a(x);\n{slow} SELECT count(*) FROM c;\nBEGIN;"),
            true,
        );
        assert!(matches!(
            inspect(None, &[(&m, &m.up)]),
            Err(Error::Hostile { line: 3, .. })
        ));
        let m = mig(
            1,
            &format!("CREATE TABLE a(x);\n{slow} SELECT count(*) FROM c;\nDROP TABLE a;"),
            true,
        );
        let f = inspect(None, &[(&m, &m.up)]).unwrap();
        assert!(f.complete);
        // A computing schema change is stopped; run-time checks take over.
        let m = mig(
            1,
            &format!("CREATE TABLE b AS {slow} SELECT x FROM c;"),
            true,
        );
        assert!(!inspect(None, &[(&m, &m.up)]).unwrap().complete);
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }
}
