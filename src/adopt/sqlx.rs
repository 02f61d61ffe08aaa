//! sqlx's `_sqlx_migrations` (sqlx-sqlite `migrate.rs`,
//! `ensure_migrations_table`): `version BIGINT PRIMARY KEY, description TEXT,
//! installed_on TIMESTAMP, success BOOLEAN, checksum BLOB, execution_time
//! BIGINT`. A row is an applied migration when `success` is true; sqlx refuses
//! to run while one is false ("dirty", `dirty_version`). The checksum is
//! SHA-384 of the file's text as read (sqlx-core `migrate/migration.rs`,
//! `checksum`; the source reads each file with `read_to_string`). The version
//! is the file name's part before the first `_`, parsed as an `i64`
//! (sqlx-core `migrate/source.rs`).

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::Connection;
use sha2::{Digest, Sha384};

use super::reading::{self, Reading};
use crate::migration::Migration;

pub(crate) const TABLE: &str = "_sqlx_migrations";

pub(crate) fn read(
    conn: &Connection,
    files: &[Migration],
    _dir: &Path,
) -> rusqlite::Result<Reading> {
    let mut reading = Reading::default();
    let mut recorded = BTreeMap::new();
    for row in reading::rows(
        conn,
        "SELECT version, success, checksum FROM _sqlx_migrations",
    )? {
        let Some(version) = reading::text(&row[0]) else {
            continue;
        };
        if reading::number(&row[1]) != Some(1) {
            reading.failed.push(format!(
                "sqlx recorded migration {version} as failed (success = false): it may have run \
                 halfway. Fix the database by hand, then delete that row from {TABLE}"
            ));
            continue;
        }
        let checksum = match &row[2] {
            rusqlite::types::Value::Blob(b) => Some(crate::checksum::hex(b)),
            _ => None,
        };
        recorded.insert(version, checksum);
    }
    reading.match_files(
        files,
        &recorded,
        |m| reading::number_before_underscore(reading::file_name(m)),
        Some(hash_of),
    );
    Ok(reading)
}

/// SHA-384 of the file, as lowercase hex (the BLOB is compared as hex).
fn hash_of(_m: &Migration, bytes: &[u8]) -> Vec<String> {
    reading::spellings(bytes)
        .iter()
        .map(|b| crate::checksum::hex(&Sha384::digest(b)))
        .collect()
}
