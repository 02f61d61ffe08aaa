//! Issue 9: Ctrl-C interrupts every long command, not only the migration
//! loop: `backup`, `restore`, `verify`, `backups` and a wait for another
//! program's lock end with exit 130 within about a second, leave no file
//! under a final name that is not a verified backup, and leave the database
//! as it was. SIGINT goes to the child after the line saying what it does.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::faults::backup_problems;
use crate::safety::big_db;
use crate::sandbox::{file_hash, Sandbox};

/// Runs `args`, sends SIGINT once stderr shows a line containing `line`, and
/// returns the exit code, how long the child took to stop, and its stderr.
fn interrupt_after(s: &Sandbox, args: &[&str], line: &str) -> (Option<i32>, Duration, String) {
    let mut child: Child = s
        .command(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn backstop");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut seen = String::new();
    loop {
        let mut l = String::new();
        let n = stderr.read_line(&mut l).expect("read stderr");
        assert!(n > 0, "`{args:?}` ended before {line:?}:\n{seen}");
        seen.push_str(&l);
        if l.contains(line) {
            break;
        }
    }
    let sent = Instant::now();
    // SAFETY: kill(2) on our own child, not yet reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let mut rest = String::new();
    let _ = stderr.read_to_string(&mut rest);
    let status = child.wait().expect("wait");
    (status.code(), sent.elapsed(), seen + &rest)
}

#[track_caller]
fn stopped(args: &[&str], (code, took, stderr): &(Option<i32>, Duration, String)) {
    assert_eq!(
        *code,
        Some(130),
        "`{args:?}` did not stop on Ctrl-C:\n{stderr}"
    );
    assert!(
        *took < Duration::from_secs(2),
        "`{args:?}` took {took:?} to stop:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn ctrl_c_stops_a_backup() {
    let s = Sandbox::new();
    big_db(&s);
    let before = file_hash(&s.db());
    let args = ["backup"];
    let r = interrupt_after(&s, &args, "backing up");
    stopped(&args, &r);
    assert_eq!(file_hash(&s.db()), before);
    assert!(s.backups().is_empty(), "{}", s.listing());
    assert!(backup_problems(&s).is_empty(), "{:?}", backup_problems(&s));
}

#[test]
fn ctrl_c_stops_a_wal_backup() {
    let s = Sandbox::new();
    s.conn()
        .query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .expect("wal");
    big_db(&s);
    let args = ["backup"];
    let r = interrupt_after(&s, &args, "backing up");
    stopped(&args, &r);
    assert!(s.backups().is_empty(), "{}", s.listing());
}

#[test]
fn ctrl_c_stops_a_restore_and_leaves_the_database_as_it_was() {
    let s = Sandbox::new();
    big_db(&s);
    s.run(&["backup", "--label", "snap"]).code(0);
    s.conn()
        .execute_batch("DELETE FROM big WHERE rowid % 2 = 0; INSERT INTO big VALUES (x'00');")
        .expect("change");
    let before = file_hash(&s.db());
    let args = ["restore", "--latest", "--yes"];
    let r = interrupt_after(&s, &args, "restoring");
    stopped(&args, &r);
    assert_eq!(file_hash(&s.db()), before, "the database changed:\n{}", r.2);
    assert_eq!(crate::faults::integrity(&s.db()), "ok");
    assert!(backup_problems(&s).is_empty(), "{:?}", backup_problems(&s));
}

#[test]
fn ctrl_c_stops_verify_and_backups() {
    let s = Sandbox::new();
    big_db(&s);
    s.run(&["backup"]).code(0);
    for (args, line) in [
        (&["verify"][..], "checking the integrity of"),
        (&["backups"][..], "hashing the backups in"),
    ] {
        let r = interrupt_after(&s, args, line);
        stopped(args, &r);
    }
}

#[test]
fn ctrl_c_stops_a_wait_for_another_programs_lock() {
    let s = Sandbox::new();
    s.migration("1_a.sql", "CREATE TABLE a (x);\n");
    s.conn().execute_batch("CREATE TABLE t (x)").expect("db");
    let holder = Connection::open(s.db()).expect("open");
    holder
        .execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES (1);")
        .expect("hold the write lock");
    let args = ["up", "--busy-timeout-ms", "60000"];
    let r = interrupt_after(&s, &args, "waiting for a lock on");
    stopped(&args, &r);
    assert!(r.2.contains("held by another connection"), "{}", r.2);
    holder.execute_batch("ROLLBACK").expect("release");
    assert!(s.applied().is_empty());
    // A read waits the same way for a writer that holds EXCLUSIVE.
    holder
        .execute_batch("BEGIN EXCLUSIVE; INSERT INTO t VALUES (2);")
        .expect("hold EXCLUSIVE");
    let args = ["status", "--busy-timeout-ms", "60000"];
    let r = interrupt_after(&s, &args, "waiting for a lock on");
    stopped(&args, &r);
    holder.execute_batch("ROLLBACK").expect("release");
}

/// Issue 10: on a terminal too, a wait for another program's lock says so,
/// and the run goes on once the lock is free.
#[test]
fn a_wait_for_a_lock_is_announced_on_a_terminal() {
    let s = Sandbox::new();
    s.migration("1_a.sql", "CREATE TABLE a (x);\n");
    s.conn().execute_batch("CREATE TABLE t (x)").expect("db");
    let holder = Connection::open(s.db()).expect("open");
    holder
        .execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES (1);")
        .expect("hold the write lock");
    let mut pty = crate::pty::Pty::spawn(&s, &["up", "--busy-timeout-ms", "60000"]);
    pty.expect("waiting for a lock on dev.db, held by another connection");
    holder.execute_batch("ROLLBACK").expect("release");
    let transcript = pty.transcript();
    assert_eq!(pty.exit_code(), 0, "{transcript}");
    assert_eq!(s.applied(), vec![1]);
}
