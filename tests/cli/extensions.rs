//! Issue 11: SQLite extensions are loaded on every connection backstop opens
//! for the database. The suite builds its own tiny extension with the C
//! compiler (skipped, with a message, where there is none): `bs_len(x)`, the
//! length of a blob in bytes, used in a CHECK as an app would use sqlite-vec's
//! `vec_length`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::sandbox::{file_hash, Sandbox};

const SOURCE: &str = r#"
#include "sqlite3ext.h"
SQLITE_EXTENSION_INIT1

static void bs_len(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  sqlite3_result_int(ctx, sqlite3_value_bytes(argv[0]));
}

#ifdef _WIN32
__declspec(dllexport)
#endif
int sqlite3_bsext_init(sqlite3 *db, char **err, const sqlite3_api_routines *api) {
  (void)err;
  SQLITE_EXTENSION_INIT2(api);
  return sqlite3_create_function(db, "bs_len", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, 0,
                                 bs_len, 0, 0);
}
"#;

/// The folder holding `sqlite3ext.h`: the bundled SQLite's in cargo's
/// registry (the same version backstop links), else the system's.
fn header_dir() -> Option<PathBuf> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))?;
    let registry = cargo_home.join("registry").join("src");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&registry)
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|index| {
            std::fs::read_dir(index.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libsqlite3-sys-"))
        })
        .map(|p| p.join("sqlite3"))
        .filter(|p| p.join("sqlite3ext.h").is_file())
        .collect();
    found.sort();
    found.pop().or_else(|| {
        Some(PathBuf::from("/usr/include")).filter(|p| p.join("sqlite3ext.h").is_file())
    })
}

/// Builds the extension once per test run; None (and a message) without a
/// C compiler or the header.
fn extension() -> Option<&'static Path> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let Some(include) = header_dir() else {
                eprintln!("skipped: no sqlite3ext.h found to build the test extension");
                return None;
            };
            // Under target/ (cargo's scratch folder for integration tests), so
            // the builds kept for the run's duration never pile up in /tmp.
            let dir = tempfile::Builder::new()
                .prefix("backstop-ext-")
                .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
                .ok()?
                .keep();
            std::fs::write(dir.join("bsext.c"), SOURCE).ok()?;
            let out = dir.join(format!("bsext.{}", std::env::consts::DLL_EXTENSION));
            let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
            let mut cmd = Command::new(&cc);
            cmd.arg("-shared").arg("-fPIC").arg("-I").arg(&include);
            if cfg!(target_os = "macos") {
                cmd.args(["-undefined", "dynamic_lookup"]);
            }
            match cmd.arg(dir.join("bsext.c")).arg("-o").arg(&out).output() {
                Ok(o) if o.status.success() => Some(out),
                Ok(o) => {
                    eprintln!(
                        "skipped: {cc} could not build the test extension: {}",
                        String::from_utf8_lossy(&o.stderr)
                    );
                    None
                }
                Err(e) => {
                    eprintln!("skipped: no C compiler ({cc}: {e}) to build the test extension");
                    None
                }
            }
        })
        .as_deref()
}

const VEC: &str = "-- migrate:up\n\
CREATE TABLE embedding (id INTEGER PRIMARY KEY, v BLOB NOT NULL CHECK (bs_len(v) = 4));\n\
INSERT INTO embedding (v) VALUES (x'01020304');\n";

#[test]
fn an_extension_is_loaded_for_the_run_the_preflight_the_rehearsal_and_the_backups() {
    let Some(ext) = extension() else { return };
    let ext = ext.to_string_lossy().into_owned();
    let s = Sandbox::new();
    s.migration("1_embedding.sql", VEC);
    // Without it the function is unknown: refused before anything runs.
    s.refuses(&["up"], 3)
        .stderr_has("bs_len")
        .stderr_has("--load-extension");
    assert!(s.applied().is_empty());
    s.run(&["up", "--dry-run", "--load-extension", &ext])
        .code(0);
    s.run(&["up", "--load-extension", &ext]).code(0);
    assert_eq!(s.applied(), vec![1]);
    // The next run backs up a database whose CHECK calls the function:
    // quick_check of the copy evaluates it, so the copy's connection needs it.
    s.migration(
        "2_more.sql",
        "-- migrate:up\nINSERT INTO embedding (v) VALUES (x'05060708');\n",
    );
    s.write("backstop.toml", format!("extensions = [{ext:?}]\n"));
    let before = s.backups().len();
    s.run(&["up"]).code(0);
    assert_eq!(s.applied(), vec![1, 2]);
    assert_eq!(s.backups().len(), before + 1, "{}", s.listing());
    s.run(&["verify"]).code(0);
    // And the CHECK still holds: a bad row is refused by the extension's function.
    s.migration(
        "3_bad.sql",
        "-- migrate:up\nINSERT INTO embedding (v) VALUES (x'01');\n",
    );
    s.run(&["up"]).code(1).stderr_has("CHECK constraint failed");
    let latest = s.backups().pop().expect("a backup");
    s.run(&["restore", latest.to_str().expect("utf-8"), "--yes"])
        .code(0);
}

