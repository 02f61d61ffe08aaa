//! The public API on real files in temporary folders: what an application
//! sees of a run that succeeds, fails and is restored or kept, is refused,
//! and of writes by another program that a restore would undo.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::*;
use crate::error::ErrorKind;
use crate::plan::State;

struct App {
    dir: tempfile::TempDir,
}

impl App {
    /// A project whose migration 1 creates `user`, 2 adds `audit`, and 3
    /// makes emails unique (which fails when two users share one).
    fn new() -> App {
        let app = App {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir(app.migrations()).unwrap();
        app.write("1_users.sql", "CREATE TABLE user (email TEXT);");
        app
    }

    fn migrations(&self) -> PathBuf {
        self.dir.path().join("migrations")
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("app.db")
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.migrations().join(name), text).unwrap();
    }

    fn options(&self, policy: Policy) -> Options {
        let mut o = Options::new(self.db(), Migrations::Folder(self.migrations()));
        o.policy = policy;
        o
    }

    fn conn(&self) -> Connection {
        Connection::open(self.db()).unwrap()
    }

    /// Migration 1 applied, two users with one email, 2 and 3 pending.
    fn ready_to_fail(&self) {
        migrate(&self.options(Policy::Keep), &mut Silent).unwrap();
        self.conn()
            .execute_batch("INSERT INTO user VALUES ('a@x'), ('a@x');")
            .unwrap();
        self.write("2_audit.sql", "CREATE TABLE audit (at TEXT);");
        self.write(
            "3_unique_email.sql",
            "-- a comment\nCREATE UNIQUE INDEX user_email ON user(email);",
        );
    }

    fn tables(&self) -> Vec<String> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
            .unwrap();
        let names = stmt.query_map([], |r| r.get(0)).unwrap();
        names.map(Result::unwrap).collect()
    }

    fn applied(&self) -> Vec<String> {
        status(&self.options(Policy::Keep))
            .unwrap()
            .migrations
            .into_iter()
            .filter(|m| m.state == State::Applied)
            .map(|m| m.version.id().to_owned())
            .collect()
    }
}

fn hash(path: &Path) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(std::fs::read(path).unwrap()).to_vec()
}

#[test]
fn a_run_reports_what_it_applied_and_the_verified_backup() {
    let app = App::new();
    app.write("2_seed.sql", "INSERT INTO user VALUES ('a'), ('b');");
    let report = migrate(&app.options(Policy::Restore), &mut Silent).unwrap();
    assert!(report.created);
    let applied: Vec<_> = report.applied.iter().map(|a| a.version.id()).collect();
    assert_eq!(applied, ["1", "2"]);
    assert_eq!(report.rows_changed(), 2);
    assert!(report.backup.as_ref().unwrap().is_file());
    assert!(
        report
            .backup
            .unwrap()
            .starts_with(app.dir.path().join("backups")),
        "backups go beside the database"
    );
    // Up to date: nothing applied, no backup taken.
    let again = migrate(&app.options(Policy::Restore), &mut Silent).unwrap();
    assert!(again.applied.is_empty() && again.backup.is_none());
    assert!(status(&app.options(Policy::Restore))
        .unwrap()
        .is_up_to_date());
}

#[test]
fn a_failed_run_is_restored_to_the_pre_run_backup_and_says_where_it_failed() {
    let app = App::new();
    app.ready_to_fail();
    let err = migrate(&app.options(Policy::Restore), &mut Silent).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Failed);
    assert_eq!(err.exit_code(), 1);
    assert!(err.file().unwrap().ends_with("3_unique_email.sql"));
    assert_eq!(err.line(), Some(2));
    let f = err.failure().unwrap();
    assert_eq!(f.version.id(), "3");
    assert!(
        f.message.contains("UNIQUE constraint failed"),
        "{}",
        f.message
    );
    assert_eq!(f.applied.len(), 1, "2 committed before 3 failed");
    let Outcome::Restored { safety_backup } = &f.outcome else {
        panic!("not restored: {err}")
    };
    assert!(safety_backup.as_ref().unwrap().is_file());
    // Migration 2 committed, then the restore undid it: the database is as
    // it was before the run.
    assert_eq!(
        app.tables(),
        ["_backstop_migrations", "_backstop_runs", "user"]
    );
    assert_eq!(app.applied(), ["1"]);
    assert!(err.to_string().contains("restored from"), "{err}");
}

