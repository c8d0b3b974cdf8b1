// The SQL functions and the snapshot_list table. See README.md for the
// reference; each is registered by RegisterSnapshotFunctions().
#pragma once

#include "vfs/sqlite_api.h"

namespace snapshot {

// Registers every function and module on db. Returns an SQLite code.
int RegisterSnapshotFunctions(sqlite3* db);
int RegisterListModule(sqlite3* db, struct ConnectionSettings* settings);

}  // namespace snapshot
