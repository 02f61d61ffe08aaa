//! Hostile migration folders: seeded property tests on the library's parser
//! (through the public `backstop::status`: it never panics, and every refusal is a list of file
//! problems), a smaller sample through the binary (`status`/`up` never panic,
//! errors start with `error:`, malformed files are exit 3), and one huge
//! migration file whose peak memory is measured.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Stdio;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use super::{clean_failure, long, seed, size};
use crate::sandbox::Sandbox;

/// A proptest runner driven by the run's seed (no persistence files: the seed
/// printed on failure is what replays a case).
fn runner(cases: usize, salt: u8) -> TestRunner {
    let mut bytes = [salt; 32];
    bytes[..8].copy_from_slice(&seed().to_le_bytes());
    let config = Config {
        cases: cases as u32,
        failure_persistence: None,
        max_shrink_iters: 200,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

/// One generated file: raw name bytes and raw contents.
#[derive(Debug, Clone)]
struct File {
    name: Vec<u8>,
    text: Vec<u8>,
}

fn name() -> impl Strategy<Value = Vec<u8>> {
    let word = "[a-z_]{0,8}";
    prop_oneof![
        4 => (0u64..40, word).prop_map(|(v, n)| format!("{v}_{n}.sql").into_bytes()),
        1 => ("[0-9]{17,26}", word).prop_map(|(v, n)| format!("{v}_{n}.sql").into_bytes()),
        2 => (0u64..40, word, prop_oneof!["up", "down", "UP", "sideways"])
            .prop_map(|(v, n, d)| format!("{v}_{n}.{d}.sql").into_bytes()),
        1 => "[ -~]{1,16}".prop_map(|n| format!("{n}.sql").into_bytes()),
        1 => "[ -~]{1,16}".prop_map(String::into_bytes),
        1 => (0u64..40, prop::collection::vec(128u8..=255, 1..6)).prop_map(|(v, junk)| {
            let mut n = format!("{v}_").into_bytes();
            n.extend(junk);
            n.extend(b".sql");
            n
        }),
    ]
    .prop_filter("a file name", |n| {
        !n.contains(&b'/') && !n.contains(&0) && n != b"." && n != b".."
    })
}

fn marker() -> impl Strategy<Value = String> {
    let head = prop_oneof![
        Just("-- migrate:up".to_string()),
        Just("-- migrate:down".to_string()),
        Just("--migrate:up".to_string()),
        Just("-- +goose Up".to_string()),
        Just("-- +goose Down".to_string()),
        Just("-- +goose NO TRANSACTION".to_string()),
        Just("-- +goose StatementBegin".to_string()),
        Just("-- +goose StatementEnd".to_string()),
        Just("-- no-transaction".to_string()),
        "-- migrate:[a-z]{0,6}",
        "-- \\+goose [A-Za-z]{0,8}",
    ];
    let option = prop_oneof![
        Just("transaction:false".to_string()),
        Just("transaction:true".to_string()),
        Just("foreign_keys:on".to_string()),
        Just("foreign_keys:off".to_string()),
        "[a-z_]{1,12}:[a-z0-9]{0,6}",
        "[a-z]{1,6}",
        "[ -~]{0,12}",
    ];
    (head, prop::collection::vec(option, 0..3)).prop_map(|(h, opts)| {
        let mut line = h;
        for o in opts {
            line.push(' ');
            line.push_str(&o);
        }
        line
    })
}

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => marker(),
        3 => prop_oneof![
            Just("CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT);"),
            Just("INSERT INTO t (x) VALUES ('a;b');"),
            Just("SELECT 1;"),
            Just("BEGIN;"),
            Just("COMMIT;"),
            Just("VACUUM;"),
            Just("PRAGMA journal_mode = WAL;"),
            Just("DROP TABLE t;"),
            Just("CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END;"),
            Just("ATTACH 'x.db' AS x;"),
        ]
        .prop_map(str::to_string),
        2 => prop_oneof![
            Just("'unterminated string"),
            Just("/* unterminated comment"),
            Just("\"unterminated identifier"),
            Just("CREATE TABLE"),
            Just(";;;"),
            Just("\u{feff}"),
        ]
        .prop_map(str::to_string),
        1 => (1000usize..120_000, prop_oneof![Just("-- "), Just("SELECT '"), Just("x")])
            .prop_map(|(n, p)| format!("{p}{}", "y".repeat(n))),
        2 => "[ -~]{0,40}",
        1 => Just(String::new()),
    ]
}

