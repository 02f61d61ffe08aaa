//! Backups and restore (SPEC "Backups", "Restore", `up` steps 3 and 5): names,
//! manifests, permissions, retention, WAL, damaged backups and databases, the
//! failure prompt, full and read-only backup folders, and the write lock held
//! from the backup to the first migration.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rusqlite::{Connection, OpenFlags};

use crate::pty::Pty;
use crate::sandbox::{file_hash, Sandbox};

const A: &str = "-- migrate:up\nCREATE TABLE a (id INTEGER PRIMARY KEY, x TEXT);\nINSERT INTO a (x) VALUES ('one'), ('two');\n-- migrate:down\nDROP TABLE a;\n";
const B: &str = "-- migrate:up\nCREATE TABLE b (id INTEGER PRIMARY KEY);\nINSERT INTO a (x) VALUES ('from-b');\n-- migrate:down\nDROP TABLE b;\n";
const BAD: &str =
    "-- migrate:up\nINSERT INTO a (x) VALUES ('from-bad');\nSELECT abs(-9223372036854775808);\n";

// ---------------------------------------------------------------- helpers

/// Opens any database file read-only (a backup, or the live one).
fn open_ro(path: &Path) -> Connection {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

/// Values of `a.x` in `path`, in id order; None when table `a` is absent.
fn a_rows(path: &Path) -> Option<Vec<String>> {
    let conn = open_ro(path);
    let mut stmt = conn.prepare("SELECT x FROM a ORDER BY id").ok()?;
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .expect("query a")
        .map(|r| r.expect("row"))
        .collect();
    Some(rows)
}

fn has_table(path: &Path, name: &str) -> bool {
    open_ro(path)
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            [name],
            |r| r.get::<_, i64>(0),
        )
        .expect("schema query")
        > 0
}

fn integrity_ok(path: &Path) -> bool {
    open_ro(path)
        .query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))
        .map(|s| s == "ok")
        .unwrap_or(false)
}

fn manifest_path(backup: &Path) -> PathBuf {
    let name = backup.file_name().unwrap().to_string_lossy().into_owned();
    let base = name
        .strip_suffix(".sqlite3")
        .expect("backup name ends in .sqlite3");
    backup.with_file_name(format!("{base}.json"))
}

fn manifest(backup: &Path) -> serde_json::Value {
    let p = manifest_path(backup);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).expect("manifest is JSON")
}

fn name_of(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// Final-name backups in the sandbox whose reason is `reason`.
fn backups_with_reason(s: &Sandbox, reason: &str) -> Vec<PathBuf> {
    let suffix = format!(".{reason}.sqlite3");
    s.backups()
        .into_iter()
        .filter(|p| name_of(p).ends_with(&suffix))
        .collect()
}

/// Inverts 64 bytes in the middle of a file.
fn flip_middle(path: &Path) {
    let mut bytes = std::fs::read(path).expect("read");
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b = !*b;
    }
    std::fs::write(path, bytes).expect("write");
}

/// Every file in the backups folder has a final name (`*.sqlite3` with its
/// manifest, or a `.damaged` copy): no temporary file is left behind.
#[track_caller]
fn assert_only_final_names(s: &Sandbox) {
    for name in s.backup_files() {
        assert!(
            !name.starts_with('.') && !name.ends_with(".tmp"),
            "temporary file {name} left in backups/:\n{}",
            s.listing()
        );
        if let Some(base) = name.strip_suffix(".sqlite3") {
            assert!(
                s.backups_dir().join(format!("{base}.json")).is_file(),
                "{name} has no manifest:\n{}",
                s.listing()
            );
        } else {
            assert!(
                name.ends_with(".json") || name.contains(".damaged"),
                "unexpected file {name} in backups/:\n{}",
                s.listing()
            );
        }
    }
}

/// Splits a command line printed for a POSIX shell (plain words and '…' quotes).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    cur.push(q);
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// A tmpfs mounted on a folder, unmounted on drop (even when the test fails).
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// None (and a note on stderr) where mounting is not allowed.
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).expect("mount point");
        let ok = Command::new("mount")
            // Owner-only, as a backups folder must be (a tmpfs root is 1777).
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("skipped: cannot mount a tmpfs here (needs root and mount rights)");
            return None;
        }
        Some(Tmpfs(dir.to_path_buf()))
    }

    fn remount_ro(&self) -> bool {
        Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Writes a filler file until the filesystem is full.
    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.0.join("filler")).expect("filler");
        let chunk = vec![0xA5u8; 4096];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A database bigger than `kib` KiB: migration 1 creates `a` and fills it.
fn big_database(s: &Sandbox, kib: usize) {
    let rows = kib; // ~1 KiB of hex per row
    s.migration(
        "1_a.sql",
        &format!(
            "-- migrate:up\nCREATE TABLE a (id INTEGER PRIMARY KEY, x TEXT);\n\
             WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {rows})\n\
             INSERT INTO a (x) SELECT hex(randomblob(512)) FROM c;\n"
        ),
    );
    s.run(&["up", "--no-backup"]).code(0);
    let size = std::fs::metadata(s.db()).unwrap().len();
    assert!(size > (kib as u64) * 1024, "database is only {size} bytes");
}

// ------------------------------------------------------- `up` and backups

