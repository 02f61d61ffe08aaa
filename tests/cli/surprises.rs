//! Issue "No surprises": questions only when something is at stake, and
//! output that says what it knows.

use crate::pty::Pty;
use crate::sandbox::Sandbox;

const D: &str = "-- migrate:up\nCREATE TABLE d (x);\nINSERT INTO d VALUES (1), (2), (3), (4);\nCREATE TABLE e (x);\n";

#[test]
fn the_readme_first_command_completes_on_a_terminal_without_a_question() {
    // The repository's own example folder, on a database that does not exist:
    // its drops and deletes touch nothing of the user's.
    let s = Sandbox::new();
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    for entry in std::fs::read_dir(&examples).expect("examples") {
        let entry = entry.expect("entry");
        let text = std::fs::read_to_string(entry.path()).expect("read");
        s.migration(&entry.file_name().to_string_lossy(), &text);
    }
    let mut pty = Pty::spawn(&s, &["up"]);
    pty.expect("applied");
    let transcript = pty.transcript();
    assert_eq!(pty.exit_code(), 0);
    assert!(!transcript.contains("(y/n)"), "asked:\n{transcript}");
}

#[test]
fn a_delete_that_matches_nothing_asks_nothing_and_says_so() {
    let s = Sandbox::new();
    s.migration("1_d.sql", D);
    s.run(&["up"]).code(0);
    s.migration(
        "2_cleanup.sql",
        "-- migrate:up\nDELETE FROM d WHERE x = 99;\nDROP TABLE e;\n",
    );
    let mut pty = Pty::spawn(&s, &["up"]);
    pty.expect("0 of its 4 rows match now");
    pty.expect("applied");
    let transcript = pty.transcript();
    assert_eq!(pty.exit_code(), 0);
    assert!(!transcript.contains("(y/n)"), "asked:\n{transcript}");
    assert!(
        transcript.contains("drops table e (0 rows)"),
        "{transcript}"
    );
}

#[test]
fn a_delete_that_matches_rows_asks_first_and_no_keeps_everything() {
    let s = Sandbox::new();
    s.migration("1_d.sql", D);
    s.run(&["up"]).code(0);
    s.migration(
        "2_cleanup.sql",
        "-- migrate:up\nDELETE FROM d WHERE x > 2;\n",
    );
    let mut pty = Pty::spawn(&s, &["up"]);
    pty.expect("2 of its 4 rows match now");
    pty.expect("Run these migrations?");
    pty.send("n");
    assert_eq!(pty.exit_code(), 3);
    assert_eq!(s.query_i64("SELECT count(*) FROM d"), 4);
    assert_eq!(s.applied(), vec![1]);
}

#[test]
fn a_table_the_run_creates_and_empties_is_not_listed() {
    let s = Sandbox::new();
    s.migration("1_d.sql", D);
    s.run(&["up"]).code(0);
    s.migration(
        "2_tmp.sql",
        "-- migrate:up\nCREATE TABLE tmp (x);\nINSERT INTO tmp VALUES (1);\n",
    )
    .migration(
        "3_drop.sql",
        "-- migrate:up\nDELETE FROM tmp;\nDROP TABLE tmp;\n",
    );
    let out = s.run(&["up"]);
    out.code(0);
    assert!(!out.stderr.contains("drop or delete"), "{}", out.stderr);
}

/// 1 applied, then a hand-made index (drift), then 2 pending.
fn drifted() -> Sandbox {
    let s = Sandbox::new();
    s.migration("1_d.sql", D);
    s.run(&["up"]).code(0);
    s.conn()
        .execute_batch("CREATE INDEX d_by_hand ON d (x);")
        .expect("hand-made change");
    s.migration("2_more.sql", "-- migrate:up\nCREATE TABLE f (x);\n");
    s
}

#[test]
fn drift_before_up_is_named_and_refused_without_a_terminal_until_accepted() {
    let s = drifted();
    s.refuses(&["up"], 3)
        .stderr_has("changed outside migrations")
        .stderr_has("index d_by_hand")
        .stderr_has("--yes");
    // Still reported until a run accepts it.
    s.run(&["status"]).code(0).stdout_has("index d_by_hand");
    s.run(&["verify"]).code(3).stdout_has("index d_by_hand");
    s.run(&["up", "--dry-run"])
        .code(0)
        .stdout_has("changed outside migrations");
    s.run(&["up", "--yes"]).code(0);
    assert_eq!(s.applied(), vec![1, 2]);
    let log = s.run(&["log", "--json"]).code(0).json();
    let accepted = &log["runs"][0]["detail"]["accepted_drift"];
    assert_eq!(accepted["appeared"][0], "index d_by_hand", "{log}");
    s.run(&["status"]).code(0).stdout_has("drift     none");
}

