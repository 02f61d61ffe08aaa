//! Issue 5: the toolbox. `up --dry-run`, destructive-step warnings (and the
//! confirmation on a terminal), `verify`, `down`, `repair`, `baseline`, `log`.

use std::path::Path;
use std::time::Duration;

use crate::sandbox::{file_hash, Sandbox, BIN};

/// Three rows in `t`, one with a NULL name and two with the same name.
const T: &str = "-- migrate:up\n\
CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT);\n\
INSERT INTO t (name) VALUES ('a'), (NULL), ('a');\n\
-- migrate:down\n\
DROP TABLE t;\n";

/// Every file in the backups folder with its SHA-256: "untouched" means this
/// whole list is equal, names and bytes.
fn backups_snapshot(s: &Sandbox) -> Vec<(String, String)> {
    s.backup_files()
        .into_iter()
        .map(|name| {
            let h = file_hash(&s.backups_dir().join(&name));
            (name, h)
        })
        .collect()
}

/// The database file (and any journal beside it) plus the backups folder.
fn snapshot(s: &Sandbox) -> (Vec<String>, Vec<(String, String)>) {
    let db = ["", "-wal", "-journal"]
        .iter()
        .map(|suffix| {
            let p = format!("{}{suffix}", s.db().display());
            file_hash(Path::new(&p))
        })
        .collect();
    (db, backups_snapshot(s))
}

// ---------------------------------------------------------------- up --dry-run

