//! The user's schema, normalized, and its fingerprint (SPEC "Tracking tables":
//! a schema hash that differs from the last run's "after" is drift).

use std::collections::BTreeMap;

use rusqlite::Connection;
use sha2::{Digest, Sha256};

use crate::checksum::hex;

/// The user's schema: `sqlite_schema` without SQLite's and backstop's own objects,
/// keyed by "type name", SQL with whitespace runs collapsed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Schema {
    pub objects: BTreeMap<String, String>,
}

impl Schema {
    pub fn read(conn: &Connection) -> rusqlite::Result<Schema> {
        let mut stmt = conn.prepare(
            "SELECT type, name, coalesce(sql, '') FROM sqlite_schema
             WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
               AND name NOT LIKE '\\_backstop\\_%' ESCAPE '\\'",
        )?;
        let rows = stmt.query_map([], |r| {
            let kind: String = r.get(0)?;
            let name: String = r.get(1)?;
            let sql: String = r.get(2)?;
            Ok((format!("{kind} {name}"), normalize_sql(&sql)))
        })?;
        Ok(Schema {
            objects: rows.collect::<rusqlite::Result<_>>()?,
        })
    }

    /// SHA-256 of the normalized schema, as lowercase hex.
    pub fn hash(&self) -> String {
        let mut h = Sha256::new();
        for (k, v) in &self.objects {
            h.update(k.as_bytes());
            h.update([0]);
            h.update(v.as_bytes());
            h.update([0]);
        }
        hex(&h.finalize())
    }

    /// What changed from `self` (earlier) to `now`.
    pub fn drift(&self, now: &Schema) -> Drift {
        let mut d = Drift::default();
        for (k, v) in &now.objects {
            match self.objects.get(k) {
                None => d.appeared.push(k.clone()),
                Some(old) if old != v => d.changed.push(k.clone()),
                _ => {}
            }
        }
        for k in self.objects.keys() {
            if !now.objects.contains_key(k) {
                d.vanished.push(k.clone());
            }
        }
        d
    }
}

/// Objects that appeared, vanished or changed outside migrations.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Drift {
    pub appeared: Vec<String>,
    pub vanished: Vec<String>,
    pub changed: Vec<String>,
}

impl Drift {
    pub fn is_empty(&self) -> bool {
        self.appeared.is_empty() && self.vanished.is_empty() && self.changed.is_empty()
    }
}

/// "appeared: table x; changed: index y": the objects, grouped.
impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        for (what, list) in [
            ("appeared", &self.appeared),
            ("vanished", &self.vanished),
            ("changed", &self.changed),
        ] {
            if !list.is_empty() {
                parts.push(format!("{what}: {}", list.join(", ")));
            }
        }
        f.write_str(&parts.join("; "))
    }
}

/// Collapses whitespace runs to one space, so reformatting is not drift.
fn normalize_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    for word in sql.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Whether any attached schema has a table (not a view) named `name`
/// (case-insensitive, as SQLite's names are), by SQLite's own
/// lookup: `pragma_table_list(name)` and `sqlite_schema` scan every table, and
/// asked once per migration over a thousand migrations that is quadratic.
pub(crate) fn is_table(conn: &Connection, name: &str) -> bool {
    use rusqlite::ffi;
    let Ok(name) = std::ffi::CString::new(name) else {
        return false;
    };
    // SAFETY: the handle is open for as long as `conn` is borrowed; the names
    // are NUL-terminated and outlive the call; a null schema searches them all,
    // a null column name asks only
    // whether the table exists, and every out-pointer may be null.
    let rc = unsafe {
        ffi::sqlite3_table_column_metadata(
            conn.handle(),
            std::ptr::null(),
            name.as_ptr(),
            std::ptr::null(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    rc == ffi::SQLITE_OK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_hash_ignores_whitespace_and_own_tables() {
        let a = Connection::open_in_memory().unwrap();
        a.execute_batch("CREATE TABLE t(x  INT);\nCREATE TABLE _backstop_migrations(v);")
            .unwrap();
        let b = Connection::open_in_memory().unwrap();
        b.execute_batch("CREATE TABLE t(x INT);").unwrap();
        assert_eq!(
            Schema::read(&a).unwrap().hash(),
            Schema::read(&b).unwrap().hash()
        );
        b.execute_batch("CREATE INDEX i ON t(x);").unwrap();
        let (sa, sb) = (Schema::read(&a).unwrap(), Schema::read(&b).unwrap());
        assert_ne!(sa.hash(), sb.hash());
        assert_eq!(sa.drift(&sb).appeared, vec!["index i".to_string()]);
    }

    #[test]
    fn is_table_knows_tables_from_views_and_ignores_case() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE Users(x); CREATE VIEW v AS SELECT x FROM Users;")
            .unwrap();
        assert!(is_table(&c, "Users") && is_table(&c, "users"));
        assert!(!is_table(&c, "v"), "a view is not a table");
        assert!(!is_table(&c, "missing") && !is_table(&c, "nul\0name"));
    }
}
