//! The last check before the copy-in (issue 9): a commit between the preview
//! and the restore's lock is refused, and changes nothing.

use std::path::Path;

use rusqlite::Connection;

use super::{preview, run, RestoreOptions};
use crate::error::Error;
use crate::observe::{Interrupt, Silent};
use crate::settings::{self, Overrides, Settings};

fn settings(dir: &Path) -> Settings {
    let overrides = Overrides {
        database: Some(dir.join("app.db").to_string_lossy().into_owned()),
        migrations: Some(dir.join("migrations")),
        backups: Some(dir.join("backups")),
        config: Some(dir.join("none.toml")),
        ..Overrides::default()
    };
    std::fs::write(dir.join("none.toml"), "").unwrap();
    settings::resolve(&overrides, &|_| None).unwrap()
}

fn count(db: &Path) -> i64 {
    Connection::open(db)
        .unwrap()
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_commit_between_the_preview_and_the_lock_is_refused_unless_accepted() {
    for wal in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path());
        let conn = Connection::open(&s.database).unwrap();
        if wal {
            conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
                .unwrap();
        }
        conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
        let backup = crate::backup::manual(&s, None, &mut Silent).unwrap();
        conn.execute("INSERT INTO t VALUES (2)", []).unwrap();
        let seen = preview(&s, &backup.path, &Interrupt::new()).unwrap();
        // Another program commits while the person reads the preview.
        conn.execute("INSERT INTO t VALUES (3)", []).unwrap();
        let r = run(
            &s,
            &seen,
            &RestoreOptions::default(),
            &mut Silent,
            &Interrupt::new(),
        );
        assert!(matches!(r, Err(Error::WrittenMeanwhile { .. })), "{r:?}");
        assert_eq!(count(&s.database), 3, "wal: {wal}");
        // Accepted (`--yes`): restored, and the copy of what it replaced has all three.
        let accept = RestoreOptions {
            accept_new_writes: true,
            ..RestoreOptions::default()
        };
        let done = run(&s, &seen, &accept, &mut Silent, &Interrupt::new()).unwrap();
        assert_eq!(count(&s.database), 1);
        assert_eq!(count(&done.safety.unwrap().path), 3);
    }
}
