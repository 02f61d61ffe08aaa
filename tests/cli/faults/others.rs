//! Issue 9: other programs' writes are known before every choice, and no
//! default loses them. Writes after a backup are told in both journal modes;
//! the failure prompt beside a live app defaults to keeping, notices writes
//! made while it waits, and offers to revert with down sections; a restore or
//! a backup beside a busy writer finishes in bounded time and undoes nothing
//! that is not in the before-restore copy.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use super::live_app::{present, App};
use crate::pty::Pty;
use crate::sandbox::Sandbox;

const MODES: [bool; 2] = [false, true];

fn mode_name(wal: bool) -> &'static str {
    if wal {
        "WAL"
    } else {
        "rollback-journal"
    }
}

/// A database in the given journal mode with the app's table (outside
/// migrations) and about `kib` KiB of other data.
fn app_db(s: &Sandbox, wal: bool, kib: usize) {
    let conn = s.conn();
    if wal {
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
            .expect("wal");
    }
    conn.execute_batch(&format!(
        "CREATE TABLE app_events (id INTEGER PRIMARY KEY, at TEXT);
         CREATE TABLE ballast (b BLOB);
         INSERT INTO ballast WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < {kib})
           SELECT randomblob(1000) FROM n;"
    ))
    .expect("app db");
}

/// Migrations 1 and 2 (with down sections) apply; 3 fails at run time.
/// Migration 2 runs a slow read outside a transaction, so another program can
/// commit while it runs, for certain, in either journal mode.
fn failing_run(s: &Sandbox) {
    s.migration(
        "1_a.sql",
        "-- migrate:up\nCREATE TABLE a (x);\nINSERT INTO a VALUES (1);\n-- migrate:down\nDROP TABLE a;\n",
    )
    .migration(
        "2_slow.sql",
        "-- migrate:up transaction:false\nCREATE TABLE b (x);\n\
         WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000) SELECT count(*) FROM c;\n\
         -- migrate:down\nDROP TABLE b;\n",
    )
    .migration("3_bad.sql", "SELECT abs(-9223372036854775808);\n");
}

/// One row by "another program", committed before this returns. Its ids
/// stay below the live `App`'s, which start at 1,000,001.
fn app_insert(s: &Sandbox, what: &str) -> i64 {
    static NEXT: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1);
    let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let conn = s.conn();
    conn.busy_timeout(Duration::from_secs(30)).expect("busy");
    conn.execute(
        "INSERT INTO app_events (id, at) VALUES (?1, ?2)",
        rusqlite::params![id, what],
    )
    .expect("the app's insert");
    id
}

fn open_ro(p: &Path) -> Connection {
    Connection::open_with_flags(p, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open read-only")
}

fn ids(p: &Path) -> BTreeSet<i64> {
    let conn = open_ro(p);
    let mut stmt = conn.prepare("SELECT id FROM app_events").expect("prepare");
    let ids = stmt
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<rusqlite::Result<BTreeSet<i64>>>()
        .expect("ids");
    ids
}

fn with_reason(s: &Sandbox, reason: &str) -> Vec<PathBuf> {
    s.backups()
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(&format!(".{reason}.")))
        .collect()
}

#[test]
fn restore_tells_writes_after_a_backup_in_both_journal_modes() {
    for wal in MODES {
        let s = Sandbox::new();
        app_db(&s, wal, 10);
        // The other program stays connected: in WAL mode its commits stay in
        // the -wal, where the header's change counter does not see them.
        let app = s.conn();
        app.execute_batch("PRAGMA wal_autocheckpoint = 0")
            .expect("no checkpoints");
        s.run(&["backup", "--label", "snap"]).code(0);
        let snap = with_reason(&s, "snap").pop().expect("the backup");
        let snap = snap.to_str().expect("utf-8 path");
        let out = s.run(&["restore", snap, "--yes"]);
        out.code(0)
            .stderr_has("no writes since this backup was taken");

        s.run(&["backup", "--label", "snap2"]).code(0);
        let snap2 = with_reason(&s, "snap2").pop().expect("the backup");
        for i in 0..2 {
            app.execute(
                "INSERT INTO app_events (at) VALUES (?1)",
                [format!("later {i}")],
            )
            .expect("insert");
        }
        let out = s.run(&["restore", snap2.to_str().expect("utf-8"), "--yes"]);
        out.code(0);
        assert!(
            out.stderr
                .contains("the database was written after this backup was taken (2 commits)"),
            "{} mode: the two commits went unannounced:\n{}",
            mode_name(wal),
            out.stderr
        );
        // Undone, and kept in the copy of what was replaced.
        assert!(ids(&s.db()).is_empty());
        let safety = with_reason(&s, "before-restore")
            .pop()
            .expect("a safety copy");
        assert_eq!(ids(&safety).len(), 2, "{}", s.listing());
    }
}