#[test]
fn dry_run_reports_everything_and_leaves_database_and_backups_byte_identical() {
    let s = Sandbox::new();
    s.migration("1_t.sql", T).migration(
        "2_keep.sql",
        "-- migrate:up\nCREATE TABLE gone (x);\nINSERT INTO gone VALUES (1), (2);\n",
    );
    s.run(&["up"]).code(0);
    s.migration(
        "3_change.sql",
        "-- migrate:up\n\
         CREATE TABLE u (id INTEGER PRIMARY KEY, v TEXT);\n\
         INSERT INTO u (v) VALUES ('x'), ('y');\n\
         UPDATE t SET name = 'z' WHERE name IS NULL;\n\
         CREATE TABLE t_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n\
         INSERT INTO t_new SELECT id, name FROM t;\n\
         DROP TABLE t;\n\
         ALTER TABLE t_new RENAME TO t;\n\
         DELETE FROM t WHERE id = 3;\n",
    )
    .migration("4_drop.sql", "-- migrate:up\nDROP TABLE gone;\n");
    let before = snapshot(&s);
    assert_eq!(before.1.len(), 2, "one backup and its manifest");

    let out = s.run(&["up", "--dry-run"]);
    out.code(0)
        .stdout_has("3 change")
        .stdout_has("4 drop")
        .stdout_has("rows changed")
        .stdout_has("rebuilds table t")
        .stdout_has("drops table gone (2 rows)")
        .stdout_has("created: table u")
        .stdout_has("dropped: table gone")
        .stdout_has("rows would be deleted from: gone, t")
        .stdout_has("the rehearsal succeeded");
    // A rebuild is not reported as a drop.
    assert!(!out.stdout.contains("drops table t"), "{}", out.stdout);
    // Per table, before and after: t loses a row, u appears, gone vanishes.
    let counts = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|w| w.len() == 3)
        .map(|w| w.join(" "))
        .collect::<Vec<_>>();
    for row in ["t 3 2", "u - 2", "gone 2 -"] {
        assert!(counts.contains(&row.to_string()), "{row}:\n{}", out.stdout);
    }
    // A rehearsal must not say on stderr that it applied anything.
    assert!(!out.stderr.contains("applied"), "{}", out.stderr);
    assert_eq!(snapshot(&s), before, "dry run changed a file");

    let j = s.run(&["up", "--dry-run", "--json"]).code(0).json();
    assert_eq!(j["ok"], true);
    assert!(j["failure"].is_null());
    let m = j["migrations"].as_array().expect("migrations");
    assert_eq!(m.len(), 2);
    assert_eq!(m[0]["version"], "3");
    assert!(m[0]["duration_ms"].is_u64());
    // 2 inserted into u, 1 updated, 3 copied, 1 deleted.
    assert_eq!(m[0]["rows_changed"], 7);
    let table = |name: &str| {
        j["tables"]
            .as_array()
            .expect("tables")
            .iter()
            .find(|t| t["table"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {j}"))
    };
    assert_eq!(table("t")["before"], 3);
    assert_eq!(table("t")["after"], 2);
    assert!(table("u")["before"].is_null());
    assert_eq!(table("gone")["before"], 2);
    assert!(table("gone")["after"].is_null());
    assert_eq!(j["objects"]["appeared"], serde_json::json!(["table u"]));
    assert_eq!(j["objects"]["vanished"], serde_json::json!(["table gone"]));
    assert_eq!(j["objects"]["changed"], serde_json::json!(["table t"]));
    assert_eq!(j["rows_deleted"], serde_json::json!(["gone", "t"]));
    let kinds: Vec<String> = j["destructive"]
        .as_array()
        .expect("destructive")
        .iter()
        .map(|d| format!("{} {}", d["kind"].as_str().unwrap_or("?"), d["table"]))
        .collect();
    assert!(kinds.contains(&"rebuild \"t\"".to_string()), "{kinds:?}");
    assert!(
        kinds.contains(&"drop-table \"gone\"".to_string()),
        "{kinds:?}"
    );

    assert_eq!(snapshot(&s), before, "dry run --json changed a file");
    assert_eq!(s.applied(), vec![1, 2]);
    assert_eq!(s.query_i64("SELECT count(*) FROM t"), 3);
}

/// A rebuild with NOT NULL over rows that hold NULLs fails on the real data.
#[test]
fn dry_run_finds_a_not_null_that_existing_rows_violate() {
    let s = Sandbox::new();
    s.migration("1_t.sql", T);
    s.run(&["up"]).code(0);
    s.migration(
        "2_not_null.sql",
        "-- migrate:up\n\
         CREATE TABLE t_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n\
         \n\
         INSERT INTO t_new SELECT id, name FROM t;\n\
         DROP TABLE t;\n\
         ALTER TABLE t_new RENAME TO t;\n",
    );
    let before = snapshot(&s);
    s.run(&["up", "--dry-run"])
        .code(1)
        .stdout_has("2_not_null.sql:4")
        .stdout_has("NOT NULL constraint failed");
    let out = s.run(&["up", "--dry-run", "--json"]);
    let j = out.code(1).json();
    assert_eq!(j["ok"], false);
    let f = &j["failure"];
    assert!(
        f["path"].as_str().unwrap_or("").ends_with("2_not_null.sql"),
        "{f}"
    );
    assert_eq!(f["line"], 4);
    assert!(
        f["message"]
            .as_str()
            .unwrap_or("")
            .contains("NOT NULL constraint failed"),
        "{f}"
    );
    assert_eq!(snapshot(&s), before);
    assert_eq!(s.applied(), vec![1]);
}

#[test]
fn dry_run_finds_a_unique_index_over_duplicate_values() {
    let s = Sandbox::new();
    s.migration("1_t.sql", T);
    s.run(&["up"]).code(0);
    s.migration(
        "2_ok.sql",
        "-- migrate:up\nCREATE TABLE w (x);\n",
    )
    .migration(
        "3_unique.sql",
        "-- migrate:up\n-- names must be unique from now on\nCREATE UNIQUE INDEX t_name ON t (name);\n",
    );
    let before = snapshot(&s);
    let out = s.run(&["up", "--dry-run"]);
    out.code(1)
        .stdout_has("ok      2 ok")
        .stdout_has("3_unique.sql:3")
        .stdout_has("UNIQUE constraint failed");
    let j = s.run(&["up", "--dry-run", "--json"]).code(1).json();
    assert_eq!(j["ok"], false);
    assert_eq!(
        j["migrations"][0]["version"], "2",
        "the one before succeeded"
    );
    assert_eq!(j["failure"]["version"], "3");
    assert_eq!(j["failure"]["line"], 3);
    assert!(j["failure"]["path"]
        .as_str()
        .unwrap_or("")
        .ends_with("3_unique.sql"));
    assert!(j["failure"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("UNIQUE constraint failed"));
    assert_eq!(snapshot(&s), before);
    assert_eq!(s.applied(), vec![1]);
    assert!(!s.table_exists("w"));
}

#[test]
fn dry_run_on_a_missing_database_does_not_create_it() {
    let s = Sandbox::new();
    s.migration("1_t.sql", T);
    s.run(&["up", "--dry-run"])
        .code(0)
        .stdout_has("1 t")
        .stdout_has("created: table t")
        .stdout_has("the rehearsal succeeded");
    let j = s.run(&["up", "--dry-run", "--json"]).code(0).json();
    assert_eq!(j["ok"], true);
    assert_eq!(j["migrations"][0]["rows_changed"], 3);
    assert!(!s.db().exists(), "{}", s.listing());
    assert!(!s.backups_dir().exists(), "{}", s.listing());
}

/// `up` cannot create a database in a folder that does not exist (exit 4), so
/// the rehearsal must not promise that it would succeed.
#[test]
fn dry_run_into_a_missing_folder_fails_like_up() {
    let s = Sandbox::new();
    s.migration("1_t.sql", T);
    let up = s.run(&["up", "-d", "nowhere/app.db"]);
    up.code(4).stderr_has("nowhere");
    s.run(&["up", "--dry-run", "-d", "nowhere/app.db"])
        .code(4)
        .stderr_has("nowhere");
    assert!(!s.path().join("nowhere").exists());
}

// ------------------------------------------------------------ destructive steps

const WIDE: &str = "-- migrate:up\n\
CREATE TABLE a (x);\n\
INSERT INTO a VALUES (1), (2);\n\
CREATE TABLE c (id INTEGER PRIMARY KEY, keep TEXT, old TEXT);\n\
INSERT INTO c (keep, old) VALUES ('k', 'o');\n\
CREATE TABLE d (x);\n\
INSERT INTO d VALUES (1), (2), (3), (4);\n\
CREATE VIEW v AS SELECT x FROM a;\n";

#[test]
fn destructive_steps_are_listed_before_the_run_and_without_a_terminal_it_proceeds() {
    let s = Sandbox::new();
    s.migration("1_wide.sql", WIDE);
    s.run(&["up"]).code(0);
    s.migration(
        "2_destroy.sql",
        "-- migrate:up\n\
         DROP VIEW v;\n\
         DROP TABLE a;\n\
         ALTER TABLE c DROP COLUMN old;\n\
         DELETE FROM d WHERE x > 2;\n",
    );
    let out = s.run(&["up"]);
    out.code(0)
        .stderr_has("warning: these migrations drop or delete data:")
        .stderr_has("2: drops view v")
        .stderr_has("2: drops table a (2 rows)")
        .stderr_has("2: drops column c.old (1 row)")
        .stderr_has(
            "2: deletes rows from d (`DELETE FROM d WHERE x > 2;`): 2 of its 4 rows match now",
        );
    // Listed before the run starts: before the backup line.
    let warned = out
        .stderr
        .find("warning: these migrations")
        .unwrap_or(usize::MAX);
    let backed_up = out.stderr.find("backup ").unwrap_or(0);
    assert!(warned < backed_up, "{}", out.stderr);
    assert_eq!(s.applied(), vec![1, 2]);
    assert!(!s.table_exists("a") && !s.table_exists("v"));
    assert_eq!(s.query_i64("SELECT count(*) FROM d"), 2);
    assert_eq!(
        s.query_i64("SELECT count(*) FROM pragma_table_info('c') WHERE name = 'old'"),
        0
    );
}

#[test]
fn a_table_rebuild_is_reported_as_a_rebuild_not_a_drop() {
    let s = Sandbox::new();
    s.migration("1_t.sql", T);
    s.run(&["up"]).code(0);
    s.migration(
        "2_rebuild.sql",
        "-- migrate:up\n\
         CREATE TABLE t_new (id INTEGER PRIMARY KEY, name TEXT DEFAULT '');\n\
         INSERT INTO t_new SELECT id, name FROM t;\n\
         DROP TABLE t;\n\
         ALTER TABLE t_new RENAME TO t;\n",
    );
    let out = s.run(&["up"]);
    out.code(0).stderr_has("2: rebuilds table t (3 rows)");
    assert!(!out.stderr.contains("drops table"), "{}", out.stderr);
    assert_eq!(s.query_i64("SELECT count(*) FROM t"), 3);
}

#[test]
fn drop_table_in_a_comment_or_a_string_is_not_reported() {
    let s = Sandbox::new();
    s.migration("1_wide.sql", WIDE);
    s.run(&["up"]).code(0);
    s.migration(
        "2_harmless.sql",
        "-- migrate:up\n\
         -- DROP TABLE a;\n\
         /* DROP TABLE a; DELETE FROM d; */\n\
         CREATE TABLE notes (text TEXT DEFAULT 'DROP TABLE a;');\n\
         INSERT INTO notes VALUES ('DROP TABLE a; DELETE FROM d;');\n",
    );
    let out = s.run(&["up"]);
    out.code(0);
    assert!(!out.stderr.contains("drop or delete"), "{}", out.stderr);
    assert!(!out.stderr.contains("drops"), "{}", out.stderr);
    assert!(s.table_exists("a"));
    assert_eq!(s.query_i64("SELECT count(*) FROM d"), 4);
    assert_eq!(s.query_i64("SELECT count(*) FROM notes"), 1);
}

/// The binary on a pseudo-terminal, so that dialoguer prompts.
fn on_terminal(s: &Sandbox, args: &[&str]) -> expectrl::Session {
    let mut c = s.command(args);
    // The sandbox gives stdin /dev/null; here all three must be the pty.
    c.stdin(std::process::Stdio::inherit());
    c.env("TERM", "xterm");
    let mut session = expectrl::Session::spawn(c).expect("spawn on a pty");
    session.set_expect_timeout(Some(Duration::from_secs(60)));
    session
}

/// Reads everything up to EOF and returns the exit code.
fn finish(mut session: expectrl::Session) -> (i32, String) {
    let rest = session.expect(expectrl::Eof).expect("eof");
    // Eof "matches" everything that was left unread.
    let text = String::from_utf8_lossy(rest.get(0).unwrap_or_default()).into_owned();
    match session.get_process().wait().expect("wait") {
        expectrl::WaitStatus::Exited(_, code) => (code, text),
        other => panic!("{BIN} ended with {other:?}\n{text}"),
    }
}

fn destructive_sandbox() -> Sandbox {
    let s = Sandbox::new();
    s.migration("1_wide.sql", WIDE);
    s.run(&["up"]).code(0);
    s.migration("2_drop.sql", "-- migrate:up\nDROP TABLE a;\n");
    s
}

#[test]
fn on_a_terminal_declining_the_destructive_prompt_changes_nothing() {
    let s = destructive_sandbox();
    let before = snapshot(&s);
    let mut p = on_terminal(&s, &["up", "--color", "never"]);
    p.expect("these migrations drop or delete data:")
        .expect("warning");
    p.expect("drops table a (2 rows)").expect("item");
    p.expect("Run these migrations?").expect("prompt");
    p.send("n").expect("send n");
    let (code, text) = finish(p);
    assert_eq!(code, 3, "{text}");
    assert_eq!(snapshot(&s), before, "declined, yet a file changed");
    assert_eq!(s.applied(), vec![1]);
    assert!(s.table_exists("a"));
}

#[test]
fn on_a_terminal_accepting_the_destructive_prompt_applies() {
    let s = destructive_sandbox();
    let mut p = on_terminal(&s, &["up", "--color", "never"]);
    p.expect("drops table a (2 rows)").expect("item");
    p.expect("Run these migrations?").expect("prompt");
    p.send("y").expect("send y");
    let (code, text) = finish(p);
    assert_eq!(code, 0, "{text}");
    assert_eq!(s.applied(), vec![1, 2]);
    assert!(!s.table_exists("a"));
    assert_eq!(s.backups().len(), 2);
}

#[test]
fn on_a_terminal_yes_skips_the_destructive_prompt() {
    let s = destructive_sandbox();
    let p = on_terminal(&s, &["up", "--yes", "--color", "never"]);
    let (code, text) = finish(p);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("drops table a (2 rows)"), "{text}");
    assert!(!text.contains("Run these migrations?"), "{text}");
    assert_eq!(s.applied(), vec![1, 2]);
}

/// A rehearsal changes nothing, so it has nothing to confirm.
#[test]
fn on_a_terminal_dry_run_does_not_prompt() {
    let s = destructive_sandbox();
    let before = snapshot(&s);
    let p = on_terminal(&s, &["up", "--dry-run", "--color", "never"]);
    let (code, text) = finish(p);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("drops table a (2 rows)"), "{text}");
    assert!(!text.contains("Run these migrations?"), "{text}");
    assert_eq!(snapshot(&s), before);
    assert_eq!(s.applied(), vec![1]);
}

