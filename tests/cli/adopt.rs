//! Issue 11: `adopt` reads another tool's tracking table as that tool does
//! (baseline's schema check is in `baseline_check`). Every fixture table is built the way its tool builds it on SQLite; the source
//! each layout comes from is cited where the table is made.

use sha2::{Digest, Sha256, Sha384};

use crate::sandbox::Sandbox;

const A: &str = "-- migrate:up\nCREATE TABLE a (x);\n-- migrate:down\nDROP TABLE a;\n";
const B: &str = "-- migrate:up\nCREATE TABLE b (y);\n-- migrate:down\nDROP TABLE b;\n";
const C: &str = "-- migrate:up\nCREATE TABLE c (z);\n-- migrate:down\nDROP TABLE c;\n";

/// Three numbered migrations; the database has what the first two make.
fn numbered(names: [&str; 3]) -> Sandbox {
    let s = Sandbox::new();
    s.migration(names[0], A)
        .migration(names[1], B)
        .migration(names[2], C);
    s.conn()
        .execute_batch("CREATE TABLE a (x); CREATE TABLE b (y);")
        .expect("schema");
    s
}

/// dbmate's table (dbmate `pkg/driver/sqlite/sqlite.go`, `CreateMigrationsTable`).
fn dbmate_table(s: &Sandbox, versions: &[&str]) {
    let conn = s.conn();
    conn.execute_batch(
        r#"create table if not exists "schema_migrations" (version varchar(128) primary key)"#,
    )
    .expect("dbmate table");
    for v in versions {
        conn.execute(
            r#"insert into "schema_migrations" (version) values (?1)"#,
            [v],
        )
        .expect("dbmate row");
    }
}

/// sqlx's table (sqlx-sqlite `migrate.rs`, `ensure_migrations_table`) with
/// rows as `apply` writes them: SHA-384 of the file's text.
fn sqlx_table(s: &Sandbox, rows: &[(i64, &str, bool)]) {
    let conn = s.conn();
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
            version BIGINT PRIMARY KEY,
            description TEXT NOT NULL,
            installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
            success BOOLEAN NOT NULL,
            checksum BLOB NOT NULL,
            execution_time BIGINT NOT NULL
        );",
    )
    .expect("sqlx table");
    for (v, text, ok) in rows {
        conn.execute(
            "INSERT INTO _sqlx_migrations ( version, description, success, checksum, execution_time )
             VALUES ( ?1, ?2, ?3, ?4, -1 )",
            rusqlite::params![v, "m", ok, Sha384::digest(text.as_bytes()).to_vec()],
        )
        .expect("sqlx row");
    }
}

fn table_hash(s: &Sandbox, table: &str) -> String {
    let conn = s.conn();
    let mut stmt = conn
        .prepare(&format!("SELECT * FROM {table}"))
        .expect("read table");
    let n = stmt.column_count();
    let rows: Vec<String> = stmt
        .query_map([], |r| {
            Ok((0..n)
                .map(|i| format!("{:?}", r.get::<_, rusqlite::types::Value>(i).unwrap()))
                .collect::<Vec<_>>()
                .join("|"))
        })
        .expect("rows")
        .map(|r| r.expect("row"))
        .collect();
    format!("{:x}", Sha256::digest(rows.join("\n").as_bytes()))
}

#[test]
fn adopt_from_dbmate_records_its_migrations_after_a_backup_and_leaves_its_table() {
    let s = numbered(["1_a.sql", "2_b.sql", "3_c.sql"]);
    dbmate_table(&s, &["1", "2"]);
    let theirs = table_hash(&s, "schema_migrations");
    // --dry-run changes nothing, byte for byte.
    s.refuses(&["adopt", "--dry-run"], 0)
        .stderr_has("record 1")
        .stderr_has("record 2")
        .stderr_has("not applied by dbmate (left for `backstop up`): 3")
        .stderr_has("dry run: nothing was changed");
    // Without a terminal it needs --yes.
    s.refuses(&["adopt"], 3).stderr_has("--yes");
    s.run(&["adopt", "--yes"])
        .code(0)
        .stderr_has("recorded 2 migration(s)");
    assert_eq!(s.applied(), vec![1, 2]);
    assert_eq!(s.backups().len(), 1);
    assert!(s.backups()[0].to_string_lossy().contains(".before-adopt."));
    assert_eq!(
        table_hash(&s, "schema_migrations"),
        theirs,
        "dbmate's table changed"
    );
    let log = s.run(&["log", "--json"]).code(0).json();
    assert_eq!(log["runs"][0]["command"], "adopt");
    assert_eq!(log["runs"][0]["detail"]["from"], "dbmate");
    s.run(&["up"]).code(0).stdout_has("applied 1 migration(s)");
    assert!(s.table_exists("c"));
    // Adopting again records nothing.
    s.run(&["adopt", "--yes"])
        .code(0)
        .stderr_has("nothing to record");
}

