#!/usr/bin/python3
"""Build a benchmark database of real text: Debian's package index.

    make_db.py OUT.db [--mb 240] [--wal] [--seed 1]

One `document` row per package stanza of /var/lib/apt/lists/*Packages.lz4,
a few `annotation` rows per document over its words (like a Django
annotation app), two indexes. Rows are inserted the way a live app would
insert them (indexes exist from the start, documents and their annotations
interleaved), until the file reaches --mb megabytes (10^6 bytes).
The lists hold ~50 MB of text; past that the stanzas are reused with varied
fields (version, sizes, file name, checksums), so no two documents are equal.
Deterministic for a given seed and the same apt lists.
"""
import argparse, glob, hashlib, os, random, re, sqlite3, subprocess, sys, time

SCHEMA = """
CREATE TABLE document(id INTEGER PRIMARY KEY, name TEXT, text TEXT, created TEXT);
CREATE TABLE annotation(id INTEGER PRIMARY KEY,
    document_id INTEGER REFERENCES document(id),
    start INT, "end" INT, value TEXT, validated INT);
CREATE INDEX annotation_document_id ON annotation(document_id);
CREATE INDEX annotation_value ON annotation(value);
"""
WORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{2,}")


def load_stanzas():
    files = sorted(glob.glob("/var/lib/apt/lists/*Packages.lz4"))
    if not files:
        sys.exit("no /var/lib/apt/lists/*Packages.lz4 (run apt-get update)")
    stanzas = []
    for f in files:
        text = subprocess.run(["lz4", "-dc", f], check=True,
                              capture_output=True).stdout.decode("utf-8", "replace")
        stanzas += [s for s in text.split("\n\n") if s.startswith("Package:")]
    return stanzas


def vary(stanza, k, rng):
    """Pass k > 0: the same package, another build: new version, sizes, checksums."""
    def field(m):
        key, val = m.group(1), m.group(2)
        if key == "Version":
            val = f"{val}+b{k}"
        elif key in ("Size", "Installed-Size"):
            val = str(max(1, int(int(val) * rng.uniform(0.7, 1.3))))
        elif key == "Filename":
            val = re.sub(r"_([^_]+)_([^_]+)$", rf"_\1+b{k}_\2", val)
        return f"{key}: {val}"
    s = re.sub(r"^(Version|Size|Installed-Size|Filename): (.*)$", field, stanza, flags=re.M)
    for key, algo in (("MD5sum", hashlib.md5), ("SHA256", hashlib.sha256)):
        s = re.sub(rf"^{key}: .*$", f"{key}: {algo(s.encode()).hexdigest()}", s, flags=re.M)
    return s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--mb", type=float, default=240)
    ap.add_argument("--wal", action="store_true", help="journal_mode=WAL (default DELETE)")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    t0 = time.perf_counter()
    target = int(a.mb * 1e6)
    for suffix in ("", "-journal", "-wal", "-shm"):
        if os.path.exists(a.out + suffix):
            os.remove(a.out + suffix)
    rng = random.Random(a.seed)
    stanzas = load_stanzas()

    db = sqlite3.connect(a.out, isolation_level=None)
    db.execute("PRAGMA page_size=4096")
    db.execute("PRAGMA journal_mode=" + ("WAL" if a.wal else "DELETE"))
    db.execute("PRAGMA synchronous=OFF")  # build speed only; not stored in the file
    db.executescript(SCHEMA)
    page_size = db.execute("PRAGMA page_size").fetchone()[0]

    doc_id = ann_id = 0
    k, batch = 0, 500
    done = False
    while not done:
        order = range(len(stanzas))  # index order: neighbours share words, as in a real app
        for i0 in range(0, len(order), batch):
            docs, anns = [], []
            for i in order[i0:i0 + batch]:
                text = stanzas[i] if k == 0 else vary(stanzas[i], k, rng)
                doc_id += 1
                name = text[9:text.index("\n")] if "\n" in text else text[9:]
                created = "%04d-%02d-%02d" % (rng.randint(2019, 2025), rng.randint(1, 12), rng.randint(1, 28))
                docs.append((doc_id, name if k == 0 else f"{name}~{k}", text, created))
                words = list(WORD.finditer(text))
                for m in rng.sample(words, min(len(words), rng.randint(1, 6))):
                    ann_id += 1
                    anns.append((ann_id, doc_id, m.start(), m.end(),
                                 m.group().lower()[:40], rng.randint(0, 1)))
            db.execute("BEGIN")
            db.executemany("INSERT INTO document VALUES(?,?,?,?)", docs)
            db.executemany("INSERT INTO annotation VALUES(?,?,?,?,?,?)", anns)
            db.execute("COMMIT")
            if db.execute("PRAGMA page_count").fetchone()[0] * page_size >= target:
                done = True
                break
        k += 1
    if a.wal:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.close()
    print(f"{a.out}: {pages} pages of {page_size} B = {pages * page_size / 1e6:.1f} MB "
          f"(file {os.path.getsize(a.out) / 1e6:.1f} MB), {doc_id} documents, "
          f"{ann_id} annotations, {k} pass(es) over {len(stanzas)} stanzas, "
          f"journal {'WAL' if a.wal else 'DELETE'}, {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
