#!/usr/bin/python3
"""Continuous protection under a Django-like load: what snapshot_auto costs the
writers, the CPU and the disk, and how far behind the commits it stays.

    nice /usr/bin/python3 bench/continuous.py [--seconds 600] [--journal delete|wal|both]
        [--interval 1] [--writers 4] [--pace-ms 50] [--mb 100]
        [--workdir /tmp/snapbench-continuous] [--png bench/continuous.png] [--external]

For each journal mode, two runs of the same load on a fresh copy of the
make_db.py database: first without automatic snapshots ("off"), then with
`snapshot_auto(--interval)` ("auto"). The load: --writers processes, each
loading the extension and opening the database through the `snapshot` VFS
(`?vfs=snapshot`), as Django workers configured for it do, and committing
small transactions (BEGIN IMMEDIATE; insert an annotation, update a
document, log the commit; COMMIT) at random moments, on average one every
--pace-ms per writer (exponential gaps, like requests). Each writer logs
every commit as a row (writer, seq) in `commit_log` and, in its own
memory, when that commit returned (wall clock) and how long the transaction
took (BEGIN to COMMIT done). When --seconds are over the writers stop
committing but stay alive --interval + 2 s more: the promise covers the last
commits before writes stop only while a writing process runs.

Reported per mode:
  * writer commit latency p50/p99/max, off vs auto (targets: p99 ratio
    <= 1.05, no commit over 50 ms);
  * CPU spent on snapshots: the writers' CPU time (every thread: the
    snapshots run on a background thread of theirs) with auto minus without,
    also per snapshot;
  * store growth per hour against the database's own change (its file's
    growth, the bytes SQLite wrote for it in the "off" run, and the pages
    the snapshots stored, uncompressed);
  * protection: for every commit, how long until a snapshot held it
    (published = its `created` time); and the issue's measure, at 2000
    random moments of the run, how old the newest protected commit is
    (0 when none is unprotected). Target: at most --interval + 1 s. Which
    commits a snapshot holds is read from the snapshot itself (ATTACH
    ...&snapshot=ID: the largest seq of each writer in its commit_log).
With --external, the "auto" run takes its snapshots instead from a process of
its own calling snapshot_backup('auto') every --interval seconds through the
VFS (a cron-like loop: what one can do without snapshot_auto), whose CPU
counts as the snapshots'.
A PNG (gnuplot, Debian's gnuplot-nox) plots commit latency and protection lag
over time; JSON with every number goes to --workdir. Reuses
bench/commit_latency.py's helpers (percentiles, the cached make_db.py
database, file cleanup). Needs Debian's /usr/bin/python3 (its sqlite3 module
can load extensions) and an extension with snapshot_auto.
"""
import argparse, bisect, calendar, json, os, random, resource, shutil, signal, sqlite3, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import commit_latency as cl  # noqa: E402  (pct, summary, rm_db_files, base_db, du)

TARGET_P99_RATIO = 1.05
TARGET_STALL_MS = cl.TARGET_STALL_MS
LAG_SAMPLES = 2000

COMMIT_LOG = ("CREATE TABLE IF NOT EXISTS commit_log(writer INT, seq INT, t_ms INT, "
              "PRIMARY KEY(writer, seq)) WITHOUT ROWID")


def load_extension(con, so):
    con.enable_load_extension(True)
    con.load_extension(so)


# ---------------------------------------------------------------- writer ----

def proc_io():
    """This process's write counters (/proc/self/io): bytes passed to write()
    and bytes that reached the block layer."""
    out = {}
    with open("/proc/self/io") as f:
        for line in f:
            k, v = line.split(":")
            out[k.strip()] = int(v)
    return {"wchar": out.get("wchar", 0), "write_bytes": out.get("write_bytes", 0)}


