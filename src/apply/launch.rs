//! How executable migrations are started (issue 12; SPEC "Migration files"):
//! which Python, in which folder, with which environment. Decided once per
//! run, before any lock or backup, so a missing interpreter or a `.py` file
//! Python cannot compile is refused before anything runs (exit 3).
//!
//! - Python: the `python` setting; by default `<project>/.venv/bin/python`
//!   when it exists (a project's virtualenv), else `python3` on PATH. It must
//!   be Python 3.7 or newer with SQLite 3.16 or newer (the runner's
//!   foreign-key check uses table-valued pragmas).
//! - Working directory: the project folder (the config file's folder, or the
//!   current one), where relative paths in a script resolve as they do when
//!   the user runs it by hand from there.
//! - Environment: backstop's own, plus `BACKSTOP_DATABASE` (absolute path),
//!   `DATABASE_URL` (`sqlite://` + that path) and each `database_env` name.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::migration::{Kind, Migration, Section};
use crate::settings::Settings;
use crate::source::{FileError, FileErrorKind};

/// Checks the interpreter and compiles the given files, printing one JSON object.
const PROBE: &str = r#"
import json, sys
import sqlite3
job = json.loads(sys.stdin.read())
errors = []
for path in job["files"]:
    try:
        with open(path, "rb") as f:
            compile(f.read(), path, "exec", dont_inherit=True)
    except SyntaxError as e:
        errors.append({"path": path, "line": e.lineno, "message": "%s: %s" % (type(e).__name__, e.msg)})
    except (ValueError, OSError) as e:
        errors.append({"path": path, "line": None, "message": str(e)})
extension = None
if job["extensions"]:
    conn = sqlite3.connect(":memory:")
    if not hasattr(conn, "enable_load_extension"):
        extension = {"path": None, "message": "its sqlite3 module was built without extension loading"}
    else:
        conn.enable_load_extension(True)
        for path in job["extensions"]:
            try:
                conn.load_extension(path)
            except sqlite3.Error as e:
                extension = {"path": path, "message": str(e)}
                break
out = {"version": list(sys.version_info[:3]), "sqlite": sqlite3.sqlite_version, "errors": errors}
out["extension"] = extension
json.dump(out, sys.stdout)
"#;

/// Everything a child process of this run is started with.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    /// Checked: set when some step runs through Python.
    python: Option<PathBuf>,
    cwd: PathBuf,
    database: PathBuf,
    database_env: Vec<String>,
    pub busy: Duration,
    /// Loaded by the module runner on its connection, as on backstop's own
    /// (absolute: the runner starts in the project folder).
    pub extensions: Vec<PathBuf>,
}

impl Launch {
    /// Resolves and, when a step needs it, checks Python: it starts, is recent
    /// enough, and compiles every `.py` file among `steps`.
    pub fn prepare(settings: &Settings, steps: &[(&Migration, &Section)]) -> Result<Launch> {
        let cwd = absolute(if settings.project.as_os_str().is_empty() {
            Path::new(".")
        } else {
            &settings.project
        });
        let mut launch = Launch {
            python: None,
            database: settings.database.clone(),
            database_env: settings.database_env.clone(),
            busy: settings.busy_timeout,
            extensions: settings.extensions.iter().map(|p| absolute(p)).collect(),
            cwd,
        };
        let python_files: Vec<&Path> = steps
            .iter()
            .map(|(m, _)| m)
            .filter(|m| runs_in_python(m))
            .map(|m| m.path.as_path())
            .collect();
        if !python_files.is_empty() {
            let python = launch.interpreter(settings);
            // Scripts open their own connections; only modules get ours.
            let modules = steps.iter().any(|(m, _)| m.kind == Kind::Module);
            launch.check(&python, &python_files, modules)?;
            launch.python = Some(python);
        }
        Ok(launch)
    }

    /// The configured Python, or the project's `.venv`, or `python3`.
    fn interpreter(&self, settings: &Settings) -> PathBuf {
        match &settings.python {
            // A bare name is found on PATH by the system; a path is made
            // absolute (a relative program path with another working
            // directory is ambiguous).
            Some(p) if p.components().count() == 1 => p.clone(),
            Some(p) => absolute(p),
            None => {
                let venv = self.cwd.join(".venv/bin/python");
                if venv.exists() {
                    venv
                } else {
                    PathBuf::from("python3")
                }
            }
        }
    }

