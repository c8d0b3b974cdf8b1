// Taking a snapshot of a live database (or, for an import, of another file)
// and publishing it in the store: what snapshot_backup() and
// snapshot_import() do, and what a restore does to record the state it is
// about to replace when it must do so before taking the write lock.
//
//   uint64_t id;
//   Status s = TakeSnapshot(db, "main", settings, StoreAccess::kCreate,
//                           "backup", "before-upgrade", &id);
//
// The order of locks is the same everywhere: the database's first, the
// store's second, and no store lock is ever held while waiting for a
// database lock. (The other order deadlocks against a reader that lists
// snapshots inside its read transaction while a writer waits.)
#pragma once

#include <cstdint>
#include <string>

#include "ext/connection.h"
#include "store/status.h"
#include "vfs/sqlite_api.h"

namespace snapshot {

struct UnlessHeld;  // ext/tracked_capture.h

// Takes a snapshot of `schema` of `db` and publishes it in its store,
// labelled `label`; `operation` names the work in snapshot_progress(). With
// `source` set, the pages come from the main schema of that other
// connection instead (an import). Refused inside a write transaction.
// `unless`: see UnlessHeld (ext/tracked_capture.h).
Status TakeSnapshot(sqlite3* db, const char* schema, const ConnectionSettings& settings, StoreAccess access,
                    const char* operation, const std::string& label, uint64_t* id, sqlite3* source = nullptr,
                    const UnlessHeld* unless = nullptr);

// One bounded compaction round of the store at `where` if it holds more
// files than the compaction threshold (Store::CompactIfNeeded), for a
// caller whose snapshot is already published: snapshot_backup() before it
// returns, the automatic snapshots' thread after its snapshot. It never
// waits for the store's lock (busy: skipped, the next caller compacts).
// *more: whether another round is worth running soon.
Status CompactAfterSnapshot(const StoreLocation& where, const ConnectionSettings& settings, bool* more);

}  // namespace snapshot
