//! dbmate's `schema_migrations` (dbmate `pkg/driver/sqlite/sqlite.go`,
//! `CreateMigrationsTable`: `version varchar(128) primary key`). One row per
//! applied migration, no checksum. dbmate's version is the digits a file
//! name starts with (`migrationFileRegexp = ^(\d+).*\.sql$` in
//! `pkg/dbmate/db.go`), compared as a string, and every file with a recorded
//! version counts as applied (`FindMigrations`). golang-migrate uses the same
//! table name with a `dirty` column: that one is `golang_migrate`'s.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::Connection;

use super::reading::{self, Reading};
use crate::migration::Migration;

pub(crate) const TABLE: &str = "schema_migrations";

pub(crate) fn read(
    conn: &Connection,
    files: &[Migration],
    _dir: &Path,
) -> rusqlite::Result<Reading> {
    let mut reading = Reading::default();
    let recorded = reading::versions(conn, "SELECT version FROM schema_migrations")?;
    let version_of =
        |m: &Migration| reading::leading_digits(reading::file_name(m)).map(str::to_owned);
    // dbmate reads only the leading digits: files that share them (dated names
    // such as 2025_10_09_… all read as 2025) share one record.
    let mut by_version: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for m in files {
        if let Some(v) = version_of(m) {
            by_version.entry(v).or_default().push(reading::file_name(m));
        }
    }
    for (v, names) in by_version
        .iter()
        .filter(|(v, n)| n.len() > 1 && recorded.contains_key(*v))
    {
        reading.notes.push(format!(
            "dbmate reads only the digits a file name starts with: its version {v} stands for {} \
             files ({}), and dbmate counts all of them as applied",
            names.len(),
            names.join(", ")
        ));
    }
    reading.match_files(files, &recorded, version_of, None);
    Ok(reading)
}
