// A VFS shim over the default VFS for tests that must see or disturb what
// SQLite, or the extension, does to the files: it copies the database and
// its journal aside whenever the database file is synced (the state a power
// cut at that instant leaves), fails syncs on request, and counts what is
// read from a -wal file while a connection of this process holds the WAL
// write lock, and fails reads on request (read_fault).
//
//   sqlite3* db = OpenThroughShim(path);   // vfs "test_shim", extension loaded
//   Shim().fail_db_syncs = 1;
//
// Layered under the snapshot VFS instead, it sees the extension's own I/O:
// see LayerSnapshotVfsOverShim.
#pragma once

#include <sqlite3.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>

#include "tests/test_util.h"

namespace snapshot_test {

struct ShimFile {
  sqlite3_file base;
  sqlite3_file* real;
  int flags;
  char name[1024];
};

struct ShimControl {
  std::string crash_dir;  // non-empty: copy db + journal here at each db sync
  int crash_images = 0;
  int fail_db_syncs = 0;  // > 0: that many db syncs fail
  // Connections of this process holding the WAL write lock, and the bytes
  // read from -wal files meanwhile.
  std::atomic<int> wal_write_locks{0};
  std::atomic<int64_t> wal_bytes_read_under_write_lock{0};
  // Non-null: asked before each read (`flags`: the file's open flags); a
  // result other than SQLITE_OK fails the read with that code. Layered
  // under the snapshot VFS, it reaches the VFS's own reads too.
  std::function<int(int flags, int amount, sqlite3_int64 offset)> read_fault;
  // The same for each open.
  std::function<int(int flags)> open_fault;

  void Reset() {
    crash_dir.clear();
    crash_images = 0;
    fail_db_syncs = 0;
    wal_write_locks = 0;
    wal_bytes_read_under_write_lock = 0;
    read_fault = nullptr;
    open_fault = nullptr;
  }
};

inline ShimControl& Shim() {
  static ShimControl c;
  return c;
}

inline sqlite3_vfs* ShimRealVfs() {
  static sqlite3_vfs* v = sqlite3_vfs_find("unix");
  return v;
}

namespace shim_internal {

inline sqlite3_file* Real(sqlite3_file* f) { return reinterpret_cast<ShimFile*>(f)->real; }

inline int Close(sqlite3_file* f) { return Real(f)->pMethods->xClose(Real(f)); }
inline int Read(sqlite3_file* f, void* p, int n, sqlite3_int64 o) {
  const int flags = reinterpret_cast<ShimFile*>(f)->flags;
  if ((flags & SQLITE_OPEN_WAL) && Shim().wal_write_locks.load() > 0) {
    Shim().wal_bytes_read_under_write_lock += n;
  }
  if (Shim().read_fault) {
    const int rc = Shim().read_fault(flags, n, o);
    if (rc != SQLITE_OK) return rc;
  }
  return Real(f)->pMethods->xRead(Real(f), p, n, o);
}
inline int Write(sqlite3_file* f, const void* p, int n, sqlite3_int64 o) {
  return Real(f)->pMethods->xWrite(Real(f), p, n, o);
}
inline int Truncate(sqlite3_file* f, sqlite3_int64 n) { return Real(f)->pMethods->xTruncate(Real(f), n); }
inline int Sync(sqlite3_file* f, int flags) {
  auto* sf = reinterpret_cast<ShimFile*>(f);
  if (sf->flags & SQLITE_OPEN_MAIN_DB) {
    ShimControl& c = Shim();
    if (!c.crash_dir.empty()) {
      namespace fs = std::filesystem;
      const std::string dir = c.crash_dir + "/" + std::to_string(++c.crash_images);
      fs::create_directories(dir);
      std::error_code ec;
      fs::copy_file(sf->name, dir + "/app.db", ec);
      fs::copy_file(std::string(sf->name) + "-journal", dir + "/app.db-journal", ec);
    }
    if (c.fail_db_syncs > 0) {
      c.fail_db_syncs--;
      return SQLITE_IOERR_FSYNC;
    }
  }
  return Real(f)->pMethods->xSync(Real(f), flags);
}
inline int FileSize(sqlite3_file* f, sqlite3_int64* n) { return Real(f)->pMethods->xFileSize(Real(f), n); }
inline int Lock(sqlite3_file* f, int l) { return Real(f)->pMethods->xLock(Real(f), l); }
inline int Unlock(sqlite3_file* f, int l) { return Real(f)->pMethods->xUnlock(Real(f), l); }
inline int CheckReserved(sqlite3_file* f, int* out) { return Real(f)->pMethods->xCheckReservedLock(Real(f), out); }
inline int FileControl(sqlite3_file* f, int op, void* arg) { return Real(f)->pMethods->xFileControl(Real(f), op, arg); }
inline int SectorSize(sqlite3_file* f) { return Real(f)->pMethods->xSectorSize(Real(f)); }
inline int Device(sqlite3_file* f) { return Real(f)->pMethods->xDeviceCharacteristics(Real(f)); }
inline int ShmMap(sqlite3_file* f, int i, int sz, int ext, void volatile** pp) {
  return Real(f)->pMethods->xShmMap(Real(f), i, sz, ext, pp);
}
inline int ShmLock(sqlite3_file* f, int offset, int n, int flags) {
  const int rc = Real(f)->pMethods->xShmLock(Real(f), offset, n, flags);
  // Slot 0 is SQLite's WAL write lock.
  if (rc == SQLITE_OK && offset == 0 && (flags & SQLITE_SHM_EXCLUSIVE)) {
    Shim().wal_write_locks += (flags & SQLITE_SHM_LOCK) ? 1 : -1;
  }
  return rc;
}
inline void ShmBarrier(sqlite3_file* f) { Real(f)->pMethods->xShmBarrier(Real(f)); }
inline int ShmUnmap(sqlite3_file* f, int del) { return Real(f)->pMethods->xShmUnmap(Real(f), del); }

inline const sqlite3_io_methods kMethods = {2,          Close,         Read,        Write,      Truncate,
                                            Sync,       FileSize,      Lock,        Unlock,     CheckReserved,
                                            FileControl, SectorSize,   Device,      ShmMap,     ShmLock,
                                            ShmBarrier, ShmUnmap,      nullptr,     nullptr};

inline int Open(sqlite3_vfs*, const char* name, sqlite3_file* f, int flags, int* out_flags) {
  auto* sf = reinterpret_cast<ShimFile*>(f);
  std::snprintf(sf->name, sizeof sf->name, "%s", name ? name : "");
  sf->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(f) + sizeof(ShimFile));
  sf->flags = flags;
  f->pMethods = nullptr;
  if (Shim().open_fault) {
    const int rc = Shim().open_fault(flags);
    if (rc != SQLITE_OK) return rc;
  }
  int rc = ShimRealVfs()->xOpen(ShimRealVfs(), name, sf->real, flags, out_flags);
  f->pMethods = rc == SQLITE_OK ? &kMethods : nullptr;
  return rc;
}

}  // namespace shim_internal

