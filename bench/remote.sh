#!/bin/bash
# Off-machine copies against the tools people use instead, on the same
# S3-compatible server (the one tools/object-store.sh starts), the same
# database and in the same run:
#   - upload bytes and time of a full copy, then of bench/change.sql's 2%
#     change: ours (snapshot_backup + snapshot_push), `rclone copy` of the
#     database file, and restic (its rclone backend: Debian's restic 0.14
#     sends aws-chunked uploads, which Swift's s3api refuses; through
#     `rclone serve restic` the objects land on the same server);
#   - the time to get the latest state back on an empty directory: ours
#     (snapshot_restore_to(path, NULL, 's3://...')) against downloading the
#     plain copy rclone uploaded (`rclone copy`, with and without an fsync of
#     the file: our restore syncs the file it writes), and restic's restore.
# Bytes are what each tool's prefix holds on the server (rclone size), so
# other users of the shared server do not count. Each rep uses fresh prefixes
# and removes them afterwards; the summary gives medians.
#
#   eval "$(tools/object-store.sh start)"
#   /usr/bin/python3 bench/make_db.py /tmp/base240.db --mb 240
#   bench/remote.sh /tmp/base240.db build/snapshot.so [REPS]
#
# Installs rclone, restic and bc with apt-get when missing. The work
# directory is $REMOTE_BENCH_DIR (default: a new one under /tmp), removed
# at exit.
set -euo pipefail
base=$(readlink -f "$1"); ext=$(readlink -f "$2"); ext=${ext%.so}; reps=${3:-3}
change_sql=$(dirname "$(readlink -f "$0")")/change.sql
: "${AWS_ENDPOINT_URL:?run eval \"\$(tools/object-store.sh start)\" first}"
# Each rep sets its own remote; the exported one would make the first
# backup upload (in the background) to the shared prefix before that.
unset SNAPSHOT_REMOTE

missing=()
for p in rclone restic bc; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  { $sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
      "${missing[@]}"; } >/dev/null || { echo "remote.sh: apt-get could not install ${missing[*]}" >&2; exit 1; }
fi

work=${REMOTE_BENCH_DIR:-$(mktemp -d /tmp/snapshot-remote-bench-XXXXXX)}
mkdir -p "$work"; trap 'rm -rf "$work"' EXIT; cd "$work"
bucket=snapshot-test
# rclone's S3 remote "os", from the same AWS_* variables our extension reads.
export RCLONE_CONFIG=/dev/null RCLONE_CONFIG_OS_TYPE=s3 RCLONE_CONFIG_OS_PROVIDER=Other \
  RCLONE_CONFIG_OS_ENDPOINT=$AWS_ENDPOINT_URL RCLONE_CONFIG_OS_REGION=${AWS_REGION:-us-east-1} \
  RCLONE_CONFIG_OS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID RCLONE_CONFIG_OS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
export RESTIC_PASSWORD=${RESTIC_PASSWORD:-snapbench}
# rclone's AWS SDK refuses AWS_CA_BUNDLE with its own HTTP transport.
rclone() { env -u AWS_CA_BUNDLE rclone "$@"; }
restic() { env -u AWS_CA_BUNDLE RESTIC_CACHE_DIR="$work/restic-cache" restic "$@"; }
size() { rclone size --json "os:$bucket/$1" | sed -n 's/.*"bytes":\([0-9]*\).*/\1/p'; }
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }
sql() { sqlite3 "$@" >/dev/null; }
# ours DB [SQL...]: snapshot_backup(), the SQL, snapshot_push(), in one
# process (once the store has a remote, the backup starts uploading in the
# background and the push waits for that); prints the push's own time.
ours() {
  local db=$1; shift
  # On stdin: the shell times statements (.timer) only there.
  printf '%s\n' ".load $ext" "SELECT snapshot_backup();" "$@" ".timer on" "SELECT snapshot_push();" |
    sqlite3 -bail "$db" | sed -n 's/^Run Time: real \([0-9.]*\).*/\1/p'
}

