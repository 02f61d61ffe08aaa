//! Issue 6: the SPEC's safety properties under faults, load and hostile input.
//!
//! Default sizes fit CI (a few kill points, a few dozen fuzz cases);
//! `BACKSTOP_LONG_TESTS=1` runs the long version. Every random choice comes
//! from one seed, printed on failure; `BACKSTOP_FAULT_SEED=<n>` replays it,
//! and `BACKSTOP_FAULT_POINTS=<n>` sets the kill points per crash test.

mod crash;
mod damaged;
mod environment;
mod hostile;
mod live_app;
mod others;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::sandbox::{file_hash, Sandbox};

/// `BACKSTOP_LONG_TESTS=1`: many kill points and fuzz cases.
pub fn long() -> bool {
    std::env::var("BACKSTOP_LONG_TESTS").is_ok_and(|v| v == "1")
}

/// Kill points of each crash test: `BACKSTOP_FAULT_POINTS`, else the default
/// or the long figure.
pub fn kill_points(default: usize, long_size: usize) -> usize {
    match std::env::var("BACKSTOP_FAULT_POINTS") {
        Ok(n) => n.parse().expect("BACKSTOP_FAULT_POINTS must be a number"),
        Err(_) => size(default, long_size),
    }
}

/// Picks the default or the long figure.
pub fn size(default: usize, long_size: usize) -> usize {
    if long() {
        long_size
    } else {
        default
    }
}

/// The run's seed: `BACKSTOP_FAULT_SEED` (decimal or 0x-hex), else a fixed one.
pub fn seed() -> u64 {
    match std::env::var("BACKSTOP_FAULT_SEED") {
        Ok(s) => {
            let s = s.trim();
            let parsed = match s.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => s.parse(),
            };
            parsed.expect("BACKSTOP_FAULT_SEED must be a number")
        }
        Err(_) => 0x5eed_ba65_2026,
    }
}

/// SplitMix64: small, deterministic, good enough to spread kill points.
pub struct Rng(u64);

impl Rng {
    /// A generator for one test: the run's seed mixed with the test's name, so
    /// tests do not share a sequence but one seed replays them all.
    pub fn for_test(name: &str) -> Rng {
        let mut h = seed();
        for b in name.bytes() {
            h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
        Rng(h)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Spawns `cmd`, waits `delay`, sends SIGKILL. Returns true if the process was
/// still running when killed (false: it finished first).
pub fn kill_after(mut cmd: Command, delay: Duration) -> bool {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn backstop");
    let deadline = Instant::now() + delay;
    // Poll so a process that finishes early is not waited for in full.
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(2)));
    }
    // SAFETY: plain kill(2) on our own child, which has not been reaped yet.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let status = child.wait().expect("wait");
    status.code().is_none()
}