inline sqlite3_vfs* ShimVfs() {
  static sqlite3_vfs v = [] {
    // Unix's other methods do not look at the sqlite3_vfs they are given.
    sqlite3_vfs x = *ShimRealVfs();
    x.iVersion = 2;
    x.szOsFile = int(sizeof(ShimFile)) + ShimRealVfs()->szOsFile;
    x.zName = "test_shim";
    x.pNext = nullptr;
    x.xOpen = shim_internal::Open;
    x.xSetSystemCall = nullptr;
    x.xGetSystemCall = nullptr;
    x.xNextSystemCall = nullptr;
    return x;
  }();
  static bool registered = sqlite3_vfs_register(&v, 0) == SQLITE_OK;
  EXPECT_TRUE(registered);
  return &v;
}

// Opens `path` through the shim and loads the extension into it.
inline sqlite3* OpenThroughShim(const std::string& path) {
  sqlite3* db = nullptr;
  EXPECT_EQ(SQLITE_OK,
            sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, ShimVfs()->zName))
      << sqlite3_errmsg(db);
  LoadExtension(db);
  return db;
}

// Makes the snapshot VFS a layer over the shim, so that the shim sees what
// the extension's own connections do. The snapshot VFS takes the default
// VFS of the moment it is registered; only for a process of its own (a
// forked child), since the extension may already be registered over the
// real VFS.
inline void LayerSnapshotVfsOverShim() {
  sqlite3_vfs_register(ShimVfs(), 1);
  if (sqlite3_vfs* registered = sqlite3_vfs_find("snapshot")) sqlite3_vfs_unregister(registered);
  sqlite3_close(OpenDb(":memory:"));  // loads the extension: registers it again
  sqlite3_vfs_register(sqlite3_vfs_find("unix"), 1);
}

}  // namespace snapshot_test
