#!/bin/bash
# Upload bytes and time of pushing a database's snapshots (a full one, then
# after bench/change.sql's 2% change) to the object store started by
# tools/object-store.sh, and the time of restoring the latest from it on an
# empty directory. Bytes are the growth of the server's data directory.
#
#   eval "$(tools/object-store.sh start)"
#   /usr/bin/python3 bench/make_db.py /tmp/base.db --mb 240
#   bench/remote.sh /tmp/base.db build/snapshot
#
# restic 0.14 (Debian's) cannot be compared on this server: Swift's s3api
# refuses its aws-chunked uploads.
set -euo pipefail
base=$1; ext=$2; work=$(mktemp -d /tmp/snapshot-remote-bench-XXXXXX); trap 'rm -rf $work' EXIT; base=$(readlink -f "$base"); ext=$(readlink -f "$ext"); ext=${ext%.so}; cd $work
srv=${SNAPSHOT_OBJECT_STORE_DIR:-/tmp/snapshot-object-store}/srv
url=s3://snapshot-test/remote-bench-$$
bytes() { du -sb $srv | cut -f1; }
t() { local s=$(date +%s.%N); "$@" >/dev/null; echo "$(date +%s.%N) - $s" | bc; }
cp $base app.db
b0=$(bytes); tp=$(t sqlite3 app.db ".load $ext" "SELECT snapshot_backup()" "SELECT snapshot_remote('$url')" "SELECT snapshot_push()")
echo "ours full:   backup+push ${tp} s, uploaded $(( $(bytes) - b0 )) bytes (database $(stat -c %s app.db))"
sqlite3 app.db < "$(dirname "$(readlink -f "$0")")/change.sql"
b0=$(bytes); tp=$(t sqlite3 app.db ".load $ext" "SELECT snapshot_backup()" "SELECT snapshot_push()")
echo "ours 2%:     backup+push ${tp} s, uploaded $(( $(bytes) - b0 )) bytes"
mkdir new; tr=$(t sqlite3 :memory: ".load $ext" "SELECT snapshot_restore_to('new/app.db', NULL, '$url')")
cmp new/app.db app.db && echo "ours restore of the latest from the remote: ${tr} s, byte-exact"