def writer_main(a):
    """Runs in its own process: commits until SIGUSR1, lingers, reports."""
    stop = []
    signal.signal(signal.SIGUSR1, lambda *_: stop.append(1))
    loader = sqlite3.connect(":memory:")
    load_extension(loader, a.so)  # registers the `snapshot` VFS (and auto snapshots) for this process
    con = sqlite3.connect("file:" + a.db + "?vfs=snapshot", uri=True, isolation_level=None)
    con.execute("PRAGMA busy_timeout=10000")
    max_doc = con.execute("SELECT max(id) FROM document").fetchone()[0]
    rng = random.Random(a.seed * 1000 + a.writer_id)
    mean_gap = a.pace_ms / 1000.0
    io0, cpu0 = proc_io(), resource.getrusage(resource.RUSAGE_SELF)
    commits, errors = [], []  # commits: [seq, wall time the commit returned, seconds BEGIN..COMMIT]
    print("ready", flush=True)
    seq = 0
    nxt = time.perf_counter()
    while not stop:
        nxt += rng.expovariate(1.0 / mean_gap)
        wait = nxt - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        if stop:
            break
        seq += 1
        doc, other = rng.randint(1, max_doc), rng.randint(1, max_doc)
        t0 = time.perf_counter()
        try:
            con.execute("BEGIN IMMEDIATE")
            con.execute('INSERT INTO annotation(document_id, start, "end", value, validated) '
                        "VALUES(?, ?, ?, ?, 0)", (doc, rng.randint(0, 500), rng.randint(500, 900), "auto-bench"))
            con.execute("UPDATE document SET created = ? WHERE id = ?",
                        ("2026-%02d-%02d" % (rng.randint(1, 12), rng.randint(1, 28)), other))
            con.execute("INSERT INTO commit_log VALUES(?, ?, ?)", (a.writer_id, seq, int(time.time() * 1000)))
            con.execute("COMMIT")
        except sqlite3.Error as e:  # counted apart, not as a latency
            errors.append([time.time(), str(e)])
            if con.in_transaction:
                con.execute("ROLLBACK")
            seq -= 1
            continue
        lat = time.perf_counter() - t0
        commits.append([seq, time.time(), lat])
    stopped = time.time()
    # Still a writing process: its background thread protects the last commits.
    time.sleep(a.linger)
    cpu1, io1 = resource.getrusage(resource.RUSAGE_SELF), proc_io()
    con.close()
    with open(a.out, "w") as f:
        json.dump({"writer": a.writer_id, "commits": commits, "errors": errors, "stopped": stopped,
                   "cpu_s": (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime),
                   "wchar": io1["wchar"] - io0["wchar"], "write_bytes": io1["write_bytes"] - io0["write_bytes"]}, f)


def snapshotter_main(a):
    """--external: snapshot_backup('auto') every --interval seconds until SIGUSR1."""
    stop = []
    signal.signal(signal.SIGUSR1, lambda *_: stop.append(1))
    loader = sqlite3.connect(":memory:")
    load_extension(loader, a.so)
    con = sqlite3.connect("file:" + a.db + "?vfs=snapshot", uri=True, isolation_level=None)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    print("ready", flush=True)
    while not stop:
        time.sleep(a.interval)
        con.execute("SELECT snapshot_backup('auto')")
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    with open(a.out, "w") as f:
        json.dump({"cpu_s": (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)}, f)


# ------------------------------------------------------------ controller ----

def db_bytes(db):
    return sum(os.path.getsize(db + s) for s in ("", "-wal") if os.path.exists(db + s))


def prepare(a, base, journal, auto):
    d = os.path.join(a.workdir, f"{journal}-{'auto' if auto else 'off'}")
    os.makedirs(d, exist_ok=True)
    db = os.path.join(d, "bench.db")
    cl.rm_db_files(db)
    shutil.copyfile(base, db)
    c = sqlite3.connect(db, isolation_level=None)
    got = c.execute(f"PRAGMA journal_mode={journal}").fetchone()[0]
    assert got.lower() == journal, got
    c.execute(COMMIT_LOG)
    c.close()
    if auto:
        # As a deployment starts: one full snapshot, then automatic ones,
        # through the VFS so that the next snapshots read only what changed.
        loader = sqlite3.connect(":memory:")
        load_extension(loader, a.so)
        c = sqlite3.connect("file:" + db + "?vfs=snapshot", uri=True, isolation_level=None)
        c.execute("SELECT snapshot_backup('initial')")
        try:
            if a.external:
                raise StopIteration
            c.execute("SELECT snapshot_auto(?)", (a.interval,))
        except StopIteration:
            pass
        except sqlite3.OperationalError as e:
            sys.exit(f"snapshot_auto is not available in {a.so} ({e}): build an extension that has it, "
                     f"or measure --external snapshots")
        c.close()
        loader.close()
    subprocess.run(["sync"], check=True)  # no writeback of the copy during the run
    return d, db


