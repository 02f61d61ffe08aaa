//! Issue 9, the backups folder and restore at 2 a.m.: retention never deletes
//! a backup in use or the newest pre-run one, `restore --latest` skips
//! before-restore copies, the run log survives a restore, the folder is
//! owner-only and refused when others can write it, paths are recorded
//! losslessly or refused, temporaries a killed backstop left are swept (never
//! a live one), and a restore keeps the owner, group and mode of the file.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use rusqlite::{Connection, OpenFlags};

use crate::sandbox::{file_hash, wait_for, Sandbox};

const A: &str = "-- migrate:up\nCREATE TABLE a (id INTEGER PRIMARY KEY, x TEXT);\nINSERT INTO a (x) VALUES ('one');\n-- migrate:down\nDROP TABLE a;\n";
const B: &str = "-- migrate:up\nCREATE TABLE b (x);\n-- migrate:down\nDROP TABLE b;\n";

fn xs(path: &Path) -> Vec<String> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open");
    let mut stmt = conn
        .prepare("SELECT x FROM a ORDER BY id")
        .expect("prepare");
    let v = stmt
        .query_map([], |r| r.get(0))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect();
    v
}

fn add(s: &Sandbox, x: &str) {
    s.conn()
        .execute("INSERT INTO a (x) VALUES (?1)", [x])
        .expect("insert");
}

fn with_reason(s: &Sandbox, reason: &str) -> Vec<PathBuf> {
    s.backups()
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(&format!(".{reason}.")))
        .collect()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("metadata").permissions().mode() & 0o7777
}

/// Hidden temporaries in the backups folder.
fn temporaries(s: &Sandbox) -> Vec<String> {
    s.backup_files()
        .into_iter()
        .filter(|n| n.starts_with('.') && n.contains(".tmp"))
        .collect()
}

/// A database of about 24 MiB (above the size that gets a progress line): a
/// copy of it takes a moment.
pub fn big_db(s: &Sandbox) {
    let conn = s.conn();
    conn.execute_batch(
        "CREATE TABLE big (b BLOB);
         INSERT INTO big WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < 6000)
           SELECT randomblob(4000) FROM n;",
    )
    .expect("big db");
}

#[test]
fn restoring_the_oldest_of_three_kept_backups_works_and_keeps_it() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s.run(&["up", "--no-backup"]).code(0);
    for label in ["first", "second", "third"] {
        add(&s, label);
        s.run(&["backup", "--label", label, "--keep", "3"]).code(0);
    }
    let oldest = with_reason(&s, "first").pop().expect("the oldest backup");
    let out = s.run(&[
        "restore",
        oldest.to_str().expect("utf-8"),
        "--yes",
        "--keep",
        "3",
    ]);
    out.code(0);
    assert_eq!(xs(&s.db()), vec!["one", "first"]);
    assert!(
        oldest.is_file(),
        "the backup being restored was pruned:\n{}",
        s.listing()
    );
    // Restorable again.
    add(&s, "later");
    s.run(&[
        "restore",
        oldest.to_str().expect("utf-8"),
        "--yes",
        "--keep",
        "3",
    ])
    .code(0);
    assert_eq!(xs(&s.db()), vec!["one", "first"]);
}

#[test]
fn the_newest_pre_run_backup_is_never_pruned() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A).migration("2_b.sql", B);
    s.run(&["up"]).code(0);
    let pre_run = with_reason(&s, "before-up").pop().expect("before-up");
    for _ in 0..3 {
        s.run(&["backup", "--keep", "1"]).code(0);
    }
    assert!(
        pre_run.is_file(),
        "the pre-run backup was pruned:\n{}",
        s.listing()
    );
    assert_eq!(s.backups().len(), 2, "{}", s.listing());
}

#[test]
fn a_backup_another_process_is_using_is_not_pruned() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s.run(&["up", "--no-backup"]).code(0);
    s.run(&["backup", "--label", "used"]).code(0);
    let used = with_reason(&s, "used").pop().expect("backup");
    // What a restore in another process holds while it uses a backup.
    let f = std::fs::File::open(&used).expect("open");
    // SAFETY: flock(2) on a descriptor we own.
    assert_eq!(
        unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&f), libc::LOCK_SH) },
        0
    );
    for _ in 0..2 {
        s.run(&["backup", "--keep", "1"]).code(0);
    }
    assert!(used.is_file(), "{}", s.listing());
    drop(f);
    s.run(&["backup", "--keep", "1"]).code(0);
    assert!(
        !used.exists(),
        "pruned once nobody uses it:\n{}",
        s.listing()
    );
}

