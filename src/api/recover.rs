//! After a failed run, the decision the command line asks the user for (SPEC
//! `up` step 5), made by the application's [`Policy`]: put the pre-run backup
//! back, or keep the database as it is.
//!
//! The one place the library restores on its own, through the same
//! `restore::undo_run` as the failure prompt: the backup's hash and
//! quick_check, a check that no other program wrote since the decision, the
//! `before-restore` safety copy and the copy-in under the database's lock.

use super::{Outcome, Policy};
use crate::apply::RunFailure;
use crate::observe::{Interrupt, Observer};
use crate::settings::Settings;

/// What became of the database after `failure`.
pub(super) fn after_failure(
    settings: &Settings,
    failure: &RunFailure,
    policy: Policy,
    obs: &mut dyn Observer,
) -> Outcome {
    let Some(backup) = &failure.backup else {
        return Outcome::Kept;
    };
    // The first migration failed and rolled back: the database is as the
    // backup has it, and a restore could only lose what others wrote since.
    if failure.applied_nothing() {
        return Outcome::Kept;
    }
    match policy {
        Policy::Keep | Policy::Refuse => Outcome::Kept,
        // SPEC "Safety properties": nothing without --force discards another
        // program's writes; a library has no --force, so it keeps them.
        Policy::Restore if failure.others_wrote_now() => Outcome::KeptOverOtherWrites,
        Policy::Restore => {
            let seen = failure.watch.as_ref().and_then(|w| w.version());
            let interrupt = Interrupt::new();
            match crate::restore::undo_run(
                settings,
                failure,
                &backup.path,
                false,
                seen,
                obs,
                &interrupt,
            ) {
                Ok(report) => Outcome::Restored {
                    safety_backup: report.safety.map(|s| s.path),
                },
                Err(crate::error::Error::WrittenMeanwhile { .. }) => Outcome::KeptOverOtherWrites,
                Err(e) => Outcome::RestoreFailed {
                    error: Box::new(e.into()),
                },
            }
        }
    }
}
