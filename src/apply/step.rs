//! One step of a run, dispatched on the migration's kind (issue 12): SQL on
//! backstop's own connection (`runner`), a Python module through backstop's
//! runner (`python`), a script as a child process (`scripts`). It also keeps
//! track of who wrote to the database meanwhile (`Writers`).

use std::time::Duration;

use rusqlite::Connection;

use super::execute::data_version;
use super::launch::Launch;
use super::runner::{Failed, RunRecord, Runner, Step};
use super::{python, scripts};
use crate::history::{self, Change};
use crate::migration::{Kind, Migration, Section};
use crate::observe::{Interrupt, Observer, OutputLine};

/// Who holds the write lock as the run's first step starts.
pub(super) enum First {
    /// Not the first step: nobody.
    No,
    /// backstop's connection, in the `BEGIN IMMEDIATE` taken before the backup.
    RustLock,
    /// The Python runner of the first step (a module), waiting for `go`.
    Held(python::Held),
}

/// How one step went, and what it printed.
pub(super) type Stepped = (Result<(Duration, u64), Failed>, Vec<OutputLine>);

pub(super) struct Stepper<'a> {
    launch: &'a Launch,
    interrupt: &'a Interrupt,
    writers: Writers,
}

impl<'a> Stepper<'a> {
    /// `data_version`: backstop's connection's, read under the lock at the backup.
    pub fn new(launch: &'a Launch, interrupt: &'a Interrupt, data_version: i64) -> Stepper<'a> {
        Stepper {
            launch,
            interrupt,
            writers: Writers::new(Some(data_version)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &mut self,
        runner: &mut Runner<'_>,
        m: &Migration,
        section: &Section,
        first: First,
        run: &mut RunRecord<'_>,
        obs: &mut dyn Observer,
        step: Step,
    ) -> Stepped {
        match m.kind {
            Kind::Sql => {
                let lock_txn = matches!(first, First::RustLock);
                (
                    runner.apply(m, section, lock_txn, run, obs, step),
                    Vec::new(),
                )
            }
            Kind::Module => self.module(runner.conn(), m, section, first, run, obs, step),
            Kind::Script => self.script(runner, m, first, run, obs, step),
        }
    }

    /// backstop's connection's data version when the run's own writes (its
    /// modules' commits included) were last accounted for: what a later
    /// check for other programs' writes compares with.
    pub fn baseline(&self) -> Option<i64> {
        self.writers.baseline
    }

    /// Whether another program may have written since the backup, and
    /// whether that is only because a script ran (see `Writers`).
    pub fn others_wrote(&self, conn: &Connection) -> (bool, bool) {
        self.writers.at_failure(version(conn))
    }

    #[allow(clippy::too_many_arguments)]
    fn module(
        &mut self,
        conn: &Connection,
        m: &Migration,
        section: &Section,
        first: First,
        run: &mut RunRecord<'_>,
        obs: &mut dyn Observer,
        step: Step,
    ) -> Stepped {
        let held = match first {
            // Locked before the backup: its window starts at the baseline.
            First::Held(held) => held,
            _ => {
                self.writers.before_child(version(conn));
                match python::lock(self.launch, m, section, step, obs, self.interrupt) {
                    Ok(held) => held,
                    Err((failed, output)) => {
                        self.writers.after_child(version(conn), Kind::Module, false);
                        return (Err(failed), output);
                    }
                }
            }
        };
        let change = match step {
            Step::Up => Change::Record(m),
            Step::Down => Change::Unrecord(&m.version),
        };
        let go = python::Go {
            statements: history::statements_elsewhere(change, run.id, &run.start()),
            backup: run.backup,
        };
        let (result, output) = python::finish(held, go, conn, m, step, obs, self.interrupt);
        self.writers
            .after_child(version(conn), Kind::Module, result.is_ok());
        let result = result.map(|done| {
            if run.id.is_none() {
                run.id = done.run_id;
            }
            (done.duration, done.rows)
        });
        (result, output)
    }

    fn script(
        &mut self,
        runner: &mut Runner<'_>,
        m: &Migration,
        first: First,
        run: &mut RunRecord<'_>,
        obs: &mut dyn Observer,
        step: Step,
    ) -> Stepped {
        let conn = runner.conn();
        if matches!(first, First::RustLock) {
            // The lock covered the backup; a script opens the database itself
            // and needs it (see `Writers` for what that costs).
            if let Err(e) = conn.execute_batch("COMMIT") {
                return (Err(Runner::failed_sql(e)), Vec::new());
            }
        }
        self.writers.before_child(version(conn));
        let (result, output) = scripts::run(self.launch, m, obs, self.interrupt);
        self.writers
            .after_child(version(conn), Kind::Script, result.is_ok());
        // Recorded in a transaction of its own: not atomic with the script.
        let result = result.and_then(|duration| {
            runner
                .record_outside(m, duration, run, step)
                .map(|()| (duration, 0))
        });
        (result, output)
    }
}

fn version(conn: &Connection) -> Option<i64> {
    data_version(conn).ok()
}

/// Who wrote since the backup, as far as backstop can tell (SPEC `up` step
/// 5: "If other programs wrote since the backup, say so first"). backstop's
/// connection's `PRAGMA data_version` changes whenever another connection
/// commits: another program, or a child of this run.
///
/// - While a module runs, the change is the module's: it holds the write lock
///   for its whole transaction (only the instants between its process taking
///   or dropping the lock and backstop reading the counter are not covered).
/// - While a script runs, a change cannot be attributed: the script opens the
///   database itself, and so may any other program meanwhile. backstop says
///   so, and does not make restore the default.
/// - Any other change is another program's.
///
/// An unreadable counter (`None`) counts as changed.
#[derive(Debug)]
pub(super) struct Writers {
    baseline: Option<i64>,
    others: bool,
    during_script: bool,
}

impl Writers {
    pub fn new(baseline: Option<i64>) -> Writers {
        Writers {
            baseline,
            others: baseline.is_none(),
            during_script: false,
        }
    }