// ---------------------------------------------------------------------- verify

fn verified_sandbox() -> Sandbox {
    let s = Sandbox::new();
    s.migration(
        "1_family.sql",
        "-- migrate:up\n\
         CREATE TABLE parent (id INTEGER PRIMARY KEY);\n\
         CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES parent (id));\n\
         INSERT INTO parent VALUES (1);\n\
         INSERT INTO child VALUES (1, 1);\n\
         -- migrate:down\n\
         DROP TABLE child;\nDROP TABLE parent;\n",
    );
    s.run(&["up"]).code(0);
    s
}

/// The FAIL line of `check` and the fix line under it.
#[track_caller]
fn failed_check(out: &crate::sandbox::Output, check: &str, message: &str) {
    out.code(3).stderr_has("error:");
    let lines: Vec<&str> = out.stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("FAIL") && l.contains(check) && l.contains(message))
        .unwrap_or_else(|| panic!("no FAIL {check} … {message}:\n{}", out.stdout));
    assert!(
        lines.get(at + 1).is_some_and(|l| l.contains('→')),
        "no fix line after the finding:\n{}",
        out.stdout
    );
}

#[test]
fn verify_passes_on_a_healthy_database() {
    let s = verified_sandbox();
    let out = s.run(&["verify"]);
    out.code(0).stdout_has("all checks passed");
    assert!(!out.stdout.contains("FAIL"), "{}", out.stdout);
    let j = s.run(&["verify", "--json"]).code(0).json();
    assert_eq!(j["passed"], true);
    let findings = j["findings"].as_array().expect("findings");
    assert!(findings.iter().all(|f| f["ok"] == true), "{j}");
    for check in [
        "files",
        "checksums",
        "drift",
        "integrity",
        "foreign-keys",
        "backups",
    ] {
        assert!(findings.iter().any(|f| f["check"] == check), "{check}: {j}");
    }
}

