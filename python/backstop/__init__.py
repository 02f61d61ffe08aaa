"""Safety-first SQLite migrations from Python: migrate at application start-up.

``backstop.up()`` runs the ``backstop`` command installed with this package
(``backstop up --json --no-input``): it takes a verified backup, applies each
pending migration in one transaction together with its tracking row, and when
one fails puts the pre-run backup back (``on_failure="restore"``) and raises
:class:`MigrationError`. It never prompts. ``python -m backstop`` is the
command line itself.

Call it before the application opens its connection pool::

    import backstop

    backstop.up(database="app.db", migrations="migrations")  # raises on failure
    app = create_app()                                         # opens the pool

The report is the ``report`` object of ``backstop up --json`` (README, "JSON
output"); its keys are stable for ``schema_version`` 1.
"""

import json
import logging
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

__all__ = ["MigrationError", "find_backstop_bin", "status", "up"]

log = logging.getLogger("backstop")

_POLICIES = ("restore", "keep", "refuse")


class MigrationError(Exception):
    """``backstop`` did not bring the database up to date.

    ``str(error)`` is backstop's own message (it names the file). Attributes:

    - ``exit_code``: backstop's exit code (1 a migration failed, 2 usage,
      3 refused before changing anything, 4 database unavailable, 5 backup or
      restore failed, 130 interrupted);
    - ``kind``: the same as a word (``"failed"``, ``"refused"``, ...);
    - ``file``, ``line``: the migration file and line it points at (or None);
    - ``message``: SQLite's own message (or None);
    - ``backup``: the verified backup taken before the run (or None);
    - ``restored``: True when that backup was put back, so the database is as
      it was before the run;
    - ``hint``: what to do next; ``document``: the whole ``--json`` document;
      ``stderr``: what backstop printed while it ran.
    """

    def __init__(self, error, *, exit_code, document=None, stderr=""):
        super().__init__(error)
        doc = document or {}
        failure = doc.get("failure") or {}
        cause = failure.get("cause") or {}
        self.exit_code = exit_code
        self.document = doc
        self.stderr = stderr
        self.hint = doc.get("hint")
        self.kind = doc.get("kind") or _kind(exit_code)
        self.file = doc.get("file", failure.get("path"))
        self.line = doc.get("line", failure.get("line"))
        self.message = doc.get("message", cause.get("message"))
        self.backup = (failure.get("backup") or {}).get("path")
        self.restored = bool(doc.get("restored", False))


def up(
    database=None,
    migrations=None,
    backups=None,
    on_failure="restore",
    *,
    keep=None,
    allow_out_of_order=False,
    accept_drift=False,
    config=None,
    cwd=None,
    env=None,
):
    """Apply pending migrations to ``database`` and return the report (a dict).

    Settings left as None are resolved as the command line resolves them:
    ``BACKSTOP_*`` / ``DATABASE_URL`` variables, then ``backstop.toml`` in
    ``cwd`` (or ``config``), then the defaults (``dev.db``, ``migrations``,
    ``backups``). Relative paths are relative to ``cwd`` (default: the current
    folder).

    ``on_failure``: ``"restore"`` (default) puts the pre-run backup back when a
    migration fails; ``"keep"`` keeps the migrations that committed;
    ``"refuse"`` applies nothing and raises if anything is pending.
    ``accept_drift`` runs although the schema changed outside migrations (it
    is recorded in the run log); without it such drift raises.

    Raises :class:`MigrationError` when the database is not up to date
    afterwards. Never prompts.
    """
    if on_failure not in _POLICIES:
        raise ValueError(f"on_failure must be one of {_POLICIES}, not {on_failure!r}")
    flags = _settings(database, migrations, backups, keep, config)
    if on_failure == "refuse":
        return _refuse_pending(flags, cwd, env)
    args = ["up", "--json", "--no-input", "--on-failure", on_failure, *flags]
    if allow_out_of_order:
        args.append("--allow-out-of-order")
    if accept_drift:
        args.append("--yes")
    doc = _run(args, cwd, env, ok_codes=(0,))
    report = dict(doc.get("report") or {})
    report["schema_version"] = doc.get("schema_version")
    return report


def status(database=None, migrations=None, backups=None, *, config=None, cwd=None, env=None):
    """The ``backstop status --json`` document (a dict): every migration's
    state (applied, pending, edited, missing, out-of-order). Changes nothing."""
    flags = _settings(database, migrations, backups, None, config)
    return _run(["status", "--json", "--no-input", *flags], cwd, env, ok_codes=(0,))


