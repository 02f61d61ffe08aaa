//! The inspection on schemas built in memory.
use super::*;
use crate::migration::Options;
use crate::migration::Version;

pub(super) fn mig(v: u64, text: &str, transaction: bool) -> Migration {
    Migration::new(
        Version::number(v, &v.to_string()),
        "m".into(),
        Section {
            path: "m.sql".into(),
            text: text.into(),
            first_line: 1,
            options: Options {
                transaction,
                foreign_keys: false,
            },
        },
        None,
    )
}

fn hostile(text: &str) -> Option<(String, usize)> {
    let m = mig(1, text, true);
    match inspect(None, &[(&m, &m.up)], &[]) {
        Err(Error::Hostile { keyword, line, .. }) => Some((keyword, line)),
        Err(e) => panic!("{e}"),
        Ok(_) => None,
    }
}

#[test]
fn finds_transaction_hostile_statements() {
    assert_eq!(
        hostile("CREATE TABLE a(x);\nBEGIN;"),
        Some(("BEGIN".into(), 2))
    );
    assert_eq!(hostile("COMMIT"), Some(("COMMIT".into(), 1)));
    assert_eq!(hostile("END TRANSACTION;"), Some(("COMMIT".into(), 1)));
    assert_eq!(hostile("\n\nVACUUM;"), Some(("VACUUM".into(), 3)));
    assert_eq!(hostile("ATTACH 'x.db' AS x;"), Some(("ATTACH".into(), 1)));
    assert_eq!(
        hostile("PRAGMA journal_mode = WAL;"),
        Some(("PRAGMA journal_mode".into(), 1))
    );
}

#[test]
fn comments_and_strings_do_not_fool_it() {
    assert_eq!(
        hostile("-- BEGIN;\n/* VACUUM; */ CREATE TABLE a(x TEXT DEFAULT 'COMMIT;');"),
        None
    );
    assert_eq!(
        hostile("CREATE TABLE a(x);\nCREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; END;"),
        None
    );
    assert_eq!(
        hostile("SAVEPOINT s; RELEASE s; PRAGMA foreign_keys = OFF;"),
        None
    );
}

#[test]
fn a_statement_failing_on_the_rowless_copy_does_not_hide_later_ones() {
    let real = Connection::open_in_memory().unwrap();
    real.execute_batch("CREATE TABLE a(x); INSERT INTO a VALUES (5);")
        .unwrap();
    // On the copy `a` is empty, so max(x) is NULL and the INSERT fails there.
    let m = mig(
        2,
        "CREATE TABLE n(v NOT NULL);\nINSERT INTO n SELECT max(x) FROM a;\nVACUUM;",
        true,
    );
    match inspect(Some(&real), &[(&m, &m.up)], &[]) {
        Err(Error::Hostile { keyword, line, .. }) => {
            assert_eq!((keyword.as_str(), line), ("VACUUM", 3))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn allowed_outside_a_transaction() {
    let m = mig(1, "VACUUM; BEGIN; CREATE TABLE a(x); COMMIT;", false);
    assert!(inspect(None, &[(&m, &m.up)], &[]).is_ok());
}

#[test]
fn rebuild_is_not_a_drop() {
    let real = Connection::open_in_memory().unwrap();
    real.execute_batch("CREATE TABLE t(a, b); INSERT INTO t VALUES (1, 2); CREATE TABLE u(x); CREATE VIEW v AS SELECT 1;").unwrap();
    let m = mig(
        7,
        "CREATE TABLE t_new(a); INSERT INTO t_new SELECT a FROM t; DROP TABLE t; ALTER TABLE t_new RENAME TO t;\n\
         DROP TABLE u; DROP VIEW v; DELETE FROM t WHERE a > 5; -- DROP TABLE nothing",
        true,
    );
    let f = inspect(Some(&real), &[(&m, &m.up)], &[]).unwrap();
    assert!(f.complete);
    assert!(
        f.destructive.contains(&Destructive::Rebuild {
            version: Version::number(7, "7"),
            table: "t".into(),
            rows: Some(1),
            dropped_columns: vec!["b".into()]
        }),
        "{:?}",
        f.destructive
    );
    assert!(f.destructive.contains(&Destructive::DropTable {
        version: Version::number(7, "7"),
        table: "u".into(),
        rows: Some(0)
    }));
    assert!(f.destructive.contains(&Destructive::DropView {
        version: Version::number(7, "7"),
        view: "v".into()
    }));
    assert!(f
        .destructive
        .iter()
        .any(|d| matches!(d, Destructive::DeleteRows { table, .. } if table == "t")));
    assert_eq!(f.destructive.len(), 4, "{:?}", f.destructive);
}

#[test]
fn drop_column_is_seen() {
    let real = Connection::open_in_memory().unwrap();
    real.execute_batch("CREATE TABLE t(a, b);").unwrap();
    let m = mig(2, "ALTER TABLE t DROP COLUMN b;", true);
    let f = inspect(Some(&real), &[(&m, &m.up)], &[]).unwrap();
    assert_eq!(
        f.destructive,
        vec![Destructive::DropColumn {
            version: Version::number(2, "2"),
            table: "t".into(),
            column: "b".into(),
            rows: Some(0)
        }]
    );
}

/// Issue 4: the pre-run inspection must not run a slow statement a first
/// time on the copy (minutes before any progress, deaf to Ctrl-C).
#[test]
fn slow_statements_are_not_run_on_the_copy() {
    let slow = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 50000000)";
    let started = std::time::Instant::now();
    // A read-only one is skipped; what follows it is still checked.
    let m = mig(
        1,
        &format!("CREATE TABLE a(x);\n{slow} SELECT count(*) FROM c;\nBEGIN;"),
        true,
    );
    assert!(matches!(
        inspect(None, &[(&m, &m.up)], &[]),
        Err(Error::Hostile { line: 3, .. })
    ));
    let m = mig(
        1,
        &format!("CREATE TABLE a(x);\n{slow} SELECT count(*) FROM c;\nDROP TABLE a;"),
        true,
    );
    let f = inspect(None, &[(&m, &m.up)], &[]).unwrap();
    assert!(f.complete);
    // A computing schema change is stopped; run-time checks take over.
    let m = mig(
        1,
        &format!("CREATE TABLE b AS {slow} SELECT x FROM c;"),
        true,
    );
    assert!(!inspect(None, &[(&m, &m.up)], &[]).unwrap().complete);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}
