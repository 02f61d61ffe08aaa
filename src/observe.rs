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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
}

/// Called from SQLite's progress handler while a long statement runs, with the
/// time the statement has been running. Must be cheap and thread-safe.
pub type Ticker = Arc<dyn Fn(Duration) + Send + Sync>;

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

    pub fn is_set(&self) -> bool {
        self.inner.flag.load(Ordering::SeqCst)
    }

    /// Lets `trigger` interrupt a statement running on `conn`.
    pub fn watch(&self, conn: &rusqlite::Connection) {
        if let Ok(mut handles) = self.inner.handles.lock() {
            handles.push(conn.get_interrupt_handle());
        }
    }

    /// The flag, for SQLite's progress handler (which must be `'static`).
    pub(crate) fn flag(&self) -> Arc<impl Fn() -> bool + Send + Sync> {
        let inner = self.inner.clone();
        Arc::new(move || inner.flag.load(Ordering::Relaxed))
    }
}
