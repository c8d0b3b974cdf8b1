#!/usr/bin/python3
"""Snapshot time against database size, with 1% of pages changed: does a
tracked snapshot cost what changed rather than the size of the database?

    /usr/bin/python3 bench/vfs_scale.py [--sizes 64,256,1024] [--journal delete|wal|both]
        [--reps 3] [--workdir /tmp/snapbench-scale] [--so build/snapshot.so] [--no-check]

The claim measured (docs/VFS.md section 8): with 1% of pages changed, a
tracked snapshot of a 64 MiB, 256 MiB and 1 GiB database stays within 2x from
smallest to largest, while the hash-every-page path grows with size.

For every size, journal mode and repetition, two cases, each on a fresh copy
of the same base database (make_db.py, real text):

  tracked   the change is made through `?vfs=snapshot`, so every written page
            is marked and the next snapshot may read only the marked pages;
  hash-all  the same change is made through a plain connection (default VFS),
            which the tracking cannot see, so the next snapshot must hash
            every page.

Each case: copy the base, set the journal mode, take a first full snapshot
into a fresh store (`<db>-snapshots`), update the `text` of ~1% of the
pages' worth of randomly chosen documents (same rows in both cases, fixed
seed), record what `snapshot_tracking()` says, then time
`SELECT snapshot_backup()`. Only that call is timed (in-process,
time.perf_counter), after os.sync(). The pages the change touched are counted
by comparing the database (its WAL applied) with the base, page by page.
Unless --no-check, the first repetition of each case also restores the
timed snapshot with snapshot_restore_to() and compares it page by page with
the live database, so a fast snapshot that missed a page shows up as WRONG.

Prints per size and mode the medians and, per path, the ratio of the largest
size's median to the smallest's. 1% of a 1 GiB database is 16 times the
pages of 1% of 64 MiB, so by default the tracked path is judged by its time
per changed page (its cost must follow the pages changed); with
--same-change every size gets the same change (1% of the smallest
database's pages) and the tracked time itself is judged. PASS when every
tracked case said 'tracked', every hash-all case said 'untracked', every
check was ok, and the judged ratio is at most 2 in every journal mode. Results: <workdir>/vfs_scale.json.
Needs Debian's /usr/bin/python3 (its sqlite3 module can load extensions).
"""
import argparse, glob, hashlib, json, os, random, shutil, sqlite3, statistics, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TARGET_RATIO = 2.0      # tracked: largest size's median time <= 2x the smallest's
CHANGE_FRACTION = 0.01  # rows updated = 1% of the database's pages
SEED = 1


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="64,256,1024", help="database sizes in MiB, comma-separated")
    p.add_argument("--journal", choices=("delete", "wal", "both"), default="both")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--workdir", default="/tmp/snapbench-scale")
    p.add_argument("--so", default=os.path.join(ROOT, "build", "snapshot.so"))
    p.add_argument("--no-check", action="store_true", help="skip restoring and comparing the timed snapshots")
    p.add_argument("--same-change", action="store_true",
                   help="change the same number of rows in every size (1%% of the smallest database's pages) "
                        "instead of 1%% of each database's pages")
    a = p.parse_args()
    a.sizes = sorted(int(s) for s in a.sizes.split(","))
    a.journals = ["delete", "wal"] if a.journal == "both" else [a.journal]
    return a


# ---------------------------------------------------------------- databases

def base_db(workdir, mib):
    """<workdir>/base-<mib>mib.db, built by make_db.py unless a build from the
    same make_db.py is cached (same stamp scheme as run.sh)."""
    path = os.path.join(workdir, f"base-{mib}mib.db")
    with open(os.path.join(HERE, "make_db.py"), "rb") as f:
        stamp = hashlib.sha256(f.read()).hexdigest()[:16]
    try:
        with open(path + ".stamp") as f:
            cached = f.read().strip() == stamp and os.path.exists(path)
    except OSError:
        cached = False
    if not cached:
        # make_db.py's --mb is 10^6 bytes; it stops once the file reaches it.
        subprocess.run([sys.executable, os.path.join(HERE, "make_db.py"), path,
                        "--mb", f"{mib * 1.048576:.6f}"], check=True)
        with open(path + ".stamp", "w") as f:
            f.write(stamp + "\n")
    return path


