//! The world around the database: backups folder missing, read-only or full,
//! database in a read-only folder or not a file, and two `up` runs at once.
//! Read-only and full folders are tmpfs mounts (root ignores permission bits);
//! the tests skip when mounting is not possible.

use std::time::Duration;

use super::{backup_problems, clean_failure, seed, size, Rng, Tmpfs};
use crate::sandbox::{file_hash, Output, Sandbox};

const A: &str =
    "CREATE TABLE a (id INTEGER PRIMARY KEY, x TEXT);\nINSERT INTO a (x) VALUES ('one');\n";
const B: &str = "-- migrate:up\nCREATE TABLE b (y BLOB);\n\
    INSERT INTO b (y) WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < 1000)\n\
    SELECT randomblob(1000) FROM n;\n-- migrate:down\nDROP TABLE b;\n";
const C: &str = "CREATE INDEX a_x ON a (x);\n";

/// Migration 1 applied (about 1 MB of data), 2 pending.
fn project() -> Sandbox {
    let s = Sandbox::new();
    s.migration("1_b.sql", B);
    s.run(&["up"]).code(0);
    s.migration("2_c.sql", A);
    std::fs::remove_dir_all(s.backups_dir()).expect("clear backups");
    s
}

/// A refusal that changed nothing: the expected code, `error:` first, the
/// database byte-identical, migration 2 not applied.
#[track_caller]
fn refused_untouched(s: &Sandbox, out: &Output, code: i32, before: &str) {
    clean_failure(out, "environment");
    out.code(code);
    assert_eq!(
        file_hash(&s.db()),
        before,
        "`{}` changed the database",
        out.command
    );
    assert_eq!(s.applied(), vec![1]);
}

#[test]
fn a_missing_backups_folder_is_created() {
    let s = project();
    assert!(!s.backups_dir().exists());
    s.run(&["up"]).code(0);
    assert_eq!(s.applied(), vec![1, 2]);
    assert_eq!(s.backups().len(), 1);
    assert!(backup_problems(&s).is_empty());
}

#[test]
fn a_read_only_backups_folder_stops_up_before_anything_changes() {
    let s = project();
    let Some(mount) = Tmpfs::mount(&s.backups_dir(), "16m") else {
        return;
    };
    assert!(mount.read_only(), "remount read-only");
    let before = file_hash(&s.db());
    let out = s.run(&["up"]);
    refused_untouched(&s, &out, 5, &before);
    out.stderr_has("backups");
    let out = s.run(&["backup"]);
    clean_failure(&out, "backup");
    out.code(5);
    assert!(s.backup_files().is_empty());
}

#[test]
fn a_full_backups_folder_stops_up_before_anything_changes() {
    let s = project();
    let Some(_mount) = Tmpfs::mount(&s.backups_dir(), "256k") else {
        return;
    };
    let before = file_hash(&s.db());
    let out = s.run(&["up"]);
    refused_untouched(&s, &out, 5, &before);
    out.stderr_has("space");
    // Nothing left behind on the full disk, not even a temporary.
    assert!(s.backup_files().is_empty(), "{:?}", s.backup_files());
}

#[test]
fn a_database_in_a_read_only_folder_is_refused_untouched() {
    let s = project();
    let dir = s.path().join("ro");
    std::fs::create_dir(&dir).expect("mkdir");
    let Some(mount) = Tmpfs::mount(&dir, "16m") else {
        return;
    };
    std::fs::copy(s.db(), dir.join("dev.db")).expect("copy db");
    assert!(mount.read_only(), "remount read-only");
    let db = dir.join("dev.db");
    let before = file_hash(&db);
    for args in [
        &["up", "-d", "ro/dev.db"][..],
        &["up", "--yes", "-d", "ro/dev.db"][..],
    ] {
        let out = s.run(args);
        clean_failure(&out, "read-only folder");
        out.code(4).stderr_has("ro/dev.db");
        assert_eq!(file_hash(&db), before);
    }
    // Reading still works.
    s.run(&["status", "-d", "ro/dev.db"]).code(0);
    assert!(
        s.backups().is_empty(),
        "backed up although nothing could run"
    );
}

