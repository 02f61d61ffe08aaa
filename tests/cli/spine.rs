//! Issue 2: discovery, checksums, plan, apply, `new`, `status`, `up`.

use crate::sandbox::{file_hash, Sandbox};

const A: &str = "-- migrate:up\nCREATE TABLE a (id INTEGER PRIMARY KEY, x TEXT);\n-- migrate:down\nDROP TABLE a;\n";
const B: &str = "-- migrate:up\nINSERT INTO a (x) VALUES ('one;two');\nINSERT INTO a (x) VALUES ('three');\n-- migrate:down\nDELETE FROM a;\n";

#[test]
fn up_applies_pending_and_records_each() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A).migration("2_b.sql", B);
    s.run(&["up"]).code(0).stdout_has("applied 2 migration(s)");
    assert_eq!(s.applied(), vec![1, 2]);
    assert_eq!(s.query_i64("SELECT count(*) FROM a"), 2);
    assert_eq!(s.backups().len(), 1, "{}", s.listing());
    // Nothing pending: no second backup, exit 0.
    s.run(&["up"]).code(0).stdout_has("up to date");
    assert_eq!(s.backups().len(), 1);
}

#[test]
fn status_on_a_missing_database_does_not_create_it() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s.run(&["status"]).code(0).stdout_has("pending");
    assert!(!s.db().exists());
    s.run(&["status", "--exit-code"]).code(3);
    let j = s.run(&["status", "--json"]).code(0).json();
    assert_eq!(j["migrations"][0]["state"], "pending");
    assert!(!s.db().exists());
}

#[test]
fn failing_statement_reports_file_line_and_message_and_keeps_earlier_migrations() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A).migration(
        "2_bad.sql",
        "-- migrate:up\nINSERT INTO a (x) VALUES ('ok');\n\nINSERT INTO nope VALUES (1);\n",
    );
    let out = s.run(&["up"]);
    out.code(1)
        .stderr_has("2_bad.sql:4")
        .stderr_has("no such table: nope")
        .stderr_has("backstop restore");
    assert_eq!(s.applied(), vec![1]);
    // The failed migration's first statement was rolled back with it.
    assert_eq!(s.query_i64("SELECT count(*) FROM a"), 0);
}

#[test]
fn edited_applied_migration_refuses_and_leaves_the_file_byte_identical() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A).migration("2_b.sql", B);
    s.run(&["up", "--to", "1"]).code(0);
    s.migration("1_a.sql", &A.replace("x TEXT", "x TEXT NOT NULL"));
    let before = file_hash(&s.db());
    s.run(&["up"])
        .code(3)
        .stderr_has("1_a.sql")
        .stderr_has("edited")
        .stderr_has("repair");
    assert_eq!(file_hash(&s.db()), before);
    s.run(&["status"]).code(0).stdout_has("edited");
}