#[test]
fn drift_is_confirmed_on_a_terminal() {
    let s = drifted();
    let mut pty = Pty::spawn(&s, &["up"]);
    pty.expect("index d_by_hand");
    pty.expect("Accept the change");
    pty.send("y");
    pty.expect("applied");
    assert_eq!(pty.exit_code(), 0);
    assert_eq!(s.applied(), vec![1, 2]);
}

#[test]
fn drift_with_nothing_pending_asks_nothing() {
    let s = drifted();
    s.remove("migrations/2_more.sql");
    s.run(&["up"]).code(0).stdout_has("up to date");
}

#[test]
fn down_without_a_terminal_needs_yes() {
    let s = Sandbox::new();
    s.migration(
        "1_a.sql",
        "-- migrate:up\nCREATE TABLE a (x);\n-- migrate:down\nDROP TABLE a;\n",
    );
    s.run(&["up"]).code(0);
    s.refuses(&["down"], 3).stderr_has("--yes");
    s.refuses(&["down", "--to", "0"], 3).stderr_has("--yes");
    assert!(s.table_exists("a"));
    s.run(&["down", "--yes"]).code(0);
    assert!(!s.table_exists("a"));
}

#[test]
fn down_on_a_terminal_lists_what_it_reverts_and_asks() {
    let s = Sandbox::new();
    s.migration(
        "1_a.sql",
        "-- migrate:up\nCREATE TABLE a (x);\n-- migrate:down\nDROP TABLE a;\n",
    );
    s.run(&["up"]).code(0);
    let mut pty = Pty::spawn(&s, &["down"]);
    pty.expect("1 a");
    pty.expect("Revert 1 migration(s)");
    pty.send("n");
    assert_eq!(pty.exit_code(), 3);
    assert!(s.table_exists("a"));
}

/// A statement that runs for many seconds (a recursive count).
const SLOW: &str = "-- migrate:up\nCREATE TABLE s (n);\nINSERT INTO s SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 400000000) SELECT x FROM c);\n";

