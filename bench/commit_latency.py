#!/usr/bin/python3
"""Commit latency of a writer while a full snapshot runs: does a snapshot make
the writers of a live database wait?

    /usr/bin/python3 bench/commit_latency.py [--mb 1074] [--journal delete|wal|both]
        [--seconds 72] [--reps 12] [--interval-ms 5] [--workdir /tmp/snapbench-latency]

A writer process loads the extension, opens the database through the
`snapshot` VFS (`?vfs=snapshot`) and commits small transactions at a steady
pace (BEGIN IMMEDIATE; insert one annotation, update one random document;
COMMIT), timing each whole transaction (BEGIN to COMMIT done). While it runs,
this script alternates, --reps times: a baseline window (--seconds / --reps
seconds, no snapshot; by default 6 s, about as long as a snapshot, so the
two sides are samples of the same size over the same stretches of time),
then a full snapshot into an empty store taken by a separate `sqlite3`
shell process, as cron would:
`sqlite3 DB ".timeout 10000" ".load build/snapshot" "SELECT snapshot_backup()"`.
Transactions that overlap a snapshot's run count as "during"; those inside a
baseline window as "baseline". Targets: p99 during <= 1.2 x p99 baseline,
and no commit during a snapshot over 50 ms. Twelve pairs (about 3 minutes a
mode), because the p99 of a few windows moves with the host: with four, the
ratio of runs of one build moved by +-0.1, as much as the target's margin.
The ratio of each half of the run alone is printed too, to show that noise.

Both processes time with time.perf_counter (CLOCK_MONOTONIC on Linux, one
clock for every process), so the writer's timestamps and the snapshot's
window compare directly. Results: printed, and JSON in --workdir.
Needs Debian's /usr/bin/python3 (its sqlite3 module can load extensions).
"""
import argparse, json, os, random, shutil, signal, sqlite3, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TARGET_P99_RATIO = 1.2
TARGET_STALL_MS = 50.0


# ---------------------------------------------------------------- writer ----

def writer_main(a):
    """Runs in its own process: commit at a steady pace until SIGUSR1."""
    stop = []
    signal.signal(signal.SIGUSR1, lambda *_: stop.append(1))
    loader = sqlite3.connect(":memory:")
    loader.enable_load_extension(True)
    loader.load_extension(a.so)  # registers the `snapshot` VFS for this process
    con = sqlite3.connect("file:" + a.db + "?vfs=snapshot", uri=True, isolation_level=None)
    con.execute("PRAGMA busy_timeout=10000")
    if a.synchronous:
        con.execute(f"PRAGMA synchronous={a.synchronous}")
    sync = con.execute("PRAGMA synchronous").fetchone()[0]
    mode = con.execute("PRAGMA journal_mode").fetchone()[0]
    max_doc = con.execute("SELECT max(id) FROM document").fetchone()[0]
    rng = random.Random(a.seed)
    interval = a.interval_ms / 1000.0
    starts, lats, errors = [], [], []
    skipped = 0
    print(f"ready {mode} {sync} {max_doc}", flush=True)
    clock = time.perf_counter
    nxt = clock()
    while not stop:
        doc = rng.randint(1, max_doc)
        other = rng.randint(1, max_doc)
        t0 = clock()
        try:
            con.execute("BEGIN IMMEDIATE")
            con.execute('INSERT INTO annotation(document_id, start, "end", value, validated) '
                        "VALUES(?, ?, ?, ?, 0)", (doc, 0, 7, "latency"))
            con.execute("UPDATE document SET created = ? WHERE id = ?",
                        ("2026-%02d-%02d" % (rng.randint(1, 12), rng.randint(1, 28)), other))
            con.execute("COMMIT")
        except sqlite3.Error as e:  # counted apart, not as a latency
            errors.append([t0, clock() - t0, str(e)])
            if con.in_transaction:
                con.execute("ROLLBACK")
        else:
            starts.append(t0)
            lats.append(clock() - t0)
        t1 = clock()
        nxt += interval
        if t1 < nxt:
            time.sleep(nxt - t1)
        else:  # behind schedule (a stall): skip the missed slots, do not burst
            skipped += int((t1 - nxt) / interval)
            nxt = t1
    con.close()
    with open(a.out, "w") as f:
        json.dump({"journal_mode": mode, "starts": starts, "lats": lats,
                   "errors": errors, "skipped_slots": skipped}, f)


