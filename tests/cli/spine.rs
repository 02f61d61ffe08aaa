//! Issue 2: discovery, checksums, plan, apply, `new`, `status`, `up`.

use sha2::{Digest, Sha256};

use crate::sandbox::{file_hash, Output, Sandbox};

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
        "-- migrate:up\nINSERT INTO a (x) VALUES ('ok');\n\nSELECT abs(-9223372036854775808);\n",
    );
    let out = s.run(&["up"]);
    out.code(1)
        .stderr_has("2_bad.sql:4")
        .stderr_has("integer overflow")
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
    s.refuses(&["up"], 3)
        .stderr_has("1_a.sql")
        .stderr_has("edited")
        .stderr_has("repair");
    s.run(&["status"]).code(0).stdout_has("edited");
}

// ---------------------------------------------------------------------------
// Helpers local to this module.

/// SHA-256 hex of text, as the tracking table should record it.
fn sha(text: &str) -> String {
    format!("{:x}", Sha256::digest(text.as_bytes()))
}

/// Runs `args` and asserts SPEC's refusal: exit 3, every needle in stderr, the
/// database byte-identical (or still absent) and the backups folder unchanged.
#[track_caller]
fn refused(s: &Sandbox, args: &[&str], needles: &[&str]) -> Output {
    let out = s.refuses(args, 3);
    for n in needles {
        out.stderr_has(n);
    }
    assert!(
        out.stderr.contains("error:"),
        "no `error:` line:\n{}",
        out.stderr
    );
    out
}

/// A malformed migration folder is refused by `up` (and `status`) both on a
/// fresh project (the database is not created) and on one with an applied
/// migration (the database stays byte-identical). `files` are added beside `1_a.sql`.
#[track_caller]
fn refused_files(files: &[(&str, &[u8])], needles: &[&str]) {
    // Fresh project: nothing is created.
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    for (name, bytes) in files {
        s.write(&format!("migrations/{name}"), bytes);
    }
    refused(&s, &["up"], needles);
    assert!(!s.db().exists(), "database created:\n{}", s.listing());
    assert!(s.backups().is_empty());
    refused(&s, &["status"], needles);

    // An existing database with 1 applied: byte-identical after the refusal.
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s.run(&["up"]).code(0);
    for (name, bytes) in files {
        s.write(&format!("migrations/{name}"), bytes);
    }
    refused(&s, &["up"], needles);
    refused(&s, &["up", "--allow-out-of-order", "--no-backup"], needles);
    assert_eq!(s.applied(), vec![1]);
}

/// One column of one row, as text (NULL → None).
fn text_of(s: &Sandbox, sql: &str) -> Option<String> {
    s.conn()
        .query_row(sql, [], |r| r.get::<_, Option<String>>(0))
        .expect(sql)
}

fn states(s: &Sandbox) -> Vec<(u64, String)> {
    let j = s.run(&["status", "--json"]).code(0).json();
    j["migrations"]
        .as_array()
        .expect("migrations array")
        .iter()
        .map(|m| {
            (
                m["version"]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .expect("version"),
                m["state"].as_str().expect("state").to_owned(),
            )
        })
        .collect()
}

fn st(v: &[(u64, &str)]) -> Vec<(u64, String)> {
    v.iter().map(|(n, s)| (*n, s.to_string())).collect()
}

// ---------------------------------------------------------------------------
// Discovery

#[test]
fn goose_markers_are_sections_and_no_transaction_runs_outside_one() {
    let s = Sandbox::new();
    s.migration(
        "1_goose.sql",
        "-- +goose Up\n-- +goose StatementBegin\nCREATE TABLE g (id INTEGER PRIMARY KEY);\n-- +goose StatementEnd\n\n-- +goose Down\nDROP TABLE g;\n",
    );
    // VACUUM fails inside a transaction: it only applies if NO TRANSACTION was honoured.
    s.migration(
        "2_vacuum.sql",
        "-- +goose NO TRANSACTION\n-- +goose Up\nVACUUM;\n-- +goose Down\nSELECT 1;\n",
    );
    s.run(&["up"]).code(0);
    assert_eq!(s.applied(), vec![1, 2]);
    assert!(s.table_exists("g"));
    // The down section is not part of the up text: the table survives, and the
    // recorded down checksum is the down section's.
    assert_eq!(
        text_of(
            &s,
            "SELECT down_checksum FROM _backstop_migrations WHERE version = '1'"
        ),
        Some(sha("DROP TABLE g;\n"))
    );
    assert_eq!(
        text_of(
            &s,
            "SELECT up_sql FROM _backstop_migrations WHERE version = '2'"
        ),
        Some("VACUUM;\n".into())
    );
}

#[test]
fn sqlx_pairs_are_one_migration_and_no_transaction_first_line_is_honoured() {
    let s = Sandbox::new();
    s.migration(
        "1_people.up.sql",
        "CREATE TABLE people (id INTEGER PRIMARY KEY);\n",
    )
    .migration("1_people.down.sql", "DROP TABLE people;\n")
    .migration("2_compact.up.sql", "-- no-transaction\nVACUUM;\n")
    .migration("2_compact.down.sql", "SELECT 1;\n");
    assert_eq!(states(&s), st(&[(1, "pending"), (2, "pending")]));
    s.run(&["up"]).code(0);
    assert_eq!(s.applied(), vec![1, 2]);
    assert!(s.table_exists("people"));
    assert_eq!(
        text_of(
            &s,
            "SELECT name FROM _backstop_migrations WHERE version = '1'"
        ),
        Some("people".into())
    );
    assert_eq!(
        text_of(
            &s,
            "SELECT checksum FROM _backstop_migrations WHERE version = '1'"
        ),
        Some(sha("CREATE TABLE people (id INTEGER PRIMARY KEY);\n"))
    );
    assert_eq!(
        text_of(
            &s,
            "SELECT down_checksum FROM _backstop_migrations WHERE version = '1'"
        ),
        Some(sha("DROP TABLE people;\n"))
    );
}

#[test]
fn sqlx_up_file_without_down_file_is_fine() {
    let s = Sandbox::new();
    s.migration("1_only.up.sql", "CREATE TABLE only_up (x);\n");
    s.run(&["up"]).code(0);
    assert_eq!(s.applied(), vec![1]);
    assert_eq!(
        text_of(&s, "SELECT down_checksum FROM _backstop_migrations"),
        None
    );
}

