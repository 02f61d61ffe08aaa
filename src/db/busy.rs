//! Waiting for another connection's lock (SPEC `up` step 1: wait the busy
//! timeout, then exit 4), stopped by Ctrl-C and announced once per wait
//! (issues 9 and 10: a wait must neither swallow Ctrl-C nor look like a hang).
//!
//! rusqlite takes SQLite's busy handler as a plain `fn`, so what the handler
//! needs (the timeout, the command's interrupt, where to announce the wait) is
//! set for the current thread by [`within`] around a command. SQLite calls the
//! handler synchronously on the thread that made the blocked call, so the
//! innermost scope of that thread is the command that waits. Connections opened
//! outside any scope keep SQLite's own busy timeout.

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::observe::{Event, Interrupt, Notify};

/// A wait shorter than this is not worth a line on the screen.
const NOTICE_AFTER: Duration = Duration::from_millis(200);

/// Pauses between retries, as SQLite's default handler grows them, capped so
/// Ctrl-C is seen within 50 ms.
const PAUSES_MS: [u64; 7] = [1, 2, 5, 10, 20, 30, 50];

struct Scope {
    path: PathBuf,
    timeout: Duration,
    interrupt: Interrupt,
    notify: Option<Notify>,
    started: Cell<Option<Instant>>,
    noticed: Cell<bool>,
    /// A wait ended because of Ctrl-C: the "locked" error that follows is an
    /// interruption, not an unavailable database.
    interrupted: Cell<bool>,
}

thread_local! {
    static SCOPES: RefCell<Vec<Rc<Scope>>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with busy waits on this thread bounded by `timeout`, stopped by
/// `interrupt` and announced through `notify` (an inner scope without one
/// keeps the outer scope's). A lock error caused by Ctrl-C comes back as
/// [`Error::Interrupted`] (exit 130).
/// `within` for a command that reports to `obs`: its lock waits are
/// announced through the observer, which is also told about `interrupt`
/// (the backups taken inside check it between chunks).
pub(crate) fn observed<T>(
    settings: &crate::settings::Settings,
    obs: &mut dyn crate::observe::Observer,
    interrupt: &Interrupt,
    f: impl FnOnce(&mut dyn crate::observe::Observer) -> Result<T>,
) -> Result<T> {
    let notify = obs.notify();
    let mut obs = crate::observe::WithInterrupt {
        inner: obs,
        interrupt,
    };
    within(
        &settings.database,
        settings.busy_timeout,
        interrupt,
        notify,
        || f(&mut obs),
    )
}

pub fn within<T>(
    path: &Path,
    timeout: Duration,
    interrupt: &Interrupt,
    notify: Option<Notify>,
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let notify =
        notify.or_else(|| SCOPES.with(|s| s.borrow().last().and_then(|top| top.notify.clone())));
    let scope = Rc::new(Scope {
        path: path.to_path_buf(),
        timeout,
        interrupt: interrupt.clone(),
        notify,
        started: Cell::new(None),
        noticed: Cell::new(false),
        interrupted: Cell::new(false),
    });
    SCOPES.with(|s| s.borrow_mut().push(scope.clone()));
    // Popped however `f` ends (a panic included), so no scope outlives its command.
    struct Pop;
    impl Drop for Pop {
        fn drop(&mut self) {
            SCOPES.with(|s| {
                s.borrow_mut().pop();
            });
        }
    }
    let pop = Pop;
    let result = f();
    drop(pop);
    match result {
        Err(e) if scope.interrupted.get() || interrupt.is_set() => Err(interrupted(e)),
        other => other,
    }
}

/// The error a command reports when Ctrl-C ended a wait or a step: a failed
/// migration keeps its report (as interrupted), lock errors become
/// [`Error::Interrupted`].
fn interrupted(e: Error) -> Error {
    match e {
        Error::Migration(mut f) => {
            if f.locked() {
                f.cause = crate::apply::Cause::Interrupted;
            }
            Error::Migration(f)
        }
        Error::Locked { .. }
        | Error::Raced { .. }
        | Error::Database { .. }
        | Error::Backup { .. }
        | Error::Restore { .. } => Error::Interrupted,
        other => other,
    }
}

/// Installs the busy handler on `conn`: this thread's scope decides how long
/// to wait; outside any scope, SQLite's busy timeout of `timeout`.
pub fn install(conn: &Connection, timeout: Duration) -> rusqlite::Result<()> {
    if SCOPES.with(|s| s.borrow().is_empty()) {
        conn.busy_timeout(timeout)
    } else {
        conn.busy_handler(Some(handler))
    }
}

/// SQLite's busy handler: true to retry, false to give up (SQLITE_BUSY).
/// `count` is how often it was called for this same wait.
fn handler(count: i32) -> bool {
    let Some(scope) = SCOPES.with(|s| s.borrow().last().cloned()) else {
        // The connection outlived its command's scope: do not wait.
        return false;
    };
    if count == 0 {
        scope.started.set(Some(Instant::now()));
        scope.noticed.set(false);
    }
    if scope.interrupt.is_set() {
        scope.interrupted.set(true);
        return false;
    }
    let waited = scope.started.get().map(|t| t.elapsed()).unwrap_or_default();
    if waited >= scope.timeout {
        return false;
    }
    if waited >= NOTICE_AFTER && !scope.noticed.replace(true) {
        if let Some(notify) = &scope.notify {
            notify(&Event::LockWait { path: &scope.path });
        }
    }
    let pause = PAUSES_MS[(count.max(0) as usize).min(PAUSES_MS.len() - 1)];
    std::thread::sleep(Duration::from_millis(pause).min(scope.timeout - waited));
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn locked_pair() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        let holder = Connection::open(&path).unwrap();
        holder
            .execute_batch("CREATE TABLE t (x); BEGIN EXCLUSIVE; INSERT INTO t VALUES (1);")
            .unwrap();
        (dir, holder)
    }

    #[test]
    fn a_wait_is_announced_once_and_ends_at_the_timeout() {
        let (dir, _holder) = locked_pair();
        let path = dir.path().join("x.db");
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = seen.clone();
        let notify: Notify = Arc::new(move |e| {
            if matches!(e, Event::LockWait { .. }) {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        let started = Instant::now();
        let r = within(
            &path,
            Duration::from_millis(400),
            &Interrupt::new(),
            Some(notify),
            || {
                let c = Connection::open(&path).unwrap();
                install(&c, Duration::ZERO).unwrap();
                c.query_row("SELECT count(*) FROM t", [], |_| Ok(()))
                    .map_err(|e| Error::from_sqlite(&path, e))
            },
        );
        assert!(matches!(r, Err(Error::Locked { .. })), "{r:?}");
        assert!(started.elapsed() >= Duration::from_millis(400));
        assert_eq!(seen.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn ctrl_c_ends_a_wait_as_an_interruption() {
        let (dir, _holder) = locked_pair();
        let path = dir.path().join("x.db");
        let interrupt = Interrupt::new();
        // Ctrl-C as soon as the wait is announced.
        let trigger = interrupt.clone();
        let notify: Notify = Arc::new(move |_| trigger.trigger());
        let started = Instant::now();
        let r = within(
            &path,
            Duration::from_secs(60),
            &interrupt,
            Some(notify),
            || {
                let c = Connection::open(&path).unwrap();
                install(&c, Duration::ZERO).unwrap();
                c.query_row("SELECT count(*) FROM t", [], |_| Ok(()))
                    .map_err(|e| Error::from_sqlite(&path, e))
            },
        );
        assert!(matches!(r, Err(Error::Interrupted)), "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
