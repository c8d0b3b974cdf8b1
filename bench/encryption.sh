#!/bin/bash
# What encrypting a remote copy costs: snapshot_push of a full snapshot and
# snapshot_restore_to of it on an empty directory, to and from the same
# server (the one tools/object-store.sh starts), without and with
# SNAPSHOT_REMOTE_KEY_FILE, taking turns REPS times. Prints each run and
# the medians: wall-clock and CPU seconds (user + system) of each process,
# and the bytes each copy holds on the server (rclone size).
#
#   eval "$(tools/object-store.sh start)"
#   /usr/bin/python3 bench/make_db.py /tmp/base240.db --mb 240
#   bench/encryption.sh /tmp/base240.db build/snapshot.so [REPS]
#
# Every restored file is compared with the database (cmp). Each run uses a
# fresh prefix, removed afterwards; the work directory is removed at exit.
set -euo pipefail
base=$(readlink -f "$1"); ext=$(readlink -f "$2"); ext=${ext%.so}; reps=${3:-3}
: "${AWS_ENDPOINT_URL:?run eval \"\$(tools/object-store.sh start)\" first}"
command -v rclone >/dev/null || { echo "needs rclone (apt-get install rclone)" >&2; exit 1; }
work=$(mktemp -d /tmp/snapshot-encryption-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
bucket=snapshot-test
export RCLONE_CONFIG=/dev/null RCLONE_CONFIG_OS_TYPE=s3 RCLONE_CONFIG_OS_PROVIDER=Other \
  RCLONE_CONFIG_OS_ENDPOINT=$AWS_ENDPOINT_URL RCLONE_CONFIG_OS_REGION=${AWS_REGION:-us-east-1} \
  RCLONE_CONFIG_OS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID RCLONE_CONFIG_OS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
rclone() { env -u AWS_CA_BUNDLE rclone "$@"; }
now() { date +%s.%N; }
# cpu CMD...: runs CMD, its output dropped; ./cpu gets its CPU seconds
# (user + system), which a loaded machine's scheduling does not inflate.
cpu() { /usr/bin/time -f "%U %S" -o cpu.raw "$@" >/dev/null; awk '{print $1 + $2}' cpu.raw > cpu; }
since() { echo "$(now) - $1" | bc; }
# No default remote: a backup with one would start a background push.
unset SNAPSHOT_REMOTE SNAPSHOT_REMOTE_KEY_FILE
(umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > key)

declare -A runs
for ((r = 1; r <= reps; r++)); do
  # Alternate which mode goes first, so a trend in the machine's load
  # does not favour one.
  modes="plain encrypted"; ((r % 2 == 0)) && modes="encrypted plain"
  for mode in $modes; do
    rm -rf db new && mkdir db new && cp "$base" db/app.db
    sqlite3 db/app.db ".load $ext" "SELECT snapshot_backup()" >/dev/null
    prefix=encryption-bench-$$-$r-$mode
    url=s3://$bucket/$prefix
    keyvar=(); [ "$mode" = encrypted ] && keyvar=(SNAPSHOT_REMOTE_KEY_FILE="$work/key")
    sqlite3 db/app.db ".load $ext" "SELECT snapshot_remote('$url')" >/dev/null
    t=$(now)
    cpu env "${keyvar[@]}" sqlite3 db/app.db ".load $ext" "SELECT snapshot_push()"
    push=$(since "$t"); push_cpu=$(cat cpu)
    t=$(now)
    (cd new && cpu env "${keyvar[@]}" sqlite3 :memory: ".load $ext" "SELECT snapshot_restore_to('app.db', NULL, '$url')")
    restore=$(since "$t"); restore_cpu=$(cat new/cpu)
    cmp -s db/app.db new/app.db || { echo "$mode: the restored file differs" >&2; exit 1; }
    bytes=$(rclone size --json "os:$bucket/$prefix" | sed -n 's/.*"bytes":\([0-9]*\).*/\1/p')
    rclone purge "os:$bucket/$prefix" >/dev/null 2>&1 || true
    printf '%-9s rep %d: push %6.2f s (CPU %5.2f s), restore %6.2f s (CPU %5.2f s), %d bytes on the server\n' \
      "$mode" "$r" "$push" "$push_cpu" "$restore" "$restore_cpu" "$bytes"
    runs[$mode-push]+="$push "; runs[$mode-restore]+="$restore "; runs[$mode-bytes]=$bytes
    runs[$mode-push-cpu]+="$push_cpu "; runs[$mode-restore-cpu]+="$restore_cpu "
  done
done
median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
echo "database: $(stat -c %s "$base") bytes; medians of $reps runs each:"
for mode in plain encrypted; do
  printf '%-9s push %6.2f s (CPU %5.2f s), restore %6.2f s (CPU %5.2f s), %d bytes on the server\n' "$mode" \
    "$(median "${runs[$mode-push]}")" "$(median "${runs[$mode-push-cpu]}")" \
    "$(median "${runs[$mode-restore]}")" "$(median "${runs[$mode-restore-cpu]}")" "${runs[$mode-bytes]}"
done
