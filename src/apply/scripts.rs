//! Script mode (issue 12; SPEC "Migration files"): any `.py` file without a
//! top-level `def up(`, and any file with the executable bit, runs as a child
//! process that opens the database itself (`launch` gives it the path), after
//! backstop released its own lock. Exit 0 is success; the caller then records
//! it in a transaction of its own. That is NOT atomic with the script's
//! writes: killed between the two (kill -9, power loss), the script's changes
//! stay and the migration shows as pending; the backup taken before the run
//! is the net (README "Executable migrations").

use std::time::Duration;

use super::exec::{describe, Child};
use super::launch::Launch;
use super::runner::Failed;
use super::Cause;
use crate::migration::Migration;
use crate::observe::{Interrupt, Observer, OutputLine};

/// Lines of stderr quoted in the failure report.
const TAIL: usize = 10;

/// Runs `m` to its end: how long it took, or why it failed.
pub(super) fn run(
    launch: &Launch,
    m: &Migration,
    obs: &mut dyn Observer,
    interrupt: &Interrupt,
) -> (Result<Duration, Failed>, Vec<OutputLine>) {
    let failed = |message: String, code, stderr| Failed {
        line: 1,
        cause: Cause::Exited {
            message,
            code,
            stderr,
        },
    };
    if interrupt.is_set() {
        let stop = Failed {
            line: 1,
            cause: Cause::Interrupted,
        };
        return (Err(stop), Vec::new());
    }
    let mut child = match Child::spawn(launch.script(m), false, false) {
        Ok(c) => c,
        Err(e) => {
            return (
                Err(failed(
                    format!("could not be started: {e}"),
                    None,
                    Vec::new(),
                )),
                Vec::new(),
            )
        }
    };
    let status = child.wait(m, obs, interrupt);
    let result = if status.success() {
        // Even after Ctrl-C: it finished, and its writes are in.
        Ok(child.elapsed())
    } else if child.interrupted() {
        Err(Failed {
            line: 1,
            cause: Cause::Interrupted,
        })
    } else {
        Err(failed(
            describe(status),
            status.code(),
            child.stderr_tail(TAIL),
        ))
    };
    (result, child.take_output())
}
