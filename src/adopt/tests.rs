//! Each tool's table built the way the tool builds it (column types and the
//! rows it writes, from the sources cited in each module), read back.

use std::path::Path;

use rusqlite::Connection;

use super::reading::Kept;
use super::*;
use crate::migration::{Options, Section, Version};
use crate::source::Layout;

/// A migration whose file is `dir/name` with `text` (written to disk: the
/// tools' checksums are of the file's bytes).
fn file(dir: &Path, name: &str, version: Version, text: &str) -> Migration {
    let path = dir.join(name);
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).unwrap();
    }
    std::fs::write(&path, text).unwrap();
    Migration::new(
        version,
        name.into(),
        Section {
            path,
            text: text.into(),
            first_line: 1,
            options: Options::default(),
        },
        None,
    )
}

fn num(n: u64) -> Version {
    Version::number(n, &n.to_string())
}

fn applied(tool: Tool, conn: &Connection, files: &[Migration], dir: &Path) -> Vec<(String, Kept)> {
    let r = tool.read(conn, files, dir).unwrap();
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    r.applied
        .iter()
        .map(|c| (files[c.file].version.id().to_owned(), c.checksum))
        .collect()
}

#[test]
fn goose_latest_row_per_version_decides() {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        file(dir.path(), "00001_a.sql", num(1), "SELECT 1;"),
        file(dir.path(), "00002_b.sql", num(2), "SELECT 2;"),
        file(dir.path(), "00003_c.sql", num(3), "SELECT 3;"),
    ];
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(
        "CREATE TABLE goose_db_version (
            id INTEGER PRIMARY KEY AUTOINCREMENT, version_id INTEGER NOT NULL,
            is_applied INTEGER NOT NULL, tstamp TIMESTAMP DEFAULT (datetime('now')));
         INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, 1), (1, 1), (2, 1), (3, 1), (3, 0);",
    )
    .unwrap();
    assert!(Tool::Goose.present(&conn).unwrap());
    assert_eq!(
        applied(Tool::Goose, &conn, &files, dir.path()),
        [("1".into(), Kept::Nothing), ("2".into(), Kept::Nothing)]
    );
}

#[test]
fn golang_migrate_is_told_from_dbmate_and_its_dirty_flag_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        file(dir.path(), "1_a.up.sql", num(1), "SELECT 1;"),
        file(dir.path(), "2_b.up.sql", num(2), "SELECT 2;"),
        file(dir.path(), "3_c.up.sql", num(3), "SELECT 3;"),
    ];
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version uint64,dirty bool);
         CREATE UNIQUE INDEX IF NOT EXISTS version_unique ON schema_migrations (version);
         INSERT INTO schema_migrations VALUES (2, 0);",
    )
    .unwrap();
    assert_eq!(present(&conn).unwrap(), [Tool::GolangMigrate]);
    assert_eq!(
        applied(Tool::GolangMigrate, &conn, &files, dir.path()),
        [("1".into(), Kept::Nothing), ("2".into(), Kept::Nothing)]
    );
    conn.execute_batch("UPDATE schema_migrations SET dirty = 1")
        .unwrap();
    let r = Tool::GolangMigrate.read(&conn, &files, dir.path()).unwrap();
    assert!(r.failed[0].contains("dirty"), "{:?}", r.failed);
}

#[test]
fn sqlx_checksums_and_failed_rows() {
    use sha2::{Digest, Sha384};
    let dir = tempfile::tempdir().unwrap();
    let files = [
        file(
            dir.path(),
            "20240101000000_a.sql",
            num(20240101000000),
            "CREATE TABLE a(x);\n",
        ),
        file(
            dir.path(),
            "20240102000000_b.sql",
            num(20240102000000),
            "CREATE TABLE b(x);\n",
        ),
    ];
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
            version BIGINT PRIMARY KEY, description TEXT NOT NULL,
            installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL,
            checksum BLOB NOT NULL, execution_time BIGINT NOT NULL);",
    )
    .unwrap();
    let insert = |v: i64, sql: &str, ok: bool| {
        conn.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (?1, 'x', ?2, ?3, -1)",
            rusqlite::params![v, ok, Sha384::digest(sql.as_bytes()).to_vec()],
        )
        .unwrap();
    };
    insert(20240101000000, "CREATE TABLE a(x);\n", true);
    insert(20240102000000, "CREATE TABLE b(x, y);\n", true);
    assert_eq!(
        applied(Tool::Sqlx, &conn, &files, dir.path()),
        [
            ("20240101000000".into(), Kept::Matches),
            ("20240102000000".into(), Kept::Differs)
        ]
    );
    insert(20240103000000, "", false);
    let r = Tool::Sqlx.read(&conn, &files, dir.path()).unwrap();
    assert!(r.failed[0].contains("20240103000000"), "{:?}", r.failed);
}