def run_variant(a, base, journal, auto):
    d, db = prepare(a, base, journal, auto)
    store = db + "-snapshots"
    store0 = cl.du(store) if auto else 0
    db0 = db_bytes(db)
    env = dict(os.environ)
    env.pop("SNAPSHOT_AUTO", None)  # the setting is the store's, or none
    env.pop("SNAPSHOT_DIR", None)
    ws = []
    for i in range(a.writers):
        out = os.path.join(d, f"writer{i}.json")
        p = subprocess.Popen(["/usr/bin/python3", os.path.abspath(__file__), "--writer", "--writer-id", str(i),
                              "--db", db, "--so", a.so, "--out", out, "--pace-ms", str(a.pace_ms),
                              "--seed", str(a.seed), "--linger", str(a.interval + 2)],
                             stdout=subprocess.PIPE, text=True, env=env)
        ws.append((p, out))
    ext = None
    if auto and a.external:
        out = os.path.join(d, "snapshotter.json")
        ext = (subprocess.Popen(["/usr/bin/python3", os.path.abspath(__file__), "--snapshotter", "--db", db,
                                 "--so", a.so, "--out", out, "--interval", str(a.interval)],
                                stdout=subprocess.PIPE, text=True, env=env), out)
    for p, _ in ws + ([ext] if ext else []):
        line = p.stdout.readline().strip()
        if line != "ready":
            for q, _ in ws:
                q.kill()
            sys.exit(f"a writer did not start: {line!r}")
    load0 = os.getloadavg()
    t_start = time.time()
    print(f"  {journal} {'auto' if auto else 'off'}: {a.writers} writers for {a.seconds:g} s "
          f"(load average {load0[0]:.1f})", flush=True)
    time.sleep(a.seconds)
    for p, _ in ws:
        p.send_signal(signal.SIGUSR1)
    t_stop = time.time()
    load1 = os.getloadavg()
    for p, _ in ws:
        p.wait(timeout=a.interval + 120)
    ext_cpu = 0.0
    if ext:
        ext[0].send_signal(signal.SIGUSR1)
        ext[0].wait(timeout=a.interval + 120)
        ext_cpu = json.load(open(ext[1]))["cpu_s"]
    recs = [json.load(open(out)) for _, out in ws]
    res = {"journal_mode": journal, "auto": auto, "t_start": t_start, "t_stop": t_stop,
           "seconds": t_stop - t_start, "load_avg_start": load0, "load_avg_end": load1,
           "writers": recs, "db_growth": db_bytes(db) - db0,
           "cpu_s": sum(r["cpu_s"] for r in recs) + ext_cpu, "wchar": sum(r["wchar"] for r in recs),
           "write_bytes": sum(r["write_bytes"] for r in recs)}
    lats = [c[2] for r in recs for c in r["commits"]]
    res["latency"] = cl.summary(lats)
    res["commits"] = len(lats)
    res["errors"] = sum(len(r["errors"]) for r in recs)
    if auto:
        res.update(protection(a, db, recs, t_start, t_stop))
        res["store_growth"] = cl.du(store) - store0
    return res


