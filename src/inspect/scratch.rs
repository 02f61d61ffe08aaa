//! The scratch database: an in-memory copy of the real schema without rows,
//! on which pending sections are followed statement by statement. Only schema
//! changes are replayed there (bounded), so a huge data migration costs nothing.

use std::cell::Cell;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::hooks::{AuthContext, Authorization};
use rusqlite::Connection;

use super::action::{is_vacuum, Action};
use super::reach::{Object, Reach};
use crate::error::{Error, Result};
use crate::migration::Section;
use crate::script::{PrepareError, Script};

/// The copy, with an authorizer that logs what each statement asks for.
pub(super) struct Scratch {
    pub conn: Connection,
    log: Log,
    /// Everything so far was followed on the copy, so it holds exactly the
    /// schema the real run will see: a statement that does not prepare here
    /// will not prepare there either (issue "No surprises": refused before
    /// the first write). False once the copy may differ (an object it could
    /// not recreate, a replay that failed or was stopped, an ATTACH).
    exact: Cell<bool>,
    /// Preflight: refuse what does not prepare while the copy is exact. The
    /// schema check of `baseline`/`adopt` notes it instead (see `walk_noting`).
    refusing: bool,
    extensions: Vec<PathBuf>,
    /// Schema changes replayed since the copy was last pruned.
    grown: Cell<usize>,
}

type Log = Arc<Mutex<Vec<Action>>>;

impl Scratch {
    /// A copy of `real`'s schema (an empty one for a new database); the flag
    /// is false when some object could not be recreated there.
    /// `extensions` are loaded first: the copy must know their functions and
    /// modules (a `vec0` virtual table, a CHECK calling `vec_length`) to be
    /// seeded and to follow the migrations (issue 11). With `reach`, only what
    /// the plan can reach is copied.
    pub fn new(
        real: Option<&Connection>,
        extensions: &[PathBuf],
        reach: Option<&Reach>,
    ) -> Result<(Scratch, bool)> {
        let log = Log::default();
        let conn = open(extensions, &log)?;
        let complete = match real {
            Some(real) => main_objects(real)
                .map(|objects| {
                    let keep = reach.map(|r| r.reachable(&objects, 0));
                    if keep.as_ref().is_some_and(|k| k.contains(&false)) {
                        reach.inspect(|r| r.remade());
                    }
                    create(&conn, objects, keep)
                })
                .unwrap_or(false),
            None => true,
        };
        let scratch = Scratch {
            conn,
            log,
            exact: Cell::new(complete),
            refusing: false,
            extensions: extensions.to_vec(),
            grown: Cell::new(0),
        };
        Ok((scratch, complete))
    }

    /// Before step `from`: once the copy has grown enough to be worth a look,
    /// and when at least half of it is out of reach of steps `from..`, makes
    /// the copy again with only what they can reach (see `reach`). It stays
    /// exact for everything those steps can name. Temporary objects (rare in
    /// migrations) keep the copy whole: their SQL does not say TEMP.
    pub fn prune(&mut self, reach: &Reach, from: usize) {
        if !reach.due(self.grown.get()) {
            return;
        }
        self.grown.set(0);
        let Ok(objects) = main_objects(&self.conn) else {
            return;
        };
        let has_temp = self
            .conn
            .query_row("SELECT count(*) FROM temp.sqlite_schema", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_or(true, |n| n > 0);
        let keep = reach.reachable(&objects, from);
        let kept = keep.iter().filter(|&&k| k).count();
        if has_temp || 2 * kept > objects.len() {
            // Remaking the copy would cost more than it saves.
            return;
        }
        let Ok(fresh) = open(&self.extensions, &self.log) else {
            return;
        };
        if create(&fresh, objects, Some(keep)) {
            self.conn = fresh;
            reach.remade();
        }
    }

    /// The preflight's copy: a statement that does not prepare while the copy
    /// is exact is refused (`Error::Preflight`) instead of noted.
    pub fn refusing(mut self) -> Scratch {
        self.refusing = true;
        self
    }

    /// Something ran that the copy cannot follow (an executable migration):
    /// from now on it may differ from the real schema.
    pub fn diverged(&self) {
        self.exact.set(false);
    }

    /// Runs each section the way the real run will: the bundled SQLite enables
    /// foreign keys by default, and with them on, a DELETE of a parent would
    /// show its children's cascade as deleted rows.
    pub fn foreign_keys(&self, on: bool) {
        // The copy is never inside a transaction here.
        let _ = crate::db::set_foreign_keys(&self.conn, on);
    }

    /// Runs `section` statement by statement on the scratch database, calling `each`
    /// with what the authorizer saw, the hostile keyword if any, the line and
    /// the statement.
    /// Returns false if a statement could not be followed. One that cannot be
    /// prepared is refused while the copy is exact (`Error::Preflight`), and
    /// otherwise ends the walk (its end is unknown); one that only fails when
    /// run on the copy (it has no rows, so `NOT NULL`, `max()` and the like can
    /// differ) does not, so a hostile statement after it is still refused
    /// before anything runs.
    pub fn walk(
        &self,
        section: &Section,
        each: impl FnMut(&[Action], Option<String>, usize, &str) -> Result<()>,
    ) -> Result<bool> {
        self.walk_noting(section, each)
            .map(|stops| stops.is_empty())
    }

    /// `walk`, returning where and why the copy could not follow the section:
    /// the statements that failed when replayed, and the one that could not be
    /// prepared (which ends the walk). Empty when every statement was followed.
    pub fn walk_noting(
        &self,
        section: &Section,
        mut each: impl FnMut(&[Action], Option<String>, usize, &str) -> Result<()>,
    ) -> Result<Vec<Stop>> {
        let scratch = &self.conn;
        let log = &self.log;
        let mut script = Script::new(section);
        let mut stops = Vec::new();
        loop {
            clear(log);
            let mut st = match script.next(scratch) {
                Ok(Some(st)) => st,
                Ok(None) => return Ok(stops),
                Err(e) if self.refusing && self.exact.get() => return Err(refusal(section, e)),
                Err(e) => {
                    self.exact.set(false);
                    stops.push(Stop {
                        line: e.line,
                        message: crate::apply::message(&e.error),
                    });
                    return Ok(stops);
                }
            };
            let actions = take(log);
            let mut hostile = actions.iter().find_map(Action::hostile);
            // VACUUM asks the authorizer nothing; statements that ask nothing are
            // rare, so only they pay for a look at the bytecode.
            if hostile.is_none() && actions.is_empty() && is_vacuum(scratch, st.sql) {
                hostile = Some("VACUUM".to_owned());
            }
            each(&actions, hostile.clone(), st.line, st.sql)?;
            // Only statements that change the schema are replayed on the copy: rows
            // do not matter here, a huge data migration must not fill memory, and a
            // slow query must not run twice out of Ctrl-C's reach (issue 4).
            // Statements that act on the transaction or on files are never replayed
            // (ATTACH would touch a real file). A statement that fails only on the
            // empty copy does not stop the scan of the statements after it.
            let schema_change = actions.iter().any(Action::changes_schema);
            if hostile.is_none() && schema_change {
                match replay(scratch, &mut st) {
                    Ok(()) => self.grown.set(self.grown.get() + 1),
                    Err(message) => stops.push(Stop {
                        line: st.line,
                        message,
                    }),
                }
            }
            // What an unreplayed ATTACH brings in is unknown to the copy.
            if !stops.is_empty() || actions.iter().any(|a| matches!(a, Action::Attach)) {
                self.exact.set(false);
            }
        }
    }
}

/// A statement SQLite cannot prepare against the schema the earlier
/// migrations produce. A sqlite3-shell dot-command (`.timeout 30000`) is
/// named as such: SQLite only says `near ".": syntax error`.
fn refusal(section: &Section, e: PrepareError) -> Error {
    let rest = &section.text[e.offset.min(section.text.len())..];
    let dot_command = rest
        .strip_prefix('.')
        .filter(|r| r.starts_with(|c: char| c.is_ascii_alphabetic()))
        .map(|r| {
            let word: String = r
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            format!(".{word}")
        });
    Error::Preflight {
        path: section.path.clone(),
        line: e.line,
        message: crate::apply::message(&e.error),
        dot_command,
    }
}

/// A statement the copy could not follow: its line in the file and SQLite's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stop {
    pub line: usize,
    pub message: String,
}

