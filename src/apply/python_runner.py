"""backstop's runner for Python migration modules (issue 12).

Runs one module's up(conn) or down(conn) in ONE transaction together with
backstop's tracking row, so "recorded if and only if committed" holds for
Python as it does for SQL:

  foreign keys off (before BEGIN: inside a transaction SQLite ignores it),
  BEGIN IMMEDIATE, tell backstop "locked" and wait for "go" (backstop takes
  its backup meanwhile, see src/apply/python.rs), import the module, call the
  function, PRAGMA foreign_key_check on the tables it touched and their
  children, the tracking statements backstop sent, COMMIT.

The module may not end the transaction itself: an authorizer refuses
BEGIN/COMMIT/ROLLBACK (conn.commit(), conn.rollback(), conn.executescript(),
which commits first) while it runs, and the failure names what it tried.

backstop starts this as `python -u -c <this file>` with the job as one JSON
line on stdin, and reads this runner's messages, JSON lines, on fd 3; stdout
and stderr are the module's own and are streamed to the user. Every failure is
a message; the transaction is rolled back before it is sent.
"""

import importlib.util
import json
import os
import signal
import sqlite3
import sys
import time
import traceback
import urllib.parse

os.set_inheritable(3, False)  # not for what the module starts
MESSAGES = os.fdopen(3, "w")
STATE = {"interrupted": False, "in_module": False}
TABLE_ARG = {
    sqlite3.SQLITE_INSERT: 0,
    sqlite3.SQLITE_UPDATE: 0,
    sqlite3.SQLITE_DELETE: 0,
    sqlite3.SQLITE_CREATE_TABLE: 0,
    sqlite3.SQLITE_DROP_TABLE: 0,
    sqlite3.SQLITE_ALTER_TABLE: 1,
}


def send(**message):
    MESSAGES.write(json.dumps(message) + "\n")
    MESSAGES.flush()


def on_sigint(signum, frame):
    # backstop passes Ctrl-C on once. Inside the module it stops Python code
    # at once; the progress handler below stops a long SQL statement; at any
    # other moment the flag is checked before COMMIT.
    STATE["interrupted"] = True
    if STATE["in_module"]:
        raise KeyboardInterrupt


class Guard:
    """The authorizer: refuses transaction control while the module runs and
    notes the tables it writes (for the foreign-key check)."""

    def __init__(self, module_path):
        self.module_path = module_path
        self.on = True
        self.attempt = None
        self.line = None
        self.touched = set()

    def __call__(self, action, arg1, arg2, db_name, source):
        if action == sqlite3.SQLITE_TRANSACTION and self.on:
            if self.attempt is None:
                self.attempt = arg1
                self.line = module_line(traceback.extract_stack(), self.module_path)
            return sqlite3.SQLITE_DENY
        at = TABLE_ARG.get(action)
        if at is not None and db_name in (None, "main"):
            table = (arg1, arg2)[at]
            if table and not table.startswith(("sqlite_", "_backstop_")):
                self.touched.add(table.lower())
        return sqlite3.SQLITE_OK


def module_line(frames, path):
    """The line of the innermost frame in the module's file, if any."""
    lines = [f.lineno for f in frames if f.filename == path]
    return lines[-1] if lines else None


def rollback(conn, guard):
    if guard is not None:
        guard.on = False
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error:
        pass


def fail(conn, guard, cause, message, **more):
    rollback(conn, guard)
    send(event="failed", cause=cause, message=message, **more)


def foreign_key_check(conn, touched):
    """The tables checked (the touched ones and the tables whose foreign keys
    point at them, as src/apply/foreign_keys.rs) and their orphans, as
    {(table, parent): (set of rowids, count without rowid)}."""
    if not touched:
        return [], {}
    graph = {}
    for child, parent in conn.execute(
        "SELECT lower(m.name), lower(f.\"table\") FROM sqlite_master m,"
        " pragma_foreign_key_list(m.name) f WHERE m.type = 'table'"
    ):
        graph.setdefault(child, []).append(parent)
    check = sorted(c for c, ps in graph.items() if c in touched or any(p in touched for p in ps))
    return check, orphans(conn, check)