#[test]
fn plain_file_without_markers_is_all_up_with_no_down() {
    let s = Sandbox::new();
    let text =
        "CREATE TABLE plain (x);\nINSERT INTO plain VALUES (1);\nINSERT INTO plain VALUES (2);\n";
    s.migration("1_plain.sql", text);
    s.run(&["up"]).code(0);
    assert_eq!(s.query_i64("SELECT count(*) FROM plain"), 2);
    assert_eq!(
        text_of(&s, "SELECT checksum FROM _backstop_migrations"),
        Some(sha(text))
    );
    assert_eq!(
        text_of(&s, "SELECT up_sql FROM _backstop_migrations"),
        Some(text.into())
    );
    assert_eq!(
        text_of(&s, "SELECT down_checksum FROM _backstop_migrations"),
        None
    );
}

#[test]
fn versions_are_ordered_numerically_with_leading_zeros() {
    let s = Sandbox::new();
    // Lexically "10_" < "9_" and "0011_" < "9_": each file depends on the one
    // numerically before it, so a lexical order fails.
    s.migration("10_ten.sql", "INSERT INTO t VALUES (10);\n")
        .migration("9_nine.sql", "CREATE TABLE t (v INTEGER);\n")
        .migration(
            "0011_eleven.sql",
            "INSERT INTO t SELECT max(v) + 1 FROM t;\n",
        )
        .migration(
            "100_hundred.sql",
            "INSERT INTO t SELECT max(v) * 10 - 10 FROM t;\n",
        );
    assert_eq!(
        states(&s),
        st(&[
            (9, "pending"),
            (10, "pending"),
            (11, "pending"),
            (100, "pending")
        ])
    );
    s.run(&["up"]).code(0);
    assert_eq!(s.applied(), vec![9, 10, 11, 100]);
    assert_eq!(s.query_i64("SELECT max(v) FROM t"), 100);
    // The recorded version is the number, without its leading zeros.
    assert_eq!(
        text_of(
            &s,
            "SELECT name FROM _backstop_migrations WHERE version = '11'"
        ),
        Some("eleven".into())
    );
}

#[test]
fn files_that_are_not_sql_are_ignored() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A)
        .migration("README.md", "# notes; not a migration\n")
        .migration("notes.txt", "DROP TABLE a;\n")
        .migration(".gitkeep", "")
        .migration("drafts/2_draft.sql", "this is not SQL at all\n");
    s.run(&["up"]).code(0);
    assert_eq!(s.applied(), vec![1]);
    assert_eq!(states(&s), st(&[(1, "applied")]));
}

// ---------------------------------------------------------------------------
// Refusals of malformed migration folders (exit 3, nothing created or changed)

#[test]
fn duplicate_versions_are_refused_naming_both_files() {
    refused_files(
        &[("2_b.sql", B.as_bytes()), ("02_other.sql", B.as_bytes())],
        &["2_b.sql", "02_other.sql"],
    );
}

#[test]
fn duplicate_version_between_a_single_file_and_an_up_file_is_refused() {
    refused_files(
        &[("2_b.sql", B.as_bytes()), ("2_b.up.sql", b"SELECT 1;\n")],
        &["2_b.sql", "2_b.up.sql"],
    );
}

#[test]
fn unparsable_file_name_is_refused() {
    refused_files(&[("add_users.sql", B.as_bytes())], &["add_users.sql"]);
    refused_files(&[("v2_users.sql", B.as_bytes())], &["v2_users.sql"]);
}

#[test]
fn non_utf8_text_is_refused() {
    refused_files(
        &[(
            "2_latin1.sql",
            b"-- migrate:up\nINSERT INTO a (x) VALUES ('caf\xe9');\n",
        )],
        &["2_latin1.sql", "UTF-8"],
    );
}

#[test]
fn unknown_marker_option_is_refused() {
    refused_files(
        &[(
            "2_opt.sql",
            b"-- migrate:up transaction:maybe\nINSERT INTO a (x) VALUES ('x');\n",
        )],
        &["2_opt.sql", "transaction:maybe"],
    );
}

#[test]
fn version_that_overflows_u64_is_refused() {
    // u64::MAX + 1.
    refused_files(
        &[("18446744073709551616_big.sql", B.as_bytes())],
        &["18446744073709551616_big.sql", "64 bits"],
    );
}

#[test]
fn largest_u64_version_is_accepted() {
    let s = Sandbox::new();
    s.migration("18446744073709551615_max.sql", A);
    s.run(&["up"]).code(0);
    assert_eq!(s.applied(), vec![u64::MAX]);
    assert_eq!(states(&s), st(&[(u64::MAX, "applied")]));
}

#[test]
fn up_sql_file_containing_a_down_marker_is_refused() {
    refused_files(
        &[(
            "2_b.up.sql",
            b"INSERT INTO a (x) VALUES ('x');\n-- migrate:down\nDELETE FROM a;\n",
        )],
        &["2_b.up.sql"],
    );
}

#[test]
fn down_marker_without_up_marker_is_refused() {
    refused_files(
        &[(
            "2_b.sql",
            b"INSERT INTO a (x) VALUES ('x');\n-- migrate:down\nDELETE FROM a;\n",
        )],
        &["2_b.sql", "no up marker"],
    );
}

#[test]
fn every_malformed_file_is_reported_at_once() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A)
        .migration("bad_name.sql", "SELECT 1;\n")
        .migration("3_opt.sql", "-- migrate:up foreign_keys:sometimes\n");
    refused(&s, &["up"], &["bad_name.sql", "3_opt.sql"]);
    assert!(!s.db().exists());
}

// ---------------------------------------------------------------------------
// Plan states

const C: &str =
    "-- migrate:up\nCREATE TABLE c (id INTEGER PRIMARY KEY);\n-- migrate:down\nDROP TABLE c;\n";

#[test]
fn status_shows_every_state_and_json_names_them() {
    let s = Sandbox::new();
    s.migration("10_a.sql", A)
        .migration("20_b.sql", B)
        .migration("30_c.sql", C);
    s.run(&["up"]).code(0);
    s.migration("10_a.sql", &A.replace("x TEXT", "x TEXT, y TEXT")); // edited
    s.remove("migrations/20_b.sql"); // missing
    s.migration("15_late.sql", "CREATE TABLE late (x);\n"); // out-of-order
    s.migration("40_next.sql", "CREATE TABLE next (x);\n"); // pending
    assert_eq!(
        states(&s),
        st(&[
            (10, "edited"),
            (15, "out-of-order"),
            (20, "missing"),
            (30, "applied"),
            (40, "pending"),
        ])
    );
    let out = s.run(&["status"]);
    out.code(0);
    for word in ["edited", "missing", "out-of-order", "applied", "pending"] {
        out.stdout_has(word);
    }
    s.run(&["status", "--exit-code"]).code(3);
    let out = refused(&s, &["up"], &["10_a.sql", "15_late.sql", "20", "b"]);
    out.stderr_has("repair").stderr_has("--allow-out-of-order");
    assert_eq!(s.applied(), vec![10, 20, 30]);
}

