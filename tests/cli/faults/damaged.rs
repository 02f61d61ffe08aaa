//! Database files that are not (whole) databases: `status` and `up` refuse
//! them with exit 4 and leave every byte as it was (SPEC "Exit codes", "Safety
//! properties"). An empty file is a valid empty database.

use super::{clean_failure, Rng};
use crate::sandbox::{file_hash, Sandbox};

const M1: &str =
    "CREATE TABLE a (id INTEGER PRIMARY KEY, x TEXT);\nINSERT INTO a (x) VALUES ('one');\n";
const M2: &str = "CREATE TABLE b (id INTEGER PRIMARY KEY, y BLOB);\n\
    INSERT INTO b (y) WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < 400)\n\
    SELECT randomblob(500) FROM n;\n";
const M3: &str = "CREATE INDEX a_x ON a (x);\n";

/// The bytes of a real database with migrations 1 and 2 applied.
fn real_database() -> Vec<u8> {
    let s = Sandbox::new();
    s.migration("1_a.sql", M1).migration("2_b.sql", M2);
    s.run(&["up"]).code(0);
    std::fs::read(s.db()).expect("read db")
}

/// Puts `bytes` in place as dev.db with migration 3 pending; `status` and `up`
/// must exit 4, say `error:` naming the file, and change nothing.
#[track_caller]
fn refused(what: &str, bytes: &[u8]) {
    let s = Sandbox::new();
    s.migration("1_a.sql", M1)
        .migration("2_b.sql", M2)
        .migration("3_c.sql", M3);
    s.write("dev.db", bytes);
    let before = file_hash(&s.db());
    for args in [&["status"][..], &["up"][..], &["up", "--yes"][..]] {
        let out = s.run(args);
        clean_failure(&out, what);
        assert_eq!(
            out.code, 4,
            "{what}: `{}` exited {} (expected 4):\n{}",
            out.command, out.code, out.stderr
        );
        out.stderr_has("dev.db");
        assert_eq!(
            file_hash(&s.db()),
            before,
            "{what}: `{}` changed the file",
            out.command
        );
        let leftovers: Vec<String> = std::fs::read_dir(s.path())
            .expect("read dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("dev.db-"))
            .collect();
        assert!(leftovers.is_empty(), "{what}: left {leftovers:?}");
        assert!(s.backups().is_empty(), "{what}: backed up a damaged file");
    }
}

#[test]
fn an_empty_file_is_an_empty_database_and_up_works() {
    let s = Sandbox::new();
    s.migration("1_a.sql", M1);
    s.write("dev.db", b"");
    s.run(&["status"]).code(0).stdout_has("pending");
    s.run(&["up"]).code(0);
    assert_eq!(s.applied(), vec![1]);
    assert_eq!(s.query_i64("SELECT count(*) FROM a"), 1);
    // And a missing one is created again (its folder exists).
    s.remove("dev.db");
    s.run(&["up"]).code(0).stderr_has("dev.db");
    assert_eq!(s.applied(), vec![1]);
}

#[test]
fn a_database_truncated_to_half_is_refused_untouched() {
    let bytes = real_database();
    assert!(bytes.len() > 8 * 4096, "the database is too small to cut");
    refused("cut to half", &bytes[..bytes.len() / 2]);
}

#[test]
fn a_database_truncated_to_50_bytes_is_refused_untouched() {
    refused("cut to 50 bytes", &real_database()[..50]);
}

/// SQLite itself refuses a file shorter than its header's page count, but
/// counts a partial last page as whole: a file cut inside its last page was
/// backed up as "verified" and migrated (the bug this test found).
#[test]
fn a_database_cut_inside_its_last_page_is_refused_untouched() {
    let bytes = real_database();
    refused("cut by 1 byte", &bytes[..bytes.len() - 1]);
    refused("cut by 100 bytes", &bytes[..bytes.len() - 100]);
}

/// Seeded random cut points anywhere in the file.
#[test]
fn a_database_cut_anywhere_is_refused_untouched() {
    let mut rng = Rng::for_test("cut points");
    let bytes = real_database();
    let points = super::size(4, 200);
    for k in 0..points {
        let cut = 1 + rng.below(bytes.len() as u64 - 1) as usize;
        refused(
            &format!(
                "seed {:#x}, cut point {k}: {cut} of {} bytes",
                super::seed(),
                bytes.len()
            ),
            &bytes[..cut],
        );
    }
    eprintln!("truncation: {points} random cut points refused");
}

#[test]
fn random_bytes_are_refused_untouched() {
    let mut rng = Rng::for_test("random bytes");
    let bytes: Vec<u8> = (0..64 * 1024).map(|_| rng.next() as u8).collect();
    refused("random bytes", &bytes);
}

#[test]
fn a_valid_header_followed_by_garbage_is_refused_untouched() {
    let mut rng = Rng::for_test("header + garbage");
    let mut bytes = real_database();
    for b in &mut bytes[100..] {
        *b = rng.next() as u8;
    }
    refused("valid header + garbage", &bytes);
}