#[test]
fn verify_fails_on_an_edited_migration() {
    let s = verified_sandbox();
    let text = std::fs::read_to_string(s.path().join("migrations/1_family.sql")).expect("read");
    s.migration("1_family.sql", &text.replace("(1, 1)", "(1, 1), (2, 1)"));
    let out = s.run(&["verify"]);
    failed_check(&out, "checksums", "1_family.sql");
    out.stdout_has("backstop repair 1");
    let j = s.run(&["verify", "--json"]).code(3).json();
    assert_eq!(j["passed"], false);
}

#[test]
fn verify_fails_on_a_missing_migration_file() {
    let s = verified_sandbox();
    s.remove("migrations/1_family.sql");
    let out = s.run(&["verify"]);
    failed_check(&out, "checksums", "1_family.sql or .up.sql) is missing");
}

#[test]
fn verify_and_status_report_drift() {
    let s = verified_sandbox();
    s.conn()
        .execute_batch("CREATE TABLE sneaky (x);")
        .expect("create behind backstop's back");
    let out = s.run(&["verify"]);
    failed_check(&out, "drift", "appeared: table sneaky");
    s.run(&["status"])
        .code(0)
        .stdout_has("schema changed outside migrations")
        .stdout_has("appeared: table sneaky");
    let j = s.run(&["status", "--json"]).code(0).json();
    assert_eq!(j["drift"]["appeared"], serde_json::json!(["table sneaky"]));
}

