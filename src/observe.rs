//! What the core reports while it works. The core never prints: the CLI turns
//! these events into bars or plain lines, tests record them.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::backup::BackupInfo;
use crate::migration::Migration;

#[derive(Debug)]
pub enum Event<'a> {
    DatabaseCreated {
        path: &'a Path,
    },
    /// Steps that drop or delete, listed before a run starts.
    Destructive {
        items: &'a [crate::inspect::Destructive],
    },
    PlanReady {
        pending: usize,
    },
    BackupStarted {
        database: &'a Path,
        bytes: u64,
    },
    BackupProgress {
        done: u64,
        total: u64,
    },
    BackupDone {
        backup: &'a BackupInfo,
    },
    BackupPruned {
        path: &'a Path,
    },
    /// A temporary file a killed backstop left behind was removed.
    TemporaryRemoved {
        path: &'a Path,
    },
    MigrationStarted {
        index: usize,
        total: usize,
        migration: &'a Migration,
        direction: Direction,
    },
    StatementStarted {
        migration: &'a Migration,
        line: usize,
        sql: &'a str,
    },
    StatementFinished {
        migration: &'a Migration,
        line: usize,
        duration: Duration,
    },
    MigrationCommitted {
        migration: &'a Migration,
        duration: Duration,
        rows: u64,
    },
    MigrationFailed {
        migration: &'a Migration,
        line: usize,
        message: &'a str,
    },
    /// A line an executable migration printed (issue 12), as it comes.
    Output {
        migration: &'a Migration,
        stream: Stream,
        line: &'a str,
    },
    RestoreStarted {
        backup: &'a Path,
        bytes: u64,
    },
    RestoreProgress {
        done: u64,
        total: u64,
    },
    /// A long read-only check started (`verify`'s integrity_check, `backups`
    /// hashing every backup): something to show before a silent wait.
    CheckStarted {
        check: Check,
        path: &'a Path,
        bytes: u64,
    },
    /// Another connection holds a lock on `path` and this one waits for it
    /// (SPEC `up` step 1), sent once per wait from inside SQLite's busy handler
    /// through [`Observer::notify`].
    LockWait {
        path: &'a Path,
    },
    Warning {
        message: &'a str,
    },
}

/// Which of a child process's streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// A line of an executable migration's output, kept for `--json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OutputLine {
    pub stream: Stream,
    pub line: String,
}

/// What a [`Event::CheckStarted`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Integrity,
    Backups,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
}

/// Called from SQLite's progress handler while a long statement runs, with the
/// time the statement has been running. Must be cheap and thread-safe.
pub type Ticker = Arc<dyn Fn(Duration) + Send + Sync>;

/// Receives events raised from inside SQLite's callbacks (a busy wait), where
/// the observer's `event(&mut self)` cannot be reached. Thread-safe and cheap.
pub type Notify = Arc<dyn Fn(&Event<'_>) + Send + Sync>;

pub trait Observer {
    fn event(&mut self, event: Event<'_>);
    /// A callback for live elapsed-time updates; `None` when nobody watches.
    fn ticker(&self) -> Option<Ticker> {
        None
    }
    /// Asked before running steps that drop or delete. The CLI asks the user on
    /// a terminal; everywhere else the verified backup is the safety net.
    fn confirm_destructive(&mut self, _items: &[crate::inspect::Destructive]) -> bool {
        true
    }
    /// Where events from inside SQLite's callbacks go (see [`Notify`]).
    fn notify(&self) -> Option<Notify> {
        None
    }
    /// The Ctrl-C flag of the command this observer watches. Steps that take
    /// no interrupt of their own (the backup inside `repair`, `baseline`)
    /// check this one, so every long step stops on Ctrl-C (issue 9).
    fn interrupt(&self) -> Option<&Interrupt> {
        None
    }
}

/// An observer that also carries `interrupt`: what `up` and `down` hand to the
/// steps inside them when their caller's observer carries none.
pub struct WithInterrupt<'o> {
    pub inner: &'o mut dyn Observer,
    pub interrupt: &'o Interrupt,
}

impl Observer for WithInterrupt<'_> {
    fn event(&mut self, event: Event<'_>) {
        self.inner.event(event)
    }
    fn ticker(&self) -> Option<Ticker> {
        self.inner.ticker()
    }
    fn confirm_destructive(&mut self, items: &[crate::inspect::Destructive]) -> bool {
        self.inner.confirm_destructive(items)
    }
    fn notify(&self) -> Option<Notify> {
        self.inner.notify()
    }
    fn interrupt(&self) -> Option<&Interrupt> {
        Some(self.interrupt)
    }
}

/// Ignores everything (the core's tests; the public API has its own `Silent`).
#[cfg(test)]
pub(crate) struct Silent;

#[cfg(test)]
impl Observer for Silent {
    fn event(&mut self, _: Event<'_>) {}
}

/// The user asked to stop (Ctrl-C). The CLI triggers it; the core checks it
/// between statements and, through SQLite's progress handler and interrupt
/// handle, inside long ones.
#[derive(Clone, Default)]
pub struct Interrupt {
    inner: Arc<InterruptInner>,
}

#[derive(Default)]
struct InterruptInner {
    flag: AtomicBool,
    handles: Mutex<Vec<rusqlite::InterruptHandle>>,
}

impl Interrupt {
    pub fn new() -> Interrupt {
        Interrupt::default()
    }

    pub fn trigger(&self) {
        self.inner.flag.store(true, Ordering::SeqCst);
        if let Ok(handles) = self.inner.handles.lock() {
            for h in handles.iter() {
                h.interrupt();
            }
        }
    }

    /// Lowers the flag: a person answered a question after Ctrl-C (the
    /// failure prompt), so the next step is a new request that the next
    /// Ctrl-C must be able to stop again.
    pub fn reset(&self) {
        self.inner.flag.store(false, Ordering::SeqCst);
    }

    pub fn is_set(&self) -> bool {
        self.inner.flag.load(Ordering::SeqCst)
    }

    /// Lets `trigger` interrupt a statement running on `conn`.
    pub fn watch(&self, conn: &rusqlite::Connection) {
        if let Ok(mut handles) = self.inner.handles.lock() {
            handles.push(conn.get_interrupt_handle());
        }
    }

    /// Stops any statement on `conn` once the flag is set, also one that starts
    /// after the trigger (SQLite forgets an interrupt sent to an idle
    /// connection): for the connections of long checks (quick_check,
    /// integrity_check). Not for migrations, whose runner has its own handler.
    pub fn stop_on(&self, conn: &rusqlite::Connection) {
        self.watch(conn);
        let stop = self.flag();
        conn.progress_handler(1000, Some(move || stop()));
    }

    /// `Err(Error::Interrupted)` once the flag is set: for copy and hash loops.
    pub fn check(&self) -> crate::error::Result<()> {
        if self.is_set() {
            Err(crate::error::Error::Interrupted)
        } else {
            Ok(())
        }
    }

    /// The flag, for SQLite's progress handler (which must be `'static`).
    pub(crate) fn flag(&self) -> Arc<impl Fn() -> bool + Send + Sync> {
        let inner = self.inner.clone();
        Arc::new(move || inner.flag.load(Ordering::Relaxed))
    }
}
