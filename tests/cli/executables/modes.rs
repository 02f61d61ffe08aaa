//! Module mode and script mode: what runs, in which order, with which
//! environment, and what a failure leaves behind.

use sha2::{Digest, Sha256};

use super::{executable, kinds, python, INIT};
use crate::sandbox::Sandbox;

const BACKFILL: &str = "def up(conn):\n    n = conn.execute(\"UPDATE clients SET email = name || '@example.com'\").rowcount\n    print(f\"Migrated {n} clients\")\n\n\ndef down(conn):\n    conn.execute(\"UPDATE clients SET email = NULL\")\n";

#[test]
fn a_module_commits_with_its_tracking_row_and_its_output_streams() {
    if !python() {
        return;
    }
    let s = Sandbox::new();
    s.migration("1_init.sql", INIT)
        .migration("2_backfill.py", BACKFILL);
    let out = s.run(&["up"]);
    out.code(0).stderr_has("2: Migrated 2 clients");
    assert_eq!(s.applied(), vec![1, 2]);
    assert_eq!(
        s.query_i64("SELECT count(*) FROM clients WHERE email LIKE '%@example.com'"),
        2
    );
    // Checksummed like SQL: SHA-256 of the file; the text kept for `repair`.
    let conn = s.conn();
    let (sum, text, rows, run): (String, String, i64, i64) = conn
        .query_row(
            "SELECT checksum, up_sql, rows_changed, run_id FROM _backstop_migrations WHERE version = '2'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(sum, format!("{:x}", Sha256::digest(BACKFILL.as_bytes())));
    assert_eq!((text.as_str(), rows), (BACKFILL, 2));
    let log = s.run(&["log", "--json"]).code(0).json();
    assert_eq!(log["runs"][0]["id"], run, "{log}");
    assert_eq!(log["runs"][0]["migrations"], serde_json::json!(["1", "2"]));
    assert_eq!(kinds(&s)[1], ("2".into(), "module".into()));

    // --json keeps each migration's output with it.
    let j = Sandbox::new();
    j.migration("1_init.sql", INIT)
        .migration("2_backfill.py", BACKFILL);
    let doc = j.run(&["up", "--json"]).code(0).json();
    let applied = &doc["report"]["applied"];
    assert_eq!(applied[1]["kind"], "module", "{doc}");
    assert_eq!(
        applied[1]["output"],
        serde_json::json!([{"stream": "stdout", "line": "Migrated 2 clients"}])
    );
    assert!(applied[0].get("output").is_none(), "{doc}");
}

#[test]
fn a_script_gets_the_database_by_environment_and_runs_in_the_project_folder() {
    if !python() {
        return;
    }
    let s = Sandbox::new();
    s.write(
        "proj/backstop.toml",
        "database = 'data/app.db'\nmigrations = 'db'\ndatabase_env = ['DB_PATH']\n",
    );
    std::fs::create_dir_all(s.path().join("proj/data")).unwrap();
    s.write(
        "proj/db/1_env.py",
        "import os, sqlite3\n\
         db = sqlite3.connect(os.environ['DB_PATH'])\n\
         db.execute('CREATE TABLE env (k TEXT, v TEXT)')\n\
         for k in ('BACKSTOP_DATABASE', 'DATABASE_URL', 'DB_PATH'):\n    db.execute('INSERT INTO env VALUES (?, ?)', (k, os.environ[k]))\n\
         db.execute('INSERT INTO env VALUES (?, ?)', ('cwd', os.getcwd()))\n\
         db.commit()\n\
         print('wrote', len(os.environ['DB_PATH']), 'bytes of path', flush=True)\n",
    );
    s.run(&["--config", "proj/backstop.toml", "up"])
        .code(0)
        .stderr_has("1: wrote");
    let db = std::fs::canonicalize(s.path().join("proj/data/app.db")).unwrap();
    let conn = rusqlite::Connection::open(&db).unwrap();
    let env = |k: &str| -> String {
        conn.query_row("SELECT v FROM env WHERE k = ?1", [k], |r| r.get(0))
            .unwrap()
    };
    let abs = db.display().to_string();
    assert_eq!(env("BACKSTOP_DATABASE"), abs);
    assert_eq!(env("DB_PATH"), abs);
    assert_eq!(env("DATABASE_URL"), format!("sqlite://{abs}"));
    let project = std::fs::canonicalize(s.path().join("proj")).unwrap();
    assert_eq!(env("cwd"), project.display().to_string());
    let recorded: i64 = conn
        .query_row(
            "SELECT count(*) FROM _backstop_migrations WHERE version = '1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(recorded, 1);
}

#[test]
fn a_mixed_folder_of_sql_python_and_shell_applies_in_version_order() {
    if !python() {
        return;
    }
    let s = Sandbox::new();
    let log = |who: &str| format!("INSERT INTO steps (who) VALUES ('{who}');\n");
    s.migration(
        "1_steps.sql",
        &format!(
            "CREATE TABLE steps (n INTEGER PRIMARY KEY, who TEXT);\n{}",
            log("sql 1")
        ),
    );
    s.migration(
        "2_module.py",
        "def up(conn):\n    conn.execute(\"INSERT INTO steps (who) VALUES ('module 2')\")\n",
    );
    executable(
        &s,
        "3_shell.sh",
        "#!/bin/sh\nset -e\necho \"shell sees $BACKSTOP_DATABASE\"\n\
         python3 -c \"import os, sqlite3; c = sqlite3.connect(os.environ['BACKSTOP_DATABASE']); c.execute(\\\"INSERT INTO steps (who) VALUES ('shell 3')\\\"); c.commit()\"\n",
    );
    s.migration(
        "10_script.py",
        "import os, sqlite3\nc = sqlite3.connect(os.environ['BACKSTOP_DATABASE'])\nc.execute(\"INSERT INTO steps (who) VALUES ('script 10')\")\nc.commit()\n",
    );
    s.migration("11_last.sql", &log("sql 11"));
    assert_eq!(
        kinds(&s),
        [
            ("1".into(), "sql".into()),
            ("2".into(), "module".into()),
            ("3".into(), "script".into()),
            ("10".into(), "script".into()),
            ("11".into(), "sql".into())
        ]
    );
    s.run(&["up"]).code(0).stderr_has("3: shell sees");
    let conn = s.conn();
    let mut stmt = conn.prepare("SELECT who FROM steps ORDER BY n").unwrap();
    let order: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        order,
        ["sql 1", "module 2", "shell 3", "script 10", "sql 11"]
    );
    assert_eq!(s.applied(), vec![1, 2, 3, 10, 11]);
    let status = s.run(&["status"]);
    status
        .code(0)
        .stdout_has("module (python module)")
        .stdout_has("shell (script)");
}

#[test]
fn a_failing_module_is_rolled_back_with_nothing_recorded() {
    if !python() {
        return;
    }
    let s = Sandbox::new();
    s.migration("1_init.sql", INIT).migration(
        "2_bad.py",
        "def up(conn):\n    conn.execute(\"INSERT INTO clients (name) VALUES ('eve')\")\n    conn.execute('CREATE TABLE half (x)')\n    raise ValueError('the data is not what I expected')\n",
    );
    let out = s.run(&["up"]);
    out.code(1)
        .stderr_has("migrations/2_bad.py:4: migration 2 failed: ValueError: the data is not what I expected")
        .stderr_has("backstop restore");
    assert_eq!(s.applied(), vec![1]);
    assert_eq!(s.query_i64("SELECT count(*) FROM clients"), 2);
    assert!(!s.table_exists("half"));
    let log = s.run(&["log", "--json"]).code(0).json();
    assert_eq!(log["runs"][0]["outcome"], "failed", "{log}");
}

#[test]
fn a_module_that_commits_itself_is_refused_and_rolled_back() {
    if !python() {
        return;
    }
    for (how, line, text) in [
        ("commit", 3, "    conn.commit()\n"),
        ("executescript", 3, "    conn.executescript('SELECT 1;')\n"),
        // Swallowing the refusal does not help: the attempt is remembered.
        (
            "swallowed",
            4,
            "    try:\n        conn.commit()\n    except Exception:\n        pass\n",
        ),
    ] {
        let s = Sandbox::new();
        s.migration("1_init.sql", INIT).migration(
            "2_commits.py",
            &format!("def up(conn):\n    conn.execute(\"INSERT INTO clients (name) VALUES ('eve')\")\n{text}"),
        );
        let out = s.run(&["up"]);
        out.code(1)
            .stderr_has(&format!(
                "migrations/2_commits.py:{line}: migration 2 failed: up(conn) tried to commit itself"
            ))
            .stderr_has("backstop commits the migration together with its tracking row");
        assert_eq!(s.applied(), vec![1], "{how}");
        assert_eq!(s.query_i64("SELECT count(*) FROM clients"), 2, "{how}");
    }
}

#[test]
fn a_module_that_orphans_rows_is_rolled_back_by_the_foreign_key_check() {
    if !python() {
        return;
    }
    let s = Sandbox::new();
    s.migration(
        "1_init.sql",
        "CREATE TABLE parent (id INTEGER PRIMARY KEY);\n\
         CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id) ON DELETE CASCADE);\n\
         INSERT INTO parent VALUES (1);\nINSERT INTO child VALUES (10, 1);\n",
    )
    .migration("2_drop.py", "def up(conn):\n    conn.execute('DELETE FROM parent')\n");
    s.run(&["up"])
        .code(1)
        .stderr_has("left 1 row(s) whose parent is missing")
        .stderr_has("child rowid 10");
    assert_eq!(s.applied(), vec![1]);
    // Rolled back, and the cascade never fired.
    assert_eq!(s.query_i64("SELECT count(*) FROM parent"), 1);
    assert_eq!(s.query_i64("SELECT count(*) FROM child"), 1);
}

#[test]
fn a_failing_script_reports_its_exit_code_and_stderr_and_stays_unrecorded() {
    if !python() {
        return;
    }
    let s = Sandbox::new();
    s.migration("1_init.sql", INIT);
    executable(
        &s,
        "2_fails.sh",
        "#!/bin/sh\necho 'starting the import'\necho 'cannot parse clients.csv line 7' >&2\nexit 3\n",
    );
    let out = s.run(&["up"]);
    out.code(1)
        .stderr_has("migrations/2_fails.sh: migration 2 failed: the script exited with code 3")
        .stderr_has("| cannot parse clients.csv line 7")
        .stderr_has("a script commits its own changes")
        .stderr_has("backstop restore");
    assert_eq!(s.applied(), vec![1]);
    let doc = Sandbox::new();
    doc.migration("1_init.sql", INIT);
    executable(&doc, "2_fails.sh", "#!/bin/sh\necho oops >&2\nexit 3\n");
    let j = doc.run(&["up", "--json"]).code(1).json();
    assert_eq!(j["failure"]["cause"]["kind"], "exited", "{j}");
    assert_eq!(j["failure"]["cause"]["code"], 3);
    assert_eq!(j["failure"]["kind"], "script");
    assert_eq!(j["failure"]["output"][0]["line"], "oops");
}

#[test]
fn a_module_down_runs_down_conn_and_removes_its_row() {
    if !python() {
        return;
    }
    let s = Sandbox::new();
    s.migration("1_init.sql", INIT)
        .migration("2_backfill.py", BACKFILL);
    s.run(&["up"]).code(0);
    s.run(&["down", "--yes"]).code(0);
    assert_eq!(s.applied(), vec![1]);
    assert_eq!(
        s.query_i64("SELECT count(*) FROM clients WHERE email IS NULL"),
        2
    );
    // A script has no down.
    executable(&s, "3_x.sh", "#!/bin/sh\nexit 0\n");
    s.run(&["up"]).code(0);
    s.refuses(&["down", "--yes"], 3)
        .stderr_has("has no down section");
}

#[test]
fn an_edited_python_migration_is_refused_and_a_crlf_copy_is_not() {
    if !python() {
        return;
    }
    let s = Sandbox::new();
    s.migration("1_init.sql", INIT)
        .migration("2_backfill.py", BACKFILL);
    s.run(&["up"]).code(0);
    s.migration("2_backfill.py", &BACKFILL.replace('\n', "\r\n"));
    s.run(&["status", "--exit-code"]).code(0);
    s.migration(
        "2_backfill.py",
        &BACKFILL.replace("example.com", "example.org"),
    );
    let status = s.run(&["status", "--json"]).code(0).json();
    assert_eq!(status["migrations"][1]["state"], "edited", "{status}");
    s.migration("3_more.py", "def up(conn): pass\n");
    s.refuses(&["up"], 3).stderr_has("2_backfill.py");
    s.refuses(&["down", "--yes"], 3);
}

#[test]
fn a_missing_python_or_a_module_it_cannot_compile_is_refused_before_anything_runs() {
    if !python() {
        return;
    }
    let s = Sandbox::new();
    s.migration("1_init.sql", INIT);
    s.run(&["up"]).code(0);
    s.migration("2_backfill.py", BACKFILL);
    s.refuses(&["up", "--python", "/nonexistent/python3"], 3)
        .stderr_has("cannot run Python migrations with /nonexistent/python3: not found")
        .stderr_has("--python");
    let with_env = s.run_with(&["up"], &[("BACKSTOP_PYTHON", "/nonexistent/py")]);
    with_env.code(3).stderr_has("/nonexistent/py");
    s.migration("2_backfill.py", "def up(conn):\n    return (\n");
    s.refuses(&["up"], 3)
        .stderr_has("migrations/2_backfill.py:2: Python cannot compile it");
    // SQL alone never needs Python.
    s.remove("migrations/2_backfill.py");
    s.migration("3_more.sql", "CREATE TABLE more (x);");
    s.run(&["up", "--python", "/nonexistent/python3"]).code(0);
}

#[test]
fn a_projects_venv_python_is_used_when_present() {
    if !python() {
        return;
    }
    let s = Sandbox::new();
    // A stand-in virtualenv: a wrapper that marks what it runs.
    executable(
        &s,
        "../.venv/bin/python",
        "#!/bin/sh\nBACKSTOP_TEST_VENV=yes exec python3 \"$@\"\n",
    );
    s.migration(
        "1_which.py",
        "import os\ndef up(conn):\n    conn.execute('CREATE TABLE which (v TEXT)')\n    conn.execute('INSERT INTO which VALUES (?)', (os.environ.get('BACKSTOP_TEST_VENV', 'no'),))\n",
    );
    s.run(&["up"]).code(0);
    let conn = s.conn();
    let v: String = conn
        .query_row("SELECT v FROM which", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, "yes");
}

#[test]
fn on_a_terminal_output_shows_under_the_migrations_name() {
    if !python() {
        return;
    }
    let s = Sandbox::new();
    s.migration("1_init.sql", INIT)
        .migration("2_backfill.py", BACKFILL);
    let mut pty = crate::pty::Pty::spawn(&s, &["up"]);
    pty.expect("▸ 2 backfill");
    pty.expect("│ Migrated 2 clients");
    pty.expect("✓ 2 backfill");
    assert_eq!(pty.exit_code(), 0);
}

/// A module's own commit (another connection: the runner's) is the run's,
/// not another program's: a later failure still restores without --force.
#[test]
fn a_modules_commit_is_not_another_programs_write_at_the_failure_prompt() {
    if !super::python() {
        return;
    }
    let s = Sandbox::new();
    s.migration("1_init.sql", INIT)
        .migration(
            "2_emails.py",
            "def up(conn):\n    conn.execute(\"UPDATE clients SET email = name || '@x'\")\n",
        )
        .migration("3_bad.sql", "SELECT abs(-9223372036854775808);\n");
    s.run(&["up", "--to", "1"]).code(0);
    s.run(&["up", "--on-failure", "restore"])
        .code(1)
        .stderr_has("restored");
    assert_eq!(s.applied(), vec![1]);
    assert_eq!(
        s.query_i64("SELECT count(*) FROM clients WHERE email IS NOT NULL"),
        0
    );
}