    fn check(&self, python: &Path, files: &[&Path], modules: bool) -> Result<()> {
        let bad = |problem: String| Error::Interpreter {
            python: python.to_path_buf(),
            problem,
        };
        let mut child = Command::new(python)
            .args(["-c", PROBE])
            .current_dir(&self.cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => bad("not found".into()),
                _ => bad(format!("cannot be started: {e}")),
            })?;
        let list: Vec<PathBuf> = files.iter().map(|f| absolute(f)).collect();
        let extensions: &[PathBuf] = if modules { &self.extensions } else { &[] };
        let job = serde_json::json!({ "files": list, "extensions": extensions });
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            let _ = stdin.write_all(job.to_string().as_bytes());
        }
        let out = child
            .wait_with_output()
            .map_err(|e| bad(format!("did not answer: {e}")))?;
        #[derive(serde::Deserialize)]
        struct Probe {
            version: Vec<u32>,
            sqlite: String,
            errors: Vec<Compile>,
            extension: Option<Unloadable>,
        }
        #[derive(serde::Deserialize)]
        struct Unloadable {
            path: Option<PathBuf>,
            message: String,
        }
        #[derive(serde::Deserialize)]
        struct Compile {
            path: PathBuf,
            line: Option<usize>,
            message: String,
        }
        let probe: Probe = match serde_json::from_slice(&out.stdout) {
            Ok(p) if out.status.success() => p,
            _ => {
                let stderr = String::from_utf8_lossy(&out.stderr);
                let last = stderr
                    .lines()
                    .last()
                    .unwrap_or("no output")
                    .trim()
                    .to_owned();
                return Err(bad(format!(
                    "it is not a working Python 3 with its sqlite3 module ({last})"
                )));
            }
        };
        if probe.version.as_slice() < [3, 7].as_slice() {
            return Err(bad(format!(
                "it is Python {}, and backstop needs 3.7 or newer",
                dotted(&probe.version)
            )));
        }
        let sqlite: Vec<u32> = probe
            .sqlite
            .split('.')
            .filter_map(|p| p.parse().ok())
            .collect();
        if sqlite.as_slice() < [3, 16].as_slice() {
            return Err(bad(format!(
                "its sqlite3 module uses SQLite {}, and backstop needs 3.16 or newer",
                probe.sqlite
            )));
        }
        if let Some(e) = probe.extension {
            return Err(bad(match e.path {
                Some(path) => format!(
                    "its sqlite3 module cannot load the extension {} ({}), which the Python \
                     migrations run with, as every connection backstop opens",
                    path.display(),
                    e.message
                ),
                None => format!(
                    "{}, and the Python migrations run with the configured extensions; \
                     point --python or `python` at an interpreter that can load them (the \
                     system's /usr/bin/python3 usually can; pyenv builds need \
                     PYTHON_CONFIGURE_OPTS=--enable-loadable-sqlite-extensions)",
                    e.message
                ),
            }));
        }
        if probe.errors.is_empty() {
            return Ok(());
        }
        // Named as the folder names them, not by the absolute path sent.
        Err(Error::Source(
            probe
                .errors
                .into_iter()
                .map(|c| FileError {
                    path: files
                        .iter()
                        .find(|f| absolute(f) == c.path)
                        .map_or(c.path, |f| f.to_path_buf()),
                    line: c.line,
                    kind: FileErrorKind::PythonSyntax(c.message),
                })
                .collect(),
        ))
    }

    /// The command for a script: a `.py` file through Python (unbuffered, so
    /// its lines stream), anything else run directly.
    pub fn script(&self, m: &Migration) -> Command {
        let file = absolute(&m.path);
        let mut cmd = match &self.python {
            Some(python) if is_python(m) => {
                let mut c = Command::new(python);
                c.arg("-u").arg(&file);
                c
            }
            _ => Command::new(&file),
        };
        self.environment(&mut cmd);
        cmd
    }

    /// The command for backstop's module runner (its source as `-c`).
    pub fn runner(&self, source: &str) -> Command {
        let mut cmd = Command::new(self.python.as_deref().unwrap_or(Path::new("python3")));
        cmd.args(["-u", "-c", source]);
        self.environment(&mut cmd);
        cmd
    }

    /// The database as children are given it: absolute.
    pub fn database(&self) -> PathBuf {
        std::fs::canonicalize(&self.database).unwrap_or_else(|_| absolute(&self.database))
    }

    fn environment(&self, cmd: &mut Command) {
        let db = self.database();
        cmd.current_dir(&self.cwd)
            .env("BACKSTOP_DATABASE", &db)
            // `sqlite://` + an absolute path: `sqlite:///home/…`, as sqlx,
            // dbmate and backstop itself read it.
            .env("DATABASE_URL", format!("sqlite://{}", db.display()));
        for name in &self.database_env {
            cmd.env(name, &db);
        }
    }
}

/// The file runs through Python: a module, or a `.py` script.
fn runs_in_python(m: &Migration) -> bool {
    m.kind == Kind::Module || (m.kind == Kind::Script && is_python(m))
}

fn is_python(m: &Migration) -> bool {
    m.path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("py"))
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

fn dotted(v: &[u32]) -> String {
    v.iter().map(u32::to_string).collect::<Vec<_>>().join(".")
}
