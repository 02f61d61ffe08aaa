//! After a failed run, the decision the command line asks the user for (SPEC
//! `up` step 5), made by the application's [`Policy`]: put the pre-run backup
//! back, or keep the database as it is.
//!
//! The one place the library restores on its own. It goes through the same
//! `restore::preview` (the backup's hash and quick_check) and `restore::run`
//! (a `before-restore` safety copy first, then the backup API) as `backstop
//! restore`; when those change (issue 9), this glue is what follows them.

use super::{Outcome, Policy};
use crate::apply::RunFailure;
use crate::observe::Observer;
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
    match policy {
        Policy::Keep | Policy::Refuse => Outcome::Kept,
        // SPEC "Safety properties": nothing without --force discards another
        // program's writes; a library has no --force, so it keeps them.
        Policy::Restore if failure.others_wrote => Outcome::KeptOverOtherWrites,
        Policy::Restore => {
            let note = failure.to_string();
            match crate::restore::preview(settings, &backup.path)
                .and_then(|p| crate::restore::run(settings, &p, Some(&note), obs))
            {
                Ok(report) => Outcome::Restored {
                    safety_backup: report.safety.map(|s| s.path),
                },
                Err(e) => Outcome::RestoreFailed {
                    error: Box::new(e.into()),
                },
            }
        }
    }
}
