//! Steps that lose data or schema (drops, rebuilds, dropped columns, deletes),
//! found from what the authorizer saw on the scratch copy and the tables'
//! columns before and after each section, and shown before the run starts.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::Connection;

use super::action::Action;
use crate::migration::Version;

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
    /// A DELETE of rows the table had before the run.
    DeleteRows {
        version: Version,
        table: String,
        /// The statement, as written (its first line).
        statement: String,
        rows: Option<u64>,
        /// How many of today's rows the statement would delete, where that
        /// was cheap to count (None: not known).
        matching: Option<u64>,
    },
}

impl Destructive {
    /// Whether anything of the user's could be lost: a table or column with
    /// rows (or an unknown count), rows a DELETE matches. Dropping a view or an
    /// empty table loses nothing a migration cannot recreate, and is not
    /// worth a question (issue "No surprises").
    pub fn at_stake(&self) -> bool {
        match self {
            Destructive::DropView { .. } => false,
            Destructive::DeleteRows {
                matching: Some(m), ..
            } => *m > 0,
            Destructive::DropTable { rows, .. }
            | Destructive::DropColumn { rows, .. }
            | Destructive::Rebuild { rows, .. }
            | Destructive::DeleteRows { rows, .. } => *rows != Some(0),
        }
    }
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
                statement,
                rows: r,
                matching,
            } => {
                write!(f, "{version}: deletes rows from {table} (`{statement}`)")?;
                match (matching, r) {
                    (Some(m), Some(n)) => write!(f, ": {m} of its {n} rows match now"),
                    (_, Some(n)) => write!(f, "; the table has {n} rows now"),
                    _ => Ok(()),
                }
            }
        }
    }
}

/// What one section's statements did to tables, as the authorizer reported it.
#[derive(Debug, Default)]
pub(super) struct Seen {
    dropped: BTreeSet<String>,
    /// (table, the DELETE statement)
    deleted: BTreeSet<(String, String)>,
    views: BTreeSet<String>,
    touched: BTreeSet<String>,
    altered: bool,
}

impl Seen {
    /// Notes what one statement (`sql`) asked for.
    pub fn note(&mut self, actions: &[Action], sql: &str) {
        let drops = actions.iter().any(|a| matches!(a, Action::DropTable(_)));
        for a in actions {
            match a {
                Action::DropTable(t) => {
                    self.dropped.insert(t.clone());
                    self.touched.insert(t.to_lowercase());
                }
                Action::DropView(v) => {
                    self.views.insert(v.clone());
                }
                // DROP TABLE asks to delete its rows (and, through foreign-key
                // actions, its children's): all of that is the drop.
                Action::Delete(t) if !drops => {
                    self.deleted.insert((t.clone(), sql.trim().to_owned()));
                }
                Action::CreateTable(t) => {
                    self.touched.insert(t.to_lowercase());
                }
                Action::AlterTable(t) => {
                    self.altered = true;
                    self.touched.insert(t.to_lowercase());
                }
                _ => {}
            }
        }
    }
}

/// Column lists of every table of the copy, kept up to date migration by
/// migration: only the tables a migration touches are re-read, so 1,000
/// pending migrations stay cheap.
pub(super) struct Tables {
    known: Columns,
}

impl Tables {
    pub fn new(scratch: &Connection) -> Tables {
        Tables {
            known: tables(scratch, None),
        }
    }