#[test]
fn restore_latest_twice_puts_back_the_same_backup_and_says_which() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s.run(&["up"]).code(0);
    s.run(&["backup", "--label", "good"]).code(0);
    add(&s, "mistake");
    for round in 0..2 {
        let out = s.run(&["restore", "--latest", "--yes"]);
        out.code(0)
            .stderr_has("the newest backup that is not a before-restore copy is")
            .stderr_has(".good.sqlite3");
        assert_eq!(xs(&s.db()), vec!["one"], "round {round}");
    }
    // A before-restore copy is restorable by name.
    let copies = with_reason(&s, "before-restore");
    let first = copies.first().expect("a before-restore copy");
    s.run(&["restore", first.to_str().expect("utf-8"), "--yes"])
        .code(0);
    assert_eq!(xs(&s.db()), vec!["one", "mistake"]);
}

#[test]
fn the_run_log_survives_a_restore() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A).migration("2_b.sql", B);
    s.run(&["up"]).code(0);
    s.run(&["down", "--yes"]).code(0);
    // --latest is the before-down backup: undo the down.
    s.run(&["restore", "--latest", "--yes"])
        .code(0)
        .stderr_has("runs since the backup, kept in the log: down (ok");
    let log = s.run(&["log", "--json"]).code(0).json();
    let commands: Vec<&str> = log["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["command"].as_str().expect("command"))
        .collect();
    assert_eq!(commands, vec!["restore", "down", "up"], "{log}");
    assert_eq!(s.applied(), vec![1, 2]);
}

#[test]
fn the_backups_folder_is_owner_only_and_one_others_can_write_is_refused() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s.run(&["up"]).code(0);
    assert_eq!(mode(&s.backups_dir()), 0o700);
    let backup = s.backups().pop().expect("backup");
    assert_eq!(mode(&backup), 0o600);
    std::fs::set_permissions(s.backups_dir(), std::fs::Permissions::from_mode(0o777))
        .expect("chmod");
    let files = s.backup_files();
    s.refuses(&["backup"], 5)
        .stderr_has("can be written by other users")
        .stderr_has("chmod go-w");
    // Nor is a backup picked from it.
    add(&s, "later");
    s.refuses(&["restore", "--latest", "--yes"], 5)
        .stderr_has("can be written by other users");
    assert_eq!(s.backup_files(), files);
    // Writable by the user's own group only: fine.
    std::fs::set_permissions(s.backups_dir(), std::fs::Permissions::from_mode(0o770))
        .expect("chmod");
    if std::fs::metadata(s.backups_dir()).expect("meta").gid() == unsafe { libc::getegid() } {
        let out = s.run(&["backup"]);
        out.code(0);
        assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    }
}