#[test]
fn a_missing_extension_is_refused_before_anything_runs() {
    let s = Sandbox::new();
    s.migration("1_a.sql", "-- migrate:up\nCREATE TABLE a (x);\n");
    s.run(&["up"]).code(0);
    s.migration("2_b.sql", "-- migrate:up\nCREATE TABLE b (x);\n");
    let missing = s.path().join("no-such-extension");
    let missing = missing.to_string_lossy();
    let db = file_hash(&s.db());
    s.refuses(&["up", "--load-extension", &missing], 2)
        .stderr_has("cannot load the SQLite extension")
        .stderr_has("no-such-extension");
    s.write("backstop.toml", "extensions = [\"lib/vec0\"]\n");
    s.refuses(&["up"], 2).stderr_has("lib/vec0");
    s.refuses(&["baseline", "2", "--yes"], 2);
    assert_eq!(file_hash(&s.db()), db);
    assert_eq!(s.applied(), vec![1]);
}

#[test]
fn the_schema_check_of_baseline_replays_with_the_extension_loaded() {
    let Some(ext) = extension() else { return };
    let ext = ext.to_string_lossy().into_owned();
    let s = Sandbox::new();
    s.migration("1_embedding.sql", VEC);
    // The app built the database itself, with the extension loaded.
    s.run(&["up", "--load-extension", &ext, "--dry-run"])
        .code(0);
    let conn = s.conn();
    // SAFETY: the test's own extension, built above.
    unsafe {
        let _guard = rusqlite::LoadExtensionGuard::new(&conn).expect("enable");
        conn.load_extension(&ext, None::<&str>).expect("load");
    }
    conn.execute_batch(
        "CREATE TABLE embedding (id INTEGER PRIMARY KEY, v BLOB NOT NULL CHECK (bs_len(v) = 4));",
    )
    .expect("schema");
    drop(conn);
    // Without it the empty copy cannot even create the table.
    s.refuses(&["baseline", "1", "--yes"], 3)
        .stderr_has("could not be replayed")
        .stderr_has("bs_len");
    s.run(&["baseline", "1", "--yes", "--load-extension", &ext])
        .code(0)
        .stderr_has("schema matches");
}

/// A Python module runs on a connection with the configured extensions, as
/// SQL does: its insert passes the extension's CHECK, and its own call to
/// `load_extension` is refused (loading is on only while backstop loads).
#[test]
fn a_python_module_runs_with_the_extensions_loaded() {
    let Some(ext) = extension() else { return };
    let Some(python) = python_loading_extensions() else {
        return;
    };
    let ext = ext.to_string_lossy().into_owned();
    let s = Sandbox::new();
    s.migration("1_embedding.sql", VEC);
    s.migration(
        "2_more.py",
        "def up(conn):\n    conn.execute(\"INSERT INTO embedding (v) VALUES (x'05060708')\")\n    \
         n = conn.execute('SELECT bs_len(v) FROM embedding WHERE id = 2').fetchone()[0]\n    \
         print('length', n)\n",
    );
    s.write(
        "backstop.toml",
        format!("extensions = [{ext:?}]\npython = {python:?}\n"),
    );
    s.run(&["up"]).code(0).stderr_has("length 4");
    assert_eq!(s.applied(), vec![1, 2]);
    s.migration(
        "3_load.py",
        "def up(conn):\n    conn.load_extension('/no/such/thing')\n",
    );
    s.run(&["up"]).code(1).stderr_has("not authorized");
}

/// A Python whose sqlite3 cannot load extensions (a pyenv build without
/// `--enable-loadable-sqlite-extensions`) is refused before anything runs.
#[test]
fn a_python_that_cannot_load_extensions_is_refused_before_anything_runs() {
    let Some(ext) = extension() else { return };
    if !crate::executables::python() {
        return;
    }
    let ext = ext.to_string_lossy().into_owned();
    let s = Sandbox::new();
    s.migration("1_embedding.sql", VEC);
    s.run(&["up", "--load-extension", &ext]).code(0);
    s.migration("2_more.py", "def up(conn):\n    pass\n");
    // What such a build looks like from Python: no enable_load_extension.
    s.write(
        "site/sitecustomize.py",
        "import sqlite3\n\
         class Plain(sqlite3.Connection):\n    \
         def __getattribute__(self, name):\n        \
         if name == 'enable_load_extension':\n            raise AttributeError(name)\n        \
         return super().__getattribute__(name)\n\
         _connect = sqlite3.connect\n\
         sqlite3.connect = lambda *a, **k: _connect(*a, factory=Plain, **k)\n",
    );
    let site = s.path().join("site");
    s.write(
        "python",
        format!(
            "#!/bin/sh\nPYTHONPATH={} exec python3 \"$@\"\n",
            site.display()
        ),
    );
    std::fs::set_permissions(
        s.path().join("python"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let db = file_hash(&s.db());
    s.refuses(&["up", "--load-extension", &ext, "--python", "./python"], 3)
        .stderr_has("built without extension loading")
        .stderr_has("python");
    assert_eq!(file_hash(&s.db()), db);
    assert_eq!(s.applied(), vec![1]);
}

/// A Python here whose sqlite3 can load extensions (pyenv's often cannot),
/// or None and a message.
fn python_loading_extensions() -> Option<String> {
    let probe = "import sqlite3; sqlite3.connect(':memory:').enable_load_extension(True)";
    let found = ["python3", "/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .args(["-c", probe])
                .output()
                .is_ok_and(|o| o.status.success())
        });
    if found.is_none() {
        eprintln!("skipped: no python3 here can load SQLite extensions");
    }
    found.map(str::to_owned)
}
