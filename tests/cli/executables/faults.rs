//! Faults around executable migrations: kill -9 of backstop during a module
//! and during a script, Ctrl-C, a live writer beside the first migration, and
//! the restore prompt after a failed script.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{executable, pid_in, python, wait_until_dead, Running, INIT};
use crate::faults::integrity;
use crate::output::interrupt_piped;
use crate::pty::Pty;
use crate::sandbox::Sandbox;

/// Creates `t` in its transaction, says so, then keeps writing while the
/// file `hang` exists in the project folder.
const HANGING_MODULE: &str = r#"import os, time
def up(conn):
    open('runner.pid', 'w').write(str(os.getpid()))
    conn.execute('CREATE TABLE t (x)')
    print('module started', flush=True)
    while os.path.exists('hang'):
        conn.execute('INSERT INTO t VALUES (1)')
        time.sleep(0.005)
"#;

/// Commits a first row itself, says so, then waits while `hang` exists.
const HANGING_SCRIPT: &str = r#"import os, sqlite3, time
open('script.pid', 'w').write(str(os.getpid()))
c = sqlite3.connect(os.environ['BACKSTOP_DATABASE'])
c.execute('CREATE TABLE IF NOT EXISTS imported (id INTEGER PRIMARY KEY)')
c.execute('INSERT OR IGNORE INTO imported VALUES (1)')
c.commit()
print('script started', flush=True)
while os.path.exists('hang'):
    time.sleep(0.005)
c.execute('INSERT OR IGNORE INTO imported VALUES (2)')
c.commit()
"#;

#[test]
fn sigkill_during_a_module_kills_its_runner_rolls_it_back_and_a_rerun_finishes() {
    if !python() {
        return;
    }
    for mode in ["delete", "wal"] {
        let s = Sandbox::new();
        s.conn()
            .query_row(&format!("PRAGMA journal_mode = {mode}"), [], |_| Ok(()))
            .unwrap();
        s.migration("1_init.sql", INIT)
            .migration("2_hang.py", HANGING_MODULE)
            .write("hang", "");
        let mut run = Running::spawn(&s, &["up"]);
        run.until("2: module started");
        let pid = pid_in(&s, "runner.pid");
        run.kill9();
        // The parent-death signal: no orphan keeps the transaction open.
        wait_until_dead(pid, "the Python runner");
        assert_eq!(integrity(&s.db()), "ok", "{mode}");
        assert!(
            !s.table_exists("t"),
            "{mode}: the killed module's table exists"
        );
        assert_eq!(s.applied(), vec![1], "{mode}");
        s.remove("hang");
        s.run(&["up"]).code(0);
        assert_eq!(s.applied(), vec![1, 2], "{mode}");
        assert_eq!(s.query_i64("SELECT count(*) FROM t"), 0);
    }
}

#[test]
fn sigkill_during_a_script_kills_it_and_a_rerun_finishes() {
    if !python() {
        return;
    }
    let s = Sandbox::new();
    s.migration("1_init.sql", INIT)
        .migration("2_import.py", HANGING_SCRIPT)
        .write("hang", "");
    let mut run = Running::spawn(&s, &["up"]);
    run.until("2: script started");
    let pid = pid_in(&s, "script.pid");
    run.kill9();
    wait_until_dead(pid, "the script");
    assert_eq!(integrity(&s.db()), "ok");
    // Not atomic with its row: what it committed stays, unrecorded.
    assert_eq!(s.query_i64("SELECT count(*) FROM imported"), 1);
    assert_eq!(s.applied(), vec![1]);
    let log = s.run(&["log", "--json"]).code(0).json();
    assert_eq!(log["runs"][0]["outcome"], "interrupted", "{log}");
    s.remove("hang");
    s.run(&["up"]).code(0);
    assert_eq!(s.applied(), vec![1, 2]);
    assert_eq!(s.query_i64("SELECT count(*) FROM imported"), 2);
}

#[test]
fn ctrl_c_during_a_module_rolls_it_back() {
    if !python() {
        return;
    }
    let slow = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 100000000) SELECT count(*) FROM c";
    for (what, body) in [
        // Inside one long statement: the runner's progress handler stops it.
        ("sql", format!("    conn.execute('{slow}')\n")),
        // In Python code: KeyboardInterrupt.
        ("python", "    while True:\n        pass\n".to_owned()),
    ] {
        let s = Sandbox::new();
        s.migration("1_init.sql", INIT).migration(
            "2_slow.py",
            &format!("def up(conn):\n    conn.execute('CREATE TABLE t (x)')\n    print('module started', flush=True)\n{body}"),
        );
        let out = interrupt_piped(&s, &["up"], "2: module started");
        out.code(130)
            .stderr_has("migration 2 interrupted; rolled back");
        assert_eq!(s.applied(), vec![1], "{what}");
        assert!(!s.table_exists("t"), "{what}");
        let log = s.run(&["log", "--json"]).code(0).json();
        assert_eq!(log["runs"][0]["outcome"], "interrupted", "{what}: {log}");
    }
}

