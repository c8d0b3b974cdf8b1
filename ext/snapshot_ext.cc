// snapshot: online, incremental, compressed page snapshots of a SQLite
// database, from SQL.
//
// Load it once per process:
//
//   sqlite> .load ./build/snapshot
//   sqlite> SELECT snapshot_backup('before-upgrade');
//   sqlite> SELECT * FROM snapshot_list;
//   sqlite> SELECT snapshot_restore();          -- the latest snapshot
//
// The entry point registers the SQL functions on the loading connection and,
// through sqlite3_auto_extension, on every connection the process opens
// afterwards. It returns SQLITE_OK_LOAD_PERMANENTLY so the library stays
// loaded when that first connection closes (the VFSes and the auto-extension
// point into it).
// Defines the routine table every other file calls SQLite through
// (vfs/sqlite_api.h).
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT1

#include <cstdlib>
#include <cstring>

#include "ext/attach.h"
#include "ext/auto_snapshot.h"
#include "ext/functions.h"
#include "vfs/internal_vfs.h"
#include "vfs/snapshot_vfs.h"

namespace {

int InitConnection(sqlite3* db, char** error) {
  int rc = SQLITE_OK;
  try {  // SQLite calls this (sqlite3_open, .load): no exception may reach it
    rc = snapshot::RegisterInternalVfs();
    if (rc == SQLITE_OK) rc = snapshot::RegisterSnapshotVfs();
    if (rc == SQLITE_OK) snapshot::InstallAutoSnapshots();  // commits through the VFS are noted from now on
    if (rc == SQLITE_OK) rc = snapshot::RegisterSnapshotFunctions(db);
    if (rc == SQLITE_OK) rc = snapshot::RegisterAttach(db);
  } catch (...) {  // std::bad_alloc
    rc = SQLITE_NOMEM;
  }
  if (rc != SQLITE_OK && error != nullptr) *error = sqlite3_mprintf("snapshot: cannot register: %s", sqlite3_errstr(rc));
  return rc;
}

// Auto-extensions must answer SQLITE_OK on success.
int AutoInit(sqlite3* db, char** error, const sqlite3_api_routines*) { return InitConnection(db, error); }

}  // namespace

extern "C" {
__attribute__((visibility("default"))) int sqlite3_snapshot_init(sqlite3* db, char** error, const sqlite3_api_routines* api) {
  SQLITE_EXTENSION_INIT2(api);
  int rc = InitConnection(db, error);
  if (rc != SQLITE_OK) return rc;
  // SNAPSHOT_DEFAULT_VFS=1: connections opened from now on (Django's, a
  // shell's .open) go through the snapshot VFS without asking for it.
  const char* default_vfs = getenv("SNAPSHOT_DEFAULT_VFS");
  if (default_vfs != nullptr && std::strcmp(default_vfs, "1") == 0) snapshot::MakeSnapshotVfsDefault();
  rc = sqlite3_auto_extension(reinterpret_cast<void (*)(void)>(AutoInit));
  return rc == SQLITE_OK ? SQLITE_OK_LOAD_PERMANENTLY : rc;
}
}
