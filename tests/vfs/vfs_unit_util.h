// Helpers for the unit tests of vfs/ (tests/vfs/*_test.cc). The test binary
// links the VFS layer itself (snapshot_vfs_core: the same sources as the
// extension's, calling libsqlite3 directly), so these tests drive Tracker,
// CowArea, the WAL reader and the journal writer with real files and real
// SQLite connections, and no extension loaded.
//
//   TempDir dir;
//   const std::string path = RealPath(dir.path()) + "/app.db";
//   sqlite3* db = OpenThroughUnitVfs(path);     // the `snapshot` shim, as kUnitVfsName
//   Tracker* t = Tracker::Find(path);           // the tracker that connection writes to
//   RawFile file(path, SQLITE_OPEN_MAIN_DB);    // a file as the layer's callers hand it over
//
// The shim is registered under its own name, over the "unix" VFS, so that it
// never meets the extension's `snapshot` VFS, which other tests in this
// binary load (and may make the default); a tracker is a per-process object,
// and two of them in one process over one database would not know of each
// other. Each test uses databases of its own.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tests/test_util.h"
#include "vfs/snapshot_vfs.h"

namespace snapshot_test {

constexpr char kUnitVfsName[] = "snapshot_unit";

// Registers the shim as kUnitVfsName over "unix" (once); its name.
inline const char* UnitVfs() {
  static const bool registered = [] {
    // The shim goes over the default VFS of the moment; make sure that is
    // "unix" and not the extension's VFS, which a test may have made the
    // default.
    sqlite3_vfs* previous_default = sqlite3_vfs_find(nullptr);
    sqlite3_vfs_register(sqlite3_vfs_find("unix"), 1);
    const int rc = snapshot::RegisterSnapshotVfs(kUnitVfsName);
    sqlite3_vfs_register(previous_default, 1);
    return rc == SQLITE_OK;
  }();
  EXPECT_TRUE(registered);
  return kUnitVfsName;
}

// The path with symbolic links resolved, as SQLite names a database to its
// VFS (and so as the tracker registry knows it).
inline std::string RealPath(const std::string& path) {
  char* resolved = realpath(path.c_str(), nullptr);
  std::string out = resolved != nullptr ? resolved : path;
  free(resolved);
  return out;
}

inline sqlite3* OpenThroughUnitVfs(const std::string& path) {
  sqlite3* db = nullptr;
  EXPECT_EQ(SQLITE_OK, sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, UnitVfs()))
      << sqlite3_errmsg(db);
  sqlite3_busy_timeout(db, 5000);
  return db;
}

// Opens `path` with SQLite's own VFS, no shim, as an application that does
// not use the snapshot VFS would.
inline sqlite3* OpenPlain(const std::string& path) {
  sqlite3* db = nullptr;
  EXPECT_EQ(SQLITE_OK, sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, "unix"))
      << sqlite3_errmsg(db);
  sqlite3_busy_timeout(db, 5000);
  return db;
}

// The database file of a connection's main database, as its VFS opened it.
inline sqlite3_file* MainFile(sqlite3* db) {
  sqlite3_file* f = nullptr;
  EXPECT_EQ(SQLITE_OK, sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &f));
  return f;
}

// A file opened through the "unix" VFS (xOpen), closed on destruction.
class RawFile {
 public:
  RawFile(const std::string& path, int flags)
      : vfs_(sqlite3_vfs_find("unix")), mem_(new char[size_t(vfs_->szOsFile)]()) {
    int out_flags = 0;
    const int rc = vfs_->xOpen(vfs_, path.c_str(), get(), flags | SQLITE_OPEN_READONLY, &out_flags);
    EXPECT_EQ(SQLITE_OK, rc) << path;
    if (rc != SQLITE_OK) get()->pMethods = nullptr;
  }
  ~RawFile() {
    if (get()->pMethods != nullptr) get()->pMethods->xClose(get());
  }
  RawFile(const RawFile&) = delete;
  RawFile& operator=(const RawFile&) = delete;
  sqlite3_file* get() { return reinterpret_cast<sqlite3_file*>(mem_.get()); }

 private:
  sqlite3_vfs* vfs_;
  std::unique_ptr<char[]> mem_;
};

// Runs `body` in a child process that is then killed with SIGKILL (a crash:
// no destructor, no close, no sync); the child may also kill itself sooner.
// Returns whether it died of SIGKILL.
inline bool RunThenKill(const std::function<void()>& body) {
  const pid_t pid = fork();
  if (pid == 0) {
    body();
    raise(SIGKILL);
    _exit(1);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return false;
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

// Numbers of the pages (1-based) of `page_size` bytes that differ between
// two images of a database, or exist in only one.
inline std::vector<uint32_t> ChangedPages(const std::string& a, const std::string& b, uint32_t page_size) {
  std::vector<uint32_t> pages;
  const size_t n = (std::max(a.size(), b.size()) + page_size - 1) / page_size;
  for (size_t i = 0; i < n; i++) {
    const size_t off = i * page_size;
    const std::string pa = off < a.size() ? a.substr(off, page_size) : std::string();
    const std::string pb = off < b.size() ? b.substr(off, page_size) : std::string();
    if (pa != pb) pages.push_back(uint32_t(i + 1));
  }
  return pages;
}

}  // namespace snapshot_test
