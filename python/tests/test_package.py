"""The Python package end to end (issue 13): build the wheel with maturin,
install it into a fresh virtualenv, and start a small application that calls
``backstop.up()`` before it opens its database: once with migrations that
succeed, once with one that fails and is restored, and with the refusals.

Run by .ci/run as ``python -m unittest discover -s python/tests`` with
``MATURIN`` naming a maturin installed from PyPI into a throwaway virtualenv.
Skipped, saying so, where maturin or the venv module is missing.
"""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A Flask/FastAPI-style start-up: migrate first, refuse to start on failure,
# and only then open the application's own connection.
APP = textwrap.dedent(
    """
    import json, sqlite3, sys
    import backstop

    kwargs = json.loads(sys.argv[1])
    try:
        report = backstop.up(**kwargs)
    except backstop.MigrationError as e:
        print(json.dumps({"error": {
            "text": str(e), "exit_code": e.exit_code, "kind": e.kind, "file": e.file,
            "line": e.line, "message": e.message, "backup": e.backup,
            "restored": e.restored, "hint": e.hint,
        }}))
        sys.exit(1)  # refuse to start
    pool = sqlite3.connect(kwargs["database"])  # the app opens its pool now
    print(json.dumps({"report": report, "serving": True}))
    """
)


def run(cmd, **kw):
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if out.returncode != 0:
        raise AssertionError(f"{cmd} exited {out.returncode}:\n{out.stdout}")
    return out.stdout


