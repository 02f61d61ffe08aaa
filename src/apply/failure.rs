//! A failed run as data (STYLE "Failure is data"): what failed and where, what
//! committed before it, and the pre-run backup the CLI may offer to restore.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use super::Applied;
use crate::backup::BackupInfo;
use crate::migration::{Kind, Version};
use crate::observe::OutputLine;

/// Why a migration stopped.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Cause {
    Sql {
        message: String,
    },
    /// The migration left rows whose parent is missing (enforcement is off while
    /// migrations run, so SQLite did not stop it).
    ForeignKeys {
        violations: Vec<Violation>,
        total: usize,
        /// Orphans that were there before the migration are left out; false
        /// when that state could not be read, so every orphan counts.
        compared: bool,
    },
    Interrupted,
    /// Another connection held a lock past the busy timeout (a reader's open
    /// transaction blocks COMMIT): nothing is wrong with the migration, and the
    /// database is unavailable (SPEC `up` step 1: exit 4).
    Locked {
        message: String,
    },
    /// A Python module raised, or tried to end its transaction itself
    /// (issue 12); the end of the traceback.
    Module {
        message: String,
        traceback: Vec<String>,
    },
    /// A script exited non-zero, could not start or was killed; the last
    /// lines of its stderr.
    Exited {
        message: String,
        code: Option<i32>,
        stderr: Vec<String>,
    },
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Violation {
    pub table: String,
    pub rowid: Option<i64>,
    pub parent: String,
}

/// A failed run, as data: what failed and where, what committed before it, and
/// the pre-run backup the CLI may offer to restore.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunFailure {
    pub database: PathBuf,
    pub version: Version,
    pub name: String,
    pub path: PathBuf,
    pub line: usize,
    pub cause: Cause,
    pub applied: Vec<Applied>,
    pub backup: Option<BackupInfo>,
    /// Another connection committed after the backup was taken: restoring the
    /// backup would undo those writes too.
    pub others_wrote: bool,
    /// The failed section ran in a transaction, so none of its changes stayed.
    /// False for `transaction:false`: its statements before the failure stay
    /// applied (untracked), and only the backup undoes them.
    pub rolled_back: bool,
    /// How the failed migration runs (a script commits as it goes).
    pub kind: Kind,
    /// A script ran in this run and the database changed meanwhile: scripts
    /// open the database themselves, so their writes cannot be told from
    /// other programs', and `others_wrote` is set (issue 12).
    pub script_wrote: bool,
    /// What the failed migration printed (executable migrations).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub output: Vec<OutputLine>,
    /// Every migration this run applied has a down section, they are the
    /// newest applied, and the failed one was rolled back: reverting them with
    /// their down sections undoes the run and keeps other programs' rows.
    pub revertible: bool,
    /// The run's connection, kept open to tell later whether other programs
    /// wrote (the failure prompt waits for a person; issue 9).
    #[serde(skip)]
    pub watch: Option<Arc<Watcher>>,
}

/// A connection kept from the failed run. `PRAGMA data_version` on one
/// connection changes if and only if another connection committed (SQLite's
/// documentation of the pragma), so comparing it with its value when the
/// run's own writes ended (the backup, or the last commit of a Python module,
/// which commits through the runner's connection) says whether anyone else
/// wrote since, however long ago.
pub struct Watcher {
    conn: Mutex<Connection>,
    baseline: i64,
}

impl Watcher {
    pub(crate) fn new(conn: Connection, baseline: i64) -> Watcher {
        Watcher {
            conn: Mutex::new(conn),
            baseline,
        }
    }

    /// The data version now; None when it cannot be read (treat as changed).
    pub fn version(&self) -> Option<i64> {
        let conn = self.conn.lock().ok()?;
        super::data_version(&conn).ok()
    }

    /// The data version when the run's own writes ended.
    pub fn baseline(&self) -> i64 {
        self.baseline
    }

    /// Another connection committed since the backup (or it cannot be told).
    pub fn others_wrote(&self) -> bool {
        self.version() != Some(self.baseline)
    }
}

