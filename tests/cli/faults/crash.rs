//! SIGKILL at seeded random moments, spread over a whole unkilled run, during
//! `up`, `backup` and `restore` (SPEC "Safety properties": a kill leaves a
//! database that passes integrity_check, whose tracking rows match its schema,
//! on which a rerun finishes the job; no partial file under a backup's name).

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;
use sha2::{Digest, Sha256};

use super::{
    backup_problems, fork, integrity, kill_after, kill_points, seed, snapshot, time_it, Rng,
};
use crate::sandbox::{file_hash, Sandbox};

const MIGRATIONS: u64 = 30;
/// The migration whose one statement takes a while: kills land inside it.
const SLOW: u64 = 17;
const SLOW_ROWS: i64 = 150_000;

/// Migration `i`'s text and the rows its table holds once it committed.
fn migration(i: u64) -> (String, i64) {
    let create = format!("CREATE TABLE t{i} (id INTEGER PRIMARY KEY, v TEXT NOT NULL);\n");
    let series = |n: i64| {
        format!(
            "INSERT INTO t{i} (v) WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < {n})\n  SELECT printf('row %d of {i}', k) FROM n;\n"
        )
    };
    if i == SLOW {
        return (
            format!("-- migrate:up\n{create}{}", series(SLOW_ROWS)),
            SLOW_ROWS,
        );
    }
    match i % 3 {
        0 => {
            let n = 40 + 7 * i as i64;
            (format!("{create}{}", series(n)), n)
        }
        1 => (
            format!(
                "-- migrate:up\n{create}INSERT INTO t{i} (v) VALUES ('a');\nINSERT INTO t{i} (v) VALUES ('b;c');\n\
                 {}CREATE INDEX t{i}_v ON t{i} (v);\nUPDATE t{i} SET v = v || '!';\n-- migrate:down\nDROP TABLE t{i};\n",
                series(25)
            ),
            27,
        ),
        _ => (
            format!(
                "-- +goose Up\n{create}/* a comment; with a semicolon */\nINSERT INTO t{i} (v) VALUES ('x'), ('y'), ('z');\n\
                 CREATE TRIGGER t{i}_dup AFTER INSERT ON t{i} WHEN NEW.v = 'x' BEGIN INSERT INTO t{i} (v) VALUES ('x2'); END;\n\
                 INSERT INTO t{i} (v) VALUES ('x');\n-- +goose Down\nDROP TABLE t{i};\n"
            ),
            5,
        ),
    }
}

/// A project with a few MB of existing data (so the backup takes a while) and
/// `MIGRATIONS` pending migrations; `fork` it for each kill point.
fn project(wal: bool) -> Sandbox {
    let s = Sandbox::new();
    for i in 1..=MIGRATIONS {
        s.migration(&format!("{i:03}_m{i}.sql"), &migration(i).0);
    }
    let conn = s.conn();
    if wal {
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
            .expect("wal");
    }
    conn.execute_batch(
        "CREATE TABLE seed (id INTEGER PRIMARY KEY, b BLOB);
         INSERT INTO seed (b) WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < 2000)
           SELECT randomblob(1000) FROM n;",
    )
    .expect("seed data");
    s
}

/// The tracking rows match the schema: each migration is recorded iff its
/// table exists with all its rows. Returns the versions recorded.
fn tracking_matches_schema(db: &Path, ctx: &str) -> Vec<u64> {
    let conn = Connection::open(db).expect("open");
    let tracked: bool = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = '_backstop_migrations'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .expect("schema")
        > 0;
    let mut recorded = Vec::new();
    for i in 1..=MIGRATIONS {
        let is_recorded = tracked
            && conn
                .query_row(
                    "SELECT count(*) FROM _backstop_migrations WHERE version = ?1",
                    [i.to_string()],
                    |r| r.get::<_, i64>(0),
                )
                .expect("tracking row")
                == 1;
        let rows: Option<i64> = conn
            .query_row(&format!("SELECT count(*) FROM t{i}"), [], |r| r.get(0))
            .ok();
        let expected = migration(i).1;
        if is_recorded {
            recorded.push(i);
            assert_eq!(
                rows,
                Some(expected),
                "{ctx}: migration {i} is recorded but its table holds {rows:?} rows, not {expected}"
            );
        } else {
            assert_eq!(
                rows, None,
                "{ctx}: migration {i} is not recorded but its table exists"
            );
        }
    }
    recorded
}