#[test]
fn up_takes_one_verified_private_backup_of_the_pre_run_state() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s.run(&["up"]).code(0).stdout_has("backup ");
    let first = s.backups();
    assert_eq!(first.len(), 1, "{}", s.listing());

    // Name: <db stem>.<UTC YYYYMMDDTHHMMSSmmmZ>.before-up.sqlite3
    let name = name_of(&first[0]);
    let ts = name
        .strip_prefix("dev.")
        .and_then(|r| r.strip_suffix(".before-up.sqlite3"))
        .unwrap_or_else(|| panic!("unexpected backup name {name}"));
    let at = chrono::NaiveDateTime::parse_from_str(ts, "%Y%m%dT%H%M%S%3fZ")
        .unwrap_or_else(|e| panic!("timestamp {ts} in {name}: {e}"));
    assert_eq!(ts.len(), "YYYYMMDDTHHMMSSmmmZ".len());
    let age = chrono::Utc::now().naive_utc() - at;
    assert!(
        age.num_seconds().abs() < 120,
        "timestamp {ts} is not UTC now"
    );

    let m = manifest(&first[0]);
    assert_eq!(m["reason"], "before-up");
    assert_eq!(m["tool_version"], env!("CARGO_PKG_VERSION"));
    assert!(m["newest_version"].is_null(), "first run: {m}");
    let source = std::fs::canonicalize(s.db()).unwrap();
    assert_eq!(m["source"].as_str().map(PathBuf::from), Some(source));
    let created = chrono::DateTime::parse_from_rfc3339(m["created_at"].as_str().unwrap())
        .expect("created_at is RFC 3339");
    assert_eq!(created.naive_utc(), at, "created_at matches the name");
    assert_eq!(
        m["size"].as_u64(),
        Some(std::fs::metadata(&first[0]).unwrap().len())
    );
    assert_eq!(m["sha256"].as_str(), Some(file_hash(&first[0]).as_str()));
    // The first run's backup is of the new, empty database: before anything ran.
    assert!(!has_table(&first[0], "a"));

    // Second run: one more backup, of the state after run one.
    s.migration("2_b.sql", B);
    s.run(&["up"]).code(0);
    let all = s.backups();
    assert_eq!(all.len(), 2, "{}", s.listing());
    let second = all.iter().find(|p| **p != first[0]).unwrap();
    let m = manifest(second);
    assert_eq!(m["newest_version"], "1");
    assert_eq!(m["sha256"].as_str(), Some(file_hash(second).as_str()));
    assert_eq!(a_rows(second), Some(vec!["one".into(), "two".into()]));
    assert!(
        !has_table(second, "b"),
        "backup taken after migration 2 ran"
    );
    assert!(integrity_ok(second));
    // The live database did move on.
    assert!(s.table_exists("b"));

    // Readable by the owner only: the backup and its manifest.
    for p in [second.clone(), manifest_path(second)] {
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} has mode {mode:o}", p.display());
    }
}

#[test]
fn nothing_pending_takes_no_backup() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s.run(&["up"]).code(0);
    let files = s.backup_files();
    s.run(&["up"]).code(0).stdout_has("up to date");
    s.run(&["up", "--to", "1"]).code(0);
    assert_eq!(s.backup_files(), files);
}

#[test]
fn no_backup_flag_applies_without_a_backup() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s.run(&["up", "--no-backup"]).code(0);
    assert_eq!(s.applied(), vec![1]);
    assert!(s.backup_files().is_empty(), "{}", s.listing());
}

#[test]
fn backups_folder_is_created_on_first_backup() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    assert!(!s.backups_dir().exists());
    s.run(&["up"]).code(0);
    assert_eq!(s.backups().len(), 1);

    let nested = s.path().join("deep/er/bk");
    s.run(&["backup", "--backups", "deep/er/bk"]).code(0);
    let made: Vec<_> = std::fs::read_dir(&nested)
        .expect("nested backups folder created")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(made.len(), 2, "{made:?}");
    assert!(made.iter().any(|n| n.ends_with(".manual.sqlite3")));
}

#[test]
fn no_temporary_files_are_left_after_success_or_failure() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s.run(&["up"]).code(0);
    s.run(&["backup"]).code(0);
    assert_only_final_names(&s);
    s.migration("2_bad.sql", BAD);
    s.run(&["up"]).code(1);
    assert_only_final_names(&s);
    // Nothing of that run was applied, so nothing is restored.
    s.run(&["up", "--on-failure", "restore"]).code(1);
    assert_only_final_names(&s);
    assert_eq!(s.backups().len(), 4, "{}", s.listing());
    s.run(&["restore", "--latest", "--yes"]).code(0);
    assert_only_final_names(&s);
    assert_eq!(s.backups().len(), 5, "{}", s.listing());
    // No restore leftovers beside the database either.
    for e in std::fs::read_dir(s.path()).unwrap().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        assert!(!n.ends_with(".tmp"), "{n} left beside the database");
    }
}

