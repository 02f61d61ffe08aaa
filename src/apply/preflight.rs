//! The checks between the plan and the write lock: the whole plan inspected
//! on a copy of the schema (hostile statements refused, destructive steps
//! confirmed), and the race with another run that moved the history meanwhile.

use std::path::Path;

use rusqlite::Connection;

use super::execute::Job;
use crate::db;
use crate::error::{Error, Result};
use crate::history;
use crate::inspect;
use crate::migration::{Migration, Section};
use crate::observe::{Event, Interrupt, Observer};
use crate::source::Layout;

/// Whether the tracking table no longer holds what the plan was made on
/// (another run applied or reverted migrations since).
pub(crate) fn moved_on(
    conn: &Connection,
    layout: Layout,
    planned_on: &[history::AppliedRow],
) -> bool {
    history::applied(conn, layout).map_or(true, |now| now != planned_on)
}

/// Before any lock: what the steps drop or delete, confirmed by the observer
/// (the user, on a terminal). Refused or transaction-hostile steps stop here.
pub(super) fn confirm(
    path: &Path,
    job: &Job<'_>,
    existing: Option<db::Opened>,
    steps: &[(&Migration, &Section)],
    extensions: &[std::path::PathBuf],
    obs: &mut dyn Observer,
    interrupt: &Interrupt,
) -> Result<Vec<inspect::Destructive>> {
    let real = existing.as_ref().map(|o| &o.conn);
    let findings = match inspect::inspect(real, steps, extensions) {
        Ok(f) => f,
        // The schema was read after the plan: another run that applied some
        // of these migrations in between makes them look wrong. Plan again.
        Err(_) if real.is_some_and(|c| moved_on(c, job.layout, job.planned_on)) => {
            return Err(Error::Raced {
                path: path.to_path_buf(),
            })
        }
        Err(e) => return Err(e),
    };
    drop(existing);
    if !findings.destructive.is_empty() {
        obs.event(Event::Destructive {
            items: &findings.destructive,
        });
        // Only a question when something of the user's could be lost.
        let at_stake = findings
            .destructive
            .iter()
            .any(inspect::Destructive::at_stake);
        if at_stake && !obs.confirm_destructive(&findings.destructive) {
            return Err(Error::Declined {
                what: format!(
                    "running migrations that drop or delete data in {}",
                    path.display()
                ),
            });
        }
    }
    if interrupt.is_set() {
        return Err(Error::Interrupted);
    }
    obs.event(Event::PlanReady {
        pending: steps.len(),
    });
    Ok(findings.destructive)
}