# ------------------------------------------------------------ controller ----

def pct(xs, p):
    """Nearest-rank percentile of xs (0 < p <= 100)."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    k = max(1, -(-len(s) * p // 100))  # ceil(n * p / 100)
    return s[int(k) - 1]


def summary(lats):
    ms = [x * 1000 for x in lats]
    return {"n": len(ms), "p50_ms": pct(ms, 50), "p99_ms": pct(ms, 99),
            "max_ms": max(ms) if ms else float("nan"),
            "over_50ms": sum(1 for x in ms if x > TARGET_STALL_MS)}


def rm_db_files(db):
    for suffix in ("", "-journal", "-wal", "-shm", "-snaptrack", "-snapcow"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    shutil.rmtree(db + "-snapshots", ignore_errors=True)


def base_db(a):
    """The make_db.py database, cached in the work dir, rebuilt when make_db.py changes."""
    mk = os.path.join(HERE, "make_db.py")
    path = os.path.join(a.workdir, f"base-{a.mb:g}mb.db")
    if not os.path.exists(path) or os.path.getmtime(path) < os.path.getmtime(mk):
        print(f"building {path} with make_db.py --mb {a.mb:g} ...", flush=True)
        subprocess.run(["/usr/bin/python3", mk, path + ".tmp", "--mb", str(a.mb)], check=True)
        os.replace(path + ".tmp", path)
    return path


def run_mode(a, base, journal):
    d = os.path.join(a.workdir, journal)
    os.makedirs(d, exist_ok=True)
    db = os.path.join(d, "bench.db")
    store = os.path.join(a.store_dir, journal) if a.store_dir else db + "-snapshots"
    env = dict(os.environ, SNAPSHOT_DIR=store) if a.store_dir else None
    rm_db_files(db)
    shutil.copyfile(base, db)
    c = sqlite3.connect(db, isolation_level=None)
    got = c.execute(f"PRAGMA journal_mode={journal}").fetchone()[0]
    pages, page_size = (c.execute("PRAGMA page_count").fetchone()[0],
                        c.execute("PRAGMA page_size").fetchone()[0])
    c.close()
    assert got.lower() == journal, got
    subprocess.run(["sync"], check=True)  # no writeback of the copy during the windows

    out = os.path.join(d, "writer.json")
    w = subprocess.Popen(["/usr/bin/python3", os.path.abspath(__file__), "--writer",
                          "--db", db, "--so", a.so, "--out", out,
                          "--interval-ms", str(a.interval_ms), "--seed", str(a.seed),
                          "--synchronous", a.synchronous],
                         stdout=subprocess.PIPE, text=True)
    ready = w.stdout.readline().split()
    if not ready or ready[0] != "ready":
        w.kill()
        sys.exit(f"writer did not start: {ready}")
    synchronous = {"0": "OFF", "1": "NORMAL", "2": "FULL", "3": "EXTRA"}.get(ready[2], ready[2])
    time.sleep(a.warmup)

    shell_timeout = [f".timeout {a.shell_timeout}"] if a.shell_timeout else []
    threads = [f"SELECT snapshot_config('threads', {a.threads});"] if a.threads is not None else []
    base_windows, snaps = [], []
    chunk = a.seconds / a.reps
    try:
        for rep in range(a.reps):
            shutil.rmtree(store, ignore_errors=True)  # a full snapshot: empty store
            if a.store_dir:
                os.makedirs(store)  # SNAPSHOT_DIR must exist
            time.sleep(a.settle)
            b0 = time.perf_counter()
            time.sleep(chunk)
            base_windows.append((b0, time.perf_counter()))
            s0 = time.perf_counter()
            if a.interferer:  # diagnosis: some other load in the snapshot's place
                r = subprocess.run(["sh", "-c", a.interferer.format(db=db, store=store)],
                                   capture_output=True, text=True)
            else:
                r = subprocess.run([a.sqlite3, db] + shell_timeout + [f".load {a.so_noext}"] +
                                   threads + ["SELECT snapshot_backup();"],
                                   capture_output=True, text=True, env=env)
            s1 = time.perf_counter()
            if r.returncode != 0:
                raise RuntimeError(f"snapshot failed ({r.returncode}): {r.stderr.strip()}")
            snaps.append({"start": s0, "end": s1, "seconds": s1 - s0,
                          "id": (r.stdout.split() or ["-"])[-1], "store_mb": du(store) / 1e6})
            print(f"  {journal}: snapshot {rep + 1}/{a.reps}: {s1 - s0:.2f} s", flush=True)
        time.sleep(a.settle)
    finally:
        w.send_signal(signal.SIGUSR1)
        w.wait(timeout=120)
    rec = json.load(open(out))

    base_l, during_l, during_at = [], [], []
    half = (a.reps + 1) // 2  # windows and snapshots 0..half-1 are the first half
    halves = {"base": ([], []), "during": ([], [])}
    for t, l in zip(rec["starts"], rec["lats"]):
        for i, (b0, b1) in enumerate(base_windows):
            if b0 <= t and t + l <= b1:
                base_l.append(l)
                halves["base"][i >= half].append(l)
                break
        for i, s in enumerate(snaps):
            if t < s["end"] and t + l > s["start"]:
                during_l.append(l)
                halves["during"][i >= half].append(l)
                # When in its snapshot each commit started, to see which
                # phase (pin, reading, publishing) the slow ones come from.
                during_at.append([i, t - s["start"], l * 1000])
                break
    bs, ds = summary(base_l), summary(during_l)
    # Share of the baseline windows spent inside a transaction: near 1 means the
    # writer cannot keep the pace (slow fsync, busy machine) and starves readers.
    bs["busy_share"] = sum(base_l) / sum(b1 - b0 for b0, b1 in base_windows)
    ratio = ds["p99_ms"] / bs["p99_ms"] if bs["n"] and ds["n"] else float("nan")
    # The same ratio from each half of the run alone: how far apart they are
    # shows how much one estimate can be trusted.
    half_ratios = [pct(halves["during"][k], 99) / pct(halves["base"][k], 99)
                   if halves["during"][k] and halves["base"][k] else float("nan") for k in (0, 1)]
    during_max = ds["max_ms"]
    return {
        "journal_mode": rec["journal_mode"], "db": db, "pages": pages, "page_size": page_size,
        "db_mb": pages * page_size / 1e6, "interval_ms": a.interval_ms, "synchronous": synchronous,
        "snapshots": snaps, "baseline": bs, "during": ds, "p99_ratio": ratio,
        "p99_ratio_halves": half_ratios,
        "pass_p99": ratio <= TARGET_P99_RATIO,
        "pass_stall": ds["n"] > 0 and during_max <= TARGET_STALL_MS,
        "writer_errors": rec["errors"], "skipped_slots": rec["skipped_slots"],
        "commits_total": len(rec["lats"]),
        "baseline_lats_ms": [x * 1000 for x in base_l],
        "during_lats_ms": [x * 1000 for x in during_l],
        "during_commits": during_at,  # [snapshot index, seconds after its start, ms]
    }


def du(path):
    total = 0
    for dp, _, fs in os.walk(path):
        for f in fs:
            total += os.path.getsize(os.path.join(dp, f))
    return total


def report(res):
    for r in res:
        b, d = r["baseline"], r["during"]
        secs = [s["seconds"] for s in r["snapshots"]]
        ok = r["pass_p99"] and r["pass_stall"]
        print(f"\n{r['journal_mode'].upper()}: {r['db_mb']:.0f} MB ({r['pages']} pages), "
              f"synchronous={r['synchronous']}, one transaction every {r['interval_ms']:g} ms; "
              f"full snapshot {min(secs):.2f}-{max(secs):.2f} s ({len(secs)}x, "
              f"store {r['snapshots'][-1]['store_mb']:.0f} MB)")
        print(f"  writer: {r['commits_total']} commits, {b['busy_share']:.0%} of baseline time "
              f"in transactions, {r['skipped_slots']} slots skipped behind schedule")
        print(f"  {'':18}{'n':>6}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'>50 ms':>8}")
        for name, s in (("no snapshot", b), ("during snapshot", d)):
            print(f"  {name:18}{s['n']:6d}{s['p50_ms']:9.2f}{s['p99_ms']:9.2f}"
                  f"{s['max_ms']:9.2f}{s['over_50ms']:8d}")
        print(f"  p99 ratio {r['p99_ratio']:.2f} (target <= {TARGET_P99_RATIO}): "
              f"{'PASS' if r['pass_p99'] else 'FAIL'}; "
              f"commits over {TARGET_STALL_MS:g} ms during snapshot: {d['over_50ms']}, "
              f"max {d['max_ms']:.1f} ms (target none): {'PASS' if r['pass_stall'] else 'FAIL'}"
              f"  => {'PASS' if ok else 'FAIL'}")
        h = r["p99_ratio_halves"]
        print(f"  p99 ratio of each half of the run alone: {h[0]:.2f}, {h[1]:.2f} "
              f"(their spread is the estimate's noise)")
        if b["busy_share"] > 0.5:
            print(f"  WARNING: the writer spent {b['busy_share']:.0%} of the baseline inside "
                  f"transactions: it barely keeps the pace (slow fsync or a busy machine), "
                  f"so these numbers say little; try a larger --interval-ms")
        if r["writer_errors"]:
            print(f"  writer errors: {len(r['writer_errors'])}, first: {r['writer_errors'][0][2]}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mb", type=float, default=1074, help="database size for make_db.py (10^6 B)")
    p.add_argument("--workdir", default="/tmp/snapbench-latency")
    p.add_argument("--journal", choices=("delete", "wal", "both"), default="both")
    p.add_argument("--seconds", type=float, default=72, help="total baseline time per mode")
    p.add_argument("--reps", type=int, default=12, help="snapshots per mode (and baseline windows)")
    p.add_argument("--interval-ms", type=float, default=5, help="one transaction every N ms")
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--settle", type=float, default=0.5)
    p.add_argument("--so", default=os.path.join(ROOT, "build", "snapshot.so"))
    p.add_argument("--sqlite3", default="/usr/bin/sqlite3")
    p.add_argument("--shell-timeout", type=int, default=10000,
                   help="ms; the shell's .timeout before .load (0: none, see bench/README.md)")
    p.add_argument("--synchronous", default="", choices=("", "off", "normal", "full", "extra"),
                   help="the writer's PRAGMA synchronous (default: SQLite's, FULL)")
    p.add_argument("--threads", type=int, help="the snapshot's compression threads "
                   "(snapshot_config('threads', N); default the extension's, 2)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--store-dir", help="keep the store under this directory (SNAPSHOT_DIR) "
                   "instead of beside the database: on another device (say /dev/shm) the "
                   "snapshot's writes no longer share the writer's disk")
    p.add_argument("--interferer", help="diagnosis: a shell command run in the snapshot's "
                   "place ({db} and {store} are replaced), to find which part of a snapshot "
                   "(reading, compressing, writing) delays the writer")
    # internal: the writer process
    p.add_argument("--writer", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--db", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    a = p.parse_args()
    a.so = os.path.abspath(a.so)
    a.so_noext = a.so[:-3] if a.so.endswith(".so") else a.so
    if a.writer:
        return writer_main(a)
    if not os.path.exists(a.so):
        sys.exit(f"{a.so} not found: build first")
    if os.path.abspath(a.workdir).startswith(ROOT + os.sep):
        sys.exit("--workdir must be outside the repository")
    os.makedirs(a.workdir, exist_ok=True)
    base = base_db(a)
    modes = ("delete", "wal") if a.journal == "both" else (a.journal,)
    commit = subprocess.run(["git", "-C", ROOT, "log", "-1", "--format=%h %s"],
                            capture_output=True, text=True).stdout.strip()
    res = [run_mode(a, base, m) for m in modes]
    if a.store_dir or a.interferer:
        print(f"\n(store in {a.store_dir})" if a.store_dir else "",
              f"\n(instead of a snapshot: {a.interferer})" if a.interferer else "")
    report(res)
    out = os.path.join(a.workdir, "commit_latency.json")
    with open(out, "w") as f:
        json.dump({"commit": commit, "mb": a.mb, "store_dir": a.store_dir, "interferer": a.interferer,
                   "threads": a.threads, "synchronous": a.synchronous, "seconds": a.seconds, "reps": a.reps,
                   "interval_ms": a.interval_ms, "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                   "results": res}, f, indent=1)
    print(f"\n(commit {commit}; JSON with every latency: {out})")
    return 0 if all(r["pass_p99"] and r["pass_stall"] for r in res) else 1


if __name__ == "__main__":
    sys.exit(main())
