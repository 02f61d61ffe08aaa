//! SPEC "pitfalls", foreign keys: a migration fails only on violations it
//! *introduced*. An app that never switched enforcement on keeps orphans
//! around; a migration that touches their table commits (with a note), and
//! one that adds an orphan of its own is rolled back naming only that row.

use crate::executables::python;
use crate::sandbox::Sandbox;

const FAMILY: &str = "-- migrate:up\n\
    CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT);\n\
    CREATE TABLE child (id INTEGER PRIMARY KEY, note TEXT,\n  \
    parent_id INTEGER NOT NULL REFERENCES parent(id) ON DELETE CASCADE);\n\
    INSERT INTO parent VALUES (1, 'one'), (2, 'two');\n\
    INSERT INTO child VALUES (10, NULL, 1), (11, NULL, 2);\n";

/// The family, then what an app without `PRAGMA foreign_keys = ON` leaves:
/// child 12 points at a parent that was never there.
fn with_an_old_orphan() -> Sandbox {
    let s = Sandbox::new();
    s.migration("1_family.sql", FAMILY);
    s.run(&["up"]).code(0);
    s.conn()
        .execute_batch("PRAGMA foreign_keys = OFF; INSERT INTO child VALUES (12, NULL, 99);")
        .expect("the app's orphan");
    s
}

#[test]
fn a_migration_touching_a_table_with_old_orphans_commits_and_says_so() {
    let s = with_an_old_orphan();
    s.migration(
        "2_notes.sql",
        "-- migrate:up\nUPDATE child SET note = 'checked';\n",
    );
    s.run(&["up"])
        .code(0)
        .stderr_has(
            "2_notes.sql: 1 row(s) in the tables it touched already pointed at missing parents",
        )
        .stderr_has("backstop verify");
    assert_eq!(s.applied(), vec![1, 2]);
    assert_eq!(
        s.query_i64("SELECT count(*) FROM child WHERE note = 'checked'"),
        3
    );
}

#[test]
fn an_orphan_of_its_own_still_fails_it_and_only_that_row_is_named() {
    let s = with_an_old_orphan();
    s.migration(
        "2_drop_two.sql",
        "-- migrate:up\nUPDATE child SET note = 'x';\nDELETE FROM parent WHERE id = 2;\n",
    );
    let out = s.run(&["up"]);
    out.code(1)
        .stderr_has("left 1 row(s) whose parent is missing")
        .stderr_has("child rowid 11");
    assert!(!out.stderr.contains("rowid 12"), "{}", out.stderr);
    assert!(!out.stderr.contains("could not be read"), "{}", out.stderr);
    assert_eq!(s.applied(), vec![1]);
    assert_eq!(s.query_i64("SELECT count(*) FROM parent"), 2);
}

/// Without a transaction the database already holds the section's changes:
/// the pre-run backup is the state before it.
#[test]
fn a_transaction_false_section_compares_with_the_pre_run_backup() {
    let s = with_an_old_orphan();
    s.migration(
        "2_loose.sql",
        "-- migrate:up transaction:false\nUPDATE child SET note = 'loose';\n",
    );
    s.run(&["up"])
        .code(0)
        .stderr_has("already pointed at missing parents");
    assert_eq!(s.applied(), vec![1, 2]);
    // With no backup there is nothing to compare with: every orphan counts.
    s.migration(
        "3_looser.sql",
        "-- migrate:up transaction:false\nUPDATE child SET note = 'looser';\n",
    );
    s.run(&["up", "--no-backup"])
        .code(1)
        .stderr_has("child rowid 12")
        .stderr_has("could not be read, so rows that were orphaned already count too");
}

/// A rollback-journal writer whose cache spilled holds the exclusive lock, so
/// the last commit cannot be read beside it: the pre-run backup stands in,
/// and without one every orphan counts as new.
#[test]
fn a_spilled_writer_falls_back_to_the_pre_run_backup() {
    let s = with_an_old_orphan();
    let big = "-- migrate:up\nPRAGMA cache_size = 8;\n\
        CREATE TABLE filler (x BLOB);\n\
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)\n\
        INSERT INTO filler SELECT randomblob(1000) FROM n;\n\
        UPDATE child SET note = 'big';\n";
    s.migration("2_big.sql", big);
    s.run(&["up", "--no-backup"])
        .code(1)
        .stderr_has("child rowid 12")
        .stderr_has("could not be read");
    assert_eq!(s.applied(), vec![1]);
    s.run(&["up"])
        .code(0)
        .stderr_has("already pointed at missing parents");
    assert_eq!(s.applied(), vec![1, 2]);
}

#[test]
fn a_python_module_is_judged_by_the_orphans_it_made() {
    if !python() {
        return;
    }
    let s = with_an_old_orphan();
    s.migration(
        "2_notes.py",
        "def up(conn):\n    conn.execute(\"UPDATE child SET note = 'py'\")\n",
    );
    s.run(&["up"])
        .code(0)
        .stderr_has("2_notes.py: 1 row(s) in the tables it touched already pointed");
    s.migration(
        "3_drop_one.py",
        "def up(conn):\n    conn.execute('DELETE FROM parent WHERE id = 1')\n",
    );
    let out = s.run(&["up"]);
    out.code(1)
        .stderr_has("left 1 row(s) whose parent is missing")
        .stderr_has("child rowid 10");
    assert!(!out.stderr.contains("rowid 12"), "{}", out.stderr);
    assert_eq!(s.applied(), vec![1, 2]);
}

#[test]
fn a_table_that_gains_a_foreign_key_in_a_later_migration_is_checked_in_it() {
    // Migration 1 makes `item` without foreign keys, so the check stops
    // asking about it while nothing says REFERENCES (issue 14); migration 2
    // makes it anew with one, and an orphan, in the same run.
    let s = Sandbox::new();
    s.migration(
        "1_items.sql",
        "-- migrate:up\nCREATE TABLE owner (id INTEGER PRIMARY KEY);\n\
         CREATE TABLE item (id INTEGER PRIMARY KEY);\n\
         INSERT INTO owner VALUES (1);\nINSERT INTO item VALUES (5);\n",
    )
    .migration(
        "2_owned.sql",
        "-- migrate:up\nDROP TABLE item;\n\
         CREATE TABLE item (id INTEGER PRIMARY KEY, owner_id INTEGER REFERENCES owner(id));\n\
         INSERT INTO item VALUES (5, 42);\n",
    );
    s.run(&["up", "--yes"])
        .code(1)
        .stderr_has("left 1 row(s) whose parent is missing")
        .stderr_has("item rowid 5");
    assert_eq!(s.applied(), vec![1]);
}
