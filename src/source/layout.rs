//! The folder layouts backstop reads, each named and ordered as its owning tool
//! does (SPEC "Other layouts"). This file knows names only; what is inside the
//! files is `markers`' business.
//!
//! - numbered `<digits>_<name>.sql` (backstop, dbmate, goose, sqlx, golang-migrate):
//!   numeric order;
//! - dated `YYYY_MM_DD_<name>.sql` / `YYYY-MM-DD_<name>.sql`, optional `HHMM[SS]`
//!   time part, several on one date: ordered by file name, tracked by the whole
//!   stem (as Laravel does, since the date alone is not unique);
//! - diesel folders `<version>_<name>/up.sql`: diesel's version is the part
//!   before the first `_` without its dashes, ordered as a string
//!   (`migrations_internals::version_from_string`);
//! - Flyway `V<version>__<description>.sql` (`U` for the undo): versions split
//!   on `.` or `_`, compared part by part as numbers (Flyway's `MigrationVersion`).

use std::fmt;

use super::FileErrorKind;
use crate::migration::{Key, Version};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    #[default]
    Numbered,
    Dated,
    Diesel,
    Flyway,
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layout::Numbered => "numbered (<version>_<name>.sql)",
            Layout::Dated => "dated (YYYY_MM_DD_<name>.sql)",
            Layout::Diesel => "diesel (<version>_<name>/up.sql)",
            Layout::Flyway => "Flyway (V<version>__<description>.sql)",
        })
    }
}

/// Which section a file holds, as its name says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// One file with markers, or all up.
    Single,
    /// `.up.sql` of a sqlx/golang-migrate pair.
    Up,
    /// `.down.sql`, or Flyway's `U…` undo file.
    Down,
}

/// What a migration's file (or diesel folder) name says.
#[derive(Debug, Clone)]
pub(super) struct Named {
    pub layout: Layout,
    pub version: Version,
    pub name: String,
    pub role: Role,
}

/// True if `stem` starts like a migration of some layout: digits then `_` or
/// `-`, or Flyway's `V1`/`U1`/`R__`. Such names are never skipped in silence.
pub(super) fn looks_like_migration(stem: &str) -> bool {
    let b = stem.as_bytes();
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits > 0 {
        return matches!(b.get(digits), Some(b'_' | b'-'));
    }
    matches!(b, [b'V' | b'U', d, ..] if d.is_ascii_digit()) || stem.starts_with("R__")
}

/// Parses the stem of a migration file (extension and `.up`/`.down` removed).
pub(super) fn parse_stem(stem: &str, role: Role) -> Result<Named, FileErrorKind> {
    if let Some(rest) = stem.strip_prefix("R__") {
        let _ = rest;
        return Err(FileErrorKind::Repeatable);
    }
    if let Some(named) = flyway(stem, role)? {
        return Ok(named);
    }
    if let Some((shown, name)) = dated(stem) {
        return Ok(Named {
            layout: Layout::Dated,
            version: Version::new(
                stem.to_owned(),
                shown.to_owned(),
                Key::Text(stem.to_owned()),
            ),
            name: name.to_owned(),
            role,
        });
    }
    let (digits, name) = stem.split_once('_').ok_or(FileErrorKind::BadName)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || name.is_empty() {
        return Err(FileErrorKind::BadName);
    }
    let n = digits
        .parse::<u64>()
        .map_err(|_| FileErrorKind::VersionTooLarge)?;
    Ok(Named {
        layout: Layout::Numbered,
        version: Version::number(n, digits),
        name: name.to_owned(),
        role,
    })
}

/// A diesel migration folder's name: `None` when it does not start like one.
pub(super) fn parse_diesel_dir(dir: &str) -> Option<Result<Named, FileErrorKind>> {
    if !dir.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let Some((written, name)) = dir.split_once('_') else {
        return Some(Err(FileErrorKind::BadName));
    };
    let id = written.replace('-', "");
    if name.is_empty() || id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Err(FileErrorKind::BadName));
    }
    Some(Ok(Named {
        layout: Layout::Diesel,
        version: Version::new(id.clone(), written.to_owned(), Key::Text(id)),
        name: name.to_owned(),
        role: Role::Single,
    }))
}

/// `V1_1__x` / `U1.2__x`: `Ok(None)` when the stem is not Flyway's.
fn flyway(stem: &str, role: Role) -> Result<Option<Named>, FileErrorKind> {
    let (undo, rest) = match stem.as_bytes() {
        [b'V', d, ..] if d.is_ascii_digit() => (false, &stem[1..]),
        [b'U', d, ..] if d.is_ascii_digit() => (true, &stem[1..]),
        _ => return Ok(None),
    };
    let (written, description) = rest.split_once("__").ok_or(FileErrorKind::BadName)?;
    if description.is_empty() || role != Role::Single {
        return Err(FileErrorKind::BadName);
    }
    let parts = flyway_parts(written).ok_or(FileErrorKind::BadName)??;
    Ok(Some(Named {
        layout: Layout::Flyway,
        version: flyway_version(parts, written),
        name: description.to_owned(),
        role: if undo { Role::Down } else { Role::Single },
    }))
}