results=$work/results; : >"$results"
record() { echo "$1 $2" >>"$results"; }  # record NAME VALUE
for rep in $(seq "$reps"); do
  p=remote-bench-$$-$rep; ours=s3://$bucket/$p/ours
  rm -rf db restore plain restic-out restic-cache; mkdir -p db restore plain restic-out
  cp "$base" db/app.db
  load0=$(cut -d' ' -f1 /proc/loadavg)

  # Full copies.
  t=$(now); ours_push=$(ours db/app.db "SELECT snapshot_remote('$ours');"); record ours_full_s "$(since $t)"
  record ours_full_push_s "$ours_push"; record ours_full_b "$(size $p/ours)"
  t=$(now); rclone copy db/app.db "os:$bucket/$p/rclone/"; record rclone_full_s "$(since $t)"
  record rclone_full_b "$(size $p/rclone)"
  restic -q -r "rclone:os:$bucket/$p/restic" init >/dev/null; b0=$(size $p/restic)
  t=$(now); restic -q -r "rclone:os:$bucket/$p/restic" backup db/app.db >/dev/null; record restic_full_s "$(since $t)"
  record restic_full_b $(( $(size $p/restic) - b0 ))

  # The 2% change.
  sqlite3 db/app.db <"$change_sql"
  b0=$(size $p/ours)
  t=$(now); ours_push=$(ours db/app.db); record ours_2pct_s "$(since $t)"; record ours_2pct_push_s "$ours_push"
  record ours_2pct_b $(( $(size $p/ours) - b0 ))
  # rclone sends the whole changed file again (what its prefix then holds).
  t=$(now); rclone copy db/app.db "os:$bucket/$p/rclone/"; record rclone_2pct_s "$(since $t)"
  record rclone_2pct_b "$(size $p/rclone)"
  b0=$(size $p/restic)
  t=$(now); restic -q -r "rclone:os:$bucket/$p/restic" backup db/app.db >/dev/null; record restic_2pct_s "$(since $t)"
  record restic_2pct_b $(( $(size $p/restic) - b0 ))

  # The latest state back on an empty directory.
  sync; rm -rf restic-cache
  t=$(now); sql :memory: ".load $ext" "SELECT snapshot_restore_to('restore/app.db', NULL, '$ours')"
  record ours_restore_s "$(since $t)"; cmp restore/app.db db/app.db
  t=$(now); rclone copy "os:$bucket/$p/rclone/app.db" plain/; record plain_get_s "$(since $t)"
  cmp plain/app.db db/app.db; rm plain/app.db; sync
  t=$(now); rclone copy "os:$bucket/$p/rclone/app.db" plain/ && sync plain/app.db; record plain_get_sync_s "$(since $t)"
  t=$(now); restic -q -r "rclone:os:$bucket/$p/restic" restore latest --target restic-out >/dev/null
  record restic_restore_s "$(since $t)"; cmp restic-out/db/app.db db/app.db 2>/dev/null || cmp restic-out/"$work"/db/app.db db/app.db

  record load "$load0"; record load "$(cut -d' ' -f1 /proc/loadavg)"
  rclone purge "os:$bucket/$p"
  echo "rep $rep of $reps done" >&2
done

median() { grep "^$1 " "$results" | cut -d' ' -f2 | sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
mb() { printf '%.2f' "$(echo "scale=4; $(median "$1") / 1000000" | bc)"; }
s() { printf '%.2f' "$(median "$1")"; }
ratio() { printf '%.3f' "$(echo "scale=6; $(median "$1") / $(median "$2")" | bc)"; }
echo "database $(stat -c %s db/app.db) bytes; $reps reps, medians; load average $(grep '^load ' "$results" | cut -d' ' -f2 | sort -g | sed -n '1p;$p' | paste -sd-)"
printf '%-34s %12s %10s %12s %10s\n' "" "full MB" "full s" "2% MB" "2% s"
printf '%-34s %12s %10s %12s %10s\n' "ours: backup + push" "$(mb ours_full_b)" "$(s ours_full_s)" "$(mb ours_2pct_b)" "$(s ours_2pct_s)"
printf '%-34s %12s %10s %12s %10s\n' "  of which snapshot_push()" "" "$(s ours_full_push_s)" "" "$(s ours_2pct_push_s)"
printf '%-34s %12s %10s %12s %10s\n' "rclone copy of the file" "$(mb rclone_full_b)" "$(s rclone_full_s)" "$(mb rclone_2pct_b)" "$(s rclone_2pct_s)"
printf '%-34s %12s %10s %12s %10s\n' "restic backup (rclone backend)" "$(mb restic_full_b)" "$(s restic_full_s)" "$(mb restic_2pct_b)" "$(s restic_2pct_s)"
echo "2% change uploaded: ours / restic $(ratio ours_2pct_b restic_2pct_b), ours / rclone $(ratio ours_2pct_b rclone_2pct_b)"
echo "restore of the latest: ours $(s ours_restore_s) s; plain download (rclone copy) $(s plain_get_s) s," \
     "with fsync $(s plain_get_sync_s) s; restic restore $(s restic_restore_s) s"
echo "ours / plain download $(ratio ours_restore_s plain_get_s), ours / plain download with fsync" \
     "$(ratio ours_restore_s plain_get_sync_s)"
echo "every value (seconds, bytes), rep by rep:"
cut -d' ' -f1 "$results" | awk '!seen[$0]++' | while read -r name; do
  echo "  $name $(grep "^$name " "$results" | cut -d' ' -f2 | xargs printf '%.10g ')"
done
