//! A temporary project folder and the real `backstop` binary, with the
//! environment cleared of anything that could leak in from the developer's shell.

// Not every test module uses every helper.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

pub const BIN: &str = env!("CARGO_BIN_EXE_backstop");

pub struct Sandbox {
    dir: Option<tempfile::TempDir>,
}

#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub command: String,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("backstop-test-")
            .tempdir()
            .expect("tempdir");
        std::fs::create_dir(dir.path().join("migrations")).expect("migrations dir");
        Sandbox { dir: Some(dir) }
    }

    pub fn path(&self) -> &Path {
        self.dir.as_ref().expect("sandbox dir").path()
    }

    /// The default database, `dev.db`.
    pub fn db(&self) -> PathBuf {
        self.path().join("dev.db")
    }

    pub fn backups_dir(&self) -> PathBuf {
        self.path().join("backups")
    }

    /// Writes a file relative to the sandbox, creating folders.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> &Sandbox {
        let p = self.path().join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::write(&p, contents).expect("write file");
        self
    }

    /// Writes `migrations/<file>`.
    pub fn migration(&self, file: &str, text: &str) -> &Sandbox {
        self.write(&format!("migrations/{file}"), text)
    }

    pub fn remove(&self, rel: &str) {
        std::fs::remove_file(self.path().join(rel)).expect("remove file");
    }

    /// The binary, run in the sandbox with a clean environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args).current_dir(self.path());
        for (k, _) in std::env::vars() {
            if k.starts_with("BACKSTOP_")
                || k == "DATABASE_URL"
                || k == "NO_COLOR"
                || k == "CLICOLOR_FORCE"
            {
                c.env_remove(k);
            }
        }
        c.env("RUST_BACKTRACE", "0");
        c.stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[])
    }

    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = self.command(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.output().expect("run backstop");
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            command: format!("backstop {}", args.join(" ")),
        }
    }

    /// Runs `args` expecting a refusal with exit `code`: the database is
    /// byte-identical (or still absent) and the backups folder unchanged.
    #[track_caller]
    pub fn refuses(&self, args: &[&str], code: i32) -> Output {
        let db = file_hash(&self.db());
        let backups = self.backup_files();
        let out = self.run(args);
        out.code(code);
        assert_eq!(
            file_hash(&self.db()),
            db,
            "`{}` changed the database\n{}",
            out.command,
            out.stderr
        );
        assert_eq!(
            self.backup_files(),
            backups,
            "`{}` changed the backups folder",
            out.command
        );
        out
    }

    /// A connection to the sandbox's database (created if missing).
    pub fn conn(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.db()).expect("open db")
    }

    pub fn query_i64(&self, sql: &str) -> i64 {
        self.conn().query_row(sql, [], |r| r.get(0)).expect(sql)
    }

    /// Versions recorded in `_backstop_migrations`, in order.
    pub fn applied(&self) -> Vec<u64> {
        let conn = self.conn();
        let mut stmt = match conn.prepare("SELECT version FROM _backstop_migrations") {
            Ok(s) => s,
            Err(_) => return Vec::new(),
        };
        let mut v: Vec<u64> = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .expect("query")
            .map(|s| s.expect("row").parse().expect("version"))
            .collect();
        v.sort();
        v
    }

    pub fn table_exists(&self, name: &str) -> bool {
        self.conn()
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = ?1",
                [name],
                |r| r.get::<_, i64>(0),
            )
            .expect("schema query")
            > 0
    }

    /// Final-name backups (`*.sqlite3`) in the backups folder, sorted.
    pub fn backups(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.backups_dir())
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "sqlite3"))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Every file in the backups folder, names only.
    pub fn backup_files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.backups_dir())
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Files in the sandbox (for failure messages).
    pub fn listing(&self) -> String {
        let mut out = String::new();
        fn walk(dir: &Path, base: &Path, out: &mut String) {
            if let Ok(rd) = std::fs::read_dir(dir) {
                for e in rd.flatten() {
                    let p = e.path();
                    if p.is_dir() {
                        walk(&p, base, out);
                    } else {
                        let len = e.metadata().map(|m| m.len()).unwrap_or(0);
                        out.push_str(&format!(
                            "  {} ({len} B)\n",
                            p.strip_prefix(base).unwrap_or(&p).display()
                        ));
                    }
                }
            }
        }
        walk(self.path(), self.path(), &mut out);
        out
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Keep the folder of a failing test for a look afterwards.
        if std::thread::panicking() {
            if let Some(dir) = self.dir.take() {
                let path = dir.keep();
                eprintln!("sandbox kept at {}", path.display());
            }
        }
    }
}

impl Output {
    /// Asserts the exit code, printing everything useful when it differs.
    #[track_caller]
    pub fn code(&self, expected: i32) -> &Output {
        assert_eq!(
            self.code, expected,
            "`{}` exited {} (expected {expected})\n--- stdout\n{}\n--- stderr\n{}",
            self.command, self.code, self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Output {
        assert!(
            self.stderr.contains(needle),
            "stderr of `{}` lacks {needle:?}:\n{}",
            self.command,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Output {
        assert!(
            self.stdout.contains(needle),
            "stdout of `{}` lacks {needle:?}:\n{}",
            self.command,
            self.stdout
        );
        self
    }

    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout of `{}` is not JSON ({e}):\n{}",
                self.command, self.stdout
            )
        })
    }
}

/// Polls `ready` while `child` still runs (60 s at most): the moment a fault
/// test acts on, without sleeping a guessed time.
#[track_caller]
pub fn wait_for(child: &mut std::process::Child, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !ready() {
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "the command ended before {what}"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "no {what} within 60 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// SHA-256 of a file's bytes, or "absent": proves "unchanged" byte for byte.
pub fn file_hash(path: &Path) -> String {
    match std::fs::read(path) {
        Ok(bytes) => format!("{:x}", Sha256::digest(&bytes)),
        Err(_) => "absent".into(),
    }
}