/// Flyway version parts: `None` if not a version, `Some(Err)` if a part overflows.
fn flyway_parts(written: &str) -> Option<Result<Vec<u64>, FileErrorKind>> {
    let parts: Vec<&str> = written.split(['.', '_']).collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    Some(
        parts
            .iter()
            .map(|p| p.parse::<u64>().map_err(|_| FileErrorKind::VersionTooLarge))
            .collect(),
    )
}

/// The canonical id drops what Flyway's comparison ignores (`1.0` is `1`), so
/// equal versions always share one tracking row.
fn flyway_version(mut parts: Vec<u64>, written: &str) -> Version {
    while parts.len() > 1 && parts.last() == Some(&0) {
        parts.pop();
    }
    let id = parts
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".");
    Version::new(id, written.to_owned(), Key::Parts(parts))
}

/// A diesel version as its folder would write it. A recorded row keeps only
/// diesel's version (dashes removed), so a 14-digit one is written back in
/// the style `diesel migration generate` uses (`2024-03-06-170000`).
fn diesel_folder(version: &Version) -> String {
    let shown = version.shown();
    let id = version.id();
    if shown != id || id.len() != 14 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return shown.to_owned();
    }
    format!("{}-{}-{}-{}", &id[..4], &id[4..6], &id[6..8], &id[8..])
}

/// `YYYY_MM_DD[_HHMM[SS]]_name` (or with dashes): the version part and the name.
fn dated(stem: &str) -> Option<(&str, &str)> {
    let b = stem.as_bytes();
    let digits = |from: usize, n: usize| {
        b.get(from..from + n)
            .is_some_and(|s| s.iter().all(u8::is_ascii_digit))
    };
    let sep = *b.get(4)?;
    if !matches!(sep, b'_' | b'-') || !digits(0, 4) || !digits(5, 2) || !digits(8, 2) {
        return None;
    }
    if b.get(7) != Some(&sep) || !matches!(b.get(10), Some(b'_' | b'-')) {
        return None;
    }
    let month = &stem[5..7];
    let day = &stem[8..10];
    if !("01"..="12").contains(&month) || !("01"..="31").contains(&day) {
        return None;
    }
    let mut end = 10;
    for width in [6, 4] {
        if digits(11, width) && matches!(b.get(11 + width), Some(b'_' | b'-')) {
            end = 11 + width;
            break;
        }
    }
    let name = &stem[end + 1..];
    (!name.is_empty()).then(|| (&stem[..end], name))
}

impl Layout {
    /// The file this layout gives a migration (for "missing" messages).
    pub fn file_name(self, version: &Version, name: &str) -> String {
        match self {
            Layout::Numbered => format!("{}_{name}.sql or .up.sql", version.shown()),
            Layout::Dated => format!("{}.sql", version.id()),
            Layout::Diesel => format!("{}_{name}/up.sql", diesel_folder(version)),
            Layout::Flyway => format!("V{}__{name}.sql", version.shown()),
        }
    }

    /// The version of a tracking row written from a folder of this layout. A
    /// row that does not parse (the folder changed layout) still gets a version,
    /// ordered after every parsed one.
    pub fn recorded(self, id: &str) -> Version {
        let text = || Version::new(id.to_owned(), id.to_owned(), Key::Text(id.to_owned()));
        match self {
            Layout::Numbered => match id.parse::<u64>() {
                Ok(n) if !id.starts_with('+') => Version::number(n, id),
                _ => text(),
            },
            Layout::Flyway => match flyway_parts(id) {
                Some(Ok(parts)) => flyway_version(parts, id),
                _ => text(),
            },
            Layout::Dated => match dated(id) {
                Some((shown, _)) => {
                    Version::new(id.to_owned(), shown.to_owned(), Key::Text(id.to_owned()))
                }
                None => text(),
            },
            Layout::Diesel => text(),
        }
    }

