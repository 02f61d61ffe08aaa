//! Issue 4: the terminal experience. Plain lines and no escape sequences
//! without a terminal, one JSON document with --json, -q / -v, colors,
//! Ctrl-C (piped and in a real pty), error and hint text, help, completions,
//! and a closed stdout.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use predicates::prelude::*;

use crate::sandbox::{file_hash, Output, Sandbox};

const A: &str = "-- migrate:up\nCREATE TABLE a (id INTEGER PRIMARY KEY, x TEXT);\nINSERT INTO a (x) VALUES ('one'), ('two');\n-- migrate:down\nDROP TABLE a;\n";
const B: &str = "-- migrate:up\nCREATE TABLE b (id INTEGER PRIMARY KEY);\nINSERT INTO b SELECT id FROM a;\n-- migrate:down\nDROP TABLE b;\n";
/// Fails at line 3, after its first statement ran.
const BAD: &str =
    "-- migrate:up\nINSERT INTO a (x) VALUES ('three');\nSELECT abs(-9223372036854775808);\n";
/// Many seconds of work on one statement; every test that runs it interrupts it.
const SLOW_SQL: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 50000000) SELECT count(*) FROM c;";

/// A migration that first creates a table and inserts, then runs the slow
/// statement on line 4.
fn slow() -> String {
    format!("-- migrate:up\nCREATE TABLE s (id INTEGER);\nINSERT INTO s VALUES (1);\n{SLOW_SQL}\n")
}

#[track_caller]
fn no_escapes(out: &Output) {
    for (name, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        assert!(
            !text.contains('\x1b'),
            "{name} of `{}` has escape sequences:\n{text:?}",
            out.command
        );
    }
}

#[track_caller]
fn no_panic(out: &Output) {
    for needle in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
        assert!(
            !out.stderr.contains(needle),
            "`{}` panicked:\n{}",
            out.command,
            out.stderr
        );
    }
    assert_ne!(
        out.code, 101,
        "`{}` exited 101:\n{}",
        out.command, out.stderr
    );
}

/// `error: …` first, then a `hint: …` line.
#[track_caller]
fn error_with_hint(out: &Output) {
    assert!(
        out.stderr.starts_with("error: "),
        "stderr of `{}` does not start with `error:`:\n{}",
        out.command,
        out.stderr
    );
    assert!(
        out.stderr.lines().any(|l| l.starts_with("hint: ")),
        "stderr of `{}` has no `hint:` line:\n{}",
        out.command,
        out.stderr
    );
    no_panic(out);
}

#[track_caller]
fn matches(re: &str, text: &str) -> bool {
    predicate::str::is_match(re).expect("regex").eval(text)
}

#[test]
fn without_a_terminal_output_is_plain_lines_without_escapes() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A).migration("2_b.sql", B);
    let up = s.run(&["up"]);
    up.code(0);
    no_escapes(&up);
    // One plain line per event on stderr, in order, and nothing else.
    let lines: Vec<&str> = up.stderr.lines().collect();
    let expected = [
        r"^created \S*dev\.db$",
        r"^backup \S+\.before-up\.sqlite3 \([0-9.]+ [KMG]?i?B, verified\)$",
        r"^applied 1 a \([0-9.]+ m?s, 2 rows changed\)$",
        r"^applied 2 b \([0-9.]+ m?s, 2 rows changed\)$",
    ];
    assert_eq!(lines.len(), expected.len(), "stderr:\n{}", up.stderr);
    for (line, re) in lines.iter().zip(expected) {
        assert!(matches(re, line), "{line:?} does not match {re}");
    }
    // The summary is on stdout, one line.
    assert!(
        matches(
            r"^applied 2 migration\(s\) in [0-9.]+ m?s \(4 rows changed\); backup \S+\.sqlite3\n$",
            &up.stdout
        ),
        "stdout: {:?}",
        up.stdout
    );

    for args in [
        &["status"][..],
        &["backups"],
        &["verify"],
        &["log"],
        &["backup"],
    ] {
        let out = s.run(args);
        out.code(0);
        no_escapes(&out);
    }
    // The styled bits: a state in the status table, a warning before a drop,
    // a failure, an error with its hint.
    s.migration("3_drop.sql", "-- migrate:up\nDROP TABLE b;\n")
        .migration("4_bad.sql", BAD);
    let status = s.run(&["status"]);
    status.stdout_has("pending");
    no_escapes(&status);
    let failed = s.run(&["up"]);
    failed
        .code(1)
        .stderr_has("warning:")
        .stderr_has("error:")
        .stderr_has("hint:");
    no_escapes(&failed);
    s.migration("1_a.sql", &A.replace("x TEXT", "x TEXT NOT NULL"));
    let refused = s.run(&["up"]);
    refused.code(3);
    no_escapes(&refused);
    let verify = s.run(&["verify"]);
    verify.code(3).stdout_has("FAIL");
    no_escapes(&verify);
}

