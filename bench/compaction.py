#!/usr/bin/python3
"""A store after many snapshots of small changes: files, bytes, listing,
backup and restore cost, against the same store after a few snapshots.

    /usr/bin/python3 bench/compaction.py [--snapshots 10000] [--mb 2] [--so build/snapshot.so]

Builds a small database of real text with bench/make_db.py, then through the
`snapshot` VFS and the real SQL functions commits a one-row UPDATE and takes
`snapshot_backup()` N times (a tracked incremental snapshot each). Reports:
files in the store (snapshots/ + packs/) against N, stored bytes against the
sum of what the snapshots added (snapshot_list's bytes_new), the time of
`SELECT * FROM snapshot_list`, the time of a backup at 10 snapshots and at N,
the spread of every backup's time (snapshot_backup() runs a bounded
compaction round after publishing its snapshot, when the store needs one),
and restoring the newest snapshot against restoring the first (full) one of
the same database. Needs Debian's /usr/bin/python3 (it can load extensions).
The store is left in --dir for other benches (restore) to read.
"""
import argparse, os, random, shutil, sqlite3, statistics, struct, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))


def median_time(fn, reps):
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def store_files(store):
    return sum(len(os.listdir(os.path.join(store, d))) for d in ("snapshots", "packs"))


def store_bytes(store):
    total = 0
    for d in ("snapshots", "packs"):
        for n in os.listdir(os.path.join(store, d)):
            total += os.path.getsize(os.path.join(store, d, n))
    return total


