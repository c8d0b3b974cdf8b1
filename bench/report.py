#!/usr/bin/python3
"""report.py RESULTS.tsv: the table and target checks of bench/run.sh.

A tool measured several times (run.sh --reps) is shown by its medians.

Lines of RESULTS.tsv (tab-separated):
  row      TOOL  FULL_S  FULL_BYTES  INCR_S  INCR_BYTES
  restore  WHAT  SECONDS  ok|WRONG
  info     KEY   VALUE
"""
import statistics
import sys

reps, rest, info = {}, {}, {}
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    if f[0] == "row":
        reps.setdefault(f[1], []).append([float(f[2]), int(f[3]), float(f[4]), int(f[5])])
    elif f[0] == "restore":
        rest.setdefault(f[1], []).append((float(f[2]), f[3]))
    elif f[0] == "info":
        info[f[1]] = f[2]
med = lambda xs: statistics.median(xs)
rows = {k: [med(c) for c in zip(*v)] for k, v in reps.items()}
restores = [(w, med(t for t, _ in v), "ok" if all(ok == "ok" for _, ok in v) else "WRONG")
            for w, v in rest.items()]


def find(prefix):
    return next((v for k, v in rows.items() if k.startswith(prefix)), None)


bk = rows[".backup"]
bk_t = min(bk[0], bk[2])  # the faster of the two .backup runs: the stricter reference
mb = lambda b: f"{b / 1e6:9.3f}" if b < 1e7 else f"{b / 1e6:9.1f}"

print(f"{'tool':<16}{'full s':>8}{'full MB':>10}{'xbk t':>7}{'xbk B':>7}"
      f" |{'incr s':>8}{'incr MB':>10}{'xbk t':>7}{'xbk B':>7}")
for name, (ft, fb, it, ib) in rows.items():
    print(f"{name:<16}{ft:8.3f}{mb(fb):>10}{ft / bk_t:7.2f}{fb / bk[1]:7.3f}"
          f" |{it:8.3f}{mb(ib):>10}{it / bk_t:7.2f}{ib / bk[3]:7.4f}")
print(f"('incr' = the same command after change.sql, which changes {info.get('changed', '?')};"
      f" bytes = bytes stored by that step;\n xbk = ratio to .backup: time to the faster"
      f" .backup run ({bk_t:.3f} s), bytes to .backup's bytes for the same step)")
n = max(len(v) for v in reps.values())
if n > 1:
    print(f"times are medians of {n} runs; spread (min-max) full / incr:")
    for name, v in reps.items():
        print(f"  {name:<14}{min(r[0] for r in v):6.3f}-{max(r[0] for r in v):.3f}"
              f"   {min(r[2] for r in v):6.3f}-{max(r[2] for r in v):.3f}")
if "ours" in info:
    print(f"ours: {info['ours']}")
for what, t, ok in restores:
    print(f"restore {what:<40}{t:8.3f} s  ({t / bk_t:.2f}x .backup)  content {ok}")

if "ours" in rows and "baseline" in rows:
    # run.sh --baseline-so: two builds of the extension in one run
    o, b = rows["ours"], rows["baseline"]
    print(f"\nours / baseline ({info.get('so', '?')} / {info.get('baseline_so', '?')}):")
    for i, what in enumerate(["full time", "full bytes", "incr time", "incr bytes"]):
        print(f"  {what:<12}{o[i] / b[i]:7.3f}")
    times = {w: t for w, t, _ in restores}
    for w, t in times.items():
        if not w.startswith("baseline: ") and "baseline: " + w in times:
            print(f"  restore {w:<40}{t / times['baseline: ' + w]:7.3f}")

ours, restic, borg, z3 = find("ours"), find("restic"), find("borg"), find("zstd -3")
if not ours:
    print("\ntargets: not checked (no numbers for ours)")
    sys.exit(0)
print()
print(f"ours incr bytes / restic incr bytes = {ours[3] / restic[3]:.4f}")
print(f"ours incr bytes / borg incr bytes   = {ours[3] / borg[3]:.4f}")
print(f"ours full bytes / zstd -3 bytes     = {ours[1] / z3[1]:.3f}")
checks = [
    ("incremental bytes <= 5% of restic's", ours[3] <= 0.05 * restic[3]),
    ("incremental bytes <= 5% of borg's", ours[3] <= 0.05 * borg[3]),
    ("incremental time < .backup time", ours[2] < bk_t),
    ("full time <= 1.5x .backup time", ours[0] <= 1.5 * bk_t),
    ("full bytes <= 1.1x zstd -3 bytes", ours[1] <= 1.1 * z3[1]),
] + [(f"restore time <= 2x .backup time: {w}", t <= 2 * bk_t) for w, t, _ in restores] \
  + [(f"restore content correct: {w}", ok == "ok") for w, _, ok in restores]
print("\ntargets:")
for what, ok in checks:
    print(f"  {'PASS' if ok else 'FAIL'}  {what}")