#[test]
fn ctrl_c_during_a_script_reaches_it_and_reports_it_interrupted() {
    if !python() {
        return;
    }
    let s = Sandbox::new();
    s.migration("1_init.sql", INIT)
        .migration("2_import.py", HANGING_SCRIPT)
        .write("hang", "");
    let out = interrupt_piped(&s, &["up"], "2: script started");
    out.code(130)
        .stderr_has("migration 2 interrupted")
        .stderr_has("a script commits its own changes")
        .stderr_has("backstop restore");
    let pid = pid_in(&s, "script.pid");
    wait_until_dead(pid, "the interrupted script");
    assert_eq!(s.applied(), vec![1]);
}

#[test]
fn no_writer_slips_in_between_the_backup_and_a_first_module() {
    if !python() {
        return;
    }
    for wal in [false, true] {
        let s = Sandbox::new();
        let conn = s.conn();
        if wal {
            conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
                .unwrap();
        }
        conn.execute_batch("CREATE TABLE app_events (id INTEGER PRIMARY KEY)")
            .unwrap();
        drop(conn);
        s.migration(
            "1_seen.py",
            "def up(conn):\n    n, top = conn.execute('SELECT count(*), max(id) FROM app_events').fetchone()\n    conn.execute('CREATE TABLE seen (n, top)')\n    conn.execute('INSERT INTO seen VALUES (?, ?)', (n, top))\n",
        );
        // The live app: commits a row every millisecond or so.
        let stop = Arc::new(AtomicBool::new(false));
        let committed = Arc::new(AtomicUsize::new(0));
        let app = s.conn();
        app.busy_timeout(Duration::from_secs(20)).unwrap();
        let (stop2, committed2) = (stop.clone(), committed.clone());
        let writer = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                app.execute("INSERT INTO app_events DEFAULT VALUES", [])
                    .unwrap();
                committed2.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        while committed.load(Ordering::Relaxed) < 20 {
            std::thread::yield_now();
        }
        let before = committed.load(Ordering::Relaxed);
        let out = s.run(&["up", "--busy-timeout-ms", "20000"]);
        let during = committed.load(Ordering::Relaxed) - before;
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
        out.code(0);
        assert!(during > 0, "the app did not write while up ran");
        // What the module saw when it began is exactly what the backup holds.
        let backup = rusqlite::Connection::open(&s.backups()[0]).unwrap();
        let in_backup: (i64, i64) = backup
            .query_row("SELECT count(*), max(id) FROM app_events", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        let seen: (i64, i64) = s
            .conn()
            .query_row("SELECT n, top FROM seen", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(
            seen, in_backup,
            "wal {wal}: a write landed between the backup and the module"
        );
    }
}

#[test]
fn a_failed_script_then_the_restore_prompt_puts_the_backup_back() {
    if !python() {
        return;
    }
    let s = Sandbox::new();
    s.migration("1_init.sql", INIT);
    s.run(&["up"]).code(0);
    s.migration("2_more.sql", "INSERT INTO clients (name) VALUES ('cy');");
    // Writes a row, then fails: its write stays until the backup is restored.
    executable(
        &s,
        "3_import.sh",
        "#!/bin/sh\npython3 -c \"import os, sqlite3; c = sqlite3.connect(os.environ['BACKSTOP_DATABASE']); c.execute(\\\"INSERT INTO clients (name) VALUES ('half')\\\"); c.commit()\"\necho 'import failed' >&2\nexit 2\n",
    );
    let mut pty = Pty::spawn(&s, &["up"]);
    pty.expect("exited with code 2");
    // The script changed the database itself: backstop cannot tell its
    // writes from another program's, says so, and keeps by default.
    pty.expect("cannot tell");
    pty.expect("What now?");
    pty.expect_regex("❯ Keep");
    pty.send("\x1b[A");
    pty.expect_regex("❯ Restore");
    pty.send("\r");
    pty.expect("restored");
    let transcript = pty.transcript();
    assert_eq!(pty.exit_code(), 1, "{transcript}");
    assert_eq!(s.applied(), vec![1]);
    assert_eq!(s.query_i64("SELECT count(*) FROM clients"), 2);
    assert_eq!(
        s.query_i64("SELECT count(*) FROM clients WHERE name = 'half'"),
        0
    );
}

#[test]
fn ctrl_c_on_a_terminal_reaches_a_module_through_backstop() {
    if !python() {
        return;
    }
    let s = Sandbox::new();
    s.migration("1_init.sql", INIT)
        .migration("2_hang.py", HANGING_MODULE)
        .write("hang", "");
    let mut pty = Pty::spawn(&s, &["up"]);
    pty.expect("│ module started");
    // The terminal sends SIGINT to backstop's group only; the runner has its
    // own, and gets it from backstop.
    pty.send("\x03");
    pty.expect("migration 2 interrupted; rolled back");
    pty.expect("What now?");
    pty.send("\r");
    pty.expect("restored");
    let transcript = pty.transcript();
    assert_eq!(pty.exit_code(), 130, "{transcript}");
    assert!(!s.table_exists("t"));
    assert_eq!(s.applied(), Vec::<u64>::new());
}