def snapshot_contents(a, db):
    """Every snapshot: id, created (Unix s), label, pages_new, page_size, and
    the largest seq of each writer it holds."""
    loader = sqlite3.connect(":memory:")
    load_extension(loader, a.so)
    c = sqlite3.connect("file:" + db + "?vfs=snapshot", uri=True, isolation_level=None)
    rows = c.execute("SELECT id, created, label, pages_new, page_size FROM snapshot_list ORDER BY id").fetchall()
    try:
        status = c.execute("SELECT snapshot_status()").fetchone()[0]
    except sqlite3.Error as e:
        status = f"(snapshot_status: {e})"
    out = []
    for sid, created, label, pages_new, page_size in rows:
        c.execute(f"ATTACH 'file:{db}?vfs=snapshot&snapshot={sid}&mode=ro' AS s")
        held = dict(c.execute("SELECT writer, max(seq) FROM s.commit_log GROUP BY writer").fetchall())
        c.execute("DETACH s")
        t = calendar.timegm(time.strptime(created[:19], "%Y-%m-%dT%H:%M:%S"))
        t += float("0" + created[19:-1]) if len(created) > 20 else 0.0
        out.append({"id": sid, "created": t, "label": label, "pages_new": pages_new,
                    "page_size": page_size, "held": {int(k): v for k, v in held.items()}})
    c.close()
    loader.close()
    return out, status


def protection(a, db, recs, t_start, t_stop):
    snaps, status = snapshot_contents(a, db)
    snaps.sort(key=lambda s: s["created"])
    ends = {r["writer"]: {c[0]: c[1] for c in r["commits"]} for r in recs}
    # Per commit: the first snapshot (in publication order) that holds it.
    delays, unprotected = [], 0
    for w, by_seq in ends.items():
        for seq, t_end in by_seq.items():
            first = next((s["created"] for s in snaps if s["held"].get(w, 0) >= seq), None)
            if first is None:
                unprotected += 1
            else:
                delays.append((t_end, first - t_end))
    delays.sort()
    # The newest protected commit as of each snapshot's publication (the
    # initial snapshot holds the state as of the start).
    created, newest = [], []
    best = t_start
    for s in snaps:
        for w, seq in s["held"].items():
            if seq in ends.get(w, {}):
                best = max(best, ends[w][seq])
        created.append(s["created"])
        newest.append(best)
    all_ends = sorted(t for by_seq in ends.values() for t in by_seq.values())
    rng = random.Random(a.seed)
    lag = []
    for _ in range(LAG_SAMPLES):
        t = rng.uniform(t_start, t_stop)
        i = bisect.bisect_right(created, t) - 1
        protected = newest[i] if i >= 0 else t_start
        j = bisect.bisect_right(all_ends, t) - 1
        newest_commit = all_ends[j] if j >= 0 else t_start
        lag.append((t, t - protected if newest_commit > protected else 0.0))
    lag.sort()
    autos = [s for s in snaps if s["label"] == "auto"]
    ds = [x for _, x in delays]
    ls = [x for _, x in lag]
    return {"snapshots": len(autos), "snapshot_status": status,
            "stored_page_bytes": sum(s["pages_new"] * s["page_size"] for s in autos),
            "delay": {"n": len(ds), "p50_s": cl.pct(ds, 50), "p99_s": cl.pct(ds, 99),
                      "max_s": max(ds) if ds else float("nan")},
            "unprotected": unprotected,
            "lag": {"n": len(ls), "p50_s": cl.pct(ls, 50), "p99_s": cl.pct(ls, 99),
                    "max_s": max(ls) if ls else float("nan")},
            "lag_series": lag, "delay_series": delays}


def what(a):
    """What took the snapshots, for titles."""
    return f"snapshot_backup every {a.interval:g} s" if a.external else f"snapshot_auto({a.interval:g})"


def per_hour(nbytes, seconds):
    return nbytes / seconds * 3600 / 1e6


