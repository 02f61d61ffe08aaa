#!/usr/bin/env python3
"""backstop benchmarks, side by side with their baselines in one run.

Not a test: it prints figures. Contenders of a group run in rounds, each round in
a rotated order (so no contender always runs first on a cold cache); the table
shows each contender's median time and the median of its per-round ratio to the
group's baseline, and peak RSS (GNU time). Usage:

    cargo build --release && python3 bench/bench.py              # every group, 1 GiB
    python3 bench/bench.py --only backup,wal --mib 256 --runs 3   # quicker
    python3 bench/bench.py --only scale --scale-gib 10 --workdir /var/tmp/bb   # 10 GiB, kept

Groups: backup (rollback journal), wal (WAL, with frames in the -wal), writer (WAL
beside a writer committing every 3 ms), apply (1,000 small migrations), one (one
migration on the big database), status, bigfile (a 100 MB migration), scale.

Baselines need the sqlite3 shell (apt-get install sqlite3). Peers are optional,
each skipped with a message when it is not on PATH:
    diesel   cargo install diesel_cli --no-default-features --features sqlite-bundled
    dbmate   npm install -g dbmate         (or a release binary from GitHub)
    sqlx     cargo install sqlx-cli --no-default-features --features sqlite
    goose    go install github.com/pressly/goose/v3/cmd/goose@latest
"""
import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "backstop")
GNU_TIME = "/usr/bin/time" if os.path.exists("/usr/bin/time") else None


