#!/usr/bin/python3
"""Queries on an attached snapshot against the same queries on the live
database, in one run on the same data; optionally for two builds of the
extension (before/after a change) in the same run.

    /usr/bin/python3 bench/attach.py [--mib 1024] [--queries 2000] [--reps 20]
        [--workdir /tmp/snapbench-scale] [--so build/snapshot.so]
        [--baseline-so OLD.so] [--no-diff]

The claim measured (issue text: "recover just what was lost"): an operator can
query any snapshot in place, `ATTACH 'file:app.db?vfs=snapshot&snapshot=N&mode=ro'`,
at a cost close to the live database's. On a copy of the benchmark database
(make_db.py, real text; cached in the work dir as vfs_scale.py caches it), one
full snapshot is taken (by the build measured: how it lays out its pack is
part of what is measured); then, for the live database (`main`) and the
attached snapshot (`s`):

  attach      median time of ATTACH + the first read of the schema
              (`SELECT count(*) FROM s.sqlite_schema`) + DETACH, --reps times;
  pk          point query by primary key: SELECT name, length(text) FROM
              document WHERE id = ?;
  index       point query through a secondary index: SELECT id, start FROM
              annotation WHERE document_id = ?  (index annotation_document_id);
  scan        full scan: SELECT count(*), sum(length(text)) FROM document
              (every table page and every overflow page).

Point queries run random keys (same keys on both sides), measured four ways:
  hot         one connection, one read transaction, 50 keys queried once
              before the timed passes: everything they need is cached
              (SQLite's page cache, the snapshot's frame cache);
  repeat      the same with --queries keys: a second pass over keys whose
              pages (about one 1 MiB frame each) far exceed the default
              64 MiB frame cache, so most are decompressed again;
  shared      a new connection (and ATTACH) per query while another
              connection keeps the snapshot attached (a web server opening a
              connection per request): SQLite's cache is empty, the
              process-wide frame cache is warm from earlier queries;
  cold        a new connection (and ATTACH) per query and no other reader,
              so neither SQLite's cache nor the frame cache holds anything
              (the kernel's page cache holds the files on both sides: not
              dropped, that needs root and would time the disk, not the code).
The scan runs --scan-reps times on a fresh connection each.

Then, unless --no-diff, snapshot_diff's cost: a change like bench/README.md's
(rows deleted, updated and added) is committed and snapshot 2 taken; the
process CPU time (user + system, which other load on the machine changes far
less than wall time) of snapshot_diff(1, 2), snapshot_diff(2) against the
live database after one more update, and snapshot_diff(1, 1).

Prints, per build, a table of per-query times and the ratio attached/live;
the figures and the command belong in bench/README.md ("Attached snapshots").
"""
import argparse, os, random, resource, shutil, sqlite3, statistics, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from vfs_scale import base_db, remove_db  # noqa: E402  (same cache of base databases)

QUERIES = {
    "pk": "SELECT name, length(text) FROM {s}.document WHERE id = ?",
    "index": "SELECT id, start FROM {s}.annotation WHERE document_id = ?",
}
MODES = ("hot", "repeat", "shared", "cold")
HOT_KEYS = 50


def args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mib", type=int, default=1024)
    p.add_argument("--queries", type=int, default=2000)
    p.add_argument("--reps", type=int, default=20, help="ATTACH repetitions")
    p.add_argument("--scan-reps", type=int, default=3)
    p.add_argument("--workdir", default="/tmp/snapbench-scale")
    p.add_argument("--so", default=os.path.join(HERE, "..", "build", "snapshot.so"))
    p.add_argument("--baseline-so", help="another build, measured first in the same run")
    p.add_argument("--no-diff", action="store_true")
    return p.parse_args()


def connect(path, so):
    con = sqlite3.connect(path, isolation_level=None)
    con.enable_load_extension(True)
    con.load_extension(os.path.abspath(so))
    con.enable_load_extension(False)
    return con


def attach(con, db, sid):
    con.execute(f"ATTACH 'file:{db}?vfs=snapshot&snapshot={sid}&mode=ro' AS s")


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def in_one_transaction(db, so, sid, side, sql, keys):
    """Microseconds per query of a second pass over `keys` on one connection."""
    con = connect(db, so)
    if side == "s":
        attach(con, db, sid)
    # One read transaction: the live side would otherwise pay a lock and a
    # change-counter check per query, which an immutable snapshot never
    # does, and the ratio would measure locking rather than reading pages.
    con.execute("BEGIN")
    for k in keys:
        con.execute(sql, (k,)).fetchall()
    t = time.perf_counter()
    for k in keys:
        con.execute(sql, (k,)).fetchall()
    us = (time.perf_counter() - t) * 1e6 / len(keys)
    con.execute("COMMIT")
    con.close()
    return us


def connection_per_query(db, so, sid, side, sql, keys):
    """Microseconds per query, each on a new connection (only the query timed)."""
    total = 0.0
    for k in keys:
        con = connect(db, so)
        if side == "s":
            attach(con, db, sid)
        t = time.perf_counter()
        con.execute(sql, (k,)).fetchall()
        total += time.perf_counter() - t
        con.close()
    return total * 1e6 / len(keys)


