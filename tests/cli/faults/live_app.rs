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
struct App {
    stop: Arc<AtomicBool>,
    committed: Arc<Mutex<Vec<i64>>>,
    errors: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl App {
    fn start(s: &Sandbox) -> App {
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

    fn count(&self) -> usize {
        self.committed.lock().expect("lock").len()
    }

    fn finish(mut self) -> (Vec<i64>, Vec<String>) {
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
fn live_db(s: &Sandbox) {
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
fn slow_migration(i: usize, rows: usize) -> String {
    format!(
        "CREATE TABLE m{i} (id INTEGER PRIMARY KEY, v TEXT);\n\
         INSERT INTO m{i} (v) WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < {rows})\n\
           SELECT printf('%d', k) FROM n;\n"
    )
}

fn present(s: &Sandbox) -> BTreeSet<i64> {
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
fn wait_for_rows(app: &App, n: usize) {
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

/// The failing run is restored: the app's rows committed after the backup
/// are undone with it, and backstop must have said so. Rows are never lost
/// silently.
#[test]
fn restore_after_a_failed_up_beside_a_live_writer_never_loses_rows_silently() {
    let rounds = super::size(2, 20);
    let (mut undone_rounds, mut seen_by_run) = (0, 0);
    for round in 0..rounds {
        let s = Sandbox::new();
        live_db(&s);
        // Longer migrations in odd rounds: the app then commits during the
        // run, and the run itself sees it.
        let rows = if round % 2 == 0 { 20_000 } else { 150_000 };
        s.migration("1_m1.sql", &slow_migration(1, rows))
            .migration("2_m2.sql", &slow_migration(2, rows))
            .migration("3_bad.sql", "SELECT abs(-9223372036854775808);\n");
        let app = App::start(&s);
        wait_for_rows(&app, 5);
        let out = s.run(&[
            "up",
            "--on-failure",
            "restore",
            "--busy-timeout-ms",
            "10000",
        ]);
        wait_for_rows(&app, 5);
        let (committed, errors) = app.finish();
        out.code(1).stderr_has("integer overflow");
        out.stderr_has("restored");
        assert_eq!(
            s.applied(),
            Vec::<u64>::new(),
            "round {round}: the run was not undone"
        );
        assert!(
            errors.is_empty(),
            "round {round}: the app's writes failed: {errors:?}"
        );
        let present = present(&s);
        let lost = committed.iter().filter(|id| !present.contains(id)).count();
        let warned =
            out.stderr.contains("another program wrote") || out.stderr.contains("written after");
        assert!(
            lost == 0 || warned,
            "round {round}: {lost} committed rows were undone by the restore without a warning:\n{}",
            out.stderr
        );
        // Rows the app committed after the restore are all there.
        assert!(present.contains(committed.last().expect("rows")));
        assert_eq!(super::integrity(&s.db()), "ok");
        undone_rounds += (lost > 0) as usize;
        seen_by_run += out.stderr.contains("another program wrote") as usize;
    }
    eprintln!(
        "live app + restore: {rounds} round(s), rows undone in {undone_rounds} (always announced; \
         {seen_by_run} seen during the run itself)"
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