#[test]
fn retention_keeps_the_newest_and_always_the_one_just_taken() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s.run(&["up", "--no-backup"]).code(0);
    let mut taken = Vec::new();
    for _ in 0..4 {
        let j = s.run(&["backup", "--keep", "2", "--json"]).code(0).json();
        let path = PathBuf::from(j["path"].as_str().expect("path in backup --json"));
        taken.push(name_of(&path));
    }
    let left: Vec<String> = s.backups().iter().map(|p| name_of(p)).collect();
    assert_eq!(left, taken[2..].to_vec(), "{}", s.listing());
    assert_eq!(
        s.backup_files()
            .iter()
            .filter(|n| n.ends_with(".json"))
            .count(),
        2,
        "manifests pruned with their backups:\n{}",
        s.listing()
    );
    assert_only_final_names(&s);

    // A backup dated in the future sorts first; the one just taken is still kept.
    let newest = s.backups_dir().join(&taken[3]);
    let future = s
        .backups_dir()
        .join("dev.20991231T235959999Z.manual.sqlite3");
    std::fs::copy(&newest, &future).unwrap();
    std::fs::copy(manifest_path(&newest), manifest_path(&future)).unwrap();
    let j = s.run(&["backup", "--keep", "1", "--json"]).code(0).json();
    let just = name_of(Path::new(j["path"].as_str().unwrap()));
    let left: Vec<String> = s.backups().iter().map(|p| name_of(p)).collect();
    assert_eq!(left, vec![just], "{}", s.listing());
}

#[test]
fn label_slug_listing_newest_first_and_damage_shows_in_backups_json() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s.run(&["up"]).code(0);
    s.run(&["backup", "--label", "Before Deploy"]).code(0);
    let labelled = backups_with_reason(&s, "before-deploy");
    assert_eq!(labelled.len(), 1, "{}", s.listing());
    assert_eq!(manifest(&labelled[0])["reason"], "before-deploy");

    let text = s.run(&["backups"]).code(0).stdout.clone();
    let (deploy, up) = (text.find("before-deploy"), text.find("before-up"));
    assert!(
        deploy.is_some() && up.is_some() && deploy < up,
        "not newest first:\n{text}"
    );

    let j = s.run(&["backups", "--json"]).code(0).json();
    let list = j["backups"]
        .as_array()
        .expect("backups --json lists backups");
    assert_eq!(list.len(), 2, "{j}");
    assert_eq!(list[0]["reason"], "before-deploy");
    assert_eq!(list[1]["reason"], "before-up");
    let p0 = s.path().join(list[0]["path"].as_str().unwrap());
    assert_eq!(name_of(&p0), name_of(&labelled[0]));
    assert!(list[0]["created_at"].is_string());
    assert_eq!(list[0]["newest_version"], "1");
    assert!(list[1]["newest_version"].is_null());
    assert_eq!(
        list[0]["size"].as_u64(),
        Some(std::fs::metadata(&labelled[0]).unwrap().len())
    );
    assert_eq!(list[0]["intact"], true);
    assert_eq!(list[1]["intact"], true);

    flip_middle(&labelled[0]);
    let j = s.run(&["backups", "--json"]).code(0).json();
    assert_eq!(j["backups"][0]["intact"], false, "{j}");
    assert_eq!(j["backups"][1]["intact"], true, "{j}");
    s.run(&["backups"]).code(0).stdout_has("DAMAGED");
}

/// A WAL database whose table `t` holds `n` rows that live only in the -wal
/// (checked), through the returned writer, which keeps the log from being
/// checkpointed at close.
fn wal_rows_only_in_the_log(s: &Sandbox, prefix: &str, n: u32) -> Connection {
    let db = s.db();
    let writer = Connection::open(&db).unwrap();
    let mode: String = writer
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    writer
        .execute_batch("PRAGMA wal_autocheckpoint = 0; CREATE TABLE IF NOT EXISTS t (x TEXT);")
        .unwrap();
    add_rows(&writer, prefix, n);
    // Precondition: the rows are in the -wal, not in the main file.
    let contains = |p: &Path| {
        std::fs::read(p)
            .map(|b| b.windows(prefix.len()).any(|w| w == prefix.as_bytes()))
            .unwrap_or(false)
    };
    let mut wal = db.clone().into_os_string();
    wal.push("-wal");
    assert!(contains(Path::new(&wal)) && !contains(&db));
    writer
}

/// Commits `n` rows `prefix1`, `prefix2`, … into `t`.
fn add_rows(conn: &Connection, prefix: &str, n: u32) {
    conn.execute_batch(&format!(
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {n})
         INSERT INTO t SELECT '{prefix}' || i FROM c;"
    ))
    .unwrap();
}

/// Rows of `t` in the live database, through the app's connection.
fn live_rows(conn: &Connection) -> i64 {
    conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap()
}

/// The one backup's count of `t` rows starting with `prefix`, after checking
/// that it stands on its own: rollback-journal header, no -wal beside it, the
/// manifest's hash.
fn backed_up_rows(s: &Sandbox, prefix: &str) -> i64 {
    let backups = s.backups();
    assert_eq!(backups.len(), 1, "{}", s.listing());
    let header = std::fs::read(&backups[0]).unwrap();
    assert_eq!((header[18], header[19]), (1, 1), "backup left in WAL mode");
    assert_eq!(
        manifest(&backups[0])["sha256"].as_str(),
        Some(file_hash(&backups[0]).as_str())
    );
    let conn = open_ro(&backups[0]);
    let n = conn
        .query_row(
            "SELECT count(*) FROM t WHERE x LIKE ? || '%'",
            [prefix],
            |r| r.get(0),
        )
        .unwrap();
    let ok: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    drop(conn);
    let mut bwal = backups[0].clone().into_os_string();
    bwal.push("-wal");
    assert!(!Path::new(&bwal).exists());
    n
}

