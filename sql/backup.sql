-- One snapshot now (e.g. on service start, before migrations):
--   sqlite3 /path/to/db.sqlite3 < sql/backup.sql
.bail on
.load snapshot
.mode list
.headers off
SELECT printf('snapshot %d of %s in %s; to restore it: SELECT snapshot_restore(%d);',
              id, 'main', snapshot_dir(), id)
  FROM (SELECT snapshot_backup('backup') AS id);
