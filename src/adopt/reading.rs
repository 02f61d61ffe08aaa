//! What another tool's tracking table says, in backstop's terms, and the
//! helpers the per-tool readers share: reading loosely typed columns, the
//! file bytes the tools hashed, and matching the tools' versions to files.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::types::Value;
use rusqlite::Connection;

use crate::migration::Migration;

/// One file the other tool counts as applied.
#[derive(Debug, Clone)]
pub(crate) struct Claim {
    /// Index into the folder's migrations.
    pub file: usize,
    pub checksum: Kept,
}

/// What the other tool remembers of the file's contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kept {
    /// The tool keeps no checksum (dbmate, golang-migrate, goose, diesel), or
    /// none for this row (a Flyway baseline).
    Nothing,
    /// The file still hashes to what the tool recorded when it applied it.
    Matches,
    /// The file changed since the tool applied it.
    Differs,
}

/// A tool's table read with its own semantics.
#[derive(Debug, Default)]
pub(crate) struct Reading {
    pub applied: Vec<Claim>,
    /// Versions the tool recorded that no file in the folder matches.
    pub without_file: Vec<String>,
    /// Failed or dirty records: adopt is refused while there are any.
    pub failed: Vec<String>,
    /// What the user should know about how the table was read.
    pub notes: Vec<String>,
}

/// How a tool hashes a file: the renderings of the file (`bytes` as read) it
/// could have recorded, as text (raw and normalized spellings, see
/// `either_spelling`).
pub(crate) type HashOf = fn(&Migration, &[u8]) -> Vec<String>;

impl Reading {
    /// Claims every file whose tool version (`version_of`, computed the way the
    /// tool computes it from the file name) the tool recorded, comparing its
    /// contents with the recorded checksum where there is one; lists the
    /// recorded versions no file has. `recorded`: tool version → checksum.
    pub fn match_files(
        &mut self,
        files: &[Migration],
        recorded: &BTreeMap<String, Option<String>>,
        version_of: impl Fn(&Migration) -> Option<String>,
        hash_of: Option<HashOf>,
    ) {
        let mut used = std::collections::BTreeSet::new();
        for (i, m) in files.iter().enumerate() {
            let Some(v) = version_of(m) else { continue };
            let Some(kept) = recorded.get(&v) else {
                continue;
            };
            used.insert(v);
            let checksum = match (kept, hash_of) {
                (Some(kept), Some(hash_of)) => match std::fs::read(&m.path) {
                    Ok(bytes) if hash_of(m, &bytes).contains(kept) => Kept::Matches,
                    _ => Kept::Differs,
                },
                _ => Kept::Nothing,
            };
            self.applied.push(Claim { file: i, checksum });
        }
        self.without_file
            .extend(recorded.keys().filter(|v| !used.contains(*v)).cloned());
    }
}

/// The versions the first column of `sql` lists, for a tool that keeps no
/// checksum: version → None.
pub(crate) fn versions(
    conn: &Connection,
    sql: &str,
) -> rusqlite::Result<BTreeMap<String, Option<String>>> {
    Ok(rows(conn, sql)?
        .iter()
        .filter_map(|r| text(&r[0]))
        .map(|v| (v, None))
        .collect())
}

/// A column's value as text, however the tool's driver stored it (SQLite
/// keeps what it is given: `version uint64` may hold integers or text).
pub(crate) fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Integer(i) => Some(i.to_string()),
        Value::Real(r) => Some(r.to_string()),
        Value::Text(t) => Some(t.clone()),
        Value::Blob(b) => Some(String::from_utf8_lossy(b).into_owned()),
    }
}

/// A column's value as a number (`success`, `is_applied`, `dirty`: booleans
/// stored as 0/1, or as text by some drivers).
pub(crate) fn number(v: &Value) -> Option<i64> {
    match v {
        Value::Integer(i) => Some(*i),
        Value::Real(r) => Some(*r as i64),
        Value::Text(t) => match t.trim() {
            "true" | "TRUE" | "t" => Some(1),
            "false" | "FALSE" | "f" => Some(0),
            other => other.parse().ok(),
        },
        _ => None,
    }
}

/// Every row of `sql`, each as its values.
pub(crate) fn rows(conn: &Connection, sql: &str) -> rusqlite::Result<Vec<Vec<Value>>> {
    let mut stmt = conn.prepare(sql)?;
    let n = stmt.column_count();
    let rows = stmt.query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect())?;
    rows.collect()
}

/// The columns of `table` (empty when it does not exist).
pub(crate) fn columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1)")?;
    let cols = stmt.query_map([table], |r| r.get::<_, String>(0))?;
    cols.collect()
}

/// The file's name (for a diesel migration, its folder's).
pub(crate) fn file_name(m: &Migration) -> &str {
    let path: &Path = &m.path;
    let named = if path.file_name().is_some_and(|n| n == "up.sql") {
        path.parent().unwrap_or(path)
    } else {
        path
    };
    named.file_name().and_then(|n| n.to_str()).unwrap_or("")
}

/// The digits a file name starts with.
pub(crate) fn leading_digits(name: &str) -> Option<&str> {
    let n = name.bytes().take_while(u8::is_ascii_digit).count();
    (n > 0).then(|| &name[..n])
}

/// The part of a file name before its first `_`, as a signed 64-bit number
/// (sqlx and goose parse it so; `007` and `7` are the same version).
pub(crate) fn number_before_underscore(name: &str) -> Option<String> {
    let (v, _) = name.split_once('_')?;
    v.parse::<i64>().ok().map(|n| n.to_string())
}

/// The file as read, and (when it differs) with a BOM removed and CRLF turned
/// into LF: a tool may have hashed either (drizzle normalizes line ends since
/// 0.3x, sqlx can be told to ignore `\r`), and a checkout on another system
/// changes only the line ends. Both count as the file the tool applied.
pub(crate) fn spellings(bytes: &[u8]) -> Vec<Vec<u8>> {
    let text = String::from_utf8_lossy(bytes);
    let normalized = crate::checksum::normalize(&text);
    if normalized.as_bytes() == bytes {
        vec![bytes.to_vec()]
    } else {
        vec![bytes.to_vec(), normalized.as_bytes().to_vec()]
    }
}
