//! The library's public face (issue 13; SPEC "Library and packages"): the one
//! entry point an application calls at start-up, [`migrate`], plus the
//! read-only [`status`]. Both take plain [`Options`] and return plain reports
//! or an [`Error`]; everything else in the crate is private and may change.
//!
//! `migrate` is `backstop up` without the terminal: the same plan, refusals,
//! preflight, backup, one transaction per migration, run log. What it adds is
//! the decision the command line asks the user for after a failure, made by
//! [`Policy`] (see `recover`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::apply::{self, UpOptions};
use crate::error::Error as Internal;
use crate::observe::Interrupt;
use crate::project::{Need, Project};
use crate::settings::{self, Settings};
use crate::source::Embedded;

mod error;
mod observer;
mod recover;
mod report;

pub use error::{Error, Failure, Outcome};
#[cfg(feature = "log")]
pub use observer::LogObserver;
pub use observer::{Event, Observer, Silent};
pub use report::{Applied, MigrationStatus, Report, Status};

/// Where the migrations come from.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Migrations {
    /// A folder read when [`migrate`] runs, as `backstop --migrations DIR` reads it.
    Folder(PathBuf),
    /// A folder compiled into the program by
    /// [`embed_migrations!`](crate::embed_migrations).
    Embedded(Embedded),
}

/// What [`migrate`] does about pending migrations and about a failed one.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// Apply what is pending; if a migration fails, put the pre-run backup
    /// back, so the database is exactly as it was before the run (unless
    /// another program wrote to it since the backup: then it is kept, see
    /// [`Outcome::KeptOverOtherWrites`]).
    #[default]
    Restore,
    /// Apply what is pending; if a migration fails, keep the database as it
    /// is: every migration of the run that committed stays applied.
    Keep,
    /// Apply nothing: fail with [`ErrorKind::Refused`](crate::ErrorKind::Refused)
    /// if anything is pending, for applications whose migrations are applied
    /// by someone else (`backstop up` before the deploy).
    Refuse,
}

/// What [`migrate`] and [`status`] work on. A plain struct: build it with
/// [`Options::new`], then set the fields that differ from the defaults.
///
/// ```
/// use std::time::Duration;
/// let mut options = backstop::Options::new(
///     "data/app.db",
///     backstop::Migrations::Folder("migrations".into()),
/// );
/// assert_eq!(options.backups, std::path::Path::new("data/backups"));
/// options.policy = backstop::Policy::Keep;
/// options.busy_timeout = Duration::from_secs(30);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct Options {
    /// The SQLite file (a plain path, or a `sqlite:` URL as sqlx and dbmate
    /// write them). Created if missing and its folder exists.
    pub database: PathBuf,
    /// The migrations, on disk or compiled in.
    pub migrations: Migrations,
    /// Where backups go; default: a `backups` folder beside the database.
    pub backups: PathBuf,
    /// Backups kept per database after a new one is taken; default 20.
    pub keep: usize,
    /// How long to wait for another connection's lock; default 5 s.
    pub busy_timeout: Duration,
    /// What to do about pending migrations and a failure; default
    /// [`Policy::Restore`].
    pub policy: Policy,
    /// Apply pending migrations older than the newest applied one instead of
    /// refusing (`--allow-out-of-order`); default false.
    pub allow_out_of_order: bool,
    /// Run although the schema changed outside migrations since the last run
    /// (`up --yes`; recorded in the run log); default false: such drift is
    /// refused.
    pub accept_drift: bool,
    /// SQLite extensions loaded on every connection, in order (`--load-extension`).
    pub extensions: Vec<PathBuf>,
    /// Values for `${NAME}` placeholders (`--placeholder NAME=VALUE`).
    pub placeholders: BTreeMap<String, String>,
}

impl Options {
    /// Options for `database` and `migrations`, everything else at its
    /// default (the command line's defaults, but backups beside the database
    /// rather than in the current folder).
    pub fn new(database: impl Into<PathBuf>, migrations: Migrations) -> Options {
        let database = database.into();
        // Beside the file a `sqlite:` URL names, not beside the URL.
        let file = database
            .to_str()
            .and_then(|s| settings::database_path(s, "database").ok())
            .unwrap_or_else(|| database.clone());
        let backups = file.parent().unwrap_or(Path::new("")).join("backups");
        Options {
            database,
            migrations,
            backups,
            keep: 20,
            busy_timeout: Duration::from_secs(5),
            policy: Policy::default(),
            allow_out_of_order: false,
            accept_drift: false,
            extensions: Vec::new(),
            placeholders: BTreeMap::new(),
        }
    }