#[test]
fn keep_leaves_the_migrations_that_committed() {
    let app = App::new();
    app.ready_to_fail();
    let err = migrate(&app.options(Policy::Keep), &mut Silent).unwrap_err();
    assert!(matches!(err.failure().unwrap().outcome, Outcome::Kept));
    assert!(app.tables().contains(&"audit".to_owned()));
    assert_eq!(app.applied(), ["1", "2"]);
}

#[test]
fn refuse_changes_nothing_when_anything_is_pending() {
    let app = App::new();
    // A new database is not even created.
    let err = migrate(&app.options(Policy::Refuse), &mut Silent).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Refused);
    assert!(!app.db().exists());
    migrate(&app.options(Policy::Keep), &mut Silent).unwrap();
    let before = hash(&app.db());
    app.write("2_audit.sql", "CREATE TABLE audit (at TEXT);");
    let err = migrate(&app.options(Policy::Refuse), &mut Silent).unwrap_err();
    assert_eq!(err.exit_code(), 3);
    assert!(
        err.to_string().contains("1 pending migration(s) (2)"),
        "{err}"
    );
    assert_eq!(hash(&app.db()), before);
    // Up to date: fine.
    migrate(&app.options(Policy::Keep), &mut Silent).unwrap();
    migrate(&app.options(Policy::Refuse), &mut Silent).unwrap();
}

#[test]
fn an_edited_migration_is_refused_before_anything_changes() {
    let app = App::new();
    migrate(&app.options(Policy::Restore), &mut Silent).unwrap();
    app.write("1_users.sql", "CREATE TABLE user (email TEXT, name TEXT);");
    app.write("2_audit.sql", "CREATE TABLE audit (at TEXT);");
    let before = hash(&app.db());
    let err = migrate(&app.options(Policy::Restore), &mut Silent).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Refused);
    assert!(err.failure().is_none());
    assert!(err.to_string().contains("edited"), "{err}");
    assert_eq!(hash(&app.db()), before);
}

/// Writes a row through its own connection when migration 2 commits: the
/// "other program" that a restore would silently undo.
struct Writer(PathBuf);

impl Observer for Writer {
    fn event(&mut self, event: &Event<'_>) {
        if let Event::MigrationCommitted { version, .. } = event {
            if version.id() == "2" {
                let conn = Connection::open(&self.0).unwrap();
                conn.execute("INSERT INTO user VALUES ('written by the app')", [])
                    .unwrap();
            }
        }
    }
}

#[test]
fn restore_never_undoes_another_programs_writes() {
    let app = App::new();
    app.ready_to_fail();
    let err = migrate(&app.options(Policy::Restore), &mut Writer(app.db())).unwrap_err();
    let f = err.failure().unwrap();
    assert!(
        matches!(f.outcome, Outcome::KeptOverOtherWrites),
        "{:?}",
        f.outcome
    );
    let rows: i64 = app
        .conn()
        .query_row(
            "SELECT count(*) FROM user WHERE email = 'written by the app'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 1);
    assert!(err.to_string().contains("another program wrote"), "{err}");
}

#[test]
fn a_run_whose_first_migration_fails_has_nothing_to_restore() {
    let app = App::new();
    app.ready_to_fail();
    std::fs::remove_file(app.migrations().join("2_audit.sql")).unwrap();
    let mut heard = Recorder::default();
    let err = migrate(&app.options(Policy::Restore), &mut heard).unwrap_err();
    let f = err.failure().unwrap();
    assert!(f.applied.is_empty() && f.rolled_back, "{err}");
    assert!(matches!(f.outcome, Outcome::Kept), "{:?}", f.outcome);
    assert!(!heard.0.contains(&"restore".to_owned()), "{:?}", heard.0);
    let safety_copies = std::fs::read_dir(app.dir.path().join("backups"))
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().contains(".before-restore.")
        })
        .count();
    assert_eq!(safety_copies, 0, "a safety copy of an unchanged database");
    assert_eq!(app.applied(), ["1"]);
}

/// Records what the application hears.
#[derive(Default)]
struct Recorder(Vec<String>);