/// How long `cmd` takes when left alone.
pub fn time_it(mut cmd: Command) -> Duration {
    let t = Instant::now();
    let out = cmd.output().expect("run backstop");
    assert!(
        out.status.success(),
        "unkilled run failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    t.elapsed()
}

/// `PRAGMA integrity_check` of a database file, joined ("ok" when healthy).
pub fn integrity(db: &Path) -> String {
    let conn = rusqlite::Connection::open(db).expect("open for integrity_check");
    let mut stmt = conn.prepare("PRAGMA integrity_check").expect("prepare");
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .and_then(|r| r.collect())
        .unwrap_or_else(|e| vec![format!("integrity_check failed: {e}")]);
    rows.join("; ")
}

/// Copies a database with its `-wal`/`-journal` (not `-shm`) into `dir`, so
/// the state a crash left can be examined without touching the original:
/// a hot journal stays for backstop itself to meet.
pub fn snapshot(db: &Path, dir: &Path) -> PathBuf {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("snapshot dir");
    let name = db
        .file_name()
        .expect("db name")
        .to_string_lossy()
        .into_owned();
    for suffix in ["", "-wal", "-journal"] {
        let src = PathBuf::from(format!("{}{suffix}", db.display()));
        if src.exists() {
            std::fs::copy(&src, dir.join(format!("{name}{suffix}"))).expect("copy db file");
        }
    }
    dir.join(name)
}

/// SPEC "Backups": every file under a final name is a complete, verified copy
/// (SHA-256 and size match its manifest, quick_check ok); leftovers of an
/// interrupted backup are only hidden temporaries (`.….tmp`, and the
/// `.….tmp-journal` beside one) or manifests whose backup never got its name.
/// Returns the problems found.
pub fn backup_problems(s: &Sandbox) -> Vec<String> {
    let mut problems = Vec::new();
    let Ok(rd) = std::fs::read_dir(s.backups_dir()) else {
        return problems;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        if name.starts_with('.') {
            // The temporary copy, or the journal SQLite keeps beside it while
            // the backup API writes it (`.….tmp-journal`).
            if !name.contains(".tmp") {
                problems.push(format!("{name}: hidden file that is not a temporary"));
            }
        } else if let Some(base) = name.strip_suffix(".sqlite3") {
            let mpath = path.with_file_name(format!("{base}.json"));
            let manifest: serde_json::Value = match std::fs::read(&mpath) {
                Ok(b) => match serde_json::from_slice(&b) {
                    Ok(v) => v,
                    Err(err) => {
                        problems.push(format!("{name}: manifest is not JSON: {err}"));
                        continue;
                    }
                },
                Err(_) => {
                    problems.push(format!("{name}: final name without a manifest"));
                    continue;
                }
            };
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if manifest["sha256"].as_str() != Some(file_hash(&path).as_str()) {
                problems.push(format!("{name}: SHA-256 differs from its manifest"));
            }
            if manifest["size"].as_u64() != Some(size) {
                problems.push(format!("{name}: size {size} differs from its manifest"));
            }
            let check = quick_check(&path);
            if check != "ok" {
                problems.push(format!("{name}: quick_check: {check}"));
            }
        } else if name.ends_with(".json") || name.contains(".damaged") {
            // A manifest whose backup never got its final name is ignored by
            // `backups`; `.damaged` copies are the emergency path's.
        } else {
            problems.push(format!("{name}: unexpected file in the backups folder"));
        }
    }
    problems
}

/// A new sandbox holding copies of `template`'s database, migrations and
/// backups: building a few MB of rows once and copying them per kill point
/// keeps the suite fast.
pub fn fork(template: &Sandbox) -> Sandbox {
    let s = Sandbox::new();
    for dir in ["migrations", "backups"] {
        let Ok(rd) = std::fs::read_dir(template.path().join(dir)) else {
            continue;
        };
        std::fs::create_dir_all(s.path().join(dir)).expect("mkdir");
        for e in rd.flatten() {
            std::fs::copy(e.path(), s.path().join(dir).join(e.file_name())).expect("copy");
        }
    }
    if template.db().exists() {
        std::fs::copy(template.db(), s.db()).expect("copy db");
    }
    // Backups belong to the database their manifest names: point the copied
    // manifests at the fork's database.
    let (from, to) = (canonical(&template.db()), canonical(&s.db()));
    if let Ok(rd) = std::fs::read_dir(s.backups_dir()) {
        for e in rd
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        {
            let text = std::fs::read_to_string(e.path()).expect("manifest");
            std::fs::write(e.path(), text.replace(&from, &to)).expect("rewrite manifest");
        }
    }
    s
}

fn canonical(db: &Path) -> String {
    let folder = std::fs::canonicalize(db.parent().expect("db folder")).expect("canonical folder");
    folder
        .join(db.file_name().expect("db name"))
        .display()
        .to_string()
}

/// quick_check on a file opened immutable (reading it never writes beside it).
pub fn quick_check(path: &Path) -> String {
    let uri = format!("file:{}?immutable=1", path.display());
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI;
    let conn = match rusqlite::Connection::open_with_flags(uri, flags) {
        Ok(c) => c,
        Err(e) => return e.to_string(),
    };
    conn.query_row("PRAGMA quick_check", [], |r| r.get::<_, String>(0))
        .unwrap_or_else(|e| e.to_string())
}

/// A tmpfs mounted on a folder, unmounted when dropped. `None` when mounting
/// is not possible here (not root, no mount(8)): the caller skips the test.
pub struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    pub fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).ok()?;
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
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("skipped: cannot mount a tmpfs on {}", dir.display());
            return None;
        }
        Some(Tmpfs {
            dir: dir.to_path_buf(),
        })
    }

    /// Remounts read-only (root ignores permission bits, not a read-only mount).
    pub fn read_only(&self) -> bool {
        Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}

/// Asserts the output has no panic and, when it failed, says `error:` first.
#[track_caller]
pub fn clean_failure(out: &crate::sandbox::Output, context: &str) {
    assert!(
        !out.stderr.contains("panicked"),
        "{context}: `{}` panicked:\n{}",
        out.command,
        out.stderr
    );
    if out.code != 0 {
        assert!(
            out.stderr.starts_with("error:"),
            "{context}: `{}` exited {} without an `error:` first:\n{}",
            out.command,
            out.code,
            out.stderr
        );
    }
}
