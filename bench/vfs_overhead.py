#!/usr/bin/python3
"""What the `snapshot` VFS costs with no snapshot running: it sits in the write
path of every tracked connection, so its cost must stay small (target: 3%).

    bench/vfs_overhead.py [--so build/snapshot.so] [--reps 31]

Runs the same write-heavy workloads on a fresh database through the default
VFS and through `?vfs=snapshot`, in pairs (ABBA order), and prints each
side's median time and the median of the pairs' ratios. synchronous=OFF, so
that fsync (whose time varies far more than the VFS costs) does not hide
what the VFS adds. Each run starts after a first snapshot, so the VFS side
is tracking (marks, change-counter and WAL-frame records) while it is
measured. Workloads: many small transactions, a bulk insert, and a mixed
read/write loop.
"""
import argparse, os, shutil, sqlite3, statistics, tempfile, time

p = argparse.ArgumentParser()
p.add_argument("--so", default=os.path.join(os.path.dirname(__file__), "..", "build", "snapshot.so"))
p.add_argument("--reps", type=int, default=31)
args = p.parse_args()

loader = sqlite3.connect(":memory:")
loader.enable_load_extension(True)
loader.load_extension(os.path.abspath(args.so))  # registers the VFS for the process

TEXT = open("/usr/share/common-licenses/GPL-3").read()


def connect(path, vfs):
    uri = f"file:{path}" + ("?vfs=snapshot" if vfs else "")
    return sqlite3.connect(uri, uri=True, isolation_level=None)


def small_transactions(db):
    # 10,000: with 3,000 (about 30 ms in WAL mode) the ratio moved by several
    # percent from run to run, as much as the target.
    for i in range(10000):
        db.execute("INSERT INTO doc(body) VALUES (?)", (TEXT[i % 5000:(i % 5000) + 300],))


def bulk_insert(db):
    db.execute("BEGIN")
    db.executemany("INSERT INTO doc(body) VALUES (?)", ((TEXT[i % 9000:(i % 9000) + 400],) for i in range(60000)))
    db.execute("COMMIT")


def mixed(db):
    for i in range(3000):
        db.execute("SELECT count(*), max(length(body)) FROM doc WHERE id BETWEEN ? AND ?", (i * 7, i * 7 + 50)).fetchone()
        db.execute("UPDATE doc SET body = body || 'x' WHERE id = ?", (i * 13 % 60000 + 1,))


def run(workload, vfs, journal):
    d = tempfile.mkdtemp(prefix="vfsbench-")
    try:
        db = connect(os.path.join(d, "b.db"), vfs)
        db.execute(f"PRAGMA journal_mode={journal}")
        # No fsync: on this kind of disk an fsync varies by milliseconds and
        # would hide the VFS's own cost (with fsync the ratio only nears 1).
        db.execute("PRAGMA synchronous=OFF")
        db.execute("CREATE TABLE doc(id INTEGER PRIMARY KEY, body TEXT)")
        if workload is mixed:
            bulk_insert(db)
        # A first snapshot (on both sides, so both pay for the same store):
        # through the VFS it starts tracking, so every check a tracked
        # writer makes is in the measurement.
        db.execute("SELECT snapshot_backup()").fetchone()
        t = time.perf_counter()
        workload(db)
        elapsed = time.perf_counter() - t
        db.close()
        return elapsed
    finally:
        shutil.rmtree(d)


print(f"{'workload':28} {'default VFS':>12} {'snapshot VFS':>13} {'ratio':>7}")
for journal in ("wal", "delete"):
    for workload in (small_transactions, bulk_insert, mixed):
        base, shim = [], []
        for rep in range(args.reps):
            # Alternate, and swap the order every other pair (ABBA), so that
            # drift and anything periodic on the machine hit both sides alike.
            if rep % 2 == 0:
                base.append(run(workload, False, journal))
                shim.append(run(workload, True, journal))
            else:
                shim.append(run(workload, True, journal))
                base.append(run(workload, False, journal))
        b, s = statistics.median(base), statistics.median(shim)
        # The ratio is the median of each pair's ratio: a slow stretch of the
        # disk then moves both halves of a pair, not one side's median.
        ratio = statistics.median(y / x for x, y in zip(base, shim))
        print(f"{workload.__name__ + ' (' + journal + ')':28} {b:11.3f}s {s:12.3f}s {ratio:7.3f}")
