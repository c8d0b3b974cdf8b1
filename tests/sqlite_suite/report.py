#!/usr/bin/env python3
"""Compares a run.sh run of SQLite's test suite in its two modes.

    report.py RUN_DIR EXPECTED_FILE

RUN_DIR holds default/<file>/ and vfs/<file>/ (out.txt, rc, seconds) for each
test file, and optionally mptest-<mode>/out.txt and speedtest1-<mode>/. Prints
a Markdown summary (the README and RESULTS.md quote it) and exits 1 when a test
fails only through the VFS and EXPECTED_FILE does not list it, else 0.

EXPECTED_FILE: one expected difference a line, "<file> <test-name glob>", then
'#' and the reason; the glob "*" also covers a file that cannot run at all.
"""
import fnmatch
import os
import re
import sys

MODES = ("default", "vfs")
SUMMARY = re.compile(r"^(\d+) errors out of (\d+) tests")
FAILURES = re.compile(r"^!Failures on these tests:(.*)$")
# A failed test prints "! <name> expected: [...]" and "! <name> got: [...]".
DETAIL = re.compile(r"^! (\S+) (expected|got):\s*(.*)$")


def read(path, default=""):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return default


class FileResult:
    """One test file's outcome in one mode."""

    def __init__(self, directory):
        self.out = read(os.path.join(directory, "out.txt"))
        self.rc = int(read(os.path.join(directory, "rc"), "-1").strip() or -1)
        self.seconds = float(read(os.path.join(directory, "seconds"), "0").strip() or 0)
        self.errors = None
        self.tests = None
        self.failed = []
        self.details = {}
        self.problems = []  # what goes wrong beside failed test cases
        for line in self.out.splitlines():
            m = SUMMARY.match(line)
            if m:
                self.errors, self.tests = int(m.group(1)), int(m.group(2))
            m = FAILURES.match(line)
            if m:
                self.failed = m.group(1).split()
            m = DETAIL.match(line)
            if m:
                self.details.setdefault(m.group(1), []).append(f"{m.group(2)}: {m.group(3)[:160]}")
            if line.startswith("Unfreed memory") or line.endswith("files were left open"):
                self.problems.append(line.strip())
        if not self.failed:  # a file that did not finish lists no failures
            self.failed = [t for t, lines in self.details.items() if lines[0].startswith("expected")]
        if self.rc in (124, 137):
            self.problems.append("timed out")
        elif self.errors is None:
            tail = [l for l in self.out.splitlines() if l.strip()][-1:] or ["no output"]
            self.problems.append(f"stopped (exit {self.rc}): {tail[0][:160]}")

    def ran(self):
        return self.errors is not None


def load_expected(path):
    expected = []
    for line in read(path).splitlines():
        body, _, reason = line.partition("#")
        fields = body.split()
        if len(fields) >= 2:
            expected.append((fields[0], fields[1], reason.strip()))
    return expected


def is_expected(expected, test_file, test):
    return any(fnmatch.fnmatchcase(test_file, f) and fnmatch.fnmatchcase(test, t) for f, t, _ in expected)


def problem_kind(problem):
    for kind in ("Unfreed memory", "left open", "timed out", "stopped"):
        if kind in problem:
            return {"Unfreed memory": "leak", "left open": "files left open"}.get(kind, kind)
    return problem


def count_differs(a, b):
    return a is not None and b is not None and abs(a - b) > max(5, 0.05 * max(a, b))


def mptest_summary(run):
    rows = []
    for mode in MODES:
        out = read(os.path.join(run, f"mptest-{mode}", "out.txt"))
        if not out:
            continue
        errors = sum(int(m.group(1)) for m in re.finditer(r"Summary: (\d+) errors out of (\d+) tests", out))
        tests = sum(int(m.group(2)) for m in re.finditer(r"Summary: (\d+) errors out of (\d+) tests", out))
        scripts = out.count("\n--- ") + out.startswith("--- ")
        failed = out.count("exit status")
        rows.append((mode, scripts, tests, errors, failed))
    return rows


def speedtest_summary(run):
    times = {}
    for mode in MODES:
        out = read(os.path.join(run, f"speedtest1-{mode}", "out.txt"))
        m = re.search(r"TOTAL\.+\s+([\d.]+)s", out)
        if m:
            times[mode] = float(m.group(1))
    if len(times) < 2:
        return None
    a = os.path.join(run, "speedtest1-default", "speed.db")
    b = os.path.join(run, "speedtest1-vfs", "speed.db")
    same = os.path.exists(a) and os.path.exists(b) and open(a, "rb").read() == open(b, "rb").read()
    return times, same


