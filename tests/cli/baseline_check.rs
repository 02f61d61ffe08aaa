//! Issue 10's schema check for `baseline` (shared with `adopt`): the
//! migrations up to VERSION replayed on an empty database must make the
//! database's schema.

use crate::sandbox::{file_hash, Sandbox};

const A: &str = "-- migrate:up\nCREATE TABLE a (x);\n-- migrate:down\nDROP TABLE a;\n";
const B: &str = "-- migrate:up\nCREATE TABLE b (y);\n-- migrate:down\nDROP TABLE b;\n";
const C: &str = "-- migrate:up\nCREATE TABLE c (z);\n-- migrate:down\nDROP TABLE c;\n";

#[test]
fn baseline_refuses_a_database_that_lacks_the_migrations_tables_unless_forced() {
    // Issue 10: `baseline 2` on a database without migration 2's table used to
    // succeed, and the next `up` failed.
    let s = Sandbox::new();
    s.migration("1_a.sql", A)
        .migration("2_b.sql", B)
        .migration("3_c.sql", C);
    s.conn()
        .execute_batch("CREATE TABLE a (x); CREATE TABLE stray (q);")
        .expect("schema");
    let db = file_hash(&s.db());
    s.refuses(&["baseline", "2", "--yes"], 3)
        .stderr_has("missing from the database: table b (made by 2)")
        .stderr_has("not made by these migrations: table stray");
    assert_eq!(file_hash(&s.db()), db);
    s.conn().execute_batch("CREATE TABLE b (y);").expect("b");
    // The stray table is still not made by any migration.
    s.refuses(&["baseline", "2", "--yes"], 3)
        .stderr_has("table stray");
    s.run(&["baseline", "2", "--yes", "--force"]).code(0);
    assert_eq!(s.applied(), vec![1, 2]);
}

#[test]
fn baseline_passes_when_the_schema_equals_the_replay_whatever_the_whitespace() {
    let s = Sandbox::new();
    s.migration(
        "1_a.sql",
        "-- migrate:up\nCREATE TABLE a (\n  x INTEGER\n);\nINSERT INTO a VALUES (1);\n",
    )
    .migration(
        "2_b.sql",
        "-- migrate:up\nALTER TABLE a ADD COLUMN y TEXT;\nCREATE INDEX ay ON a(y);\n",
    );
    s.conn()
        .execute_batch("CREATE TABLE a (   x INTEGER   ); ALTER TABLE a ADD COLUMN y TEXT; CREATE INDEX ay ON a(y);")
        .expect("schema");
    s.run(&["baseline", "2", "--yes"])
        .code(0)
        .stderr_has("schema matches");
    assert_eq!(s.applied(), vec![1, 2]);
}
