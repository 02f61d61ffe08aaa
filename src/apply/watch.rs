//! What SQLite's hooks see while a migration runs: the authorizer refuses
//! transaction control inside a transactional section (so nothing can commit
//! early) and notes the tables it touches; the progress handler notices Ctrl-C
//! inside a long statement and reports elapsed time.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::Connection;

use crate::history;
use crate::inspect::Action;
use crate::observe::{Interrupt, Ticker};

#[derive(Default)]
struct Touched {
    tables: BTreeSet<String>,
    /// Set while a transactional migration runs: transaction control and
    /// ATTACH are refused at prepare time, so nothing can commit early.
    guard: bool,
    hostile: Option<String>,
    /// An ALTER TABLE ran (renames change other tables' foreign keys).
    altered: bool,
}

/// The state the hooks share with the runner.
pub(super) struct Watch {
    touched: Arc<Mutex<Touched>>,
    statement_started: Arc<AtomicU64>,
    clock: Instant,
}

impl Watch {
    /// Installs the authorizer and the progress handler on `conn`; the
    /// runner removes them when it is dropped.
    pub fn install(conn: &Connection, interrupt: &Interrupt, ticker: Option<Ticker>) -> Watch {
        let touched: Arc<Mutex<Touched>> = Arc::default();
        let sink = touched.clone();
        conn.authorizer(Some(move |ctx: AuthContext<'_>| {
            let Ok(mut t) = sink.lock() else {
                return Authorization::Allow;
            };
            if t.guard {
                if let Some(k) = Action::from(&ctx).and_then(|a| a.hostile()) {
                    t.hostile = Some(k);
                    return Authorization::Deny;
                }
            }
            let table = match ctx.action {
                AuthAction::Insert { table_name }
                | AuthAction::Delete { table_name }
                | AuthAction::CreateTable { table_name }
                | AuthAction::DropTable { table_name }
                | AuthAction::AlterTable { table_name, .. } => Some(table_name),
                AuthAction::Update { table_name, .. } => Some(table_name),
                _ => None,
            };
            if matches!(ctx.action, AuthAction::AlterTable { .. }) {
                t.altered = true;
            }
            if let Some(name) = table {
                if !history::is_internal(name) {
                    t.tables.insert(name.to_lowercase());
                }
            }
            Authorization::Allow
        }));
        let clock = Instant::now();
        let statement_started = Arc::new(AtomicU64::new(0));
        let started = statement_started.clone();
        let stop = interrupt.flag();
        let last_tick = AtomicU64::new(0);
        // SQLite calls this every few thousand VM steps: the place to notice
        // Ctrl-C inside a long statement and to report elapsed time truthfully.
        conn.progress_handler(
            10_000,
            Some(move || {
                if stop() {
                    return true;
                }
                if let Some(tick) = &ticker {
                    let now = clock.elapsed().as_millis() as u64;
                    if now.saturating_sub(last_tick.load(Ordering::Relaxed)) >= 100 {
                        last_tick.store(now, Ordering::Relaxed);
                        let since = now.saturating_sub(started.load(Ordering::Relaxed));
                        tick(Duration::from_millis(since));
                    }
                }
                false
            }),
        );
        Watch {
            touched,
            statement_started,
            clock,
        }
    }

    /// Starts collecting touched tables for one migration; `guard` refuses
    /// transaction control while it runs.
    pub fn track(&self, guard: bool) {
        if let Ok(mut t) = self.touched.lock() {
            t.guard = guard;
            t.hostile = None;
            t.altered = false;
            t.tables.clear();
        }
    }

    pub fn guard(&self, on: bool) {
        if let Ok(mut t) = self.touched.lock() {
            t.guard = on;
        }
    }

    /// A statement starts now (its elapsed time is what the ticker reports).
    pub fn statement_started(&self) {
        self.statement_started
            .store(self.clock.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// The tables the migration touched, and whether it altered one.
    pub fn touched(&self) -> (BTreeSet<String>, bool) {
        self.touched
            .lock()
            .map(|t| (t.tables.clone(), t.altered))
            .unwrap_or_default()
    }

    /// The keyword the guard refused, if it did.
    pub fn take_hostile(&self) -> Option<String> {
        self.touched.lock().ok().and_then(|mut t| t.hostile.take())
    }
}