#[test]
fn wal_backup_holds_rows_that_live_only_in_the_wal() {
    // Quiet database: the log is checkpointed and the main file copied byte
    // for byte (issue 14).
    let s = Sandbox::new();
    let writer = wal_rows_only_in_the_log(&s, "wal-only-", 100);
    s.run(&["backup"]).code(0);
    assert_eq!(backed_up_rows(&s, "wal-only-"), 100);
    assert_eq!(live_rows(&writer), 100, "the live database lost rows");
}

#[test]
fn wal_backup_beside_an_open_write_transaction_holds_the_committed_rows_only() {
    // The write lock cannot be had: the backup API copies the snapshot.
    let s = Sandbox::new();
    let writer = wal_rows_only_in_the_log(&s, "wal-only-", 100);
    let busy = Connection::open(s.db()).unwrap();
    busy.execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES ('uncommitted');")
        .unwrap();
    s.run(&["backup"]).code(0);
    assert_eq!(
        backed_up_rows(&s, "wal-only-"),
        100,
        "committed WAL rows missing"
    );
    assert_eq!(
        backed_up_rows(&s, "uncommitted"),
        0,
        "uncommitted row in the backup"
    );
    busy.execute_batch("COMMIT").unwrap();
    assert_eq!(live_rows(&writer), 101, "the live database lost rows");
}

#[test]
fn wal_backup_beside_a_reader_on_an_older_snapshot_holds_the_newer_commits() {
    // The app's reader keeps the checkpoint from moving the newer frames into
    // the main file: a byte copy of it would miss them.
    let s = Sandbox::new();
    let writer = wal_rows_only_in_the_log(&s, "first-", 50);
    let reader = Connection::open(s.db()).unwrap();
    reader
        .execute_batch("BEGIN; SELECT count(*) FROM t;")
        .unwrap();
    add_rows(&writer, "second-", 70);
    s.run(&["backup"]).code(0);
    assert_eq!(backed_up_rows(&s, "first-"), 50);
    assert_eq!(
        backed_up_rows(&s, "second-"),
        70,
        "commits past the reader's snapshot missing"
    );
    reader.execute_batch("COMMIT").unwrap();
}

// ----------------------------------------------------------------- restore

#[test]
fn restore_refuses_a_damaged_backup_and_changes_nothing() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s.run(&["up"]).code(0);
    let j = s.run(&["backup", "--json"]).code(0).json();
    let backup = s.path().join(j["path"].as_str().unwrap());
    s.conn()
        .execute("INSERT INTO a (x) VALUES ('later')", [])
        .unwrap();
    flip_middle(&backup);
    s.refuses(&["restore", backup.to_str().unwrap(), "--yes"], 5)
        .stderr_has("error:")
        .stderr_has(&name_of(&backup));
    assert!(backups_with_reason(&s, "before-restore").is_empty());
}

#[test]
fn restore_refuses_a_backup_without_its_manifest() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s.run(&["up"]).code(0);
    let j = s.run(&["backup", "--json"]).code(0).json();
    let backup = s.path().join(j["path"].as_str().unwrap());
    std::fs::remove_file(manifest_path(&backup)).unwrap();
    s.refuses(&["restore", backup.to_str().unwrap(), "--yes"], 5)
        .stderr_has("manifest");
    assert!(backups_with_reason(&s, "before-restore").is_empty());
}

#[test]
fn restore_latest_puts_the_backup_back_after_saving_what_it_replaces() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s.run(&["up"]).code(0);
    s.run(&["backup", "--label", "snap"]).code(0);
    s.conn()
        .execute_batch("INSERT INTO a (x) VALUES ('three'); CREATE TABLE extra (y);")
        .unwrap();

    s.run(&["restore", "--latest", "--yes"]).code(0);
    // The newest backup (snap), not the older before-up one (no table a there).
    assert_eq!(a_rows(&s.db()), Some(vec!["one".into(), "two".into()]));
    assert!(!s.table_exists("extra"));
    assert_eq!(s.applied(), vec![1]);
    assert!(integrity_ok(&s.db()));

    let safety = backups_with_reason(&s, "before-restore");
    assert_eq!(safety.len(), 1, "{}", s.listing());
    assert_eq!(
        a_rows(&safety[0]),
        Some(vec!["one".into(), "two".into(), "three".into()])
    );
    assert!(has_table(&safety[0], "extra"));
    assert_eq!(
        manifest(&safety[0])["sha256"].as_str(),
        Some(file_hash(&safety[0]).as_str())
    );

    let outcomes: Vec<String> = {
        let conn = s.conn();
        let mut stmt = conn
            .prepare("SELECT outcome FROM _backstop_runs WHERE command = 'restore'")
            .unwrap();
        let v = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        v
    };
    assert_eq!(outcomes, vec!["restored".to_string()]);
}

#[test]
fn restore_without_a_terminal_needs_a_choice_and_yes() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s.run(&["up"]).code(0);
    s.conn()
        .execute("INSERT INTO a (x) VALUES ('later')", [])
        .unwrap();
    s.refuses(&["restore"], 3).stderr_has("--latest");
    s.refuses(&["restore", "--latest"], 3).stderr_has("--yes");
}

// --------------------------------------------------------- emergency path

