//! What to do next after each error: the `hint:` line, in words that name
//! commands and flags (STYLE "Errors": the library says what happened, the
//! face says what to do about it).

use crate::error::Error;

/// The next step for the user, naming commands and flags.
pub fn hint(e: &Error) -> Option<String> {
    Some(match e {
        Error::Config { .. } => "fix the file, or pass --config with another one".into(),
        Error::Setting { setting, .. } => format!("correct {setting}"),
        Error::MigrationsDir { .. } => {
            "create the folder (backstop new NAME does), or point --migrations / BACKSTOP_MIGRATIONS at it".into()
        }
        Error::Extension { .. } => "check the path in `extensions` (backstop.toml) or --load-extension; \
             SQLite adds the platform's suffix (.so, .dylib, .dll) itself; nothing was changed"
            .into(),
        Error::NewMigration { .. } => "check that the migrations folder is writable (--migrations)".into(),
        Error::Output { .. } => return None,
        Error::Source(_) => "nothing was changed. Rename or fix the file(s): everything in the migrations \
             folder that looks like a migration must be one backstop can run (`.sql`, `.py`, or a file \
             with the executable bit), named the way the folder's layout names them \
             (<version>_<name>, YYYY_MM_DD_<name>, <version>_<name>/up.sql or V<version>__<name>), \
             with valid markers; see `backstop status -v`"
            .into(),
        Error::UndefinedPlaceholders(_) => "nothing was changed. Give each placeholder a value: \
             `[placeholders]` in backstop.toml (NAME = \"value\"), or --placeholder NAME=VALUE"
            .into(),
        Error::Blocked(_) => "nothing was changed. Restore the edited or missing file from version control, \
             put new changes in a new migration (backstop new NAME), run `backstop repair VERSION` to \
             accept an intentional edit, or pass --allow-out-of-order to apply older pending migrations"
            .into(),
        Error::Hostile { .. } => "nothing was changed. Mark the section `-- migrate:up transaction:false` \
             (goose: `-- +goose NO TRANSACTION`) to run it outside a transaction; it is then protected by the backup only"
            .into(),
        Error::Preflight { dot_command: Some(_), .. } => "nothing was changed. backstop runs SQL \
             only: remove the line (backstop sets its own busy timeout, --busy-timeout-ms, and \
             wraps each migration in its own transaction)"
            .into(),
        Error::Preflight { message, .. } if message.contains("no such function") => "nothing was \
             changed. If the function comes from a loadable extension, load it with \
             --load-extension PATH (or `extensions` in backstop.toml); a function an application \
             registers on its own connection does not exist for migrations"
            .into(),
        Error::Preflight { message, .. } if message.contains("already exists") => "nothing was \
             changed. If the database already holds what these migrations create (it was built \
             another way, or by another tool), record them without running them: \
             `backstop baseline VERSION` or `backstop adopt`"
            .into(),
        Error::Preflight { .. } => "nothing was changed: SQLite checked the statement against \
             the schema the earlier migrations produce; fix it and run again"
            .into(),
        Error::Pending { .. } => "nothing was changed. Apply them first (`backstop up`), or let the \
             application apply them at start-up"
            .into(),
        Error::Drift { .. } => "nothing was changed. If the change was intended, put it in a \
             migration, or accept it: `backstop up --yes` (the run log records what was \
             accepted); otherwise undo it by hand"
            .into(),
        Error::SchemaMismatch(_) => "nothing was recorded. Record only what the database really has \
             (`backstop baseline VERSION`) and let `backstop up` run the rest, or pass --force to \
             record these migrations anyway"
            .into(),
        Error::Adopt(r) => adopt_hint(&r.problem),
        Error::Declined { .. } => return None,
        Error::NeedsConfirmation { flag, .. } => format!("pass {flag} to go ahead without a prompt"),
        Error::NoDown { .. } => "add a down section to the file (`-- migrate:down` in SQL, `def down(conn)` in a Python module; \
             a script has none), or restore a backup instead (backstop restore)".into(),
        Error::UnknownVersion { .. } => "see `backstop status` for the versions".into(),
        Error::AmbiguousVersion { .. } => "give the whole version, as `backstop status` lists it".into(),
        Error::NotApplied { .. } => "see `backstop status` for what is applied".into(),
        Error::Findings { .. } => "see the findings above, each with what to do".into(),
        Error::Interpreter { .. } => "nothing was changed. Install Python 3 with its sqlite3 module, or point --python, \
             BACKSTOP_PYTHON or `python` in backstop.toml at one (a project's .venv/bin/python is used when present)"
            .into(),
        Error::Runner { .. } => "nothing was changed; check that Python can open the database, then run `backstop up` again".into(),
        Error::RealChanged { .. } => "a migration opened the real database by a path of its own instead of BACKSTOP_DATABASE / \
             DATABASE_URL (or a program wrote to it without SQLite's locks); make it use those variables. \
             `backstop verify` checks the database; `backstop restore` puts a backup back"
            .into(),
        Error::Migration(f) if f.interrupted() && f.rolled_back => "the interrupted migration was rolled back; run `backstop up` again when ready".into(),
        Error::Migration(f) if f.interrupted() => "what the interrupted migration wrote so far stays (it ran outside a transaction); \
             `backstop restore` puts the pre-run backup back, or run `backstop up` again when ready"
            .into(),
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
        Error::ReadOnly { .. } => "run backstop as the user that owns the database (the app's), or give \
             yourself read and write access to the file and its folder, then retry"
            .into(),
        Error::Database { .. } => "nothing was changed; check the database file. If it is damaged, \
             `backstop restore` can put a backup in its place (the damaged file is kept)"
            .into(),
        Error::Raced { .. } => "another backstop run applied migrations at the same time; run `backstop status`, then retry".into(),
        Error::Backup {
            problem: crate::backup::Problem::FolderOpen { path, .. },
            ..
        }
        | Error::Restore {
            problem: crate::backup::Problem::FolderOpen { path, .. },
            ..
        } => format!(
            "nothing was changed. Make the folder private (`chmod go-w {}`), or point --backups at one only you can write",
            path.display()
        ),
        Error::Backup {
            problem: crate::backup::Problem::PathNotUtf8 { .. },
            ..
        } => "nothing was changed and no backup was written. Rename the folder (or the file) so its \
             path is UTF-8, then retry"
            .into(),
        Error::Backup { .. } => "nothing was changed. Free some space or fix the backups folder (--backups), \
             then retry; --no-backup skips the backup (not recommended)"
            .into(),
        Error::Restore { .. } => "the database was not changed; pick another backup (`backstop backups`)".into(),
        Error::BackupsFolder { .. } => "check the backups folder (--backups / BACKSTOP_BACKUPS)".into(),
        Error::WrittenMeanwhile { .. } => "the database was not changed; run the restore again to see \
             what was written, then decide (its writes would be undone)"
            .into(),
        Error::Scratch { .. } => "nothing was changed; check the temporary folder (TMPDIR) and its free space".into(),
        Error::Interrupted => return None,
    })
}

fn adopt_hint(problem: &crate::adopt::Problem) -> String {
    use crate::adopt::Problem;
    match problem {
        Problem::NoTable => "nothing was changed. If another tool's table has a name of its own, \
             or a script built the database, record what it has with `backstop baseline VERSION`"
            .into(),
        Problem::NotThere(_) => "nothing was changed. Leave out --from to let backstop look for \
             the table, or check --database"
            .into(),
        Problem::Several(_) => "nothing was changed. Pass --from TOOL with the tool that \
             migrated this database last"
            .into(),
        Problem::Failed { .. } => "nothing was changed. Finish or undo the failed migration as \
             described, then run `backstop adopt` again"
            .into(),
        Problem::Edited { .. } => "nothing was changed. Put the files back as they were applied \
             (version control), or pass --accept-edits to record them as they are now (their new \
             text is not run)"
            .into(),
        Problem::NoJournal(_) => "nothing was changed. Point --migrations at drizzle's output \
             folder (the one holding meta/_journal.json)"
            .into(),
    }
}