#[test]
fn json_is_one_document_with_the_expected_keys() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A).migration("2_b.sql", B);

    let has = |j: &serde_json::Value, keys: &[&str], what: &str| {
        for k in keys {
            assert!(j.get(k).is_some(), "{what} lacks {k:?}: {j}");
        }
    };

    let dry = s.run(&["up", "--dry-run", "--json"]).code(0).json();
    has(
        &dry,
        &[
            "database",
            "ok",
            "migrations",
            "failure",
            "tables",
            "objects",
            "destructive",
            "rows_deleted",
        ],
        "up --dry-run --json",
    );
    assert_eq!(dry["ok"], true);
    assert_eq!(dry["migrations"].as_array().map(Vec::len), Some(2));
    assert!(!s.db().exists(), "a dry run created the database");
    assert_eq!(
        s.backup_files(),
        Vec::<String>::new(),
        "a dry run wrote backups"
    );

    let st = s.run(&["status", "--json"]).code(0).json();
    has(
        &st,
        &[
            "database",
            "exists",
            "facts",
            "drift",
            "newest_backup",
            "migrations",
            "counts",
        ],
        "status --json",
    );
    assert_eq!(st["counts"]["pending"], 2);

    let up = s.run(&["up", "--json"]);
    up.code(0);
    let j = up.json();
    assert_eq!(j["ok"], true);
    let report = &j["report"];
    has(
        report,
        &[
            "database",
            "created",
            "applied",
            "backup",
            "duration_ms",
            "destructive",
        ],
        "up --json report",
    );
    assert_eq!(report["created"], true);
    let applied = report["applied"].as_array().expect("applied list");
    assert_eq!(applied.len(), 2);
    has(
        &applied[0],
        &["version", "name", "duration_ms", "rows_changed"],
        "applied migration",
    );
    assert_eq!(applied[0]["rows_changed"], 2);
    assert!(report["backup"]["path"].is_string(), "{report}");

    let st = s.run(&["status", "--json"]).code(0).json();
    assert_eq!(st["counts"]["applied"], 2);
    assert_eq!(st["exists"], true);
    assert_eq!(st["migrations"][1]["state"], "applied");

    let backups = s.run(&["backups", "--json"]).code(0).json();
    let list = backups["backups"].as_array().expect("backups list");
    assert_eq!(list.len(), 1);
    has(
        &list[0],
        &[
            "path",
            "created_at",
            "reason",
            "newest_version",
            "size",
            "intact",
        ],
        "backup",
    );
    assert_eq!(list[0]["reason"], "before-up");
    assert_eq!(list[0]["intact"], true);

    let verify = s.run(&["verify", "--json"]).code(0).json();
    has(
        &verify,
        &["database", "passed", "findings"],
        "verify --json",
    );
    assert_eq!(verify["passed"], true);
    has(
        &verify["findings"][0],
        &["check", "ok", "message", "fix"],
        "finding",
    );

    // A failure: still one document, now with the failure and what was done.
    s.migration("3_bad.sql", BAD);
    let failed = s.run(&["up", "--json"]);
    failed.code(1).stderr_has("error:");
    let j = failed.json();
    assert_eq!(j["ok"], false);
    assert_eq!(j["restored"], false);
    has(
        &j["failure"],
        &[
            "database", "version", "name", "path", "line", "cause", "applied", "backup",
        ],
        "up --json failure",
    );
    assert_eq!(j["failure"]["line"], 3);
    assert_eq!(j["failure"]["version"], "3");
    assert!(
        j["restore_command"]
            .as_str()
            .is_some_and(|c| c.contains("backstop restore")),
        "{j}"
    );
    // And when it restores (a run that applied something first: one that
    // applied nothing has nothing to restore).
    s.remove("migrations/3_bad.sql");
    s.migration("3_c.sql", "CREATE TABLE c (x);\n")
        .migration("4_bad.sql", BAD);
    let restored = s.run(&["up", "--json", "--on-failure", "restore"]);
    restored.code(1);
    let j = restored.json();
    assert_eq!(j["ok"], false);
    assert_eq!(j["restored"], true);
    assert_eq!(j["others_wrote"], false);
    assert_eq!(s.applied(), vec![1, 2]);

    // A failing verify is one document too (exit 3).
    s.remove("migrations/3_c.sql");
    s.remove("migrations/4_bad.sql");
    s.migration("2_b.sql", &B.replace("id INTEGER", "id INT"));
    let verify = s.run(&["verify", "--json"]);
    verify.code(3);
    assert_eq!(verify.json()["passed"], false);

    let log = s.run(&["log", "--json"]).code(0).json();
    let runs = log["runs"].as_array().expect("runs list");
    assert!(runs.len() >= 2, "{log}");
    for r in runs {
        has(
            r,
            &[
                "id",
                "command",
                "tool_version",
                "started_at",
                "finished_at",
                "outcome",
                "migrations",
                "error",
                "backup",
            ],
            "run",
        );
    }
    let outcomes: Vec<&str> = runs.iter().filter_map(|r| r["outcome"].as_str()).collect();
    assert!(outcomes.contains(&"ok"), "{outcomes:?}");
    assert!(outcomes.contains(&"failed"), "{outcomes:?}");
}