#[test]
fn a_path_that_is_not_utf8_is_refused_before_anything_is_written() {
    use std::os::unix::ffi::OsStrExt;
    let s = Sandbox::new();
    let dir = s.path().join(std::ffi::OsStr::from_bytes(b"caf\xe9"));
    std::fs::create_dir_all(dir.join("migrations")).expect("mkdir");
    std::fs::write(dir.join("migrations/1_a.sql"), A).expect("migration");
    let run = |args: &[&str]| {
        let out = s.command(args).current_dir(&dir).output().expect("run");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    Connection::open(dir.join("dev.db"))
        .expect("db")
        .execute_batch("CREATE TABLE t (x)")
        .expect("table");
    let before = file_hash(&dir.join("dev.db"));
    for args in [&["backup"][..], &["up"]] {
        let (code, err) = run(args);
        assert_eq!(code, Some(5), "`{args:?}`: {err}");
        assert!(err.contains("not valid UTF-8"), "{err}");
        assert_eq!(
            file_hash(&dir.join("dev.db")),
            before,
            "`{args:?}` changed the database"
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.join("backups"))
            .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(leftovers.is_empty(), "`{args:?}` wrote {leftovers:?}");
    }
}

#[test]
fn a_temporary_left_by_a_killed_backup_is_removed_by_the_next_command() {
    let s = Sandbox::new();
    big_db(&s);
    let mut child = s
        .command(&["backup"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn backup");
    wait_for(&mut child, "a temporary in the backups folder", || {
        !temporaries(&s).is_empty()
    });
    // SAFETY: kill(2) on our own child, not yet reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().expect("wait");
    let left = temporaries(&s);
    assert!(!left.is_empty(), "nothing left to clean up; inconclusive");
    let out = s.run(&["backups"]);
    out.code(0)
        .stderr_has("a temporary file left by a backstop that was killed");
    assert!(
        temporaries(&s).is_empty(),
        "still there: {:?}",
        temporaries(&s)
    );
    assert!(s.backups().is_empty());
}

#[test]
fn a_temporary_being_written_is_never_removed() {
    let s = Sandbox::new();
    big_db(&s);
    let mut child = s
        .command(&["backup"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn backup");
    wait_for(&mut child, "a temporary in the backups folder", || {
        !temporaries(&s).is_empty()
    });
    // Another command using the folder while the first one writes.
    s.run(&["backups"]).code(0);
    let still_running = child.try_wait().expect("try_wait").is_none();
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "the running backup failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        still_running,
        "the backup ended before the second command; inconclusive"
    );
    assert_eq!(s.backups().len(), 1);
    assert!(temporaries(&s).is_empty());
}

/// Any user: the mode of the file it replaces (here 0640), on both paths.
#[test]
fn restore_keeps_the_mode_of_the_file_it_replaces() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s.run(&["up"]).code(0);
    s.run(&["backup", "--label", "snap"]).code(0);
    std::fs::set_permissions(s.db(), std::fs::Permissions::from_mode(0o640)).expect("chmod");
    add(&s, "later");
    s.run(&["restore", "--latest", "--yes"]).code(0);
    assert_eq!(mode(&s.db()), 0o640, "normal path");
    std::fs::write(s.db(), b"not a database".repeat(300)).expect("damage");
    std::fs::set_permissions(s.db(), std::fs::Permissions::from_mode(0o640)).expect("chmod");
    s.run(&["restore", "--latest", "--yes"]).code(0);
    assert_eq!(mode(&s.db()), 0o640, "emergency path");
    assert_eq!(xs(&s.db()), vec!["one"]);
}

/// Root only: the database belongs to another user (the app's), mode 0664.
#[test]
fn restore_keeps_the_owner_group_and_mode_of_the_file_it_replaces() {
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to give the database to another user");
        return;
    }
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s.run(&["up"]).code(0);
    s.run(&["backup", "--label", "snap"]).code(0);
    let nobody = 65534;
    std::os::unix::fs::chown(s.db(), Some(nobody), Some(nobody)).expect("chown");
    std::fs::set_permissions(s.db(), std::fs::Permissions::from_mode(0o664)).expect("chmod");
    let owner = |p: &Path| {
        let m = std::fs::metadata(p).expect("metadata");
        (m.uid(), m.gid(), m.mode() & 0o7777)
    };
    add(&s, "later");
    s.run(&["restore", "--latest", "--yes"]).code(0);
    assert_eq!(owner(&s.db()), (nobody, nobody, 0o664), "normal path");
    assert_eq!(xs(&s.db()), vec!["one"]);
    // The emergency path: a damaged file is replaced by rename.
    std::fs::write(s.db(), b"not a database".repeat(300)).expect("damage");
    std::os::unix::fs::chown(s.db(), Some(nobody), Some(nobody)).expect("chown");
    std::fs::set_permissions(s.db(), std::fs::Permissions::from_mode(0o664)).expect("chmod");
    s.run(&["restore", "--latest", "--yes"]).code(0);
    assert_eq!(owner(&s.db()), (nobody, nobody, 0o664), "emergency path");
    assert_eq!(xs(&s.db()), vec!["one"]);
    // The copies of what was replaced stay private.
    for b in s.backups() {
        assert_eq!(mode(&b), 0o600, "{}", b.display());
    }
}

#[test]
fn a_setting_in_the_environment_that_is_not_utf8_is_refused_not_skipped() {
    use std::os::unix::ffi::OsStrExt;
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s.run(&["up"]).code(0);
    let before = file_hash(&s.db());
    let out = s
        .command(&["up"])
        .env(
            "BACKSTOP_DATABASE",
            std::ffi::OsStr::from_bytes(b"caf\xe9.db"),
        )
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    // Skipping it would have worked on dev.db, the default.
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("BACKSTOP_DATABASE") && err.contains("UTF-8"),
        "{err}"
    );
    assert_eq!(file_hash(&s.db()), before);
}

#[test]
fn the_emergency_restore_of_a_wal_database_puts_it_back_in_wal_mode() {
    let s = Sandbox::new();
    s.conn()
        .query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .expect("wal");
    s.migration("1_a.sql", A);
    s.run(&["up"]).code(0);
    s.run(&["backup", "--label", "snap"]).code(0);
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", s.db().display()));
    }
    std::fs::write(s.db(), b"not a database".repeat(300)).expect("damage");
    s.run(&["restore", "--latest", "--yes"]).code(0);
    let mode: String = s
        .conn()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("mode");
    assert_eq!(mode, "wal");
    assert_eq!(xs(&s.db()), vec!["one"]);
}