#[test]
fn missing_file_refuses_up_with_a_hint() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A).migration("2_b.sql", B);
    s.run(&["up"]).code(0);
    s.remove("migrations/2_b.sql");
    s.migration("3_c.sql", C);
    assert_eq!(
        states(&s),
        st(&[(1, "applied"), (2, "missing"), (3, "pending")])
    );
    refused(
        &s,
        &["up"],
        &["missing", "2", "Restore the edited or missing file"],
    );
    s.run(&["status", "--exit-code"]).code(3);
    assert!(!s.table_exists("c"));
}

#[test]
fn edited_file_shows_as_edited_in_json_and_refuses_with_repair_hint() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s.run(&["up"]).code(0);
    s.migration(
        "1_a.sql",
        &A.replace("DROP TABLE a;", "DROP TABLE IF EXISTS a;"),
    );
    // Only the down section changed: still applied (the checksum covers up text).
    assert_eq!(states(&s), st(&[(1, "applied")]));
    s.migration("1_a.sql", &A.replace("x TEXT", "x BLOB"));
    assert_eq!(states(&s), st(&[(1, "edited")]));
    refused(&s, &["up"], &["1_a.sql", "edited", "repair"]);
}

#[test]
fn out_of_order_refuses_then_applies_with_allow_out_of_order() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A).migration("3_c.sql", C);
    s.run(&["up"]).code(0);
    s.migration("2_b.sql", B);
    assert_eq!(
        states(&s),
        st(&[(1, "applied"), (2, "out-of-order"), (3, "applied")])
    );
    s.run(&["status", "--exit-code"]).code(3);
    refused(&s, &["up"], &["2_b.sql", "--allow-out-of-order"]);
    assert_eq!(s.query_i64("SELECT count(*) FROM a"), 0);

    s.run(&["up", "--allow-out-of-order"]).code(0);
    assert_eq!(s.applied(), vec![1, 2, 3]);
    assert_eq!(s.query_i64("SELECT count(*) FROM a"), 2);
    assert_eq!(
        states(&s),
        st(&[(1, "applied"), (2, "applied"), (3, "applied")])
    );
    s.run(&["status", "--exit-code"]).code(0);
}

#[test]
fn up_to_version_stops_there_and_status_exit_code_follows() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A)
        .migration("2_b.sql", B)
        .migration("3_c.sql", C);
    s.run(&["status", "--exit-code"]).code(3);
    s.run(&["up", "--to", "2"]).code(0);
    assert_eq!(s.applied(), vec![1, 2]);
    assert!(!s.table_exists("c"));
    assert_eq!(
        states(&s),
        st(&[(1, "applied"), (2, "applied"), (3, "pending")])
    );
    s.run(&["status", "--exit-code"]).code(3);
    // --to below everything pending: nothing to do, no backup.
    let backups = s.backups().len();
    s.run(&["up", "--to", "2"]).code(0).stdout_has("up to date");
    assert_eq!(s.backups().len(), backups);
    s.run(&["up"]).code(0);
    assert_eq!(s.applied(), vec![1, 2, 3]);
    s.run(&["status", "--exit-code"]).code(0);
}

// ---------------------------------------------------------------------------
// Checksums

/// `text` with every LF turned into CRLF (fixtures generated here, so no editor
/// or git setting can change them).
fn crlf(text: &str) -> String {
    text.replace('\n', "\r\n")
}

#[test]
fn crlf_and_bom_copies_of_an_applied_file_are_not_edited() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A).migration("2_b.sql", B);
    s.run(&["up"]).code(0);
    let before = file_hash(&s.db());
    for variant in [
        crlf(A),
        format!("\u{feff}{A}"),
        format!("\u{feff}{}", crlf(A)),
    ] {
        assert!(variant != A);
        s.migration("1_a.sql", &variant);
        assert_eq!(
            states(&s),
            st(&[(1, "applied"), (2, "applied")]),
            "{variant:?}"
        );
        s.run(&["status", "--exit-code"]).code(0);
        s.run(&["up"]).code(0).stdout_has("up to date");
    }
    assert_eq!(file_hash(&s.db()), before);
}

#[test]
fn a_crlf_file_applied_first_records_the_lf_checksum() {
    let s = Sandbox::new();
    s.migration("1_a.sql", &format!("\u{feff}{}", crlf(A)));
    s.run(&["up"]).code(0);
    let up_lf = "CREATE TABLE a (id INTEGER PRIMARY KEY, x TEXT);\n";
    assert_eq!(
        text_of(&s, "SELECT checksum FROM _backstop_migrations"),
        Some(sha(up_lf))
    );
    assert_eq!(
        text_of(&s, "SELECT up_sql FROM _backstop_migrations"),
        Some(up_lf.into())
    );
    // The same file with LF endings and no BOM is the same migration.
    s.migration("1_a.sql", A);
    assert_eq!(states(&s), st(&[(1, "applied")]));
}

