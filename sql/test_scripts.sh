#!/usr/bin/env bash
# SQL-level test of the sql/ scripts as cron runs them: the sqlite3 shell,
# the extension found by its bare name (`.load snapshot`), exit codes and
# log lines.
#   sql/test_scripts.sh BUILD_DIR          the scripts beside this file; the
#                                          extension in BUILD_DIR, through
#                                          LD_LIBRARY_PATH
#   sql/test_scripts.sh --installed DIR    the scripts in DIR (the package's
#                                          /usr/share/snapshot/sql); the
#                                          extension where the package put it
set -euo pipefail
if [ "$1" = "--installed" ]; then
  here=$(cd "$2" && pwd)
else
  LD_LIBRARY_PATH=$(cd "$1" && pwd)
  export LD_LIBRARY_PATH
  here=$(cd "$(dirname "$0")" && pwd)
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
db=$work/db.sqlite3
passed=0 failed=0
check() {  # check NAME COMMAND...: counts a pass when the command succeeds
  local name=$1; shift
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $name"; fi
}
sqlite3 "$db" "CREATE TABLE t(x); WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<2000) INSERT INTO t SELECT hex(randomblob(100)) FROM c;"

out=$(sqlite3 "$db" < "$here/backup.sql")
check "backup prints the snapshot and how to restore it" grep -q "backup database=$db store=$db-snapshots snapshot=1 pages_new=[1-9][0-9]* .*SELECT snapshot_restore(1)" <<<"$out"
sqlite3 "$db" "DELETE FROM t WHERE rowid > 10"
out=$(sqlite3 "$db" < "$here/nightly.sql")
check "nightly backs up" grep -q "nightly database=$db .* snapshot=2 " <<<"$out"
check "nightly prunes" grep -q "prune database=$db .* deleted=0" <<<"$out"
check "nightly verifies" grep -q "verify database=$db .* snapshots=2 result=ok" <<<"$out"
# nightly.sql must stand alone (cron feeds it on stdin), so it repeats
# backup.sql's snapshot step with its own label: the copies must not drift.
snapshot_step() { sed -n '/^\.bail on/,/WHERE db.name/p' "$1"; }
check "nightly's snapshot step is backup's" \
  diff <(snapshot_step "$here/backup.sql" | sed "s/'backup'/'nightly'/; s/%s backup /%s nightly /") \
       <(snapshot_step "$here/nightly.sql")
sqlite3 "$db" "DELETE FROM t"
out=$(sqlite3 "$db" < "$here/restore-latest.sql")
check "restore-latest restores the latest" grep -q "restore database=$db .* snapshot=2; the state it replaced is snapshot 3; .*SELECT snapshot_restore(3)" <<<"$out"
check "the restored rows are back" test "$(sqlite3 "$db" 'SELECT count(*) FROM t')" = 10
out=$(sqlite3 "$db" < "$here/list.sql")
check "list shows three snapshots" test "$(grep -c 'backup\|nightly\|pre-restore' <<<"$out")" = 3
out=$(sqlite3 "$db" < "$here/verify.sql")
check "verify says ok" grep -q "result=ok" <<<"$out"
# Damage makes verify (and so a cron job) exit non-zero.
pack=$(ls "$db-snapshots"/packs/*.pack | head -1)
printf '\xff\xff\xff\xff' | dd of="$pack" bs=1 seek=100 conv=notrunc status=none
check "verify exits non-zero on damage" bash -c "! sqlite3 '$db' < '$here/verify.sql' >/dev/null 2>&1"
echo "sql scripts ($here/*.sql): $passed passed, $failed failed"
[ "$failed" -eq 0 ]