def report(a, pairs):
    ok = True
    for off, auto in pairs:
        lo, la = off["latency"], auto["latency"]
        ratio = la["p99_ms"] / lo["p99_ms"] if lo["n"] and la["n"] else float("nan")
        pass_p99, pass_stall = ratio <= TARGET_P99_RATIO, la["over_50ms"] == 0
        pass_lag = auto["lag"]["max_s"] <= a.interval + 1 and auto["unprotected"] == 0
        ok = ok and pass_p99 and pass_stall and pass_lag
        print(f"\n{off['journal_mode'].upper()}: {a.writers} writers, one commit every {a.pace_ms:g} ms each "
              f"on average, {off['seconds']:.0f} s per run, "
              f"{what(a)}; load average "
              f"{off['load_avg_start'][0]:.1f}-{auto['load_avg_end'][0]:.1f}")
        print(f"  {'':10}{'commits':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'>50 ms':>8}{'errors':>8}{'CPU s':>8}")
        for name, r in (("off", off), ("auto", auto)):
            s = r["latency"]
            print(f"  {name:10}{s['n']:8d}{s['p50_ms']:9.2f}{s['p99_ms']:9.2f}{s['max_ms']:9.2f}"
                  f"{s['over_50ms']:8d}{r['errors']:8d}{r['cpu_s']:8.1f}")
        print(f"  p99 ratio {ratio:.3f} (target <= {TARGET_P99_RATIO}): {'PASS' if pass_p99 else 'FAIL'}; "
              f"commits over {TARGET_STALL_MS:g} ms with auto: {la['over_50ms']} "
              f"({'PASS' if pass_stall else 'FAIL'})")
        cpu = auto["cpu_s"] - off["cpu_s"]
        n = auto["snapshots"]
        print(f"  snapshots: {n} auto; CPU on them (writers' CPU, auto minus off): {cpu:.1f} s = "
              f"{cpu / auto['seconds'] * 100:.1f}% of one core, {cpu / n * 1000 if n else float('nan'):.0f} ms each")
        secs = auto["seconds"]
        print(f"  per hour: store +{per_hour(auto['store_growth'], secs):.0f} MB; the database: file "
              f"+{per_hour(auto['db_growth'], secs):.0f} MB, SQLite wrote {per_hour(off['wchar'], secs):.0f} MB "
              f"(off run), snapshots stored {per_hour(auto['stored_page_bytes'], secs):.0f} MB of new pages "
              f"(uncompressed)")
        d, lg = auto["delay"], auto["lag"]
        print(f"  commit to protected: p50 {d['p50_s']:.2f} s, p99 {d['p99_s']:.2f} s, max {d['max_s']:.2f} s "
              f"({auto['unprotected']} commits never protected)")
        print(f"  age of the newest protected commit at {lg['n']} random moments: p50 {lg['p50_s']:.2f} s, "
              f"p99 {lg['p99_s']:.2f} s, max {lg['max_s']:.2f} s (target <= {a.interval + 1:g} s): "
              f"{'PASS' if pass_lag else 'FAIL'}")
        print(f"  snapshot_status(): {auto['snapshot_status']}")
    return ok


