// Restoring a snapshot: one entry point per kind of restore.
//
//   uint64_t restored;
//   // Replace the live database with snapshot 7 (0: the latest snapshot).
//   Status s = RestoreLive(db, "main", settings, 7, &restored);
//   // Or write snapshot 7 to a new file, leaving the database alone.
//   s = RestoreToFile(db, "main", settings, "/tmp/app-7.db", 7, &restored);
//
// RestoreLive is what snapshot_restore() does. What users rely on:
//  - A failed call changes nothing: the snapshot is verified (every byte it
//    needs) before anything is written, and a failure afterwards is rolled
//    back, by SQLite itself if the process dies.
//  - The state it replaces is recorded first, as a snapshot labelled
//    'pre-restore', under the same write lock, so no commit slips in between
//    (and that snapshot is taken back if the restore fails).
//  - Other connections, in this process or any other, see the restored
//    database at their next transaction; it is one commit to them.
// How: the database's write lock is taken through sqlite3_backup, then the
// store's lock (database lock first, store lock second, never a store lock
// held while waiting for the database: the other order deadlocks against a
// reader listing snapshots inside its read transaction). In rollback-journal
// mode only the pages that differ are written, through a rollback journal
// of the restore's own (vfs/journal_commit.h), with page 1's header
// rewritten as SQLite's own commit would; otherwise sqlite3_backup copies
// every page. The caller's connection must have no transaction open and no
// statement still reading the database, and may not be read-only.
//
// RestoreToFile is what snapshot_restore_to() does: it writes the snapshot's
// pages to a new file (never one that exists, never inside the store),
// through a temporary name renamed into place once synced, so the path
// either does not exist or holds the whole database.
//
// Both stop, changing nothing, when sqlite3_interrupt() is called on `db`,
// and publish their progress for snapshot_progress() (ext/progress.h).
#pragma once

#include <cstdint>

#include "ext/connection.h"
#include "store/status.h"
#include "vfs/sqlite_api.h"

namespace snapshot {

// Replaces the database of `schema` of `db` with snapshot `id` (0: the
// latest); *restored_id is the snapshot restored.
Status RestoreLive(sqlite3* db, const char* schema, const ConnectionSettings& settings, uint64_t id,
                   uint64_t* restored_id);

// Writes snapshot `id` (0: the latest) of the store of `schema` to a new
// database file at `path`; *restored_id is the snapshot written.
Status RestoreToFile(sqlite3* db, const char* schema, const ConnectionSettings& settings, const char* path,
                     uint64_t id, uint64_t* restored_id);
// The same from the store at `where` (its db_path may be empty: then the
// store's database name is not checked). `db` is only the connection whose
// sqlite3_interrupt() stops it.
Status RestoreToFileAt(sqlite3* db, const StoreLocation& where, const ConnectionSettings& settings, const char* path,
                       uint64_t id, uint64_t* restored_id);

}  // namespace snapshot