#[test]
fn a_database_path_that_is_a_folder_is_refused() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    std::fs::create_dir(s.db()).expect("mkdir dev.db");
    for args in [&["status"][..], &["up"][..], &["backup"][..]] {
        let out = s.run(args);
        clean_failure(&out, "folder as database");
        out.code(4).stderr_has("dev.db");
    }
    assert!(s.db().is_dir());
    assert_eq!(std::fs::read_dir(s.db()).expect("read").count(), 0);
}

/// Two `up` at once on the same database, with a slow first migration: never
/// both apply. The other waits and finds nothing to do, or is refused (exit 4,
/// locked); each version is recorded once and every row is there once.
#[test]
fn two_concurrent_ups_never_both_apply() {
    let mut rng = Rng::for_test("concurrent up");
    let rounds = size(3, 40);
    let slow = "CREATE TABLE slow (id INTEGER PRIMARY KEY, v TEXT);\n\
        INSERT INTO slow (v) WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < 200000)\n\
        SELECT printf('%d', k) FROM n;\n";
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for round in 0..rounds {
        let s = Sandbox::new();
        s.migration("1_slow.sql", slow)
            .migration("2_a.sql", A)
            .migration("3_c.sql", C);
        s.conn()
            .execute_batch("CREATE TABLE app (id INTEGER PRIMARY KEY)")
            .expect("existing db");
        // The second waits long enough in some rounds and gives up in others.
        let timeout = if rng.below(2) == 0 { "20000" } else { "50" };
        let offset = Duration::from_millis(rng.below(300));
        let ctx = format!(
            "seed {:#x}, round {round}: second up {offset:?} after the first, --busy-timeout-ms {timeout}",
            seed()
        );
        let spawn = |timeout: &str| {
            s.command(&["up", "--busy-timeout-ms", timeout])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        };
        let first = spawn("20000");
        // A seeded head start, not a synchronisation: the race is the point.
        std::thread::sleep(offset);
        let second = spawn(timeout);
        let outs: Vec<Output> = [first, second]
            .into_iter()
            .map(|c| {
                let o = c.wait_with_output().expect("wait");
                Output {
                    code: o.status.code().unwrap_or(-1),
                    stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
                    command: "backstop up".into(),
                }
            })
            .collect();
        let mut applied_total = 0;
        let mut summary = Vec::new();
        for o in &outs {
            clean_failure(o, &ctx);
            assert!(
                o.code == 0 || o.code == 4,
                "{ctx}: exit {}:\n{}\n{}",
                o.code,
                o.stdout,
                o.stderr
            );
            if let Some(n) = o
                .stdout
                .strip_prefix("applied ")
                .and_then(|r| r.split(' ').next())
                .and_then(|n| n.parse::<usize>().ok())
            {
                applied_total += n;
                summary.push(format!("applied {n}"));
            } else if o.code == 0 {
                assert!(o.stdout.contains("up to date"), "{ctx}: {}", o.stdout);
                summary.push("nothing to do".into());
            } else {
                summary.push("locked".into());
            }
        }
        assert_eq!(applied_total, 3, "{ctx}: {summary:?}\n{outs:#?}");
        assert_eq!(s.applied(), vec![1, 2, 3], "{ctx}");
        assert_eq!(
            s.query_i64("SELECT count(*) FROM _backstop_migrations"),
            3,
            "{ctx}"
        );
        assert_eq!(s.query_i64("SELECT count(*) FROM slow"), 200_000, "{ctx}");
        assert_eq!(s.query_i64("SELECT count(*) FROM a"), 1, "{ctx}");
        assert_eq!(super::integrity(&s.db()), "ok", "{ctx}");
        summary.sort();
        *outcomes.entry(summary.join(" + ")).or_default() += 1;
    }
    eprintln!("concurrent up: {rounds} rounds, outcomes {outcomes:?}");
}