def plot(a, pairs, png):
    """Commit latencies (top) and protection lag (bottom) over time, one
    column per journal mode, with gnuplot."""
    if shutil.which("gnuplot") is None:
        print(f"\n(no plot: gnuplot is missing; tools/install-deps.sh installs gnuplot-nox)")
        return
    data = os.path.join(a.workdir, "plot")
    os.makedirs(data, exist_ok=True)
    cmds = [f"set terminal pngcairo size {700 * len(pairs)},900 font ',10'", f"set output '{png}'",
            f"set multiplot layout 2,{len(pairs)} columnsfirst", "set grid", "set key top left",
            "set xrange [0:*]"]
    label = what(a).replace("_", "\\_")
    for off, auto in pairs:
        mode = off["journal_mode"]
        for r in (off, auto):
            with open(os.path.join(data, f"{mode}-{'auto' if r['auto'] else 'off'}.lat"), "w") as f:
                for w in r["writers"]:
                    for _, t_end, lat in w["commits"]:
                        f.write(f"{t_end - r['t_start']:.3f} {lat * 1000:.3f}\n")
        with open(os.path.join(data, f"{mode}.lag"), "w") as f:
            for t, x in auto["lag_series"]:
                f.write(f"{t - auto['t_start']:.3f} {x:.3f}\n")
        with open(os.path.join(data, f"{mode}.delay"), "w") as f:
            for t, x in auto["delay_series"]:
                f.write(f"{t - auto['t_start']:.3f} {x:.3f}\n")
        cmds += [f"set title '{mode}: commit latency (BEGIN to COMMIT done)'", "set logscale y",
                 "set ylabel 'ms'", "set xlabel 'seconds into the run'", "set yrange [0.1:*]",
                 f"plot '{data}/{mode}-off.lat' using 1:2 with points pt 7 ps 0.2 lc rgb '#999999' title 'off', "
                 f"'{data}/{mode}-auto.lat' using 1:2 with points pt 7 ps 0.2 lc rgb '#d62728' "
                 f"title '{label}', {TARGET_STALL_MS:g} with lines dt 2 lc rgb 'black' "
                 f"title '{TARGET_STALL_MS:g} ms'",
                 "unset logscale y", "set yrange [0:*]",
                 f"set title '{mode}: protection lag ({label})'", "set ylabel 'seconds'",
                 f"plot '{data}/{mode}.lag' using 1:2 with lines lc rgb '#1f77b4' "
                 f"title 'age of the newest protected commit', "
                 f"'{data}/{mode}.delay' using 1:2 with points pt 7 ps 0.15 lc rgb '#ff7f0e' "
                 f"title 'each commit: until a snapshot held it', "
                 f"{a.interval + 1:g} with lines dt 2 lc rgb 'black' title 'interval + 1 s'"]
    cmds.append("unset multiplot")
    script = os.path.join(data, "plot.gp")
    with open(script, "w") as f:
        f.write("\n".join(cmds) + "\n")
    subprocess.run(["gnuplot", script], check=True)
    print(f"\nplot: {png}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=600, help="length of each run (the issue asks for 600)")
    p.add_argument("--journal", choices=("delete", "wal", "both"), default="both")
    p.add_argument("--interval", type=float, default=1, help="snapshot_auto's interval, seconds")
    p.add_argument("--writers", type=int, default=4)
    p.add_argument("--pace-ms", type=float, default=50, help="mean gap between one writer's commits")
    p.add_argument("--mb", type=float, default=100, help="database size for make_db.py (10^6 B)")
    p.add_argument("--workdir", default="/tmp/snapbench-continuous")
    p.add_argument("--png", help="where the plot goes (default: WORKDIR/continuous.png)")
    p.add_argument("--so", default=os.path.join(ROOT, "build", "snapshot.so"))
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--external", action="store_true",
                   help="snapshots from a loop calling snapshot_backup('auto') instead of snapshot_auto")
    # internal: a writer process, the --external snapshotter
    p.add_argument("--writer", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--snapshotter", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--writer-id", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--db", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--linger", type=float, default=3, help=argparse.SUPPRESS)
    a = p.parse_args()
    a.so = os.path.abspath(a.so)
    if a.writer:
        return writer_main(a)
    if a.snapshotter:
        return snapshotter_main(a)
    if not os.path.exists(a.so):
        sys.exit(f"{a.so} not found: build first")
    if os.path.abspath(a.workdir).startswith(ROOT + os.sep):
        sys.exit("--workdir must be outside the repository")
    os.makedirs(a.workdir, exist_ok=True)
    base = cl.base_db(a)
    modes = ("delete", "wal") if a.journal == "both" else (a.journal,)
    commit = subprocess.run(["git", "-C", ROOT, "log", "-1", "--format=%h %s"],
                            capture_output=True, text=True).stdout.strip()
    pairs = [(run_variant(a, base, m, False), run_variant(a, base, m, True)) for m in modes]
    ok = report(a, pairs)
    png = os.path.abspath(a.png or os.path.join(a.workdir, "continuous.png"))
    plot(a, pairs, png)
    out = os.path.join(a.workdir, "continuous.json")
    with open(out, "w") as f:
        json.dump({"commit": commit, "args": vars(a), "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                   "results": [[o, x] for o, x in pairs]}, f, indent=1)
    print(f"(commit {commit}; JSON with every latency: {out})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
