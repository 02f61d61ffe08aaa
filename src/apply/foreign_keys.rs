//! The foreign-key check before each migration commits (SPEC "pitfalls"):
//! enforcement is off while migrations run, so `PRAGMA foreign_key_check` on
//! the tables the migration touched, and on the tables whose foreign keys
//! point at them (deleting a parent orphans children), catches what it broke.
//!
//! Only what the migration *introduced* fails it. An app that never switched
//! enforcement on often has orphans already; a migration that merely touches
//! such a table must not be blamed for them. So when the check finds rows, the
//! same check runs on the state before the migration: a read-only connection
//! to the database sees its last commit (the migration's transaction is not
//! committed yet); where that read is blocked (a rollback-journal writer that
//! spilled its cache holds the exclusive lock) or the section ran without a
//! transaction, the pre-run backup. Without either, every row counts as new.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::{Cause, Violation};
use crate::migration::Migration;

/// The orphans found on the checked tables, by (child table, parent table).
#[derive(Debug, Default)]
struct Orphans {
    tables: Vec<String>,
    rows: HashMap<(String, String), Rows>,
}

#[derive(Debug, Default)]
struct Rows {
    rowids: HashSet<i64>,
    /// WITHOUT ROWID tables report no rowid: only their count compares.
    unnamed: usize,
}

/// The check's answer for one migration.
pub(super) enum Judged {
    Clean,
    /// It left orphans of its own: the failure's cause.
    Introduced(Cause),
    /// Only orphans that were there before it (how many).
    OnlyOld(usize),
}

/// What a migration did to foreign keys: the violations it introduced (the
/// first ten, and their total) and how many orphans were there before it.
#[derive(Debug, Default)]
struct Verdict {
    violations: Vec<Violation>,
    total: usize,
    preexisting: usize,
}

impl Orphans {
    fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Compares with `before` (the same tables, before the migration); with
    /// no `before`, every orphan is the migration's.
    fn since(&self, before: Option<&Orphans>) -> Verdict {
        let mut verdict = Verdict::default();
        let mut keys: Vec<_> = self.rows.keys().collect();
        keys.sort();
        for key @ (table, parent) in keys {
            let now = &self.rows[key];
            let then = before.and_then(|b| b.rows.get(key));
            let mut rowids: Vec<i64> = now
                .rowids
                .iter()
                .filter(|id| !then.is_some_and(|t| t.rowids.contains(id)))
                .copied()
                .collect();
            rowids.sort_unstable();
            let unnamed = now.unnamed.saturating_sub(then.map_or(0, |t| t.unnamed));
            verdict.preexisting += now.rowids.len() + now.unnamed - rowids.len() - unnamed;
            verdict.total += rowids.len() + unnamed;
            let named = rowids.into_iter().map(Some);
            for rowid in named.chain(std::iter::repeat_n(None, unnamed)) {
                if verdict.violations.len() < 10 {
                    verdict.violations.push(Violation {
                        table: table.clone(),
                        rowid,
                        parent: parent.clone(),
                    });
                }
            }
        }
        verdict
    }

    /// The same check on the state before the migration (see the module
    /// docs); None when no such state can be read.
    fn before(
        &self,
        live: &Connection,
        transactional: bool,
        backup: Option<&Path>,
    ) -> Option<Orphans> {
        let committed = transactional
            .then(|| live.path().map(Path::new))
            .flatten()
            .and_then(|path| self.read_at(path));
        committed.or_else(|| self.read_at(backup?))
    }

    fn read_at(&self, path: &Path) -> Option<Orphans> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).ok()?;
        // Never wait: the lock that blocks this read is the migration's own.
        conn.busy_timeout(std::time::Duration::ZERO).ok()?;
        // A table the migration created had no orphans before it.
        let mut exists = conn
            .prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND lower(name) = ?1")
            .ok()?;
        let tables: BTreeSet<&String> = self
            .tables
            .iter()
            .filter(|t| exists.exists([t]).unwrap_or(false))
            .collect();
        orphans(&conn, tables).ok()
    }
}
/// child table → the tables its foreign keys reference (lowercase), built once
/// per run and refreshed for the tables each migration touches.
#[derive(Default)]
pub(super) struct ForeignKeys {
    graph: Option<HashMap<String, Vec<String>>>,
}

