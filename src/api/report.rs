//! What [`migrate`](crate::migrate) and [`status`](crate::status) return: plain
//! values, copied out of the internal reports so those can change freely.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::migration::Version;
use crate::plan::State;

/// A run of [`migrate`](crate::migrate) that finished.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct Report {
    /// The database that was migrated.
    pub database: PathBuf,
    /// The database did not exist and was created by this run.
    pub created: bool,
    /// The migrations applied, in the order they ran; empty when the database
    /// was up to date (then no backup is taken either).
    pub applied: Vec<Applied>,
    /// The verified backup taken before the first migration ran.
    pub backup: Option<PathBuf>,
    /// How long the whole run took.
    pub duration: Duration,
}

impl Report {
    pub(super) fn nothing(database: &Path) -> Report {
        Report {
            database: database.to_path_buf(),
            created: false,
            applied: Vec::new(),
            backup: None,
            duration: Duration::ZERO,
        }
    }

    /// Rows changed by all the applied migrations together.
    pub fn rows_changed(&self) -> u64 {
        self.applied.iter().map(|a| a.rows_changed).sum()
    }
}

impl From<crate::apply::UpReport> for Report {
    fn from(r: crate::apply::UpReport) -> Report {
        Report {
            database: r.database,
            created: r.created,
            applied: r.applied.iter().map(Applied::from).collect(),
            backup: r.backup.map(|b| b.path),
            duration: Duration::from_millis(r.duration_ms),
        }
    }
}

/// A migration that committed, together with its tracking row.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct Applied {
    /// Its version, as its file writes it.
    pub version: Version,
    /// Its name (the file name after the version).
    pub name: String,
    /// How long it ran, commit included.
    pub duration: Duration,
    /// Rows its statements inserted, updated or deleted (0 for scripts, which
    /// change the database themselves).
    pub rows_changed: u64,
}

impl From<&crate::apply::Applied> for Applied {
    fn from(a: &crate::apply::Applied) -> Applied {
        Applied {
            version: a.version.clone(),
            name: a.name.clone(),
            duration: Duration::from_micros(a.duration_us),
            rows_changed: a.rows_changed,
        }
    }
}

/// Every migration's state, as `backstop status` shows it.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct Status {
    /// The database read.
    pub database: PathBuf,
    /// The database file exists (a missing one reads as empty).
    pub exists: bool,
    /// Every version the folder or the tracking table knows, in order.
    pub migrations: Vec<MigrationStatus>,
}

impl Status {
    /// The migrations [`migrate`](crate::migrate) would apply.
    pub fn pending(&self) -> impl Iterator<Item = &MigrationStatus> {
        self.migrations.iter().filter(|m| m.state == State::Pending)
    }

    /// Every migration is applied: nothing pending, edited, missing or out of order.
    pub fn is_up_to_date(&self) -> bool {
        self.migrations.iter().all(|m| m.state == State::Applied)
    }
}

impl From<crate::status::Status> for Status {
    fn from(s: crate::status::Status) -> Status {
        Status {
            database: s.database,
            exists: s.exists,
            migrations: s
                .migrations
                .into_iter()
                .map(|r| MigrationStatus {
                    version: r.version,
                    name: r.name,
                    state: r.state,
                    file: r.file,
                })
                .collect(),
        }
    }
}

/// One migration in a [`Status`].
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct MigrationStatus {
    /// Its version, as its file writes it.
    pub version: Version,
    /// Its name.
    pub name: String,
    /// Applied, pending, edited, missing or out-of-order.
    pub state: State,
    /// Its file (`None` when it is missing).
    pub file: Option<PathBuf>,
}
