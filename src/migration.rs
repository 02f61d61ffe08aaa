//! What a migration file says: its version, name, kind, sections and options.
//! Reading the folder, its layout and the markers is `source`'s job.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;

use crate::checksum::Checksum;

/// A migration version as the folder's layout reads it (SPEC "Migration files",
/// "Other layouts"): numbered versions order numerically, Flyway versions part
/// by part, dated names by file name, diesel versions as strings.
///
/// Three faces: `id` is what the tracking table stores (stable across
/// reformatting: `0007` and `7` are the same numbered version), `shown` is how
/// the file writes it, and the ordering key decides what runs first.
#[derive(Debug, Clone)]
pub struct Version {
    id: String,
    shown: String,
    key: Key,
}

/// How versions of one layout compare. A folder has one layout, so keys of
/// different kinds only meet when a database is read with another folder.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    /// `<digits>_name`: numeric, never lexical (9 before 10).
    Number(u64),
    /// Flyway `1.2.10`: part by part, trailing zero parts ignored (1.0 = 1).
    Parts(Vec<u64>),
    /// Dated names (by file name) and diesel versions (as strings).
    Text(String),
}

impl Version {
    /// A numbered version (`<digits>_<name>.sql`), shown as written.
    pub(crate) fn number(n: u64, shown: &str) -> Version {
        Version {
            id: n.to_string(),
            shown: shown.to_owned(),
            key: Key::Number(n),
        }
    }

    pub(crate) fn new(id: String, shown: String, key: Key) -> Version {
        Version { id, shown, key }
    }

    /// What the tracking table stores.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// As the migration's file writes it.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// As written, and unique in its folder: the shown version, except for
    /// dated names, where several files share a date and the whole stem
    /// (`2025_11_06_add_client_prefs`) tells them apart (the run log's lists).
    pub fn label(&self) -> &str {
        match &self.key {
            Key::Text(stem) if stem == &self.id && self.id.starts_with(self.shown.as_str()) => {
                &self.id
            }
            _ => &self.shown,
        }
    }

    pub(crate) fn key(&self) -> &Key {
        &self.key
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Version {}

impl Hash for Version {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key.cmp(&other.key)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl serde::Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.shown)
    }
}

/// Options written after a section marker (`-- migrate:up transaction:false`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Run inside `BEGIN IMMEDIATE … COMMIT` together with the tracking row.
    pub transaction: bool,
    /// Keep foreign-key enforcement (and cascades) on while this migration runs.
    pub foreign_keys: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            transaction: true,
            foreign_keys: false,
        }
    }
}

/// A section's text, kept with a NUL after its end so that SQLite parses it in
/// place: copying it for the parser doubled backstop's memory on a 100 MB
/// migration (issue 14). Reads as a `str` without the NUL.
#[derive(Clone, PartialEq, Eq)]
pub struct Text(String);

impl Default for Text {
    fn default() -> Text {
        Text::new(String::new())
    }
}

impl Text {
    /// Text stops at a NUL byte, as SQLite would (files with one are refused
    /// when they are read).
    pub fn new(mut text: String) -> Text {
        if let Some(at) = text.find('\0') {
            text.truncate(at);
        }
        text.push('\0');
        Text(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0[..self.0.len() - 1]
    }

    /// The same bytes with their terminator, for SQLite.
    pub(crate) fn as_c_str(&self) -> &std::ffi::CStr {
        // SAFETY: `new` is the only constructor: exactly one NUL, at the end.
        unsafe { std::ffi::CStr::from_bytes_with_nul_unchecked(self.0.as_bytes()) }
    }
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text::new(s.to_owned())
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text::new(s)
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One section (up or down) of a migration: its text and where it starts in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The file the text comes from (the `.down.sql` file for sqlx-style pairs).
    pub path: PathBuf,
    /// BOM removed and CRLF normalized to LF.
    pub text: Text,
    /// 1-based line of the file on which `text` begins.
    pub first_line: usize,
    pub options: Options,
}

impl Section {
    /// The 1-based line in the file of byte `offset` within `text`.
    pub fn line_at(&self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        self.first_line
            + self.text.as_bytes()[..offset]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
    }
}

/// How a migration runs (SPEC "Migration files", executable migrations; issue 12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// SQL sections, run by backstop itself.
    Sql,
    /// A `.py` file with a top-level `def up(`: run through backstop's Python
    /// runner in one transaction together with its tracking row.
    Module,
    /// Any other `.py` file, or a file with the executable bit: a child process
    /// that opens the database itself, recorded when it exits 0.
    Script,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Sql => "sql",
            Kind::Module => "python module",
            Kind::Script => "script",
        })
    }
}

/// A migration as read from the migrations folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    pub version: Version,
    pub name: String,
    pub kind: Kind,
    /// The file holding the up section.
    pub path: PathBuf,
    /// For executables, the whole file as text (what the tracking table keeps
    /// and `repair` diffs), with `transaction` true for a module only.
    pub up: Section,
    /// A module's down is its `def down(`, in the same file.
    pub down: Option<Section>,
    pub checksum: Checksum,
    pub down_checksum: Option<Checksum>,
}

impl Migration {
    pub fn new(version: Version, name: String, up: Section, down: Option<Section>) -> Migration {
        Migration {
            version,
            name,
            kind: Kind::Sql,
            path: up.path.clone(),
            checksum: Checksum::of(&up.text),
            down_checksum: down.as_ref().map(|d| Checksum::of(&d.text)),
            up,
            down,
        }
    }

    /// An executable migration: `checksum` is of the file's bytes (BOM and CRLF
    /// normalized, as for SQL), `text` what the tracking table records.
    pub fn executable(
        version: Version,
        name: String,
        kind: Kind,
        path: PathBuf,
        text: String,
        checksum: Checksum,
        has_down: bool,
    ) -> Migration {
        let section = Section {
            path: path.clone(),
            text: Text::new(text),
            first_line: 1,
            options: Options {
                // A module's work and its row share one transaction; a script
                // commits on its own (SPEC: "not atomic with its row").
                transaction: kind == Kind::Module,
                foreign_keys: false,
            },
        };
        let down = has_down.then(|| section.clone());
        Migration {
            version,
            name,
            kind,
            path,
            down_checksum: has_down.then(|| checksum.clone()),
            checksum,
            up: section,
            down,
        }
    }

    /// Runs in a process of its own (module or script), not on backstop's connection.
    pub fn is_executable(&self) -> bool {
        self.kind != Kind::Sql
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_versions_order_numerically_and_ignore_padding() {
        let mut v = [
            Version::number(10, "10"),
            Version::number(9, "9"),
            Version::number(100, "0100"),
        ];
        v.sort();
        let shown: Vec<&str> = v.iter().map(Version::shown).collect();
        assert_eq!(shown, ["9", "10", "0100"]);
        assert_eq!(Version::number(7, "0007"), Version::number(7, "7"));
        assert_eq!(Version::number(7, "0007").id(), "7");
    }

    #[test]
    fn line_at_counts_from_first_line() {
        let s = Section {
            path: "x.sql".into(),
            text: "a;\nb;\n\nc;".into(),
            first_line: 3,
            options: Options::default(),
        };
        assert_eq!(s.line_at(0), 3);
        assert_eq!(s.line_at(3), 4);
        assert_eq!(s.line_at(8), 6);
    }
}