#[test]
fn adopt_refuses_a_schema_that_lacks_what_the_migrations_make_unless_forced() {
    let s = numbered(["1_a.sql", "2_b.sql", "3_c.sql"]);
    // dbmate says 3 ran, but its table is not there (an interrupted hand edit).
    dbmate_table(&s, &["1", "2", "3"]);
    // --dry-run shows what dbmate claims, then what the database lacks.
    s.refuses(&["adopt", "--dry-run"], 3)
        .stderr_has("record 3")
        .stderr_has("missing from the database: table c");
    s.refuses(&["adopt", "--yes"], 3)
        .stderr_has("missing from the database: table c (made by 3)")
        .stderr_has("--force");
    assert!(s.applied().is_empty());
    s.run(&["adopt", "--yes", "--force"]).code(0);
    assert_eq!(s.applied(), vec![1, 2, 3]);
    let log = s.run(&["log", "--json"]).code(0).json();
    assert_eq!(log["runs"][0]["detail"]["schema_checked"], false);
}

#[test]
fn adopt_from_sqlx_compares_its_sha384_and_refuses_edits_unless_accepted() {
    let s = numbered(["1_a.sql", "2_b.sql", "3_c.sql"]);
    sqlx_table(
        &s,
        &[
            (1, A, true),
            (2, "-- migrate:up\nCREATE TABLE b (y); -- old\n", true),
        ],
    );
    s.refuses(&["adopt", "--yes"], 3)
        .stderr_has("changed since sqlx applied them")
        .stderr_has("2_b.sql")
        .stderr_has("--accept-edits");
    let j = s
        .run(&["adopt", "--yes", "--accept-edits", "--json"])
        .code(0)
        .json();
    assert_eq!(j["record"][0]["checksum"], "matches");
    assert_eq!(j["record"][1]["checksum"], "differs");
    assert_eq!(s.applied(), vec![1, 2]);
    // backstop records the file as it is now: status shows it applied.
    let st = s.run(&["status", "--json"]).code(0).json();
    assert_eq!(st["migrations"][1]["state"], "applied");
}

#[test]
fn adopt_refuses_failed_and_dirty_records_with_what_to_do() {
    let s = numbered(["1_a.sql", "2_b.sql", "3_c.sql"]);
    sqlx_table(&s, &[(1, A, true), (2, B, false)]);
    s.refuses(&["adopt", "--yes"], 3)
        .stderr_has("sqlx recorded migration 2 as failed");

    let s = numbered(["1_a.up.sql", "2_b.up.sql", "3_c.up.sql"]);
    s.migration("1_a.up.sql", "CREATE TABLE a (x);")
        .migration("2_b.up.sql", "CREATE TABLE b (y);")
        .migration("3_c.up.sql", "CREATE TABLE c (z);");
    // golang-migrate `database/sqlite3/sqlite3.go`: ensureVersionTable, SetVersion.
    s.conn()
        .execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version uint64,dirty bool);
             CREATE UNIQUE INDEX IF NOT EXISTS version_unique ON schema_migrations (version);
             INSERT INTO schema_migrations (version, dirty) VALUES (2, 1);",
        )
        .expect("golang-migrate table");
    s.refuses(&["adopt", "--yes"], 3)
        .stderr_has("golang-migrate marks version 2 dirty")
        .stderr_has("migrate force");
    s.conn()
        .execute_batch("UPDATE schema_migrations SET dirty = 0")
        .expect("clean");
    s.run(&["adopt", "--yes"]).code(0);
    assert_eq!(s.applied(), vec![1, 2]);
}