/// Up + a labelled backup of rows one, two; returns the backup.
fn emergency_setup(s: &Sandbox) -> PathBuf {
    s.migration("1_a.sql", A);
    s.run(&["up"]).code(0);
    let j = s
        .run(&["backup", "--label", "good", "--json"])
        .code(0)
        .json();
    s.path().join(j["path"].as_str().unwrap())
}

fn damaged_copies(s: &Sandbox) -> Vec<String> {
    s.backup_files()
        .into_iter()
        .filter(|n| n.contains(".damaged"))
        .collect()
}

#[track_caller]
fn assert_restored_good(s: &Sandbox) {
    assert_eq!(a_rows(&s.db()), Some(vec!["one".into(), "two".into()]));
    assert_eq!(s.applied(), vec![1]);
    assert!(integrity_ok(&s.db()));
}

#[test]
fn restore_recreates_a_deleted_database() {
    let s = Sandbox::new();
    emergency_setup(&s);
    s.remove("dev.db");
    s.run(&["restore", "--latest", "--yes"]).code(0);
    assert_restored_good(&s);
    assert_only_final_names(&s);
}

#[test]
fn restore_replaces_a_truncated_database_and_keeps_the_damaged_bytes() {
    let s = Sandbox::new();
    emergency_setup(&s);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(s.db())
        .unwrap();
    f.set_len(100).unwrap();
    drop(f);
    let damaged = std::fs::read(s.db()).unwrap();

    s.run(&["restore", "--latest", "--yes"]).code(0);
    assert_restored_good(&s);
    let copies = damaged_copies(&s);
    assert_eq!(copies.len(), 1, "{}", s.listing());
    assert!(copies[0].starts_with("dev.") && copies[0].ends_with(".damaged"));
    assert_eq!(
        std::fs::read(s.backups_dir().join(&copies[0])).unwrap(),
        damaged
    );
    // A damaged file is not backed up as if it were a database.
    assert!(backups_with_reason(&s, "before-restore").is_empty());
    assert_only_final_names(&s);
}

#[test]
fn restore_replaces_a_garbage_database_and_keeps_the_damaged_bytes() {
    let s = Sandbox::new();
    emergency_setup(&s);
    let garbage: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(s.db(), &garbage).unwrap();

    s.run(&["restore", "--latest", "--yes"]).code(0);
    assert_restored_good(&s);
    let copies = damaged_copies(&s);
    assert_eq!(copies.len(), 1, "{}", s.listing());
    assert_eq!(
        std::fs::read(s.backups_dir().join(&copies[0])).unwrap(),
        garbage
    );
}

#[test]
fn restore_saves_and_removes_stale_journal_and_wal_beside_a_damaged_database() {
    let s = Sandbox::new();
    emergency_setup(&s);
    std::fs::write(s.db(), vec![0x5Au8; 4096]).unwrap();
    let journal = s.path().join("dev.db-journal");
    let wal = s.path().join("dev.db-wal");
    std::fs::write(&journal, b"stale journal bytes").unwrap();
    std::fs::write(&wal, b"stale wal bytes").unwrap();

    s.run(&["restore", "--latest", "--yes"]).code(0);
    assert!(
        !journal.exists(),
        "stale -journal still beside the database"
    );
    assert!(!wal.exists(), "stale -wal still beside the database");
    assert_restored_good(&s);
    let copies = damaged_copies(&s);
    let find = |suffix: &str| {
        copies
            .iter()
            .find(|n| n.ends_with(suffix))
            .map(|n| std::fs::read(s.backups_dir().join(n)).unwrap())
    };
    assert_eq!(find(".damaged"), Some(vec![0x5Au8; 4096]), "{copies:?}");
    assert_eq!(
        find(".damaged-journal"),
        Some(b"stale journal bytes".to_vec())
    );
    assert_eq!(find(".damaged-wal"), Some(b"stale wal bytes".to_vec()));
}

#[test]
fn damaged_copies_are_never_listed_chosen_by_latest_or_pruned() {
    let s = Sandbox::new();
    emergency_setup(&s);
    std::fs::write(s.db(), b"not a database at all, just text".repeat(100)).unwrap();
    s.run(&["restore", "--latest", "--yes"]).code(0);
    let copies = damaged_copies(&s);
    assert_eq!(copies.len(), 1, "{}", s.listing());
    let damaged = s.backups_dir().join(&copies[0]);
    let damaged_hash = file_hash(&damaged);

    // Not listed.
    let j = s.run(&["backups", "--json"]).code(0).json();
    for b in j["backups"].as_array().unwrap() {
        assert!(!b["path"].as_str().unwrap().contains("damaged"), "{j}");
    }
    let text = s.run(&["backups"]).code(0).stdout.clone();
    assert!(
        !text.contains("damaged"),
        "`backups` lists a .damaged copy:\n{text}"
    );

    // Not chosen by --latest although it is the newest file in the folder.
    s.conn()
        .execute("INSERT INTO a (x) VALUES ('later')", [])
        .unwrap();
    s.run(&["restore", "--latest", "--yes"]).code(0);
    assert_restored_good(&s);

    // Not pruned (and not counted: `keep 1` leaves the new backup and the
    // newest pre-run one, which retention never deletes).
    for _ in 0..2 {
        s.run(&["backup", "--keep", "1"]).code(0);
    }
    let reasons: Vec<String> = s.backups().iter().map(|p| name_of(p)).collect();
    assert_eq!(s.backups().len(), 2, "{}", s.listing());
    assert!(
        reasons.iter().any(|n| n.ends_with(".before-up.sqlite3")),
        "{reasons:?}"
    );
    assert_eq!(file_hash(&damaged), damaged_hash, "{}", s.listing());
}

