// Per-connection settings and how a connection finds its snapshot store.
#pragma once

#include "vfs/sqlite_api.h"

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "store/status.h"
#include "store/store.h"

namespace snapshot {

// Settings changed with snapshot_config(); one per connection, shared by the
// connection's functions (reference counted: freed with the last of them).
struct ConnectionSettings {
  std::string dir;            // store directory for schema main; empty: default
  int level = 2;              // zstd level
  int threads = 2;            // compression threads
  int busy_timeout_ms = 30000;  // waiting for store and database locks
  std::atomic<int> refs{0};
};

// Drops one reference to a ConnectionSettings (the destructor callback of
// every function and module that shares it).
void ReleaseSettings(void* settings);

// Where a schema's database file and store are.
struct StoreLocation {
  std::string db_path;
  std::string store_dir;
  bool default_dir = false;  // <db>-snapshots: created on first backup
  unsigned file_mode = 0600;  // the database's permission bits
};

// The one rule for where a database's store is: `configured` (the
// snapshot_config('dir') of a connection whose main database it is), else
// $SNAPSHOT_DIR (when `main`), else "<database file>-snapshots" (then
// *default_dir is set). An attached snapshot finds its store by it too.
std::string ChooseStoreDir(const std::string& db_path, bool main, const std::string& configured, bool* default_dir);

// The store directory of `schema`: snapshot_config('dir') for main, else
// $SNAPSHOT_DIR for main, else "<database file>-snapshots".
Status LocateStore(sqlite3* db, const char* schema, const ConnectionSettings& settings, StoreLocation* out);

enum class StoreAccess {
  kRead,    // list, verify, restore_to: shared lock; no store is NotFound
  kWrite,   // restore, prune: exclusive lock; no store is NotFound
  kCreate,  // backup: exclusive lock; starts the store (and the default
            // directory) if missing; an explicitly configured directory
            // must exist
};

// `pack_hooks`, if set, may fill in CompressOptions' hooks for the packs the
// store writes (a tracked snapshot makes room for the database's writers).
Status OpenStore(sqlite3* db, const char* schema, const ConnectionSettings& settings, StoreAccess access,
                 std::unique_ptr<Store>* out, StoreLocation* location = nullptr,
                 const std::function<void(CompressOptions*)>& pack_hooks = nullptr);
// The same for a store already located: touches no connection, so it may
// run on a thread other than the one that holds the connection's mutex.
Status OpenStoreAt(const StoreLocation& where, const ConnectionSettings& settings, StoreAccess access,
                   std::unique_ptr<Store>* out, const std::function<void(CompressOptions*)>& pack_hooks = nullptr);

}  // namespace snapshot
