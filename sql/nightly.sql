-- Nightly backup with retention and verification, for cron:
--   sqlite3 /path/to/db.sqlite3 < /usr/share/snapshot/sql/nightly.sql
-- Needs the extension where `.load snapshot` finds it: the Debian package
-- (README, Install), or LD_LIBRARY_PATH=/path/to/build. Stops at the first
-- error and exits non-zero, so cron mails the failure. One log line per action.
-- The snapshot step repeats backup.sql's, with the label 'nightly': this file
-- must stand alone, because cron feeds it to the bare sqlite3 shell on stdin,
-- where `.read backup.sql` would look in cron's working directory, not beside
-- this file. sql/test_scripts.sh checks that the two steps stay the same.
.bail on
-- Wait for a writer's commit instead of failing on "database is locked"
-- (the shell reads the schema before any snapshot function runs).
.timeout 30000
.load snapshot
.mode list
.headers off
CREATE TEMP TABLE IF NOT EXISTS snapshot_taken(id INTEGER);
DELETE FROM temp.snapshot_taken;
INSERT INTO temp.snapshot_taken SELECT snapshot_backup('nightly');
SELECT printf('%s nightly database=%s store=%s snapshot=%d pages_new=%d bytes_new=%d db_bytes=%d; to restore it: sqlite3 %s "SELECT snapshot_restore(%d)"',
              strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), db.file, snapshot_dir(), l.id, l.pages_new, l.bytes_new,
              l.db_bytes, db.file, l.id)
  FROM snapshot_list AS l JOIN temp.snapshot_taken USING (id), pragma_database_list AS db
 WHERE db.name = 'main';
-- Keep the 14 newest snapshots and everything from the last 30 days.
SELECT printf('%s prune database=%s store=%s deleted=%d',
              strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), (SELECT file FROM pragma_database_list WHERE name = 'main'),
              snapshot_dir(), snapshot_prune(14, 30));
SELECT printf('%s verify database=%s store=%s snapshots=%d result=%s',
              strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), (SELECT file FROM pragma_database_list WHERE name = 'main'),
              snapshot_dir(), (SELECT count(*) FROM snapshot_list), snapshot_verify());
