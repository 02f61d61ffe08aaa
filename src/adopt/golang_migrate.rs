//! golang-migrate's `schema_migrations` (golang-migrate
//! `database/sqlite3/sqlite3.go`, `ensureVersionTable`: `version uint64, dirty
//! bool` with a unique index `version_unique`). It holds one row: the version
//! the database is at. Every migration up to it is applied; `dirty` means the
//! migration at that version failed halfway (`ErrDatabaseDirty`), and
//! golang-migrate refuses to go on until `migrate force`. Versions are the
//! digits before the first `_` of `<version>_<name>.up.sql`, as a `uint64`.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::Connection;

use super::reading::{self, Reading};
use crate::migration::Migration;

pub(crate) const TABLE: &str = "schema_migrations";

/// Whether `columns` are golang-migrate's (dbmate's table has no `dirty`).
pub(crate) fn owns(columns: &[String]) -> bool {
    columns.iter().any(|c| c == "dirty")
}

pub(crate) fn read(
    conn: &Connection,
    files: &[Migration],
    _dir: &Path,
) -> rusqlite::Result<Reading> {
    let mut reading = Reading::default();
    let rows = reading::rows(conn, "SELECT version, dirty FROM schema_migrations")?;
    if rows.len() > 1 {
        reading.notes.push(format!(
            "golang-migrate keeps one row in {TABLE}, this one has {}: the highest version is used",
            rows.len()
        ));
    }
    // NilVersion (-1), or no row: nothing applied yet.
    let current = rows
        .iter()
        .filter_map(|r| Some((reading::number(&r[0])?, reading::number(&r[1]).unwrap_or(0))))
        .max();
    let Some((at, dirty)) = current.filter(|(v, _)| *v >= 0) else {
        return Ok(reading);
    };
    if dirty != 0 {
        reading.failed.push(format!(
            "golang-migrate marks version {at} dirty: that migration failed halfway. Fix the \
             database by hand, then `migrate force {at}` (or the version before it)"
        ));
        return Ok(reading);
    }
    let version_of = |m: &Migration| {
        let name = reading::file_name(m);
        let digits = reading::leading_digits(name)?;
        name[digits.len()..]
            .starts_with('_')
            .then(|| digits.parse::<u64>().ok())?
    };
    let recorded: BTreeMap<String, Option<String>> = files
        .iter()
        .filter_map(version_of)
        .filter(|v| *v <= at as u64)
        .map(|v| (v.to_string(), None))
        .collect();
    if !files.iter().filter_map(version_of).any(|v| v == at as u64) {
        reading.without_file.push(at.to_string());
    }
    reading.match_files(
        files,
        &recorded,
        |m| version_of(m).map(|v| v.to_string()),
        None,
    );
    Ok(reading)
}
