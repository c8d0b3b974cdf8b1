#!/bin/bash
# Benchmark snapshot against the tools people use instead (bench/README.md), in one run, on the same data.
#
#   bench/run.sh [--mb N] [--wal] [--reps N] [--no-warm] [--keep DIR] [--so PATH] [--baseline-so PATH]
#
#   --mb N      database size in MB (10^6 bytes), default 240
#   --wal       build the database in WAL mode (default: rollback journal, DELETE)
#   --reps N    run every tool N times, round-robin; the table shows medians (default 3)
#   --no-warm   do not touch-and-free memory before each timed step (see README)
#   --keep DIR  do the run in DIR (must not exist or be empty) and keep everything
#               there; by default the run uses $SNAPBENCH_DIR/run and deletes it.
#   --so PATH   the extension measured as "ours" (default: build/snapshot.so)
#   --baseline-so PATH
#               also measure this build of the extension, as "baseline", in the
#               same run (round-robin with the others), and compare the two
#
# Work dir: $SNAPBENCH_DIR (default /tmp/snapbench); the base database is cached
# there between runs and rebuilt when make_db.py or the size changes.
# The OS page cache is NOT dropped: every tool reads a file just copied, so all
# times are warm-cache times. Dirty pages are flushed (sync) before each timed step.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
PY=/usr/bin/python3
MB=240 WAL="" KEEP="" REPS=3 WARM=1 SO=$ROOT/build/snapshot.so BASE_SO=""
while (($#)); do
  case $1 in
    --mb) MB=$2; shift 2 ;;
    --wal) WAL=--wal; shift ;;
    --keep) KEEP=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --no-warm) WARM=""; shift ;;
    --so) SO=$(realpath "$2"); shift 2 ;;
    --baseline-so) BASE_SO=$(realpath "$2"); shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

