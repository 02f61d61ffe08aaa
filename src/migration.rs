//! What a migration file says: its version, name, sections and options.
//! Reading the folder and parsing markers is `source`'s job.

use std::fmt;
use std::path::PathBuf;

use crate::checksum::Checksum;

/// A migration version: a non-negative integer ordered numerically, never lexically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Version(pub u64);

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for Version {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // `u64::from_str` accepts a leading '+', which is not a version.
        if s.starts_with('+') {
            return "x".parse::<u64>().map(Version);
        }
        s.parse().map(Version)
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

/// One section (up or down) of a migration: its text and where it starts in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The file the text comes from (the `.down.sql` file for sqlx-style pairs).
    pub path: PathBuf,
    /// BOM removed and CRLF normalized to LF.
    pub text: String,
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

/// A migration as read from the migrations folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    pub version: Version,
    pub name: String,
    /// The file holding the up section.
    pub path: PathBuf,
    pub up: Section,
    pub down: Option<Section>,
    pub checksum: Checksum,
    pub down_checksum: Option<Checksum>,
}

impl Migration {
    pub fn new(version: Version, name: String, up: Section, down: Option<Section>) -> Migration {
        Migration {
            version,
            name,
            path: up.path.clone(),
            checksum: Checksum::of(&up.text),
            down_checksum: down.as_ref().map(|d| Checksum::of(&d.text)),
            up,
            down,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_numerically() {
        let mut v: Vec<Version> = ["10", "9", "0100"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        v.sort();
        assert_eq!(v, vec![Version(9), Version(10), Version(100)]);
    }

    #[test]
    fn version_rejects_sign_and_overflow() {
        assert!("+1".parse::<Version>().is_err());
        assert!("-1".parse::<Version>().is_err());
        assert!("18446744073709551616".parse::<Version>().is_err());
        assert_eq!(
            "18446744073709551615".parse::<Version>().unwrap(),
            Version(u64::MAX)
        );
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