#[test]
fn a_label_may_not_take_one_of_backstops_own_reasons() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s.run(&["up", "--no-backup"]).code(0);
    for label in ["before-up", "Before Restore", "before_adopt"] {
        s.run(&["backup", "--label", label])
            .code(2)
            .stderr_has("error:")
            .stderr_has("--label")
            .stderr_has("backstop's own reasons");
    }
    assert!(s.backups().is_empty(), "{}", s.listing());
}

/// `before-deploy` is a manual backup: it must not displace the pre-run
/// backup that retention always keeps.
#[test]
fn a_before_something_label_is_not_mistaken_for_a_pre_run_backup() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s.run(&["up"]).code(0);
    let pre_run = with_reason(&s, "before-up").pop().expect("before-up");
    s.run(&["backup", "--label", "before-deploy"]).code(0);
    let deploy = with_reason(&s, "before-deploy").pop().expect("labelled");
    for _ in 0..2 {
        s.run(&["backup", "--keep", "1"]).code(0);
    }
    assert!(pre_run.is_file(), "before-up was pruned:\n{}", s.listing());
    assert!(!deploy.exists(), "kept beyond --keep:\n{}", s.listing());
}

/// The name of a backup carries only the file stem; without its manifest,
/// nothing says it is this database's, so retention leaves it alone.
#[test]
fn a_backup_without_its_manifest_is_never_pruned() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    std::fs::create_dir_all(s.path().join("one")).unwrap();
    std::fs::create_dir_all(s.path().join("two")).unwrap();
    s.run(&["-d", "two/app.db", "up", "--no-backup"]).code(0);
    s.run(&["-d", "two/app.db", "backup", "--label", "theirs"])
        .code(0);
    let theirs = with_reason(&s, "theirs").pop().expect("two's backup");
    std::fs::remove_file(theirs.with_extension("json")).expect("remove manifest");
    s.run(&["-d", "one/app.db", "up", "--no-backup"]).code(0);
    for _ in 0..3 {
        s.run(&["-d", "one/app.db", "backup", "--keep", "1"])
            .code(0);
    }
    assert!(
        theirs.is_file(),
        "another database's backup was pruned:\n{}",
        s.listing()
    );
}

/// Root only: the app's database, which the user running `restore` (here
/// `nobody`) may not open, is unavailable (exit 4), never taken for damaged
/// and replaced.
#[test]
fn a_database_the_user_cannot_open_is_unavailable_not_damaged() {
    use std::os::unix::process::CommandExt;
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to run backstop as another user");
        return;
    }
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s.run(&["up"]).code(0);
    s.run(&["backup", "--label", "snap"]).code(0);
    let nobody = 65534;
    // The user owns the project and its backups; the database is the app's.
    std::fs::set_permissions(s.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    for entry in walk(s.path()) {
        if entry != s.db() {
            std::os::unix::fs::lchown(&entry, Some(nobody), Some(nobody)).expect("chown");
        }
    }
    std::fs::set_permissions(s.db(), std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let before = file_hash(&s.db());
    let out = match s
        .command(&["restore", "--latest", "--yes"])
        .uid(nobody)
        .gid(nobody)
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!("skipped: cannot run backstop as nobody: {e}");
            return;
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("error:") && stderr.contains("dev.db"),
        "{stderr}"
    );
    assert!(!stderr.contains("damaged"), "{stderr}");
    assert!(
        stderr.contains("run backstop as the user that owns"),
        "{stderr}"
    );
    assert_eq!(
        file_hash(&s.db()),
        before,
        "the app's database was replaced"
    );
    assert!(
        !s.backup_files().iter().any(|n| n.contains(".damaged")),
        "{}",
        s.listing()
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}
