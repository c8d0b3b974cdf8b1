#!/usr/bin/python3
"""snapshot_diff(a) against the live database: its cost after a small change,
and how long a writer's commit waits for it, for one or two builds of the
extension in one run.

    /usr/bin/python3 bench/live_diff.py [--mib 300] [--journal delete|wal]
        [--reps 3] [--workdir /tmp/snapbench-scale] [--so build/snapshot.so]
        [--baseline-so OLD.so] [--untracked]

On a copy of the benchmark database (make_db.py, real text; cached in the
work dir as vfs_scale.py caches it), opened through the snapshot VFS as an
application would: snapshot 1 (full), then a small change (101 documents'
annotations deleted, every 5,000th document renamed, 101 documents added).
snapshot_tracking() is printed: "tracked" means the diff reads only the
marked pages (--untracked: one more commit is made by a connection that
bypasses the VFS, so the tracking is not trusted and the diff reads every
page, as every live diff did before). Then:

  alone    --reps runs of SELECT ... FROM snapshot_diff(1): the process CPU
           time (user + system: what other load changes least) and the wall
           time, medians;
  writer   a writer process commits one-row updates back to back (busy
           timeout 60 s) while snapshot_diff(1) runs once: the longest
           commit is about how long the diff's statement held the database
           locked against writers (in rollback-journal mode its SHARED lock
           lasts the whole statement; in WAL mode writers never wait for a
           reader, only for a moment's write lock the diff's pin takes).

The figures and the command belong in bench/README.md ("snapshot_diff").
"""
import argparse, os, resource, select, shutil, sqlite3, statistics, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from vfs_scale import base_db, remove_db  # noqa: E402  (same cache of base databases)

CHANGE = """
    BEGIN;
    DELETE FROM annotation WHERE document_id BETWEEN 1000 AND 1100;
    UPDATE document SET name = name || '!' WHERE id % 5000 = 0;
    INSERT INTO document(name, text, created)
        SELECT name, text, created FROM document WHERE id BETWEEN 2000 AND 2100;
    COMMIT;"""


def args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mib", type=int, default=300)
    p.add_argument("--journal", default="delete")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--workdir", default="/tmp/snapbench-scale")
    p.add_argument("--so", default=os.path.join(HERE, "..", "build", "snapshot.so"))
    p.add_argument("--baseline-so", help="another build, measured first in the same run")
    p.add_argument("--untracked", action="store_true", help="a commit without the VFS first: every page is read")
    p.add_argument("--writer", help=argparse.SUPPRESS)  # internal: run as the writer process
    return p.parse_args()


def connect(path, so):
    """Through the snapshot VFS (the extension registers it when loaded)."""
    loader = sqlite3.connect(":memory:")
    loader.enable_load_extension(True)
    loader.load_extension(os.path.abspath(so))
    con = sqlite3.connect(f"file:{path}?vfs=snapshot", uri=True, isolation_level=None, timeout=60)
    con.enable_load_extension(True)
    con.load_extension(os.path.abspath(so))
    loader.close()
    return con


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_writer(a):
    """Commits until stdin closes; prints the number of commits and the
    longest one, in seconds."""
    con = connect(a.writer, a.so)
    print("ready", flush=True)
    longest, n, i = 0.0, 0, 0
    while not select.select([sys.stdin], [], [], 0)[0]:  # readable (at EOF) once the parent closes it
        i += 1
        t = time.perf_counter()
        con.execute("UPDATE document SET created = created WHERE id = ?", (1 + i % 1000,))
        longest = max(longest, time.perf_counter() - t)
        n += 1
    print(n, longest, flush=True)


def diff(con):
    c0, t0 = cpu_seconds(), time.perf_counter()
    rows = con.execute("SELECT name, pages_changed, rows_added, rows_deleted, rows_changed "
                       "FROM snapshot_diff(1) WHERE pages_changed > 0").fetchall()
    return cpu_seconds() - c0, time.perf_counter() - t0, rows


def measure(a, db):
    remove_db(db)
    shutil.copyfile(base_db(a.workdir, a.mib), db)
    con = connect(db, a.so)
    con.execute(f"PRAGMA journal_mode={a.journal}")
    pages = con.execute("PRAGMA page_count").fetchone()[0]
    con.execute("SELECT snapshot_backup('bench')").fetchone()
    con.executescript(CHANGE)
    if a.untracked:
        plain = sqlite3.connect(db, isolation_level=None)
        # A change and its undoing: the content stays, the commits are real.
        plain.execute("UPDATE document SET name = name || '?' WHERE id = 1")
        plain.execute("UPDATE document SET name = substr(name, 1, length(name) - 1) WHERE id = 1")
        plain.close()
    out = [f"database {os.path.getsize(db) / 1e6:.1f} MB, {pages} pages, journal_mode={a.journal}",
           f"snapshot_tracking(): {con.execute('SELECT snapshot_tracking()').fetchone()[0]}"]
    runs = [diff(con) for _ in range(a.reps)]
    rows = runs[0][2]
    summary = ", ".join(f"{r[0]} {r[1]}p" + (f" +{r[2]}/-{r[3]}/~{r[4]}" if r[2] is not None else "")
                        for r in rows) or "no change"
    out.append(f"alone   cpu {statistics.median(r[0] for r in runs):6.2f} s  "
               f"wall {statistics.median(r[1] for r in runs):6.2f} s  (median of {a.reps}; {summary})")
    writer = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--writer", db, "--so", a.so],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    writer.stdout.readline()  # ready
    time.sleep(1.0)
    cpu, wall, _ = diff(con)
    time.sleep(1.0)
    writer.stdin.close()
    n, longest = writer.stdout.read().split()
    writer.wait()
    out.append(f"writer  cpu {cpu:6.2f} s  wall {wall:6.2f} s  longest of the writer's {n} commits "
               f"{float(longest) * 1000:8.1f} ms")
    con.close()
    remove_db(db)
    return out


def main():
    a = args()
    if a.writer:
        return run_writer(a)
    os.makedirs(a.workdir, exist_ok=True)
    if a.baseline_so:
        # Each build in a process of its own: a process keeps the first
        # `snapshot` VFS registered.
        rest = [x for i, x in enumerate(sys.argv[1:]) if x != "--baseline-so" and sys.argv[i] != "--baseline-so"]
        for so in (a.baseline_so, a.so):
            print(f"== {'baseline ' if so == a.baseline_so else ''}{so}", flush=True)
            subprocess.run([sys.executable, os.path.abspath(__file__)] + rest + ["--so", so], check=True)
        return
    print("\n".join(measure(a, os.path.join(a.workdir, "live-diff.db"))), flush=True)


if __name__ == "__main__":
    main()
