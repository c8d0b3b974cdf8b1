-- Nightly backup with retention, for cron:
--   sqlite3 /path/to/db.sqlite3 < sql/nightly.sql
-- Needs the extension on the loader's path (see README: cmake --install, or
-- LD_LIBRARY_PATH=/path/to/build). Stops at the first error and exits
-- non-zero, so cron mails the failure.
.bail on
.load snapshot
.mode list
.headers off
SELECT printf('snapshot %d of %s in %s', snapshot_backup('nightly'), 'main', snapshot_dir());
-- Keep the 14 newest snapshots and everything from the last 30 days.
SELECT printf('pruned %d snapshot(s)', snapshot_prune(14, 30));
SELECT printf('verify: %s', snapshot_verify());
