//! The one place that turns library errors into exit codes (the words of
//! "what to do next" are `hint`'s).

use crate::error::{Error, ErrorKind};

/// How a command ended, when that is not simply its error.
#[derive(Debug)]
pub enum Exit {
    /// Done as asked.
    Ok,
    /// `status --exit-code`, `verify --json`: something needs attention.
    Attention,
    /// `up --dry-run`: the rehearsal shows a migration would fail.
    RehearsalFailed,
    /// A failure already reported on stderr, with what was done about it.
    Reported(Error),
    /// Ctrl-C (or Esc) at a prompt.
    Interrupted,
}

pub fn code(exit: &Exit) -> i32 {
    match exit {
        Exit::Ok => 0,
        Exit::Attention => ErrorKind::Refused.exit_code(),
        Exit::RehearsalFailed => ErrorKind::Failed.exit_code(),
        Exit::Reported(e) => code_of(e),
        Exit::Interrupted => ErrorKind::Interrupted.exit_code(),
    }
}

/// clap's own exits: 0 for `--help`/`--version`, 2 for usage errors.
pub fn of_clap(e: &clap::Error) -> i32 {
    if e.use_stderr() {
        ErrorKind::Usage.exit_code()
    } else {
        0
    }
}

/// The kind of each variant is decided in the library, once (`Error::kind`,
/// exhaustive), so the library's public error and the exit code agree.
pub fn code_of(e: &Error) -> i32 {
    e.kind().exit_code()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::{Cause, RunFailure};
    use crate::backup::Problem;
    use crate::migration::Version;
    use std::io;
    use std::path::PathBuf;

    fn p() -> PathBuf {
        PathBuf::from("x.db")
    }

    fn v() -> Version {
        Version::number(1, "1")
    }

    fn io() -> io::Error {
        io::Error::other("x")
    }

    fn sqlite() -> rusqlite::Error {
        rusqlite::Error::InvalidQuery
    }

    fn failed(cause: Cause) -> Error {
        Error::Migration(Box::new(RunFailure {
            database: p(),
            version: v(),
            name: "a".into(),
            path: p(),
            line: 1,
            cause,
            applied: vec![],
            backup: None,
            others_wrote: false,
            rolled_back: true,
            kind: crate::migration::Kind::Sql,
            script_wrote: false,
            output: vec![],
            revertible: false,
            watch: None,
        }))
    }

    /// Every variant, with the SPEC exit code it must map to.
    #[test]
    fn every_error_has_its_spec_exit_code() {
        let cases: Vec<(Error, i32)> = vec![
            (
                Error::Config {
                    path: p(),
                    problem: "bad".into(),
                },
                2,
            ),
            (
                Error::Setting {
                    setting: "x",
                    value: "y".into(),
                    expected: "z",
                },
                2,
            ),
            (
                Error::MigrationsDir {
                    path: p(),
                    source: io(),
                },
                2,
            ),
            (
                Error::NewMigration {
                    path: p(),
                    source: io(),
                },
                2,
            ),
            (
                Error::Extension {
                    path: p(),
                    message: "x".into(),
                },
                2,
            ),
            (Error::Output { source: io() }, 2),
            (Error::Source(vec![]), 3),
            (Error::UndefinedPlaceholders(vec![]), 3),
            (Error::Blocked(vec![]), 3),
            (
                Error::Hostile {
                    path: p(),
                    line: 1,
                    keyword: "BEGIN".into(),
                },
                3,
            ),
            (
                Error::SchemaMismatch(Box::new(crate::inspect::Mismatch {
                    database: p(),
                    upto: "1".into(),
                    missing: vec![],
                    unexpected: vec![],
                    changed: vec![],
                    unfollowed: vec![],
                })),
                3,
            ),
            (
                Error::Adopt(Box::new(crate::adopt::Refusal {
                    database: p(),
                    problem: crate::adopt::Problem::NoTable,
                })),
                3,
            ),
            (Error::Declined { what: "x".into() }, 3),
            (
                Error::Drift {
                    path: p(),
                    drift: crate::db::Drift::default(),
                },
                3,
            ),
            (
                Error::Pending {
                    path: p(),
                    pending: vec![v()],
                },
                3,
            ),
            (
                Error::Preflight {
                    path: p(),
                    line: 1,
                    message: "x".into(),
                    dot_command: None,
                },
                3,
            ),
            (
                Error::NeedsConfirmation {
                    what: "x".into(),
                    flag: "--yes",
                },
                3,
            ),
            (
                Error::NoDown {
                    version: v(),
                    path: p(),
                },
                3,
            ),
            (
                Error::UnknownVersion {
                    version: "1".into(),
                    folder: p(),
                },
                3,
            ),
            (
                Error::AmbiguousVersion {
                    version: "1".into(),
                    candidates: vec![],
                },
                3,
            ),
            (
                Error::NotApplied {
                    version: v(),
                    path: p(),
                },
                3,
            ),
            (
                Error::Findings {
                    count: 1,
                    path: p(),
                },
                3,
            ),
            (
                failed(Cause::Sql {
                    message: "x".into(),
                }),
                1,
            ),
            (failed(Cause::Interrupted), 130),
            (
                failed(Cause::Module {
                    message: "x".into(),
                    traceback: vec![],
                }),
                1,
            ),
            (
                failed(Cause::Exited {
                    message: "x".into(),
                    code: Some(2),
                    stderr: vec![],
                }),
                1,
            ),
            (
                Error::Interpreter {
                    python: p(),
                    problem: "x".into(),
                },
                3,
            ),
            (
                Error::Runner {
                    path: p(),
                    problem: "x".into(),
                },
                3,
            ),
            (
                Error::RealChanged {
                    path: p(),
                    running: vec![v()],
                },
                1,
            ),
            (
                failed(Cause::Locked {
                    message: "x".into(),
                }),
                4,
            ),
            (Error::Locked { path: p() }, 4),
            (Error::NotADatabase { path: p() }, 4),
            (Error::NoDatabase { path: p() }, 4),
            (
                Error::NoFolder {
                    path: p(),
                    folder: p(),
                },
                4,
            ),
            (
                Error::ReadOnly {
                    path: p(),
                    source: sqlite(),
                },
                4,
            ),
            (Error::Raced { path: p() }, 4),
            (
                Error::Database {
                    path: p(),
                    source: sqlite(),
                },
                4,
            ),
            (
                Error::Backup {
                    database: p(),
                    problem: Problem::NotFound { path: p() },
                },
                5,
            ),
            (
                Error::Restore {
                    backup: p(),
                    problem: Problem::NotFound { path: p() },
                },
                5,
            ),
            (
                Error::BackupsFolder {
                    path: p(),
                    source: io(),
                },
                5,
            ),
            (
                Error::Scratch {
                    path: p(),
                    source: io(),
                },
                5,
            ),
            (
                Error::WrittenMeanwhile {
                    path: p(),
                    since: crate::backup::Since::Written { commits: Some(1) },
                },
                5,
            ),
            (Error::Interrupted, 130),
        ];
        for (e, want) in cases {
            assert_eq!(code_of(&e), want, "{e:?}");
        }
    }

    #[test]
    fn exits_that_are_not_errors() {
        assert_eq!(code(&Exit::Ok), 0);
        assert_eq!(code(&Exit::Attention), 3);
        assert_eq!(code(&Exit::RehearsalFailed), 1);
        assert_eq!(code(&Exit::Interrupted), 130);
        assert_eq!(code(&Exit::Reported(Error::Locked { path: p() })), 4);
    }
}