#[test]
fn adopt_from_goose_takes_the_latest_row_of_each_version() {
    let s = Sandbox::new();
    s.migration(
        "00001_a.sql",
        "-- +goose Up\nCREATE TABLE a (x);\n-- +goose Down\nDROP TABLE a;\n",
    )
    .migration(
        "00002_b.sql",
        "-- +goose Up\nCREATE TABLE b (y);\n-- +goose Down\nDROP TABLE b;\n",
    );
    // goose `internal/dialect/dialectquery/sqlite3.go`: CreateTable, InsertVersion;
    // version 0 is written when the table is made; 2 was applied, then rolled back.
    s.conn()
        .execute_batch(
            "CREATE TABLE goose_db_version (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                version_id INTEGER NOT NULL,
                is_applied INTEGER NOT NULL,
                tstamp TIMESTAMP DEFAULT (datetime('now')));
             INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, 1), (1, 1), (2, 1), (2, 0);
             CREATE TABLE a (x);",
        )
        .expect("goose table");
    s.run(&["adopt", "--yes"])
        .code(0)
        .stderr_has("record 00001");
    assert_eq!(s.applied(), vec![1]);
    s.run(&["up"]).code(0);
    assert_eq!(s.applied(), vec![1, 2]);
}

#[test]
fn two_tools_tables_are_refused_naming_both_and_from_picks_one() {
    let s = numbered(["1_a.sql", "2_b.sql", "3_c.sql"]);
    dbmate_table(&s, &["1", "2"]);
    sqlx_table(&s, &[(1, A, true), (2, B, true)]);
    s.refuses(&["adopt", "--yes"], 3)
        .stderr_has("sqlx's _sqlx_migrations")
        .stderr_has("dbmate's schema_migrations")
        .stderr_has("--from");
    s.run(&["adopt", "--from", "sqlx", "--yes"]).code(0);
    assert_eq!(s.applied(), vec![1, 2]);
    let s = numbered(["1_a.sql", "2_b.sql", "3_c.sql"]);
    s.refuses(&["adopt", "--yes"], 3)
        .stderr_has("has no other tool's tracking table");
    s.refuses(&["adopt", "--from", "goose", "--yes"], 3)
        .stderr_has("no goose_db_version table");
}

#[test]
fn adopt_from_flyway_reads_dotted_versions_its_crc32_and_undo_rows() {
    let s = Sandbox::new();
    s.migration("V1__init.sql", "CREATE TABLE a (x);\n")
        .migration("V1_1__more.sql", "CREATE TABLE b (y);\r\n")
        .migration("V2__last.sql", "CREATE TABLE c (z);\n");
    // Flyway's SQLite createMetaDataTable.sql, and its checksum: CRC-32 of the
    // lines without their line ends (ChecksumCalculator).
    let crc = |text: &str| {
        let mut h = crc32fast::Hasher::new();
        for line in text.split(['\n', '\r']) {
            h.update(line.as_bytes());
        }
        h.finalize() as i32
    };
    let conn = s.conn();
    conn.execute_batch(
        r#"CREATE TABLE "flyway_schema_history" (
            "installed_rank" INT NOT NULL PRIMARY KEY,
            "version" VARCHAR(50),
            "description" VARCHAR(200) NOT NULL,
            "type" VARCHAR(20) NOT NULL,
            "script" VARCHAR(1000) NOT NULL,
            "checksum" INT,
            "installed_by" VARCHAR(100) NOT NULL,
            "installed_on" TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f','now')),
            "execution_time" INT NOT NULL,
            "success" BOOLEAN NOT NULL
        );
        CREATE INDEX "flyway_schema_history_s_idx" ON "flyway_schema_history" ("success");
        CREATE TABLE a (x); CREATE TABLE b (y);"#,
    )
    .expect("flyway table");
    let row = |rank: i64, version: &str, kind: &str, script: &str, sum: i32| {
        conn.execute(
            r#"INSERT INTO "flyway_schema_history" ("installed_rank", "version", "description",
               "type", "script", "checksum", "installed_by", "execution_time", "success")
               VALUES (?1, ?2, 'x', ?3, ?4, ?5, 'me', 3, 1)"#,
            rusqlite::params![rank, version, kind, script, sum],
        )
        .expect("flyway row");
    };
    row(1, "1", "SQL", "V1__init.sql", crc("CREATE TABLE a (x);\n"));
    row(
        2,
        "1.1",
        "SQL",
        "V1_1__more.sql",
        crc("CREATE TABLE b (y);\n"),
    );
    row(3, "2", "SQL", "V2__last.sql", crc("CREATE TABLE c (z);\n"));
    row(4, "2", "UNDO_SQL", "U2__last.sql", 0);
    drop(conn);
    let j = s.run(&["adopt", "--yes", "--json"]).code(0).json();
    assert_eq!(j["record"][0]["version"], "1");
    assert_eq!(j["record"][1]["version"], "1_1");
    assert_eq!(j["record"][1]["checksum"], "matches");
    assert_eq!(j["not_applied"][0], "2");
    s.run(&["up"]).code(0);
    assert!(s.table_exists("c"));
}