#[test]
fn restore_cannot_tell_after_the_wal_was_checkpointed_away_and_says_so() {
    let s = Sandbox::new();
    app_db(&s, true, 10);
    let app = s.conn();
    s.run(&["backup", "--label", "snap"]).code(0);
    app.execute("INSERT INTO app_events (at) VALUES ('later')", [])
        .expect("insert");
    app.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .expect("checkpoint");
    let snap = with_reason(&s, "snap").pop().expect("the backup");
    // "Cannot tell" is never silence: it says so, and assumes the worst.
    let out = s.run(&["restore", snap.to_str().expect("utf-8"), "--yes"]);
    out.code(0);
    assert!(
        out.stderr.contains("was written after this backup")
            || out
                .stderr
                .contains("cannot tell whether the database was written"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("no writes since"), "{}", out.stderr);
}

/// The pty `up` of `failing_run` with another program's commit during the
/// slow migration; returns the session at the prompt and the id committed.
fn prompt_after_others_wrote(s: &Sandbox) -> (Pty, i64) {
    let mut pty = Pty::spawn(s, &["up", "--busy-timeout-ms", "30000"]);
    pty.expect("line 3: WITH RECURSIVE");
    let id = app_insert(s, "during the run");
    // Said first, then asked.
    pty.expect("restoring the backup would discard those writes");
    pty.expect("What now?");
    (pty, id)
}

#[test]
fn failure_prompt_beside_a_live_writer_defaults_to_keep_and_loses_no_row() {
    for wal in MODES {
        let s = Sandbox::new();
        app_db(&s, wal, 10);
        failing_run(&s);
        let app = App::start(&s);
        let (mut pty, id) = prompt_after_others_wrote(&s);
        pty.expect("AND discard the other writes");
        // The highlighted (default) answer keeps.
        pty.expect_regex("❯ Keep");
        pty.send("\r");
        pty.expect("kept");
        let transcript = pty.transcript();
        assert_eq!(pty.exit_code(), 1, "{transcript}");
        let (committed, errors) = app.finish();
        assert!(errors.is_empty(), "the app's writes failed: {errors:?}");
        let present = present(&s);
        let lost = committed.iter().filter(|i| !present.contains(i)).count();
        assert_eq!(
            lost,
            0,
            "{} mode: the default lost {lost} rows",
            mode_name(wal)
        );
        assert!(present.contains(&id));
        assert_eq!(s.applied(), vec![1, 2]);
        eprintln!(
            "{} mode: {} app rows committed during the run and the prompt, all kept",
            mode_name(wal),
            committed.len()
        );
    }
}

#[test]
fn writes_made_while_the_prompt_waits_are_seen_and_asked_about_again() {
    for wal in MODES {
        let s = Sandbox::new();
        app_db(&s, wal, 10);
        failing_run(&s);
        let mut pty = Pty::spawn(&s, &["up"]);
        pty.expect("What now?");
        // Nobody else wrote: restoring is the default.
        pty.expect_regex("❯ Restore");
        let id = app_insert(&s, "while the prompt waits");
        pty.send("\r");
        pty.expect("while you were choosing");
        pty.expect("restoring the backup would discard those writes");
        pty.expect_regex("❯ Keep");
        pty.send("\r");
        pty.expect("kept");
        let transcript = pty.transcript();
        assert_eq!(pty.exit_code(), 1, "{transcript}");
        assert!(
            ids(&s.db()).contains(&id),
            "{} mode: the row is gone",
            mode_name(wal)
        );
        assert!(with_reason(&s, "before-restore").is_empty());
    }
}

#[test]
fn the_third_choice_reverts_the_run_with_down_sections_and_keeps_other_rows() {
    let s = Sandbox::new();
    app_db(&s, true, 10);
    failing_run(&s);
    let (mut pty, id) = prompt_after_others_wrote(&s);
    pty.expect("Revert this run's 2 migrations");
    pty.send("\x1b[B");
    pty.expect_regex("❯ Revert");
    pty.send("\r");
    // Like any `down` on a terminal: what the down sections drop, asked.
    pty.expect("Run these migrations?");
    pty.send("y");
    pty.expect("reverted 2 migrations");
    assert_eq!(pty.exit_code(), 1);
    assert!(s.applied().is_empty());
    assert!(!s.table_exists("a") && !s.table_exists("b"));
    assert!(ids(&s.db()).contains(&id));
    // With its own backup first, like any `down`.
    assert_eq!(with_reason(&s, "before-down").len(), 1);
}

#[test]
fn on_failure_down_reverts_and_on_failure_restore_needs_force_over_other_writes() {
    let s = Sandbox::new();
    app_db(&s, false, 10);
    failing_run(&s);
    let run = |args: &[&str]| {
        let mut child = s
            .command(args)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn up");
        let stderr = child.stderr.take().expect("stderr");
        let lines = lines_until(stderr, "line 3: WITH RECURSIVE");
        let id = app_insert(&s, "during the run");
        let rest = lines.join().expect("reader");
        let status = child.wait().expect("wait");
        (status.code(), rest, id)
    };
    // `restore` without --force: kept, and why.
    let (code, err, id) = run(&["up", "-v", "--on-failure", "restore"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("not restoring") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(s.applied(), vec![1, 2]);
    assert!(ids(&s.db()).contains(&id));
    // `down`: the run's migrations reverted, the app's rows kept.
    s.run(&["down", "--steps", "2", "--yes"]).code(0);
    let (code, err, id) = run(&["up", "-v", "--on-failure", "down"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("reverted 2 migrations"), "{err}");
    assert!(s.applied().is_empty());
    assert!(ids(&s.db()).contains(&id));
    // `restore --force`: undone, the app's row only in the before-restore copy.
    let (code, err, id) = run(&["up", "-v", "--on-failure", "restore", "--force"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("restored"), "{err}");
    assert!(!ids(&s.db()).contains(&id));
    let safety = with_reason(&s, "before-restore")
        .pop()
        .expect("safety copy");
    assert!(ids(&safety).contains(&id));
}

/// Reads `stderr` until a line contains `needle`, then the rest on a thread.
pub(super) fn lines_until(
    stderr: std::process::ChildStderr,
    needle: &str,
) -> std::thread::JoinHandle<String> {
    use std::io::BufRead;
    let mut reader = std::io::BufReader::new(stderr);
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).expect("read stderr");
        assert!(n > 0, "the command ended before {needle:?}:\n{seen}");
        seen.push_str(&line);
        if line.contains(needle) {
            break;
        }
    }
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut reader, &mut rest);
        seen + &rest
    })
}