#[test]
fn tracking_row_holds_sha256_of_up_text_the_text_and_the_down_checksum() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A).migration("2_b.sql", B);
    s.run(&["up"]).code(0);
    let conn = s.conn();
    let mut stmt = conn
        .prepare(
            "SELECT version, name, checksum, up_sql, down_checksum, applied_at, duration_ms,
                    rows_changed, run_id FROM _backstop_migrations ORDER BY CAST(version AS INTEGER)",
        )
        .expect("tracking columns");
    #[allow(clippy::type_complexity)]
    let rows: Vec<(
        String,
        String,
        String,
        String,
        Option<String>,
        String,
        i64,
        i64,
        Option<i64>,
    )> = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
            ))
        })
        .expect("query")
        .map(|r| r.expect("row"))
        .collect();
    assert_eq!(rows.len(), 2);
    let expected = [
        (
            "1",
            "a",
            "CREATE TABLE a (id INTEGER PRIMARY KEY, x TEXT);\n",
            "DROP TABLE a;\n",
            0,
        ),
        (
            "2",
            "b",
            "INSERT INTO a (x) VALUES ('one;two');\nINSERT INTO a (x) VALUES ('three');\n",
            "DELETE FROM a;\n",
            2,
        ),
    ];
    let run_ids: Vec<Option<i64>> = rows.iter().map(|r| r.8).collect();
    for (row, (version, name, up, down, changed)) in rows.iter().zip(expected) {
        assert_eq!(row.0, version);
        assert_eq!(row.1, name);
        assert_eq!(row.2, sha(up), "checksum of {version}");
        assert_eq!(row.2.len(), 64);
        assert!(row
            .2
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(row.3, up);
        assert_eq!(row.4.as_deref(), Some(sha(down).as_str()));
        let at = chrono::DateTime::parse_from_rfc3339(&row.5).expect("applied_at is RFC 3339");
        assert_eq!(
            at.offset().local_minus_utc(),
            0,
            "applied_at is UTC: {}",
            row.5
        );
        assert!(row.6 >= 0);
        assert_eq!(row.7, changed, "rows changed by {version}");
    }
    // Both came from the same run, which is recorded.
    assert!(run_ids[0].is_some());
    assert_eq!(run_ids[0], run_ids[1]);
    assert_eq!(
        s.query_i64(&format!(
            "SELECT count(*) FROM _backstop_runs WHERE id = {}",
            run_ids[0].unwrap_or(-1)
        )),
        1
    );
}

// ---------------------------------------------------------------------------
// Transaction-hostile statements

#[track_caller]
fn hostile_is_refused(statement: &str, keyword: &str) {
    let text =
        format!("-- migrate:up\nCREATE TABLE h (x);\n{statement}\nINSERT INTO h VALUES (1);\n");
    // On an existing database: byte-identical, no backup taken.
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s.run(&["up"]).code(0);
    s.migration("2_hostile.sql", &text);
    let out = refused(
        &s,
        &["up"],
        &["2_hostile.sql:3", "transaction:false", keyword],
    );
    assert_eq!(s.backups().len(), 1, "{}", out.stderr);
    assert_eq!(s.applied(), vec![1]);
    assert!(!s.table_exists("h"));
    assert!(!s.path().join("other.db").exists(), "ATTACH touched a file");
    // On a fresh project: the database is not even created.
    let s = Sandbox::new();
    s.migration("2_hostile.sql", &text);
    refused(&s, &["up"], &["2_hostile.sql:3", "transaction:false"]);
    assert!(!s.db().exists(), "{}", s.listing());
    assert!(s.backups().is_empty());
    assert!(!s.path().join("other.db").exists(), "ATTACH touched a file");
}

#[test]
fn begin_in_a_transactional_migration_is_refused_before_anything_runs() {
    hostile_is_refused("BEGIN;", "BEGIN");
}

#[test]
fn commit_in_a_transactional_migration_is_refused_before_anything_runs() {
    hostile_is_refused("COMMIT;", "COMMIT");
}

#[test]
fn vacuum_in_a_transactional_migration_is_refused_before_anything_runs() {
    hostile_is_refused("VACUUM;", "VACUUM");
}

#[test]
fn attach_in_a_transactional_migration_is_refused_before_anything_runs() {
    hostile_is_refused("ATTACH 'other.db' AS other;", "ATTACH");
}

#[test]
fn journal_mode_pragma_in_a_transactional_migration_is_refused_before_anything_runs() {
    hostile_is_refused("PRAGMA journal_mode=WAL;", "journal_mode");
}

#[test]
fn hostile_words_in_comments_and_strings_are_not_refused() {
    let s = Sandbox::new();
    s.migration(
        "1_words.sql",
        "-- migrate:up\n\
         -- BEGIN; VACUUM; COMMIT;\n\
         /* ATTACH 'x.db' AS x; PRAGMA journal_mode=WAL; END; */\n\
         CREATE TABLE note (body TEXT DEFAULT 'BEGIN; COMMIT; VACUUM;');\n\
         INSERT INTO note VALUES ('ATTACH ''y.db'' AS y; PRAGMA journal_mode=WAL; ROLLBACK;');\n\
         CREATE TRIGGER note_ai AFTER INSERT ON note BEGIN SELECT 1; END;\n\
         -- migrate:down\nDROP TABLE note;\n",
    );
    s.run(&["up"]).code(0);
    assert_eq!(s.applied(), vec![1]);
    assert_eq!(
        text_of(&s, "SELECT body FROM note"),
        Some("ATTACH 'y.db' AS y; PRAGMA journal_mode=WAL; ROLLBACK;".into())
    );
    assert_eq!(text_of(&s, "PRAGMA journal_mode"), Some("delete".into()));
    assert!(!s.path().join("x.db").exists());
    assert!(!s.path().join("y.db").exists());
}

#[test]
fn transaction_false_runs_vacuum_and_journal_mode_and_is_recorded() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A).migration(
        "2_maintenance.sql",
        "-- migrate:up transaction:false\nVACUUM;\nPRAGMA journal_mode=WAL;\n",
    );
    s.run(&["up"]).code(0);
    assert_eq!(s.applied(), vec![1, 2]);
    assert_eq!(text_of(&s, "PRAGMA journal_mode"), Some("wal".into()));
    assert_eq!(
        text_of(
            &s,
            "SELECT outcome FROM _backstop_runs ORDER BY id DESC LIMIT 1"
        ),
        Some("ok".into())
    );
    assert_eq!(states(&s), st(&[(1, "applied"), (2, "applied")]));
}

// ---------------------------------------------------------------------------
// Statements split by SQLite

#[test]
fn trigger_bodies_and_strings_with_semicolons_apply_correctly() {
    let s = Sandbox::new();
    s.migration(
        "1_trigger.sql",
        "-- migrate:up\n\
         CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT);\n\
         CREATE TABLE audit (msg TEXT);\n\
         CREATE TRIGGER item_ai AFTER INSERT ON item\n\
         BEGIN\n\
           INSERT INTO audit VALUES ('inserted; ' || NEW.name);\n\
           INSERT INTO audit VALUES ('second; statement;');\n\
         END;\n\
         INSERT INTO item (name) VALUES ('a;b'), ('c');\n\
         INSERT INTO item (name) VALUES (';');INSERT INTO item (name) VALUES ('d')\n",
    );
    s.run(&["up"]).code(0);
    assert_eq!(s.query_i64("SELECT count(*) FROM item"), 4);
    assert_eq!(s.query_i64("SELECT count(*) FROM audit"), 8);
    assert_eq!(
        s.query_i64("SELECT count(*) FROM audit WHERE msg = 'inserted; a;b'"),
        1
    );
    assert_eq!(
        s.query_i64("SELECT count(*) FROM audit WHERE msg = 'second; statement;'"),
        4
    );
    assert_eq!(
        s.query_i64(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND name = 'item_ai'"
        ),
        1
    );
}