#[test]
fn verify_fails_on_a_foreign_key_violation() {
    let s = verified_sandbox();
    s.conn()
        .execute_batch("PRAGMA foreign_keys = OFF; INSERT INTO child VALUES (7, 99);")
        .expect("orphan");
    let out = s.run(&["verify"]);
    failed_check(&out, "foreign-keys", "child rowid 7");
    let j = s.run(&["verify", "--json"]).code(3).json();
    let fk = j["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["check"] == "foreign-keys")
        .cloned()
        .expect("foreign-keys finding");
    assert_eq!(fk["ok"], false);
    assert!(fk["fix"].is_string());
}

#[test]
fn verify_fails_on_a_backup_whose_bytes_changed() {
    let s = verified_sandbox();
    // The backup taken by the first `up` is of an empty (0-byte) database.
    s.run(&["backup"]).code(0);
    let backup = s.backups().pop().expect("a backup");
    let mut bytes = std::fs::read(&backup).expect("read backup");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&backup, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    std::fs::write(&backup, bytes).expect("tamper");
    let name = backup
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let out = s.run(&["verify"]);
    failed_check(&out, "backups", &name);
    out.stdout_has("does not match its manifest");
}

// ------------------------------------------------------------------------ down

fn three() -> Sandbox {
    let s = Sandbox::new();
    for (v, t) in [(1, "one"), (2, "two"), (3, "three")] {
        s.migration(
            &format!("{v}_{t}.sql"),
            &format!("-- migrate:up\nCREATE TABLE {t} (x);\n-- migrate:down\nDROP TABLE {t};\n"),
        );
    }
    s.run(&["up"]).code(0);
    s
}

fn backups_with(s: &Sandbox, reason: &str) -> usize {
    s.backups()
        .iter()
        .filter(|p| p.to_string_lossy().contains(reason))
        .count()
}

#[test]
fn down_reverts_the_newest_after_a_before_down_backup() {
    let s = three();
    let out = s.run(&["down", "--yes"]);
    out.code(0)
        .stdout_has("reverted 1 migration(s)")
        .stderr_has("reverted 3 three");
    assert!(!out.stderr.contains("applied"), "{}", out.stderr);
    assert_eq!(s.applied(), vec![1, 2]);
    assert!(!s.table_exists("three") && s.table_exists("two"));
    assert_eq!(backups_with(&s, ".before-down."), 1, "{}", s.listing());
    // The backup holds the state before `down`.
    let backup = s
        .backups()
        .into_iter()
        .find(|p| p.to_string_lossy().contains(".before-down."))
        .expect("backup");
    let b = rusqlite::Connection::open(&backup).expect("open backup");
    let n: i64 = b
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'three'",
            [],
            |r| r.get(0),
        )
        .expect("query");
    assert_eq!(n, 1);
    s.run(&["status"]).code(0).stdout_has("pending");
}

#[test]
fn down_steps_two_and_down_to_a_version() {
    let s = three();
    s.run(&["down", "--steps", "2", "--yes"]).code(0);
    assert_eq!(s.applied(), vec![1]);
    assert!(s.table_exists("one") && !s.table_exists("two"));
    s.run(&["up"]).code(0);
    assert_eq!(s.applied(), vec![1, 2, 3]);
    s.run(&["down", "--to", "1", "--yes"]).code(0);
    assert_eq!(s.applied(), vec![1]);
    assert!(s.table_exists("one") && !s.table_exists("two") && !s.table_exists("three"));
}

#[test]
fn down_refuses_when_a_migration_in_range_has_no_down_section() {
    let s = three();
    s.migration("2_two.sql", "-- migrate:up\nCREATE TABLE two (x);\n");
    let before = snapshot(&s);
    s.run(&["down", "--steps", "2", "--yes"])
        .code(3)
        .stderr_has("2_two.sql")
        .stderr_has("no down section");
    assert_eq!(snapshot(&s), before);
    assert_eq!(s.applied(), vec![1, 2, 3]);
    // The newest alone has a down section: fine.
    s.run(&["down", "--yes"]).code(0);
    assert_eq!(s.applied(), vec![1, 2]);
}

#[test]
fn down_warns_when_the_down_section_changed_since_applied_but_runs_it() {
    let s = three();
    s.migration(
        "3_three.sql",
        "-- migrate:up\nCREATE TABLE three (x);\n-- migrate:down\nDROP TABLE three;\nCREATE TABLE three_was_here (x);\n",
    );
    let out = s.run(&["down", "--yes"]);
    out.code(0)
        .stderr_has("down section")
        .stderr_has("3_three.sql");
    assert_eq!(s.applied(), vec![1, 2]);
    assert!(
        s.table_exists("three_was_here"),
        "the edited down section ran"
    );
}