def remove_db(path):
    """The database and everything beside it: -wal, -shm, -journal, the
    tracking files and the store."""
    for p in glob.glob(glob.escape(path) + "*"):
        shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)


class Image:
    """A database file as SQLite sees it: the main file with the committed
    frames of its WAL (if any) applied. page(n) is 1-based."""

    def __init__(self, path):
        self.f = open(path, "rb")
        hdr = self.f.read(100)
        ps = int.from_bytes(hdr[16:18], "big")
        self.page_size = 65536 if ps == 1 else ps
        self.pages = os.path.getsize(path) // self.page_size
        self.wal = {}  # page number -> offset of its newest committed frame in the -wal
        self.walf = None
        if os.path.exists(path + "-wal") and os.path.getsize(path + "-wal") >= 32:
            self.walf = open(path + "-wal", "rb")
            self._read_wal()

    def _read_wal(self):
        # Frames whose salts match the WAL header's belong to the current WAL;
        # a frame with a nonzero "database size" field ends a transaction.
        # (Checksums are not verified: the WAL was written by SQLite just now.)
        w, ps = self.walf, self.page_size
        salts = w.read(32)[16:24]
        pending, off = {}, 32
        while True:
            fh = w.read(24)
            if len(fh) < 24 or fh[8:16] != salts:
                break
            pgno, db_size = int.from_bytes(fh[0:4], "big"), int.from_bytes(fh[4:8], "big")
            pending[pgno] = off + 24
            if db_size:  # commit frame
                self.wal.update(pending)
                pending = {}
                self.pages = db_size
            off += 24 + ps
            w.seek(off)

    def page(self, n):
        if n in self.wal:
            self.walf.seek(self.wal[n])
            return self.walf.read(self.page_size)
        self.f.seek((n - 1) * self.page_size)
        return self.f.read(self.page_size)

    def close(self):
        self.f.close()
        if self.walf:
            self.walf.close()


# Header bytes of page 1 that differ without a change of content: the file
# format versions (18-19: 2 in WAL mode, 1 otherwise; setting the journal mode
# is not part of the change), and the change counter with its copy (24-27,
# 92-95), which the backup API gives a file of its own in WAL mode.
FORMAT_BYTES = ((18, 20),)
BOOKKEEPING_BYTES = ((18, 20), (24, 28), (92, 96))


def differing_pages(a_path, b_path, ignore=FORMAT_BYTES):
    """Pages that differ between two databases (each with its WAL applied);
    a page present in only one counts; the byte ranges `ignore` of page 1
    are not compared. Returns (differing page numbers, pages of b)."""
    def header(page):
        page = bytearray(page)
        for lo, hi in ignore:
            page[lo:hi] = bytes(hi - lo)
        return page
    a, b = Image(a_path), Image(b_path)
    try:
        n = max(a.pages, b.pages)
        diff = [p for p in range(2, n + 1) if a.page(p) != b.page(p)]
        if header(a.page(1)) != header(b.page(1)):
            diff.insert(0, 1)
        return diff, b.pages
    finally:
        a.close()
        b.close()


# ---------------------------------------------------------------- one case

def connect(path, vfs):
    uri = f"file:{path}" + ("?vfs=snapshot" if vfs else "")
    return sqlite3.connect(uri, uri=True, isolation_level=None)


def change(db, vfs, ids):
    """Updates the text of the given documents in one transaction, keeping
    each row's length (SQLite then rewrites the row in place: one leaf page
    per row, no page splits)."""
    w = connect(db, vfs)
    w.execute("BEGIN")
    w.executemany("UPDATE document SET text = 'p' || substr(text, 2) WHERE id = ?", ((i,) for i in ids))
    w.execute("COMMIT")
    w.close()