def find_backstop_bin():
    """The ``backstop`` command installed with this package."""
    name = "backstop" + (sysconfig.get_config_var("EXE") or "")
    candidates = [Path(sysconfig.get_path("scripts")) / name]
    if hasattr(sysconfig, "get_preferred_scheme"):  # Python 3.10+
        user = sysconfig.get_preferred_scheme("user")
    else:
        user = "nt_user" if os.name == "nt" else "posix_user"
    if user in sysconfig.get_scheme_names():
        candidates.append(Path(sysconfig.get_path("scripts", scheme=user)) / name)
    # `pip install --target DIR`: the scripts land in DIR/bin beside the package.
    candidates.append(Path(__file__).resolve().parent.parent / "bin" / name)
    for path in candidates:
        if path.is_file():
            return str(path)
    raise FileNotFoundError(
        "the backstop command is not installed with this package; looked in "
        + ", ".join(str(p) for p in candidates)
    )


def _settings(database, migrations, backups, keep, config):
    flags = []
    for flag, value in (
        ("--database", database),
        ("--migrations", migrations),
        ("--backups", backups),
        ("--keep", keep),
        ("--config", config),
    ):
        if value is not None:
            flags += [flag, os.fspath(value) if not isinstance(value, int) else str(value)]
    return flags


def _refuse_pending(flags, cwd, env):
    """``on_failure="refuse"``: read the plan, apply nothing."""
    doc = _run(["status", "--exit-code", "--json", "--no-input", *flags], cwd, env, ok_codes=(0, 3))
    counts = doc.get("counts") or {}
    waiting = [m for m in doc.get("migrations", []) if m.get("state") != "applied"]
    if waiting:
        listed = ", ".join(f"{m.get('version')} ({m.get('state')})" for m in waiting)
        doc = dict(doc, ok=False, kind="refused", exit_code=3,
                   hint="apply them first (backstop up), or let the application apply them")
        raise MigrationError(
            f"{doc.get('database')}: {len(waiting)} migration(s) not applied, and on_failure is "
            f"'refuse': {listed}",
            exit_code=3,
            document=doc,
        )
    return {
        "schema_version": doc.get("schema_version"),
        "database": doc.get("database"),
        "created": False,
        "applied": [],
        "backup": None,
        "duration_ms": 0,
        "destructive": [],
        "counts": counts,
    }


def _run(args, cwd, env, ok_codes):
    """Runs backstop with ``args``; its one JSON document, or MigrationError."""
    cmd = [find_backstop_bin(), *args]
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,  # never a prompt (and --no-input says so too)
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=env,
    )
    try:
        out, err = proc.communicate()
    except KeyboardInterrupt:
        # backstop got the same Ctrl-C: let it roll back and exit before
        # Python unwinds (killing it would leave the restore undone).
        proc.communicate()
        raise
    stderr = err.decode("utf-8", "replace")
    failed = proc.returncode not in ok_codes
    for line in stderr.splitlines():
        log.log(logging.WARNING if failed else logging.INFO, "%s", line)
    try:
        doc = json.loads(out.decode("utf-8", "replace") or "null")
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise MigrationError(
            f"backstop {args[0]} exited {proc.returncode} without a JSON report: {stderr.strip()}",
            exit_code=proc.returncode,
            stderr=stderr,
        )
    if failed or doc.get("ok") is False:
        raise MigrationError(_describe(doc, stderr), exit_code=proc.returncode, document=doc, stderr=stderr)
    return doc


def _describe(doc, stderr):
    """backstop's own words for the failure, and what became of the database."""
    text = doc.get("error")
    if not text:
        lines = [l[len("error: "):] for l in stderr.splitlines() if l.startswith("error: ")]
        text = "\n".join(lines) or f"backstop exited {doc.get('exit_code')}"
    failure = doc.get("failure")
    if failure:
        backup = (failure.get("backup") or {}).get("path")
        if doc.get("restored"):
            text += f"\nthe database was restored from {backup}: it is as it was before the run"
        elif doc.get("restore_error"):
            text += f"\nrestoring {backup} failed: {doc['restore_error']}"
        elif doc.get("restore_command"):
            text += f"\nthe database was kept; to undo the run: {doc['restore_command']}"
    return text


def _kind(code):
    return {1: "failed", 2: "usage", 3: "refused", 4: "unavailable", 5: "backup", 130: "interrupted"}.get(
        code, "failed"
    )
