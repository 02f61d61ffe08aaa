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