fn text() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => (
            any::<bool>(),
            any::<bool>(),
            prop::collection::vec(line(), 0..12)
        )
            .prop_map(|(bom, crlf, lines)| {
                let mut t = if bom { "\u{feff}".to_string() } else { String::new() };
                t.push_str(&lines.join(if crlf { "\r\n" } else { "\n" }));
                t.into_bytes()
            }),
        1 => Just(Vec::new()),
        1 => prop::collection::vec(any::<u8>(), 0..400),
        1 => (prop::collection::vec(line(), 1..4), prop::collection::vec(128u8..=255, 1..4))
            .prop_map(|(lines, junk)| {
                let mut t = lines.join("\n").into_bytes();
                t.extend(junk);
                t
            }),
    ]
}

fn folder() -> impl Strategy<Value = Vec<File>> {
    prop::collection::vec(
        (name(), text()).prop_map(|(name, text)| File { name, text }),
        0..6,
    )
}

/// Folders that mostly parse, so the binary sample also reaches the database:
/// unique versions, real markers, statements that run, fail or are refused.
fn plausible() -> impl Strategy<Value = Vec<File>> {
    let statement = prop_oneof![
        4 => Just("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, x TEXT);"),
        4 => Just("INSERT INTO t (x) VALUES ('a;b');"),
        1 => Just("INSERT INTO missing VALUES (1);"),
        1 => Just("BEGIN;"),
        1 => Just("DROP TABLE IF EXISTS t;"),
        1 => Just("'unterminated"),
        1 => Just("/* unterminated"),
        1 => Just("SELECT 1"),
    ];
    let body = (
        prop_oneof![
            Just(""),
            Just("-- migrate:up\n"),
            Just("-- migrate:up transaction:false\n"),
            Just("-- +goose Up\n")
        ],
        prop::collection::vec(statement, 0..5),
    )
        .prop_map(|(marker, stmts)| format!("{marker}{}\n", stmts.join("\n")).into_bytes());
    prop::collection::btree_map(0u64..30, body, 1..5).prop_map(|m| {
        m.into_iter()
            .map(|(v, text)| File {
                name: format!("{v}_m.sql").into_bytes(),
                text,
            })
            .collect()
    })
}

fn write_folder(dir: &Path, files: &[File]) {
    for f in files {
        let path = dir.join(std::ffi::OsStr::from_bytes(&f.name));
        std::fs::write(&path, &f.text).expect("write generated file");
    }
}

/// The library's reading of `migrations` (its public `status`), on a database
/// that does not exist: it reads the folder and nothing else.
fn read_only(migrations: &Path) -> backstop::Options {
    let nowhere = migrations.join("no such folder").join("x.db");
    backstop::Options::new(
        nowhere,
        backstop::Migrations::Folder(migrations.to_path_buf()),
    )
}

