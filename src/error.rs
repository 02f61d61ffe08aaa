//! The library's one error type. Every variant names the file it is about; the
//! next step for the user (which names commands and flags) is added by
//! `cli::exit`, and so is the exit code.

use std::io;
use std::path::PathBuf;

use crate::migration::Version;
use crate::plan::Problem;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    // ----- usage (exit 2) -----
    #[error("{path}: {problem}")]
    Config { path: PathBuf, problem: String },

    #[error("{setting} has an invalid value {value:?}: {expected}")]
    Setting {
        setting: &'static str,
        value: String,
        expected: &'static str,
    },

    #[error("migrations folder {path} cannot be read: {source}")]
    MigrationsDir { path: PathBuf, source: io::Error },

    #[error("cannot load the SQLite extension {path}: {message}")]
    Extension { path: PathBuf, message: String },

    // ----- refused before changing anything (exit 3) -----
    #[error("{}", crate::source::describe(.0))]
    Source(Vec<crate::source::FileError>),

    #[error("{}", crate::plan::describe(.0))]
    Blocked(Vec<Problem>),

    #[error("{}", crate::source::describe(.0))]
    UndefinedPlaceholders(Vec<crate::source::FileError>),

    #[error("{path}:{line}: `{keyword}` cannot run inside the migration's transaction")]
    Hostile {
        path: PathBuf,
        line: usize,
        keyword: String,
    },

    #[error("{path}:{line}: {}", match dot_command {
        Some(c) => format!("`{c}` is a sqlite3 shell command, not SQL (SQLite: {message})"),
        None => message.clone(),
    })]
    Preflight {
        path: PathBuf,
        line: usize,
        /// SQLite's own message.
        message: String,
        /// The sqlite3-shell command on that line, if it is one.
        dot_command: Option<String>,
    },

    #[error("{path}: the schema changed outside migrations since the last run ({drift})")]
    Drift {
        path: PathBuf,
        drift: crate::db::Drift,
    },
    #[error("{0}")]
    SchemaMismatch(Box<crate::inspect::Mismatch>),

    #[error("{0}")]
    Adopt(Box<crate::adopt::Refusal>),

    #[error("{what}: declined, nothing was changed")]
    Declined { what: String },

    #[error("{what} needs confirmation, and prompts are off (no terminal, or --no-input)")]
    NeedsConfirmation { what: String, flag: &'static str },

    #[error("{path}: migration {version} has no down section")]
    NoDown { version: Version, path: PathBuf },

    #[error("no migration with version {version} in {folder}")]
    UnknownVersion { version: String, folder: PathBuf },

    #[error("version {version} names {} migrations: {}", candidates.len(), candidates.join(", "))]
    AmbiguousVersion {
        version: String,
        candidates: Vec<String>,
    },

    #[error("migration {version} is not applied to {path}")]
    NotApplied { version: Version, path: PathBuf },

    #[error("{count} check(s) failed for {path}")]
    Findings { count: usize, path: PathBuf },

    #[error("cannot run Python migrations with {python}: {problem}")]
    Interpreter { python: PathBuf, problem: String },

    #[error("{path}: backstop's Python runner could not start the migration: {problem}")]
    Runner { path: PathBuf, problem: String },

    // ----- a migration failed (exit 1, or 130 when interrupted) -----
    #[error("{0}")]
    Migration(Box<crate::apply::RunFailure>),

    #[error("the real database {path} changed during the rehearsal{}; the rehearsal is not a true picture, and the real file may need a look", by_what(.running))]
    RealChanged {
        path: PathBuf,
        /// The executable migrations that ran in the rehearsal.
        running: Vec<Version>,
    },

    // ----- database unavailable (exit 4) -----
    #[error("{path} is locked by another connection")]
    Locked { path: PathBuf },

    #[error("{path} is not a SQLite database")]
    NotADatabase { path: PathBuf },

    #[error("{path} does not exist")]
    NoDatabase { path: PathBuf },

    #[error("cannot create {path}: folder {folder} does not exist")]
    NoFolder { path: PathBuf, folder: PathBuf },

    #[error("{path} is read-only or its folder is not writable (SQLite writes a journal beside it): {source}")]
    ReadOnly {
        path: PathBuf,
        source: rusqlite::Error,
    },

    #[error("{path} was changed by another run while this one was planning")]
    Raced { path: PathBuf },

    #[error("{path}: {source}")]
    Database {
        path: PathBuf,
        source: rusqlite::Error,
    },

    // ----- backup or restore not completed, database unchanged (exit 5) -----
    #[error("backup of {database} failed: {problem}")]
    Backup {
        database: PathBuf,
        problem: crate::backup::Problem,
    },

    #[error("cannot restore {backup}: {problem}")]
    Restore {
        backup: PathBuf,
        problem: crate::backup::Problem,
    },

    #[error("backups folder {path} cannot be read: {source}")]
    BackupsFolder { path: PathBuf, source: io::Error },

    /// Another program committed between the restore's look at the database
    /// and its lock (issue 9: check again immediately before the copy-in).
    #[error("{path} was written by another program after the restore was confirmed; nothing was restored")]
    WrittenMeanwhile {
        path: PathBuf,
        since: crate::backup::Since,
    },

    #[error("cannot make the rehearsal's copy in {path}: {source}")]
    Scratch { path: PathBuf, source: io::Error },

    // ----- interrupted before anything changed (exit 130) -----
    #[error("interrupted; nothing was changed")]
    Interrupted,

    // ----- usage: a file backstop was asked to write (exit 2) -----
    #[error("cannot write {path}: {source}")]
    NewMigration { path: PathBuf, source: io::Error },

    #[error("cannot write the output: {source}")]
    Output { source: io::Error },
}

fn by_what(running: &[Version]) -> String {
    match running {
        [] => String::new(),
        vs => format!(
            " while migration(s) {} ran on the copy",
            vs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

impl Error {
    /// Maps a rusqlite error on `path` to the most helpful variant: "locked" and
    /// "not a database" are things the user can act on, so they get their own.
    pub fn from_sqlite(path: impl Into<PathBuf>, source: rusqlite::Error) -> Error {
        use rusqlite::ErrorCode as C;
        let path = path.into();
        match source.sqlite_error_code() {
            Some(C::DatabaseBusy | C::DatabaseLocked) => Error::Locked { path },
            Some(C::NotADatabase) => Error::NotADatabase { path },
            Some(C::ReadOnly | C::CannotOpen | C::PermissionDenied) => {
                Error::ReadOnly { path, source }
            }
            _ => Error::Database { path, source },
        }
    }

    /// A file `new` could not write.
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::NewMigration {
            path: path.into(),
            source,
        }
    }
}
