//! Flyway's `flyway_schema_history` (Flyway's SQLite `createMetaDataTable.sql`:
//! `installed_rank INT PRIMARY KEY, version VARCHAR(50), description, type
//! VARCHAR(20), script, checksum INT, installed_by, installed_on,
//! execution_time, success BOOLEAN`). Rows are read in `installed_rank`
//! order and the latest row of a version decides: `success = 0` is a failed
//! migration (Flyway refuses until `flyway repair`); `UNDO_SQL`/`UNDO_JDBC`
//! and `DELETE` rows take the version back out; a `BASELINE` row counts every
//! migration up to its version as already in the database (Flyway never runs
//! them); `SCHEMA` rows and repeatable migrations (no version) are not
//! migrations of this folder. The checksum is CRC-32 over the file's lines
//! without their line ends, BOM removed from the first, as a signed 32-bit
//! integer (`ChecksumCalculator.calculateChecksumForResource`).

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::Connection;

use super::reading::{self, Reading};
use crate::migration::{Key, Migration};
use crate::source::Layout;

pub(crate) const TABLE: &str = "flyway_schema_history";

/// What the latest row of a version says.
enum Row {
    Applied(Option<String>),
    Baseline,
    Gone,
}

pub(crate) fn read(
    conn: &Connection,
    files: &[Migration],
    _dir: &Path,
) -> rusqlite::Result<Reading> {
    let mut reading = Reading::default();
    let mut latest: BTreeMap<String, Row> = BTreeMap::new();
    let mut repeatable = 0;
    for row in reading::rows(
        conn,
        "SELECT version, type, checksum, success, script FROM flyway_schema_history
         ORDER BY installed_rank",
    )? {
        let kind = reading::text(&row[1])
            .unwrap_or_default()
            .to_ascii_uppercase();
        let Some(written) = reading::text(&row[0]) else {
            repeatable += usize::from(kind != "SCHEMA");
            continue;
        };
        // `1.0` and `1` are one version to Flyway: key rows like the files.
        let id = Layout::Flyway.recorded(&written).id().to_owned();
        if reading::number(&row[3]) != Some(1) {
            let script = reading::text(&row[4]).unwrap_or_default();
            reading.failed.push(format!(
                "Flyway recorded {script} (version {written}) as failed. Fix the database by \
                 hand, then `flyway repair` removes the failed row"
            ));
            continue;
        }
        let state = match kind.as_str() {
            "SCHEMA" => continue,
            "BASELINE" => Row::Baseline,
            "UNDO_SQL" | "UNDO_JDBC" | "DELETE" => Row::Gone,
            _ => Row::Applied(reading::text(&row[2])),
        };
        latest.insert(id, state);
    }
    if repeatable > 0 {
        reading.notes.push(format!(
            "{repeatable} repeatable migration row(s) (R__, no version) are not adopted: backstop \
             runs each migration once"
        ));
    }
    let key_of = |m: &Migration| match m.version.key() {
        Key::Parts(p) => Some(p.clone()),
        _ => None,
    };
    let baseline = latest
        .iter()
        .filter(|(_, r)| matches!(r, Row::Baseline))
        .filter_map(|(id, _)| match Layout::Flyway.recorded(id).key() {
            Key::Parts(p) => Some(p.clone()),
            _ => None,
        })
        .max();
    let mut recorded: BTreeMap<String, Option<String>> = BTreeMap::new();
    for (id, row) in &latest {
        if let Row::Applied(checksum) = row {
            recorded.insert(id.clone(), checksum.clone());
        }
    }
    // Below the baseline: in the database already, as far as Flyway knows.
    if let Some(b) = &baseline {
        for m in files {
            let below = key_of(m).is_some_and(|k| k <= *b);
            let id = m.version.id();
            if below && !latest.get(id).is_some_and(|r| matches!(r, Row::Gone)) {
                recorded.entry(id.to_owned()).or_insert(None);
            }
        }
        if let Some(id) = latest.iter().find(|(_, r)| matches!(r, Row::Baseline)) {
            reading.notes.push(format!(
                "Flyway's baseline {} counts every migration up to it as already in the database",
                id.0
            ));
        }
    }
    reading.match_files(
        files,
        &recorded,
        |m| key_of(m).map(|_| m.version.id().to_owned()),
        Some(hash_of),
    );
    Ok(reading)
}

/// Flyway's CRC-32: the lines' UTF-8 bytes without line ends, one after the
/// other, which is CRC-32 of the text with every CR and LF taken out.
fn hash_of(_m: &Migration, bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut h = crc32fast::Hasher::new();
    for line in text.split(['\n', '\r']) {
        h.update(line.as_bytes());
    }
    vec![(h.finalize() as i32).to_string()]
}

/// Flyway's checksum of `bytes`, for the tests that build its table.
#[cfg(test)]
pub(super) fn tests_crc(bytes: &[u8]) -> i32 {
    let m = crate::migration::Migration::new(
        crate::Version::number(0, "0"),
        String::new(),
        crate::migration::Section {
            path: "x".into(),
            text: Default::default(),
            first_line: 1,
            options: Default::default(),
        },
        None,
    );
    hash_of(&m, bytes)[0].parse().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_ignores_line_ends_and_a_bom() {
        let crc = tests_crc;
        let lf = crc(b"CREATE TABLE a(x);\nSELECT 1;\n");
        assert_eq!(crc(b"CREATE TABLE a(x);\r\nSELECT 1;\r\n"), lf);
        assert_eq!(crc("\u{feff}CREATE TABLE a(x);\nSELECT 1;".as_bytes()), lf);
        assert_ne!(crc(b"CREATE TABLE a(y);\nSELECT 1;\n"), lf);
        // java.util.zip.CRC32 of "abc" is 0x352441C2, stored by Flyway as a signed int.
        assert_eq!(crc(b"abc"), 0x352441C2_u32 as i32);
    }
}