def measure(a, so, db):
    """One build: snapshot, queries, scan, diff. Returns printable lines."""
    remove_db(db)
    shutil.copyfile(base_db(a.workdir, a.mib), db)
    con = connect(db, so)
    t = time.perf_counter()
    sid = con.execute("SELECT snapshot_backup('bench')").fetchone()[0]
    backup_s = time.perf_counter() - t
    store_bytes = sum(os.path.getsize(os.path.join(d, f))
                      for d, _, files in os.walk(db + "-snapshots") for f in files)
    pages = con.execute("PRAGMA page_count").fetchone()[0]
    max_doc = con.execute("SELECT max(id) FROM document").fetchone()[0]
    con.close()

    rng = random.Random(1)
    keys = [rng.randint(1, max_doc) for _ in range(a.queries)]
    few = max(1, len(keys) // 10)

    # The answers must agree, or the timing means nothing.
    con = connect(db, so)
    attach(con, db, sid)
    for q in QUERIES.values():
        for k in keys[:200]:
            live = con.execute(q.format(s="main"), (k,)).fetchall()
            snap = con.execute(q.format(s="s"), (k,)).fetchall()
            if live != snap:
                sys.exit(f"WRONG: {q} key {k}: live {live} snapshot {snap}")
    con.close()

    times = []
    for _ in range(a.reps):
        con = connect(db, so)
        t = time.perf_counter()
        attach(con, db, sid)
        con.execute("SELECT count(*) FROM s.sqlite_schema").fetchone()
        times.append((time.perf_counter() - t) * 1e3)
        con.execute("DETACH s")
        con.close()
    attach_ms = statistics.median(times)

    by = {}
    for name, q in QUERIES.items():
        for side in ("main", "s"):
            sql = q.format(s=side)
            by[(name, side, "hot")] = in_one_transaction(db, so, sid, side, sql, keys[:HOT_KEYS])
            by[(name, side, "repeat")] = in_one_transaction(db, so, sid, side, sql, keys)
            by[(name, side, "cold")] = connection_per_query(db, so, sid, side, sql, keys[:few])
            keeper = connect(db, so)  # keeps the snapshot (and its frame cache) open
            attach(keeper, db, sid)
            connection_per_query(db, so, sid, side, sql, keys[few:2 * few])  # warms the frame cache
            by[(name, side, "shared")] = connection_per_query(db, so, sid, side, sql, keys[few:2 * few])
            keeper.close()

    scan = {}
    for side in ("main", "s"):
        times = []
        for _ in range(a.scan_reps):
            con = connect(db, so)
            if side == "s":
                attach(con, db, sid)
            t = time.perf_counter()
            con.execute(f"SELECT count(*), sum(length(text)) FROM {side}.document").fetchone()
            times.append(time.perf_counter() - t)
            con.close()
        scan[side] = statistics.median(times)

    out = [f"database: {os.path.getsize(db) / 2**20:.0f} MiB, {pages} pages; "
           f"snapshot {sid} taken in {backup_s:.1f} s, store {store_bytes / 1e6:.1f} MB",
           f"ATTACH + schema read + DETACH: median {attach_ms:.1f} ms over {a.reps}",
           f"{'query':6} {'mode':7} {'live':>9} {'snapshot':>10} {'ratio':>7}   (microseconds per query)"]
    for name in QUERIES:
        for mode in MODES:
            live, snap = by[(name, "main", mode)], by[(name, "s", mode)]
            out.append(f"{name:6} {mode:7} {live:9.1f} {snap:10.1f} {snap / live:7.2f}")
    out.append(f"scan   live {scan['main']:.2f} s, snapshot {scan['s']:.2f} s, "
               f"ratio {scan['s'] / scan['main']:.2f}")
    if not a.no_diff:
        out += measure_diff(db, so, sid)
    remove_db(db)
    return out


def measure_diff(db, so, sid):
    con = connect(db, so)
    con.executescript("""
        BEGIN;
        DELETE FROM annotation WHERE document_id BETWEEN 1000 AND 1100;
        UPDATE document SET name = name || '!' WHERE id % 5000 = 0;
        INSERT INTO document(name, text, created)
            SELECT name, text, created FROM document WHERE id BETWEEN 2000 AND 2100;
        COMMIT;""")
    sid2 = con.execute("SELECT snapshot_backup('bench-2')").fetchone()[0]
    con.execute("UPDATE annotation SET validated = 1 - validated WHERE id % 10000 = 0")
    out = []
    for label, call in ((f"snapshot_diff({sid}, {sid2})", f"snapshot_diff({sid}, {sid2})"),
                        (f"snapshot_diff({sid2}) (live)", f"snapshot_diff({sid2})"),
                        (f"snapshot_diff({sid}, {sid})", f"snapshot_diff({sid}, {sid})")):
        c0, t0 = cpu_seconds(), time.perf_counter()
        rows = con.execute(f"SELECT name, pages_changed, rows_added, rows_deleted, rows_changed "
                           f"FROM {call} WHERE pages_changed > 0").fetchall()
        cpu, wall = cpu_seconds() - c0, time.perf_counter() - t0
        summary = ", ".join(f"{r[0]} {r[1]}p" + (f" +{r[2]}/-{r[3]}/~{r[4]}" if r[2] is not None else "")
                            for r in rows) or "no change"
        out.append(f"{label:28} cpu {cpu:6.2f} s  wall {wall:6.2f} s  ({summary})")
    con.close()
    return out


def main():
    a = args()
    os.makedirs(a.workdir, exist_ok=True)
    if a.baseline_so:
        # Each build in a process of its own: a process keeps the first
        # `snapshot` VFS registered, so a second build's would never serve
        # an ATTACH.
        rest = [x for i, x in enumerate(sys.argv[1:]) if x != "--baseline-so" and sys.argv[i] != "--baseline-so"]
        for so in (a.baseline_so, a.so):
            print(f"== {'baseline ' if so == a.baseline_so else ''}{so}", flush=True)
            subprocess.run([sys.executable, os.path.abspath(__file__)] + rest + ["--so", so], check=True)
        return
    db = os.path.join(a.workdir, "attach-live.db")
    print("\n".join(measure(a, a.so, db)), flush=True)


if __name__ == "__main__":
    main()