// ---------------------------------------------------------------------------
// Foreign keys

const FAMILY: &str = "-- migrate:up\n\
    CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT);\n\
    CREATE TABLE child (id INTEGER PRIMARY KEY,\n  parent_id INTEGER NOT NULL REFERENCES parent(id) ON DELETE CASCADE);\n\
    INSERT INTO parent VALUES (1, 'one'), (2, 'two');\n\
    INSERT INTO child VALUES (10, 1), (11, 1), (12, 2);\n\
    -- migrate:down\nDROP TABLE child;\nDROP TABLE parent;\n";

const REBUILD: &str = "-- migrate:up\n\
    PRAGMA foreign_keys=ON;\n\
    CREATE TABLE parent_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL DEFAULT '', extra TEXT);\n\
    INSERT INTO parent_new (id, name) SELECT id, name FROM parent;\n\
    DROP TABLE parent;\n\
    ALTER TABLE parent_new RENAME TO parent;\n";

#[test]
fn table_rebuild_of_a_parent_does_not_cascade_into_children() {
    let s = Sandbox::new();
    s.migration("1_family.sql", FAMILY);
    s.run(&["up"]).code(0);
    s.migration("2_rebuild_parent.sql", REBUILD);
    s.run(&["up", "--yes"]).code(0);
    assert_eq!(s.applied(), vec![1, 2]);
    assert_eq!(
        s.query_i64("SELECT count(*) FROM child"),
        3,
        "cascade emptied child"
    );
    assert_eq!(s.query_i64("SELECT count(*) FROM parent"), 2);
    assert_eq!(
        s.query_i64("SELECT count(*) FROM pragma_table_info('parent') WHERE name = 'extra'"),
        1
    );
    assert_eq!(
        s.query_i64("SELECT count(*) FROM pragma_foreign_key_check"),
        0
    );
}

#[test]
fn table_rebuild_in_the_same_run_as_the_data_does_not_cascade() {
    let s = Sandbox::new();
    s.migration("1_family.sql", FAMILY)
        .migration("2_rebuild_parent.sql", REBUILD);
    s.run(&["up"]).code(0);
    assert_eq!(s.applied(), vec![1, 2]);
    assert_eq!(s.query_i64("SELECT count(*) FROM child"), 3);
}

#[test]
fn migration_that_orphans_child_rows_is_rolled_back_naming_the_table() {
    let s = Sandbox::new();
    s.migration("1_family.sql", FAMILY);
    s.run(&["up"]).code(0);
    s.migration(
        "2_drop_parent_one.sql",
        "-- migrate:up\nUPDATE parent SET name = 'renamed' WHERE id = 2;\nDELETE FROM parent WHERE id = 1;\n",
    );
    let out = s.run(&["up"]);
    out.code(1)
        .stderr_has("2_drop_parent_one.sql")
        .stderr_has("child")
        .stderr_has("parent")
        .stderr_has("foreign_keys:on");
    assert_eq!(s.applied(), vec![1]);
    assert_eq!(s.query_i64("SELECT count(*) FROM parent"), 2);
    assert_eq!(s.query_i64("SELECT count(*) FROM child"), 3);
    assert_eq!(
        text_of(&s, "SELECT name FROM parent WHERE id = 2"),
        Some("two".into())
    );
    assert_eq!(states(&s), st(&[(1, "applied"), (2, "pending")]));
}

#[test]
fn foreign_keys_on_marker_fires_cascades_and_commits() {
    let s = Sandbox::new();
    s.migration("1_family.sql", FAMILY);
    s.run(&["up"]).code(0);
    s.migration(
        "2_cascade.sql",
        "-- migrate:up foreign_keys:on\nDELETE FROM parent WHERE id = 1;\n",
    );
    s.run(&["up"]).code(0);
    assert_eq!(s.applied(), vec![1, 2]);
    assert_eq!(s.query_i64("SELECT count(*) FROM parent"), 1);
    assert_eq!(
        s.query_i64("SELECT count(*) FROM child"),
        1,
        "cascade did not fire"
    );
    assert_eq!(s.query_i64("SELECT id FROM child"), 12);
}

// ---------------------------------------------------------------------------
// Atomicity and the run log

const THIRD_FAILS: &str = "-- migrate:up\n\
    CREATE TABLE t2 (id INTEGER PRIMARY KEY);\n\
    INSERT INTO a (x) VALUES ('from 2');\n\
    -- the next statement fails\n\
    INSERT INTO a (id, x)\n  VALUES (1, 'duplicate id');\n\
    INSERT INTO a (x) VALUES ('never');\n";

#[test]
fn a_failing_third_statement_leaves_nothing_of_its_migration_and_keeps_earlier_ones() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A)
        .migration(
            "2_seed.sql",
            "-- migrate:up\nINSERT INTO a (id, x) VALUES (1, 'seed');\n",
        )
        .migration("3_fails.sql", THIRD_FAILS)
        .migration("4_after.sql", "CREATE TABLE after_four (x);\n");
    let out = s.run(&["up"]);
    out.code(1)
        .stderr_has("3_fails.sql:5")
        .stderr_has("UNIQUE constraint failed: a.id")
        // No terminal and no --on-failure: keep, and print the restore command.
        .stderr_has("kept")
        .stderr_has("at version 2")
        .stderr_has("backstop restore");
    assert_eq!(s.applied(), vec![1, 2]);
    assert!(
        !s.table_exists("t2"),
        "first statement of the failed migration survived"
    );
    assert_eq!(
        s.query_i64("SELECT count(*) FROM a"),
        1,
        "second statement survived"
    );
    assert!(!s.table_exists("after_four"), "a later migration ran");
    assert_eq!(
        states(&s),
        st(&[
            (1, "applied"),
            (2, "applied"),
            (3, "pending"),
            (4, "pending")
        ])
    );
    // The pre-run backup is still there to undo the whole run.
    assert_eq!(s.backups().len(), 1);
}