#[test]
fn quiet_prints_nothing_on_success_but_errors_still_print() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A).migration("2_b.sql", B);
    for args in [&["up", "-q"][..], &["status", "-q"], &["-q", "status"]] {
        let out = s.run(args);
        out.code(0);
        assert_eq!(
            (out.stdout.as_str(), out.stderr.as_str()),
            ("", ""),
            "`{}` printed something",
            out.command
        );
    }
    assert_eq!(s.applied(), vec![1, 2], "-q must not change what runs");

    s.migration("3_bad.sql", BAD);
    let failed = s.run(&["up", "-q"]);
    failed
        .code(1)
        .stderr_has("error:")
        .stderr_has("3_bad.sql:3");
    s.remove("migrations/3_bad.sql");
    s.migration("1_a.sql", &A.replace("x TEXT", "x BLOB"));
    let refused = s.run(&["-q", "up"]);
    refused.code(3);
    error_with_hint(&refused);
}

#[test]
fn verbose_prints_each_statement_with_its_line() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A).migration(
        "2_b.sql",
        "-- migrate:up\n-- a comment\nCREATE TABLE b (id INTEGER PRIMARY KEY);\n\nINSERT INTO b VALUES\n  (1), (2);\n",
    );
    let out = s.run(&["up", "-v"]);
    out.code(0);
    no_escapes(&out);
    for needle in [
        "  1 line 2: CREATE TABLE a (id INTEGER PRIMARY KEY, x TEXT);",
        "  1 line 3: INSERT INTO a (x) VALUES ('one'), ('two');",
        "  2 line 3: CREATE TABLE b (id INTEGER PRIMARY KEY);",
        // A statement over two lines is named by its first line.
        "  2 line 5: INSERT INTO b VALUES",
    ] {
        out.stderr_has(needle);
    }
    for n in ["1 line 2", "1 line 3", "2 line 3", "2 line 5"] {
        assert!(
            out.stderr
                .lines()
                .any(|l| l.starts_with(&format!("  {n} done in "))),
            "no timing for {n}:\n{}",
            out.stderr
        );
    }
    out.stderr_has("applied 2 b (");
    // Without -v, no statements.
    let s2 = Sandbox::new();
    s2.migration("1_a.sql", A);
    let plain = s2.run(&["up"]);
    assert!(!plain.stderr.contains("line 2"), "{}", plain.stderr);
}

