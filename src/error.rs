//! The library's one error type. Every variant names the file it is about; the
//! next step for the user (which names commands and flags) is added by
//! `cli::exit`. What kind of failure each variant is (and so its SPEC exit
//! code) is decided here, once, so the library's public `Error` and the
//! command line agree (issue 13).

use std::fmt;
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

    #[error("{path} has {} pending migration(s) ({}), and the policy is to refuse rather than apply them", pending.len(), versions(pending))]
    Pending {
        path: PathBuf,
        pending: Vec<Version>,
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

    #[error("{path} cannot be opened or written by this user, or its folder is not writable (SQLite writes a journal beside it): {source}")]
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

fn versions(vs: &[Version]) -> String {
    vs.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
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

/// What kind of failure an [`Error`](crate::Error) is: the rows of SPEC's
/// exit-code table, which the `backstop` command exits with.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Bad options or configuration (exit 2).
    Usage,
    /// Refused before changing anything (exit 3): edited, missing or
    /// out-of-order migrations, malformed files, statements SQLite rejects
    /// before any data is touched, schema drift, or pending migrations under
    /// [`Policy::Refuse`](crate::Policy::Refuse).
    Refused,
    /// A migration failed while running (exit 1); see
    /// [`Error::failure`](crate::Error::failure) for what became of the database.
    Failed,
    /// The database is unavailable (exit 4): locked past the busy timeout,
    /// not a SQLite database, unreadable or read-only.
    Unavailable,
    /// A backup or restore could not be completed (exit 5); the database was
    /// not changed.
    Backup,
    /// Interrupted (exit 130).
    Interrupted,
}

impl fmt::Display for ErrorKind {
    /// The `kind` of a `--json` error document: `usage`, `refused`, `failed`,
    /// `unavailable`, `backup`, `interrupted`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Usage => "usage",
            ErrorKind::Refused => "refused",
            ErrorKind::Failed => "failed",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Backup => "backup",
            ErrorKind::Interrupted => "interrupted",
        })
    }
}

impl ErrorKind {
    /// The exit code of SPEC's table: what `backstop` exits with for this kind.
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorKind::Failed => 1,
            ErrorKind::Usage => 2,
            ErrorKind::Refused => 3,
            ErrorKind::Unavailable => 4,
            ErrorKind::Backup => 5,
            ErrorKind::Interrupted => 130,
        }
    }
}

impl Error {
    /// Exhaustive on purpose: a new variant must decide its kind (and so its
    /// exit code) here.
    pub fn kind(&self) -> ErrorKind {
        use ErrorKind as K;
        match self {
            Error::Config { .. }
            | Error::Setting { .. }
            | Error::MigrationsDir { .. }
            | Error::Extension { .. }
            | Error::NewMigration { .. }
            | Error::Output { .. } => K::Usage,
            Error::Source(_)
            | Error::UndefinedPlaceholders(_)
            | Error::Blocked(_)
            | Error::Hostile { .. }
            | Error::Preflight { .. }
            | Error::Pending { .. }
            | Error::Drift { .. }
            | Error::SchemaMismatch(_)
            | Error::Adopt(_)
            | Error::Declined { .. }
            | Error::NeedsConfirmation { .. }
            | Error::NoDown { .. }
            | Error::UnknownVersion { .. }
            | Error::AmbiguousVersion { .. }
            | Error::NotApplied { .. }
            | Error::Findings { .. }
            | Error::Interpreter { .. }
            | Error::Runner { .. } => K::Refused,
            Error::Migration(f) if f.interrupted() => K::Interrupted,
            Error::Migration(f) if f.locked() => K::Unavailable,
            Error::Migration(_) | Error::RealChanged { .. } => K::Failed,
            Error::Locked { .. }
            | Error::NotADatabase { .. }
            | Error::NoDatabase { .. }
            | Error::NoFolder { .. }
            | Error::ReadOnly { .. }
            | Error::Raced { .. }
            | Error::Database { .. } => K::Unavailable,
            Error::Backup { .. }
            | Error::Restore { .. }
            | Error::BackupsFolder { .. }
            | Error::WrittenMeanwhile { .. }
            | Error::Scratch { .. } => K::Backup,
            Error::Interrupted => K::Interrupted,
        }
    }

    /// The migration (or configuration) file the error points at, and the
    /// line when there is one: for `--json` documents and the library's
    /// `Error::file`/`line` (issue 13).
    pub fn location(&self) -> Option<(&std::path::Path, Option<usize>)> {
        match self {
            Error::Source(errors) | Error::UndefinedPlaceholders(errors) => {
                errors.first().map(|e| (e.path.as_path(), e.line))
            }
            Error::Hostile { path, line, .. } | Error::Preflight { path, line, .. } => {
                Some((path, Some(*line)))
            }
            Error::Migration(f) => Some((&f.path, Some(f.line))),
            Error::Config { path, .. }
            | Error::NoDown { path, .. }
            | Error::Runner { path, .. } => Some((path, None)),
            _ => None,
        }
    }

    /// SQLite's own message (or, for an executable migration, what stopped
    /// it), without backstop's words around it.
    pub fn message(&self) -> Option<String> {
        use crate::apply::Cause;
        match self {
            Error::Preflight { message, .. } => Some(message.clone()),
            Error::Migration(f) => Some(match &f.cause {
                Cause::Sql { message }
                | Cause::Locked { message }
                | Cause::Module { message, .. }
                | Cause::Exited { message, .. } => message.clone(),
                Cause::Interrupted => "interrupted".to_owned(),
                Cause::ForeignKeys { total, .. } => {
                    format!("FOREIGN KEY constraint failed ({total} row(s) without a parent)")
                }
            }),
            Error::ReadOnly { source, .. } | Error::Database { source, .. } => {
                Some(source.to_string())
            }
            _ => None,
        }
    }

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

    /// SQLite refused a read-only connection because the file needs a
    /// writer's recovery (a hot journal), not for lack of permission.
    pub fn needs_recovery(&self) -> bool {
        matches!(self, Error::ReadOnly { source, .. } if crate::db::needs_recovery(source))
    }

    /// A file `new` could not write.
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::NewMigration {
            path: path.into(),
            source,
        }
    }
}
