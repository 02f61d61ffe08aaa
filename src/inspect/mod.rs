//! Looks at pending migrations before anything runs, on an in-memory copy of
//! the database's schema (no rows): which statements cannot run inside a
//! transaction, and which steps drop or delete. SQLite's parser and authorizer
//! do the reading, so comments and string literals cannot fool it.

mod action;
mod destructive;
mod reach;
mod replay;
mod scratch;

use std::path::PathBuf;

use rusqlite::Connection;

pub use action::Action;
pub use destructive::Destructive;
pub use replay::{check_schema, Mismatch};

use crate::error::{Error, Result};
use crate::migration::{Migration, Section};
use destructive::{Seen, Tables};
use reach::Reach;
use scratch::Scratch;

/// What the inspection found for the whole plan.
#[derive(Debug, Default)]
pub struct Findings {
    pub destructive: Vec<Destructive>,
    /// False when some statement could not be followed on the schema copy (an
    /// extension, an attached database): checks then fall back to run time.
    /// Read by the tests only (nothing reports it yet).
    #[cfg_attr(not(test), allow(dead_code))]
    pub complete: bool,
}

/// Inspects the sections to run, in order, against the schema of `real` (None: a
/// new database), with `extensions` loaded on the copy. Refuses with
/// `Error::Hostile` for transaction-hostile statements.
pub fn inspect(
    real: Option<&Connection>,
    steps: &[(&Migration, &Section)],
    extensions: &[PathBuf],
) -> Result<Findings> {
    let reach = Reach::of(steps.iter().map(|(_, s)| s.text.as_str()));
    inspect_within(real, steps, extensions, &reach)
}

/// `inspect` on a copy pruned to what the plan can reach (`reach`). That finds
/// what the whole schema would, and may be stricter: broken objects the plan
/// never names (a view on a dropped table) make replays fail on the whole
/// schema, which then stops refusing. So a refusal is only ever made on the
/// whole schema.
fn inspect_within(
    real: Option<&Connection>,
    steps: &[(&Migration, &Section)],
    extensions: &[PathBuf],
    reach: &Reach,
) -> Result<Findings> {
    follow(real, steps, extensions, Some(reach)).or_else(|_| follow(real, steps, extensions, None))
}

fn follow(
    real: Option<&Connection>,
    steps: &[(&Migration, &Section)],
    extensions: &[PathBuf],
    reach: Option<&Reach>,
) -> Result<Findings> {
    let (scratch, mut complete) = Scratch::new(real, extensions, reach)?;
    let mut scratch = scratch.refusing();
    let mut tables = Tables::new(&scratch.conn);
    let mut destructive = Vec::new();
    for (step, &(m, section)) in steps.iter().enumerate() {
        if let Some(reach) = reach {
            scratch.prune(reach, step);
        }
        if m.is_executable() {
            // A module or script (issue 12) is not SQL to follow; what it does
            // to the schema is known only when it runs, so later sections are
            // checked at run time where the copy cannot follow them, and a
            // statement that does not prepare on the copy is not refused.
            complete = false;
            scratch.diverged();
            continue;
        }
        scratch.foreign_keys(section.options.foreign_keys);
        let mut seen = Seen::default();
        let followed = scratch.walk(section, |actions, hostile, line, sql| {
            if let (Some(keyword), true) = (hostile, section.options.transaction) {
                return Err(Error::Hostile {
                    path: section.path.clone(),
                    line,
                    keyword,
                });
            }
            seen.note(actions, sql);
            Ok(())
        })?;
        complete &= followed;
        destructive.extend(tables.after(&scratch.conn, real, &m.version, seen));
    }
    Ok(Findings {
        destructive,
        complete,
    })
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod prune_tests;
