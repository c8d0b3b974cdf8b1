#!/usr/bin/env bash
# What snapshot_import() saves on the backups cp-based scripts leave behind:
# N nightly full copies of the benchmark database, ~2% of pages changed each
# night (bench/change.sql with a different date), imported into one store.
#   bench/import.sh [--mb N] [--nights N]
set -euo pipefail
cd "$(dirname "$0")/.."
mb=240 nights=7
while [ $# -gt 0 ]; do
  case $1 in --mb) mb=$2; shift 2;; --nights) nights=$2; shift 2;; *) echo "usage: $0 [--mb N] [--nights N]"; exit 2;; esac
done
work=${SNAPBENCH_DIR:-/tmp/snapbench}/import
rm -rf "$work" && mkdir -p "$work/backups"
base=${SNAPBENCH_DIR:-/tmp/snapbench}/base-${mb}mb.db
[ -f "$base" ] || /usr/bin/python3 bench/make_db.py "$base" --mb "$mb" >/dev/null
cp "$base" "$work/db.sqlite3"
for n in $(seq 1 "$nights"); do
  sed "s/2026-11-24/2026-11-$((10 + n))/; s/validated = 1 - validated WHERE id % 1200 = 0/validated = 1 - validated WHERE id % 1200 = $n/" \
    bench/change.sql | sqlite3 "$work/db.sqlite3"
  cp "$work/db.sqlite3" "$work/backups/db-backup-2026-11-$((10 + n))__22-00-00.sqlite3"
done
copies=$(du -sb "$work/backups" | cut -f1)
start=$(date +%s%N)
for f in "$work"/backups/*.sqlite3; do
  sqlite3 -bail -cmd ".load ./build/snapshot" "$work/db.sqlite3" "SELECT snapshot_import('$f')" >/dev/null
done
ns=$(( $(date +%s%N) - start ))
store=$(du -sb "$work/db.sqlite3-snapshots" | cut -f1)
sqlite3 -cmd ".load ./build/snapshot" "$work/db.sqlite3" "SELECT 'verify: ' || snapshot_verify()"
/usr/bin/python3 -c "
n, mb, copies, store, ns = $nights, $mb, $copies, $store, $ns
print(f'{n} full copies of a {mb} MB database: {copies/1e6:.1f} MB; imported into one store: {store/1e6:.1f} MB '
      f'({100*store/copies:.1f}% of the copies, {copies/store:.1f}x smaller) in {ns/1e9:.1f} s')"