class Wheel(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        maturin = os.environ.get("MATURIN") or shutil.which("maturin")
        if not maturin:
            raise unittest.SkipTest("maturin not found (set MATURIN, or pip install maturin)")
        try:
            import venv  # noqa: F401
        except ImportError:
            raise unittest.SkipTest("the venv module is missing")
        cls.tmp = Path(tempfile.mkdtemp(prefix="backstop-wheel-"))
        dist = cls.tmp / "dist"
        # The dev profile, from the repository's folder (so .cargo/config.toml
        # applies): the wheel reuses what `cargo test` already built.
        run([maturin, "build", "--profile", "dev", "--out", str(dist)], cwd=ROOT)
        wheels = list(dist.glob("backstop-*.whl"))
        assert len(wheels) == 1, wheels
        venv_dir = cls.tmp / "venv"
        run([sys.executable, "-m", "venv", str(venv_dir)])
        bindir = venv_dir / ("Scripts" if os.name == "nt" else "bin")
        cls.python = str(bindir / "python")
        cls.command = bindir / "backstop"
        run([cls.python, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", str(wheels[0])])
        (cls.tmp / "app.py").write_text(APP)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.project = Path(tempfile.mkdtemp(prefix="backstop-app-", dir=self.tmp))
        (self.project / "migrations").mkdir()
        self.db = self.project / "app.db"
        self.migration("1_users.sql", "CREATE TABLE user (email TEXT);")
        self.migration("2_seed.sql", "INSERT INTO user VALUES ('a@example.com'), ('b@example.com');")

    def migration(self, name, text):
        (self.project / "migrations" / name).write_text(text)

    def start(self, **kwargs):
        """Starts the application; its JSON line and its exit code."""
        kwargs = {
            "database": str(self.db),
            "migrations": str(self.project / "migrations"),
            "backups": str(self.project / "backups"),
            **kwargs,
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith("BACKSTOP_") and k != "DATABASE_URL"}
        out = subprocess.run(
            [self.python, str(self.tmp / "app.py"), json.dumps(kwargs)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=self.project, env=env,
        )
        self.assertTrue(out.stdout.strip(), f"no output; stderr:\n{out.stderr}")
        return json.loads(out.stdout.strip().splitlines()[-1]), out.returncode

    def rows(self, sql):
        with sqlite3.connect(self.db) as conn:
            return [r[0] for r in conn.execute(sql)]

    def test_the_wheel_installs_the_command_and_python_m_backstop(self):
        version = run([str(self.command), "--version"])
        self.assertIn("backstop", version)
        self.assertEqual(run([self.python, "-m", "backstop", "--version"]), version)
        found = run([self.python, "-c", "import backstop; print(backstop.find_backstop_bin())"])
        self.assertEqual(Path(found.strip()), self.command)

    def test_a_start_up_migration_that_succeeds(self):
        doc, code = self.start()
        self.assertEqual(code, 0, doc)
        report = doc["report"]
        self.assertEqual(report["schema_version"], 1)
        self.assertEqual([a["version"] for a in report["applied"]], ["1", "2"])
        self.assertEqual(sum(a["rows_changed"] for a in report["applied"]), 2)
        self.assertTrue(Path(self.project, report["backup"]["path"]).is_file())
        self.assertTrue(doc["serving"])
        # The next start has nothing to do and takes no backup.
        doc, code = self.start()
        self.assertEqual((code, doc["report"]["applied"], doc["report"]["backup"]), (0, [], None))

    def test_a_start_up_migration_that_fails_is_restored(self):
        self.assertEqual(self.start()[1], 0)
        with sqlite3.connect(self.db) as conn:
            conn.execute("INSERT INTO user VALUES ('a@example.com')")
        self.migration("3_audit.sql", "CREATE TABLE audit (at TEXT);")
        self.migration("4_unique.sql", "-- emails must be unique now\nCREATE UNIQUE INDEX user_email ON user(email);")
        doc, code = self.start(on_failure="restore")
        self.assertEqual(code, 1, "the application must refuse to start")
        e = doc["error"]
        self.assertEqual((e["exit_code"], e["kind"]), (1, "failed"))
        self.assertTrue(e["file"].endswith("4_unique.sql"), e)
        self.assertEqual(e["line"], 2)
        self.assertIn("UNIQUE constraint failed: user.email", e["message"])
        self.assertIn("4_unique.sql:2", e["text"])
        self.assertIn("the database was restored from", e["text"])
        self.assertTrue(e["restored"])
        self.assertTrue(Path(self.project, e["backup"]).is_file())
        # Migration 3 committed before 4 failed; the restore undid it too.
        self.assertNotIn("audit", self.rows("SELECT name FROM sqlite_schema"))
        self.assertEqual(self.rows("SELECT version FROM _backstop_migrations ORDER BY 1"), ["1", "2"])
        self.assertEqual(len(self.rows("SELECT email FROM user")), 3)

    def test_keep_leaves_what_committed(self):
        self.assertEqual(self.start()[1], 0)
        with sqlite3.connect(self.db) as conn:
            conn.execute("INSERT INTO user VALUES ('a@example.com')")
        self.migration("3_audit.sql", "CREATE TABLE audit (at TEXT);")
        self.migration("4_unique.sql", "CREATE UNIQUE INDEX user_email ON user(email);")
        doc, code = self.start(on_failure="keep")
        self.assertEqual((code, doc["error"]["restored"]), (1, False))
        self.assertIn("audit", self.rows("SELECT name FROM sqlite_schema"))

    def test_refusals_name_the_file_and_line_and_change_nothing(self):
        self.migration("3_bad.sql", "INSERT INTO user VALUES ('c');\nINSERT INTO nope VALUES (1);")
        doc, code = self.start()
        e = doc["error"]
        self.assertEqual((code, e["exit_code"], e["kind"]), (1, 3, "refused"))
        self.assertTrue(e["file"].endswith("3_bad.sql"), e)
        self.assertEqual((e["line"], e["message"]), (2, "no such table: nope"))
        self.assertIsNone(e["backup"])
        self.assertFalse(self.db.exists(), "a refused start created the database")

    def test_refuse_applies_nothing_while_anything_is_pending(self):
        doc, code = self.start(on_failure="refuse")
        self.assertEqual((code, doc["error"]["exit_code"]), (1, 3))
        self.assertIn("on_failure is 'refuse'", doc["error"]["text"])
        self.assertFalse(self.db.exists())
        self.assertEqual(self.start()[1], 0)
        doc, code = self.start(on_failure="refuse")
        self.assertEqual((code, doc["report"]["applied"]), (0, []))

    def test_it_never_prompts(self):
        self.assertEqual(self.start()[1], 0)
        # A schema change outside migrations needs a confirmation: no prompt,
        # an error naming what decides it.
        with sqlite3.connect(self.db) as conn:
            conn.execute("CREATE TABLE by_hand (x)")
        self.migration("3_audit.sql", "CREATE TABLE audit (at TEXT);")
        doc, code = self.start()
        self.assertEqual((code, doc["error"]["exit_code"]), (1, 3))
        self.assertIn("--yes", doc["error"]["hint"])
        doc, code = self.start(accept_drift=True)
        self.assertEqual(code, 0, doc)


if __name__ == "__main__":
    unittest.main()