// ---------------------------------------------------------- failed `up`

/// Migration 1 applied (rows one, two); 2 is fine, 3 fails.
fn failing_run_setup(s: &Sandbox) {
    s.migration("1_a.sql", A);
    s.run(&["up"]).code(0);
    s.migration("2_b.sql", B).migration("3_bad.sql", BAD);
}

#[track_caller]
fn assert_pre_run_state(s: &Sandbox) {
    assert_eq!(s.applied(), vec![1]);
    assert!(!s.table_exists("b"));
    assert_eq!(a_rows(&s.db()), Some(vec!["one".into(), "two".into()]));
    assert!(integrity_ok(&s.db()));
}

#[track_caller]
fn assert_kept_state(s: &Sandbox) {
    assert_eq!(s.applied(), vec![1, 2]);
    assert!(s.table_exists("b"));
    assert_eq!(
        a_rows(&s.db()),
        Some(vec!["one".into(), "two".into(), "from-b".into()])
    );
}

#[test]
fn failed_up_without_a_terminal_keeps_and_prints_a_restore_command_that_works() {
    let s = Sandbox::new();
    failing_run_setup(&s);
    let out = s.run(&["up"]);
    out.code(1).stderr_has("3_bad.sql:3");
    assert_kept_state(&s);
    let line = out
        .stderr
        .lines()
        .find_map(|l| l.find("backstop restore ").map(|i| &l[i..]))
        .unwrap_or_else(|| panic!("no restore command on stderr:\n{}", out.stderr));
    let words = shell_words(line);
    assert_eq!(words[0], "backstop");
    assert!(words.iter().any(|w| w == "--yes"), "{line}");
    let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
    s.run(&args).code(0);
    assert_pre_run_state(&s);
}

#[test]
fn on_failure_restore_undoes_the_whole_run() {
    let s = Sandbox::new();
    failing_run_setup(&s);
    s.run(&["up", "--on-failure", "restore"])
        .code(1)
        .stderr_has("restored");
    assert_pre_run_state(&s);
    let log = s.run(&["log", "--json"]).code(0).json();
    assert!(
        log["runs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["outcome"] == "restored"),
        "{log}"
    );
    s.run(&["log"]).code(0).stdout_has("restored");
}

#[test]
fn on_failure_keep_leaves_earlier_migrations_applied() {
    let s = Sandbox::new();
    failing_run_setup(&s);
    s.run(&["up", "--on-failure", "keep"]).code(1);
    assert_kept_state(&s);
    assert!(backups_with_reason(&s, "before-restore").is_empty());
}

// ------------------------------------------------ unusable backups folder

#[test]
fn full_backups_folder_stops_up_before_anything_changes() {
    let s = Sandbox::new();
    big_database(&s, 200);
    s.migration("2_b.sql", B);
    let folder = s.path().join("full");
    let Some(fs) = Tmpfs::mount(&folder, "64k") else {
        return;
    };
    fs.fill();
    s.refuses(&["up", "--backups", "full"], 5)
        .stderr_has("error:");
    assert_eq!(s.applied(), vec![1]);
    let names: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["filler".to_string()], "left in the full folder");
}

#[test]
fn read_only_backups_folder_stops_up_before_anything_changes() {
    let s = Sandbox::new();
    big_database(&s, 8);
    s.migration("2_b.sql", B);
    let folder = s.path().join("ro");
    let Some(fs) = Tmpfs::mount(&folder, "4m") else {
        return;
    };
    if !fs.remount_ro() {
        eprintln!("skipped: cannot remount the tmpfs read-only");
        return;
    }
    s.refuses(&["up", "--backups", "ro"], 5)
        .stderr_has("error:");
    assert_eq!(s.applied(), vec![1]);
    assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 0);
}

// ------------------------------------------------------------------ locks

#[test]
fn up_holds_the_write_lock_from_backup_to_commit_and_loses_no_later_write() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s.run(&["up"]).code(0);
    s.migration(
        "2_slow.sql",
        "-- migrate:up\nWITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 3000000) SELECT count(*) FROM c;\n",
    );
    let mut child = s
        .command(&["up", "-v"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn up");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let n = stderr.read_line(&mut line).unwrap();
        assert!(n > 0, "up ended before the slow statement:\n{seen}");
        seen.push_str(&line);
        if line.contains("WITH RECURSIVE") {
            break;
        }
    }
    assert!(
        s.backups().len() == 2,
        "backup not taken before the migration:\n{}",
        s.listing()
    );
    let rest = std::thread::spawn(move || {
        let mut r = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut r);
        r
    });

    // While the slow migration runs, nobody else may write.
    let conn = Connection::open(s.db()).unwrap();
    conn.busy_timeout(std::time::Duration::ZERO).unwrap();
    let err = conn
        .execute_batch("BEGIN IMMEDIATE")
        .expect_err("another writer got the lock during `up`");
    assert_eq!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy),
        "{err}"
    );
    // A writer that waits gets in after `up` commits, and its row stays.
    conn.busy_timeout(std::time::Duration::from_secs(60))
        .unwrap();
    conn.execute_batch("BEGIN IMMEDIATE; INSERT INTO a (x) VALUES ('writer'); COMMIT;")
        .unwrap();
    drop(conn);
    let status = child.wait().unwrap();
    let tail = rest.join().unwrap();
    assert_eq!(status.code(), Some(0), "{seen}{tail}");
    assert_eq!(s.applied(), vec![1, 2]);
    assert_eq!(
        s.query_i64("SELECT count(*) FROM a WHERE x = 'writer'"),
        1,
        "the other writer's row was lost"
    );
}