def run_case(a, base, mib, journal, path, rep, ids):
    db = os.path.join(a.workdir, f"run-{mib}mib-{journal}-{path}-{rep}.db")  # never the same name twice
    remove_db(db)
    shutil.copyfile(base, db)
    c = connect(db, False)
    c.execute(f"PRAGMA journal_mode={journal}")
    c.close()
    # The snapshotting connection uses the snapshot VFS in both cases, as an
    # application would once the VFS is the default (docs/VFS.md section 1);
    # only the writer of the change differs.
    b = connect(db, True)
    try:
        # b holds the database open, as a running application does. In WAL
        # mode this matters: otherwise the writer, closing as the last
        # connection, would checkpoint and delete the WAL, and the WAL's
        # frames would never be what the snapshot reads.
        b.execute("SELECT count(*) FROM sqlite_schema").fetchone()
        # Setting the journal mode just wrote the database file. In WAL mode,
        # a snapshot taken while the WAL is empty trusts later WAL headers only
        # if the file was last written over 100 ms before (git's "racy clean"
        # rule, vfs/tracker.cc kRacyNs); otherwise the next snapshot reads
        # every page once. Let the write age past that, as any file not
        # written in the last 0.1 s would be.
        time.sleep(0.2)
        b.execute("SELECT snapshot_backup('full')").fetchone()
        change(db, path == "tracked", ids)
        tracking = b.execute("SELECT snapshot_tracking()").fetchone()[0]
        changed, pages = differing_pages(base, db)
        os.sync()  # no writeback left over from the copy and the full snapshot
        t = time.perf_counter()
        sid = b.execute("SELECT snapshot_backup('after-change')").fetchone()[0]
        seconds = time.perf_counter() - t
        pages_new, bytes_new = b.execute(
            "SELECT pages_new, bytes_new FROM snapshot_list WHERE id = ?", (sid,)).fetchone()
        check = None
        if not a.no_check and rep == 0:
            restored = db + "-restored.db"
            b.execute("SELECT snapshot_restore_to(?, ?)", (restored, sid)).fetchone()
            diff, _ = differing_pages(restored, db, BOOKKEEPING_BYTES)
            check = "ok" if not diff else f"WRONG: {len(diff)} pages differ"
    finally:
        b.close()
        remove_db(db)
    return dict(size_mib=mib, journal=journal, path=path, rep=rep, pages=pages, rows_updated=len(ids),
                pages_changed=len(changed), tracking=tracking, seconds=seconds, snapshot_id=sid,
                pages_new=pages_new, bytes_new=bytes_new, check=check)


# ---------------------------------------------------------------- main