#[test]
fn without_a_terminal_a_long_statement_prints_that_it_is_still_running() {
    use std::io::{BufRead, BufReader};
    let s = Sandbox::new();
    s.migration("1_slow.sql", SLOW);
    let mut child = s
        .command(&["up"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let mut seen = Vec::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.expect("line");
        let done = line.contains("still running");
        seen.push(line);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let last = seen.last().cloned().unwrap_or_default();
    assert!(
        last.contains("1 line 3: still running (5 s)"),
        "{}",
        seen.join("\n")
    );
}

#[test]
fn on_a_terminal_the_overall_elapsed_time_advances_during_a_long_statement() {
    let s = Sandbox::new();
    s.migration("1_fast.sql", "CREATE TABLE f (x);\n")
        .migration("2_slow.sql", SLOW);
    let mut pty = Pty::spawn(&s, &["up"]);
    // The overall line, not only the statement's spinner, shows time passing.
    pty.expect_regex(r"migrating \[[ =>]*\] 1/2 [2-9]s");
    pty.send("\x03");
    pty.expect("What now?");
    pty.send("\x03");
    assert_eq!(pty.exit_code(), 130);
}

#[test]
fn other_tools_verbs_point_at_backstops() {
    let s = Sandbox::new();
    for (theirs, ours) in [
        ("upgrade", "`up`"),
        ("migrate", "`up`"),
        ("downgrade", "`down`"),
        ("rollback", "`down`"),
        ("current", "`status`"),
        ("history", "`log`"),
        ("stamp", "`baseline VERSION`"),
        ("create", "`new NAME`"),
    ] {
        let out = s.run(&[theirs]);
        out.code(2).stderr_has("error:").stderr_has(ours);
        assert!(!out.stderr.contains("restore'"), "{theirs}: {}", out.stderr);
    }
}

#[test]
fn a_usage_error_under_json_is_one_json_document() {
    let s = Sandbox::new();
    let out = s.run(&["up", "--bogus", "--json"]);
    out.code(2);
    let j = out.json();
    assert_eq!(j["ok"], false);
    assert_eq!(j["exit_code"], 2);
    assert!(j["error"].as_str().unwrap().contains("--bogus"), "{j}");
    assert_eq!(j["schema_version"], 1);
}

/// `backstop new NAME` in a folder holding `existing`: the new file's name.
fn new_in(existing: &[&str], args: &[&str]) -> String {
    let s = Sandbox::new();
    for f in existing {
        s.migration(f, "CREATE TABLE t (x);\n");
    }
    let mut all = vec!["new", "add_thing"];
    all.extend_from_slice(args);
    let out = s.run(&all);
    out.code(0);
    let path = out.stdout.trim().to_owned();
    assert!(s.path().join(&path).exists(), "{path}");
    // The folder stays valid: the new file is the newest, nothing refused.
    let st = s.run(&["status", "--json"]).code(0).json();
    let last = st["migrations"]
        .as_array()
        .unwrap()
        .last()
        .cloned()
        .unwrap();
    assert_eq!(last["name"], "add_thing", "{st}");
    path.trim_start_matches("migrations/").to_owned()
}

#[test]
fn new_follows_the_folders_own_naming() {
    assert_eq!(
        new_in(&["0007_b.sql", "0006_a.sql"], &[]),
        "0008_add_thing.sql"
    );
    assert_eq!(new_in(&["1_a.sql", "2_b.sql"], &[]), "3_add_thing.sql");
    let dated8 = new_in(&["20251009_a.sql"], &[]);
    assert_eq!(dated8.len(), "YYYYMMDD_add_thing.sql".len(), "{dated8}");
    let stamp = new_in(&["0007_a.sql"], &["--timestamp"]);
    assert_eq!(stamp.len(), "YYYYMMDDHHMMSS_add_thing.sql".len(), "{stamp}");
    let dated = new_in(&["2025_10_09_a.sql", "2025_11_06_b.sql"], &[]);
    assert!(dated.starts_with("20") && &dated[4..5] == "_", "{dated}");
    assert!(dated.ends_with("_add_thing.sql"), "{dated}");
    assert_eq!(
        new_in(&["V1_1__a.sql", "V1_2__b.sql"], &[]),
        "V1_3__add_thing.sql"
    );
    let pair = new_in(&["1_a.up.sql", "1_a.down.sql"], &[]);
    assert_eq!(pair, "2_add_thing.up.sql");
}

#[test]
fn new_with_timestamp_in_a_dated_folder_is_refused() {
    let s = Sandbox::new();
    s.migration("2025_10_09_a.sql", "CREATE TABLE t (x);\n");
    s.run(&["new", "x", "--timestamp"])
        .code(2)
        .stderr_has("--timestamp")
        .stderr_has("numbered");
}

#[test]
fn a_duplicate_version_names_the_version_both_files_and_the_rename() {
    let s = Sandbox::new();
    s.migration("1_a.sql", "CREATE TABLE a (x);\n")
        .migration("2_b.sql", "CREATE TABLE b (x);\n")
        .migration("02_c.sql", "CREATE TABLE c (x);\n");
    s.refuses(&["up"], 3)
        .stderr_has("version 2")
        .stderr_has("2_b.sql")
        .stderr_has("02_c.sql")
        .stderr_has("rename")
        .stderr_has("this one to 03_b.sql");
}

#[test]
fn what_looks_like_a_migration_but_cannot_run_is_refused_not_skipped() {
    for (name, needle) in [
        ("2_notes.txt", "does not run .txt files"),
        ("2_fix.sh", "chmod +x"),
        ("R__views.sql", "repeatable"),
    ] {
        let s = Sandbox::new();
        s.migration("1_a.sql", "CREATE TABLE a (x);\n")
            .migration(name, "SELECT 1;\n")
            .migration("3_c.sql", "CREATE TABLE c (x);\n");
        s.refuses(&["up"], 3).stderr_has(name).stderr_has(needle);
        s.refuses(&["status"], 3).stderr_has(name);
        assert!(!s.db().exists(), "{name}: database created");
    }
    // A folder that looks like a diesel migration but has no up.sql.
    let s = Sandbox::new();
    s.write("migrations/2024-03-13-170000_x/down.sql", "SELECT 1;\n");
    s.refuses(&["up"], 3)
        .stderr_has("2024-03-13-170000_x")
        .stderr_has("up.sql");
}

#[test]
fn what_is_not_a_migration_is_left_alone_and_listed_by_status_verbose() {
    let s = Sandbox::new();
    s.migration("1_a.sql", "CREATE TABLE a (x);\n")
        .migration("README.md", "# notes\n")
        .migration("atlas.sum", "h1:abc=\n")
        .write("migrations/meta/_journal.json", "{}");
    s.run(&["up"]).code(0);
    assert_eq!(s.applied(), vec![1]);
    let quiet = s.run(&["status"]).code(0).stdout.clone();
    assert!(!quiet.contains("README.md"), "{quiet}");
    s.run(&["status", "-v"])
        .code(0)
        .stdout_has("README.md")
        .stdout_has("atlas.sum")
        .stdout_has("meta");
}
