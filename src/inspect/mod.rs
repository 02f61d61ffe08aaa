//! Looks at pending migrations before anything runs, on an in-memory copy of
//! the database's schema (no rows): which statements cannot run inside a
//! transaction, and which steps drop or delete. SQLite's parser and authorizer
//! do the reading, so comments and string literals cannot fool it.

mod action;
mod destructive;
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
    let (scratch, mut complete) = Scratch::new(real, extensions)?;
    let scratch = scratch.refusing();
    let mut tables = Tables::new(&scratch.conn);
    let mut destructive = Vec::new();
    for &(m, section) in steps {
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