def main():
    a = parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    loader = sqlite3.connect(":memory:")
    loader.enable_load_extension(True)
    loader.load_extension(os.path.abspath(a.so))  # functions for every later connection, and the VFS
    have = loader.execute("SELECT count(*) FROM pragma_function_list WHERE name = 'snapshot_tracking'").fetchone()[0]
    if not have:
        sys.exit(f"{a.so} has no snapshot_tracking(): tracked snapshots (docs/VFS.md sections 2-3) are not "
                 "built into this extension yet, so there is nothing to compare. Rebuild and run again.")
    version = loader.execute("SELECT snapshot_version()").fetchone()[0]

    bases, ids = {}, {}
    smallest_pages = None
    for mib in a.sizes:
        bases[mib] = base_db(a.workdir, mib)
        c = sqlite3.connect(bases[mib])
        pages, docs = c.execute("SELECT (SELECT page_count FROM pragma_page_count),"
                                " (SELECT max(id) FROM document)").fetchone()
        c.close()
        # Random documents, spread over the whole file (documents and their
        # annotations were inserted interleaved); the same rows for every
        # case of this size. Two rows sometimes share a leaf page, and page 1
        # changes too, so slightly under or over 1% of pages differ.
        rng = random.Random(SEED * 1000003 + mib)
        if smallest_pages is None:
            smallest_pages = pages
        rows = round(CHANGE_FRACTION * (smallest_pages if a.same_change else pages))
        ids[mib] = sorted(rng.sample(range(1, docs + 1), max(1, rows)))

    load = os.getloadavg()
    print(f"snapshot {version}; sizes {a.sizes} MiB, journal {a.journals}, {a.reps} reps; "
          f"load average {load[0]:.2f} at start", flush=True)
    results = []
    t0 = time.perf_counter()
    for rep in range(a.reps):  # round-robin, so drift hits every case alike
        for mib in a.sizes:
            for journal in a.journals:
                for path in ("tracked", "hash-all"):
                    r = run_case(a, bases[mib], mib, journal, path, rep, ids[mib])
                    results.append(r)
                    print(f"  rep {rep + 1} {mib:5} MiB {journal:6} {path:8} {r['seconds']:8.3f} s  "
                          f"{r['pages_changed']} of {r['pages']} pages changed  {r['tracking']!r}"
                          + (f"  check {r['check']}" if r["check"] else ""), flush=True)

    # Table: medians per size, journal mode and path.
    def cases(mib, journal, path):
        return [r for r in results if (r["size_mib"], r["journal"], r["path"]) == (mib, journal, path)]

    def median(mib, journal, path):
        return statistics.median(r["seconds"] for r in cases(mib, journal, path))

    print()
    print(f"{'size':>8} {'journal':7} {'pages':>8} {'changed':>14} {'tracked':>9} {'hash-all':>9}  tracking said")
    summary = []
    for journal in a.journals:
        for mib in a.sizes:
            tr, ha = cases(mib, journal, "tracked"), cases(mib, journal, "hash-all")
            said = sorted({r["tracking"].split(":")[0] for r in tr}) + ["/"] + \
                sorted({r["tracking"].split(":")[0] for r in ha})
            ch = tr[0]["pages_changed"]
            print(f"{mib:5} MiB {journal:7} {tr[0]['pages']:8} {ch:7} ({100.0 * ch / tr[0]['pages']:.2f}%)"
                  f" {median(mib, journal, 'tracked'):8.3f}s {median(mib, journal, 'hash-all'):8.3f}s  "
                  + " ".join(said))
    print()
    lo, hi = a.sizes[0], a.sizes[-1]
    ok = True
    for journal in a.journals:
        rt = median(hi, journal, "tracked") / median(lo, journal, "tracked")
        rh = median(hi, journal, "hash-all") / median(lo, journal, "hash-all")
        changed_lo = cases(lo, journal, "tracked")[0]["pages_changed"]
        changed_hi = cases(hi, journal, "tracked")[0]["pages_changed"]
        # Time per changed page: the tracked path's cost should follow the
        # pages changed, whatever the database's size.
        rpp = rt / (changed_hi / changed_lo)
        judged = rt if a.same_change else rpp
        states_ok = all(r["tracking"].startswith("tracked") for s in a.sizes for r in cases(s, journal, "tracked")) \
            and all(r["tracking"].startswith("untracked") for s in a.sizes for r in cases(s, journal, "hash-all"))
        checks_ok = all(r["check"] in (None, "ok") for r in results if r["journal"] == journal)
        passed = judged <= TARGET_RATIO and states_ok and checks_ok
        ok = ok and passed
        summary.append(dict(journal=journal, tracked_ratio=rt, tracked_per_changed_page_ratio=rpp,
                            hash_all_ratio=rh, tracking_states_ok=states_ok, checks_ok=checks_ok, passed=passed))
        what = (f"tracked {rt:.2f}x (same change)" if a.same_change else
                f"tracked {rt:.2f}x for {changed_hi / changed_lo:.1f}x the pages changed, "
                f"{rpp:.2f}x per changed page")
        print(f"{journal:7} {hi} MiB / {lo} MiB ({hi / lo:g}x the size): {what}; hash-all {rh:.2f}x"
              f"  -> within {TARGET_RATIO:g}x: {'PASS' if passed else 'FAIL'}"
              + ("" if states_ok else " (a case's snapshot_tracking() said otherwise than expected)")
              + ("" if checks_ok else " (a restored snapshot differs from the database)"))
    print(f"total {time.perf_counter() - t0:.0f} s; load average {os.getloadavg()[0]:.2f} at end")

    out = os.path.join(a.workdir, "vfs_scale.json")
    with open(out, "w") as f:
        json.dump(dict(version=version, sizes_mib=a.sizes, journals=a.journals, reps=a.reps,
                       change_fraction=CHANGE_FRACTION, same_change=a.same_change, seed=SEED,
                       load_average_start=load,
                       results=results, summary=summary, passed=ok), f, indent=1)
    print(f"results: {out}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