#[test]
fn a_failing_down_section_rolls_back_and_stays_applied() {
    let s = three();
    s.migration(
        "3_three.sql",
        "-- migrate:up\nCREATE TABLE three (x);\n-- migrate:down\nDROP TABLE three;\nSELECT abs(-9223372036854775808);\n",
    );
    let out = s.run(&["down", "--yes"]);
    out.code(1)
        .stderr_has("3_three.sql:5")
        .stderr_has("integer overflow");
    assert_eq!(s.applied(), vec![1, 2, 3]);
    assert!(
        s.table_exists("three"),
        "the first statement was rolled back"
    );
    s.run(&["status", "--exit-code"]).code(0);
}

// ---------------------------------------------------------------------- repair

const R1: &str = "-- migrate:up\nCREATE TABLE r (x);\n-- migrate:down\nDROP TABLE r;\n";
const R1_EDITED: &str =
    "-- migrate:up\nCREATE TABLE r (x); -- now with a comment\n-- migrate:down\nDROP TABLE r;\n";

fn repair_sandbox() -> Sandbox {
    let s = Sandbox::new();
    s.migration("1_r.sql", R1)
        .migration("2_s.sql", "-- migrate:up\nCREATE TABLE s (x);\n");
    s.run(&["up", "--to", "1"]).code(0);
    s.migration("1_r.sql", R1_EDITED);
    s
}

