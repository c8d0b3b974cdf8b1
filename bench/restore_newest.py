#!/usr/bin/python3
"""Restoring the newest of many incremental snapshots against a full one.

    nice /usr/bin/python3 bench/restore_newest.py --dir /tmp/snapbench/compaction \\
        --so build/snapshot.so [--baseline-so /tmp/old/snapshot.so] [--reps 15]

Reads a directory that bench/compaction.py left (its app.db with a store of
thousands of tracked snapshots, and single/app.db, the same database with a
store holding one full snapshot) and times `snapshot_restore_to` of the
newest snapshot of the first store and of the only snapshot of the second,
alternating the two, so that the machine's load weighs on both alike. With
--baseline-so it does the same with that build first (one run, one machine:
before and after). Reports the median wall time and the median CPU time of
the process (the restore runs inside it), and their ratios (issue target:
newest <= 1.2x full). Needs Debian's /usr/bin/python3 (it can load
extensions); each build is loaded in a process of its own.
"""
import argparse, json, os, statistics, subprocess, sys, time

CHILD = r"""
import json, os, sqlite3, sys, time
so, d, reps = sys.argv[1], sys.argv[2], int(sys.argv[3])
l = sqlite3.connect(":memory:"); l.enable_load_extension(True); l.load_extension(os.path.abspath(so).removesuffix(".so"))
def conn(db): return sqlite3.connect("file:" + db + "?vfs=snapshot", uri=True, isolation_level=None)
many, one = conn(os.path.join(d, "app.db")), conn(os.path.join(d, "single", "app.db"))
newest = many.execute("SELECT max(id) FROM snapshot_list").fetchone()[0]
full = one.execute("SELECT max(id) FROM snapshot_list").fetchone()[0]
out = os.path.join(d, "restored-%d.db" % os.getpid())
r = {"newest": newest, "snapshots": many.execute("SELECT count(*) FROM snapshot_list").fetchone()[0],
     "wall": {"full": [], "newest": []}, "cpu": {"full": [], "newest": []}}
def restore(c, sid, k):
    if os.path.exists(out): os.remove(out)
    t, p = time.perf_counter(), time.process_time()
    c.execute("SELECT snapshot_restore_to(?, ?)", (out, sid)).fetchone()
    r["wall"][k].append(time.perf_counter() - t); r["cpu"][k].append(time.process_time() - p)
for _ in range(reps):
    restore(one, full, "full"); restore(many, newest, "newest")
os.remove(out)
print(json.dumps(r))
"""


def run(so, d, reps):
    p = subprocess.run([sys.executable, "-c", CHILD, so, d, str(reps)], check=True, capture_output=True, text=True)
    return json.loads(p.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/tmp/snapbench/compaction")
    ap.add_argument("--so", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "snapshot.so"))
    ap.add_argument("--baseline-so")
    ap.add_argument("--reps", type=int, default=15)
    a = ap.parse_args()
    builds = ([("baseline", a.baseline_so)] if a.baseline_so else []) + [("this build", a.so)]
    print(f"database: {os.path.getsize(os.path.join(a.dir, 'app.db'))} bytes; {a.reps} restores of each, alternating")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from compaction import newest_layout
    pages, n_frames, held = newest_layout(os.path.join(a.dir, "app.db-snapshots"))
    print(f"the newest snapshot's {pages} stored pages sit in {n_frames} frames holding {held} pages "
          f"({held / pages:.2f}x what its restore needs)")
    for name, so in builds:
        r = run(so, a.dir, a.reps)
        med = {k: {w: statistics.median(r[k][w]) * 1000 for w in ("full", "newest")} for k in ("wall", "cpu")}
        print(f"{name} ({so}): newest of {r['snapshots']} snapshots (id {r['newest']}) against a single full one: "
              f"wall {med['wall']['newest']:.1f} / {med['wall']['full']:.1f} ms = "
              f"{med['wall']['newest'] / med['wall']['full']:.2f}x; "
              f"cpu {med['cpu']['newest']:.1f} / {med['cpu']['full']:.1f} ms = "
              f"{med['cpu']['newest'] / med['cpu']['full']:.2f}x (target <= 1.2)", flush=True)


if __name__ == "__main__":
    main()
