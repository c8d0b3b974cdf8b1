-- One snapshot now (e.g. on service start, before migrations):
--   sqlite3 /path/to/db.sqlite3 < /usr/share/snapshot/sql/backup.sql
-- Prints one line for the log: when, which database, which store, the
-- snapshot id, what it added, and the exact command that restores it.
-- nightly.sql repeats these lines (it cannot include this file; it says why).
.bail on
-- Wait for a writer's commit instead of failing on "database is locked"
-- (the shell reads the schema before any snapshot function runs).
.timeout 30000
.load snapshot
.mode list
.headers off
CREATE TEMP TABLE IF NOT EXISTS snapshot_taken(id INTEGER);
DELETE FROM temp.snapshot_taken;
INSERT INTO temp.snapshot_taken SELECT snapshot_backup('backup');
SELECT printf('%s backup database=%s store=%s snapshot=%d pages_new=%d bytes_new=%d db_bytes=%d; to restore it: sqlite3 %s "SELECT snapshot_restore(%d)"',
              strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), db.file, snapshot_dir(), l.id, l.pages_new, l.bytes_new,
              l.db_bytes, db.file, l.id)
  FROM snapshot_list AS l JOIN temp.snapshot_taken USING (id), pragma_database_list AS db
 WHERE db.name = 'main';
