//! goose's `goose_db_version` (goose `internal/dialect/dialectquery/sqlite3.go`:
//! `id INTEGER PRIMARY KEY AUTOINCREMENT, version_id INTEGER NOT NULL,
//! is_applied INTEGER NOT NULL, tstamp TIMESTAMP`). goose appends a row per
//! up and (in older versions) per down, so the latest row of a version (by
//! `id`) says whether it is applied (`ListMigrations ... ORDER BY id DESC`);
//! version 0 is the row goose writes when it creates the table. No checksum.
//! The version is the file name's part before the first `_`, as an `int64`.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::Connection;

use super::reading::{self, Reading};
use crate::migration::Migration;

pub(crate) const TABLE: &str = "goose_db_version";

pub(crate) fn read(
    conn: &Connection,
    files: &[Migration],
    _dir: &Path,
) -> rusqlite::Result<Reading> {
    let mut reading = Reading::default();
    let mut latest: BTreeMap<String, bool> = BTreeMap::new();
    for row in reading::rows(
        conn,
        "SELECT version_id, is_applied FROM goose_db_version ORDER BY id DESC",
    )? {
        let Some(v) = reading::number(&row[0]) else {
            continue;
        };
        if v == 0 {
            continue;
        }
        latest
            .entry(v.to_string())
            .or_insert(reading::number(&row[1]) == Some(1));
    }
    let recorded: BTreeMap<String, Option<String>> = latest
        .into_iter()
        .filter(|(_, applied)| *applied)
        .map(|(v, _)| (v, None))
        .collect();
    reading.match_files(
        files,
        &recorded,
        |m| reading::number_before_underscore(reading::file_name(m)),
        None,
    );
    Ok(reading)
}