fn clear(log: &Arc<Mutex<Vec<Action>>>) {
    if let Ok(mut l) = log.lock() {
        l.clear();
    }
}

fn take(log: &Arc<Mutex<Vec<Action>>>) -> Vec<Action> {
    log.lock()
        .map(|mut l| std::mem::take(&mut *l))
        .unwrap_or_default()
}

/// VM steps after which a replayed statement is stopped. Schema changes on a
/// copy without rows take a few thousand; more means the statement computes
/// (say, an INSERT fed by a recursive CTE), which only the real run should do.
const REPLAY_STEPS: u64 = 5_000_000;

/// Runs `sql` on the copy within `REPLAY_STEPS`; SQLite's message if it
/// failed or was stopped (the section then counts as not followed).
fn replay(
    scratch: &Connection,
    st: &mut crate::script::Statement<'_, '_>,
) -> std::result::Result<(), String> {
    let steps = AtomicU64::new(0);
    scratch.progress_handler(
        1_000,
        Some(move || steps.fetch_add(1_000, Ordering::Relaxed) >= REPLAY_STEPS),
    );
    let ran = st.run().map_err(|e| crate::apply::message(&e));
    scratch.progress_handler(0, None::<fn() -> bool>);
    ran
}

/// An empty in-memory database with `extensions` loaded and the authorizer
/// logging into `log`.
fn open(extensions: &[PathBuf], log: &Log) -> Result<Connection> {
    let conn = Connection::open_in_memory().map_err(|e| Error::from_sqlite(":memory:", e))?;
    crate::db::extensions::load(&conn, extensions)?;
    let sink = log.clone();
    conn.authorizer(Some(move |ctx: AuthContext<'_>| {
        if let Ok(mut l) = sink.lock() {
            l.push(Action::from(&ctx).unwrap_or(Action::Other));
        }
        Authorization::Allow
    }));
    Ok(conn)
}

/// The objects of `conn`'s main schema that can be made again from their
/// SQL, in the order they were made.
fn main_objects(conn: &Connection) -> rusqlite::Result<Vec<Object>> {
    let mut stmt = conn.prepare_cached(
        "SELECT type, name, tbl_name, sql FROM main.sqlite_schema WHERE sql IS NOT NULL
           AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid",
    )?;
    let rows = stmt.query_map([], Object::read)?;
    rows.collect()
}

/// Makes `objects` (those `keep` says, when given) in `scratch`, rows left
/// out. False if some object could not be made there.
fn create(scratch: &Connection, mut objects: Vec<Object>, keep: Option<Vec<bool>>) -> bool {
    if let Some(keep) = keep {
        let mut keep = keep.into_iter();
        objects.retain(|_| keep.next().unwrap_or(true));
    }
    let mut ok = true;
    for sql in objects.into_iter().filter_map(|o| o.sql) {
        if let Err(e) = scratch.execute_batch(&sql) {
            // Shadow tables of virtual tables are created by the table itself.
            if !e.to_string().contains("already exists") {
                ok = false;
            }
        }
    }
    ok
}