#[test]
fn flyway_rows_undo_baseline_and_crc32() {
    let dir = tempfile::tempdir().unwrap();
    let v = |s: &str| Layout::Flyway.recorded(s);
    let files = [
        file(dir.path(), "V1__a.sql", v("1"), "CREATE TABLE a(x);\n"),
        file(
            dir.path(),
            "V1_1__b.sql",
            v("1.1"),
            "CREATE TABLE b(x);\r\n",
        ),
        file(dir.path(), "V2__c.sql", v("2"), "CREATE TABLE c(x);\n"),
        file(dir.path(), "V3__d.sql", v("3"), "CREATE TABLE d(x);\n"),
    ];
    let crc = |s: &str| flyway::tests_crc(s.as_bytes());
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(
        r#"CREATE TABLE "flyway_schema_history" (
            "installed_rank" INT NOT NULL PRIMARY KEY, "version" VARCHAR(50),
            "description" VARCHAR(200) NOT NULL, "type" VARCHAR(20) NOT NULL,
            "script" VARCHAR(1000) NOT NULL, "checksum" INT, "installed_by" VARCHAR(100) NOT NULL,
            "installed_on" TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f','now')),
            "execution_time" INT NOT NULL, "success" BOOLEAN NOT NULL);"#,
    )
    .unwrap();
    let row = |rank: i64, version: &str, kind: &str, script: &str, checksum: Option<i32>| {
        conn.execute(
            "INSERT INTO flyway_schema_history VALUES (?1, ?2, 'd', ?3, ?4, ?5, '', '2024', 1, 1)",
            rusqlite::params![rank, version, kind, script, checksum],
        )
        .unwrap();
    };
    row(1, "1", "BASELINE", "<< Flyway Baseline >>", None);
    row(
        2,
        "1.1",
        "SQL",
        "V1_1__b.sql",
        Some(crc("CREATE TABLE b(x);\n")),
    );
    row(
        3,
        "2.0",
        "SQL",
        "V2__c.sql",
        Some(crc("CREATE TABLE c(x, y);")),
    );
    row(
        4,
        "3",
        "SQL",
        "V3__d.sql",
        Some(crc("CREATE TABLE d(x);\n")),
    );
    row(5, "3", "UNDO_SQL", "U3__d.sql", None);
    assert_eq!(
        applied(Tool::Flyway, &conn, &files, dir.path()),
        [
            ("1".into(), Kept::Nothing),
            ("1.1".into(), Kept::Matches),
            ("2".into(), Kept::Differs)
        ]
    );
    conn.execute_batch("UPDATE flyway_schema_history SET success = 0 WHERE installed_rank = 4")
        .unwrap();
    let r = Tool::Flyway.read(&conn, &files, dir.path()).unwrap();
    assert!(r.failed[0].contains("V3__d.sql"), "{:?}", r.failed);
}

#[test]
fn refinery_checksum_is_siphash_of_name_version_and_sql() {
    use std::hash::{Hash, Hasher};
    let dir = tempfile::tempdir().unwrap();
    let sql = "CREATE TABLE persons (id int);";
    let files = [file(
        dir.path(),
        "V1__initial.sql",
        Layout::Flyway.recorded("1"),
        sql,
    )];
    let mut h = siphasher::sip::SipHasher13::new();
    "initial".hash(&mut h);
    1_i32.hash(&mut h);
    sql.hash(&mut h);
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS refinery_schema_history(
             version INT4 PRIMARY KEY, name VARCHAR(255), applied_on VARCHAR(255),
             checksum VARCHAR(255));",
    )
    .unwrap();
    conn.execute(
        "INSERT INTO refinery_schema_history VALUES (1, 'initial', '2024-01-01T00:00:00Z', ?1)",
        [h.finish().to_string()],
    )
    .unwrap();
    assert_eq!(
        applied(Tool::Refinery, &conn, &files, dir.path()),
        [("1".into(), Kept::Matches)]
    );
}

#[test]
fn drizzle_counts_journal_entries_up_to_the_newest_row() {
    use sha2::{Digest, Sha256};
    let dir = tempfile::tempdir().unwrap();
    let files = [
        file(dir.path(), "0000_brave.sql", num(0), "CREATE TABLE a(x);"),
        file(dir.path(), "0001_calm.sql", num(1), "CREATE TABLE b(x);"),
        file(dir.path(), "0002_dark.sql", num(2), "CREATE TABLE c(x);"),
    ];
    std::fs::create_dir(dir.path().join("meta")).unwrap();
    std::fs::write(
        dir.path().join("meta/_journal.json"),
        r#"{"version":"7","dialect":"sqlite","entries":[
            {"idx":0,"version":"6","when":1700000000000,"tag":"0000_brave","breakpoints":true},
            {"idx":1,"version":"6","when":1700000001000,"tag":"0001_calm","breakpoints":true},
            {"idx":2,"version":"6","when":1700000002000,"tag":"0002_dark","breakpoints":true}]}"#,
    )
    .unwrap();
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(
        r#"CREATE TABLE IF NOT EXISTS "__drizzle_migrations" (
            id SERIAL PRIMARY KEY, hash text NOT NULL, created_at numeric)"#,
    )
    .unwrap();
    let hash = |s: &str| format!("{:x}", Sha256::digest(s.as_bytes()));
    for (sql, when) in [
        ("CREATE TABLE a(x);", 1700000000000_i64),
        ("CHANGED", 1700000001000),
    ] {
        conn.execute(
            r#"INSERT INTO "__drizzle_migrations" ("hash", "created_at") VALUES (?1, ?2)"#,
            rusqlite::params![hash(sql), when],
        )
        .unwrap();
    }
    assert_eq!(
        applied(Tool::Drizzle, &conn, &files, dir.path()),
        [("0".into(), Kept::Matches), ("1".into(), Kept::Differs)]
    );
}

#[test]
fn dbmate_versions_are_leading_digits() {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        file(dir.path(), "20240101000000_a.sql", num(20240101000000), ""),
        file(dir.path(), "20240102000000_b.sql", num(20240102000000), ""),
    ];
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(
        r#"create table if not exists "schema_migrations" (version varchar(128) primary key);
           insert into schema_migrations (version) values ('20240101000000'), ('19990101000000');"#,
    )
    .unwrap();
    assert_eq!(present(&conn).unwrap(), [Tool::Dbmate]);
    let r = Tool::Dbmate.read(&conn, &files, dir.path()).unwrap();
    assert_eq!(r.applied.len(), 1);
    assert_eq!(r.without_file, ["19990101000000"]);
}
