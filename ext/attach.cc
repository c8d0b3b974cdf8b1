#include "ext/attach.h"

#include <map>
#include <mutex>

#include "ext/sql_fence.h"
#include "vfs/attached_snapshot.h"

namespace snapshot {
namespace {

struct Configured {
  const ConnectionSettings* owner;
  std::string dir;
};

std::mutex& DirsMutex() {
  static auto* mu = new std::mutex;
  return *mu;
}
// Main database path (as SQLite names it, absolute) -> its configured store.
std::map<std::string, Configured>& Dirs() {
  static auto* dirs = new std::map<std::string, Configured>;
  return *dirs;
}

std::string ResolveStoreDir(const std::string& db_path) {
  std::string configured;
  {
    std::lock_guard<std::mutex> l(DirsMutex());
    auto it = Dirs().find(db_path);
    if (it != Dirs().end()) configured = it->second.dir;
  }
  bool default_dir;
  // The URI names the live database, which is the main database of the
  // connections that back it up: its store is found as theirs is.
  return ChooseStoreDir(db_path, /*main=*/true, configured, &default_dir);
}

void AttachErrorFunc(sqlite3_context* ctx, int, sqlite3_value**) {
  const char* e = AttachedSnapshotError();
  if (e[0] == '\0') return sqlite3_result_null(ctx);
  sqlite3_result_text(ctx, e, -1, SQLITE_TRANSIENT);
}

}  // namespace

void NoteConfiguredDir(sqlite3* db, const ConnectionSettings* settings) {
  const char* file = sqlite3_db_filename(db, "main");
  if (file == nullptr || file[0] == '\0') return;
  std::lock_guard<std::mutex> l(DirsMutex());
  auto it = Dirs().find(file);
  if (!settings->dir.empty()) {
    Dirs()[file] = Configured{settings, settings->dir};
  } else if (it != Dirs().end() && it->second.owner == settings) {
    Dirs().erase(it);
  }
}

void ForgetConfiguredDir(const ConnectionSettings* settings) {
  std::lock_guard<std::mutex> l(DirsMutex());
  for (auto it = Dirs().begin(); it != Dirs().end();) {
    it = it->second.owner == settings ? Dirs().erase(it) : std::next(it);
  }
}

bool ConfiguredDirOf(const std::string& db_path, std::string* dir) {
  std::lock_guard<std::mutex> l(DirsMutex());
  auto it = Dirs().find(db_path);
  if (it == Dirs().end()) return false;
  *dir = it->second.dir;
  return true;
}

int RegisterAttach(sqlite3* db) {
  SetStoreDirResolver(ResolveStoreDir);
  return CreateFencedFunction(db, "snapshot_attach_error", 0, SQLITE_UTF8, nullptr, Fenced<AttachErrorFunc>(), nullptr);
}

}  // namespace snapshot