WORK=$(realpath -m "${SNAPBENCH_DIR:-/tmp/snapbench}")
RUN=$(realpath -m "${KEEP:-$WORK/run}")
for d in "$WORK" "$RUN"; do
  case "$d/" in "$ROOT"/*) echo "work dir $d is inside the repo; pick another" >&2; exit 2 ;; esac
done
if [[ -n $KEEP ]]; then
  [[ ! -e $RUN || -z $(ls -A "$RUN") ]] || { echo "--keep $RUN: not empty" >&2; exit 2; }
else
  rm -rf "$RUN"
fi
mkdir -p "$WORK" "$RUN"
RES=$RUN/results.tsv; : >"$RES"
LOG=$RUN/log.txt; : >"$LOG"

export RESTIC_PASSWORD=${RESTIC_PASSWORD:-snapbench} RESTIC_CACHE_DIR=$RUN/restic-cache
export BORG_BASE_DIR=$RUN/borg-home BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
export BORG_PASSPHRASE=${BORG_PASSPHRASE:-}

# --- helpers ---------------------------------------------------------------
# warm: write and delete 2x the db size of page cache. On this VM (Firecracker,
# virtio-balloon free page reporting) guest memory not used in the last seconds
# costs a host fault on first touch, which doubles the time of any tool that
# writes 240 MB; after warm every tool starts with the same reusable memory.
warm() {
  [[ -n $WARM ]] || return 0
  head -c $((2 * $(size "$BASE"))) /dev/zero >"$RUN/.warm"; rm -f "$RUN/.warm"
}
# timed VAR cmd...: run cmd (output to the log), put its wall time in seconds into VAR
timed() {
  local __var=$1 t0 t1; shift
  sync; warm
  t0=$(date +%s.%N)
  "$@" >>"$LOG" 2>&1 || { echo "FAILED: $* (see $LOG)" >&2; tail -5 "$LOG" >&2; return 1; }
  t1=$(date +%s.%N)
  printf -v "$__var" '%s' "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')"
}
size() { stat -c %s "$1"; }
dusb() { du -sb "$1" | cut -f1; }
row() { printf 'row\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RES"; }   # tool full_s full_B incr_s incr_B
info() { printf 'info\t%s\t%s\n' "$1" "$2" >>"$RES"; }
change() { sqlite3 "$1" <"$HERE/change.sql"; }
# fresh NAME: a new dir with a fresh copy of the base database; prints the db path
fresh() { mkdir -p "$RUN/$REP/$1"; cp "$BASE" "$RUN/$REP/$1/db.sqlite3"; echo "$RUN/$REP/$1/db.sqlite3"; }
done_with() { [[ -n $KEEP ]] || rm -rf "${RUN:?}/$REP/$1"; }

# --- the data --------------------------------------------------------------
BASE=$WORK/base-${MB}mb${WAL:+-wal}.db
STAMP=$(cat "$HERE/make_db.py" | sha256sum | cut -c1-16)
if [[ ! -f $BASE || $(cat "$BASE.stamp" 2>/dev/null) != "$STAMP" ]]; then
  echo "building $BASE ..."
  rm -f "$BASE.stamp"
  $PY "$HERE/make_db.py" "$BASE" --mb "$MB" $WAL
  echo "$STAMP" >"$BASE.stamp"
fi
PAGES=$(sqlite3 "$BASE" "PRAGMA page_count")
echo "sqlite3 $(sqlite3 --version | cut -d' ' -f1), $(zstd --version | grep -o 'v[0-9.]*'), $(restic version | cut -d' ' -f1-2), $(borg --version), $(nproc) cores"
echo "database: $BASE, $PAGES pages, $(size "$BASE") bytes, journal_mode=$(sqlite3 "$BASE" 'PRAGMA journal_mode')"
echo "run dir:  $RUN   (OS page cache not dropped: warm-cache times)"

REP=ref; mkdir -p "$RUN/ref"
cp "$BASE" "$RUN/ref/before.db"; cp "$BASE" "$RUN/ref/after.db"; change "$RUN/ref/after.db"
CHANGED=$($PY "$HERE/pagediff.py" "$RUN/ref/before.db" "$RUN/ref/after.db")
echo "change.sql changes $CHANGED"
info pages "$PAGES"; info changed "$CHANGED"
SUM_BEFORE=$(sqlite3 "$RUN/ref/before.db" .sha3sum)
SUM_AFTER=$(sqlite3 "$RUN/ref/after.db" .sha3sum)
done_with ""

# --- the tools: each does full, change.sql, incremental on its own fresh copy --
t_backup() {
  local db d=$RUN/$REP/backup ft it; db=$(fresh backup)
  timed ft sqlite3 "$db" ".backup '$d/full.db'"
  change "$db"
  timed it sqlite3 "$db" ".backup '$d/incr.db'"
  row .backup "$ft" "$(size "$d/full.db")" "$it" "$(size "$d/incr.db")"; done_with backup
}
t_vacuum() {
  local db d=$RUN/$REP/vacuum ft it; db=$(fresh vacuum)
  timed ft sqlite3 "$db" "VACUUM INTO '$d/full.db'"
  change "$db"
  timed it sqlite3 "$db" "VACUUM INTO '$d/incr.db'"
  row "VACUUM INTO" "$ft" "$(size "$d/full.db")" "$it" "$(size "$d/incr.db")"; done_with vacuum
}
t_cp() {
  local db d=$RUN/$REP/cp ft it; db=$(fresh cp)
  timed ft cp "$db" "$d/full.db"
  change "$db"
  timed it cp "$db" "$d/incr.db"
  row cp "$ft" "$(size "$d/full.db")" "$it" "$(size "$d/incr.db")"; done_with cp
}
t_zstd() {  # t_zstd LEVEL
  local db d=$RUN/$REP/zstd$1 ft it; db=$(fresh zstd$1)
  timed ft zstd -"$1" -T2 -q "$db" -o "$d/full.zst"
  change "$db"
  timed it zstd -"$1" -T2 -q "$db" -o "$d/incr.zst"
  row "zstd -$1 -T2" "$ft" "$(size "$d/full.zst")" "$it" "$(size "$d/incr.zst")"; done_with zstd$1
}
t_zstd1() { t_zstd 1; }
t_zstd3() { t_zstd 3; }
t_restic() {  # bytes = growth of the repo (du -sb)
  local db r=$RUN/$REP/restic/repo ft it b0 b1 b2; db=$(fresh restic)
  restic -q -r "$r" init --repository-version 2 >>"$LOG"; b0=$(dusb "$r")
  timed ft restic -q -r "$r" backup --compression auto "$db"; b1=$(dusb "$r")
  change "$db"
  timed it restic -q -r "$r" backup --compression auto "$db"; b2=$(dusb "$r")
  row "restic $(restic version | cut -d' ' -f2)" "$ft" $((b1 - b0)) "$it" $((b2 - b1)); done_with restic
}
t_borg() {  # bytes = growth of the repo (du -sb)
  local db r=$RUN/$REP/borg/repo ft it b0 b1 b2; db=$(fresh borg)
  borg init -e none "$r" >>"$LOG" 2>&1; b0=$(dusb "$r")
  timed ft borg create --compression zstd,3 "$r::full" "$db"; b1=$(dusb "$r")
  change "$db"
  timed it borg create --compression zstd,3 "$r::incr" "$db"; b2=$(dusb "$r")
  row "borg $(borg --version | cut -d' ' -f2)" "$ft" $((b1 - b0)) "$it" $((b2 - b1)); done_with borg
}

# ours: bytes = growth of the store dir next to the db (DB-snapshots/)
OURS_TIMEOUT=${OURS_TIMEOUT:-120}   # seconds; the extension is young, a hang must not stall the run
QSO=$SO
q() { timeout "$OURS_TIMEOUT" sqlite3 "$1" -cmd ".load ${QSO%.so}" "$2"; }
restored() {  # restored WHAT SECONDS FILE EXPECTED_SHA3
  printf 'restore\t%s\t%s\t%s\n' "$1" "$2" \
    "$([[ $(sqlite3 "$3" .sha3sum) == "$4" ]] && echo ok || echo WRONG)" >>"$RES"
}
t_ours() {  # t_ours [NAME SO]: the extension at SO (default $SO), reported as NAME
  local name=${1:-ours} QSO=${2:-$SO}
  local db d=$RUN/$REP/$name store ft fb it ib t pre; db=$(fresh "$name")
  pre=${1:+$1: }
  timed ft q "$db" "SELECT snapshot_backup('full')" || return 1
  store=$db-snapshots
  [[ -d $store ]] || store=$(find "$d" -mindepth 1 -maxdepth 1 -type d -name '*snapshots*' | head -1)
  [[ -n $store && -d $store ]] || { echo "$name: no store dir next to $db" >&2; return 1; }
  fb=$(dusb "$store")
  change "$db"
  timed it q "$db" "SELECT snapshot_backup('incr')" || return 1
  ib=$(($(dusb "$store") - fb))
  row "$name" "$ft" "$fb" "$it" "$ib"
  timed t q "$db" "SELECT snapshot_restore(1)" || return 1
  restored "${pre}snapshot_restore(1) into the live db" "$t" "$db" "$SUM_BEFORE"
  timed t q "$db" "SELECT snapshot_restore_to('$d/restored1.db', 1)" || return 1
  restored "${pre}snapshot_restore_to(new file, 1)" "$t" "$d/restored1.db" "$SUM_BEFORE"
  timed t q "$db" "SELECT snapshot_restore_to('$d/restored2.db', 2)" || return 1
  restored "${pre}snapshot_restore_to(new file, 2)" "$t" "$d/restored2.db" "$SUM_AFTER"
  done_with "$name"
}
t_baseline() { t_ours baseline "$BASE_SO"; }

TOOLS="backup vacuum cp zstd1 zstd3 restic borg"
if [[ -f $SO ]]; then TOOLS="$TOOLS ours"; else info ours "skipped: $SO not built yet"; fi
if [[ -n $BASE_SO ]]; then
  [[ -f $BASE_SO ]] || { echo "--baseline-so $BASE_SO: no such file" >&2; exit 2; }
  TOOLS="$TOOLS baseline"; info so "$SO"; info baseline_so "$BASE_SO"
fi
for REP in $(seq "$REPS"); do      # round-robin, so drift hits every tool alike
  ORDER=$TOOLS
  # ours and the baseline take turns at going first
  if ((REP % 2 == 0)) && [[ $TOOLS == *" ours baseline"* ]]; then ORDER=${TOOLS/ ours baseline/ baseline ours}; fi
  echo "rep $REP/$REPS: $ORDER"
  for t in $ORDER; do
    if [[ $t != ours && $t != baseline ]]; then t_$t
    elif ! t_$t; then info "$t" "FAILED (see $WORK/last-log.txt)"; TOOLS=${TOOLS/ $t/}
    fi
  done
done

echo
$PY "$HERE/report.py" "$RES"
cp "$LOG" "$WORK/last-log.txt"
if [[ -n $KEEP ]]; then echo "kept: $RUN"; else rm -rf "$RUN"; fi