#[test]
fn color_flag_and_no_color() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    let missing = ["-d", "nope/x.db", "status", "--exit-code"];
    // Status table header (stdout) and `error:` (stderr).
    let always = s.run(&["status", "--color", "always"]);
    always.code(0);
    assert!(always.stdout.contains("\x1b["), "{:?}", always.stdout);
    let err = s.run(&["up", "--color", "always", "-d", "nofolder/x.db"]);
    assert_ne!(err.code, 0);
    assert!(err.stderr.starts_with("\x1b["), "{:?}", err.stderr);
    assert!(err.stderr.contains("error:"), "{:?}", err.stderr);
    // The explicit flag wins over NO_COLOR (no-color.org: flags override it).
    let forced = s.run_with(&["status", "--color=always"], &[("NO_COLOR", "1")]);
    assert!(forced.stdout.contains("\x1b["), "{:?}", forced.stdout);

    for (args, env) in [
        (&["status", "--color", "never"][..], &[][..]),
        (&["status"], &[("NO_COLOR", "1")]),
        (&["status", "--color", "auto"], &[("NO_COLOR", "1")]),
        (&["status", "--color", "never"], &[("CLICOLOR_FORCE", "1")]),
        (&["up", "--color", "never", "-d", "nofolder/x.db"], &[]),
        (&missing[..], &[("NO_COLOR", "1")]),
    ] {
        let out = s.run_with(args, env);
        no_escapes(&out);
    }
}

/// Spawns `up -v` piped, waits for the progress line of the slow statement,
/// sends SIGINT, and returns the output.
pub fn interrupt_piped(s: &Sandbox, args: &[&str], slow_line: &str) -> Output {
    let mut child = s
        .command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn backstop");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let fail = |child: &mut Child, seen: &[String], why: &str| -> ! {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{why}; stderr so far:\n{}", seen.join("\n"));
    };
    // The line that says the slow statement started (no sleeping: we read it).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let found = line.contains(slow_line);
                seen.push(line);
                if found {
                    break;
                }
            }
            Err(_) => fail(
                &mut child,
                &seen,
                "the slow statement's line never appeared",
            ),
        }
    }
    // SAFETY: plain kill(2) on the child's pid.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    assert_eq!(rc, 0, "kill failed");
    let sent = Instant::now();
    // The rest of stderr until the process closes it by exiting.
    let deadline = sent + Duration::from_secs(15);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                fail(&mut child, &seen, "no exit within 15 s of SIGINT")
            }
        }
    }
    let _ = reader.join();
    let out = child.wait_with_output().expect("wait");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: seen.join("\n"),
        command: format!("backstop {} (SIGINT)", args.join(" ")),
    }
}

#[test]
fn sigint_during_a_slow_statement_without_a_terminal() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A).migration("2_slow.sql", &slow());
    let out = interrupt_piped(&s, &["up", "-v"], "2 line 4: WITH RECURSIVE");
    out.code(130)
        .stderr_has("2_slow.sql:4")
        .stderr_has("interrupted")
        // No terminal: no prompt; the database is kept and the way back printed.
        .stderr_has("backstop restore");
    assert!(!out.stderr.contains("What now"), "{}", out.stderr);
    no_escapes(&out);
    no_panic(&out);
    // The first migration stays; the interrupted one rolled back entirely.
    assert_eq!(s.applied(), vec![1]);
    assert_eq!(s.query_i64("SELECT count(*) FROM a"), 2);
    assert!(
        !s.table_exists("s"),
        "the interrupted migration's table exists"
    );
    let log = s.run(&["log", "--json"]).code(0).json();
    assert_eq!(log["runs"][0]["outcome"], "interrupted", "{log}");
    assert_eq!(
        log["runs"][0]["migrations"],
        serde_json::json!(["1"]),
        "{log}"
    );
    assert_eq!(s.run(&["status", "--json"]).json()["counts"]["pending"], 1);
}

#[test]
fn sigint_with_json_is_still_one_document() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A).migration("2_slow.sql", &slow());
    let out = interrupt_piped(&s, &["up", "-v", "--json"], "2 line 4: WITH RECURSIVE");
    out.code(130);
    let j = out.json();
    assert_eq!(j["ok"], false);
    assert_eq!(j["failure"]["cause"]["kind"], "interrupted", "{j}");
    assert_eq!(j["failure"]["line"], 4);
}

// ----- a real terminal -----

