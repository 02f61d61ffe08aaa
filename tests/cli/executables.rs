//! Issue 12: Python modules, Python scripts and other executables as
//! migrations, with the same guarantees as SQL. They need `python3`: each
//! test skips with a message where it is missing.

mod dry_run;
mod faults;
mod modes;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::sandbox::Sandbox;

/// A first SQL migration with two clients.
pub const INIT: &str =
    "CREATE TABLE clients (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT);\n\
                        INSERT INTO clients (name) VALUES ('ada'), ('bob');\n";

/// True when `python3` runs here; otherwise says the test is skipped.
pub fn python() -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import sqlite3"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: python3 with its sqlite3 module is not available");
    }
    ok
}

/// Writes `migrations/<name>` with the executable bit.
pub fn executable(s: &Sandbox, name: &str, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    s.migration(name, text);
    let path = s.path().join("migrations").join(name);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// `(version, kind)` of each migration `status --json` lists.
pub fn kinds(s: &Sandbox) -> Vec<(String, String)> {
    let status = s.run(&["status", "--json"]).code(0).json();
    status["migrations"]
        .as_array()
        .expect("migrations")
        .iter()
        .map(|m| {
            (
                m["version"].as_str().unwrap_or_default().to_owned(),
                m["kind"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// A running `backstop` whose stderr lines are collected by a thread.
pub struct Running {
    pub child: Child,
    rx: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Running {
    /// Spawns `backstop ARGS` (stdout and stderr piped).
    pub fn spawn(s: &Sandbox, args: &[&str]) -> Running {
        let mut child = s
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn backstop");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            rx,
            seen: Vec::new(),
        }
    }

    /// Reads stderr until a line containing `needle` (60 s at most).
    #[track_caller]
    pub fn until(&mut self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(needle);
                    self.seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!("no line with {needle:?}; stderr:\n{}", self.seen.join("\n"));
                }
            }
        }
    }

    /// SIGKILL, then reaps it.
    pub fn kill9(mut self) {
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGKILL) };
        self.child.wait().expect("wait");
    }
}

/// Waits until process `pid` has ended (gone, or a zombie nobody reaps):
/// the parent-death signal must have reached it.
#[track_caller]
pub fn wait_until_dead(pid: i32, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // The state follows the command name in parentheses.
        let state = stat.rsplit(')').next().unwrap_or("").trim_start();
        if stat.is_empty() || state.starts_with('Z') || state.starts_with('X') {
            return;
        }
        if Instant::now() > deadline {
            // SAFETY: kill(2) on the orphan, so it does not outlive the test.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("{what} (pid {pid}) still runs 10 s after backstop was killed");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The pid a migration wrote to `<project>/<name>`, once it is there.
#[track_caller]
pub fn pid_in(s: &Sandbox, name: &str) -> i32 {
    let text = std::fs::read_to_string(s.path().join(name)).expect("pid file");
    text.trim().parse().expect("pid")
}