def run(cmd, cwd=None, stdin=None, env=None):
    """Runs cmd; returns (seconds, peak RSS in MiB or None). Fails loudly on non-zero exit.

    Peak RSS comes from GNU time: a child forked from this Python process would
    inherit Python's own high-water mark in its rusage."""
    rss_file = tempfile.NamedTemporaryFile(delete=False)
    rss_file.close()
    full = ([GNU_TIME, "-f", "%M", "-o", rss_file.name] if GNU_TIME else []) + cmd
    start = time.perf_counter()
    p = subprocess.run(full, cwd=cwd, input=stdin, env=env or clean_env(),
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stderr.decode(errors='replace')}")
    rss = None
    try:
        with open(rss_file.name) as f:
            rss = int(f.read().strip().splitlines()[-1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    os.unlink(rss_file.name)
    return elapsed, rss


def clean_env():
    e = dict(os.environ)
    for k in list(e):
        if k.startswith("BACKSTOP_") or k == "DATABASE_URL":
            del e[k]
    return e


def rounds(title, contenders, runs, baseline, prepare=None):
    """contenders: [(name, fn)] where fn() -> (seconds, rss). prepare() runs before each call."""
    times = {name: [] for name, _ in contenders}
    ratios = {name: [] for name, _ in contenders}
    peak = {name: 0.0 for name, _ in contenders}
    for r in range(runs):
        order = contenders[r % len(contenders):] + contenders[:r % len(contenders)]
        got = {}
        for name, fn in order:
            if prepare:
                prepare()
            t, m = fn()
            got[name] = t
            times[name].append(t)
            peak[name] = max(peak[name], m or 0.0)
        for name in got:
            ratios[name].append(got[name] / got[baseline])
    print(f"\n{title} (medians of {runs} rounds, ratios taken round by round)")
    print(f"  {'contender':44s} {'median':>9s} {'ratio':>7s} {'peak RSS':>10s}")
    for name, _ in contenders:
        print(f"  {name:44s} {statistics.median(times[name]):8.3f}s "
              f"{statistics.median(ratios[name]):7.2f} {peak[name]:8.1f} MiB")
    return {n: statistics.median(times[n]) for n in times}


def fresh(*paths):
    for p in paths:
        if os.path.isdir(p):
            shutil.rmtree(p)
        elif os.path.exists(p):
            os.remove(p)


def settle():
    """Every contender starts alike: dirty pages written out first."""
    os.sync()


# --------------------------------------------------------------- the big database

def make_big_db(path, mib, wal=False):
    # ~4 KiB rows of random bytes: incompressible, spread over the whole file.
    rows = mib * 1024 // 4
    sql = (f"PRAGMA page_size=4096; CREATE TABLE blob (id INTEGER PRIMARY KEY, b BLOB);"
           f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < {rows}) "
           f"INSERT INTO blob (b) SELECT randomblob(4000) FROM c;")
    if wal:
        sql = "PRAGMA journal_mode=WAL;" + sql
    subprocess.run(["sqlite3", path], input=sql.encode(), check=True, stdout=subprocess.DEVNULL)


def big_db(work, mib, wal):
    name = f"big-{mib}{'-wal' if wal else ''}.db"
    db = os.path.join(work, name)
    if not os.path.exists(db):
        print(f"creating a {mib} MiB {'WAL' if wal else 'rollback-journal'} database …", flush=True)
        make_big_db(db, mib, wal)
    return db


def cp_fsync(src, dst):
    """The careful manual copy: the file (and its -wal) copied, then fsynced."""
    code = ("import shutil,os,sys\n"
            "for s, d in zip(sys.argv[1::2], sys.argv[2::2]):\n"
            "    shutil.copyfile(s, d); fd = os.open(d, os.O_RDONLY); os.fsync(fd); os.close(fd)\n")
    args = [src, dst]
    if os.path.exists(src + "-wal"):
        args += [src + "-wal", dst + "-wal"]
    return run([sys.executable, "-c", code] + args)


# A process that holds the WAL database open with frames in its -wal (so they
# are not checkpointed away when the shell exits), or that commits a row every
# few milliseconds until told to stop.
HOLDER = r"""
import sqlite3, sys, time, os
db, mode = sys.argv[1], sys.argv[2]
c = sqlite3.connect(db, isolation_level=None, timeout=30)
c.execute("PRAGMA wal_autocheckpoint=0")
c.execute("CREATE TABLE IF NOT EXISTS app (id INTEGER PRIMARY KEY, at REAL)")
if mode == "frames":
    for line in sys.stdin:
        # Rewrite ~64 MiB of pages: they live in the -wal until a checkpoint.
        c.execute("BEGIN")
        c.execute("UPDATE blob SET b = randomblob(4000) WHERE id <= 16384")
        c.execute("COMMIT")
        print("ok", flush=True)
else:
    stop = sys.argv[3]
    n = 0
    while not os.path.exists(stop):
        c.execute("INSERT INTO app (at) VALUES (?)", (time.time(),))
        n += 1
        time.sleep(0.003)
    print(n, flush=True)
"""


def bench_backup(work, mib, runs):
    db = big_db(work, mib, wal=False)
    copy, backups = os.path.join(work, "copy.db"), os.path.join(work, "backups")

    def prepare():
        fresh(copy, copy + "-wal", backups)
        settle()

    rounds(f"verified backup of a {mib} MiB rollback-journal database", [
        ("cp + fsync", lambda: cp_fsync(db, copy)),
        ("backstop backup (hash + quick_check)",
         lambda: run([BIN, "-d", db, "--backups", backups, "--keep", "1000", "backup", "-q"])),
        ("sqlite3 .backup (not verified)", lambda: run(["sqlite3", db, f".backup '{copy}'"])),
        ("VACUUM INTO (not verified)", lambda: run(["sqlite3", db, f"VACUUM INTO '{copy}'"])),
    ], runs, "cp + fsync", prepare)
    fresh(backups)


def bench_wal(work, mib, runs):
    db = big_db(work, mib, wal=True)
    copy, backups = os.path.join(work, "copy.db"), os.path.join(work, "backups")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, db, "frames"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def prepare():
        fresh(copy, copy + "-wal", backups)
        holder.stdin.write("go\n")
        holder.stdin.flush()
        holder.stdout.readline()
        settle()

    try:
        rounds(f"verified backup of a {mib} MiB WAL database with ~64 MiB in its -wal", [
            ("cp + fsync (db and -wal)", lambda: cp_fsync(db, copy)),
            ("backstop backup (hash + quick_check)",
             lambda: run([BIN, "-d", db, "--backups", backups, "--keep", "1000", "backup", "-q"])),
            ("sqlite3 .backup (not verified)", lambda: run(["sqlite3", db, f".backup '{copy}'"])),
        ], runs, "cp + fsync (db and -wal)", prepare)
    finally:
        holder.stdin.close()
        holder.wait()
        fresh(backups)


def bench_writer(work, mib, runs):
    db = big_db(work, mib, wal=True)
    backups = os.path.join(work, "backups")
    stop = os.path.join(work, "stop-writer")

    def quiet():
        return run([BIN, "-d", db, "--backups", backups, "--keep", "1000", "backup", "-q"])

    def beside_writer():
        fresh(stop)
        w = subprocess.Popen([sys.executable, "-c", HOLDER, db, "writer", stop],
                             stdout=subprocess.PIPE, text=True)
        time.sleep(0.2)
        try:
            return quiet()
        finally:
            open(stop, "w").close()
            w.wait()

    rounds(f"WAL backup of {mib} MiB beside a writer committing every 3 ms", [
        ("backstop backup, no writer", quiet),
        ("backstop backup, writer committing", beside_writer),
    ], runs, "backstop backup, no writer", lambda: (fresh(backups), settle()))
    fresh(backups, stop)


# ------------------------------------------------------------------ applying

def migration_sql(i):
    return (f"CREATE TABLE t_{i} (id INTEGER PRIMARY KEY, name TEXT NOT NULL, n INTEGER);\n"
            f"INSERT INTO t_{i} (name, n) VALUES ('a', {i}), ('b', {i + 1});\n")


def write_folders(base, count):
    """The same migrations in each tool's layout."""
    folders = {k: os.path.join(base, k) for k in ("backstop", "diesel", "sqlx", "goose")}
    for f in folders.values():
        os.makedirs(f, exist_ok=True)
    for i in range(1, count + 1):
        body = migration_sql(i)
        with open(os.path.join(folders["backstop"], f"{i:06d}_m{i}.sql"), "w") as f:
            f.write(f"-- migrate:up\n{body}-- migrate:down\nDROP TABLE t_{i};\n")
        d = os.path.join(folders["diesel"], f"{i:06d}_m{i}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "up.sql"), "w") as f:
            f.write(body)
        with open(os.path.join(d, "down.sql"), "w") as f:
            f.write(f"DROP TABLE t_{i};\n")
        with open(os.path.join(folders["sqlx"], f"{i:06d}_m{i}.sql"), "w") as f:
            f.write(body)
        with open(os.path.join(folders["goose"], f"{i:06d}_m{i}.sql"), "w") as f:
            f.write(f"-- +goose Up\n{body}-- +goose Down\nDROP TABLE t_{i};\n")
    return folders


def floor_script(count):
    """What SQLite itself needs: one transaction per migration with a tracking insert."""
    parts = ["CREATE TABLE tracking (version TEXT PRIMARY KEY, name TEXT, checksum TEXT, applied_at TEXT);\n"]
    for i in range(1, count + 1):
        body = migration_sql(i)
        digest = hashlib.sha256(body.encode()).hexdigest()
        parts.append(f"BEGIN IMMEDIATE;\n{body}INSERT INTO tracking VALUES ('{i}', 'm{i}', '{digest}', "
                     f"strftime('%Y-%m-%dT%H:%M:%fZ','now'));\nCOMMIT;\n")
    return "".join(parts).encode()


def bench_apply(work, count, runs):
    base = os.path.join(work, "apply")
    folders = write_folders(base, count)
    db = os.path.join(base, "dev.db")
    script = floor_script(count)
    contenders = [
        ("sqlite3 shell, 1 txn + tracking insert each", lambda: run(["sqlite3", db], stdin=script)),
        ("backstop up (backup and checks included)",
         lambda: run([BIN, "-d", db, "--migrations", folders["backstop"], "--backups",
                      os.path.join(base, "backups"), "up", "-q"])),
        ("backstop up --no-backup",
         lambda: run([BIN, "-d", db, "--migrations", folders["backstop"], "up", "--no-backup", "-q"])),
    ]
    peers = [
        ("diesel", lambda: run(["diesel", "migration", "run", "--database-url", db,
                                "--migration-dir", folders["diesel"]])),
        ("dbmate", lambda: run(["dbmate", "--url", f"sqlite:{db}", "--migrations-dir",
                                folders["backstop"], "--no-dump-schema", "up"])),
        ("sqlx", lambda: run(["sqlx", "migrate", "run", "--database-url", f"sqlite:{db}?mode=rwc",
                              "--source", folders["sqlx"]])),
        ("goose", lambda: run(["goose", "-dir", folders["goose"], "sqlite3", db, "up"])),
    ]
    for name, fn in peers:
        if shutil.which(name):
            contenders.append((f"{name} (peer)", fn))
        else:
            print(f"  skipped: {name} is not installed (see this script's docstring)")
    rounds(f"apply {count} small migrations to a new database", contenders, runs,
           "sqlite3 shell, 1 txn + tracking insert each",
           lambda: (fresh(db, db + "-wal", db + "-shm", db + "-journal", os.path.join(base, "backups")),
                    settle()))


def bench_one(work, mib, runs):
    src = big_db(work, mib, wal=False)
    db, copy = os.path.join(work, "one.db"), os.path.join(work, "one-copy.db")
    mig = os.path.join(work, "one-migrations")
    os.makedirs(mig, exist_ok=True)
    sql = "CREATE TABLE audit (id INTEGER PRIMARY KEY, at TEXT);\nCREATE INDEX audit_at ON audit (at);\n"
    with open(os.path.join(mig, "1_audit.sql"), "w") as f:
        f.write("-- migrate:up\n" + sql)
    backups = os.path.join(work, "one-backups")

    def manual():
        a, m1 = cp_fsync(db, copy)
        b, m2 = run(["sqlite3", db], stdin=("BEGIN;\n" + sql + "COMMIT;\n").encode())
        return a + b, max(m1 or 0, m2 or 0)

    def prepare():
        fresh(db, copy, backups)
        shutil.copyfile(src, db)
        settle()

    rounds(f"one migration on a {mib} MiB database, backup included", [
        ("cp + fsync, then the sqlite3 shell", manual),
        ("backstop up", lambda: run([BIN, "-d", db, "--migrations", mig, "--backups", backups, "up", "-q"])),
    ], runs, "cp + fsync, then the sqlite3 shell", prepare)
    fresh(db, copy, backups)


def bench_status(work, count, runs):
    base = os.path.join(work, "status")
    folders = write_folders(base, count)
    db = os.path.join(base, "dev.db")
    if not os.path.exists(db):
        run([BIN, "-d", db, "--migrations", folders["backstop"], "up", "--no-backup", "-q"])
    common = [BIN, "-d", db, "--migrations", folders["backstop"]]
    rounds(f"read-only commands on {count} applied migrations", [
        ("backstop --version (start-up)", lambda: run([BIN, "--version"])),
        ("backstop status", lambda: run(common + ["status", "-q"])),
        ("backstop up (nothing to do)", lambda: run(common + ["up", "-q"])),
    ], runs, "backstop --version (start-up)")


def bench_bigfile(work, mib, runs):
    base = os.path.join(work, "bigfile")
    mig = os.path.join(base, "migrations")
    os.makedirs(mig, exist_ok=True)
    path = os.path.join(mig, "1_rows.sql")
    if not os.path.exists(path):
        with open(path, "w") as f:
            f.write("-- migrate:up\nCREATE TABLE r (id INTEGER PRIMARY KEY, t TEXT);\n")
            line = "INSERT INTO r (t) VALUES ('" + "x" * 60 + "');\n"
            for _ in range(mib * 2**20 // len(line)):
                f.write(line)
    size = os.path.getsize(path) / 2**20
    db = os.path.join(base, "dev.db")
    res = rounds(f"a {size:.0f} MiB migration file", [
        ("backstop up --no-backup", lambda: run([BIN, "-d", db, "--migrations", mig, "up", "--no-backup", "-q"])),
    ], runs, "backstop up --no-backup", lambda: (fresh(db, db + "-journal"), settle()))
    del res
    print(f"  (peak RSS relative to the file: see the table; target under {2 * size:.0f} MiB)")


def bench_scale(work, gib, runs):
    db = big_db(work, gib * 1024, wal=False)
    copy, backups = os.path.join(work, "copy.db"), os.path.join(work, "backups")
    rounds(f"verified backup of a {gib} GiB database", [
        ("cp + fsync", lambda: cp_fsync(db, copy)),
        ("backstop backup", lambda: run([BIN, "-d", db, "--backups", backups, "--keep", "1000", "backup", "-q"])),
    ], runs, "cp + fsync", lambda: (fresh(copy, backups), settle()))
    fresh(copy, backups)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="backup,wal,writer,apply,one,status,bigfile",
                    help="comma-separated groups (scale runs only when asked for)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--mib", type=int, default=1024, help="size of the big database")
    ap.add_argument("--migrations", type=int, default=1000)
    ap.add_argument("--bigfile-mib", type=int, default=100)
    ap.add_argument("--scale-gib", type=int, default=10)
    ap.add_argument("--keep-workdir", action="store_true")
    ap.add_argument("--workdir", help="use (and keep) this folder: its big databases are made once "
                                      "and reused by later runs, which saves minutes at 10 GiB")
    args = ap.parse_args()
    if not os.path.exists(BIN):
        sys.exit("build first: cargo build --release")
    if shutil.which("sqlite3") is None:
        sys.exit("the baselines need the sqlite3 shell: apt-get install sqlite3")
    groups = set(args.only.split(","))
    if args.workdir:
        os.makedirs(args.workdir, exist_ok=True)
        work = args.workdir
    else:
        work = tempfile.mkdtemp(prefix="backstop-bench-", dir=os.environ.get("BENCH_DIR"))
    print(f"backstop {subprocess.run([BIN, '--version'], capture_output=True, text=True).stdout.strip()}, "
          f"{os.cpu_count()} cores, work folder {work}")
    try:
        for name, fn in [
            ("backup", lambda: bench_backup(work, args.mib, args.runs)),
            ("wal", lambda: bench_wal(work, args.mib, args.runs)),
            ("writer", lambda: bench_writer(work, args.mib, args.runs)),
            ("apply", lambda: bench_apply(work, args.migrations, args.runs)),
            ("one", lambda: bench_one(work, args.mib, args.runs)),
            ("status", lambda: bench_status(work, args.migrations, max(args.runs, 20))),
            ("bigfile", lambda: bench_bigfile(work, args.bigfile_mib, max(1, args.runs // 2))),
            ("scale", lambda: bench_scale(work, args.scale_gib, max(1, args.runs // 2))),
        ]:
            if name in groups:
                fn()
    finally:
        if args.keep_workdir or args.workdir:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
