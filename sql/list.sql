-- The snapshots of a database, newest last:
--   sqlite3 /path/to/db.sqlite3 < /usr/share/snapshot/sql/list.sql
.bail on
-- Wait for a writer's commit instead of failing on "database is locked"
-- (the shell reads the schema before any snapshot function runs).
.timeout 30000
.load snapshot
.mode column
.headers on
SELECT id, created, label, page_count, pages_new, bytes_new, db_bytes FROM snapshot_list;
