//! Issue 11: folders in other tools' layouts run as they stand, through the
//! binary: dated names (several on one date), diesel folders (string order,
//! `metadata.toml`, `down.sql`), Flyway `V`/`U` files with dotted and
//! underscored versions, and `${NAME}` placeholders.

use crate::sandbox::{file_hash, Sandbox};

/// The tracking ids in `_backstop_migrations`, in the order they were applied.
fn ids(s: &Sandbox) -> Vec<String> {
    let conn = s.conn();
    let mut stmt = conn
        .prepare("SELECT version FROM _backstop_migrations ORDER BY rowid")
        .expect("tracking table");
    let v = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .expect("rows")
        .map(|r| r.expect("row"))
        .collect();
    v
}

fn states(s: &Sandbox) -> Vec<(String, String)> {
    let j = s.run(&["status", "--json"]).code(0).json();
    j["migrations"]
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

// --------------------------------------------------------------------- dated

/// Two files on one date: `add_client_prefs` sorts before `txn_allow_cashloose`,
/// which needs its table.
fn dated() -> Sandbox {
    let s = Sandbox::new();
    s.migration(
        "2025_10_09_add_txn_timestamps.sql",
        "-- migrate:up\nCREATE TABLE txn (id INTEGER PRIMARY KEY, at TEXT);\n-- migrate:down\nDROP TABLE txn;\n",
    )
    .migration(
        "2025_11_06_txn_allow_cashloose.sql",
        "-- migrate:up\nALTER TABLE client_prefs ADD COLUMN cashloose INTEGER;\n",
    )
    .migration(
        "2025_11_06_add_client_prefs.sql",
        "-- migrate:up\nCREATE TABLE client_prefs (txn_id INTEGER REFERENCES txn(id));\n",
    );
    s
}

#[test]
fn dated_files_on_one_date_run_in_file_name_order_and_show_their_dates() {
    let s = dated();
    assert_eq!(
        states(&s),
        [
            ("2025_10_09".into(), "pending".into()),
            ("2025_11_06".into(), "pending".into()),
            ("2025_11_06".into(), "pending".into())
        ]
    );
    s.run(&["up"]).code(0).stdout_has("applied 3 migration(s)");
    assert_eq!(
        ids(&s),
        [
            "2025_10_09_add_txn_timestamps",
            "2025_11_06_add_client_prefs",
            "2025_11_06_txn_allow_cashloose"
        ]
    );
    // The run log tells the two of one date apart.
    let log = s.run(&["log", "--json"]).code(0).json();
    assert_eq!(
        log["runs"][0]["migrations"][1],
        "2025_11_06_add_client_prefs"
    );
    assert_eq!(
        log["runs"][0]["migrations"][2],
        "2025_11_06_txn_allow_cashloose"
    );
}

#[test]
fn dated_layout_refuses_edited_missing_and_out_of_order_files() {
    let s = dated();
    s.run(&["up"]).code(0);
    // Older than the newest applied, not applied: out-of-order.
    s.migration(
        "2025_11_05_late.sql",
        "-- migrate:up\nCREATE TABLE late (x);\n",
    );
    s.refuses(&["up"], 3).stderr_has("2025_11_05_late.sql");
    s.run(&["up", "--allow-out-of-order"]).code(0);
    // Edited.
    s.migration(
        "2025_11_06_add_client_prefs.sql",
        "-- migrate:up\nCREATE TABLE client_prefs (txn_id INTEGER, extra TEXT);\n",
    );
    s.refuses(&["up"], 3).stderr_has("was edited");
    s.run(&["repair", "2025_11_06_add_client_prefs", "--yes"])
        .code(0);
    // Missing: the message names the file the layout expects.
    s.remove("migrations/2025_10_09_add_txn_timestamps.sql");
    s.refuses(&["up"], 3)
        .stderr_has("2025_10_09_add_txn_timestamps.sql");
}

#[test]
fn new_in_a_dated_folder_writes_a_dated_name_after_the_newest() {
    let s = dated();
    let out = s.run(&["new", "add_more"]).code(0).stdout.trim().to_owned();
    let name = std::path::Path::new(&out)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_owned();
    assert!(
        name.len() > 11 && name.as_bytes()[4] == b'_' && name.ends_with("_add_more.sql"),
        "{name}"
    );
    assert!(
        name.as_str() > "2025_11_06_txn_allow_cashloose.sql",
        "{name}"
    );
    assert_eq!(states(&s).len(), 4);
}

// -------------------------------------------------------------------- diesel

/// `2024-03-13_170000_x` has diesel version `20240313` (an underscore where
/// diesel expects a dash): as a string it sorts between the other two, as
/// diesel runs it; as a number it would run first and fail.
fn diesel() -> Sandbox {
    let s = Sandbox::new();
    s.write(
        "migrations/2024-03-06-170000_create_a/up.sql",
        "CREATE TABLE a (id INTEGER PRIMARY KEY);",
    )
    .write(
        "migrations/2024-03-06-170000_create_a/down.sql",
        "DROP TABLE a;",
    )
    .write(
        "migrations/2024-03-13_170000_x/up.sql",
        "CREATE TABLE x (a_id INTEGER REFERENCES a(id));",
    )
    .write("migrations/2024-03-13_170000_x/down.sql", "DROP TABLE x;")
    .write(
        "migrations/2024-03-15-090000_c/up.sql",
        "ALTER TABLE x ADD COLUMN c TEXT;\nVACUUM;",
    )
    .write(
        "migrations/2024-03-15-090000_c/down.sql",
        "ALTER TABLE x DROP COLUMN c;",
    )
    .write(
        "migrations/2024-03-15-090000_c/metadata.toml",
        "run_in_transaction = false\n",
    );
    s
}

#[test]
fn diesel_folders_run_in_string_order_with_metadata_and_down_sql() {
    let s = diesel();
    let st = states(&s);
    let shown: Vec<&str> = st.iter().map(|(v, _)| v.as_str()).collect();
    assert_eq!(
        shown,
        ["2024-03-06-170000", "2024-03-13", "2024-03-15-090000"]
    );
    // VACUUM runs: metadata.toml says run_in_transaction = false.
    s.run(&["up"]).code(0).stdout_has("applied 3 migration(s)");
    assert_eq!(ids(&s), ["20240306170000", "20240313", "20240315090000"]);
    s.run(&["down", "--yes"]).code(0);
    assert_eq!(ids(&s), ["20240306170000", "20240313"]);
    let cols = s.query_i64("SELECT count(*) FROM pragma_table_info('x') WHERE name = 'c'");
    assert_eq!(cols, 0, "down.sql did not run");
}

#[test]
fn diesel_folder_without_metadata_refuses_vacuum_and_new_writes_a_folder() {
    let s = diesel();
    s.remove("migrations/2024-03-15-090000_c/metadata.toml");
    s.refuses(&["up"], 3).stderr_has("VACUUM");
    let out = s.run(&["new", "add_d"]).code(0).stdout.trim().to_owned();
    assert!(out.ends_with("_add_d/up.sql"), "{out}");
    assert!(
        s.path().join(&out).with_file_name("down.sql").is_file(),
        "{out}"
    );
}

#[test]
fn diesel_edited_and_missing_folders_are_refused() {
    let s = diesel();
    s.run(&["up"]).code(0);
    s.write(
        "migrations/2024-03-13_170000_x/up.sql",
        "CREATE TABLE x (a_id INTEGER);",
    );
    s.refuses(&["up"], 3)
        .stderr_has("2024-03-13_170000_x/up.sql");
    s.write(
        "migrations/2024-03-13_170000_x/up.sql",
        "CREATE TABLE x (a_id INTEGER REFERENCES a(id));",
    );
    std::fs::remove_dir_all(s.path().join("migrations/2024-03-06-170000_create_a")).expect("rm");
    s.refuses(&["up"], 3)
        .stderr_has("2024-03-06-170000_create_a/up.sql");
}

// -------------------------------------------------------------------- Flyway

fn flyway() -> Sandbox {
    let s = Sandbox::new();
    s.migration("V1__init.sql", "CREATE TABLE a (x);\n")
        .migration("V1_1__b.sql", "CREATE TABLE b (x);\n")
        .migration("V1.2__c.sql", "CREATE TABLE c (x);\n")
        .migration("V1.10__d.sql", "ALTER TABLE c ADD COLUMN d;\n")
        .migration("U1.10__d.sql", "ALTER TABLE c DROP COLUMN d;\n");
    s
}

#[test]
fn flyway_versions_order_part_by_part_and_undo_files_are_downs() {
    let s = flyway();
    let st = states(&s);
    let shown: Vec<&str> = st.iter().map(|(v, _)| v.as_str()).collect();
    assert_eq!(shown, ["1", "1_1", "1.2", "1.10"]);
    s.run(&["up"]).code(0);
    assert_eq!(ids(&s), ["1", "1.1", "1.2", "1.10"]);
    s.run(&["down", "--yes"]).code(0).stderr_has("1.10");
    assert_eq!(ids(&s), ["1", "1.1", "1.2"]);
    // V1.2 has no U file: down refuses before anything runs.
    s.refuses(&["down", "--yes"], 3)
        .stderr_has("no down section");
    s.migration("R__views.sql", "CREATE VIEW v AS SELECT 1;");
    s.refuses(&["up"], 3).stderr_has("repeatable");
}

#[test]
fn new_in_a_flyway_folder_writes_the_next_v_file() {
    let s = flyway();
    let out = s.run(&["new", "add_e"]).code(0).stdout.trim().to_owned();
    assert!(out.ends_with("V1.11__add_e.sql"), "{out}");
}

#[test]
fn placeholders_are_replaced_before_running_and_undefined_ones_refused_first() {
    let s = Sandbox::new();
    s.migration("V1__init.sql", "CREATE TABLE ${table} (x);\n")
        .migration(
            "V2__seed.sql",
            "-- owner: ${owner}\nINSERT INTO ${table} VALUES ('${owner}');\n",
        );
    // Undefined: refused with file and line, before anything is written.
    let out = s.refuses(&["up"], 3);
    out.stderr_has("V1__init.sql:1")
        .stderr_has("${table}")
        .stderr_has("V2__seed.sql:1")
        .stderr_has("--placeholder");
    assert!(!s.db().exists());
    // The rehearsal and the preflight see the replaced text too.
    s.write("backstop.toml", "[placeholders]\ntable = \"accounts\"\n");
    s.run(&["up", "--dry-run", "--placeholder", "owner=ops"])
        .code(0);
    s.run(&["up", "--placeholder", "owner=ops"]).code(0);
    assert_eq!(
        s.conn()
            .query_row("SELECT x FROM accounts", [], |r| r.get::<_, String>(0))
            .expect("row"),
        "ops"
    );
    // The checksum and the recorded text are of the file as written: another
    // value is not an edit.
    let st = s
        .run(&["status", "--json", "--placeholder", "owner=dev"])
        .code(0)
        .json();
    assert_eq!(st["migrations"][1]["state"], "applied");
    let text: String = s
        .conn()
        .query_row(
            "SELECT up_sql FROM _backstop_migrations WHERE version = '2'",
            [],
            |r| r.get(0),
        )
        .expect("row");
    assert!(text.contains("'${owner}'"), "{text}");
}

#[test]
fn dollar_braces_in_a_numbered_folder_are_text_until_placeholders_are_defined() {
    let s = Sandbox::new();
    s.migration(
        "1_templates.sql",
        "-- migrate:up\nCREATE TABLE t (body TEXT);\nINSERT INTO t VALUES ('Hello ${name}');\n",
    );
    s.run(&["up"]).code(0);
    assert_eq!(
        s.conn()
            .query_row("SELECT body FROM t", [], |r| r.get::<_, String>(0))
            .expect("row"),
        "Hello ${name}"
    );
    s.migration(
        "2_more.sql",
        "-- migrate:up\nINSERT INTO t VALUES ('${name}');\n",
    );
    let db = file_hash(&s.db());
    s.run(&["up", "--placeholder", "other=1"])
        .code(3)
        .stderr_has("2_more.sql:2");
    assert_eq!(file_hash(&s.db()), db);
}

#[test]
fn a_folder_that_mixes_layouts_is_refused_naming_both() {
    let s = Sandbox::new();
    s.migration("1_a.sql", "CREATE TABLE a (x);")
        .migration("V2__b.sql", "CREATE TABLE b (x);");
    s.refuses(&["up"], 3)
        .stderr_has("1_a.sql")
        .stderr_has("V2__b.sql")
        .stderr_has("a folder holds one layout");
}
