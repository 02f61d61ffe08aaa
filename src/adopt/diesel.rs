//! diesel's `__diesel_schema_migrations` (diesel
//! `src/migration/setup_migration_table.sql`: `version VARCHAR(50) PRIMARY
//! KEY NOT NULL, run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP`). One
//! row per applied migration, no checksum. The version is the folder name's
//! part before the first `_` without its dashes
//! (`migrations_internals::version_from_string`): backstop's diesel layout
//! keeps exactly that as the migration's id.

use std::path::Path;

use rusqlite::Connection;

use super::reading::{self, Reading};
use crate::migration::Migration;

pub(crate) const TABLE: &str = "__diesel_schema_migrations";

pub(crate) fn read(
    conn: &Connection,
    files: &[Migration],
    _dir: &Path,
) -> rusqlite::Result<Reading> {
    let mut reading = Reading::default();
    let recorded = reading::versions(conn, "SELECT version FROM __diesel_schema_migrations")?;
    reading.match_files(
        files,
        &recorded,
        |m| {
            let (v, _) = reading::file_name(m).split_once('_')?;
            Some(v.replace('-', ""))
        },
        None,
    );
    Ok(reading)
}