#[test]
fn locked_database_fails_up_without_a_backup() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s.run(&["up"]).code(0);
    s.migration("2_b.sql", B);
    let files = s.backup_files();
    // Hashed before locking: closing any descriptor of the file in this process
    // would drop the process's POSIX locks, the holder's included.
    let before = file_hash(&s.db());
    let holder = Connection::open(s.db()).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    s.run(&["up", "--busy-timeout-ms", "200"])
        .code(4)
        .stderr_has("dev.db");
    holder.execute_batch("ROLLBACK").unwrap();
    assert_eq!(file_hash(&s.db()), before);
    assert_eq!(s.backup_files(), files, "a backup was left behind");
    assert_eq!(s.applied(), vec![1]);
}

// ---------------------------------------------- prompts on a real terminal

#[test]
fn failure_prompt_enter_restores_the_pre_run_state() {
    let s = Sandbox::new();
    failing_run_setup(&s);
    let mut pty = Pty::spawn(&s, &["up"]);
    pty.expect("What now?");
    pty.send("\r");
    pty.expect("restored");
    let transcript = pty.transcript();
    assert_eq!(pty.exit_code(), 1, "{transcript}");
    assert_pre_run_state(&s);
}

#[test]
fn failure_prompt_arrow_down_keeps_earlier_migrations() {
    let s = Sandbox::new();
    failing_run_setup(&s);
    let mut pty = Pty::spawn(&s, &["up"]);
    pty.expect("What now?");
    pty.send("\x1b[B");
    pty.expect_regex("❯ Keep");
    pty.send("\r");
    pty.expect("kept");
    assert_eq!(pty.exit_code(), 1);
    assert_kept_state(&s);
    assert!(backups_with_reason(&s, "before-restore").is_empty());
}

#[test]
fn restore_picker_on_a_terminal_restores_the_chosen_backup() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s.run(&["up"]).code(0);
    s.run(&["backup", "--label", "older"]).code(0);
    s.conn()
        .execute("INSERT INTO a (x) VALUES ('three')", [])
        .unwrap();
    s.run(&["backup", "--label", "newer"]).code(0);
    s.conn()
        .execute("INSERT INTO a (x) VALUES ('four')", [])
        .unwrap();

    let mut pty = Pty::spawn(&s, &["restore"]);
    pty.expect("Which backup");
    pty.send("\x1b[B");
    // Redrawn with the marker on the second line.
    pty.expect_regex("❯ [^\r\n]*older");
    pty.send("\r");
    pty.expect("(y/n)");
    pty.send("y");
    pty.expect("restored");
    assert_eq!(pty.exit_code(), 0);
    // The second in the list (newest first) is "older": rows one, two.
    assert_eq!(a_rows(&s.db()), Some(vec!["one".into(), "two".into()]));
    let safety = backups_with_reason(&s, "before-restore");
    assert_eq!(safety.len(), 1);
    assert_eq!(
        a_rows(&safety[0]),
        Some(vec![
            "one".into(),
            "two".into(),
            "three".into(),
            "four".into()
        ])
    );
}

#[test]
fn restore_into_a_wal_database_with_an_open_connection_is_seen_by_it() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s.run(&["up"]).code(0);
    let app = s.conn();
    let mode: String = app
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    s.run(&["backup", "--label", "snap"]).code(0);
    app.execute_batch("PRAGMA wal_autocheckpoint = 0; INSERT INTO a (x) VALUES ('later');")
        .unwrap();

    s.run(&["restore", "--latest", "--yes"]).code(0);
    // The application's open connection sees the restored content.
    let rows: Vec<String> = {
        let mut stmt = app.prepare("SELECT x FROM a ORDER BY id").unwrap();
        let v = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        v
    };
    assert_eq!(rows, vec!["one".to_string(), "two".to_string()]);
    let ok: String = app
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    drop(app);
    assert_restored_good(&s);
    let safety = backups_with_reason(&s, "before-restore");
    assert_eq!(safety.len(), 1, "{}", s.listing());
    assert_eq!(
        a_rows(&safety[0]),
        Some(vec!["one".into(), "two".into(), "later".into()])
    );
}

#[test]
fn restore_on_a_locked_database_exits_4_and_changes_nothing() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s.run(&["up"]).code(0);
    s.conn()
        .execute("INSERT INTO a (x) VALUES ('later')", [])
        .unwrap();
    // Hashed before locking: closing a descriptor of the file in this process
    // would drop the holder's POSIX locks.
    let before = file_hash(&s.db());
    let holder = Connection::open(s.db()).unwrap();
    holder
        .execute_batch("BEGIN IMMEDIATE; INSERT INTO a (x) VALUES ('uncommitted');")
        .unwrap();
    s.run(&["restore", "--latest", "--yes", "--busy-timeout-ms", "300"])
        .code(4)
        .stderr_has("dev.db");
    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);
    assert_eq!(file_hash(&s.db()), before);
    assert_eq!(
        a_rows(&s.db()),
        Some(vec!["one".into(), "two".into(), "later".into()])
    );
}