#[test]
fn sigkill_during_up_leaves_a_consistent_database_that_a_rerun_finishes() {
    let mut rng = Rng::for_test("up");
    let points = kill_points(4, 150);
    let templates = [project(false), project(true)];
    let full = time_it(fork(&templates[0]).command(&["up"]));
    let (mut mid_run, mut partial, mut hot) = (0, 0, 0);
    for k in 0..points {
        let wal = rng.below(2) == 1;
        let delay = Duration::from_micros(rng.below(full.as_micros() as u64 + 1));
        let s = fork(&templates[wal as usize]);
        let killed = kill_after(s.command(&["up"]), delay);
        let ctx = format!(
            "seed {:#x}, kill point {k}/{points}: {} db, SIGKILL after {delay:?} of {full:?} (still running: {killed})",
            seed(),
            if wal { "WAL" } else { "rollback-journal" }
        );
        mid_run += killed as usize;
        // Examine a copy (hot journal included): the original is left for
        // backstop itself to recover below.
        let copy = snapshot(&s.db(), &s.path().join("after-kill"));
        // A journal left by a kill mid-migration (cache spilled to the file)
        // must be rolled back by the rerun, not refused as "read-only".
        hot +=
            std::fs::metadata(s.path().join("dev.db-journal")).is_ok_and(|m| m.len() > 0) as usize;
        if copy.exists() {
            assert_eq!(integrity(&copy), "ok", "{ctx}");
            let recorded = tracking_matches_schema(&copy, &ctx);
            if !recorded.is_empty() && recorded.len() < MIGRATIONS as usize {
                partial += 1;
            }
            // Recorded versions are a prefix: migrations commit in order.
            assert!(
                recorded.iter().copied().eq(1..=recorded.len() as u64),
                "{ctx}: recorded {recorded:?}"
            );
        }
        let problems = backup_problems(&s);
        assert!(problems.is_empty(), "{ctx}: {problems:?}\n{}", s.listing());
        let out = s.run(&["up"]);
        assert_eq!(out.code, 0, "{ctx}: rerun of up:\n{}", out.stderr);
        let recorded = tracking_matches_schema(&s.db(), &ctx);
        assert_eq!(recorded.len() as u64, MIGRATIONS, "{ctx}: after the rerun");
        assert_eq!(integrity(&s.db()), "ok", "{ctx}: after the rerun");
        assert!(s.table_exists("seed"), "{ctx}");
        assert_eq!(s.query_i64("SELECT count(*) FROM seed"), 2000, "{ctx}");
        let problems = backup_problems(&s);
        assert!(problems.is_empty(), "{ctx}: {problems:?}");
    }
    eprintln!(
        "up: survived {points} kill points ({mid_run} mid-run, {partial} with some migrations applied, {hot} leaving a hot journal); full run {full:?}"
    );
}

/// A database of a few MB with `data` rows: enough for a kill to land mid-copy.
fn big_db(s: &Sandbox, wal: bool, rows: i64) {
    let conn = s.conn();
    if wal {
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
            .expect("wal");
    }
    conn.execute_batch(&format!(
        "CREATE TABLE data (id INTEGER PRIMARY KEY, v TEXT NOT NULL, b BLOB);
         INSERT INTO data (v, b) WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < {rows})
           SELECT 'A' || k, randomblob(900) FROM n;"
    ))
    .expect("data");
}

#[test]
fn sigkill_during_backup_never_leaves_a_partial_file_under_a_final_name() {
    let mut rng = Rng::for_test("backup");
    let points = kill_points(4, 150);
    let templates = [Sandbox::new(), Sandbox::new()];
    big_db(&templates[0], false, 5000);
    big_db(&templates[1], true, 5000);
    let full = time_it(fork(&templates[0]).command(&["backup"]));
    let (mut mid_run, mut mid_copy) = (0, 0);
    for k in 0..points {
        let wal = rng.below(2) == 1;
        let delay = Duration::from_micros(rng.below(full.as_micros() as u64 + 1));
        let s = fork(&templates[wal as usize]);
        let before = file_hash(&s.db());
        let killed = kill_after(s.command(&["backup"]), delay);
        mid_run += killed as usize;
        let ctx = format!(
            "seed {:#x}, kill point {k}/{points}: {} db, SIGKILL after {delay:?} of {full:?} (still running: {killed})",
            seed(),
            if wal { "WAL" } else { "rollback-journal" }
        );
        let problems = backup_problems(&s);
        assert!(problems.is_empty(), "{ctx}: {problems:?}\n{}", s.listing());
        mid_copy += s.backup_files().iter().any(|n| n.starts_with('.')) as usize;
        assert_eq!(
            file_hash(&s.db()),
            before,
            "{ctx}: backup changed the database"
        );
        // Whatever was left behind, `backups` lists only complete backups and
        // a new backup succeeds.
        let listed = s.run(&["backups", "--json"]);
        assert_eq!(listed.code, 0, "{ctx}: {}", listed.stderr);
        let out = s.run(&["backup"]);
        assert_eq!(out.code, 0, "{ctx}: backup after the kill:\n{}", out.stderr);
        assert!(!s.backups().is_empty(), "{ctx}");
        let problems = backup_problems(&s);
        assert!(problems.is_empty(), "{ctx}: {problems:?}");
    }
    eprintln!(
        "backup: survived {points} kill points ({mid_run} mid-run, {mid_copy} leaving a temporary); full run {full:?}"
    );
}