    /// What the section `seen` lost, with row counts from `real`; then the
    /// known columns follow the section.
    pub fn after(
        &mut self,
        scratch: &Connection,
        real: Option<&Connection>,
        version: &Version,
        seen: Seen,
    ) -> Vec<Destructive> {
        let mut out = Vec::new();
        let before = subset(&self.known, &seen.touched);
        // A rename gives a table a name the authorizer does not report: re-read all.
        let rows = |t: &str| real.and_then(|c| count(c, t));
        // A table the database does not have yet was made by this run: nothing
        // of the user's is in it. A new database has nothing to lose at all.
        let existed = |t: &str| real.is_some_and(|c| is_table(c, t));
        // Only the user's tables are followed: every use of `known` below
        // asks `existed` too, and a thousand new tables would otherwise cost
        // a thousand column reads.
        let refresh: BTreeSet<String> = seen
            .touched
            .iter()
            .filter(|t| existed(t))
            .cloned()
            .collect();
        let after = if seen.altered {
            tables(scratch, None)
        } else {
            tables(scratch, Some(&refresh))
        };
        for t in seen.dropped.iter().filter(|t| existed(t)) {
            let key = t.to_lowercase();
            match (before.get(&key), after.get(&key)) {
                (Some(old), Some(new)) => out.push(Destructive::Rebuild {
                    version: version.clone(),
                    table: t.clone(),
                    rows: rows(t),
                    dropped_columns: old.iter().filter(|c| !new.contains(*c)).cloned().collect(),
                }),
                (Some(_), None) => out.push(Destructive::DropTable {
                    version: version.clone(),
                    table: t.clone(),
                    rows: rows(t),
                }),
                // Created and dropped within the migration: a temporary table.
                _ => {}
            }
        }
        for (key, old) in before.iter().filter(|(k, _)| existed(k)) {
            if seen.dropped.iter().any(|d| d.to_lowercase() == *key) {
                continue;
            }
            if let Some(new) = after.get(key) {
                for c in old.iter().filter(|c| !new.contains(*c)) {
                    out.push(Destructive::DropColumn {
                        version: version.clone(),
                        table: key.clone(),
                        column: c.clone(),
                        rows: rows(key),
                    });
                }
            }
        }
        for v in seen.views {
            out.push(Destructive::DropView {
                version: version.clone(),
                view: v,
            });
        }
        for (t, sql) in seen.deleted {
            // Rows of a table created by this same migration were never the user's.
            if !self.known.contains_key(&t.to_lowercase()) || !existed(&t) {
                continue;
            }
            out.push(Destructive::DeleteRows {
                version: version.clone(),
                table: t.clone(),
                statement: sql.lines().next().unwrap_or("").to_owned(),
                rows: rows(&t),
                matching: real.and_then(|c| matching(c, &sql)),
            });
        }
        if seen.altered {
            self.known = after;
        } else {
            for t in &refresh {
                match after.get(t) {
                    Some(cols) => self.known.insert(t.clone(), cols.clone()),
                    None => self.known.remove(t),
                };
            }
        }
        out
    }
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
    let Ok(mut stmt) = conn.prepare_cached("SELECT name FROM pragma_table_info(?1)") else {
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
    crate::db::is_table(conn, name)
}

/// VM steps after which counting what a DELETE matches is given up: a count
/// must not make the pre-run check slower than the run itself.
const COUNT_STEPS: u64 = 20_000_000;

/// How many rows of the real database `DELETE …` would delete today: the same
/// statement as `SELECT count(*) …`, prepared by SQLite (so comments and
/// strings cannot fool it) and run read-only within `COUNT_STEPS`. None when
/// the statement is not a plain `DELETE FROM … [WHERE …]`, or refers to what
/// the run creates first.
fn matching(real: &Connection, sql: &str) -> Option<u64> {
    let body = sql.trim_start();
    let rest = body
        .get(..6)
        .filter(|w| w.eq_ignore_ascii_case("delete"))
        .map(|_| &body[6..])
        .filter(|r| r.starts_with(char::is_whitespace))?;
    let mut stmt = real.prepare(&format!("SELECT count(*){rest}")).ok()?;
    if !stmt.readonly() {
        return None;
    }
    let steps = std::sync::atomic::AtomicU64::new(0);
    real.progress_handler(
        1_000,
        Some(move || steps.fetch_add(1_000, std::sync::atomic::Ordering::Relaxed) >= COUNT_STEPS),
    );
    let n = stmt.query_row([], |r| r.get::<_, i64>(0)).ok();
    real.progress_handler(0, None::<fn() -> bool>);
    n.map(|n| n.max(0) as u64)
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