#[test]
fn databases_with_the_same_file_name_never_share_backups() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    std::fs::create_dir_all(s.path().join("one")).unwrap();
    std::fs::create_dir_all(s.path().join("two")).unwrap();
    let one = s.path().join("one/app.db");
    let two = s.path().join("two/app.db");
    s.run(&["-d", "one/app.db", "up"]).code(0);
    s.run(&["-d", "two/app.db", "up"]).code(0);
    for (db, tag) in [(&one, "only-in-one"), (&two, "only-in-two")] {
        Connection::open(db)
            .unwrap()
            .execute("INSERT INTO a (x) VALUES (?1)", [tag])
            .unwrap();
    }
    s.run(&["-d", "one/app.db", "backup", "--label", "mine"])
        .code(0);
    s.run(&["-d", "two/app.db", "backup", "--label", "theirs"])
        .code(0);

    // Listing: only this database's backups.
    let j = s
        .run(&["-d", "one/app.db", "backups", "--json"])
        .code(0)
        .json();
    let reasons: Vec<&str> = j["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, vec!["mine", "before-up"], "{j}");

    // --latest: the newest backup *of this database*, not two's newer one.
    Connection::open(&one)
        .unwrap()
        .execute("DELETE FROM a", [])
        .unwrap();
    s.run(&["-d", "one/app.db", "restore", "--latest", "--yes"])
        .code(0);
    assert_eq!(
        a_rows(&one),
        Some(vec!["one".into(), "two".into(), "only-in-one".into()])
    );

    // Retention: pruning one's backups leaves two's alone.
    s.run(&["-d", "one/app.db", "backup", "--keep", "1"])
        .code(0);
    let theirs: Vec<_> = s
        .backups()
        .into_iter()
        .filter(|p| name_of(p).contains(".theirs.") || name_of(p).contains(".before-up."))
        .filter(|p| manifest(p)["source"].as_str().unwrap().contains("/two/"))
        .collect();
    assert_eq!(
        theirs.len(),
        2,
        "two's backups were pruned:\n{}",
        s.listing()
    );
}

#[test]
fn restore_says_when_the_database_was_written_after_the_backup() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s.run(&["up"]).code(0);
    s.run(&["backup", "--label", "snap"]).code(0);
    let snap = backups_with_reason(&s, "snap").pop().expect("snap backup");
    // Untouched since the backup: no warning.
    let out = s.run(&["restore", snap.to_str().unwrap(), "--yes"]);
    out.code(0);
    assert!(!out.stderr.contains("written after"), "{}", out.stderr);
    // Another program writes (rollback-journal mode: the change counter moves).
    s.conn()
        .execute("INSERT INTO a (x) VALUES ('later')", [])
        .unwrap();
    s.run(&["restore", snap.to_str().unwrap(), "--yes"])
        .code(0)
        .stderr_has("written after this backup was taken");
    assert_eq!(a_rows(&s.db()), Some(vec!["one".into(), "two".into()]));
}

#[test]
fn restore_refuses_a_backup_that_fails_quick_check_even_with_a_matching_hash() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s.run(&["up"]).code(0);
    s.conn()
        .execute_batch(
            "CREATE TABLE pad (v TEXT);
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300)
             INSERT INTO pad SELECT printf('%0100d', x) FROM c;",
        )
        .unwrap();
    s.run(&["backup", "--label", "snap"]).code(0);
    let snap = backups_with_reason(&s, "snap").pop().expect("snap backup");
    // Damage a page, then make the manifest agree with the damaged bytes: only
    // quick_check can tell now.
    std::fs::set_permissions(&snap, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut bytes = std::fs::read(&snap).unwrap();
    let last_page = bytes.len() - 4096;
    for b in &mut bytes[last_page + 8..] {
        *b = 0x41;
    }
    std::fs::write(&snap, &bytes).unwrap();
    let mp = manifest_path(&snap);
    let mut m = manifest(&snap);
    m["sha256"] = serde_json::Value::String(file_hash(&snap));
    std::fs::write(&mp, serde_json::to_vec(&m).unwrap()).unwrap();

    s.refuses(&["restore", snap.to_str().unwrap(), "--yes"], 5)
        .stderr_has("quick_check");
    assert!(backups_with_reason(&s, "before-restore").is_empty());
}

#[test]
fn a_backups_path_that_is_a_file_stops_up_before_anything_changes() {
    // Needs no mount, so it runs everywhere (the tmpfs cases may skip).
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s.run(&["up"]).code(0);
    s.migration("2_b.sql", B);
    s.write("not-a-folder", "plain file");
    s.refuses(&["up", "--backups", "not-a-folder"], 5)
        .stderr_has("not-a-folder");
    assert_eq!(s.applied(), vec![1]);
}

#[test]
fn on_failure_ask_without_a_terminal_keeps_and_prints_the_restore_command() {
    let s = Sandbox::new();
    s.migration("1_a.sql", A)
        .migration("2_b.sql", B)
        .migration("3_bad.sql", BAD);
    s.run(&["up", "--on-failure", "ask"])
        .code(1)
        .stderr_has("kept")
        .stderr_has("backstop restore --database dev.db");
    assert_eq!(s.applied(), vec![1, 2]);
    assert!(backups_with_reason(&s, "before-restore").is_empty());
}
