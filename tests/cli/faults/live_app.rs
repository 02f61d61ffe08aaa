//! A live application beside backstop: a writer thread commits a row every few
//! milliseconds into its own table of a WAL database while `up` runs. Its
//! committed rows must survive `up`, and a restore after a failed run may only
//! undo them with a warning (SPEC "Restore": "If other processes wrote … it
//! says so before restoring").

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::sandbox::Sandbox;

/// The application: inserts `app_events` rows until stopped and remembers the
/// id of every insert that committed.
pub(super) struct App {
    stop: Arc<AtomicBool>,
    committed: Arc<Mutex<Vec<i64>>>,
    errors: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl App {
    pub(super) fn start(s: &Sandbox) -> App {
        let stop = Arc::new(AtomicBool::new(false));
        let committed = Arc::new(Mutex::new(Vec::new()));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let conn = s.conn();
        conn.busy_timeout(Duration::from_secs(10)).expect("busy");
        let (stop2, committed2, errors2) = (stop.clone(), committed.clone(), errors.clone());
        let thread = std::thread::spawn(move || {
            let mut id = 1_000_000;
            while !stop2.load(Ordering::Relaxed) {
                id += 1;
                match conn.execute(
                    "INSERT INTO app_events (id, at) VALUES (?1, strftime('%f', 'now'))",
                    [id],
                ) {
                    Ok(_) => committed2.lock().expect("lock").push(id),
                    Err(e) => errors2.lock().expect("lock").push(e.to_string()),
                }
                std::thread::sleep(Duration::from_millis(3));
            }
        });
        App {
            stop,
            committed,
            errors,
            thread: Some(thread),
        }
    }

    pub(super) fn count(&self) -> usize {
        self.committed.lock().expect("lock").len()
    }

    pub(super) fn finish(mut self) -> (Vec<i64>, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("writer thread");
        }
        let committed = self.committed.lock().expect("lock").clone();
        let errors = self.errors.lock().expect("lock").clone();
        (committed, errors)
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A WAL database with the app's table and a MB of other data.
pub(super) fn live_db(s: &Sandbox) {
    let conn = s.conn();
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .expect("wal");
    conn.execute_batch(
        "CREATE TABLE app_events (id INTEGER PRIMARY KEY, at TEXT);
         CREATE TABLE ballast (b BLOB);
         INSERT INTO ballast WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < 1000)
           SELECT randomblob(1000) FROM n;",
    )
    .expect("live db");
}

/// A migration that takes a moment (`rows` rows), so the app may commit
/// between migrations.
pub(super) fn slow_migration(i: usize, rows: usize) -> String {
    format!(
        "CREATE TABLE m{i} (id INTEGER PRIMARY KEY, v TEXT);\n\
         INSERT INTO m{i} (v) WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < {rows})\n\
           SELECT printf('%d', k) FROM n;\n"
    )
}

pub(super) fn present(s: &Sandbox) -> BTreeSet<i64> {
    let conn = s.conn();
    let mut stmt = conn.prepare("SELECT id FROM app_events").expect("prepare");
    let ids = stmt
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<rusqlite::Result<BTreeSet<i64>>>()
        .expect("ids");
    ids
}

/// Waits until the app has committed `n` more rows (it is really running).
pub(super) fn wait_for_rows(app: &App, n: usize) {
    let target = app.count() + n;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while app.count() < target {
        assert!(
            std::time::Instant::now() < deadline,
            "the app does not write"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn up_beside_a_live_writer_loses_none_of_its_committed_rows() {
    let s = Sandbox::new();
    live_db(&s);
    for i in 1..=5 {
        s.migration(&format!("{i}_m{i}.sql"), &slow_migration(i, 20_000));
    }
    let app = App::start(&s);
    wait_for_rows(&app, 5);
    let before = app.count();
    let out = s.run(&["up", "--busy-timeout-ms", "10000"]);
    let during = app.count() - before;
    wait_for_rows(&app, 5);
    let (committed, errors) = app.finish();
    out.code(0);
    assert_eq!(s.applied(), vec![1, 2, 3, 4, 5]);
    assert!(errors.is_empty(), "the app's writes failed: {errors:?}");
    let present = present(&s);
    let lost: Vec<i64> = committed
        .iter()
        .filter(|id| !present.contains(id))
        .copied()
        .collect();
    assert!(lost.is_empty(), "committed rows lost: {lost:?}");
    assert_eq!(present.len(), committed.len());
    assert_eq!(super::integrity(&s.db()), "ok");
    eprintln!(
        "live app: {} rows committed, {during} while up ran; none lost",
        committed.len()
    );
}

/// `--on-failure restore` beside an app that keeps writing (issue 9): without
/// `--force` the app's committed rows are never discarded (backstop keeps the
/// database at the last good migration and says why); with `--force` the run
/// is undone, the loss is announced, and every undone row is in the
/// before-restore copy.
#[test]
fn on_failure_restore_beside_a_live_writer_never_discards_its_rows_without_force() {
    let rounds = super::size(2, 20);
    let mut kept_rounds = 0;
    for round in 0..rounds {
        let force = round % 2 == 1;
        let s = Sandbox::new();
        live_db(&s);
        s.migration("1_m1.sql", &slow_migration(1, 20_000))
            .migration("2_m2.sql", &slow_migration(2, 20_000))
            .migration("3_bad.sql", "SELECT abs(-9223372036854775808);\n");
        let app = App::start(&s);
        wait_for_rows(&app, 5);
        let mut args = vec![
            "up",
            "--on-failure",
            "restore",
            "--busy-timeout-ms",
            "10000",
        ];
        if force {
            args.push("--force");
        }
        let out = s.run(&args);
        wait_for_rows(&app, 5);
        let (committed, errors) = app.finish();
        out.code(1).stderr_has("integer overflow");
        assert!(
            errors.is_empty(),
            "round {round}: the app's writes failed: {errors:?}"
        );
        let present = present(&s);
        let lost: Vec<i64> = committed
            .iter()
            .filter(|id| !present.contains(id))
            .copied()
            .collect();
        assert_eq!(super::integrity(&s.db()), "ok");
        if !force {
            assert!(
                lost.is_empty(),
                "round {round}: {} rows discarded without --force:\n{}",
                lost.len(),
                out.stderr
            );
            if out.stderr.contains("not restoring") {
                kept_rounds += 1;
                assert_eq!(
                    s.applied(),
                    vec![1, 2],
                    "round {round}: not kept at the last good migration"
                );
                out.stderr_has("another program wrote")
                    .stderr_has("--force");
            } else {
                out.stderr_has("restored");
            }
            continue;
        }
        out.stderr_has("restored");
        assert_eq!(
            s.applied(),
            Vec::<u64>::new(),
            "round {round}: the run was not undone"
        );
        if !lost.is_empty() {
            // Said before, and kept in the copy of what was replaced.
            let safety = s
                .backups()
                .into_iter()
                .find(|p| p.to_string_lossy().contains(".before-restore."))
                .expect("a before-restore copy");
            let conn = rusqlite::Connection::open_with_flags(
                &safety,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .expect("open the copy");
            for id in &lost {
                let n: i64 = conn
                    .query_row("SELECT count(*) FROM app_events WHERE id = ?1", [id], |r| {
                        r.get(0)
                    })
                    .expect("count");
                assert_eq!(
                    n, 1,
                    "round {round}: row {id} undone and not in the before-restore copy"
                );
            }
        }
    }
    eprintln!(
        "live app + --on-failure restore: {rounds} round(s), {kept_rounds} kept for the app's sake"
    );
}

/// SPEC `up`: "Between the backup and the first migration no other process may
/// write unnoticed: hold the write lock across both". Once the backup exists
/// and while the first migration still runs, another writer must be turned
/// away (for both journal modes).
#[test]
fn no_other_writer_gets_in_between_the_backup_and_the_first_migration() {
    for wal in [false, true] {
        let s = Sandbox::new();
        {
            let conn = s.conn();
            if wal {
                conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
                    .expect("wal");
            }
            conn.execute_batch("CREATE TABLE app_events (id INTEGER PRIMARY KEY, at TEXT)")
                .expect("app table");
        }
        // A first migration that takes seconds without writing much.
        s.migration(
            "1_slow.sql",
            "CREATE TABLE slow (n INTEGER);\n\
             INSERT INTO slow SELECT count(*) FROM (WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < 1000000) SELECT k FROM n);\n",
        );
        let mut child = s
            .command(&["up"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        crate::sandbox::wait_for(&mut child, "a backup appeared", || !s.backups().is_empty());
        let conn = s.conn();
        conn.busy_timeout(Duration::ZERO).expect("no wait");
        let got_in = conn.execute_batch(
            "BEGIN IMMEDIATE; INSERT INTO app_events (at) VALUES ('sneaked in'); COMMIT",
        );
        let still_running = s.applied().is_empty();
        let status = child.wait().expect("wait");
        assert!(status.success(), "up failed");
        assert!(
            still_running,
            "the slow migration committed too soon; inconclusive"
        );
        assert!(
            got_in.is_err(),
            "{} mode: another connection wrote between the backup and the first migration",
            if wal { "WAL" } else { "rollback-journal" }
        );
        assert_eq!(super::integrity(&s.db()), "ok");
    }
}