#[test]
fn repair_shows_the_diff_records_the_new_checksum_and_logs_both() {
    let s = repair_sandbox();
    s.run(&["up"]).code(3).stderr_has("edited");
    let out = s.run(&["repair", "1", "--yes"]);
    out.code(0);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert!(
        lines.contains(&"-CREATE TABLE r (x);"),
        "no - line:\n{}",
        out.stderr
    );
    assert!(
        lines.contains(&"+CREATE TABLE r (x); -- now with a comment"),
        "no + line:\n{}",
        out.stderr
    );
    assert_eq!(backups_with(&s, ".before-repair."), 1, "{}", s.listing());
    let j = s.run(&["status", "--json"]).code(0).json();
    assert_eq!(j["migrations"][0]["state"], "applied");
    s.run(&["up"]).code(0);
    assert_eq!(s.applied(), vec![1, 2]);

    let log = s.run(&["log", "--json"]).code(0).json();
    let run = log["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .find(|r| r["command"] == "repair")
        .cloned()
        .unwrap_or_else(|| panic!("no repair run: {log}"));
    let (old, new) = (
        run["detail"]["old_checksum"].as_str().unwrap_or(""),
        run["detail"]["new_checksum"].as_str().unwrap_or(""),
    );
    assert_eq!(old.len(), 64, "{run}");
    assert_eq!(new.len(), 64, "{run}");
    assert_ne!(old, new);
    assert_eq!(
        s.conn()
            .query_row(
                "SELECT checksum FROM _backstop_migrations WHERE version = '1'",
                [],
                |r| r.get::<_, String>(0)
            )
            .expect("checksum"),
        new
    );
}

#[test]
fn repair_without_a_terminal_or_yes_refuses_and_changes_nothing() {
    let s = repair_sandbox();
    let before = snapshot(&s);
    s.run(&["repair", "1"]).code(3).stderr_has("--yes");
    assert_eq!(snapshot(&s), before);
    s.run(&["status"]).code(0).stdout_has("edited");
}

#[test]
fn repair_of_an_unknown_or_unedited_version() {
    let s = repair_sandbox();
    s.run(&["repair", "99"]).code(3).stderr_has("99");
    s.migration("1_r.sql", R1);
    let before = snapshot(&s);
    s.run(&["repair", "1", "--yes"])
        .code(0)
        .stderr_has("nothing to repair");
    assert_eq!(snapshot(&s), before);
}

// -------------------------------------------------------------------- baseline

fn hand_made() -> Sandbox {
    let s = Sandbox::new();
    // Migrations 1 and 2 describe what is already there: running them would fail.
    s.migration("1_a.sql", "-- migrate:up\nCREATE TABLE a (x);\n")
        .migration(
            "2_b.sql",
            "-- migrate:up\nCREATE TABLE b (x);\nINSERT INTO b VALUES ('from migration');\n",
        )
        .migration("3_c.sql", "-- migrate:up\nCREATE TABLE c (x);\n");
    s.conn()
        .execute_batch(
            "CREATE TABLE a (x); CREATE TABLE b (x); INSERT INTO a VALUES (1); INSERT INTO b VALUES ('by hand');",
        )
        .expect("hand-made schema");
    s
}

#[test]
fn baseline_records_without_running_and_up_applies_only_later_migrations() {
    let s = hand_made();
    // Found before anything runs, even a rehearsal: it needs no data.
    s.refuses(&["up", "--dry-run"], 3)
        .stderr_has("table a already exists")
        .stderr_has("baseline");
    let out = s.run(&["baseline", "2", "--yes"]);
    out.code(0).stderr_has("1 a").stderr_has("2 b");
    assert_eq!(s.applied(), vec![1, 2]);
    assert_eq!(backups_with(&s, ".before-baseline."), 1, "{}", s.listing());
    assert_eq!(s.query_i64("SELECT count(*) FROM b"), 1, "2_b did not run");
    let j = s.run(&["status", "--json"]).code(0).json();
    assert_eq!(j["migrations"][2]["state"], "pending");
    s.run(&["up"]).code(0).stdout_has("applied 1 migration(s)");
    assert_eq!(s.applied(), vec![1, 2, 3]);
    assert!(s.table_exists("c"));
    assert_eq!(s.query_i64("SELECT count(*) FROM a"), 1);
}

#[test]
fn baseline_without_yes_or_with_an_unknown_version_refuses() {
    let s = hand_made();
    let before = snapshot(&s);
    s.run(&["baseline", "2"]).code(3).stderr_has("--yes");
    s.run(&["baseline", "7", "--yes"]).code(3).stderr_has("7");
    assert_eq!(snapshot(&s), before);
    assert!(s.applied().is_empty());
    assert!(!s.backups_dir().exists() || s.backup_files().is_empty());
}

// ------------------------------------------------------------------------- log

#[test]
fn log_lists_runs_newest_first_with_command_and_outcome() {
    let s = Sandbox::new();
    s.migration("1_a.sql", "-- migrate:up\nCREATE TABLE a (x);\n");
    s.run(&["up"]).code(0);
    s.migration(
        "2_bad.sql",
        "-- migrate:up\nINSERT INTO a VALUES (1);\nSELECT abs(-9223372036854775808);\n",
    );
    s.run(&["up", "--on-failure", "keep"]).code(1);
    // A failed run that applied something, restored: the restore carries the
    // failed run's row into the restored database (SPEC "Restore").
    s.remove("migrations/2_bad.sql");
    s.migration("2_ok.sql", "-- migrate:up\nINSERT INTO a VALUES (2);\n")
        .migration(
            "3_bad.sql",
            "-- migrate:up\nSELECT abs(-9223372036854775808);\n",
        );
    s.run(&["up", "--on-failure", "restore"])
        .code(1)
        .stderr_has("restored");

    let out = s.run(&["log"]);
    out.code(0);
    let rows: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    let summary: Vec<(&str, &str)> = rows.iter().map(|r| (r[1], r[2])).collect();
    assert_eq!(
        summary,
        vec![
            ("restore", "restored"),
            ("up", "failed"),
            ("up", "failed"),
            ("up", "ok")
        ],
        "{}",
        out.stdout
    );
    out.stdout_has("integer overflow");

    let j = s.run(&["log", "--json"]).code(0).json();
    let runs = j["runs"].as_array().expect("a list");
    assert_eq!(runs.len(), 4, "{j}");
    for r in runs {
        for field in ["id", "command", "outcome", "migrations", "backup", "error"] {
            assert!(r.get(field).is_some(), "{field} missing in {r}");
        }
    }
    let ids: Vec<i64> = runs.iter().map(|r| r["id"].as_i64().expect("id")).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    assert_eq!(runs[3]["outcome"], "ok");
    assert_eq!(runs[3]["migrations"], serde_json::json!(["1"]));
    assert!(runs[3]["backup"]
        .as_str()
        .unwrap_or("")
        .contains("before-up"));
    assert!(runs[3]["error"].is_null());
    assert_eq!(runs[2]["outcome"], "failed");
    assert!(runs[2]["error"]
        .as_str()
        .unwrap_or("")
        .contains("2_bad.sql:3"));
    // Carried across the restore, with the migration it had applied.
    assert_eq!(runs[1]["outcome"], "failed");
    assert_eq!(runs[1]["migrations"], serde_json::json!(["2"]));
    assert!(runs[1]["error"]
        .as_str()
        .unwrap_or("")
        .contains("3_bad.sql"));
    assert_eq!(runs[0]["command"], "restore");
    assert_eq!(runs[0]["outcome"], "restored");
}

#[test]
fn down_refuses_while_a_migration_is_edited_and_changes_nothing() {
    let s = Sandbox::new();
    s.migration("1_r.sql", R1).migration(
        "2_s.sql",
        "-- migrate:up\nCREATE TABLE s (x);\n-- migrate:down\nDROP TABLE s;\n",
    );
    s.run(&["up"]).code(0);
    s.migration("1_r.sql", R1_EDITED);
    s.refuses(&["down"], 3)
        .stderr_has("1_r.sql")
        .stderr_has("edited");
}

#[test]
fn verify_fails_on_an_out_of_order_migration() {
    let s = verified_sandbox();
    s.migration("0_early.sql", "-- migrate:up\nCREATE TABLE early (x);\n");
    let out = s.run(&["verify"]);
    failed_check(&out, "checksums", "older than the newest applied");
}

#[test]
fn verify_fails_when_integrity_check_does() {
    let s = verified_sandbox();
    s.conn()
        .execute_batch(
            "CREATE TABLE big (id INTEGER PRIMARY KEY, v TEXT);
             CREATE INDEX big_v ON big (v);
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000)
             INSERT INTO big (v) SELECT printf('value %d', x) FROM c;",
        )
        .expect("fill");
    // Garble the index's root page after its header: the table still reads
    // fine and the file opens, but the index is broken, which integrity_check
    // reports.
    let root = s.query_i64("SELECT rootpage FROM sqlite_schema WHERE name = 'big_v'") as usize;
    let mut bytes = std::fs::read(s.db()).expect("read db");
    let start = (root - 1) * 4096;
    for b in &mut bytes[start + 12..start + 4096] {
        *b = 0x41;
    }
    std::fs::write(s.db(), bytes).expect("write db");
    let out = s.run(&["verify"]);
    failed_check(&out, "integrity", "integrity_check");
}