    /// A `VERSION` argument (`up --to`, `down --to`, `baseline`) as an inclusive
    /// bound: a dated argument that is only a date covers that whole date.
    pub fn bound(self, arg: &str) -> Option<Key> {
        match self {
            Layout::Numbered => arg
                .parse::<u64>()
                .ok()
                .filter(|_| !arg.starts_with('+'))
                .map(Key::Number),
            Layout::Flyway => {
                let v = arg.strip_prefix('V').unwrap_or(arg);
                match flyway_parts(v)? {
                    Ok(parts) => Some(flyway_version(parts, v).key().clone()),
                    Err(_) => None,
                }
            }
            Layout::Diesel => Some(Key::Text(arg.replace('-', ""))),
            Layout::Dated => Some(if dated(arg).is_some() {
                Key::Text(arg.to_owned())
            } else {
                // Only a date (or date and time): everything written on it.
                Key::Text(format!("{arg}\u{10FFFF}"))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(stem: &str) -> Named {
        parse_stem(stem, Role::Single).unwrap_or_else(|e| panic!("{stem}: {e:?}"))
    }

    #[test]
    fn numbered() {
        let n = named("0007_add_x");
        assert_eq!(n.layout, Layout::Numbered);
        assert_eq!((n.version.id(), n.version.shown()), ("7", "0007"));
        assert_eq!(n.name, "add_x");
        for bad in ["1_", "_x", "1a_x", "+1_x"] {
            assert!(parse_stem(bad, Role::Single).is_err(), "{bad}");
        }
        assert_eq!(
            parse_stem("99999999999999999999_x", Role::Single).unwrap_err(),
            FileErrorKind::VersionTooLarge
        );
    }

    #[test]
    fn dated_names_keep_the_whole_stem_as_id_and_order_by_name() {
        let a = named("2025_11_06_add_client_prefs");
        let b = named("2025_11_06_txn_allow_cashloose");
        assert_eq!(a.layout, Layout::Dated);
        assert_eq!(a.version.shown(), "2025_11_06");
        assert_eq!(a.version.id(), "2025_11_06_add_client_prefs");
        // Unique where the date is not: the run log lists labels.
        assert_eq!(a.version.label(), "2025_11_06_add_client_prefs");
        assert!(a.version < b.version);
        let t = named("2014-10-12-000000_create_users");
        assert_eq!(
            (t.version.shown(), t.name.as_str()),
            ("2014-10-12-000000", "create_users")
        );
        // Not a date: month 13. Read as numbered 2025.
        assert_eq!(named("2025_13_01_x").layout, Layout::Numbered);
        assert_eq!(
            named("2025_10_09_1430_x").version.shown(),
            "2025_10_09_1430"
        );
    }

    #[test]
    fn flyway_versions_compare_part_by_part() {
        let v11 = named("V1_1__x");
        let v12 = named("V1.2__y");
        let v110 = named("V1.10__z");
        assert_eq!(v11.layout, Layout::Flyway);
        assert_eq!((v11.version.id(), v11.version.shown()), ("1.1", "1_1"));
        assert!(v11.version < v12.version && v12.version < v110.version);
        assert_eq!(named("V1.0__a").version, named("V1__b").version);
        assert_eq!(named("U1_1__x").role, Role::Down);
        assert_eq!(
            parse_stem("R__views", Role::Single).unwrap_err(),
            FileErrorKind::Repeatable
        );
        assert!(parse_stem("V1__", Role::Single).is_err());
    }

    #[test]
    fn diesel_versions_are_strings_without_dashes() {
        let a = parse_diesel_dir("2024-03-06-170000_a").unwrap().unwrap();
        let odd = parse_diesel_dir("2024-03-13_170000_x").unwrap().unwrap();
        let c = parse_diesel_dir("2024-03-15-090000_c").unwrap().unwrap();
        assert_eq!(odd.version.id(), "20240313");
        assert_eq!(a.version.label(), "2024-03-06-170000");
        assert_eq!(odd.name, "170000_x");
        assert!(a.version < odd.version && odd.version < c.version);
        assert!(parse_diesel_dir("meta").is_none());
    }

    #[test]
    fn what_looks_like_a_migration() {
        for yes in ["1_a", "2025-10-09_x", "V1__x", "U2__y", "R__z", "0001_x"] {
            assert!(looks_like_migration(yes), "{yes}");
        }
        for no in ["README", "atlas", "2fa_notes", "meta", "Vx__y", ".gitkeep"] {
            assert!(!looks_like_migration(no), "{no}");
        }
    }

    #[test]
    fn recorded_rows_and_bounds() {
        assert_eq!(Layout::Numbered.recorded("7"), named("0007_x").version);
        assert_eq!(Layout::Flyway.recorded("1.1"), named("V1_1__x").version);
        let day = Layout::Dated.bound("2025_11_06").unwrap();
        assert!(named("2025_11_06_zzz").version.key() < &day);
        assert!(named("2025_11_07_a").version.key() > &day);
        assert_eq!(
            Layout::Diesel.bound("2024-03-13").unwrap(),
            Key::Text("20240313".into())
        );
        // A missing diesel folder is named as diesel would have named it.
        let row = Layout::Diesel.recorded("20240306170000");
        assert_eq!(
            Layout::Diesel.file_name(&row, "a"),
            "2024-03-06-170000_a/up.sql"
        );
        let row = Layout::Diesel.recorded("20240313");
        assert_eq!(Layout::Diesel.file_name(&row, "x"), "20240313_x/up.sql");
    }
}
