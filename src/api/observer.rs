//! How an application hears what [`migrate`](crate::migrate) does: a small,
//! stable set of [`Event`]s, translated from the crate's internal ones by
//! `Bridge` (the internal events carry internal types and may change). The
//! library never asks: where the command line would prompt (steps that drop
//! or delete), it goes ahead, the verified backup being the net, and says so
//! in a [`Event::Warning`].

use std::path::Path;
use std::time::Duration;

use crate::migration::Version;
use crate::observe::{self, Stream};

/// Receives [`Event`]s while [`migrate`](crate::migrate) works. Called on the
/// migrating thread; keep it quick.
///
/// ```
/// use backstop::{Event, Observer};
///
/// /// Start-up progress in the application's own words.
/// struct Progress(Vec<String>);
///
/// impl Observer for Progress {
///     fn event(&mut self, event: &Event<'_>) {
///         match event {
///             Event::MigrationCommitted { version, rows_changed, .. } => {
///                 self.0.push(format!("{version}: {rows_changed} row(s)"))
///             }
///             Event::Warning { message } => self.0.push(format!("warning: {message}")),
///             _ => {}
///         }
///     }
/// }
/// # let dir = tempfile::tempdir().unwrap();
/// # let folder = dir.path().join("m");
/// # std::fs::create_dir(&folder).unwrap();
/// # std::fs::write(folder.join("1_t.sql"), "CREATE TABLE t (x); INSERT INTO t VALUES (1);").unwrap();
/// let options = backstop::Options::new(dir.path().join("app.db"), backstop::Migrations::Folder(folder));
/// let mut progress = Progress(Vec::new());
/// backstop::migrate(&options, &mut progress).unwrap();
/// assert_eq!(progress.0, ["1: 1 row(s)"]);
/// ```
pub trait Observer {
    /// One thing that happened.
    fn event(&mut self, event: &Event<'_>);
}

/// An [`Observer`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Observer for Silent {
    fn event(&mut self, _: &Event<'_>) {}
}

/// What [`migrate`](crate::migrate) is doing.
#[non_exhaustive]
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// The database did not exist; it was created, empty, for this run.
    DatabaseCreated {
        /// The new file.
        path: &'a Path,
    },
    /// The plan is made: this many migrations will run.
    PlanReady {
        /// Migrations to apply.
        pending: usize,
    },
    /// A backup of the database is being taken.
    BackupStarted {
        /// The database backed up.
        database: &'a Path,
        /// Its size.
        bytes: u64,
    },
    /// Bytes of the backup copied so far (large databases).
    BackupProgress {
        /// Copied so far.
        done: u64,
        /// The whole.
        total: u64,
    },
    /// The backup is complete and verified (hash and `quick_check`).
    BackupDone {
        /// The backup file.
        path: &'a Path,
        /// Its size.
        bytes: u64,
    },
    /// An old backup was deleted (more than `keep` of this database).
    BackupPruned {
        /// The deleted file.
        path: &'a Path,
    },
    /// A migration starts.
    MigrationStarted {
        /// Its version.
        version: &'a Version,
        /// Its name.
        name: &'a str,
        /// Its place in this run, from 1.
        index: usize,
        /// Migrations in this run.
        total: usize,
    },
    /// A statement of the running migration starts.
    StatementStarted {
        /// The migration's version.
        version: &'a Version,
        /// The file.
        file: &'a Path,
        /// The statement's first line in the file.
        line: usize,
    },
    /// A migration committed, together with its tracking row.
    MigrationCommitted {
        /// Its version.
        version: &'a Version,
        /// Its name.
        name: &'a str,
        /// How long it ran.
        duration: Duration,
        /// Rows its statements changed.
        rows_changed: u64,
    },
    /// A migration failed (and was rolled back, unless `transaction:false`).
    MigrationFailed {
        /// Its version.
        version: &'a Version,
        /// Its file.
        file: &'a Path,
        /// The line of the failing statement.
        line: usize,
        /// SQLite's message.
        message: &'a str,
    },
    /// A line an executable migration printed.
    Output {
        /// The migration's version.
        version: &'a Version,
        /// The line, without its line break.
        line: &'a str,
        /// It came on stderr (else stdout).
        stderr: bool,
    },
    /// A backup is being put back (after a failure, [`Policy::Restore`](crate::Policy::Restore)).
    RestoreStarted {
        /// The backup file.
        backup: &'a Path,
    },
    /// Bytes of the backup put back so far.
    RestoreProgress {
        /// Copied so far.
        done: u64,
        /// The whole.
        total: u64,
    },
    /// Worth a look, but not stopping the run: steps that drop or delete
    /// data, schema drift that was accepted, and the like.
    Warning {
        /// What to look at.
        message: &'a str,
    },
}

/// The internal observer the core talks to, passing on what an application
/// can use.
pub(super) struct Bridge<'o> {
    app: &'o mut dyn Observer,
}