impl fmt::Debug for Watcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watcher")
            .field("baseline", &self.baseline)
            .finish_non_exhaustive()
    }
}

impl RunFailure {
    pub fn interrupted(&self) -> bool {
        matches!(self.cause, Cause::Interrupted)
    }

    pub fn locked(&self) -> bool {
        matches!(self.cause, Cause::Locked { .. })
    }

    /// Nothing of the run stayed applied: the first migration failed (or
    /// Ctrl-C hit it) and was rolled back, so there is nothing to undo.
    pub fn applied_nothing(&self) -> bool {
        self.applied.is_empty() && self.rolled_back
    }

    /// Other programs wrote since the backup: as seen at the failure, or now
    /// through the kept connection.
    pub fn others_wrote_now(&self) -> bool {
        self.others_wrote || self.watch.as_ref().is_some_and(|w| w.others_wrote())
    }

    /// What became of the failed migration's own changes.
    fn fate(&self) -> &'static str {
        if self.rolled_back {
            "rolled back"
        } else if self.kind == Kind::Script {
            "NOT rolled back: a script commits its own changes, so what it wrote before \
             failing stays; restore the backup to undo it"
        } else {
            "NOT rolled back: it runs outside a transaction (transaction:false), so its \
             statements before this point stay applied; restore the backup to undo them"
        }
    }

    /// Why the failed migration is partly applied, in a few words.
    pub fn partly_applied_because(&self) -> &'static str {
        if self.kind == Kind::Script {
            "a script commits as it goes"
        } else {
            "transaction:false"
        }
    }
}

impl fmt::Display for RunFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = format!("{}:{}", self.path.display(), self.line);
        match &self.cause {
            Cause::Sql { message } => {
                write!(f, "{at}: migration {} failed: {message}", self.version)?;
                if !self.rolled_back {
                    write!(f, "\n  {}", self.fate())?;
                }
                Ok(())
            }
            Cause::Module { message, traceback } => {
                write!(f, "{at}: migration {} failed: {message}", self.version)?;
                for line in traceback {
                    write!(f, "\n  | {line}")?;
                }
                if !self.rolled_back {
                    write!(f, "\n  {}", self.fate())?;
                }
                Ok(())
            }
            Cause::Exited {
                message, stderr, ..
            } => {
                write!(
                    f,
                    "{}: migration {} failed: the script {message}",
                    self.path.display(),
                    self.version
                )?;
                if !stderr.is_empty() {
                    f.write_str("; the end of its stderr:")?;
                    for line in stderr {
                        write!(f, "\n  | {line}")?;
                    }
                }
                write!(f, "\n  {}", self.fate())
            }
            Cause::Interrupted => write!(
                f,
                "{at}: migration {} interrupted; {}",
                self.version,
                self.fate()
            ),
            Cause::Locked { message } => write!(
                f,
                "{at}: migration {} stopped: {} is locked by another connection ({message}); {}",
                self.version,
                self.database.display(),
                self.fate()
            ),
            Cause::ForeignKeys {
                violations,
                total,
                compared,
            } => {
                write!(
                    f,
                    "{}: migration {} left {total} row(s) whose parent is missing; {}",
                    self.path.display(),
                    self.version,
                    self.fate()
                )?;
                for v in violations {
                    match v.rowid {
                        Some(id) => {
                            write!(f, "\n  {} rowid {} → missing {}", v.table, id, v.parent)?
                        }
                        None => write!(f, "\n  {} → missing {}", v.table, v.parent)?,
                    }
                }
                if !compared {
                    write!(
                        f,
                        "\n  (the database as it was before this migration could not be read, so \
                         rows that were orphaned already count too; with a backup (no \
                         --no-backup) backstop compares with it)"
                    )?;
                }
                write!(
                    f,
                    "\n  (foreign keys are not enforced while migrations run, so ON DELETE CASCADE \
                     does not fire; delete or fix the child rows in the migration, or mark it \
                     `-- migrate:up foreign_keys:on`)"
                )
            }
        }
    }
}
