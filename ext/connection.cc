#include "ext/connection.h"

#include "ext/attach.h"


#include <cstdlib>

namespace snapshot {

void ReleaseSettings(void* p) {
  auto* st = static_cast<ConnectionSettings*>(p);
  if (--st->refs == 0) {
    ForgetConfiguredDir(st);
    delete st;
  }
}

std::string ChooseStoreDir(const std::string& db_path, bool main, const std::string& configured, bool* default_dir) {
  *default_dir = false;
  const char* env_dir = std::getenv("SNAPSHOT_DIR");
  if (main && !configured.empty()) return configured;
  if (main && env_dir != nullptr && env_dir[0] != '\0') return env_dir;
  *default_dir = true;
  return db_path + "-snapshots";
}

Status LocateStore(sqlite3* db, const char* schema, const ConnectionSettings& settings, StoreLocation* out) {
  const char* file = sqlite3_db_filename(db, schema);
  if (file == nullptr) return Status::InvalidArgument(std::string("no such database schema: ") + schema);
  if (file[0] == '\0') {
    return Status::InvalidArgument(std::string("schema '") + schema +
                                   "' is a temporary or in-memory database; snapshots need a database file");
  }
  out->db_path = file;
  out->store_dir = ChooseStoreDir(out->db_path, sqlite3_stricmp(schema, "main") == 0, settings.dir, &out->default_dir);
  unsigned mode = 0600;
  if (Env::Default()->GetFileMode(out->db_path, &mode).ok()) out->file_mode = mode & 0666u;
  return Status::OK();
}

Status OpenStore(sqlite3* db, const char* schema, const ConnectionSettings& settings, StoreAccess access,
                 std::unique_ptr<Store>* out, StoreLocation* location,
                 const std::function<void(CompressOptions*)>& pack_hooks) {
  StoreLocation loc;
  SNAPSHOT_RETURN_IF_ERROR(LocateStore(db, schema, settings, &loc));
  if (location != nullptr) *location = loc;
  return OpenStoreAt(loc, settings, access, out, pack_hooks);
}

Status OpenStoreAt(const StoreLocation& loc, const ConnectionSettings& settings, StoreAccess access,
                   std::unique_ptr<Store>* out, const std::function<void(CompressOptions*)>& pack_hooks) {
  StoreOptions o;
  o.dir = loc.store_dir;
  o.db_name = BaseName(loc.db_path);
  o.exclusive = access != StoreAccess::kRead;
  o.create_store = access == StoreAccess::kCreate;
  o.create_if_missing = access == StoreAccess::kCreate && loc.default_dir;
  o.file_mode = loc.file_mode;
  o.lock_timeout_ms = settings.busy_timeout_ms;
  o.compress.level = settings.level;
  o.compress.threads = settings.threads;
  if (pack_hooks) pack_hooks(&o.compress);
  return Store::Open(o, out);
}

}  // namespace snapshot