/// The library's parser on random folders: never panics; an error is a list of
/// file problems; what it accepts is ordered by version with no duplicates.
#[test]
fn discover_never_panics_on_hostile_folders() {
    let cases = size(300, 20_000);
    let mut runner = runner(cases, 1);
    let accepted = std::cell::Cell::new(0);
    let result = runner.run(&folder(), |files| {
        let dir = tempfile::tempdir().expect("tempdir");
        write_folder(dir.path(), &files);
        match backstop::status(&read_only(dir.path())) {
            Ok(status) => {
                accepted.set(accepted.get() + 1);
                let versions: Vec<_> = status.migrations.iter().map(|m| &m.version).collect();
                prop_assert!(
                    versions.windows(2).all(|w| w[0] < w[1]),
                    "versions not strictly increasing: {versions:?}"
                );
            }
            // A refusal names the file (the first of the problems found).
            Err(e) if e.kind() == backstop::ErrorKind::Refused => {
                prop_assert!(e.file().is_some(), "a refusal without a file: {e}");
            }
            Err(other) => prop_assert!(false, "unexpected error kind: {other}"),
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("seed {:#x}: {e}", seed());
    }
    eprintln!(
        "discover: {cases} random folders ({} accepted), no panic",
        accepted.get()
    );
}

/// The binary on a smaller sample: `status` and `up` never panic, every
/// failure says `error:`, and malformed files are refused with exit 3 before
/// the database exists.
#[test]
fn status_and_up_fail_cleanly_on_hostile_folders() {
    let cases = size(12, 400);
    let mut runner = runner(cases, 2);
    let codes = std::cell::RefCell::new(std::collections::BTreeMap::<i32, usize>::new());
    let result = runner.run(&prop_oneof![folder(), plausible()], |files| {
        let s = Sandbox::new();
        write_folder(&s.path().join("migrations"), &files);
        let malformed = backstop::status(&read_only(&s.path().join("migrations"))).is_err();
        for args in [
            &["status"][..],
            &["up", "--yes", "--on-failure", "keep"][..],
        ] {
            let out = s.run(args);
            *codes.borrow_mut().entry(out.code).or_default() += 1;
            prop_assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
            if out.code != 0 {
                // `up` reports progress on stderr before a migration fails
                // (exit 1); refusals say `error:` first.
                let says_error = if out.code == 1 {
                    out.stderr.lines().any(|l| l.starts_with("error:"))
                } else {
                    out.stderr.starts_with("error:")
                };
                prop_assert!(
                    says_error,
                    "`{}` exited {}:\n{}",
                    out.command,
                    out.code,
                    out.stderr
                );
            }
            prop_assert!(
                [0, 1, 3].contains(&out.code),
                "`{}` exited {}:\n{}",
                out.command,
                out.code,
                out.stderr
            );
            if out.code == 3 && args[0] == "up" {
                prop_assert!(!s.db().exists(), "a refused up created the database");
            }
            if malformed {
                prop_assert_eq!(
                    out.code,
                    3,
                    "`{}` accepted malformed files:\n{}",
                    out.command,
                    out.stderr
                );
                prop_assert!(!s.db().exists(), "a refused run created the database");
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("seed {:#x}: {e}", seed());
    }
    eprintln!(
        "status/up: {cases} random folders, exit codes {:?}",
        codes.borrow()
    );
}

/// Runs the binary and returns (exit code, stderr, peak resident memory in
/// KiB) from wait4(2)'s rusage of exactly that process.
fn run_measured(s: &Sandbox, args: &[&str]) -> (i32, String, u64) {
    let err_path = s.path().join("stderr.log");
    let mut cmd = s.command(args);
    cmd.stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).expect("stderr file"));
    // Reaped by wait4 below, which also gives this child's own rusage.
    #[allow(clippy::zombie_processes)]
    let child = cmd.spawn().expect("spawn");
    let mut status = 0;
    // SAFETY: zeroed rusage is valid; wait4 reaps our own child exactly once
    // (std's `Child` is dropped without waiting).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert!(pid > 0, "wait4 failed");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    (code, stderr, usage.ru_maxrss as u64)
}

/// A huge migration (10 MB by default, 100 MB in the long run): half a long
/// comment, half one INSERT of many rows. `up` applies it or fails cleanly,
/// with bounded memory.
#[test]
fn a_huge_migration_file_is_applied_or_refused_with_bounded_memory() {
    let mb = if long() { 100 } else { 10 };
    let s = Sandbox::new();
    let mut text = String::with_capacity(mb << 20);
    text.push_str("-- migrate:up\n/* ");
    while text.len() < (mb << 20) / 2 {
        text.push_str("a long comment; with semicolons ' and quotes \" that mean nothing\n");
    }
    text.push_str("*/\nCREATE TABLE big (id INTEGER PRIMARY KEY, v TEXT NOT NULL);\nINSERT INTO big (v) VALUES ");
    let mut rows = 0u64;
    while text.len() < mb << 20 {
        if rows > 0 {
            text.push(',');
        }
        text.push_str(&format!("('row {rows:09} of the huge migration')\n"));
        rows += 1;
    }
    text.push_str(";\n-- migrate:down\nDROP TABLE big;\n");
    s.migration("1_huge.sql", &text);
    let started = std::time::Instant::now();
    let (code, stderr, peak_kib) = run_measured(&s, &["up"]);
    let took = started.elapsed();
    let out = crate::sandbox::Output {
        code,
        stdout: String::new(),
        stderr,
        command: "backstop up".into(),
    };
    clean_failure_or_progress(&out);
    assert!(code == 0 || code == 1, "exit {code}:\n{}", out.stderr);
    if code == 0 {
        assert_eq!(s.query_i64("SELECT count(*) FROM big"), rows as i64);
    } else {
        assert!(s.applied().is_empty());
    }
    let peak_mib = peak_kib / 1024;
    eprintln!(
        "huge migration: {mb} MB file, {rows} rows, exit {code} in {took:?}, peak RSS {peak_mib} MiB"
    );
    assert!(
        peak_mib < 1024,
        "peak RSS {peak_mib} MiB for a {mb} MB migration"
    );
}

/// Like `clean_failure`, but a failed migration may follow progress lines.
#[track_caller]
fn clean_failure_or_progress(out: &crate::sandbox::Output) {
    if out.code == 1 {
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        assert!(
            out.stderr.lines().any(|l| l.starts_with("error:")),
            "{}",
            out.stderr
        );
    } else {
        clean_failure(out, "hostile input");
    }
}

/// Found by the binary sample: a `transaction:false` section that begins a
/// transaction and never commits it was reported applied, then the run ended
/// in exit 4 ("cannot start a transaction within a transaction") with nothing
/// recorded. It is a failed migration (exit 1), recorded as such.
#[test]
fn a_no_transaction_migration_left_inside_its_own_begin_fails_cleanly() {
    let s = Sandbox::new();
    s.migration("1_a.sql", "CREATE TABLE a (x);\n").migration(
        "2_open.sql",
        "-- migrate:up transaction:false\nINSERT INTO a VALUES (1);\nBEGIN;\nINSERT INTO a VALUES (2);\n",
    );
    let out = s.run(&["up"]);
    clean_failure_or_progress(&out);
    out.code(1)
        .stderr_has("2_open.sql")
        .stderr_has("BEGIN without COMMIT");
    assert_eq!(s.applied(), vec![1]);
    // Before the BEGIN it ran in autocommit (transaction:false is protected by
    // the backup only); after it, everything was rolled back.
    assert_eq!(s.query_i64("SELECT count(*) FROM a"), 1);
    assert_eq!(
        s.query_i64("SELECT count(*) FROM _backstop_runs WHERE outcome = 'failed'"),
        1
    );
    assert_eq!(super::integrity(&s.db()), "ok");
    // Fixed, it applies.
    s.migration(
        "2_open.sql",
        "-- migrate:up transaction:false\nBEGIN;\nINSERT INTO a VALUES (2);\nCOMMIT;\n",
    );
    s.run(&["up"]).code(0);
    assert_eq!(s.applied(), vec![1, 2]);
}
