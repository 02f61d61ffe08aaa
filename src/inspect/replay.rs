//! The schema check of `baseline` and `adopt` (issue 10 "No surprises",
//! issue 11): before migrations are recorded as applied without running
//! them, they are replayed on an empty in-memory database (schema changes
//! only, as the preflight follows them) and the result is compared with the
//! real database's normalized schema. A database that lacks what the
//! migrations make would otherwise be recorded as up to date, and the next
//! `up` would fail on it. No peer checks this.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::scratch::Scratch;
use crate::db::Schema;
use crate::error::{Error, Result};
use crate::migration::{Migration, Section};

/// How the real schema differs from the replay, each object with the
/// migration that makes it (where the replay made it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Mismatch {
    pub database: PathBuf,
    /// The newest migration replayed, as its file writes it.
    pub upto: String,
    /// Made by the migrations, absent from the database: `(object, migration)`.
    pub missing: Vec<(String, String)>,
    /// In the database, made by none of the migrations.
    pub unexpected: Vec<String>,
    /// In both, with different SQL: `(object, migration)`.
    pub changed: Vec<(String, String)>,
    /// Statements the empty copy could not follow (`file:line: message`): what
    /// they make is missing from the replay.
    pub unfollowed: Vec<String>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: its schema differs from the migrations up to {} replayed on an empty database",
            self.database.display(),
            self.upto
        )?;
        for (object, by) in &self.missing {
            write!(f, "\n  missing from the database: {object} (made by {by})")?;
        }
        for (object, by) in &self.changed {
            write!(
                f,
                "\n  different in the database: {object} (last made by {by})"
            )?;
        }
        for object in &self.unexpected {
            write!(f, "\n  not made by these migrations: {object}")?;
        }
        for stop in &self.unfollowed {
            write!(f, "\n  could not be replayed: {stop}")?;
        }
        Ok(())
    }
}

/// Refuses with `Error::SchemaMismatch` unless `real`'s schema (without the
/// objects of `ignored` tables: other tools' tracking tables) equals the
/// replay of `steps` on an empty database with `extensions` loaded.
pub fn check_schema(
    real: &Connection,
    database: &Path,
    steps: &[(&Migration, &Section)],
    extensions: &[PathBuf],
    ignored: &[&str],
) -> Result<()> {
    let sqlite = |e| Error::from_sqlite(database, e);
    let (scratch, _) = Scratch::new(None, extensions, None)?;
    let mut made_by: BTreeMap<String, String> = BTreeMap::new();
    let mut unfollowed = Vec::new();
    let mut before = Schema::default();
    for &(m, section) in steps {
        scratch.foreign_keys(section.options.foreign_keys);
        let stops = scratch.walk_noting(section, |_, _, _, _| Ok(()))?;
        unfollowed.extend(
            stops
                .into_iter()
                .map(|s| format!("{}:{}: {}", section.path.display(), s.line, s.message)),
        );
        let after = Schema::read(&scratch.conn).map_err(sqlite)?;
        let d = before.drift(&after);
        for key in d.appeared.into_iter().chain(d.changed) {
            made_by.insert(key, m.version.to_string());
        }
        before = after;
    }
    let replayed = without(before, &scratch.conn, ignored).map_err(sqlite)?;
    let actual = without(Schema::read(real).map_err(sqlite)?, real, ignored).map_err(sqlite)?;
    let drift = replayed.drift(&actual);
    if drift.is_empty() {
        return Ok(());
    }
    let by = |k: &String| (k.clone(), made_by.get(k).cloned().unwrap_or_default());
    Err(Error::SchemaMismatch(Box::new(Mismatch {
        database: database.to_path_buf(),
        upto: steps
            .last()
            .map(|(m, _)| m.version.to_string())
            .unwrap_or_default(),
        missing: drift.vanished.iter().map(by).collect(),
        unexpected: drift.appeared,
        changed: drift.changed.iter().map(by).collect(),
        unfollowed,
    })))
}

/// `schema` without the objects that belong to the `ignored` tables (their
/// indexes and triggers too), as `conn` names them.
fn without(mut schema: Schema, conn: &Connection, ignored: &[&str]) -> rusqlite::Result<Schema> {
    let mut stmt =
        conn.prepare("SELECT type || ' ' || name FROM sqlite_schema WHERE tbl_name = ?1")?;
    for table in ignored {
        let keys: Vec<String> = stmt
            .query_map([table], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for k in keys {
            schema.objects.remove(&k);
        }
    }
    Ok(schema)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migration::{Options, Version};

    fn m(v: u64, sql: &str) -> Migration {
        Migration::new(
            Version::number(v, &v.to_string()),
            format!("m{v}"),
            Section {
                path: format!("{v}_m{v}.sql").into(),
                text: sql.into(),
                first_line: 1,
                options: Options::default(),
            },
            None,
        )
    }

    fn check(real_sql: &str, files: &[Migration]) -> Result<()> {
        let real = Connection::open_in_memory().unwrap();
        real.execute_batch(real_sql).unwrap();
        let steps: Vec<(&Migration, &Section)> = files.iter().map(|m| (m, &m.up)).collect();
        check_schema(
            &real,
            Path::new("app.db"),
            &steps,
            &[],
            &["schema_migrations"],
        )
    }

    #[test]
    fn equal_schemas_pass_whatever_the_whitespace_and_foreign_tables() {
        let files = [
            m(1, "CREATE TABLE a(x);\nINSERT INTO a VALUES (1);"),
            m(2, "CREATE INDEX ai ON a(x);"),
        ];
        check(
            "CREATE TABLE a(x);  CREATE INDEX ai ON a(x);
             CREATE TABLE schema_migrations (version varchar(128) primary key);",
            &files,
        )
        .unwrap();
    }

    #[test]
    fn differences_name_the_objects_and_the_migration_that_makes_them() {
        let files = [
            m(1, "CREATE TABLE a(x);"),
            m(2, "CREATE TABLE b(y);"),
            m(3, "ALTER TABLE a ADD COLUMN z;"),
        ];
        let err = check("CREATE TABLE a(x); CREATE TABLE c(q);", &files).unwrap_err();
        let Error::SchemaMismatch(mm) = &err else {
            panic!("{err}")
        };
        assert_eq!(mm.missing, vec![("table b".to_string(), "2".to_string())]);
        assert_eq!(mm.changed, vec![("table a".to_string(), "3".to_string())]);
        assert_eq!(mm.unexpected, vec!["table c".to_string()]);
        assert_eq!(mm.upto, "3");
        let msg = err.to_string();
        assert!(
            msg.contains("missing from the database: table b (made by 2)"),
            "{msg}"
        );
    }

    #[test]
    fn a_statement_that_cannot_be_replayed_is_named() {
        let files = [m(
            1,
            "CREATE TABLE a(x);\nCREATE TABLE b AS SELECT nosuch(x) FROM a;",
        )];
        let err = check("CREATE TABLE a(x); CREATE TABLE b(y);", &files).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("1_m1.sql:2:") && msg.contains("nosuch"),
            "{msg}"
        );
    }
}