impl<'o> Bridge<'o> {
    pub(super) fn new(app: &'o mut dyn Observer) -> Bridge<'o> {
        Bridge { app }
    }
}

impl observe::Observer for Bridge<'_> {
    fn event(&mut self, event: observe::Event<'_>) {
        use observe::Event as In;
        let out = match event {
            In::DatabaseCreated { path } => Event::DatabaseCreated { path },
            In::PlanReady { pending } => Event::PlanReady { pending },
            In::BackupStarted { database, bytes } => Event::BackupStarted { database, bytes },
            In::BackupDone { backup } => Event::BackupDone {
                path: &backup.path,
                bytes: backup.manifest.size,
            },
            In::BackupPruned { path } => Event::BackupPruned { path },
            In::MigrationStarted {
                index,
                total,
                migration,
                ..
            } => Event::MigrationStarted {
                version: &migration.version,
                name: &migration.name,
                index: index + 1,
                total,
            },
            In::StatementStarted {
                migration, line, ..
            } => Event::StatementStarted {
                version: &migration.version,
                file: &migration.path,
                line,
            },
            In::MigrationCommitted {
                migration,
                duration,
                rows,
            } => Event::MigrationCommitted {
                version: &migration.version,
                name: &migration.name,
                duration,
                rows_changed: rows,
            },
            In::MigrationFailed {
                migration,
                line,
                message,
            } => Event::MigrationFailed {
                version: &migration.version,
                file: &migration.path,
                line,
                message,
            },
            In::Output {
                migration,
                stream,
                line,
            } => Event::Output {
                version: &migration.version,
                line,
                stderr: stream == Stream::Stderr,
            },
            In::RestoreStarted { backup, .. } => Event::RestoreStarted { backup },
            In::Warning { message } => Event::Warning { message },
            In::Destructive { items } => {
                for item in items {
                    let message = format!("{item} (a verified backup was taken first)");
                    self.app.event(&Event::Warning { message: &message });
                }
                return;
            }
            In::BackupProgress { done, total } => Event::BackupProgress { done, total },
            In::RestoreProgress { done, total } => Event::RestoreProgress { done, total },
            // Lock waits reach the CLI from inside SQLite's busy handler;
            // temporaries swept and the checks of `verify` are not the
            // application's business at start-up.
            In::StatementFinished { .. }
            | In::LockWait { .. }
            | In::TemporaryRemoved { .. }
            | In::CheckStarted { .. } => return,
        };
        self.app.event(&out);
    }
}

/// An [`Observer`] that writes events as `log` records (target `backstop`):
/// migrations and backups at `info`, statements at `debug`, warnings at
/// `warn`, a failed migration at `error`. Feature `log`.
#[cfg(feature = "log")]
#[derive(Debug, Clone, Copy, Default)]
pub struct LogObserver;

#[cfg(feature = "log")]
impl Observer for LogObserver {
    fn event(&mut self, event: &Event<'_>) {
        use log::{debug, error, info, warn};
        const T: &str = "backstop";
        match *event {
            Event::DatabaseCreated { path } => info!(target: T, "created {}", path.display()),
            Event::PlanReady { pending } => info!(target: T, "{pending} migration(s) to apply"),
            Event::BackupStarted { database, bytes } => {
                debug!(target: T, "backing up {} ({bytes} bytes)", database.display())
            }
            Event::BackupDone { path, bytes } => {
                info!(target: T, "backup {} ({bytes} bytes, verified)", path.display())
            }
            Event::BackupPruned { path } => info!(target: T, "pruned {}", path.display()),
            Event::BackupProgress { done, total } | Event::RestoreProgress { done, total } => {
                debug!(target: T, "{done} of {total} bytes copied")
            }
            Event::MigrationStarted {
                version,
                name,
                index,
                total,
            } => info!(target: T, "[{index}/{total}] applying {version} {name}"),
            Event::StatementStarted {
                version,
                file,
                line,
            } => debug!(target: T, "{version}: statement at {}:{line}", file.display()),
            Event::MigrationCommitted {
                version,
                name,
                duration,
                rows_changed,
            } => info!(
                target: T,
                "applied {version} {name} in {duration:?} ({rows_changed} row(s) changed)"
            ),
            Event::MigrationFailed {
                version,
                file,
                line,
                message,
            } => {
                error!(target: T, "{}:{line}: migration {version} failed: {message}", file.display())
            }
            Event::Output {
                version,
                line,
                stderr,
            } => match stderr {
                true => warn!(target: T, "{version}: {line}"),
                false => info!(target: T, "{version}: {line}"),
            },
            Event::RestoreStarted { backup } => {
                warn!(target: T, "restoring {}", backup.display())
            }
            Event::Warning { message } => warn!(target: T, "{message}"),
        }
    }
}
