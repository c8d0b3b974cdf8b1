// A VFS over "unix" that reports every change SQLite makes to the files of
// one directory (the database, its journal, its WAL) to a CrashEnv, so that
// the disk states a power cut could leave can be built afterwards (see
// tests/crash_env.h). It changes nothing: each call goes to "unix" first.
//
// It mirrors what "unix" makes durable: a write once its file is synced; a
// journal's or WAL's name once that file is first synced (unix syncs the
// directory then); a deletion only when SQLite asks for the directory
// sync (synchronous=EXTRA). The main database's own name is never synced:
// have it (and everything else that must pre-exist) in place before the
// CrashEnv is made.
//
// To see what the snapshot VFS writes, it must be under it: in a process of
// its own (a forked child),
//   PowerLossVfs().env = &crash_env;
//   LayerSnapshotVfsOverPowerLossVfs();
//   sqlite3* db = OpenThroughVfs(path);   // recorded
//   PowerLossVfs().env = nullptr;         // stop recording
#pragma once

#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <string>

#include "tests/crash_env.h"
#include "tests/test_util.h"

namespace snapshot_test {

struct PowerLossVfsControl {
  CrashEnv* env = nullptr;       // null: record nothing
  std::string dir;               // only files in this directory are recorded
  std::function<void()> after_sync;  // called after each recorded sync
};

inline PowerLossVfsControl& PowerLossVfs() {
  static PowerLossVfsControl c;
  return c;
}

namespace power_loss_internal {

struct File {
  sqlite3_file base;
  sqlite3_file* real;
  CrashEnv* env;       // the recorder when the file was opened; null if not recorded
  uint64_t inode;
  bool sync_dir;       // a new journal or WAL: its first sync syncs the directory
};

inline sqlite3_vfs* Unix() {
  static sqlite3_vfs* v = sqlite3_vfs_find("unix");
  return v;
}
inline File* F(sqlite3_file* f) { return reinterpret_cast<File*>(f); }
inline sqlite3_file* Real(sqlite3_file* f) { return F(f)->real; }
inline bool Recorded(const char* name) {
  const PowerLossVfsControl& c = PowerLossVfs();
  if (c.env == nullptr || name == nullptr) return false;
  const std::string n(name);
  return n.size() > c.dir.size() + 1 && n.compare(0, c.dir.size() + 1, c.dir + "/") == 0 &&
         n.find('/', c.dir.size() + 1) == std::string::npos;
}
inline void AfterSync() {
  if (PowerLossVfs().after_sync) PowerLossVfs().after_sync();
}

inline int Close(sqlite3_file* f) { return Real(f)->pMethods->xClose(Real(f)); }
inline int Read(sqlite3_file* f, void* p, int n, sqlite3_int64 o) { return Real(f)->pMethods->xRead(Real(f), p, n, o); }
inline int Write(sqlite3_file* f, const void* p, int n, sqlite3_int64 o) {
  const int rc = Real(f)->pMethods->xWrite(Real(f), p, n, o);
  if (rc == SQLITE_OK && F(f)->env) F(f)->env->RecordWrite(F(f)->inode, uint64_t(o), p, size_t(n));
  return rc;
}
inline int Truncate(sqlite3_file* f, sqlite3_int64 n) {
  const int rc = Real(f)->pMethods->xTruncate(Real(f), n);
  if (rc == SQLITE_OK && F(f)->env) F(f)->env->RecordTruncate(F(f)->inode, uint64_t(n));
  return rc;
}
inline int Sync(sqlite3_file* f, int flags) {
  const int rc = Real(f)->pMethods->xSync(Real(f), flags);
  if (rc == SQLITE_OK && F(f)->env) {
    F(f)->env->RecordSyncFile(F(f)->inode);
    if (F(f)->sync_dir) F(f)->env->RecordSyncDir(PowerLossVfs().dir);
    F(f)->sync_dir = false;
    AfterSync();
  }
  return rc;
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
  return Real(f)->pMethods->xShmLock(Real(f), offset, n, flags);
}
inline void ShmBarrier(sqlite3_file* f) { Real(f)->pMethods->xShmBarrier(Real(f)); }
inline int ShmUnmap(sqlite3_file* f, int del) { return Real(f)->pMethods->xShmUnmap(Real(f), del); }

// Version 2: no xFetch, so SQLite never reads or writes through a mapping
// this VFS cannot see.
inline const sqlite3_io_methods kMethods = {2,           Close,      Read,     Write,   Truncate,      Sync,
                                            FileSize,    Lock,       Unlock,   CheckReserved, FileControl,
                                            SectorSize,  Device,     ShmMap,   ShmLock, ShmBarrier,    ShmUnmap,
                                            nullptr,     nullptr};

inline int Open(sqlite3_vfs*, const char* name, sqlite3_file* f, int flags, int* out_flags) {
  File* pf = F(f);
  pf->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(f) + sizeof(File));
  pf->env = nullptr;
  pf->inode = 0;
  pf->sync_dir = false;
  const bool recorded = Recorded(name);
  const bool existed = recorded && access(name, F_OK) == 0;
  const int rc = Unix()->xOpen(Unix(), name, pf->real, flags, out_flags);
  f->pMethods = rc == SQLITE_OK ? &kMethods : nullptr;
  if (rc == SQLITE_OK && recorded) {
    pf->env = PowerLossVfs().env;
    pf->inode = pf->env->RecordOpen(name, !existed);
    // As unixOpen: a journal or WAL opened to be created gets its directory
    // synced at its first sync, whether or not the name was new.
    pf->sync_dir = (flags & SQLITE_OPEN_CREATE) &&
                   (flags & (SQLITE_OPEN_MAIN_JOURNAL | SQLITE_OPEN_WAL | SQLITE_OPEN_SUPER_JOURNAL));
  }
  return rc;
}

inline int Delete(sqlite3_vfs*, const char* name, int sync_dir) {
  const bool recorded = Recorded(name) && access(name, F_OK) == 0;
  const int rc = Unix()->xDelete(Unix(), name, sync_dir);
  if (rc == SQLITE_OK && recorded) {
    PowerLossVfs().env->RecordRemove(name);
    if (sync_dir) {
      PowerLossVfs().env->RecordSyncDir(PowerLossVfs().dir);
      AfterSync();
    }
  }
  return rc;
}

}  // namespace power_loss_internal