    fn changed(&self, now: Option<i64>) -> bool {
        now.is_none() || now != self.baseline
    }

    pub fn before_child(&mut self, now: Option<i64>) {
        self.others |= self.changed(now);
        self.baseline = now;
    }

    pub fn after_child(&mut self, now: Option<i64>, kind: Kind, committed: bool) {
        if self.changed(now) {
            match kind {
                Kind::Script => self.during_script = true,
                Kind::Module if committed => {}
                _ => self.others = true,
            }
        }
        self.baseline = now;
    }

    /// (others may have written, and that only because a script ran).
    pub fn at_failure(&self, now: Option<i64>) -> (bool, bool) {
        let others = self.others || self.changed(now);
        (others || self.during_script, self.during_script && !others)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_attributed_to_the_module_that_committed_them() {
        let mut w = Writers::new(Some(1));
        w.before_child(Some(1));
        w.after_child(Some(2), Kind::Module, true);
        assert_eq!(w.at_failure(Some(2)), (false, false));
        // Another program between two steps.
        assert_eq!(w.at_failure(Some(3)), (true, false));
    }

    #[test]
    fn a_failed_module_wrote_nothing_so_changes_are_others() {
        let mut w = Writers::new(Some(1));
        w.before_child(Some(1));
        w.after_child(Some(2), Kind::Module, false);
        assert_eq!(w.at_failure(Some(2)), (true, false));
    }

    #[test]
    fn changes_while_a_script_ran_cannot_be_attributed() {
        let mut w = Writers::new(Some(1));
        w.before_child(Some(1));
        w.after_child(Some(2), Kind::Script, true);
        assert_eq!(w.at_failure(Some(2)), (true, true));
        // A script that changed nothing says nothing.
        let mut w = Writers::new(Some(1));
        w.before_child(Some(1));
        w.after_child(Some(1), Kind::Script, false);
        assert_eq!(w.at_failure(Some(1)), (false, false));
        // Others before the script: known, whatever the script did.
        let mut w = Writers::new(Some(1));
        w.before_child(Some(5));
        w.after_child(Some(6), Kind::Script, true);
        assert_eq!(w.at_failure(Some(6)), (true, false));
    }

    #[test]
    fn an_unreadable_counter_counts_as_changed() {
        let w = Writers::new(Some(1));
        assert_eq!(w.at_failure(None), (true, false));
    }
}
