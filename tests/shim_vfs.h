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
//
// Other shims (tests/power_loss_vfs.h) are built from the same parts: a file
// struct that begins {sqlite3_file base; sqlite3_file* real;}, the
// passthrough:: methods for what they do not watch, MakeShimVfs() and
// LayerSnapshotVfsOver().
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

// The methods a shim passes straight to the VFS below: `File` is the shim's
// file struct, which begins {sqlite3_file base; sqlite3_file* real;}.
namespace passthrough {

template <typename File>
sqlite3_file* Real(sqlite3_file* f) {
  return reinterpret_cast<File*>(f)->real;
}
template <typename File>
int FileSize(sqlite3_file* f, sqlite3_int64* n) {
  return Real<File>(f)->pMethods->xFileSize(Real<File>(f), n);
}
template <typename File>
int Lock(sqlite3_file* f, int l) {
  return Real<File>(f)->pMethods->xLock(Real<File>(f), l);
}
template <typename File>
int Unlock(sqlite3_file* f, int l) {
  return Real<File>(f)->pMethods->xUnlock(Real<File>(f), l);
}
template <typename File>
int CheckReserved(sqlite3_file* f, int* out) {
  return Real<File>(f)->pMethods->xCheckReservedLock(Real<File>(f), out);
}
template <typename File>
int FileControl(sqlite3_file* f, int op, void* arg) {
  return Real<File>(f)->pMethods->xFileControl(Real<File>(f), op, arg);
}
template <typename File>
int SectorSize(sqlite3_file* f) {
  return Real<File>(f)->pMethods->xSectorSize(Real<File>(f));
}
template <typename File>
int Device(sqlite3_file* f) {
  return Real<File>(f)->pMethods->xDeviceCharacteristics(Real<File>(f));
}
template <typename File>
int ShmMap(sqlite3_file* f, int i, int sz, int ext, void volatile** pp) {
  return Real<File>(f)->pMethods->xShmMap(Real<File>(f), i, sz, ext, pp);
}
template <typename File>
int ShmLock(sqlite3_file* f, int offset, int n, int flags) {
  return Real<File>(f)->pMethods->xShmLock(Real<File>(f), offset, n, flags);
}
template <typename File>
void ShmBarrier(sqlite3_file* f) {
  Real<File>(f)->pMethods->xShmBarrier(Real<File>(f));
}
template <typename File>
int ShmUnmap(sqlite3_file* f, int del) {
  return Real<File>(f)->pMethods->xShmUnmap(Real<File>(f), del);
}

}  // namespace passthrough

// A VFS named `name` over `below` whose files are a `file_size`-byte shim
// struct followed by `below`'s own file; xOpen (and xDelete, when given) are
// the shim's. Version 2: no xFetch, so SQLite never reads or writes through a
// mapping the shim cannot see. Register it once.
inline sqlite3_vfs MakeShimVfs(sqlite3_vfs* below, const char* name, size_t file_size,
                               int (*open)(sqlite3_vfs*, const char*, sqlite3_file*, int, int*),
                               int (*remove)(sqlite3_vfs*, const char*, int) = nullptr) {
  // Unix's other methods do not look at the sqlite3_vfs they are given.
  sqlite3_vfs x = *below;
  x.iVersion = 2;
  x.szOsFile = int(file_size) + below->szOsFile;
  x.zName = name;
  x.pNext = nullptr;
  x.xOpen = open;
  if (remove != nullptr) x.xDelete = remove;
  x.xSetSystemCall = nullptr;
  x.xGetSystemCall = nullptr;
  x.xNextSystemCall = nullptr;
  return x;
}

// Makes the snapshot VFS a layer over `below`, so that `below` sees what the
// extension's own connections do. The snapshot VFS takes the default VFS of
// the moment it is registered; only for a process of its own (a forked
// child), since the extension may already be registered over the real VFS.
inline void LayerSnapshotVfsOver(sqlite3_vfs* below) {
  sqlite3_vfs_register(below, 1);
  if (sqlite3_vfs* registered = sqlite3_vfs_find("snapshot")) sqlite3_vfs_unregister(registered);
  sqlite3_close(OpenDb(":memory:"));  // loads the extension: registers it again
  sqlite3_vfs_register(sqlite3_vfs_find("unix"), 1);
}

namespace shim_internal {

inline sqlite3_file* Real(sqlite3_file* f) { return passthrough::Real<ShimFile>(f); }

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
inline int ShmLock(sqlite3_file* f, int offset, int n, int flags) {
  const int rc = Real(f)->pMethods->xShmLock(Real(f), offset, n, flags);
  // Slot 0 is SQLite's WAL write lock.
  if (rc == SQLITE_OK && offset == 0 && (flags & SQLITE_SHM_EXCLUSIVE)) {
    Shim().wal_write_locks += (flags & SQLITE_SHM_LOCK) ? 1 : -1;
  }
  return rc;
}
using F = ShimFile;
inline const sqlite3_io_methods kMethods = {
    2, Close, Read, Write, Truncate, Sync,
    passthrough::FileSize<F>, passthrough::Lock<F>, passthrough::Unlock<F>, passthrough::CheckReserved<F>,
    passthrough::FileControl<F>, passthrough::SectorSize<F>, passthrough::Device<F>,
    passthrough::ShmMap<F>, ShmLock, passthrough::ShmBarrier<F>, passthrough::ShmUnmap<F>,
    nullptr, nullptr};  // no xFetch, xUnfetch

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
  static sqlite3_vfs v = MakeShimVfs(ShimRealVfs(), "test_shim", sizeof(ShimFile), shim_internal::Open);
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

// Makes the snapshot VFS a layer over the shim (see LayerSnapshotVfsOver).
inline void LayerSnapshotVfsOverShim() { LayerSnapshotVfsOver(ShimVfs()); }

// Runs `body` in a child process with the snapshot VFS layered over the
// shim (the layering lasts as long as the process: see InChildProcess).
template <typename Body>
void InChildOverShim(Body body) {
  InChildProcess([&] {
    LayerSnapshotVfsOverShim();
    body();
  });
}

}  // namespace snapshot_test
