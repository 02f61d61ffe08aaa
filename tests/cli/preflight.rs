//! Issue "No surprises": everything SQLite can find without data is found
//! before the first write. Every statement of every pending migration is
//! prepared against the schema the earlier ones produce; what fails is refused
//! with file:line and SQLite's message (exit 3), the database byte-identical.

use crate::sandbox::Sandbox;

const ONE: &str = "-- migrate:up\nCREATE TABLE author (id INTEGER PRIMARY KEY, name TEXT);\n";
const TWO: &str =
    "-- migrate:up\nCREATE TABLE book (id INTEGER PRIMARY KEY, author_id INTEGER, title TEXT);\n";

/// 1 applied; 2 and 3 pending, 3 as given.
fn with_third(third: &str) -> Sandbox {
    let s = Sandbox::new();
    s.migration("1_author.sql", ONE);
    s.run(&["up"]).code(0);
    s.migration("2_book.sql", TWO)
        .migration("3_third.sql", third);
    s
}

#[track_caller]
fn refused_before_anything(s: &Sandbox, needles: &[&str]) {
    for args in [&["up"][..], &["up", "--dry-run"][..], &["up", "--yes"][..]] {
        let out = s.refuses(args, 3);
        for n in needles {
            out.stderr_has(n);
        }
    }
    assert_eq!(s.applied(), vec![1], "a migration ran");
    assert!(
        !s.table_exists("book"),
        "migration 2 committed before 3 was checked"
    );
}

#[test]
fn a_syntax_error_in_the_third_file_is_refused_before_the_second_runs() {
    let s = with_third("-- migrate:up\nINSERT INTO book (title)\n  VALUSE ('x');\n");
    refused_before_anything(&s, &["3_third.sql:2", "syntax error"]);
}

#[test]
fn a_misspelt_table_created_by_an_earlier_pending_migration_is_refused() {
    let s = with_third("-- migrate:up\n\nINSERT INTO bok (title) VALUES ('x');\n");
    refused_before_anything(&s, &["3_third.sql:3", "no such table: bok"]);
}

#[test]
fn a_misspelt_column_is_refused() {
    let s = with_third("-- migrate:up\nUPDATE book SET titel = 'x';\n");
    refused_before_anything(&s, &["3_third.sql:2", "no such column: titel"]);
}

#[test]
fn an_unknown_function_is_refused_and_the_hint_names_extensions() {
    let s = with_third("-- migrate:up\nUPDATE book SET title = buddy_insights(title);\n");
    refused_before_anything(
        &s,
        &[
            "3_third.sql:2",
            "no such function: buddy_insights",
            "--load-extension",
        ],
    );
}

#[test]
fn a_sqlite3_shell_dot_command_is_named_as_such() {
    // A real project's file, written for the sqlite3 shell.
    let s = with_third(
        "-- migrate:up transaction:false\n.timeout 30000\nBEGIN;\nUPDATE book SET title = upper(title);\nCOMMIT;\n",
    );
    refused_before_anything(
        &s,
        &["3_third.sql:2", "`.timeout` is a sqlite3 shell command"],
    );
}

#[test]
fn statements_on_tables_the_earlier_pending_migrations_create_are_not_refused() {
    let s = with_third(
        "-- migrate:up\nINSERT INTO book (author_id, title) VALUES (1, 'x');\nCREATE INDEX book_title ON book (title);\nSELECT count(*) FROM book JOIN author ON author.id = book.author_id;\n",
    );
    s.run(&["up"]).code(0);
    assert_eq!(s.applied(), vec![1, 2, 3]);
}

#[test]
fn a_failure_that_depends_on_the_rows_is_left_to_the_run() {
    let s = Sandbox::new();
    s.migration(
        "1_a.sql",
        "-- migrate:up\nCREATE TABLE a (x TEXT);\nINSERT INTO a VALUES ('dup'), ('dup');\n",
    );
    s.run(&["up"]).code(0);
    s.migration(
        "2_unique.sql",
        "-- migrate:up\nCREATE UNIQUE INDEX a_x ON a (x);\n",
    );
    s.run(&["up", "--dry-run"])
        .code(1)
        .stdout_has("UNIQUE constraint failed");
    s.run(&["up"]).code(1).stderr_has("2_unique.sql:2");
}

#[test]
fn a_refused_plan_on_a_new_database_creates_nothing() {
    let s = Sandbox::new();
    s.migration("1_author.sql", ONE)
        .migration("2_typo.sql", "-- migrate:up\nCREAT TABLE x (y);\n");
    s.refuses(&["up"], 3).stderr_has("2_typo.sql:2");
    assert!(!s.db().exists(), "database created:\n{}", s.listing());
    assert!(s.backups().is_empty());
}

#[test]
fn a_down_section_is_checked_before_down_runs() {
    let s = Sandbox::new();
    s.migration(
        "1_a.sql",
        "-- migrate:up\nCREATE TABLE a (x);\n-- migrate:down\nDROP TABLE a;\nDROP TABLE no_such;\n",
    );
    s.run(&["up"]).code(0);
    s.refuses(&["down", "--yes"], 3)
        .stderr_has("1_a.sql:5")
        .stderr_has("no such table: no_such");
    assert!(s.table_exists("a"));
}

#[test]
fn sql_after_a_python_migration_is_not_refused_for_what_python_created() {
    if !crate::executables::python() {
        return;
    }
    let s = Sandbox::new();
    s.migration("1_author.sql", ONE)
        .migration(
            "2_tags.py",
            "def up(conn):\n    conn.execute(\"CREATE TABLE tag (id INTEGER PRIMARY KEY, name TEXT)\")\n",
        )
        .migration("3_seed.sql", "-- migrate:up\nINSERT INTO tag (name) VALUES ('x');\n");
    s.run(&["up"]).code(0);
    assert_eq!(s.applied(), vec![1, 2, 3]);
    // Before the Python migration the copy is exact: still refused there.
    let s = Sandbox::new();
    s.migration(
        "1_typo.sql",
        "-- migrate:up\nINSERT INTO nope_table VALUES (1);\n",
    )
    .migration("2_tags.py", "def up(conn):\n    pass\n");
    s.refuses(&["up"], 3)
        .stderr_has("no such table: nope_table");
}