#[test]
fn successful_run_is_logged_with_differing_schema_hashes() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A).migration("2_b.sql", B);
    s.run(&["up"]).code(0);
    assert_eq!(s.query_i64("SELECT count(*) FROM _backstop_runs"), 1);
    let col = |c: &str| text_of(&s, &format!("SELECT {c} FROM _backstop_runs"));
    assert_eq!(col("command").as_deref(), Some("up"));
    assert_eq!(col("outcome").as_deref(), Some("ok"));
    let before = col("schema_before").expect("schema_before");
    let after = col("schema_after").expect("schema_after");
    assert_eq!(before.len(), 64);
    assert_eq!(after.len(), 64);
    assert_ne!(before, after);
    assert!(col("finished_at").is_some());
    assert!(col("backup")
        .expect("backup recorded")
        .contains("before-up"));
    assert_eq!(col("error"), None);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&col("migrations").expect("migrations"))
            .expect("json"),
        serde_json::json!(["1", "2"])
    );
    // A run that changes nothing is not recorded.
    s.run(&["up"]).code(0);
    assert_eq!(s.query_i64("SELECT count(*) FROM _backstop_runs"), 1);
}

#[test]
fn failed_run_is_logged_with_outcome_failed_and_the_error() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A).migration(
        "2_bad.sql",
        "-- migrate:up\nINSERT INTO a (x) VALUES ('ok');\nSELECT abs(-9223372036854775808);\n",
    );
    s.run(&["up"]).code(1);
    let (outcome, error, migrations): (String, Option<String>, String) = s
        .conn()
        .query_row(
            "SELECT outcome, error, migrations FROM _backstop_runs ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("run row");
    assert_eq!(outcome, "failed");
    let error = error.expect("error text");
    assert!(error.contains("integer overflow"), "{error}");
    assert!(error.contains("2_bad.sql"), "{error}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&migrations).expect("json"),
        serde_json::json!(["1"])
    );
    assert_eq!(s.query_i64("SELECT count(*) FROM _backstop_runs"), 1);
}

#[test]
fn failed_first_migration_on_a_new_database_is_logged_with_unchanged_schema() {
    let s = Sandbox::new();
    s.migration(
        "1_bad.sql",
        "CREATE TABLE early (x);\nSELECT abs(-9223372036854775808);\n",
    );
    s.run(&["up"]).code(1).stderr_has("1_bad.sql:2");
    assert_eq!(s.applied(), Vec::<u64>::new());
    assert!(!s.table_exists("early"));
    let (outcome, before, after): (String, Option<String>, Option<String>) = s
        .conn()
        .query_row(
            "SELECT outcome, schema_before, schema_after FROM _backstop_runs",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("one run row");
    assert_eq!(outcome, "failed");
    assert!(before.is_some());
    assert_eq!(before, after);
}

// ---------------------------------------------------------------------------
// The database file: locked, not a database, empty, created

#[test]
fn locked_database_exits_4_naming_the_file_and_stays_unchanged() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s.run(&["up"]).code(0);
    s.migration("2_b.sql", B);
    let before = file_hash(&s.db());
    let backups = s.backup_files();

    let holder = s.conn();
    holder
        .execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");
    let t0 = std::time::Instant::now();
    let out = s.run(&["up", "--busy-timeout-ms", "300"]);
    let took = t0.elapsed();
    out.code(4).stderr_has("dev.db").stderr_has("locked");
    assert!(took < std::time::Duration::from_secs(3), "took {took:?}");
    holder.execute_batch("ROLLBACK").expect("release");
    drop(holder);

    assert_eq!(file_hash(&s.db()), before);
    assert_eq!(s.backup_files(), backups);
    assert_eq!(s.applied(), vec![1]);
    // Once released, the same command goes through.
    s.run(&["up", "--busy-timeout-ms", "300"]).code(0);
    assert_eq!(s.applied(), vec![1, 2]);
}

#[test]
fn exclusive_lock_makes_status_and_up_exit_4() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s.run(&["up"]).code(0);
    s.migration("2_b.sql", B);
    let before = file_hash(&s.db());
    let holder = s.conn();
    holder
        .execute_batch("BEGIN EXCLUSIVE")
        .expect("exclusive lock");
    s.run(&["up", "--busy-timeout-ms", "200"])
        .code(4)
        .stderr_has("dev.db")
        .stderr_has("locked");
    s.run(&["status", "--busy-timeout-ms", "200"])
        .code(4)
        .stderr_has("dev.db");
    holder.execute_batch("ROLLBACK").expect("release");
    drop(holder);
    assert_eq!(file_hash(&s.db()), before);
    assert_eq!(s.applied(), vec![1]);
}

#[test]
fn open_reader_blocking_commit_exits_4_not_as_a_failed_migration() {
    // A reader's open transaction (an app mid-query) lets `BEGIN IMMEDIATE`
    // through but blocks COMMIT: the database is locked, the migration is fine.
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s.run(&["up"]).code(0);
    s.migration("2_b.sql", B);
    let before = file_hash(&s.db());
    let reader = s.conn();
    reader.execute_batch("BEGIN").expect("begin");
    let n: i64 = reader
        .query_row("SELECT count(*) FROM a", [], |r| r.get(0))
        .expect("read");
    assert_eq!(n, 0);
    let t0 = std::time::Instant::now();
    let out = s.run(&["up", "--busy-timeout-ms", "300"]);
    assert!(t0.elapsed() < std::time::Duration::from_secs(5));
    out.code(4).stderr_has("dev.db").stderr_has("locked");
    assert!(!out.stderr.contains("fix the migration"), "{}", out.stderr);
    reader.execute_batch("COMMIT").expect("end read");
    drop(reader);
    assert_eq!(
        file_hash(&s.db()),
        before,
        "a locked run changed the database"
    );
    assert_eq!(s.applied(), vec![1]);
    s.run(&["up"]).code(0);
    assert_eq!(s.applied(), vec![1, 2]);
}

#[test]
fn file_that_is_not_a_sqlite_database_exits_4_and_stays_byte_identical() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s.write(
        "notes.db",
        "these are my notes, not a database\n".repeat(40),
    );
    let path = s.path().join("notes.db");
    let before = file_hash(&path);
    s.run(&["up", "-d", "notes.db"])
        .code(4)
        .stderr_has("notes.db")
        .stderr_has("not a SQLite database");
    assert_eq!(file_hash(&path), before);
    s.run(&["status", "-d", "notes.db"])
        .code(4)
        .stderr_has("notes.db");
    s.run(&["status", "--json", "-d", "notes.db"]).code(4);
    assert_eq!(file_hash(&path), before);
    assert!(s.backup_files().is_empty(), "{}", s.listing());
    assert!(!s.path().join("notes.db-journal").exists());
}