impl Observer for Recorder {
    fn event(&mut self, event: &Event<'_>) {
        let line = match event {
            Event::PlanReady { pending } => format!("plan {pending}"),
            Event::BackupDone { .. } => "backup".into(),
            Event::MigrationStarted {
                version,
                index,
                total,
                ..
            } => format!("start {version} {index}/{total}"),
            Event::StatementStarted { line, .. } => format!("line {line}"),
            Event::MigrationCommitted { version, .. } => format!("commit {version}"),
            Event::MigrationFailed { version, line, .. } => format!("failed {version}:{line}"),
            Event::RestoreStarted { .. } => "restore".into(),
            _ => return,
        };
        self.0.push(line);
    }
}

#[test]
fn the_observer_hears_the_run_in_order() {
    let app = App::new();
    app.ready_to_fail();
    let mut heard = Recorder::default();
    migrate(&app.options(Policy::Restore), &mut heard).unwrap_err();
    assert_eq!(
        heard.0,
        [
            "plan 2",
            "backup",
            "start 2 1/2",
            "line 1",
            "commit 2",
            "start 3 2/2",
            "line 2",
            "failed 3:2",
            "backup", // the before-restore safety copy
            "restore",
        ]
    );
}

#[test]
fn embedded_migrations_apply_and_read_as_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let options = Options::new(&db, crate::embed_migrations!());
    let report = migrate(&options, &mut Silent).unwrap();
    let on_disk = Options::new(&db, Migrations::Folder("migrations".into()));
    let s = status(&on_disk).unwrap();
    assert!(s.is_up_to_date(), "{s:?}");
    assert_eq!(report.applied.len(), s.migrations.len());
}

/// Applications pass errors across threads and into `anyhow`/`Box<dyn Error>`.
#[test]
fn the_public_types_are_send_and_sync() {
    fn check<T: Send + Sync + 'static>() {}
    check::<Error>();
    check::<Report>();
    check::<Options>();
    check::<Status>();
}

#[test]
fn bad_options_are_usage_errors() {
    let app = App::new();
    let mut o = app.options(Policy::Restore);
    o.keep = 0;
    assert_eq!(
        migrate(&o, &mut Silent).unwrap_err().kind(),
        ErrorKind::Usage
    );
    let o = Options::new(":memory:", Migrations::Folder(app.migrations()));
    assert_eq!(migrate(&o, &mut Silent).unwrap_err().exit_code(), 2);
    let o = Options::new(
        format!("sqlite://{}", app.db().display()),
        Migrations::Folder(app.migrations()),
    );
    assert_eq!(o.backups, app.dir.path().join("backups"));
    migrate(&o, &mut Silent).unwrap();
    assert!(app.db().exists(), "a sqlite: URL names the file");
}

/// `LogObserver` on a failed run: records at the right levels, the failure
/// with its file and line (run by .ci/run with `--features log`).
#[cfg(feature = "log")]
#[test]
fn the_log_adapter_writes_the_run_as_records() {
    use std::sync::Mutex;
    static RECORDS: Mutex<Vec<(log::Level, String)>> = Mutex::new(Vec::new());
    struct Capture;
    impl log::Log for Capture {
        fn enabled(&self, m: &log::Metadata<'_>) -> bool {
            m.target() == "backstop"
        }
        fn log(&self, r: &log::Record<'_>) {
            if self.enabled(r.metadata()) {
                let line = (r.level(), r.args().to_string());
                RECORDS.lock().unwrap().push(line);
            }
        }
        fn flush(&self) {}
    }
    log::set_logger(&Capture).unwrap();
    log::set_max_level(log::LevelFilter::Debug);
    let app = App::new();
    app.ready_to_fail();
    migrate(&app.options(Policy::Restore), &mut super::LogObserver).unwrap_err();
    let records = RECORDS.lock().unwrap();
    let has = |level, text: &str| records.iter().any(|(l, m)| *l == level && m.contains(text));
    assert!(has(log::Level::Info, "applied 2 audit"), "{records:?}");
    assert!(
        has(
            log::Level::Error,
            "3_unique_email.sql:2: migration 3 failed"
        ),
        "{records:?}"
    );
    assert!(has(log::Level::Warn, "restoring"), "{records:?}");
}
