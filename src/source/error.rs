//! Problems with migration files, each naming its file (and line where there
//! is one) and, where a rename fixes it, the rename.

use std::fmt;
use std::path::{Path, PathBuf};

use super::layout::Layout;
use super::scan::Entry;

/// A problem with one migration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub kind: FileErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileErrorKind {
    BadName,
    NameNotUtf8,
    VersionTooLarge,
    NotUtf8,
    NulByte,
    Unreadable(String),
    UnknownOption(String),
    UnknownMarker(String),
    DuplicateMarker,
    DownWithoutUp,
    TextBeforeUp,
    MixedMarkers,
    ForeignDownMarker,
    DownFileWithoutUp,
    DuplicateVersion {
        version: String,
        other: PathBuf,
        /// A free name to rename this file to.
        suggestion: Option<String>,
    },
    MixedLayouts {
        this: Layout,
        other: PathBuf,
        that: Layout,
    },
    /// Flyway's `R__` repeatable migrations re-run whenever they change.
    Repeatable,
    /// A version-like name with an extension backstop does not run.
    NotRunnable {
        ext: String,
    },
    /// Recognised, but this version of backstop cannot run it yet.
    Unsupported(&'static str),
    /// A separate down file (`U1__x.py`, or `U1__x.sql` beside `V1__x.py`)
    /// for an executable migration.
    ExecutableDown,
    /// A `.py` migration that Python cannot compile.
    PythonSyntax(String),
    /// A diesel-style folder without its `up.sql`.
    NoUpSql,
    /// An executable migration (or a file that may be one) in a folder
    /// compiled into the program: it needs a real file to run (issue 13).
    EmbeddedProgram,
    BadMetadata(String),
    /// A `${NAME}` placeholder with no value in the `placeholders` setting.
    UndefinedPlaceholder {
        name: String,
    },
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        f.write_str(": ")?;
        use FileErrorKind::*;
        match &self.kind {
            BadName => f.write_str(
                "name does not parse as a migration (<version>_<name>.sql, YYYY_MM_DD_<name>.sql \
                 or V<version>__<description>.sql; version: digits only)",
            ),
            NameNotUtf8 => f.write_str("file name is not valid UTF-8"),
            VersionTooLarge => f.write_str("version does not fit in 64 bits"),
            NotUtf8 => f.write_str("text is not valid UTF-8"),
            NulByte => f.write_str("text contains a NUL byte (SQLite would stop reading there)"),
            Unreadable(e) => write!(f, "cannot be read: {e}"),
            UnknownOption(o) => write!(
                f,
                "unknown marker option `{o}` (known: transaction:true|false, foreign_keys:on|off)"
            ),
            UnknownMarker(m) => write!(f, "unknown marker `{m}`"),
            DuplicateMarker => f.write_str("section marker appears twice"),
            DownWithoutUp => f.write_str("has a down marker but no up marker"),
            TextBeforeUp => f.write_str("statements before the up marker"),
            MixedMarkers => f.write_str("mixes dbmate and goose markers"),
            ForeignDownMarker => {
                f.write_str("contains a down marker, so it cannot be run as all-up")
            }
            DownFileWithoutUp => f.write_str("down file has no matching up file"),
            DuplicateVersion {
                version,
                other,
                suggestion,
            } => {
                write!(f, "version {version} is also used by {}", other.display())?;
                match suggestion {
                    Some(s) => write!(f, "; rename one of them, e.g. this one to {s}"),
                    None => f.write_str("; give one of them another version"),
                }
            }
            MixedLayouts { this, other, that } => write!(
                f,
                "is named {this}, but {} is named {that}: a folder holds one layout",
                other.display()
            ),
            Repeatable => f.write_str(
                "Flyway repeatable migrations (R__) are not supported: backstop runs each \
                 migration once; turn it into a versioned V<version>__ file",
            ),
            NotRunnable { ext } if ext.is_empty() => f.write_str(
                "looks like a migration, but backstop runs only .sql and .py files and files \
                 with the executable bit (chmod +x)",
            ),
            NotRunnable { ext } => write!(
                f,
                "looks like a migration, but backstop does not run .{ext} files: make it \
                 executable (chmod +x) to run it as a script, or remove the version prefix"
            ),
            Unsupported(what) => write!(
                f,
                "{what} are not supported by this version of backstop; nothing was run"
            ),
            ExecutableDown => f.write_str(
                "executable migrations have no separate down file: a Python module's down is \
                 `def down(conn)` in the same file, and a script has none (a backup undoes it)",
            ),
            PythonSyntax(e) => write!(f, "Python cannot compile it: {e}"),
            NoUpSql => f.write_str(
                "folder looks like a diesel migration but has no up.sql (diesel reads \
                 <version>_<name>/up.sql and down.sql)",
            ),
            EmbeddedProgram => f.write_str(
                "is not SQL: only SQL migrations can be compiled into a program \
                 (embed_migrations!); executable migrations need a file to run, so read this \
                 folder from disk (Migrations::Folder) or run it with the backstop command",
            ),
            BadMetadata(e) => write!(f, "metadata.toml does not parse: {e}"),
            UndefinedPlaceholder { name } => write!(
                f,
                "placeholder ${{{name}}} has no value (placeholders are replaced before the \
                 migration runs)"
            ),
        }
    }
}

/// One message for all the problems found, one per line.
pub fn describe(errors: &[FileError]) -> String {
    let mut lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    if lines.len() > 1 {
        lines.insert(
            0,
            format!("{} problems with migration files:", errors.len()),
        );
        lines.join("\n  ")
    } else {
        lines.pop().unwrap_or_default()
    }
}

/// `entry` has the version of `other`; suggests the next free name for it.
pub(super) fn duplicate(entry: &Entry, other: &Path, all: &[Entry]) -> FileError {
    FileError {
        path: entry.path.clone(),
        line: None,
        kind: FileErrorKind::DuplicateVersion {
            version: entry.named.version.to_string(),
            other: other.to_path_buf(),
            suggestion: super::new::rename_for(entry, all),
        },
    }
}