fn pty(s: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> expectrl::Session {
    let mut cmd = s.command(args);
    // The sandbox's null stdin would replace the pty's after the fork.
    cmd.stdin(Stdio::inherit()).env("TERM", "xterm-256color");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut session = expectrl::Session::spawn(cmd).expect("spawn in a pty");
    session.set_expect_timeout(Some(Duration::from_secs(60)));
    session
}

#[track_caller]
fn expect(session: &mut expectrl::Session, needle: impl expectrl::Needle, what: &str) -> String {
    match session.expect(needle) {
        Ok(c) => String::from_utf8_lossy(c.as_bytes()).into_owned(),
        Err(e) => panic!("pty: waiting for {what}: {e}"),
    }
}

fn exit_code(session: &expectrl::Session) -> i32 {
    // Drains nothing: the remaining output is a few lines, well within the pty buffer.
    match session.get_process().wait() {
        Ok(expectrl::WaitStatus::Exited(_, code)) => code,
        other => panic!("unexpected end: {other:?}"),
    }
}

/// An applied migration 1, then 2 (fast, creates `b`) and 3 (slow) pending.
fn pty_project() -> (Sandbox, String) {
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s.run(&["up"]).code(0);
    let before = s.query_i64("SELECT count(*) FROM a");
    assert_eq!(before, 2);
    s.migration("2_b.sql", B).migration("3_slow.sql", &slow());
    let schema = schema(&s);
    (s, schema)
}

fn schema(s: &Sandbox) -> String {
    s.conn()
        .query_row(
            "SELECT group_concat(name || ':' || sql, '\n') FROM
               (SELECT name, sql FROM sqlite_schema WHERE name NOT LIKE '\\_backstop%' ESCAPE '\\' ORDER BY name)",
            [],
            |r| r.get::<_, Option<String>>(0),
        )
        .expect("schema")
        .unwrap_or_default()
}

/// Waits for the live display of the slow statement, then presses Ctrl-C and
/// waits for the restore prompt.
fn interrupt_in_pty(session: &mut expectrl::Session) {
    expect(
        session,
        "3 slow line 4: WITH RECURSIVE",
        "the statement on screen",
    );
    // The spinner line ends with the statement's elapsed time ("0s", "1s", …).
    expect(
        session,
        expectrl::Regex(r"line 4: WITH[^\n]*\d+s"),
        "elapsed time",
    );
    session.send("\x03").expect("send Ctrl-C");
    expect(session, "3_slow.sql:4", "the error");
    expect(session, "What now?", "the restore prompt");
}

#[test]
fn pty_ctrl_c_then_enter_restores_the_backup() {
    let (s, schema_before) = pty_project();
    let mut session = pty(&s, &["up"], &[]);
    interrupt_in_pty(&mut session);
    // Enter takes the default: restore.
    session.send("\r").expect("send Enter");
    expect(&mut session, "restored", "the restore");
    assert_eq!(exit_code(&session), 130);
    // Back to the state before the run: 2 (which had committed) undone too.
    assert_eq!(s.applied(), vec![1]);
    assert!(!s.table_exists("b"));
    assert!(!s.table_exists("s"));
    assert_eq!(schema(&s), schema_before);
    assert_eq!(s.query_i64("SELECT count(*) FROM a"), 2);
    s.run(&["verify"]).code(0);
}

#[test]
fn pty_second_ctrl_c_at_the_prompt_leaves_without_restoring() {
    let (s, _) = pty_project();
    let mut session = pty(&s, &["up"], &[]);
    interrupt_in_pty(&mut session);
    let db_at_prompt = file_hash(&s.db());
    session.send("\x03").expect("send Ctrl-C");
    expect(
        &mut session,
        expectrl::Regex("nothing was restored|left without restoring"),
        "leaving",
    );
    assert_eq!(exit_code(&session), 130);
    // At the last good migration: 2 committed, 3 rolled back; not restored.
    assert_eq!(file_hash(&s.db()), db_at_prompt);
    assert_eq!(s.applied(), vec![1, 2]);
    assert!(s.table_exists("b"));
    assert!(!s.table_exists("s"));
}

#[test]
fn pty_no_color_means_no_color() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A).migration("2_b.sql", B);
    s.run(&["up", "--to", "1"]).code(0);
    let sgr = r"\x1b\[[0-9;]*m";
    // Control: on a terminal the table is colored.
    let mut colored = pty(&s, &["status"], &[]);
    let text = expect(&mut colored, expectrl::Eof, "status output");
    assert!(matches(sgr, &text), "no color on a terminal: {text:?}");
    assert!(text.contains("pending"), "{text:?}");
    let _ = exit_code(&colored);

    for (args, env) in [
        (&["status"][..], &[("NO_COLOR", "1")][..]),
        (&["status", "--color", "never"], &[]),
    ] {
        let mut plain = pty(&s, args, env);
        let text = expect(&mut plain, expectrl::Eof, "status output");
        assert!(text.contains("pending"), "{text:?}");
        assert!(
            !matches(sgr, &text),
            "colors with {args:?} {env:?}: {text:?}"
        );
        assert_eq!(exit_code(&plain), 0);
    }
}

