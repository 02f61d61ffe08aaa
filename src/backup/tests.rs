//! `take` beside a writer in this process: the WAL copy is one snapshot that
//! never restarts, and its fingerprint is never newer than its content.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;

use super::{fingerprint, take, Request, Since};
use crate::observe::{Event, Observer};

/// Records the copy's progress.
#[derive(Default)]
struct Recorder {
    done: Vec<u64>,
}

impl Observer for Recorder {
    fn event(&mut self, event: Event<'_>) {
        if let Event::BackupProgress { done, .. } = event {
            self.done.push(done);
        }
    }
}

fn request<'a>(db: &'a std::path::Path, folder: &'a std::path::Path) -> Request<'a> {
    Request {
        database: db,
        folder,
        reason: "manual",
        keep: 10,
        newest_version: None,
        busy: Duration::from_secs(5),
        held: super::Held::Nothing,
        protect: Vec::new(),
        extensions: &[],
    }
}

#[test]
fn a_wal_backup_beside_a_busy_writer_is_one_snapshot_that_never_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let conn = Connection::open(&db).unwrap();
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .unwrap();
    conn.execute_batch(
        "CREATE TABLE events (id INTEGER PRIMARY KEY, at TEXT);
         CREATE TABLE ballast (b BLOB);
         INSERT INTO ballast WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < 12000)
           SELECT randomblob(1000) FROM n;",
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                conn.execute("INSERT INTO events (at) VALUES ('x')", [])
                    .unwrap();
                n += 1;
            }
            // Still open: its log is not checkpointed away.
            (n, conn)
        })
    };
    let mut rec = Recorder::default();
    let folder = dir.path().join("backups");
    let info = take(&request(&db, &folder), &mut rec).unwrap();
    stop.store(true, Ordering::Relaxed);
    let (commits, conn) = writer.join().unwrap();
    assert!(commits > 0);
    // A restart would start the page count over.
    assert!(
        rec.done.windows(2).all(|w| w[0] <= w[1]),
        "the copy started over: {:?}",
        rec.done
    );
    // The fingerprint is never newer than the copy: it counts at least the
    // commits the copy does not hold.
    let count = |c: &Connection| -> u64 {
        c.query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0))
            .unwrap() as u64
    };
    let missing = count(&conn) - count(&super::open_backup(&info.path).unwrap());
    let then = info.manifest.fingerprint.expect("a fingerprint");
    match fingerprint::since(&then, &fingerprint::read(&db).unwrap()) {
        Since::Written { commits: Some(c) } => assert!(c >= missing, "{c} < {missing}"),
        Since::Written { commits: None } => {}
        other => assert_eq!(
            missing, 0,
            "{other:?} with {missing} commits after the copy"
        ),
    }
}
