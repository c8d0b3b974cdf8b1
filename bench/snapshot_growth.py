#!/usr/bin/python3
"""What each snapshot of a continuous.py run stored, per commit it covered.

    /usr/bin/python3 bench/snapshot_growth.py --run /tmp/snapbench-continuous/delete-auto \\
        [--so build/snapshot.so] [--split 34]

Reads the run's store through the extension (snapshot_list: pages_new,
bytes_new, created, committed) and its writers' commit times
(writer*.json, as continuous.py leaves them), and prints, per snapshot, the
pages it stored and how long after the newest commit it holds it was
published (created - committed: about the time the snapshot took, since
the writers commit continuously); then, for the snapshots before and after
--split (a snapshot id, e.g. the first id a compaction allocated), their
spacing and what they stored per commit. Work on a copy of the run
(cp -r bench.db bench.db-snapshots elsewhere) when its writers may still run.
"""
import argparse, bisect, calendar, glob, json, os, sqlite3, time

HERE = os.path.dirname(os.path.abspath(__file__))


def epoch(iso):  # '2026-12-05T12:22:17.800Z'
    return calendar.timegm(time.strptime(iso[:19], "%Y-%m-%dT%H:%M:%S")) + float(iso[19:-1] or 0)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--run", required=True, help="a continuous.py run directory (bench.db, writer*.json)")
    p.add_argument("--so", default=os.path.join(os.path.dirname(HERE), "build", "snapshot.so"))
    p.add_argument("--split", type=int, default=0, help="summarize the snapshots before and after this id")
    a = p.parse_args()
    con = sqlite3.connect(os.path.join(a.run, "bench.db"))
    con.enable_load_extension(True)
    con.load_extension(a.so)
    rows = con.execute("SELECT id, created, committed, pages_new, bytes_new FROM snapshot_list ORDER BY id").fetchall()
    commits = sorted(t for f in glob.glob(os.path.join(a.run, "writer*.json"))
                     for _seq, t, _dur in json.load(open(f))["commits"])
    print("id  pages_new  bytes_new  created-committed_s")
    for i, created, committed, pages, nbytes in rows:
        lag = epoch(created) - epoch(committed) if committed else float("nan")
        print(f"{i:3d} {pages:9d} {nbytes:10d} {lag:8.2f}")
    if not a.split:
        return
    # The first snapshot (every page) is no one's increment.
    for name, part in (("before", [r for r in rows[1:] if r[0] < a.split]), ("after", [r for r in rows if r[0] >= a.split])):
        if len(part) < 2:
            continue
        first, rest = part[0], part[1:]  # spacing and commits are counted from the first of each part
        n = bisect.bisect_right(commits, epoch(rest[-1][2])) - bisect.bisect_right(commits, epoch(first[2]))
        span = epoch(rest[-1][1]) - epoch(first[1])
        pages = sum(r[3] for r in rest)
        nbytes = sum(r[4] for r in rest)
        lag = sum(epoch(r[1]) - epoch(r[2]) for r in rest) / len(rest)
        print(f"{name} {a.split}: snapshots {rest[0][0]}-{rest[-1][0]}, one every {span / len(rest):.2f} s, "
              f"{pages / len(rest):.0f} pages and {nbytes / len(rest) / 1e3:.0f} KB each, {n} commits: "
              f"{pages / max(n, 1):.2f} pages and {nbytes / max(n, 1):.0f} bytes per commit, "
              f"created-committed {lag:.2f} s on average")


if __name__ == "__main__":
    main()