#[test]
fn empty_file_is_a_valid_empty_database() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A).migration("2_b.sql", B);
    s.write("empty.db", "");
    s.run(&["status", "-d", "empty.db"])
        .code(0)
        .stdout_has("pending");
    s.run(&["up", "-d", "empty.db"]).code(0);
    let conn = rusqlite::Connection::open(s.path().join("empty.db")).expect("open");
    assert_eq!(
        conn.query_row("SELECT count(*) FROM a", [], |r| r.get::<_, i64>(0))
            .expect("a"),
        2
    );
    assert_eq!(
        conn.query_row("SELECT count(*) FROM _backstop_migrations", [], |r| r
            .get::<_, i64>(0))
            .expect("tracking"),
        2
    );
}

#[test]
fn up_creates_the_database_when_its_folder_exists_and_says_so() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    assert!(!s.db().exists());
    s.run(&["up"]).code(0).stderr_has("created");
    assert!(s.db().exists());
    assert_eq!(s.applied(), vec![1]);
    // In a subfolder that exists, too.
    std::fs::create_dir(s.path().join("data")).expect("mkdir");
    s.run(&["up", "-d", "data/app.db"])
        .code(0)
        .stderr_has("created");
    assert!(s.path().join("data/app.db").exists());
}

#[test]
fn up_refuses_to_create_a_database_in_a_missing_folder() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    let listing = s.listing();
    s.run(&["up", "-d", "nowhere/deeper/app.db"])
        .code(4)
        .stderr_has("nowhere/deeper/app.db")
        .stderr_has("does not exist");
    assert!(!s.path().join("nowhere").exists());
    assert!(!s.backups_dir().exists(), "{}", s.listing());
    assert_eq!(s.listing(), listing);
}

// ---------------------------------------------------------------------------
// `new`

/// Checks a path printed by `new` and returns the file's text.
#[track_caller]
fn check_new_path(s: &Sandbox, printed: &str, slug: &str) -> String {
    let printed = printed.trim();
    let file = printed
        .strip_prefix("migrations/")
        .unwrap_or_else(|| panic!("not under migrations/: {printed}"));
    let (stamp, rest) = file.split_once('_').expect("version_name");
    assert_eq!(rest, format!("{slug}.sql"));
    assert_eq!(stamp.len(), 14, "{stamp}");
    assert!(stamp.bytes().all(|b| b.is_ascii_digit()), "{stamp}");
    let at = chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%d%H%M%S")
        .expect("timestamp")
        .and_utc();
    let age = chrono::Utc::now().signed_duration_since(at);
    assert!(
        age >= chrono::Duration::seconds(-10) && age <= chrono::Duration::seconds(120),
        "{stamp} is not the current UTC time"
    );
    std::fs::read_to_string(s.path().join(printed)).expect("the printed file exists")
}

#[test]
fn new_creates_a_timestamped_file_with_markers_that_is_then_pending() {
    let s = Sandbox::new();
    let out = s.run(&["new", "add_users"]);
    out.code(0);
    let text = check_new_path(&s, &out.stdout, "add_users");
    assert!(text.lines().any(|l| l.trim() == "-- migrate:up"), "{text}");
    assert!(
        text.lines().any(|l| l.trim() == "-- migrate:down"),
        "{text}"
    );
    let j = s.run(&["status", "--json"]).code(0).json();
    assert_eq!(j["migrations"][0]["state"], "pending");
    assert_eq!(j["migrations"][0]["name"], "add_users");
    s.run(&["status", "--exit-code"]).code(3);
    // The empty migration applies.
    s.run(&["up"]).code(0);
    s.run(&["status", "--exit-code"]).code(0);
}

#[test]
fn new_turns_spaces_into_underscores() {
    let s = Sandbox::new();
    let out = s.run(&["new", "add index on email"]);
    out.code(0);
    check_new_path(&s, &out.stdout, "add_index_on_email");
}

#[test]
fn new_creates_the_migrations_folder_if_needed() {
    let s = Sandbox::new();
    std::fs::remove_dir(s.path().join("migrations")).expect("rmdir");
    let out = s.run(&["new", "first"]);
    out.code(0);
    check_new_path(&s, &out.stdout, "first");
}

#[test]
fn hostile_statement_after_one_that_only_fails_without_rows_is_still_refused() {
    // The pre-run check replays statements on a copy of the schema without
    // rows: `max(x)` is NULL there, so the INSERT fails on the copy only. The
    // VACUUM after it must still be found before the backup and the run.
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s.run(&["up"]).code(0);
    s.conn()
        .execute_batch("INSERT INTO a (x) VALUES ('real row')")
        .expect("insert");
    s.migration(
        "2_b.sql",
        "-- migrate:up\nCREATE TABLE n (v NOT NULL);\nINSERT INTO n SELECT max(x) FROM a;\nVACUUM;\n",
    );
    refused(&s, &["up"], &["2_b.sql:4", "VACUUM", "transaction:false"]);
    assert_eq!(s.backups().len(), 1);
    assert_eq!(s.applied(), vec![1]);
}

#[test]
fn new_twice_in_the_same_second_never_shares_a_version() {
    let s = Sandbox::new();
    // Three in a row, the same name twice: each gets its own version (the next
    // free second), so the folder stays valid.
    let paths: Vec<String> = ["first", "second", "first"]
        .iter()
        .map(|n| s.run(&["new", n]).code(0).stdout.trim().to_owned())
        .collect();
    let versions: std::collections::BTreeSet<&str> = paths
        .iter()
        .map(|p| {
            p.trim_start_matches("migrations/")
                .split('_')
                .next()
                .expect("version")
        })
        .collect();
    assert_eq!(versions.len(), 3, "{paths:?}");
    for p in &paths {
        assert!(s.path().join(p).exists(), "{p}");
    }
    let j = s.run(&["status", "--json"]).code(0).json();
    assert_eq!(j["counts"]["pending"], 3);
}

#[test]
fn failure_in_a_transaction_false_migration_does_not_claim_a_rollback() {
    // Outside a transaction nothing can be rolled back: the message must not
    // say it was, and must point at the backup.
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s.run(&["up"]).code(0);
    s.migration(
        "2_loose.sql",
        "-- migrate:up transaction:false\nINSERT INTO a (x) VALUES ('stays');\nSELECT abs(-9223372036854775808);\n",
    );
    let out = s.run(&["up"]);
    out.code(1)
        .stderr_has("2_loose.sql:3")
        .stderr_has("integer overflow")
        .stderr_has("NOT rolled back")
        .stderr_has("partly applied")
        .stderr_has("backstop restore");
    assert!(
        !out.stderr.contains("nothing of this run was applied"),
        "{}",
        out.stderr
    );
    assert_eq!(s.query_i64("SELECT count(*) FROM a"), 1);
    assert_eq!(s.applied(), vec![1]);
}