#[test]
fn pty_quiet_up_prints_nothing() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A).migration("2_b.sql", B);
    let mut session = pty(&s, &["up", "-q"], &[]);
    let text = expect(&mut session, expectrl::Eof, "the end");
    assert_eq!(exit_code(&session), 0);
    assert_eq!(text, "", "up -q printed on a terminal");
    assert_eq!(s.applied(), vec![1, 2]);
}

#[test]
fn pty_no_input_keeps_without_a_prompt() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A).migration("2_bad.sql", BAD);
    let mut session = pty(&s, &["up", "--no-input"], &[]);
    let text = expect(&mut session, expectrl::Eof, "the end");
    assert_eq!(exit_code(&session), 1);
    assert!(
        !text.contains("What now"),
        "prompted despite --no-input: {text}"
    );
    assert!(text.contains("backstop restore"), "{text}");
    assert_eq!(s.applied(), vec![1]);
}

#[test]
fn errors_start_with_error_and_give_a_hint() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A).migration("2_b.sql", B);
    s.run(&["up", "--to", "1"]).code(0);

    // Locked: another connection holds the write lock.
    let holder = s.conn();
    holder
        .execute_batch("BEGIN EXCLUSIVE; INSERT INTO a (x) VALUES ('held');")
        .expect("lock");
    let locked = s.run(&["up", "--busy-timeout-ms", "200"]);
    locked.code(4).stderr_has("dev.db");
    error_with_hint(&locked);
    holder.execute_batch("ROLLBACK").expect("unlock");
    drop(holder);

    // Edited applied migration.
    s.migration("1_a.sql", &A.replace("x TEXT", "x TEXT NOT NULL"));
    let edited = s.run(&["up"]);
    edited.code(3).stderr_has("1_a.sql");
    error_with_hint(&edited);
    s.migration("1_a.sql", A);

    // Missing migrations folder.
    let missing = s.run(&["up", "--migrations", "nowhere"]);
    missing.code(2).stderr_has("nowhere");
    error_with_hint(&missing);

    // Bad flag: clap's usage error, exit 2, with the way to help as the hint.
    let bad = s.run(&["up", "--bogus"]);
    bad.code(2)
        .stderr_has("--bogus")
        .stderr_has("Usage:")
        .stderr_has("hint: for more information, try '--help'");
    error_with_hint(&bad);

    // Bad values never panic.
    for args in [
        &["--keep", "abc", "status"][..],
        &["up", "--to", "notanumber"],
        &["up", "--on-failure", "maybe"],
        &["--color", "sometimes", "status"],
        &["down", "--steps", "-1"],
        &["repair", "x"],
        &["baseline"],
        &["restore", "--latest", "nothing-here"],
        &["nosuchcommand"],
        &["completions", "tcsh"],
    ] {
        let out = s.run(args);
        out.code(2);
        error_with_hint(&out);
    }
    for (args, env) in [
        (&["status"][..], &[("BACKSTOP_KEEP", "abc")][..]),
        (&["status"], &[("BACKSTOP_KEEP", "0")]),
        (&["--keep", "0", "status"], &[]),
    ] {
        let out = s.run_with(args, env);
        out.code(2);
        error_with_hint(&out);
    }
    s.write("backstop.toml", "keep = \"many\"\n[[[");
    let config = s.run(&["status"]);
    config.code(2).stderr_has("backstop.toml");
    error_with_hint(&config);
}

#[test]
fn version_help_and_completions() {
    let s = Sandbox::new();
    let v = s.run(&["--version"]);
    v.code(0).stdout_has(env!("CARGO_PKG_VERSION"));
    assert!(v.stdout.starts_with("backstop "), "{}", v.stdout);
    s.run(&["--help"]).code(0).stdout_has("Examples");
    for cmd in [
        "new",
        "status",
        "up",
        "down",
        "backup",
        "backups",
        "restore",
        "verify",
        "repair",
        "baseline",
        "log",
        "completions",
    ] {
        let out = s.run(&[cmd, "--help"]);
        out.code(0).stdout_has("Examples").stdout_has(cmd);
        no_panic(&out);
        // Short help (-h) works too.
        s.run(&[cmd, "-h"]).code(0);
    }
    for shell in ["bash", "zsh", "fish"] {
        let out = s.run(&["completions", shell]);
        out.code(0).stdout_has("backstop");
        assert!(out.stdout.len() > 200, "{shell}: {}", out.stdout);
        no_panic(&out);
    }
}