def newest_layout(store):
    """Where the newest snapshot's pages sit: (pages it stores, frames holding
    them, pages those frames hold). A restore decodes every page of every
    frame it reads, so pages held / pages needed is its decoding overhead
    (1.0: dense). Reads the newest loose manifest and the packs' frame tables
    (docs/FORMAT.md sections 4 and 5)."""
    snaps = os.path.join(store, "snapshots")
    newest = max(n for n in os.listdir(snaps) if n.endswith(".snap"))
    m = open(os.path.join(snaps, newest), "rb").read()
    version = struct.unpack_from("<I", m, 8)[0]
    at = 60 if version == 1 else 68
    label_len = struct.unpack_from("<I", m, at - 4)[0]
    n_extents = struct.unpack_from("<I", m, at + label_len)[0]
    frames = {}  # pack -> list of (first_index, page_count)
    needed = {}  # (pack, frame) -> pages
    pages = 0
    for k in range(n_extents):
        _, count, pack, first = struct.unpack_from("<IIQI", m, at + label_len + 4 + 20 * k)
        if pack == 0:
            continue
        if pack not in frames:
            p = open(os.path.join(store, "packs", "%010d.pack" % pack), "rb").read()
            index_offset, n_frames = struct.unpack_from("<QI", p, len(p) - 40)
            table, start = [], 0
            for f in range(n_frames):
                c = struct.unpack_from("<I", p, index_offset + 24 * f + 12)[0]
                table.append((start, c))
                start += c
            frames[pack] = table
        for i in range(first, first + count):
            f = next(j for j, (s, c) in enumerate(frames[pack]) if s <= i < s + c)
            needed[(pack, f)] = needed.get((pack, f), 0) + 1
        pages += count
    held = sum(frames[p][f][1] for p, f in needed)
    return pages, len(needed), held


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--snapshots", type=int, default=10000)
    ap.add_argument("--mb", type=float, default=2)
    ap.add_argument("--so", default=os.path.join(HERE, "..", "build", "snapshot.so"))
    ap.add_argument("--dir", default="/tmp/snapbench/compaction")
    a = ap.parse_args()
    shutil.rmtree(a.dir, ignore_errors=True)
    os.makedirs(a.dir)
    db = os.path.join(a.dir, "app.db")
    store = db + "-snapshots"
    subprocess.run([sys.executable, os.path.join(HERE, "make_db.py"), db, "--mb", str(a.mb)], check=True,
                   stdout=subprocess.DEVNULL)
    loader = sqlite3.connect(":memory:")
    loader.enable_load_extension(True)
    loader.load_extension(os.path.abspath(a.so).removesuffix(".so"))
    con = sqlite3.connect("file:" + db + "?vfs=snapshot", uri=True, isolation_level=None)
    n_docs = con.execute("SELECT max(id) FROM document").fetchone()[0]
    rng = random.Random(1)

    def change_and_backup(i):
        con.execute("UPDATE document SET created = ? WHERE id = ?", (i, rng.randint(1, n_docs)))
        return con.execute("SELECT snapshot_backup()").fetchone()[0]

    first = con.execute("SELECT snapshot_backup('full')").fetchone()[0]
    t0 = time.perf_counter()
    backup_at_10 = []
    all_backups = []  # each includes the compaction round snapshot_backup() runs after publishing, if any
    for i in range(1, a.snapshots):
        t = time.perf_counter()
        change_and_backup(i)
        all_backups.append(time.perf_counter() - t)
        if 5 <= i < 15:
            backup_at_10.append(all_backups[-1])
        if i % 1000 == 0:
            print(f"  {i} snapshots, {time.perf_counter() - t0:.0f} s, {store_files(store)} files", flush=True)
    took = time.perf_counter() - t0
    backup_at_n = [median_time(lambda: change_and_backup(a.snapshots + 1 + k), 1) for k in range(10)]
    newest = con.execute("SELECT max(id) FROM snapshot_list").fetchone()[0]
    n_listed = con.execute("SELECT count(*) FROM snapshot_list").fetchone()[0]
    added = con.execute("SELECT sum(bytes_new) FROM snapshot_list").fetchone()[0]
    list_s = median_time(lambda: con.execute("SELECT * FROM snapshot_list").fetchall(), 5)
    files, stored = store_files(store), store_bytes(store)

    # The same database, in a store of its own holding one full snapshot.
    single = os.path.join(a.dir, "single")
    os.makedirs(single)
    shutil.copyfile(db, os.path.join(single, "app.db"))
    con1 = sqlite3.connect("file:" + os.path.join(single, "app.db") + "?vfs=snapshot", uri=True, isolation_level=None)
    full = con1.execute("SELECT snapshot_backup('full')").fetchone()[0]

    def restore(c, sid):
        out = os.path.join(a.dir, "restored.db")
        if os.path.exists(out):
            os.remove(out)
        c.execute("SELECT snapshot_restore_to(?, ?)", (out, sid)).fetchone()

    pages, n_frames, held = newest_layout(store)
    restore_full = median_time(lambda: restore(con1, full), 5)
    restore_newest = median_time(lambda: restore(con, newest), 5)
    restore_first = median_time(lambda: restore(con, first), 5)
    db_bytes = os.path.getsize(db)
    print(f"database: {db_bytes} bytes; {n_listed} snapshots taken in {took:.0f} s "
          f"({1000 * took / max(1, a.snapshots - 1):.1f} ms each)")
    print(f"files in snapshots/ + packs/: {files} (target <= 100)")
    print(f"stored bytes: {stored}; sum of bytes_new: {added}; ratio {stored / added:.3f} (target <= 1.2)")
    print(f"SELECT * FROM snapshot_list: {1000 * list_s:.1f} ms (target < 50)")
    q = statistics.quantiles(all_backups, n=100)
    print(f"snapshot_backup() over the run, compaction rounds included: p50 {1000 * q[49]:.1f} ms, "
          f"p99 {1000 * q[98]:.1f} ms, max {1000 * max(all_backups):.1f} ms")
    m10, mn = statistics.median(backup_at_10), statistics.median(backup_at_n)
    print(f"snapshot_backup() of a one-row change: {1000 * m10:.1f} ms at 10 snapshots, "
          f"{1000 * mn:.1f} ms at {n_listed} ({mn / m10:.2f}x, target <= 2)")
    print(f"snapshot_restore_to: newest {1000 * restore_newest:.1f} ms; the same database's only snapshot in a "
          f"store of its own {1000 * restore_full:.1f} ms ({restore_newest / restore_full:.2f}x, target <= 1.2); "
          f"the first (full) snapshot of the compacted store {1000 * restore_first:.1f} ms")
    print(f"the newest snapshot's {pages} stored pages sit in {n_frames} frames holding {held} pages "
          f"({held / pages:.2f}x what its restore needs)")


if __name__ == "__main__":
    main()
