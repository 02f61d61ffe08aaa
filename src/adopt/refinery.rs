//! refinery's `refinery_schema_history` (refinery_core `traits/mod.rs`,
//! `ASSERT_MIGRATIONS_TABLE_QUERY`: `version INT4 PRIMARY KEY, name
//! VARCHAR(255), applied_on VARCHAR(255), checksum VARCHAR(255)`). One row
//! per applied migration. Files are `V<version>__<name>.sql`, `version` an
//! `i32` (`util.rs`, `file_match_re`); the checksum is SipHash-1-3 with zero
//! keys over the name, the version and the SQL, hashed as Rust's `Hash`
//! writes them, stored as the decimal `u64` (`migration.rs`,
//! `Migration::unapplied`).

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::Path;

use rusqlite::Connection;
use siphasher::sip::SipHasher13;

use super::reading::{self, Reading};
use crate::migration::Migration;

pub(crate) const TABLE: &str = "refinery_schema_history";

pub(crate) fn read(
    conn: &Connection,
    files: &[Migration],
    _dir: &Path,
) -> rusqlite::Result<Reading> {
    let mut reading = Reading::default();
    let recorded: BTreeMap<String, Option<String>> = reading::rows(
        conn,
        "SELECT version, checksum FROM refinery_schema_history",
    )?
    .iter()
    .filter_map(|r| Some((reading::text(&r[0])?, reading::text(&r[1]))))
    .collect();
    reading.match_files(
        files,
        &recorded,
        |m| named(m).map(|(v, _)| v.to_string()),
        Some(hash_of),
    );
    Ok(reading)
}

/// refinery's version and name of a `V<version>__<name>.sql` file.
fn named(m: &Migration) -> Option<(i32, &str)> {
    let stem = reading::file_name(m).strip_suffix(".sql")?;
    let (v, name) = stem.strip_prefix('V')?.split_once("__")?;
    Some((v.parse().ok()?, name))
}

/// The checksum refinery computes: the same `Hash` calls on the same types,
/// so the bytes fed to the hasher are exactly refinery's.
fn hash_of(m: &Migration, bytes: &[u8]) -> Vec<String> {
    let Some((version, name)) = named(m) else {
        return Vec::new();
    };
    reading::spellings(bytes)
        .iter()
        .map(|b| {
            let sql = String::from_utf8_lossy(b);
            let mut h = SipHasher13::new();
            name.hash(&mut h);
            version.hash(&mut h);
            sql.as_ref().hash(&mut h);
            h.finish().to_string()
        })
        .collect()
}