/// SHA-256 of `data`'s rows in id order: tells state A from state B.
fn contents(db: &Path) -> String {
    let conn = Connection::open(db).expect("open");
    let mut stmt = conn
        .prepare("SELECT id, v, b FROM data ORDER BY id")
        .expect("prepare");
    let mut rows = stmt.query([]).expect("query");
    let mut h = Sha256::new();
    while let Some(r) = rows.next().expect("row") {
        h.update(r.get::<_, i64>(0).expect("id").to_le_bytes());
        h.update(r.get::<_, String>(1).expect("v").as_bytes());
        h.update(r.get::<_, Vec<u8>>(2).expect("b"));
    }
    format!("{:x}", h.finalize())
}

/// State A is backed up, then changed into state B; `fork` it per kill point.
fn restore_project(wal: bool) -> (Sandbox, String, String) {
    let s = Sandbox::new();
    big_db(&s, wal, 3000);
    let a = contents(&s.db());
    s.run(&["backup", "--label", "state-a"]).code(0);
    s.conn()
        .execute_batch(
            "UPDATE data SET v = 'B' || id WHERE id % 2 = 0;
             DELETE FROM data WHERE id % 5 = 0;
             INSERT INTO data (v, b) SELECT 'new', randomblob(500) FROM data WHERE id < 400;",
        )
        .expect("state B");
    let b = contents(&s.db());
    assert_ne!(a, b);
    (s, a, b)
}

#[test]
fn sigkill_during_restore_leaves_the_old_or_the_restored_state_never_a_mix() {
    let mut rng = Rng::for_test("restore");
    let points = kill_points(4, 150);
    let templates = [restore_project(false), restore_project(true)];
    let probe = fork(&templates[0].0);
    let full = time_it(probe.command(&["restore", "--latest", "--yes"]));
    assert_eq!(contents(&probe.db()), templates[0].1);
    let (mut mid_run, mut old, mut new) = (0, 0, 0);
    for k in 0..points {
        let wal = rng.below(2) == 1;
        let delay = Duration::from_micros(rng.below(full.as_micros() as u64 + 1));
        let (template, a, b) = &templates[wal as usize];
        let s = fork(template);
        let state_a = s.backups()[0].clone();
        let killed = kill_after(s.command(&["restore", "--latest", "--yes"]), delay);
        mid_run += killed as usize;
        let ctx = format!(
            "seed {:#x}, kill point {k}/{points}: {} db, SIGKILL after {delay:?} of {full:?} (still running: {killed})",
            seed(),
            if wal { "WAL" } else { "rollback-journal" }
        );
        let copy = snapshot(&s.db(), &s.path().join("after-kill"));
        assert_eq!(integrity(&copy), "ok", "{ctx}");
        let now = contents(&copy);
        assert!(
            now == *a || now == *b,
            "{ctx}: the database is neither the old nor the restored state"
        );
        if now == *a {
            new += 1;
        } else {
            old += 1;
        }
        let problems = backup_problems(&s);
        assert!(problems.is_empty(), "{ctx}: {problems:?}\n{}", s.listing());
        // A second restore of the same backup finishes the job.
        let out = s.run(&["restore", &state_a.to_string_lossy(), "--yes"]);
        assert_eq!(
            out.code, 0,
            "{ctx}: restore after the kill:\n{}",
            out.stderr
        );
        assert_eq!(contents(&s.db()), *a, "{ctx}: after the second restore");
        assert_eq!(integrity(&s.db()), "ok", "{ctx}");
    }
    eprintln!(
        "restore: survived {points} kill points ({mid_run} mid-run; {old} left the old state, {new} the restored one); full run {full:?}"
    );
}

/// Deterministic companion of the random kill points: SIGKILL once the slow
/// migration has spilled its changes into the database file (a hot journal
/// is then on disk). Every command must roll it back, not refuse the file as
/// read-only (the bug this test found).
#[test]
fn sigkill_inside_a_spilling_migration_leaves_a_hot_journal_that_backstop_recovers() {
    let template = project(false);
    for command in ["status", "up"] {
        let s = fork(&template);
        let journal = s.path().join("dev.db-journal");
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let initial = size(&s.db());
        let mut child = s
            .command(&["up"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        // New pages go straight to the file once the page cache spills, while
        // the journal holds the transaction open.
        crate::sandbox::wait_for(&mut child, "the slow migration spilled", || {
            journal.exists() && size(&s.db()) > initial + 1024 * 1024
        });
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        child.wait().expect("wait");
        assert!(journal.exists(), "the kill left no journal");
        let copy = snapshot(&s.db(), &s.path().join("after-kill"));
        assert_eq!(integrity(&copy), "ok");
        let recorded = tracking_matches_schema(&copy, "hot journal");
        assert!(!recorded.contains(&SLOW), "{recorded:?}");
        // The read command first (it must show the committed state), then up.
        let out = s.run(&[command]);
        assert_eq!(out.code, 0, "`{command}` after the kill:\n{}", out.stderr);
        s.run(&["up"]).code(0);
        assert_eq!(
            tracking_matches_schema(&s.db(), "rerun").len() as u64,
            MIGRATIONS
        );
        assert_eq!(integrity(&s.db()), "ok");
        assert!(backup_problems(&s).is_empty(), "{:?}", backup_problems(&s));
    }
}