/// Runs with stdout a pipe whose reading end is already closed: every write
/// fails with EPIPE, as in `backstop log | head -0`.
fn run_into_closed_pipe(s: &Sandbox, args: &[&str]) -> Output {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills two new descriptors, which we own from here on.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    let out = s
        .command(args)
        .stdout(Stdio::from(write))
        .stderr(Stdio::piped())
        .output()
        .expect("run");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::new(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        command: format!("backstop {} | (closed)", args.join(" ")),
    }
}

#[test]
fn a_closed_stdout_does_not_panic() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A).migration("2_b.sql", B);
    s.run(&["up"]).code(0);
    for args in [
        &["log"][..],
        &["log", "--json"],
        &["status"],
        &["status", "--json"],
        &["backups"],
        &["verify"],
        &["--help"],
        &["up", "--help"],
        &["--version"],
        &["completions", "bash"],
        &["up"],
    ] {
        let out = run_into_closed_pipe(&s, args);
        no_panic(&out);
        // Quietly: success, or at worst ended by SIGPIPE; never an error report.
        assert!(
            out.code == 0 || out.code == -1,
            "`{}` exited {}:\n{}",
            out.command,
            out.code,
            out.stderr
        );
        assert!(
            !out.stderr.contains("error"),
            "{}: {}",
            out.command,
            out.stderr
        );
    }
}

#[test]
fn json_errors_are_one_document_too() {
    let s = Sandbox::new();
    s.migration("1_a.sql", "CREATE TABLE a(x);\n");
    s.run(&["up"]).code(0);
    s.migration("1_a.sql", "CREATE TABLE a(x, y);\n");
    let out = s.run(&["up", "--json"]);
    out.code(3).stderr_has("error:");
    let doc = out.json();
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["exit_code"], 3);
    assert!(
        doc["error"].as_str().unwrap_or("").contains("1_a.sql"),
        "{doc}"
    );
    assert!(
        doc["hint"].as_str().unwrap_or("").contains("repair"),
        "{doc}"
    );
}

#[test]
fn a_failed_rehearsal_is_an_error_on_stderr() {
    let s = Sandbox::new();
    s.migration("1_a.sql", "CREATE TABLE a(x);\n")
        .migration("2_bad.sql", "SELECT abs(-9223372036854775808);\n");
    let out = s.run(&["up", "--dry-run"]);
    out.code(1)
        .stderr_has("error: the rehearsal failed")
        .stderr_has("2_bad.sql:1")
        .stdout_has("FAILED");
    assert!(!s.db().exists(), "a rehearsal never creates the database");
}

#[test]
fn status_shows_the_database_facts() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s.run(&["up"]).code(0);
    s.run(&["backup", "--label", "newest"]).code(0);
    let doc = s.run(&["status", "--json"]).code(0).json();
    let size = std::fs::metadata(s.db()).unwrap().len();
    assert_eq!(doc["facts"]["size"], size);
    assert_eq!(doc["facts"]["journal_mode"], "delete");
    let newest = doc["newest_backup"].as_str().unwrap_or_default();
    assert!(newest.ends_with(".newest.sqlite3"), "{doc}");
    s.conn()
        .execute_batch("PRAGMA journal_mode = WAL;")
        .unwrap();
    s.run(&["status"])
        .code(0)
        .stdout_has("journal wal")
        .stdout_has(".newest.sqlite3");
}

#[test]
fn no_input_on_a_terminal_fails_naming_the_flag_instead_of_prompting() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s.run(&["up"]).code(0);
    s.run(&["backup"]).code(0);
    let before = file_hash(&s.db());
    let mut pty = crate::pty::Pty::spawn(&s, &["restore", "--no-input"]);
    pty.expect("--latest");
    assert_eq!(pty.exit_code(), 3);
    let mut pty = crate::pty::Pty::spawn(&s, &["restore", "--latest", "--no-input"]);
    pty.expect("--yes");
    assert_eq!(pty.exit_code(), 3);
    s.migration("1_a.sql", &A.replace("x TEXT", "x TEXT, y TEXT"));
    let mut pty = crate::pty::Pty::spawn(&s, &["repair", "1", "--no-input"]);
    pty.expect("--yes");
    assert_eq!(pty.exit_code(), 3);
    assert_eq!(file_hash(&s.db()), before);
}