#[test]
fn orphans_left_by_a_transaction_false_migration_are_reported_without_claiming_a_rollback() {
    let s = Sandbox::new();
    s.migration("1_family.sql", FAMILY);
    s.run(&["up"]).code(0);
    s.migration(
        "2_loose.sql",
        "-- migrate:up transaction:false\nDELETE FROM parent WHERE id = 1;\n",
    );
    let out = s.run(&["up"]);
    out.code(1)
        .stderr_has("2_loose.sql")
        .stderr_has("child")
        .stderr_has("NOT rolled back");
    assert!(!out.stderr.contains("; rolled back"), "{}", out.stderr);
    assert_eq!(s.applied(), vec![1]);
}

#[test]
fn non_utf8_file_name_ending_in_sql_is_refused() {
    use std::os::unix::ffi::OsStrExt;
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    let name = std::ffi::OsStr::from_bytes(b"2_caf\xe9.sql");
    std::fs::write(s.path().join("migrations").join(name), B).expect("write");
    let out = refused(&s, &["up"], &["2_caf"]);
    assert!(!s.db().exists(), "{}", out.stderr);
}

#[test]
fn text_before_the_up_marker_is_refused() {
    refused_files(
        &[(
            "2_b.sql",
            b"-- a comment is fine\nINSERT INTO a (x) VALUES ('x');\n-- migrate:up\nINSERT INTO a (x) VALUES ('y');\n",
        )],
        &["2_b.sql:3", "before the up marker"],
    );
}

#[test]
fn down_file_without_up_file_is_refused() {
    refused_files(&[("2_b.down.sql", b"DELETE FROM a;\n")], &["2_b.down.sql"]);
}

#[test]
fn failing_line_is_a_file_line_in_crlf_and_goose_files() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A).migration(
        "2_crlf.sql",
        &crlf("-- migrate:up\r\nINSERT INTO a (x) VALUES ('1');\n\n/* two\nlines */\nSELECT abs(-9223372036854775808);\n"),
    );
    s.run(&["up"])
        .code(1)
        .stderr_has("2_crlf.sql:6")
        .stderr_has("integer overflow");
    s.remove("migrations/2_crlf.sql");
    s.migration(
        "2_goose.sql",
        "-- +goose Up\n-- +goose StatementBegin\nINSERT INTO a (x) VALUES ('1');\n-- +goose StatementEnd\n-- +goose StatementBegin\nINSERT INTO a (id, x)\nVALUES (1, 'dup');\n-- +goose StatementEnd\n-- +goose Down\nDELETE FROM a;\n",
    );
    s.conn()
        .execute_batch("INSERT INTO a (id, x) VALUES (1, 'taken')")
        .expect("seed");
    s.run(&["up"])
        .code(1)
        .stderr_has("2_goose.sql:6")
        .stderr_has("UNIQUE constraint failed");
    assert_eq!(s.applied(), vec![1]);
    assert_eq!(s.query_i64("SELECT count(*) FROM a"), 1);
}

#[test]
fn new_child_table_with_dangling_references_is_rolled_back() {
    let s = Sandbox::new();
    s.migration("1_family.sql", FAMILY);
    s.run(&["up"]).code(0);
    s.migration(
        "2_pets.sql",
        "-- migrate:up\nCREATE TABLE pet (id INTEGER PRIMARY KEY, owner INTEGER REFERENCES parent(id));\nINSERT INTO pet VALUES (1, 1), (2, 99);\n",
    );
    s.run(&["up"])
        .code(1)
        .stderr_has("pet")
        .stderr_has("2_pets.sql");
    assert!(!s.table_exists("pet"));
    assert_eq!(s.applied(), vec![1]);
}

#[test]
fn upper_case_sql_extension_is_a_migration_not_skipped() {
    let s = Sandbox::new();
    s.migration("1_a.SQL", "CREATE TABLE a(x);\n")
        .migration("2_b.Sql", "CREATE TABLE b(x);\n");
    s.run(&["up"]).code(0);
    assert_eq!(s.applied(), vec![1, 2]);
    s.migration("notaversion.SQL", "SELECT 1;\n");
    s.run(&["status"]).code(3).stderr_has("notaversion.SQL");
}

#[test]
fn a_run_that_never_finished_is_logged_as_interrupted_with_what_it_committed() {
    let s = Sandbox::new();
    s.migration("1_a.sql", "CREATE TABLE a(x);\n")
        .migration("2_b.sql", "CREATE TABLE b(x);\n");
    s.run(&["up"]).code(0);
    // What a SIGKILL between two migrations leaves: the run row as it was
    // inserted with the first migration, never finished.
    s.conn()
        .execute_batch(
            "UPDATE _backstop_runs SET finished_at = NULL, outcome = 'running', migrations = '[]';",
        )
        .unwrap();
    let doc = s.run(&["log", "--json"]).code(0).json();
    assert_eq!(doc["runs"][0]["outcome"], "interrupted");
    assert_eq!(doc["runs"][0]["migrations"], serde_json::json!(["1", "2"]));
    s.run(&["log"])
        .code(0)
        .stdout_has("interrupted (process ended)");
}

#[test]
fn rollback_in_a_transactional_migration_is_refused_before_anything_runs() {
    hostile_is_refused("ROLLBACK;", "ROLLBACK");
}

#[test]
fn end_in_a_transactional_migration_is_refused_before_anything_runs() {
    hostile_is_refused("END;", "COMMIT");
}

#[test]
fn detach_in_a_transactional_migration_is_refused_before_anything_runs() {
    hostile_is_refused("DETACH other;", "DETACH");
}

#[test]
fn orphan_rows_are_named_with_their_rowids_and_why_cascades_did_not_fire() {
    let s = Sandbox::new();
    s.migration("1_family.sql", FAMILY);
    s.run(&["up"]).code(0);
    s.migration(
        "2_drop_parent_one.sql",
        "-- migrate:up\nDELETE FROM parent WHERE id = 1;\n",
    );
    s.run(&["up"])
        .code(1)
        .stderr_has("2 row(s) whose parent is missing")
        .stderr_has("child rowid 10")
        .stderr_has("child rowid 11")
        .stderr_has("ON DELETE CASCADE does not fire");
    assert_eq!(s.query_i64("SELECT count(*) FROM parent"), 2);
}
