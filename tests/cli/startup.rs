//! Issue 13, migrating at application start-up: the example program
//! (`examples/startup`, its migrations compiled in) on databases the command
//! line made, `status` agreeing with the embedded set (same checksums, same
//! states), and the `--json` documents programs such as the Python package read.
//!
//! `cargo test` builds the examples before it runs this binary; a narrower
//! `cargo test --test cli` does not, and then the example's tests say so and
//! pass, except under CI, where a missing example is a failure.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::sandbox::{file_hash, Output, Sandbox, BIN};

const USERS: &str = "20250101090000_create_users.sql";

/// The example's migrations folder, as the command line reads it.
fn example_migrations() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/startup/migrations")
}

fn example() -> Option<PathBuf> {
    let bin = Path::new(BIN)
        .parent()
        .expect("target folder")
        .join("examples")
        .join(format!("startup{}", std::env::consts::EXE_SUFFIX));
    if bin.is_file() {
        return Some(bin);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} was not built (cargo test builds the examples)",
        bin.display()
    );
    eprintln!(
        "skipped: {} is not built; `cargo test` or `cargo build --example startup` builds it",
        bin.display()
    );
    None
}

/// Starts the example application on the sandbox's database.
fn start(s: &Sandbox, bin: &Path) -> Output {
    let mut c = Command::new(bin);
    c.arg(s.db()).current_dir(s.path());
    c.env_remove("DATABASE_URL").env("RUST_BACKTRACE", "0");
    let out = c.output().expect("run the example");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        command: "examples/startup".into(),
    }
}

/// `backstop status --json` on the example's own folder (on disk).
fn status(s: &Sandbox) -> Vec<(String, String)> {
    let folder = example_migrations();
    let out = s.run(&[
        "status",
        "--json",
        "--migrations",
        folder.to_str().expect("UTF-8 path"),
    ]);
    out.code(0);
    let doc = out.json();
    doc["migrations"]
        .as_array()
        .expect("migrations")
        .iter()
        .map(|m| {
            (
                m["version"].as_str().unwrap_or("").to_owned(),
                m["state"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// What a restore must bring back: the schema, the rows, the tracking rows.
fn contents(s: &Sandbox) -> Vec<String> {
    let conn = s.conn();
    let mut all = Vec::new();
    for sql in [
        "SELECT sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY name",
        "SELECT id || ' ' || email FROM user ORDER BY id",
        "SELECT version || ' ' || checksum FROM _backstop_migrations ORDER BY version",
    ] {
        let mut stmt = conn.prepare(sql).expect(sql);
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).expect(sql);
        all.extend(rows.map(|r| r.expect(sql)));
    }
    all
}

/// The previous release: migration 1 applied by the command line from a copy
/// of the example's first file, and two users sharing an email.
fn previous_release(s: &Sandbox, users_sql: &str) {
    s.migration(USERS, users_sql);
    s.run(&["up", "-q"]).code(0);
    s.conn()
        .execute_batch("INSERT INTO user (email) VALUES ('a@example.com'), ('a@example.com');")
        .expect("insert users");
}

fn users_sql() -> String {
    std::fs::read_to_string(example_migrations().join(USERS)).expect("example migration")
}

#[test]
fn the_example_migrates_at_start_up_and_status_agrees_with_its_embedded_set() {
    let Some(bin) = example() else { return };
    let s = Sandbox::new();
    start(&s, &bin)
        .code(0)
        .stdout_has("serving with 0 user(s)")
        .stderr_has("migrated: 3 migration(s)");
    let states = status(&s);
    assert_eq!(states.len(), 3);
    assert!(
        states.iter().all(|(_, state)| state == "applied"),
        "the folder on disk does not agree with the embedded set: {states:?}"
    );
    let backups = s.backup_files();
    start(&s, &bin).code(0).stderr_has("database is up to date");
    assert_eq!(
        s.backup_files(),
        backups,
        "an up-to-date start takes no backup"
    );
}

#[test]
fn a_failing_start_up_migration_restores_the_database_and_the_app_refuses_to_start() {
    let Some(bin) = example() else { return };
    let s = Sandbox::new();
    previous_release(&s, &users_sql());
    let before = contents(&s);
    let out = start(&s, &bin);
    out.code(1)
        .stderr_has("20250103090000_unique_emails.sql:4")
        .stderr_has("UNIQUE constraint failed: user.email")
        .stderr_has("restored from")
        .stderr_has("refusing to start");
    assert!(!out.stdout.contains("serving"), "{}", out.stdout);
    // Migration 2 committed before 3 failed: the restore undid it too.
    assert_eq!(contents(&s), before);
    assert!(!s.table_exists("note"));
    let states = status(&s);
    let states: Vec<&str> = states.iter().map(|(_, st)| st.as_str()).collect();
    assert_eq!(states, ["applied", "pending", "pending"]);
}

#[test]
fn an_edited_migration_stops_the_app_before_anything_changes() {
    let Some(bin) = example() else { return };
    let s = Sandbox::new();
    // The database ran another text of migration 1 than the one compiled in.
    let edited = users_sql().replace("NOT NULL);", "NOT NULL, name TEXT);");
    assert_ne!(edited, users_sql());
    previous_release(&s, &edited);
    let (db, backups) = (file_hash(&s.db()), s.backup_files());
    start(&s, &bin)
        .code(3)
        .stderr_has("edited")
        .stderr_has("refusing to start");
    assert_eq!(
        file_hash(&s.db()),
        db,
        "the refused start changed the database"
    );
    assert_eq!(s.backup_files(), backups);
    // The command line reading the same folder from disk sees the same state.
    assert_eq!(status(&s)[0].1, "edited");
}

#[test]
fn json_errors_name_the_file_the_line_and_sqlites_message() {
    let s = Sandbox::new();
    s.migration("1_a.sql", "CREATE TABLE a (x UNIQUE);")
        .migration(
            "2_b.sql",
            "INSERT INTO a VALUES (1);\nINSERT INTO nope VALUES (1);",
        );
    let doc = s.refuses(&["up", "--json", "--no-input"], 3).json();
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["exit_code"], 3);
    assert_eq!(doc["kind"], "refused");
    assert_eq!(doc["file"], "migrations/2_b.sql");
    assert_eq!(doc["line"], 2);
    assert_eq!(doc["message"], "no such table: nope");
}

#[test]
fn a_failed_up_json_document_says_where_and_what_was_done() {
    let s = Sandbox::new();
    s.migration("1_a.sql", "CREATE TABLE a (x UNIQUE);")
        .migration(
            "2_b.sql",
            "INSERT INTO a VALUES (1);\nINSERT INTO a VALUES (1);",
        );
    let out = s.run(&["up", "--json", "--on-failure", "restore"]);
    let doc = out.code(1).json();
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["exit_code"], 1);
    assert_eq!(doc["restored"], true);
    assert_eq!(doc["failure"]["path"], "migrations/2_b.sql");
    assert_eq!(doc["failure"]["line"], 2);
    assert_eq!(
        doc["failure"]["cause"]["message"],
        "UNIQUE constraint failed: a.x"
    );
    let backup = doc["failure"]["backup"]["path"]
        .as_str()
        .expect("backup path");
    assert!(s.path().join(backup).is_file());
    assert!(doc["restore"]["safety"]["path"].is_string());

    let doc = s.run(&["up", "--json", "--on-failure", "keep"]).json();
    assert_eq!(doc["exit_code"], 1);
    assert_eq!(doc["restored"], false);
    assert!(doc["restore_command"]
        .as_str()
        .is_some_and(|c| c.starts_with("backstop restore")));
}