#[test]
fn the_before_repair_backup_holds_the_old_checksum() {
    let s = repair_sandbox();
    let old: String = s
        .conn()
        .query_row(
            "SELECT checksum FROM _backstop_migrations WHERE version = '1'",
            [],
            |r| r.get(0),
        )
        .expect("old checksum");
    s.run(&["repair", "1", "--yes"]).code(0);
    let backup = s
        .backups()
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with(".before-repair.sqlite3"))
        .expect("a before-repair backup");
    let in_backup: String = rusqlite::Connection::open(&backup)
        .expect("open backup")
        .query_row(
            "SELECT checksum FROM _backstop_migrations WHERE version = '1'",
            [],
            |r| r.get(0),
        )
        .expect("checksum in backup");
    assert_eq!(in_backup, old, "the backup is the state before the repair");
    let now: String = s
        .conn()
        .query_row(
            "SELECT checksum FROM _backstop_migrations WHERE version = '1'",
            [],
            |r| r.get(0),
        )
        .expect("new checksum");
    assert_ne!(now, old);
}

#[test]
fn deleting_parents_lists_children_only_when_cascades_will_fire() {
    let family = "-- migrate:up\n\
        CREATE TABLE parent (id INTEGER PRIMARY KEY);\n\
        CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES parent (id) ON DELETE CASCADE);\n\
        INSERT INTO parent VALUES (1), (2);\n\
        INSERT INTO child VALUES (1, 2);\n";
    // Foreign keys off while migrations run: only `parent` loses rows.
    let s = Sandbox::new();
    s.migration("1_family.sql", family);
    s.run(&["up"]).code(0);
    s.migration(
        "2_trim.sql",
        "-- migrate:up\nDELETE FROM parent WHERE id = 1;\n",
    );
    let out = s.run(&["up"]);
    out.code(0).stderr_has("2: deletes rows from parent");
    assert!(!out.stderr.contains("from child"), "{}", out.stderr);
    // With `foreign_keys:on` the cascade is real, and it is listed.
    let s = Sandbox::new();
    s.migration("1_family.sql", family);
    s.run(&["up"]).code(0);
    s.migration(
        "2_trim.sql",
        "-- migrate:up foreign_keys:on\nDELETE FROM parent WHERE id = 2;\n",
    );
    s.run(&["up"])
        .code(0)
        .stderr_has("2: deletes rows from child");
    assert_eq!(s.query_i64("SELECT count(*) FROM child"), 0);
}

#[test]
fn declining_repair_on_a_terminal_changes_nothing() {
    let s = repair_sandbox();
    let before = file_hash(&s.db());
    let mut pty = crate::pty::Pty::spawn(&s, &["repair", "1"]);
    pty.expect("Record the edited file");
    pty.send("n");
    assert_eq!(pty.exit_code(), 3);
    assert_eq!(file_hash(&s.db()), before);
    assert!(!s
        .backups()
        .iter()
        .any(|p| p.to_string_lossy().ends_with(".before-repair.sqlite3")));
}

#[test]
fn a_large_migration_is_kept_compressed_and_repair_still_shows_its_diff() {
    let s = Sandbox::new();
    // 2 MB of inserts: kept compressed in its tracking row (issue 14).
    let rows: String = (0..40_000)
        .map(|i| format!("INSERT INTO big (t) VALUES ('row {i:08}');\n"))
        .collect();
    let text = format!("-- migrate:up\nCREATE TABLE big (t TEXT);\n{rows}");
    assert!(text.len() > 1 << 20);
    s.migration("1_big.sql", &text);
    s.run(&["up"]).code(0);
    assert_eq!(s.query_i64("SELECT count(*) FROM big"), 40_000);
    let stored = s.query_i64("SELECT length(up_sql) FROM _backstop_migrations");
    assert!(stored < (text.len() / 10) as i64, "stored {stored} bytes");
    s.migration("1_big.sql", &text.replace("row 00000007", "row seven"));
    let out = s.run(&["repair", "1", "--yes"]);
    out.code(0);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert!(
        lines.contains(&"-INSERT INTO big (t) VALUES ('row 00000007');")
            && lines.contains(&"+INSERT INTO big (t) VALUES ('row seven');"),
        "{}",
        out.stderr
    );
}
