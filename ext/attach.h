// What attaching a snapshot needs from the extension (the file itself is
// vfs/attached_snapshot.h):
//
//  - the store directory configured for a database: the VFS opens the
//    snapshot without seeing the connection whose snapshot_config('dir')
//    names it, so this unit keeps a process-wide map from each main
//    database's path to the directory configured for it, and answers the
//    VFS's question by the same rule as every function (ChooseStoreDir);
//  - snapshot_attach_error(), the SQL function that says why the last
//    ATTACH of a snapshot (or a read from one) on this thread failed, since
//    SQLite's own message for a failed ATTACH is fixed.
#pragma once

#include <string>

#include "ext/connection.h"
#include "vfs/sqlite_api.h"

namespace snapshot {

// After snapshot_config('dir', ...) on `db`: snapshots of db's main database
// attached from now on use `settings`' directory (the last one configured
// for that database wins; an empty directory takes this connection's back).
void NoteConfiguredDir(sqlite3* db, const ConnectionSettings* settings);
// The connection owning `settings` is gone: its configuration no longer
// counts.
void ForgetConfiguredDir(const ConnectionSettings* settings);
// The directory a connection of this process configured for the main
// database at db_path (the last one wins); false if none did.
bool ConfiguredDirOf(const std::string& db_path, std::string* dir);

// Registers snapshot_attach_error() on `db` and, once, the store directory
// resolver of the VFS. An SQLite code.
int RegisterAttach(sqlite3* db);

}  // namespace snapshot
