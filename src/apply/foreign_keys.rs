//! The foreign-key check before each migration commits (SPEC "pitfalls"):
//! enforcement is off while migrations run, so `PRAGMA foreign_key_check` on
//! the tables the migration touched, and on the tables whose foreign keys
//! point at them (deleting a parent orphans children), catches what it broke.

use std::collections::{BTreeSet, HashMap};

use rusqlite::Connection;

use super::Violation;

/// child table → the tables its foreign keys reference (lowercase), built once
/// per run and refreshed for the tables each migration touches.
#[derive(Default)]
pub(super) struct ForeignKeys {
    graph: Option<HashMap<String, Vec<String>>>,
}

impl ForeignKeys {
    /// Violations (the first ten) and their total, on `touched` and their children.
    pub fn check(
        &mut self,
        conn: &Connection,
        touched: &BTreeSet<String>,
        altered: bool,
    ) -> rusqlite::Result<(Vec<Violation>, usize)> {
        if touched.is_empty() {
            return Ok((Vec::new(), 0));
        }
        // A rename rewrites other tables' references, so rebuild the whole map
        // then; otherwise refresh only the touched tables (cheap per migration).
        match &mut self.graph {
            Some(graph) if !altered => {
                for t in touched {
                    graph.remove(t);
                    let ps = parents_of(conn, t)?;
                    if !ps.is_empty() {
                        graph.insert(t.clone(), ps);
                    }
                }
            }
            _ => self.graph = Some(parents_by_child(conn)?),
        }
        let mut check: BTreeSet<&String> = BTreeSet::new();
        for (child, ps) in self.graph.iter().flatten() {
            if touched.contains(child) || ps.iter().any(|p| touched.contains(p)) {
                check.insert(child);
            }
        }
        let mut violations = Vec::new();
        let mut total = 0;
        let mut stmt =
            conn.prepare("SELECT \"table\", rowid, parent FROM pragma_foreign_key_check(?1)")?;
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