    /// The settings the commands work from, checked as the command line
    /// checks its own.
    fn settings(&self) -> Result<Settings, Internal> {
        let database = match self.database.to_str() {
            Some(s) => settings::database_path(s, "Options::database")?,
            None => self.database.clone(),
        };
        if self.keep == 0 {
            return Err(Internal::Setting {
                setting: "Options::keep",
                value: "0".into(),
                expected: "at least 1, so the backup just taken is kept",
            });
        }
        let (migrations, embedded) = match &self.migrations {
            Migrations::Folder(dir) => (dir.clone(), None),
            Migrations::Embedded(e) => (e.root().to_path_buf(), Some(*e)),
        };
        Ok(Settings {
            database,
            migrations,
            backups: self.backups.clone(),
            keep: self.keep,
            busy_timeout: self.busy_timeout,
            extensions: self.extensions.clone(),
            placeholders: self.placeholders.clone(),
            python: None,
            project: PathBuf::new(),
            database_env: Vec::new(),
            embedded,
        })
    }
}

/// Brings the database up to date, safely: plans, refuses edited, missing or
/// out-of-order migrations and statements SQLite rejects (nothing changed),
/// takes a verified backup, applies each pending migration in one transaction
/// with its tracking row, and records the run. If a migration fails, the
/// [`Policy`] decides what becomes of the database, and the [`Error`] says
/// (see [`Error::failure`]).
///
/// Never prints or prompts: progress goes to `observer` ([`Silent`] ignores it).
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let folder = dir.path().join("migrations");
/// # std::fs::create_dir(&folder).unwrap();
/// std::fs::write(folder.join("1_users.sql"), "CREATE TABLE user (email TEXT);").unwrap();
/// std::fs::write(folder.join("2_seed.sql"),
///     "INSERT INTO user VALUES ('a@example.com');\nINSERT INTO nothing VALUES (1);").unwrap();
/// let options = backstop::Options::new(dir.path().join("app.db"), backstop::Migrations::Folder(folder));
///
/// // SQLite finds the unknown table before anything runs: refused, nothing changed.
/// let err = backstop::migrate(&options, &mut backstop::Silent).unwrap_err();
/// assert_eq!(err.kind(), backstop::ErrorKind::Refused);
/// assert_eq!(err.line(), Some(2));
/// assert!(err.file().unwrap().ends_with("2_seed.sql"));
/// assert!(!dir.path().join("app.db").exists());
/// ```
pub fn migrate(options: &Options, observer: &mut dyn Observer) -> Result<Report, Error> {
    let settings = options.settings()?;
    if options.policy == Policy::Refuse {
        refuse_pending(&settings, options.allow_out_of_order)?;
        return Ok(Report::nothing(&settings.database));
    }
    let up = UpOptions {
        to: None,
        allow_out_of_order: options.allow_out_of_order,
        no_backup: false,
        accept_drift: options.accept_drift,
    };
    let mut bridge = observer::Bridge::new(observer);
    match apply::up(&settings, &up, &mut bridge, &Interrupt::new()) {
        Ok(report) => Ok(Report::from(report)),
        Err(Internal::Migration(failure)) => {
            let outcome = recover::after_failure(&settings, &failure, options.policy, &mut bridge);
            Err(Error::failed(*failure, outcome))
        }
        Err(e) => Err(e.into()),
    }
}

/// The state of every migration, as `backstop status` shows it; changes
/// nothing (a missing database is read as an empty one and not created).
pub fn status(options: &Options) -> Result<Status, Error> {
    let settings = options.settings()?;
    Ok(Status::from(crate::status::read(&settings)?))
}

/// [`Policy::Refuse`]: the plan's refusals, then any pending migration.
fn refuse_pending(settings: &Settings, allow_out_of_order: bool) -> Result<(), Internal> {
    let project = Project::load(settings, Need::Optional)?;
    let plan = project.plan();
    let problems = plan.problems(allow_out_of_order);
    if !problems.is_empty() {
        return Err(Internal::Blocked(problems));
    }
    let pending = plan.pending(None, allow_out_of_order);
    if pending.is_empty() {
        return Ok(());
    }
    Err(Internal::Pending {
        path: settings.database.clone(),
        pending: pending.iter().map(|m| m.version.clone()).collect(),
    })
}

#[cfg(test)]
mod tests;