def orphans(conn, tables):
    found = {}
    for name in tables:
        rows = conn.execute('SELECT "table", rowid, parent FROM pragma_foreign_key_check(?)', (name,))
        for table, rowid, parent in rows:
            rowids, unnamed = found.setdefault((table, parent), (set(), [0]))
            if rowid is None:
                unnamed[0] += 1
            else:
                rowids.add(rowid)
    return found


def orphans_before(tables, paths):
    """The same check on the state before the module: the database's last
    commit (this transaction is not committed yet), else the pre-run backup;
    None when neither can be read (every orphan then counts as new)."""
    for path in paths:
        if not path:
            continue
        try:
            uri = "file:%s?mode=ro" % urllib.parse.quote(path)
            before = sqlite3.connect(uri, uri=True, timeout=0, isolation_level=None)
            try:
                exists = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND lower(name) = ?"
                present = [t for t in tables if before.execute(exists, (t,)).fetchone()]
                return orphans(before, present)
            finally:
                before.close()
        except sqlite3.Error:
            continue
    return None


def introduced(found, before):
    """The orphans the module made (the first ten), their total, and how many
    were there before it."""
    violations, total, preexisting = [], 0, 0
    for (table, parent), (rowids, unnamed) in sorted(found.items()):
        then_ids, then_unnamed = (before or {}).get((table, parent), (set(), [0]))
        new_ids = sorted(rowids - then_ids)
        new_unnamed = max(0, unnamed[0] - then_unnamed[0])
        preexisting += len(rowids) + unnamed[0] - len(new_ids) - new_unnamed
        total += len(new_ids) + new_unnamed
        for rowid in new_ids + [None] * new_unnamed:
            if len(violations) < 10:
                violations.append({"table": table, "rowid": rowid, "parent": parent})
    return violations, total, preexisting


def own_transaction(guard, function):
    what = {"COMMIT": "commit", "ROLLBACK": "roll back", "BEGIN": "begin a transaction"}
    return (
        "%s(conn) tried to %s itself (conn.commit(), conn.rollback(), conn.executescript() or a "
        "%s statement); backstop commits the migration together with its tracking row, so "
        "leave that out and use conn.execute()"
        % (function, what.get(guard.attempt, "end the transaction"), guard.attempt or "COMMIT")
    )


