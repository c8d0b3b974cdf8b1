-- Restore the latest snapshot into the live database, while the application
-- keeps running. The replaced state is kept as a 'pre-restore' snapshot:
--   sqlite3 /path/to/db.sqlite3 < /usr/share/snapshot/sql/restore-latest.sql
.bail on
-- Wait for a writer's commit instead of failing on "database is locked"
-- (the shell reads the schema before any snapshot function runs).
.timeout 30000
.load snapshot
.mode list
.headers off
CREATE TEMP TABLE IF NOT EXISTS snapshot_restored(id INTEGER);
DELETE FROM temp.snapshot_restored;
INSERT INTO temp.snapshot_restored SELECT snapshot_restore();
SELECT printf('%s restore database=%s store=%s snapshot=%d; the state it replaced is snapshot %d; to undo: sqlite3 %s "SELECT snapshot_restore(%d)"',
              strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), db.file, snapshot_dir(), r.id, p.id, db.file, p.id)
  FROM temp.snapshot_restored AS r, pragma_database_list AS db,
       (SELECT max(id) AS id FROM snapshot_list WHERE label = 'pre-restore') AS p
 WHERE db.name = 'main';
