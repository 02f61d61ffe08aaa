#!/usr/bin/env python3
"""backstop benchmarks, side by side with the sqlite3 shell and cp+fsync.

Not a test: it prints figures. Needs the `sqlite3` shell for the baselines
(apt-get install sqlite3). Usage:

    cargo build --release && python3 bench/bench.py            # everything, 1 GiB backup
    python3 bench/bench.py --backup-mib 256 --runs 3            # quicker
    python3 bench/bench.py --only apply                         # one group: apply|status|backup
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


def timed(cmd, cwd=None, stdin=None):
    """Runs cmd; returns (seconds, peak RSS in MiB or None). Fails loudly on non-zero exit.

    Peak RSS comes from GNU time: a child forked from this Python process would
    inherit Python's own high-water mark in its rusage."""
    rss_file = tempfile.NamedTemporaryFile(delete=False)
    rss_file.close()
    full = ([GNU_TIME, "-f", "%M", "-o", rss_file.name] if GNU_TIME else []) + cmd
    start = time.perf_counter()
    p = subprocess.run(full, cwd=cwd, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
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


def median(xs):
    return statistics.median(xs)


def env_for(folder):
    e = dict(os.environ)
    for k in list(e):
        if k.startswith("BACKSTOP_") or k == "DATABASE_URL":
            del e[k]
    return e


def migration_sql(i):
    return (f"CREATE TABLE t_{i} (id INTEGER PRIMARY KEY, name TEXT NOT NULL, n INTEGER);\n"
            f"INSERT INTO t_{i} (name, n) VALUES ('a', {i}), ('b', {i + 1});\n")


def write_migrations(folder, count):
    os.makedirs(folder, exist_ok=True)
    for i in range(1, count + 1):
        with open(os.path.join(folder, f"{i:06d}_m{i}.sql"), "w") as f:
            f.write("-- migrate:up\n" + migration_sql(i) + f"-- migrate:down\nDROP TABLE t_{i};\n")


def baseline_script(count):
    """What SQLite itself needs: one transaction per migration with a tracking insert."""
    parts = ["CREATE TABLE tracking (version TEXT PRIMARY KEY, name TEXT, checksum TEXT, applied_at TEXT);\n"]
    for i in range(1, count + 1):
        body = migration_sql(i)
        digest = hashlib.sha256(body.encode()).hexdigest()
        parts.append(f"BEGIN IMMEDIATE;\n{body}INSERT INTO tracking VALUES ('{i}', 'm{i}', '{digest}', "
                     f"strftime('%Y-%m-%dT%H:%M:%fZ','now'));\nCOMMIT;\n")
    return "".join(parts).encode()


def bench_apply(work, count, runs):
    mig = os.path.join(work, "migrations")
    write_migrations(mig, count)
    script = baseline_script(count)
    shell, ours = [], []
    for _ in range(runs):
        db = os.path.join(work, "shell.db")
        if os.path.exists(db):
            os.remove(db)
        shell.append(timed(["sqlite3", db], stdin=script)[0])
        for leftover in ("dev.db", "backups"):
            p = os.path.join(work, leftover)
            shutil.rmtree(p) if os.path.isdir(p) else (os.path.exists(p) and os.remove(p))
        ours.append(timed([BIN, "up", "-q"], cwd=work)[0])
    s, o = median(shell), median(ours)
    print(f"apply {count} migrations (median of {runs}):")
    print(f"  sqlite3 shell, 1 txn + tracking insert each : {s:7.3f} s")
    print(f"  backstop up (incl. backup, checks, run rows): {o:7.3f} s   ratio {o / s:.3f}")
    return work


def bench_status(work, count, runs):
    if not os.path.exists(os.path.join(work, "dev.db")):
        write_migrations(os.path.join(work, "migrations"), count)
        timed([BIN, "up", "-q"], cwd=work)
    for label, cmd in (("status", [BIN, "status", "-q"]), ("no-op up", [BIN, "up", "-q"])):
        times = [timed(cmd, cwd=work)[0] for _ in range(runs)]
        print(f"{label} on {count} applied migrations: median {median(times) * 1000:6.1f} ms, "
              f"min {min(times) * 1000:6.1f} ms ({runs} runs)")


def make_big_db(path, mib):
    # ~4 KiB rows of random bytes: incompressible, spread over the whole file.
    rows = mib * 1024 // 4
    sql = (f"PRAGMA page_size=4096; CREATE TABLE blob (id INTEGER PRIMARY KEY, b BLOB);"
           f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < {rows}) "
           f"INSERT INTO blob (b) SELECT randomblob(4000) FROM c;")
    subprocess.run(["sqlite3", path, sql], check=True)


def bench_backup(work, mib, runs):
    folder = os.path.join(work, "big")
    os.makedirs(folder, exist_ok=True)
    db = os.path.join(folder, "big.db")
    if not os.path.exists(db):
        print(f"creating a {mib} MiB database …", flush=True)
        make_big_db(db, mib)
    size = os.path.getsize(db) / 2**20
    copy = os.path.join(folder, "copy.db")
    results = {}

    def cp_fsync():
        return timed(["python3", "-c",
                      "import shutil,os,sys; shutil.copyfile(sys.argv[1], sys.argv[2]); "
                      "fd=os.open(sys.argv[2], os.O_RDONLY); os.fsync(fd)", db, copy])

    contenders = [
        ("cp + fsync", cp_fsync),
        ("sqlite3 .backup", lambda: timed(["sqlite3", db, f".backup '{copy}'"])),
        ("quick_check (sqlite3)", lambda: timed(["sqlite3", db, "PRAGMA quick_check"])),
        ("sha256sum", lambda: timed(["sha256sum", db])),
        ("backstop backup (verified)", lambda: timed([BIN, "-d", db, "--backups", backups,
                                                      "--keep", "1000", "backup", "-q"])),
    ]
    backups = os.path.join(folder, "backups")
    for name, fn in contenders:
        times, rss = [], []
        for _ in range(runs):
            # Every contender starts alike: no old copy to delete, dirty pages flushed.
            if os.path.exists(copy):
                os.remove(copy)
            shutil.rmtree(backups, ignore_errors=True)
            os.sync()
            t, m = fn()
            times.append(t)
            rss.append(m or 0)
        results[name] = (median(times), max(rss))
    print(f"backup of a {size:.0f} MiB database (median of {runs}; peak RSS via GNU time):")
    base = results["cp + fsync"][0]
    for name, (t, m) in results.items():
        print(f"  {name:28s} {t:7.3f} s  {t / base:5.2f}x cp   {m:7.1f} MiB")
    shutil.rmtree(backups, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--migrations", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--backup-mib", type=int, default=1024)
    ap.add_argument("--only", choices=["apply", "status", "backup"])
    ap.add_argument("--keep-workdir", action="store_true")
    args = ap.parse_args()
    if not os.path.exists(BIN):
        sys.exit("build first: cargo build --release")
    if shutil.which("sqlite3") is None:
        sys.exit("the baselines need the sqlite3 shell: apt-get install sqlite3")
    work = tempfile.mkdtemp(prefix="backstop-bench-", dir=os.environ.get("BENCH_DIR"))
    try:
        if args.only in (None, "apply"):
            bench_apply(work, args.migrations, args.runs)
        if args.only in (None, "status"):
            bench_status(work, args.migrations, max(args.runs, 20))
        if args.only in (None, "backup"):
            bench_backup(work, args.backup_mib, args.runs)
    finally:
        if args.keep_workdir:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
