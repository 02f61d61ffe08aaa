//! drizzle's `__drizzle_migrations` (drizzle-orm `sqlite-core/dialect.ts`,
//! `migrate`: `id SERIAL PRIMARY KEY, hash text NOT NULL, created_at
//! numeric`). drizzle applies a journal entry when its `when` is later than
//! the newest `created_at` recorded (`Number(lastDbMigration.created_at) <
//! migration.folderMillis`), so every entry up to that moment counts as
//! applied. The journal is `meta/_journal.json` (`entries: [{ idx, when, tag
//! }]`, file `<tag>.sql`); `hash` is SHA-256 of the file's text, in hex
//! (drizzle-orm `migrator.ts`, `readMigrationFiles`; recent versions turn CRLF
//! into LF first).

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::Connection;
use sha2::{Digest, Sha256};

use super::reading::{self, Reading};
use crate::migration::Migration;

pub(crate) const TABLE: &str = "__drizzle_migrations";

#[derive(serde::Deserialize)]
struct Journal {
    entries: Vec<Entry>,
}

#[derive(serde::Deserialize)]
struct Entry {
    when: i64,
    tag: String,
}

/// Why the journal could not be read (drizzle cannot run without it either).
pub(crate) fn journal_problem(dir: &Path) -> Option<String> {
    read_journal(dir).err()
}

fn read_journal(dir: &Path) -> Result<Journal, String> {
    let path = dir.join("meta").join("_journal.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

pub(crate) fn read(
    conn: &Connection,
    files: &[Migration],
    dir: &Path,
) -> rusqlite::Result<Reading> {
    let mut reading = Reading::default();
    let Ok(journal) = read_journal(dir) else {
        return Ok(reading);
    };
    let rows = reading::rows(conn, "SELECT hash, created_at FROM __drizzle_migrations")?;
    let hashes: BTreeMap<i64, String> = rows
        .iter()
        .filter_map(|r| Some((reading::number(&r[1])?, reading::text(&r[0])?)))
        .collect();
    let Some(newest) = hashes.keys().max().copied() else {
        return Ok(reading);
    };
    let mut recorded: BTreeMap<String, Option<String>> = BTreeMap::new();
    for e in journal.entries.iter().filter(|e| e.when <= newest) {
        recorded.insert(e.tag.clone(), hashes.get(&e.when).cloned());
    }
    for (when, _) in hashes.iter() {
        if !journal.entries.iter().any(|e| e.when == *when) {
            reading.without_file.push(format!("created_at {when}"));
        }
    }
    reading.match_files(
        files,
        &recorded,
        |m| {
            reading::file_name(m)
                .strip_suffix(".sql")
                .map(str::to_owned)
        },
        Some(hash_of),
    );
    Ok(reading)
}

fn hash_of(_m: &Migration, bytes: &[u8]) -> Vec<String> {
    reading::spellings(bytes)
        .iter()
        .map(|b| crate::checksum::hex(&Sha256::digest(b)))
        .collect()
}
