//! A wait for another program's lock, said while it happens (issue "No
//! surprises": the screen was blank for the 5 s of a busy wait). The events
//! come from inside SQLite's busy handler, so they are drawn by a callback.

use std::sync::Arc;

use indicatif::MultiProgress;

use super::Ui;
use crate::observe::{Event, Notify};

/// Issue 10: a wait for another program's lock says so, on a terminal and in
/// plain output alike.
pub(super) fn line(path: &std::path::Path) -> String {
    format!(
        "waiting for a lock on {}, held by another connection… (Ctrl-C to stop)",
        path.display()
    )
}

/// Renders events that come from inside SQLite's busy handler: above the bars
/// when there are some, else a plain line on stderr. Also used before any
/// `Progress` exists (the CLI's outer scope, for read commands).
pub fn notify(ui: &Ui, multi: Option<MultiProgress>) -> Notify {
    let quiet = ui.quiet;
    Arc::new(move |event: &Event<'_>| {
        if quiet {
            return;
        }
        if let Event::LockWait { path } = event {
            match &multi {
                Some(m) => {
                    let _ = m.println(line(path));
                }
                None => eprintln!("{}", line(path)),
            }
        }
    })
}
