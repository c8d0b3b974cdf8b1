#!/usr/bin/python3
"""Queries on an attached snapshot against the same queries on the live
database, in one run on the same data.

    /usr/bin/python3 bench/attach.py [--mib 1024] [--queries 2000] [--reps 20]
        [--workdir /tmp/snapbench-scale] [--so build/snapshot.so]

The claim measured (issue text: "recover just what was lost"): an operator can
query any snapshot in place, `ATTACH 'file:app.db?vfs=snapshot&snapshot=N&mode=ro'`,
at a cost close to the live database's. On a copy of the benchmark database
(make_db.py, real text; cached in the work dir as vfs_scale.py caches it), one
full snapshot is taken; then, for the live database (`main`) and the attached
snapshot (`s`):

  attach      median time of ATTACH + the first read of the schema
              (`SELECT count(*) FROM s.sqlite_schema`) + DETACH, --reps times;
  pk          point query by primary key: SELECT name, length(text) FROM
              document WHERE id = ?;
  index       point query through a secondary index: SELECT id, start FROM
              annotation WHERE document_id = ?  (index annotation_document_id);
  scan        full scan: SELECT count(*), sum(length(text)) FROM document
              (every table page and every overflow page).

Point queries run --queries random keys (same keys on both sides), each
measured two ways:
  warm        one connection and one read transaction for all of them, after a
              first pass over the same keys (SQLite's page cache and the
              reader's frame cache hold what the queries need);
  cold        a new connection (and, for the snapshot, a new ATTACH) per query,
              so neither SQLite's cache nor the reader's holds anything; the
              kernel's page cache holds the files on both sides (not dropped:
              that needs root and would time the disk, not the code).
The scan runs --scan-reps times on a fresh connection each.

Prints a table of per-query times and the ratio attached/live; the figures
and the command belong in bench/README.md ("Attached snapshots").
"""
import argparse, os, random, shutil, sqlite3, statistics, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from vfs_scale import base_db, remove_db  # noqa: E402  (same cache of base databases)


def args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mib", type=int, default=1024)
    p.add_argument("--queries", type=int, default=2000)
    p.add_argument("--reps", type=int, default=20, help="ATTACH repetitions")
    p.add_argument("--scan-reps", type=int, default=3)
    p.add_argument("--workdir", default="/tmp/snapbench-scale")
    p.add_argument("--so", default=os.path.join(HERE, "..", "build", "snapshot.so"))
    return p.parse_args()


def connect(path, so):
    con = sqlite3.connect(path, isolation_level=None)
    con.enable_load_extension(True)
    con.load_extension(os.path.abspath(so))
    con.enable_load_extension(False)
    return con


def attach(con, db, sid):
    con.execute(f"ATTACH 'file:{db}?vfs=snapshot&snapshot={sid}&mode=ro' AS s")


def per_query_us(fn, n):
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1e6 / n


def main():
    a = args()
    os.makedirs(a.workdir, exist_ok=True)
    base = base_db(a.workdir, a.mib)
    db = os.path.join(a.workdir, "attach-live.db")
    remove_db(db)
    shutil.copyfile(base, db)
    con = connect(db, a.so)
    t = time.perf_counter()
    sid = con.execute("SELECT snapshot_backup('bench')").fetchone()[0]
    backup_s = time.perf_counter() - t
    pages = con.execute("PRAGMA page_count").fetchone()[0]
    max_doc = con.execute("SELECT max(id) FROM document").fetchone()[0]
    con.close()

    rng = random.Random(1)
    keys = [rng.randint(1, max_doc) for _ in range(a.queries)]
    queries = {
        "pk": "SELECT name, length(text) FROM {s}.document WHERE id = ?",
        "index": "SELECT id, start FROM {s}.annotation WHERE document_id = ?",
    }

    # The answers must agree, or the timing means nothing.
    con = connect(db, a.so)
    attach(con, db, sid)
    for q in queries.values():
        for k in keys[:200]:
            live = con.execute(q.format(s="main"), (k,)).fetchall()
            snap = con.execute(q.format(s="s"), (k,)).fetchall()
            if live != snap:
                sys.exit(f"WRONG: {q} key {k}: live {live} snapshot {snap}")
    con.close()

    rows = []

    # ATTACH: fresh connection each time, timed from ATTACH to the schema read.
    times = []
    for _ in range(a.reps):
        con = connect(db, a.so)
        t = time.perf_counter()
        attach(con, db, sid)
        con.execute("SELECT count(*) FROM s.sqlite_schema").fetchone()
        times.append((time.perf_counter() - t) * 1e3)
        con.execute("DETACH s")
        con.close()
    attach_ms = statistics.median(times)

    for name, q in queries.items():
        for side in ("main", "s"):
            sql = q.format(s=side)
            # warm
            con = connect(db, a.so)
            if side == "s":
                attach(con, db, sid)
            # One read transaction around the timed pass: the live side would
            # otherwise pay a lock and a change-counter check per query, which
            # an immutable snapshot never does, and the ratio would measure
            # locking rather than reading pages.
            con.execute("BEGIN")
            for k in keys:
                con.execute(sql, (k,)).fetchall()
            warm = per_query_us(lambda: [con.execute(sql, (k,)).fetchall() for k in keys], len(keys))
            con.execute("COMMIT")
            con.close()
            # cold: a new connection (and ATTACH) per query; only the query is timed
            total = 0.0
            for k in keys[: max(1, len(keys) // 10)]:
                con = connect(db, a.so)
                if side == "s":
                    attach(con, db, sid)
                t = time.perf_counter()
                con.execute(sql, (k,)).fetchall()
                total += time.perf_counter() - t
                con.close()
            cold = total * 1e6 / max(1, len(keys) // 10)
            rows.append((name, side, warm, cold))

    scan = {}
    for side in ("main", "s"):
        times = []
        for _ in range(a.scan_reps):
            con = connect(db, a.so)
            if side == "s":
                attach(con, db, sid)
            t = time.perf_counter()
            con.execute(f"SELECT count(*), sum(length(text)) FROM {side}.document").fetchone()
            times.append(time.perf_counter() - t)
            con.close()
        scan[side] = statistics.median(times)

    print(f"database: {os.path.getsize(db) / 2**20:.0f} MiB, {pages} pages; "
          f"snapshot {sid} taken in {backup_s:.1f} s")
    print(f"ATTACH + schema read + DETACH: median {attach_ms:.1f} ms over {a.reps}")
    print(f"{'query':8} {'warm live':>10} {'warm snap':>10} {'ratio':>6}   "
          f"{'cold live':>10} {'cold snap':>10} {'ratio':>6}   (microseconds per query)")
    by = {(n, s): (w, c) for n, s, w, c in rows}
    for name in queries:
        wl, cl = by[(name, "main")]
        ws, cs = by[(name, "s")]
        print(f"{name:8} {wl:10.1f} {ws:10.1f} {ws / wl:6.2f}   {cl:10.1f} {cs:10.1f} {cs / cl:6.2f}")
    print(f"{'scan':8} live {scan['main']:.2f} s, snapshot {scan['s']:.2f} s, "
          f"ratio {scan['s'] / scan['main']:.2f}")
    remove_db(db)


if __name__ == "__main__":
    main()