#[test]
fn adopt_from_diesel_matches_folder_versions_without_dashes() {
    let s = Sandbox::new();
    s.write(
        "migrations/2024-03-06-170000_a/up.sql",
        "CREATE TABLE a (x);",
    )
    .write("migrations/2024-03-06-170000_a/down.sql", "DROP TABLE a;")
    .write(
        "migrations/2024-03-15-090000_b/up.sql",
        "CREATE TABLE b (y);",
    );
    // diesel `src/migration/setup_migration_table.sql`.
    s.conn()
        .execute_batch(
            "CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (
                version VARCHAR(50) PRIMARY KEY NOT NULL,
                run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);
             INSERT INTO __diesel_schema_migrations (version) VALUES ('20240306170000');
             CREATE TABLE a (x);",
        )
        .expect("diesel table");
    s.run(&["adopt", "--yes"])
        .code(0)
        .stderr_has("record 2024-03-06-170000");
    s.run(&["up"]).code(0);
    assert!(s.table_exists("b"));
}

#[test]
fn adopt_from_drizzle_reads_its_journal_and_sha256() {
    let s = Sandbox::new();
    let first = "CREATE TABLE `a` (\n\t`x` integer\n);\n--> statement-breakpoint\nCREATE INDEX `ax` ON `a` (`x`);";
    s.migration("0000_brave_thor.sql", first)
        .migration("0001_calm_loki.sql", "CREATE TABLE `b` (\n\t`y` text\n);\n")
        .write(
            "migrations/meta/_journal.json",
            r#"{"version":"7","dialect":"sqlite","entries":[
              {"idx":0,"version":"6","when":1700000000000,"tag":"0000_brave_thor","breakpoints":true},
              {"idx":1,"version":"6","when":1700000005000,"tag":"0001_calm_loki","breakpoints":true}]}"#,
        );
    // drizzle-orm `sqlite-core/dialect.ts` migrate(): the table and its rows.
    let conn = s.conn();
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS \"__drizzle_migrations\" (
            id SERIAL PRIMARY KEY, hash text NOT NULL, created_at numeric);
         CREATE TABLE `a` (\n\t`x` integer\n); CREATE INDEX `ax` ON `a` (`x`);",
    )
    .expect("drizzle table");
    conn.execute(
        "INSERT INTO \"__drizzle_migrations\" (\"hash\", \"created_at\") values(?1, ?2)",
        rusqlite::params![
            format!("{:x}", Sha256::digest(first.as_bytes())),
            1700000000000_i64
        ],
    )
    .expect("drizzle row");
    drop(conn);
    let j = s.run(&["adopt", "--yes", "--json"]).code(0).json();
    assert_eq!(j["from"], "drizzle");
    assert_eq!(j["record"][0]["checksum"], "matches");
    assert_eq!(j["not_applied"][0], "0001");
    s.run(&["up"]).code(0);
    assert!(s.table_exists("b"));
}

#[test]
fn adopt_from_refinery_compares_its_siphash() {
    use std::hash::{Hash, Hasher};
    let s = Sandbox::new();
    let sql = "CREATE TABLE persons (id int, name varchar(255));";
    s.migration("V1__initial.sql", sql)
        .migration("V2__more.sql", "CREATE TABLE cars (id int);");
    // refinery_core `traits/mod.rs` (table) and `migration.rs` (checksum).
    let mut h = siphasher::sip::SipHasher13::new();
    "initial".hash(&mut h);
    1_i32.hash(&mut h);
    sql.hash(&mut h);
    let conn = s.conn();
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS refinery_schema_history(
             version INT4 PRIMARY KEY, name VARCHAR(255), applied_on VARCHAR(255),
             checksum VARCHAR(255));
         INSERT INTO refinery_schema_history (version, name, applied_on, checksum)
             VALUES (1, 'initial', '2024-05-01T10:00:00Z', '{}');
         {sql}",
        h.finish()
    ))
    .expect("refinery table");
    drop(conn);
    s.run(&["adopt", "--yes"])
        .code(0)
        .stderr_has("checksum matches refinery's");
    assert_eq!(s.applied(), vec![1]);
}