def run_module(conn, guard, job):
    """Imports the module and calls its function; returns None, or the failure
    as (cause, message, line, traceback lines)."""
    path, function = job["module"], job["function"]
    if STATE["interrupted"]:
        return ("interrupted", "interrupted", None, [])
    sys.path.insert(1, os.path.dirname(path))
    sys.argv = [path]
    try:
        STATE["in_module"] = True
        spec = importlib.util.spec_from_file_location("backstop_migration", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        fn = getattr(module, function, None)
        if not callable(fn):
            STATE["in_module"] = False
            return ("module", "%s defines no function %s(conn)" % (path, function), None, [])
        fn(conn)
        STATE["in_module"] = False
    except BaseException as e:  # noqa: B902 - SystemExit and Ctrl-C too
        STATE["in_module"] = False
        if STATE["interrupted"]:
            return ("interrupted", "interrupted", None, [])
        frames = traceback.extract_tb(e.__traceback__)
        if guard.attempt is not None:
            return ("own-transaction", own_transaction(guard, function), guard.line, [])
        lines = "".join(traceback.format_exception(type(e), e, e.__traceback__)).splitlines()
        message = "%s: %s" % (type(e).__name__, e) if str(e) else type(e).__name__
        return ("module", message, module_line(frames, path), lines[-12:])
    if STATE["interrupted"]:
        return ("interrupted", "interrupted", None, [])
    if guard.attempt is not None:
        return ("own-transaction", own_transaction(guard, function), guard.line, [])
    try:
        open_transaction = conn.in_transaction
    except sqlite3.ProgrammingError:
        return ("module", "%s(conn) closed the connection it was given" % function, None, [])
    if not open_transaction:
        return (
            "own-transaction",
            "the transaction ended inside %s(conn): it ended it itself, or SQLite rolled it back "
            "after an error that the module caught" % function,
            None,
            [],
        )
    return None


def main():
    signal.signal(signal.SIGINT, on_sigint)
    job = json.loads(sys.stdin.readline())
    conn = sqlite3.connect(job["database"], timeout=job["busy_ms"] / 1000.0, isolation_level=None)
    if job["extensions"]:
        # As on every connection backstop opens (checked before the run);
        # loading is switched off again so the module cannot load more.
        conn.enable_load_extension(True)
        for path in job["extensions"]:
            try:
                conn.load_extension(path)
            except sqlite3.Error as e:
                return fail(conn, None, "runner", "cannot load the extension %s: %s" % (path, e))
        conn.enable_load_extension(False)
    conn.execute("PRAGMA foreign_keys = %s" % ("ON" if job["foreign_keys"] else "OFF"))
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as e:
        return fail(conn, None, "locked", str(e))
    send(event="locked")
    line = sys.stdin.readline()
    go = json.loads(line) if line.strip() else {}
    if not go.get("go"):
        return rollback(conn, None)
    guard = Guard(job["module"])
    conn.set_authorizer(guard)
    conn.set_progress_handler(lambda: 1 if STATE["interrupted"] else 0, 10000)
    started = time.monotonic()
    changes = conn.total_changes
    failure = run_module(conn, guard, job)
    if failure is not None:
        cause, message, at, lines = failure
        return fail(conn, guard, cause, message, line=at, traceback=lines)
    guard.on = False
    # What the module may have changed on the connection must not change how
    # the check and the tracking statements below read. (Not isolation_level:
    # setting it to None COMMITs an open transaction.)
    conn.row_factory = None
    conn.text_factory = str
    rows = conn.total_changes - changes
    try:
        preexisting = 0
        if not job["foreign_keys"]:
            tables, found = foreign_key_check(conn, guard.touched)
            if found:
                before = orphans_before(tables, [job["database"], go.get("backup")])
                violations, total, preexisting = introduced(found, before)
                if total:
                    return fail(
                        conn,
                        guard,
                        "foreign-keys",
                        "foreign keys",
                        violations=violations,
                        total=total,
                        compared=before is not None,
                    )
        seconds = time.monotonic() - started
        values = {"duration_ms": int(seconds * 1000), "rows_changed": rows}
        returned = {}
        for statement in go["statements"]:
            params = dict(statement["params"])
            for key in params:
                if key in values:
                    params[key] = values[key]
            cursor = conn.execute(statement["sql"], params)
            if statement.get("returns"):
                values[statement["returns"]] = returned[statement["returns"]] = cursor.lastrowid
        # Ctrl-C after the module's last statement still means "stop".
        if STATE["interrupted"]:
            return fail(conn, guard, "interrupted", "interrupted")
        conn.execute("COMMIT")
    except sqlite3.Error as e:
        if STATE["interrupted"]:
            return fail(conn, guard, "interrupted", "interrupted")
        cause = "locked" if "locked" in str(e) or "busy" in str(e) else "sql"
        return fail(conn, guard, cause, str(e))
    send(
        event="done",
        duration_us=int(seconds * 1e6),
        rows_changed=rows,
        returned=returned,
        preexisting_orphans=preexisting,
    )


if __name__ == "__main__":
    try:
        main()
    except BaseException as e:  # noqa: B902 - report everything to backstop
        lines = "".join(traceback.format_exception(type(e), e, e.__traceback__)).splitlines()
        message = "%s: %s" % (type(e).__name__, e)
        cause = "interrupted" if STATE["interrupted"] else "runner"
        try:
            send(event="failed", cause=cause, message=message, traceback=lines[-12:])
        except (OSError, ValueError):
            pass
