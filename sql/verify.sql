-- Re-read and check every byte of every snapshot; exits non-zero on damage:
--   sqlite3 /path/to/db.sqlite3 < sql/verify.sql
.bail on
.load snapshot
.mode list
.headers off
SELECT printf('verify: %s', snapshot_verify());
