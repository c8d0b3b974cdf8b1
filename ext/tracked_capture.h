// Tracked capture: snapshots that read only the pages the snapshot VFS saw
// change (vfs/tracker.h), and that never make writers wait while they read
// (vfs/cow.h in rollback mode; a pinned WAL read mark in WAL mode).
// docs/VFS.md explains the protocol; in short:
//
//   1. Take the tracking file's snapshot lock: one tracked snapshot at a time.
//   2. On a private connection W through the snapshot VFS, BEGIN IMMEDIATE:
//      no writer is inside a transaction now, so the committed state is
//      still, and every page a committed transaction wrote is marked.
//   3. Under W: check the evidence that no one wrote without the VFS; take
//      the marks (they read as clear afterwards); reset the evidence; and
//      pin the state: in WAL mode a read transaction on a second private
//      connection R; in rollback mode a copy-on-write area listing the pages
//      the snapshot needs. ROLLBACK W: writers go on.
//   4. Read the marked pages (every page, when the marks cannot be trusted or
//      there is no base snapshot in this store) at the pinned state, and
//      take the rest from the base snapshot.
//   5. Commit the snapshot, then record it as the new base. On any failure
//      the marks are put back, so no change is ever forgotten.
#pragma once

#include "vfs/sqlite_api.h"

#include <cstdint>
#include <string>

#include "ext/connection.h"
#include "store/status.h"

namespace snapshot {

// Takes a snapshot of `schema` of `db` as above into its store. NotSupported
// when this database cannot be captured this way (an in-memory or temporary
// database, another VFS, exclusive locking mode, a read-only file, or a
// writer that bypassed the VFS while a rollback-mode snapshot read): the
// caller then captures under a plain read transaction instead.
Status TakeTrackedSnapshot(sqlite3* db, const char* schema, const ConnectionSettings& settings, StoreAccess access,
                           const char* operation, const std::string& label, uint64_t* id);

// What the next snapshot of `schema` would read: "tracked: N pages changed
// since snapshot B" or "untracked: <why every page will be read>".
Status DescribeTracking(sqlite3* db, const char* schema, const ConnectionSettings& settings, std::string* out);

// Tells the tracking of the database at db_path (if any) that its file was
// rewritten outside the VFS's view (snapshot_restore), so the next snapshot
// reads every page.
void DistrustTracking(const std::string& db_path, uint32_t reason);

}  // namespace snapshot
