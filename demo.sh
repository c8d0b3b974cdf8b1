#!/usr/bin/env bash
# The main job, end to end: install dependencies, build the extension, then
# snapshot and restore a real database (Debian's package index as documents
# and annotations) the way an application's operator would, from SQL.
#   ./demo.sh [--mb N]      database size in MB (default 50)
set -euo pipefail
cd "$(dirname "$0")"
mb=50
[ "${1:-}" = "--mb" ] && mb=$2
tools/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
echo "built $(pwd)/build/snapshot.so"

work=${SNAPSHOT_DEMO_DIR:-/tmp/snapshot-demo}
rm -rf "$work" && mkdir -p "$work"
db=$work/app.db
/usr/bin/python3 bench/make_db.py "$db" --mb "$mb" >/dev/null
sql() { sqlite3 -bail -cmd ".load $(pwd)/build/snapshot" "$db" "$@"; }
step() { printf '\n== %s\n' "$*"; }

step "a $(du -h "$db" | cut -f1) database: $(sql 'SELECT count(*) FROM document') documents, $(sql 'SELECT count(*) FROM annotation') annotations"
step "full snapshot, taken online"
sql "SELECT 'snapshot ' || snapshot_backup('first')"
step "about 2% of the pages change, scattered over the file"
sql < bench/change.sql
step "incremental snapshot: only the changed pages are stored"
sql "SELECT 'snapshot ' || snapshot_backup('after-change')"
sql -header -column "SELECT id, label, page_count, pages_new, bytes_new, db_bytes FROM snapshot_list"
echo "store: $(du -sh "$db-snapshots" | cut -f1) for two snapshots of a $(du -h "$db" | cut -f1) database"

step "a mistake: every annotation deleted"
sql "DELETE FROM annotation; SELECT count(*) || ' annotations left' FROM annotation"
step "restore the latest snapshot into the live database"
sql "SELECT 'restored snapshot ' || snapshot_restore()"
sql "SELECT count(*) || ' annotations back; integrity: ' || (SELECT integrity_check FROM pragma_integrity_check) FROM annotation"
step "the mistake itself was kept as a 'pre-restore' snapshot, so the restore can be undone"
sql -header -column "SELECT id, label, pages_new, bytes_new FROM snapshot_list"

step "every stored byte re-read and checked"
sql "SELECT 'verify: ' || snapshot_verify()"
step "snapshot 1 restored into a new file, without touching the live database"
sql "SELECT 'restored snapshot ' || snapshot_restore_to('$work/first.db', 1) || ' to $work/first.db'"
sqlite3 "$work/first.db" "SELECT 'first.db: ' || count(*) || ' annotations, integrity ' || (SELECT integrity_check FROM pragma_integrity_check) FROM annotation"
step "retention: keep the 2 newest snapshots"
sql "SELECT 'pruned ' || snapshot_prune(2) || ' snapshot(s)'"
sql -header -column "SELECT id, label, pages_new, bytes_new FROM snapshot_list"
echo "store now: $(du -sh "$db-snapshots" | cut -f1)"
echo
echo "demo files are in $work"
