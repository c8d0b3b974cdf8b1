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
#include "tests/shim_vfs.h"
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
// Version 2: no xFetch, so SQLite never reads or writes through a mapping
// this VFS cannot see.
inline const sqlite3_io_methods kMethods = {
    2, Close, Read, Write, Truncate, Sync,
    passthrough::FileSize<File>, passthrough::Lock<File>, passthrough::Unlock<File>, passthrough::CheckReserved<File>,
    passthrough::FileControl<File>, passthrough::SectorSize<File>, passthrough::Device<File>,
    passthrough::ShmMap<File>, passthrough::ShmLock<File>, passthrough::ShmBarrier<File>, passthrough::ShmUnmap<File>,
    nullptr, nullptr};  // no xFetch, xUnfetch

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
  static sqlite3_vfs v = MakeShimVfs(power_loss_internal::Unix(), "power_loss", sizeof(power_loss_internal::File),
                                     power_loss_internal::Open, power_loss_internal::Delete);
  static bool registered = sqlite3_vfs_register(&v, 0) == SQLITE_OK;
  EXPECT_TRUE(registered);
  return &v;
}

// Makes the snapshot VFS a layer over this one (only in a process of its
// own: see LayerSnapshotVfsOver).
inline void LayerSnapshotVfsOverPowerLossVfs() { LayerSnapshotVfsOver(PowerLossVfsRegistered()); }

}  // namespace snapshot_test