#[test]
fn when_the_first_migration_fails_nothing_is_restored_or_offered() {
    let s = Sandbox::new();
    app_db(&s, true, 10);
    s.migration("1_bad.sql", "SELECT abs(-9223372036854775808);\n");
    let out = s.run(&["up", "--on-failure", "restore", "--force"]);
    out.code(1).stderr_has("nothing of this run was applied");
    assert!(with_reason(&s, "before-restore").is_empty());
    let mut pty = Pty::spawn(&s, &["up"]);
    pty.expect("nothing of this run was applied, so there is nothing to undo");
    let transcript = pty.transcript();
    assert_eq!(pty.exit_code(), 1);
    assert!(!transcript.contains("What now?"), "{transcript}");
}

/// Every row the app committed is in the restored database or in the
/// before-restore copy: a restore beside a busy writer has no unlocked moment
/// between its safety copy and its copy-in.
#[test]
fn restore_beside_a_busy_writer_undoes_nothing_that_is_not_in_its_safety_copy() {
    for wal in MODES {
        let s = Sandbox::new();
        app_db(&s, wal, 4000);
        s.run(&["backup", "--label", "snap"]).code(0);
        let app = App::start(&s);
        super::live_app::wait_for_rows(&app, 20);
        let started = Instant::now();
        let out = s.run(&["restore", "--latest", "--yes", "--busy-timeout-ms", "30000"]);
        let took = started.elapsed();
        super::live_app::wait_for_rows(&app, 5);
        let (committed, errors) = app.finish();
        out.code(0);
        assert!(errors.is_empty(), "the app's writes failed: {errors:?}");
        let safety = with_reason(&s, "before-restore")
            .pop()
            .expect("safety copy");
        let (now, saved) = (present(&s), ids(&safety));
        let lost: Vec<&i64> = committed
            .iter()
            .filter(|i| !now.contains(i) && !saved.contains(i))
            .collect();
        assert!(
            lost.is_empty(),
            "{} mode: {} rows lost without a copy",
            mode_name(wal),
            lost.len()
        );
        assert!(
            took < Duration::from_secs(20),
            "{} mode: restore took {took:?}",
            mode_name(wal)
        );
        assert_eq!(super::integrity(&s.db()), "ok");
        eprintln!(
            "{} mode: restore of 4 MB beside a writer took {took:?}; {} app rows, {} undone (all in the safety copy)",
            mode_name(wal),
            committed.len(),
            committed.iter().filter(|i| !now.contains(i)).count()
        );
    }
}

/// SQLite's backup API restarts whenever another connection commits unless
/// the copy holds one read transaction: beside an app committing every few
/// milliseconds that is a backup that never ends.
#[test]
fn a_backup_beside_a_busy_wal_writer_finishes_in_bounded_time() {
    let s = Sandbox::new();
    app_db(&s, true, 8_000);
    let app = App::start(&s);
    super::live_app::wait_for_rows(&app, 20);
    let started = Instant::now();
    let mut child = s
        .command(&["backup"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn backup");
    let deadline = started + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = started.elapsed();
    let (committed, _) = app.finish();
    let status = status.unwrap_or_else(|| panic!("no backup within {took:?} beside the writer"));
    assert!(status.success());
    let backup = s.backups().pop().expect("the backup");
    assert_eq!(super::quick_check(&backup), "ok");
    eprintln!(
        "backup of 8 MB beside a WAL writer ({} commits meanwhile) took {took:?}",
        committed.len()
    );
}