impl ForeignKeys {
    /// Whether the migration that touched `touched` left orphans of its own.
    pub fn judge(
        &mut self,
        conn: &Connection,
        touched: Touched<'_>,
        transactional: bool,
        backup: Option<&Path>,
    ) -> rusqlite::Result<Judged> {
        let found = self.check(conn, touched)?;
        if found.is_empty() {
            return Ok(Judged::Clean);
        }
        let before = found.before(conn, transactional, backup);
        let verdict = found.since(before.as_ref());
        Ok(if verdict.total > 0 {
            Judged::Introduced(Cause::ForeignKeys {
                violations: verdict.violations,
                total: verdict.total,
                compared: before.is_some(),
            })
        } else {
            Judged::OnlyOld(verdict.preexisting)
        })
    }

    /// The orphans on `touched` and their children.
    fn check(&mut self, conn: &Connection, touched: Touched<'_>) -> rusqlite::Result<Orphans> {
        let Touched {
            tables: touched,
            altered,
            references,
        } = touched;
        if touched.is_empty() {
            return Ok(Orphans::default());
        }
        // A rename rewrites other tables' references, so rebuild the whole map
        // then; otherwise refresh only the touched tables (cheap per migration).
        match &mut self.graph {
            Some(graph) if !altered => {
                for t in touched {
                    // Without REFERENCES in the section, a table that had no
                    // foreign keys has none now either: nothing to ask.
                    if !references && !graph.contains_key(t) {
                        continue;
                    }
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
        orphans(conn, check)
    }
}

/// What a section changed, as far as foreign keys go.
#[derive(Clone, Copy)]
pub(super) struct Touched<'a> {
    /// The tables it wrote or created (lowercase).
    pub tables: &'a BTreeSet<String>,
    /// It altered a table (a rename rewrites other tables' references).
    pub altered: bool,
    /// Its text says REFERENCES somewhere (comments and strings included):
    /// the only way a table gains a foreign key.
    pub references: bool,
}

impl Touched<'_> {
    /// Whether `text` says REFERENCES, in any case, without copying it (a
    /// migration may be a hundred megabytes).
    pub fn mentions_references(text: &str) -> bool {
        text.as_bytes()
            .windows(b"references".len())
            .any(|w| w.eq_ignore_ascii_case(b"references"))
    }
}

/// The warning for a migration that committed beside orphans it did not make.
pub(super) fn left_alone(m: &Migration, preexisting: usize) -> String {
    format!(
        "{}: {preexisting} row(s) in the tables it touched already pointed at missing parents \
         before it ran; they are left as they are (`backstop verify` lists them)",
        m.path.display()
    )
}

/// `PRAGMA foreign_key_check` on `tables`.
fn orphans(conn: &Connection, tables: BTreeSet<&String>) -> rusqlite::Result<Orphans> {
    let mut found = Orphans {
        tables: tables.iter().map(|t| t.to_string()).collect(),
        rows: HashMap::new(),
    };
    if tables.is_empty() {
        return Ok(found);
    }
    let mut stmt =
        conn.prepare_cached("SELECT \"table\", rowid, parent FROM pragma_foreign_key_check(?1)")?;
    for table in tables {
        let mut rows = stmt.query([table])?;
        while let Some(row) = rows.next()? {
            let key = (row.get::<_, String>(0)?, row.get::<_, String>(2)?);
            let entry = found.rows.entry(key).or_default();
            match row.get::<_, Option<i64>>(1)? {
                Some(id) => {
                    entry.rowids.insert(id);
                }
                None => entry.unnamed += 1,
            }
        }
    }
    Ok(found)
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
    let mut stmt =
        conn.prepare_cached("SELECT lower(\"table\") FROM pragma_foreign_key_list(?1)")?;
    let rows = stmt.query_map([table], |r| r.get::<_, String>(0))?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::Touched;

    #[test]
    fn references_is_found_in_any_case_and_nowhere_else() {
        assert!(Touched::mentions_references("a INTEGER REFERENCES p(id)"));
        assert!(Touched::mentions_references("x int references p"));
        assert!(Touched::mentions_references("-- ReFeReNcEs in a comment"));
        assert!(!Touched::mentions_references(
            "CREATE TABLE t (x); -- refer ences"
        ));
        assert!(!Touched::mentions_references("referenc"));
    }
}
