//! `up --dry-run` with executable migrations: they run against the temporary
//! copy, and the real file is never changed, even by a script that opens a
//! path of its own (issue 12).

use super::{executable, python, INIT};
use crate::sandbox::Sandbox;

/// An applied first migration, so the real database exists with two clients.
fn applied() -> Sandbox {
    let s = Sandbox::new();
    s.migration("1_init.sql", INIT);
    s.run(&["up"]).code(0);
    s
}

#[test]
fn executables_rehearse_on_the_copy_and_the_real_file_stays_untouched() {
    if !python() {
        return;
    }
    let s = applied();
    s.migration(
        "2_backfill.py",
        "def up(conn):\n    conn.execute(\"INSERT INTO clients (name) VALUES ('cy')\")\n    print('added cy')\n",
    );
    executable(
        &s,
        "3_more.sh",
        "#!/bin/sh\npython3 -c \"import os, sqlite3; c = sqlite3.connect(os.environ['BACKSTOP_DATABASE']); c.execute(\\\"INSERT INTO clients (name) VALUES ('di')\\\"); c.commit()\"\n",
    );
    let out = s.refuses(&["up", "--dry-run"], 0);
    out.stdout_has("ok      2 backfill")
        .stdout_has("ok      3 more")
        .stderr_has("2: added cy");
    // Per table, before and after, as the copy saw it.
    let j = s.refuses(&["up", "--dry-run", "--json"], 0).json();
    let clients = j["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "clients")
        .cloned()
        .unwrap();
    assert_eq!(
        (clients["before"].as_u64(), clients["after"].as_u64()),
        (Some(2), Some(4))
    );
    assert_eq!(s.applied(), vec![1]);
}

#[test]
fn a_script_that_hard_codes_a_relative_path_cannot_write_the_real_file() {
    if !python() {
        return;
    }
    for mode in ["delete", "wal"] {
        let s = applied();
        s.conn()
            .query_row(&format!("PRAGMA journal_mode = {mode}"), [], |_| Ok(()))
            .unwrap();
        // The project's database by its own relative path, not BACKSTOP_DATABASE.
        s.migration(
            "2_hardcoded.py",
            "import sqlite3\ndb = sqlite3.connect('dev.db', timeout=0.2)\ndb.execute(\"INSERT INTO clients (name) VALUES ('zed')\")\ndb.commit()\n",
        );
        let out = s.refuses(&["up", "--dry-run"], 1);
        out.stderr_has("database is locked")
            .stderr_has("backstop holds the write lock")
            .stderr_has("BACKSTOP_DATABASE");
        assert_eq!(s.query_i64("SELECT count(*) FROM clients"), 2, "{mode}");
        // The real run gives the script the real file: it works.
        s.run(&["up"]).code(0);
        assert_eq!(s.query_i64("SELECT count(*) FROM clients"), 3, "{mode}");
    }
}

#[test]
fn a_change_of_the_real_file_around_sqlites_locks_is_refused() {
    if !python() {
        return;
    }
    let s = applied();
    // Rewrites the real file's bytes as they are: no lock stops a plain write.
    s.migration(
        "2_rewrite.py",
        "data = open('dev.db', 'rb').read()\nopen('dev.db', 'wb').write(data)\n",
    );
    s.run(&["up", "--dry-run"])
        .code(1)
        .stderr_has(
            "error: the real database dev.db changed during the rehearsal while migration(s) 2 ran",
        )
        .stderr_has("BACKSTOP_DATABASE");
    assert_eq!(s.applied(), vec![1]);
}

#[test]
fn a_rehearsal_without_executables_does_not_lock_the_real_file() {
    if !python() {
        return;
    }
    let s = applied();
    s.migration("2_more.sql", "INSERT INTO clients (name) VALUES ('cy');");
    // Another program holds the write lock: a SQL-only rehearsal does not care.
    let holder = s.conn();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    s.run(&["up", "--dry-run", "--busy-timeout-ms", "100"])
        .code(0);
    s.migration("3_more.py", "def up(conn): pass\n");
    s.run(&["up", "--dry-run", "--busy-timeout-ms", "100"])
        .code(4)
        .stderr_has("dev.db is locked");
    holder.execute_batch("ROLLBACK").unwrap();
}