inline sqlite3_vfs* PowerLossVfsRegistered() {
  static sqlite3_vfs v = [] {
    sqlite3_vfs x = *power_loss_internal::Unix();
    x.iVersion = 2;
    x.szOsFile = int(sizeof(power_loss_internal::File)) + power_loss_internal::Unix()->szOsFile;
    x.zName = "power_loss";
    x.pNext = nullptr;
    x.xOpen = power_loss_internal::Open;
    x.xDelete = power_loss_internal::Delete;
    x.xSetSystemCall = nullptr;
    x.xGetSystemCall = nullptr;
    x.xNextSystemCall = nullptr;
    return x;
  }();
  static bool registered = sqlite3_vfs_register(&v, 0) == SQLITE_OK;
  EXPECT_TRUE(registered);
  return &v;
}

// Makes the snapshot VFS a layer over this one (only in a process of its
// own: the snapshot VFS wraps the default VFS of the moment it registers).
inline void LayerSnapshotVfsOverPowerLossVfs() {
  sqlite3_vfs_register(PowerLossVfsRegistered(), 1);
  if (sqlite3_vfs* registered = sqlite3_vfs_find("snapshot")) sqlite3_vfs_unregister(registered);
  sqlite3_close(OpenDb(":memory:"));  // loads the extension: registers it again
  sqlite3_vfs_register(sqlite3_vfs_find("unix"), 1);
}

}  // namespace snapshot_test
