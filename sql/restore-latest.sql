-- Restore the latest snapshot into the live database, while the application
-- keeps running. The replaced state is kept as a 'pre-restore' snapshot:
--   sqlite3 /path/to/db.sqlite3 < sql/restore-latest.sql
.bail on
.load snapshot
.mode list
.headers off
SELECT printf('restored snapshot %d', snapshot_restore());
SELECT printf('the state it replaced is snapshot %d; to undo: SELECT snapshot_restore(%d);', id, id)
  FROM snapshot_list WHERE label = 'pre-restore' ORDER BY id DESC LIMIT 1;