def main():
    run, expected_path = sys.argv[1], sys.argv[2]
    expected = load_expected(expected_path)
    names = sorted(set(os.listdir(os.path.join(run, "default"))) & set(os.listdir(os.path.join(run, "vfs"))))
    results = {n: {m: FileResult(os.path.join(run, m, n)) for m in MODES} for n in names}

    table, only_vfs, count_notes, problems = [], [], [], []
    totals = {m: [0, 0] for m in MODES}
    unexpected = 0
    for name in names:
        d, v = results[name]["default"], results[name]["vfs"]
        for m, r in (("default", d), ("vfs", v)):
            totals[m][0] += r.errors or 0
            totals[m][1] += r.tests or 0
            for p in r.problems:
                problems.append(f"{name}.test ({m}): {p}")
        fmt = lambda x: "-" if x is None else str(x)
        mark = ""
        fails = [(t, "; ".join(v.details.get(t, []))) for t in v.failed if t not in set(d.failed)]
        # What goes wrong outside test cases (the file stops, times out, leaks
        # memory or open files) counts as a test named after the problem.
        default_kinds = {problem_kind(p) for p in d.problems}
        fails += [(f"({problem_kind(p)})", p) for p in v.problems if problem_kind(p) not in default_kinds]
        for t, why in fails:
            ok = is_expected(expected, f"{name}.test", t)
            unexpected += not ok
            only_vfs.append(f"| {name}.test | {t} | {'expected' if ok else '**new**'} | {why.replace('|', '/')} |")
            mark = "x"
        if count_differs(d.tests, v.tests):
            count_notes.append(f"{name}.test: {d.tests} tests by default, {v.tests} through the VFS")
            mark = mark or "n"
        table.append(f"| {name}.test | {fmt(d.errors)} | {fmt(v.errors)} | {fmt(d.tests)} | {fmt(v.tests)} "
                     f"| {d.seconds:.0f} | {v.seconds:.0f} | {mark} |")

    seconds = read(os.path.join(run, "seconds"), "?").strip()
    print(f"## SQLite {read(os.path.join(run, 'version')).strip() or '3.40.1'} test suite through the snapshot VFS")
    print()
    print(f"- {len(names)} test files, each run twice ({seconds} s wall time for both modes)")
    print(f"- test cases: {totals['default'][1]} with the default VFS, {totals['vfs'][1]} through the snapshot VFS")
    print(f"- errors: {totals['default'][0]} with the default VFS, {totals['vfs'][0]} through the snapshot VFS")
    print(f"- tests failing only through the VFS: {len(only_vfs)}, of them not listed as expected: {unexpected}")
    print(f"- files whose test count differs by more than 5%: {len(count_notes)}")
    for mode, scripts, tests, errors, failed in mptest_summary(run):
        print(f"- mptest ({mode}): {scripts} script runs, {tests} tests, {errors} errors, {failed} abnormal exits")
    st = speedtest_summary(run)
    if st:
        times, same = st
        size = read(os.path.join(run, "speedtest-size"), "50").strip()
        print(f"- speedtest1 --size {size}: {times['default']:.2f} s default, {times['vfs']:.2f} s through the VFS "
              f"(x{times['vfs'] / times['default']:.2f}); databases {'byte-identical' if same else 'DIFFER'}")
    print()
    if only_vfs:
        print("### Tests failing only through the VFS")
        print("| file | test | status | output through the VFS |")
        print("|---|---|---|---|")
        print("\n".join(only_vfs))
        print()
    if count_notes:
        print("### Test counts that differ (a fault-injection loop ends early in one mode)")
        print("\n".join(f"- {n}" for n in count_notes))
        print()
    if problems:
        print("### Crashes, timeouts, leaks, files left open")
        print("\n".join(f"- {p}" for p in problems))
        print()
    print("### Per file (x: a test fails only through the VFS; n: test count differs)")
    print("| file | errors default | errors VFS | tests default | tests VFS | s default | s VFS | |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(table))
    # mptest and speedtest1 fail the run when the VFS makes them worse than
    # the default VFS does (their own flakiness is not ours to report).
    mp = {mode: (errors, failed) for mode, _, _, errors, failed in mptest_summary(run)}
    tools_worse = (mp.get("vfs", (0, 0))[0] > mp.get("default", (0, 0))[0] or
                   mp.get("vfs", (0, 0))[1] > mp.get("default", (0, 0))[1] or (st is not None and not st[1]))
    if tools_worse:
        print("mptest or speedtest1 did worse through the VFS (above)")
    return 1 if unexpected or tools_worse else 0


if __name__ == "__main__":
    sys.exit(main())
