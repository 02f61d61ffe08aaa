//! The public error: what kind of failure (the rows of SPEC's exit-code table),
//! the file and line it points at, SQLite's message, and for a migration that
//! failed while running, what became of the database. It wraps the crate's
//! internal error, whose variants may change without breaking applications.

use std::fmt;
use std::path::{Path, PathBuf};

use super::report::Applied;
use crate::apply::RunFailure;
use crate::error::{Error as Internal, ErrorKind};
use crate::migration::Version;

/// Why [`migrate`](crate::migrate) or [`status`](crate::status) did not finish.
///
/// Its `Display` is one message naming the file (`migrations/2_x.sql:4:
/// migration 2 failed: UNIQUE constraint failed: user.email; the database was
/// restored …`); the accessors give the same facts as values.
pub struct Error {
    inner: Box<Internal>,
    failure: Option<Box<Failure>>,
}

/// A migration that failed while running, and what became of the database.
#[non_exhaustive]
#[derive(Debug)]
pub struct Failure {
    /// The failed migration's version, as its file writes it.
    pub version: Version,
    /// Its name (the file name after the version).
    pub name: String,
    /// Its file.
    pub file: PathBuf,
    /// The line of the failing statement in that file.
    pub line: usize,
    /// SQLite's message (or, for an executable migration, what stopped it).
    pub message: String,
    /// The failed migration was rolled back. False only for a migration
    /// marked `transaction:false` (or a script): its statements before the
    /// failure stayed, and only the backup undoes them.
    pub rolled_back: bool,
    /// The migrations of this run that committed before the failure (undone
    /// again if the backup was restored).
    pub applied: Vec<Applied>,
    /// The verified backup taken before the run.
    pub backup: Option<PathBuf>,
    /// What became of the database.
    pub outcome: Outcome,
}

/// What became of the database after a failed migration.
#[non_exhaustive]
#[derive(Debug)]
pub enum Outcome {
    /// The pre-run backup was put back: the database is as it was before the
    /// run. What it held at the failure is kept in `safety_backup`.
    Restored {
        /// The `before-restore` copy of the database as the failure left it.
        safety_backup: Option<PathBuf>,
    },
    /// Kept as it is ([`Policy::Keep`](crate::Policy::Keep)): at the last
    /// migration that committed.
    Kept,
    /// Kept as it is although the policy was to restore: another program
    /// wrote to the database after the backup was taken, and restoring would
    /// have undone its writes. `backstop restore` can still put the backup back.
    KeptOverOtherWrites,
    /// Restoring failed; the database is at the last migration that committed.
    RestoreFailed {
        /// Why the restore failed.
        error: Box<Error>,
    },
}

impl Error {
    pub(super) fn failed(failure: RunFailure, outcome: Outcome) -> Error {
        let f = Failure {
            version: failure.version.clone(),
            name: failure.name.clone(),
            file: failure.path.clone(),
            line: failure.line,
            message: String::new(),
            rolled_back: failure.rolled_back,
            applied: failure.applied.iter().map(Applied::from).collect(),
            backup: failure.backup.as_ref().map(|b| b.path.clone()),
            outcome,
        };
        let inner = Internal::Migration(Box::new(failure));
        let message = inner.message().unwrap_or_default();
        Error {
            inner: Box::new(inner),
            failure: Some(Box::new(Failure { message, ..f })),
        }
    }

    /// What kind of failure this is; [`ErrorKind::exit_code`] gives the exit
    /// code `backstop` would use.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind()
    }

    /// The exit code `backstop up` exits with for the same error (SPEC
    /// "Exit codes"): 1 failed, 2 usage, 3 refused, 4 unavailable, 5 backup.
    pub fn exit_code(&self) -> i32 {
        self.kind().exit_code()
    }

    /// The migration (or configuration) file the error is about, if any.
    pub fn file(&self) -> Option<&Path> {
        self.inner.location().map(|(path, _)| path)
    }

    /// The line in [`Error::file`], when the error points at one.
    pub fn line(&self) -> Option<usize> {
        self.inner.location().and_then(|(_, line)| line)
    }

    /// SQLite's own message, when SQLite said something.
    pub fn message(&self) -> Option<String> {
        self.inner.message()
    }

    /// For a migration that failed while running ([`ErrorKind::Failed`], or
    /// interrupted, or stopped by a lock): which one, where, and what became
    /// of the database.
    pub fn failure(&self) -> Option<&Failure> {
        self.failure.as_deref()
    }
}

impl From<Internal> for Error {
    fn from(inner: Internal) -> Error {
        Error {
            inner: Box::new(inner),
            failure: None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.inner)?;
        let Some(failure) = &self.failure else {
            return Ok(());
        };
        let backup = failure
            .backup
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        match &failure.outcome {
            Outcome::Restored { .. } => write!(
                f,
                "\nthe database was restored from {backup}: it is as it was before the run"
            ),
            Outcome::Kept => match failure.applied.last() {
                Some(a) => write!(f, "\nthe database was kept at version {}", a.version),
                None => f.write_str("\nthe database was kept; nothing of this run was applied"),
            },
            Outcome::KeptOverOtherWrites => write!(
                f,
                "\nthe database was kept, not restored: another program wrote to it after the \
                 backup {backup} was taken, and restoring would undo those writes"
            ),
            Outcome::RestoreFailed { error } => write!(
                f,
                "\nrestoring {backup} failed, the database is at the last good migration: {error}"
            ),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind())
            .field("message", &self.to_string())
            .field("failure", &self.failure)
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&*self.inner)
    }
}
