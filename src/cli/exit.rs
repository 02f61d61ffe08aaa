//! The one place that turns library errors into exit codes and "what to do next".

use crate::error::Error;

/// SPEC "Exit codes".
pub mod code {
    pub const OK: i32 = 0;
    pub const FAILED: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const REFUSED: i32 = 3;
    pub const UNAVAILABLE: i32 = 4;
    pub const BACKUP: i32 = 5;
    pub const INTERRUPTED: i32 = 130;
}

/// Exhaustive on purpose: a new variant must decide its exit code here.
pub fn code_of(e: &Error) -> i32 {
    match e {
        Error::Config { .. } | Error::Setting { .. } | Error::MigrationsDir { .. } => code::USAGE,
        Error::Source(_)
        | Error::Blocked(_)
        | Error::Hostile { .. }
        | Error::Declined { .. }
        | Error::NeedsConfirmation { .. }
        | Error::NoDown { .. }
        | Error::UnknownVersion { .. }
        | Error::NotApplied { .. }
        | Error::Findings { .. } => code::REFUSED,
        Error::Migration(f) if f.interrupted() => code::INTERRUPTED,
        Error::Migration(f) if f.locked() => code::UNAVAILABLE,
        Error::Migration(_) => code::FAILED,
        Error::Locked { .. }
        | Error::NotADatabase { .. }
        | Error::NoDatabase { .. }
        | Error::NoFolder { .. }
        | Error::ReadOnly { .. }
        | Error::Raced { .. }
        | Error::Database { .. } => code::UNAVAILABLE,
        Error::Backup { .. } | Error::Restore { .. } => code::BACKUP,
        Error::Interrupted => code::INTERRUPTED,
        Error::Io { .. } => code::FAILED,
    }
}

/// The next step for the user, naming commands and flags.
pub fn hint(e: &Error) -> Option<String> {
    Some(match e {
        Error::Config { .. } => "fix the file, or pass --config with another one".into(),
        Error::Setting { setting, .. } => format!("correct {setting}"),
        Error::MigrationsDir { .. } => {
            "create the folder (backstop new NAME does), or point --migrations / BACKSTOP_MIGRATIONS at it".into()
        }
        Error::Source(_) => "rename or fix the file(s): every .sql file in the migrations folder must be \
             <version>_<name>.sql (or .up.sql/.down.sql) with valid markers; nothing was changed"
            .into(),
        Error::Blocked(_) => "nothing was changed. Restore the edited or missing file from version control, \
             put new changes in a new migration (backstop new NAME), run `backstop repair VERSION` to \
             accept an intentional edit, or pass --allow-out-of-order to apply older pending migrations"
            .into(),
        Error::Hostile { .. } => "nothing was changed. Mark the section `-- migrate:up transaction:false` \
             (goose: `-- +goose NO TRANSACTION`) to run it outside a transaction; it is then protected by the backup only"
            .into(),
        Error::Declined { .. } => return None,
        Error::NeedsConfirmation { flag, .. } => format!("pass {flag} to go ahead without a prompt"),
        Error::NoDown { .. } => "add a `-- migrate:down` section to the file, or restore a backup instead (backstop restore)".into(),
        Error::UnknownVersion { .. } => "see `backstop status` for the versions".into(),
        Error::NotApplied { .. } => "see `backstop status` for what is applied".into(),
        Error::Findings { .. } => "see the findings above, each with what to do".into(),
        Error::Migration(f) if f.interrupted() => "the interrupted migration was rolled back; run `backstop up` again when ready".into(),
        Error::Migration(f) if f.locked() => "another program holds a lock on the database (your app, a sqlite3 shell, a DB \
             browser, another backstop); close it, then run `backstop up` again. Wait longer with --busy-timeout-ms"
            .into(),
        Error::Migration(_) => "fix the migration and run `backstop up` again".into(),
        Error::Locked { .. } => "another program holds a lock on the database (your app, a sqlite3 shell, a DB \
             browser, another backstop); close it or retry. Wait longer with --busy-timeout-ms"
            .into(),
        Error::NotADatabase { .. } => "check --database / BACKSTOP_DATABASE / DATABASE_URL; backstop did not modify the file. \
             If it is your damaged database, `backstop restore` can put a backup in its place"
            .into(),
        Error::NoDatabase { .. } => "check --database, or create it with `backstop up`".into(),
        Error::NoFolder { .. } => "create the folder first, or check --database".into(),
        Error::ReadOnly { .. } => "make the database file and its folder writable, then retry".into(),
        Error::Database { .. } => "nothing was changed; check the database file. If it is damaged, \
             `backstop restore` can put a backup in its place (the damaged file is kept)"
            .into(),
        Error::Raced { .. } => "another backstop run applied migrations at the same time; run `backstop status`, then retry".into(),
        Error::Backup { .. } => "nothing was changed. Free some space or fix the backups folder (--backups), \
             then retry; --no-backup skips the backup (not recommended)"
            .into(),
        Error::Restore { .. } => "the database was not changed; pick another backup (`backstop backups`)".into(),
        Error::Interrupted => return None,
        Error::Io { .. } => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::Problem;
    use crate::migration::Version;
    use std::path::PathBuf;

    fn p() -> PathBuf {
        PathBuf::from("x.db")
    }

    #[test]
    fn one_row_per_spec_exit_code() {
        let cases: Vec<(Error, i32)> = vec![
            (
                Error::Config {
                    path: p(),
                    problem: "bad".into(),
                },
                2,
            ),
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
                Error::NeedsConfirmation {
                    what: "x".into(),
                    flag: "--yes",
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
                Error::NoDown {
                    version: Version(1),
                    path: p(),
                },
                3,
            ),
            (Error::Locked { path: p() }, 4),
            (Error::Raced { path: p() }, 4),
            (Error::NotADatabase { path: p() }, 4),
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
            (Error::Interrupted, 130),
        ];
        for (e, want) in cases {
            assert_eq!(code_of(&e), want, "{e:?}");
        }
    }
}
