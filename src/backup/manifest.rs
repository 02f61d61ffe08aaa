//! The `.json` manifest beside each backup, and backup file names:
//! `<db stem>.<UTC YYYYMMDDTHHMMSSmmmZ>.<reason>.sqlite3`.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub source: PathBuf,
    pub created_at: String,
    pub reason: String,
    pub tool_version: String,
    /// Newest migration applied in the database when the backup was taken, as
    /// its file writes it (manifests before 0.2 wrote a number).
    #[serde(default, deserialize_with = "text_or_number")]
    pub newest_version: Option<String>,
    pub size: u64,
    pub sha256: String,
    pub journal_mode: String,
    /// SQLite's file change counter (header bytes 24..28) at backup time; in
    /// rollback-journal mode it changes with every commit, so `restore` can tell
    /// whether the database was written after the backup.
    pub change_counter: Option<u32>,
    /// The database file's state when the backup was taken, in either journal
    /// mode (see `fingerprint`). None in manifests before 0.2.
    #[serde(default)]
    pub fingerprint: Option<super::Fingerprint>,
}

fn text_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Text(String),
        Number(u64),
    }
    Ok(Option::<Written>::deserialize(d)?.map(|w| match w {
        Written::Text(t) => t,
        Written::Number(n) => n.to_string(),
    }))
}

pub const TIMESTAMP: &str = "%Y%m%dT%H%M%S%3fZ";
const EXT: &str = ".sqlite3";

/// The stem used in backup names: the database file name without extension.
pub fn stem(database: &Path) -> String {
    database
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "database".into())
}

pub fn file_name(stem: &str, at: DateTime<Utc>, reason: &str) -> String {
    format!("{stem}.{}.{reason}{EXT}", at.format(TIMESTAMP))
}

/// The manifest path for a backup file.
pub fn path_for(backup: &Path) -> PathBuf {
    let name = backup
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let base = name.strip_suffix(EXT).unwrap_or(&name);
    backup.with_file_name(format!("{base}.json"))
}

/// Parses a backup file name of database `stem`: its time and reason.
pub fn parse_name(stem: &str, file: &str) -> Option<(DateTime<Utc>, String)> {
    let rest = file
        .strip_prefix(stem)?
        .strip_prefix('.')?
        .strip_suffix(EXT)?;
    let (ts, reason) = rest.split_once('.')?;
    if reason.is_empty() || reason.contains('.') {
        return None;
    }
    let at = NaiveDateTime::parse_from_str(ts, TIMESTAMP).ok()?.and_utc();
    Some((at, reason.to_owned()))
}

/// Turns a user's label into a reason word for the file name (no dots: the
/// name's parts are separated by them).
pub fn slug(label: &str) -> String {
    crate::slug::slug(label, '-', 40)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let at = NaiveDateTime::parse_from_str("20261122T103000123Z", TIMESTAMP)
            .unwrap()
            .and_utc();
        let name = file_name("app.prod", at, "before-up");
        assert_eq!(name, "app.prod.20261122T103000123Z.before-up.sqlite3");
        assert_eq!(
            parse_name("app.prod", &name),
            Some((at, "before-up".into()))
        );
        assert_eq!(parse_name("app", &name), None);
        assert_eq!(
            parse_name("app.prod", "app.prod.20261122T103000123Z.damaged"),
            None
        );
        assert_eq!(
            path_for(Path::new("b/app.20261122T103000123Z.manual.sqlite3")),
            PathBuf::from("b/app.20261122T103000123Z.manual.json")
        );
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("Before Deploy #42!"), "before-deploy-42");
        assert_eq!(slug("..."), "");
    }
}
