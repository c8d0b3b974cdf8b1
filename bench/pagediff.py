#!/usr/bin/python3
"""pagediff.py A B [-v]: how many pages differ between two SQLite files.

Compares page by page (page size from A's header); pages present in only one
file count as differing. Prints "<differing> of <pages> pages (<pct>%)";
-v also lists the differing page numbers (1-based) in ranges.
"""
import sys


def main():
    args = [a for a in sys.argv[1:] if a != "-v"]
    if len(args) != 2:
        sys.exit(__doc__)
    with open(args[0], "rb") as fa, open(args[1], "rb") as fb:
        hdr = fa.read(100)
        ps = int.from_bytes(hdr[16:18], "big") if hdr[:16] == b"SQLite format 3\0" else 4096
        ps = 65536 if ps == 1 else ps
        fa.seek(0)
        diff, n = [], 0
        while True:
            a, b = fa.read(ps), fb.read(ps)
            if not a and not b:
                break
            n += 1
            if a != b:
                diff.append(n)
    print(f"{len(diff)} of {n} pages ({100.0 * len(diff) / max(n, 1):.2f}%)")
    if "-v" in sys.argv:
        ranges, start = [], None
        for i, p in enumerate(diff):
            if start is None:
                start = p
            if i + 1 == len(diff) or diff[i + 1] != p + 1:
                ranges.append(str(start) if start == p else f"{start}-{p}")
                start = None
        print(" ".join(ranges))


if __name__ == "__main__":
    main()
