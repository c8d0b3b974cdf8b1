// Looking into snapshots without writing anything: what changed between two
// snapshots or since one (the snapshot_diff table, ext/diff_vtab.cc), and
// whether a snapshot is a sound SQLite database (snapshot_integrity_check,
// ext/integrity_check.cc). README.md has the reference.
#pragma once

#include "vfs/sqlite_api.h"

namespace snapshot {

struct ConnectionSettings;

// Each returns an SQLite code; each takes a reference on `settings`.
int RegisterDiffModule(sqlite3* db, ConnectionSettings* settings);
int RegisterIntegrityCheck(sqlite3* db, ConnectionSettings* settings);

}  // namespace snapshot
