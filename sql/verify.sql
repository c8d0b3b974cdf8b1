-- Re-read and check every byte of every snapshot; exits non-zero on damage:
--   sqlite3 /path/to/db.sqlite3 < /usr/share/snapshot/sql/verify.sql
.bail on
-- Wait for a writer's commit instead of failing on "database is locked"
-- (the shell reads the schema before any snapshot function runs).
.timeout 30000
.load snapshot
.mode list
.headers off
SELECT printf('%s verify database=%s store=%s snapshots=%d result=%s',
              strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), (SELECT file FROM pragma_database_list WHERE name = 'main'),
              snapshot_dir(), (SELECT count(*) FROM snapshot_list), snapshot_verify());
