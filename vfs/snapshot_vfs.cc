#include "vfs/snapshot_vfs.h"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <new>
#include <set>
#include <string>
#include <type_traits>

#include "store/coding.h"
#include "vfs/attached_snapshot.h"
#include "vfs/paced_sync.h"
#include "vfs/sqlite_api.h"
#include "vfs/sqlite_format.h"
#include "vfs/tracker.h"

namespace snapshot {
namespace {

// Whether a read or write of the database file of `amount` bytes at
// `offset` holds the whole file change counter, and its value there.
constexpr uint64_t kChangeCounterEnd = kDbHeaderChangeCounterOffset + 4;
bool CoversChangeCounter(sqlite3_int64 offset, int amount) {
  return offset <= sqlite3_int64(kDbHeaderChangeCounterOffset) && offset + amount >= sqlite3_int64(kChangeCounterEnd);
}
uint32_t ChangeCounterIn(const void* data, sqlite3_int64 offset) {
  return LoadU32BE(static_cast<const uint8_t*>(data) + (sqlite3_int64(kDbHeaderChangeCounterOffset) - offset));
}

// ---- the shim -------------------------------------------------------------

enum class Kind { kMainDb, kWal, kOther };

struct ShimFile {
  sqlite3_file base;
  sqlite3_file* real;  // the underlying VFS's file, allocated right after this
  Kind kind;
  Tracker* tracker;  // owned reference for kMainDb; borrowed for kWal
  int lock;          // kMainDb: the lock this connection holds on the file
  const volatile void* wal_index;  // kMainDb: region 0 of the wal-index, once mapped
  WritebackPacer* pacer;           // kMainDb: set by kPaceWritebackFcntl (owned)
  const char* name;                // as SQLite gave it to xOpen
  // kMainDb: the change counter (vfs/sqlite_format.h) as this connection last read
  // or wrote it while holding the lock it holds now. Nobody else commits
  // while it holds a lock, so at its commit this is the counter in the file:
  // the tracker's check then needs no read of its own (a read that I/O fault
  // injection, counting calls, would also count). Not used while a shared
  // wal-index is mapped: in WAL mode others' checkpoints write the file
  // under our lock; forgotten when it is unmapped.
  bool counter_known;
  uint32_t counter;
};

// Main database files of this process open without a tracker (their
// tracking file could not be opened), by the name SQLite gave xOpen, which
// is also what sqlite3_filename_database() returns for their WAL's name.
// Such a connection writes untracked, like a plain sqlite3: its WAL must
// not borrow the tracker another connection of this process opened later,
// for the tracker never hears of that connection's write lock and could
// not tell where its transactions begin.
std::mutex& UntrackedMutex() {
  static auto* mu = new std::mutex;
  return *mu;
}
std::set<const char*>& Untracked() {
  static auto* names = new std::set<const char*>;
  return *names;
}
bool IsUntracked(const char* db_name) {
  std::lock_guard<std::mutex> l(UntrackedMutex());
  return Untracked().count(db_name) != 0;
}

sqlite3_vfs* Real(sqlite3_vfs* vfs) { return static_cast<sqlite3_vfs*>(vfs->pAppData); }
sqlite3_file* R(sqlite3_file* f) { return reinterpret_cast<ShimFile*>(f)->real; }

int ShimClose(sqlite3_file* f) {
  ShimFile* s = reinterpret_cast<ShimFile*>(f);
  int rc = s->real->pMethods ? s->real->pMethods->xClose(s->real) : SQLITE_OK;
  if (s->kind == Kind::kMainDb && s->tracker != nullptr) Tracker::Release(s->tracker);
  if (s->kind == Kind::kMainDb && s->tracker == nullptr) {
    std::lock_guard<std::mutex> l(UntrackedMutex());
    Untracked().erase(s->name);
  }
  s->tracker = nullptr;
  delete s->pacer;
  s->pacer = nullptr;
  return rc;
}

// A C++ exception must not cross into SQLite's C frames. A tracker hook
// that threw (std::bad_alloc) may have left its work half done: the record
// is distrusted and the change itself is refused, so nothing is written
// that the record or a running copy-on-write snapshot did not hear of.
// A hook that returns an SQLite code refuses the change with it.
template <typename Hook>
int RunHook(ShimFile* s, Hook&& hook) {
  try {
    if constexpr (std::is_void_v<decltype(hook())>) {
      hook();
      return SQLITE_OK;
    } else {
      return hook();
    }
  } catch (...) {
    s->tracker->SetUntrusted(kIoError);
    return SQLITE_IOERR_NOMEM;
  }
}

// The tracker hears of every change before it is passed on (vfs/tracker.h).
int ShimWrite(sqlite3_file* f, const void* data, int amount, sqlite3_int64 offset) {
  ShimFile* s = reinterpret_cast<ShimFile*>(f);
  if (s->tracker != nullptr) {
    const int rc = RunHook(s, [&] {
      if (s->kind == Kind::kMainDb) {
        // Without EXCLUSIVE, the write is a WAL checkpoint copying frames
        // already marked: the database's content does not change.
        return s->tracker->OnDbWrite(s->real, data, amount, offset,
                                     /*content_changes=*/s->lock == SQLITE_LOCK_EXCLUSIVE,
                                     s->counter_known && s->wal_index == nullptr ? &s->counter : nullptr);
      }
      if (s->kind == Kind::kWal) return s->tracker->OnWalWrite(s->real, data, amount, offset);
      return SQLITE_OK;
    });
    if (rc != SQLITE_OK) return rc;
  }
  const int rc = s->real->pMethods->xWrite(s->real, data, amount, offset);
  if (s->kind == Kind::kMainDb && CoversChangeCounter(offset, amount)) {
    s->counter_known = rc == SQLITE_OK;
    if (rc == SQLITE_OK) s->counter = ChangeCounterIn(data, offset);
  }
  if (rc == SQLITE_OK && s->pacer != nullptr) s->pacer->Wrote(uint64_t(amount));
  return rc;
}

int ShimTruncate(sqlite3_file* f, sqlite3_int64 size) {
  ShimFile* s = reinterpret_cast<ShimFile*>(f);
  if (s->tracker != nullptr) {
    const int rc = RunHook(s, [&] {
      if (s->kind == Kind::kMainDb) s->tracker->OnDbTruncate(s->real, size);
      if (s->kind == Kind::kWal) s->tracker->OnWalTruncate(s->real, size);
    });
    if (rc != SQLITE_OK) return rc;
  }
  if (size < sqlite3_int64(kChangeCounterEnd)) s->counter_known = false;
  return s->real->pMethods->xTruncate(s->real, size);
}

// Everything else passes through; lock changes are also told to the
// tracker (a write transaction begins or ends).
int ShimRead(sqlite3_file* f, void* p, int n, sqlite3_int64 o) {
  ShimFile* s = reinterpret_cast<ShimFile*>(f);
  const int rc = s->real->pMethods->xRead(s->real, p, n, o);
  if (rc == SQLITE_OK && s->kind == Kind::kMainDb && s->lock >= SQLITE_LOCK_SHARED && CoversChangeCounter(o, n)) {
    s->counter = ChangeCounterIn(p, o);
    s->counter_known = true;
  }
  return rc;
}
int ShimSync(sqlite3_file* f, int flags) {
  ShimFile* s = reinterpret_cast<ShimFile*>(f);
  if (s->pacer == nullptr) return s->real->pMethods->xSync(s->real, flags);
  s->pacer->BeforeSync();
  const int rc = s->real->pMethods->xSync(s->real, flags);
  const int paced = s->pacer->TakeError();  // an earlier paced sync's
  return rc != SQLITE_OK ? rc : paced;
}
int ShimFileSize(sqlite3_file* f, sqlite3_int64* n) { return R(f)->pMethods->xFileSize(R(f), n); }
void LockChanged(sqlite3_file* f, int l) {
  ShimFile* s = reinterpret_cast<ShimFile*>(f);
  if (s->tracker != nullptr) s->tracker->OnDbLockChange(s->lock, l);
  s->lock = l;
  if (l == SQLITE_LOCK_NONE) s->counter_known = false;  // others may commit now
}
int ShimLock(sqlite3_file* f, int l) {
  const int rc = R(f)->pMethods->xLock(R(f), l);
  if (rc == SQLITE_OK) LockChanged(f, l);
  return rc;
}
int ShimUnlock(sqlite3_file* f, int l) {
  const int rc = R(f)->pMethods->xUnlock(R(f), l);
  if (rc == SQLITE_OK) LockChanged(f, l);
  return rc;
}
int ShimCheckReservedLock(sqlite3_file* f, int* out) { return R(f)->pMethods->xCheckReservedLock(R(f), out); }
int ShimFileControl(sqlite3_file* f, int op, void* arg) {
  ShimFile* s = reinterpret_cast<ShimFile*>(f);
  if (op == kPaceWritebackFcntl) {
    if (s->kind != Kind::kMainDb) return SQLITE_NOTFOUND;
    const int rc = s->pacer != nullptr ? s->pacer->Finish() : SQLITE_OK;
    delete s->pacer;
    s->pacer = nullptr;
    if (rc != SQLITE_OK) return rc;
    if (arg != nullptr) {
      s->pacer = new (std::nothrow) WritebackPacer(s->real, *static_cast<SnapshotWritebackGate*>(arg));
      if (s->pacer == nullptr) return SQLITE_NOMEM;
    }
    return SQLITE_OK;
  }
  return s->real->pMethods->xFileControl(s->real, op, arg);
}
int ShimSectorSize(sqlite3_file* f) { return R(f)->pMethods->xSectorSize(R(f)); }
int ShimDeviceCharacteristics(sqlite3_file* f) { return R(f)->pMethods->xDeviceCharacteristics(R(f)); }
int ShimShmMap(sqlite3_file* f, int i, int sz, int ext, void volatile** pp) {
  const int rc = R(f)->pMethods->xShmMap(R(f), i, sz, ext, pp);
  if (rc == SQLITE_OK && i == 0) reinterpret_cast<ShimFile*>(f)->wal_index = *pp;
  return rc;
}
int ShimShmLock(sqlite3_file* f, int offset, int n, int flags) {
  const int rc = R(f)->pMethods->xShmLock(R(f), offset, n, flags);
  ShimFile* s = reinterpret_cast<ShimFile*>(f);
  // Slot 0 is SQLite's WAL write lock: a write transaction begins or ends.
  if (rc == SQLITE_OK && offset == 0 && s->tracker != nullptr) {
    s->tracker->OnWalWriteLock((flags & SQLITE_SHM_LOCK) != 0, s->wal_index);
  }
  return rc;
}
void ShimShmBarrier(sqlite3_file* f) { R(f)->pMethods->xShmBarrier(R(f)); }
int ShimShmUnmap(sqlite3_file* f, int del) {
  reinterpret_cast<ShimFile*>(f)->wal_index = nullptr;
  reinterpret_cast<ShimFile*>(f)->counter_known = false;
  return R(f)->pMethods->xShmUnmap(R(f), del);
}
int ShimFetch(sqlite3_file* f, sqlite3_int64 o, int n, void** pp) { return R(f)->pMethods->xFetch(R(f), o, n, pp); }
int ShimUnfetch(sqlite3_file* f, sqlite3_int64 o, void* p) { return R(f)->pMethods->xUnfetch(R(f), o, p); }

// The shim's methods for a real file whose methods have version `v`: never
// claim what the real file lacks (a v1 file has no shared memory).
const sqlite3_io_methods* MethodsFor(int v) {
  static const sqlite3_io_methods kMethods[3] = {
      {1, ShimClose, ShimRead, ShimWrite, ShimTruncate, ShimSync, ShimFileSize, ShimLock, ShimUnlock,
       ShimCheckReservedLock, ShimFileControl, ShimSectorSize, ShimDeviceCharacteristics, nullptr, nullptr, nullptr,
       nullptr, nullptr, nullptr},
      {2, ShimClose, ShimRead, ShimWrite, ShimTruncate, ShimSync, ShimFileSize, ShimLock, ShimUnlock,
       ShimCheckReservedLock, ShimFileControl, ShimSectorSize, ShimDeviceCharacteristics, ShimShmMap, ShimShmLock,
       ShimShmBarrier, ShimShmUnmap, nullptr, nullptr},
      {3, ShimClose, ShimRead, ShimWrite, ShimTruncate, ShimSync, ShimFileSize, ShimLock, ShimUnlock,
       ShimCheckReservedLock, ShimFileControl, ShimSectorSize, ShimDeviceCharacteristics, ShimShmMap, ShimShmLock,
       ShimShmBarrier, ShimShmUnmap, ShimFetch, ShimUnfetch}};
  return &kMethods[std::min(std::max(v, 1), 3) - 1];
}

static_assert(sizeof(AttachedSnapshotFile) <= sizeof(ShimFile), "an attached snapshot's file fits a shim file");

int ShimOpen(sqlite3_vfs* vfs, const char* name, sqlite3_file* f, int flags, int* out_flags) {
  // A snapshot opened in place, read-only: never the live file.
  if (WantsSnapshot(name, flags)) return OpenAttachedSnapshot(name, flags, f, out_flags);
  ShimFile* s = reinterpret_cast<ShimFile*>(f);
  std::memset(s, 0, sizeof *s);
  s->real = reinterpret_cast<sqlite3_file*>(s + 1);
  int rc = Real(vfs)->xOpen(Real(vfs), name, s->real, flags, out_flags);
  if (rc != SQLITE_OK || s->real->pMethods == nullptr) return rc;
  s->kind = Kind::kOther;
  try {
    if ((flags & SQLITE_OPEN_MAIN_DB) && name != nullptr) {
      s->kind = Kind::kMainDb;
      // Without a tracking file (it cannot be created here) the connection
      // writes untracked, as a plain sqlite3 would; the evidence a snapshot
      // checks catches that (docs/VFS.md, section 4).
      s->tracker = Tracker::Acquire(name);
      s->name = name;
      if (s->tracker == nullptr) {
        std::lock_guard<std::mutex> l(UntrackedMutex());
        Untracked().insert(name);
      }
    } else if ((flags & SQLITE_OPEN_WAL) && name != nullptr) {
      // The pager opens the WAL after the database and closes it first, so
      // the database's tracker outlives this borrowed reference.
      s->kind = Kind::kWal;
      const char* db_name = sqlite3_filename_database(name);
      if (!IsUntracked(db_name)) s->tracker = Tracker::Find(db_name);
    }
  } catch (...) {  // std::bad_alloc: no exception may reach SQLite
    if (s->tracker != nullptr && s->kind == Kind::kMainDb) Tracker::Release(s->tracker);
    s->real->pMethods->xClose(s->real);
    s->real->pMethods = nullptr;
    return SQLITE_NOMEM;
  }
  f->pMethods = MethodsFor(s->real->pMethods->iVersion);
  return SQLITE_OK;
}

bool EndsWith(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() > n && s.compare(s.size() - n, n, suffix) == 0;
}

// Whether `path`, being deleted, may be a database file rather than one of
// SQLite's own side files (deleted on every commit in rollback mode: they
// must cost no extra system call). A super-journal is <db>-mj followed by
// 9 characters (SQLite's "-mj%06X9%02X").
bool MayBeDatabase(const std::string& path) {
  if (EndsWith(path, "-journal") || EndsWith(path, "-wal") || EndsWith(path, "-shm")) return false;
  const size_t mj = path.rfind("-mj");
  return mj == std::string::npos || mj + 12 != path.size();
}

int ShimDelete(sqlite3_vfs* v, const char* name, int sync_dir) {
  std::string path;
  try {
    path = name != nullptr ? name : "";
    // A WAL ends (its last connection closed, or the journal mode changed):
    // check it before it goes.
    if (EndsWith(path, "-wal")) {
      if (Tracker* t = Tracker::Find(path.substr(0, path.size() - 4))) t->OnWalDelete(Real(v), name);
    }
  } catch (...) {  // std::bad_alloc: the WAL stays, unchecked but not lost
    return SQLITE_IOERR_NOMEM;
  }
  const int rc = Real(v)->xDelete(Real(v), name, sync_dir);
  // A database deleted through the VFS takes its tracking and copy-on-write
  // files with it (docs/VFS.md, section 9).
  if ((rc == SQLITE_OK || rc == SQLITE_IOERR_DELETE_NOENT) && MayBeDatabase(path)) Tracker::RemoveSideFiles(path);
  return rc;
}
int ShimAccess(sqlite3_vfs* v, const char* n, int fl, int* o) { return Real(v)->xAccess(Real(v), n, fl, o); }
int ShimFullPathname(sqlite3_vfs* v, const char* n, int sz, char* o) {
  return Real(v)->xFullPathname(Real(v), n, sz, o);
}
void* ShimDlOpen(sqlite3_vfs* v, const char* n) { return Real(v)->xDlOpen(Real(v), n); }
void ShimDlError(sqlite3_vfs* v, int n, char* o) { Real(v)->xDlError(Real(v), n, o); }
void (*ShimDlSym(sqlite3_vfs* v, void* h, const char* s))(void) { return Real(v)->xDlSym(Real(v), h, s); }
void ShimDlClose(sqlite3_vfs* v, void* h) { Real(v)->xDlClose(Real(v), h); }
int ShimRandomness(sqlite3_vfs* v, int n, char* o) { return Real(v)->xRandomness(Real(v), n, o); }
int ShimSleep(sqlite3_vfs* v, int us) { return Real(v)->xSleep(Real(v), us); }
int ShimCurrentTime(sqlite3_vfs* v, double* t) { return Real(v)->xCurrentTime(Real(v), t); }
int ShimGetLastError(sqlite3_vfs* v, int n, char* o) { return Real(v)->xGetLastError(Real(v), n, o); }
int ShimCurrentTimeInt64(sqlite3_vfs* v, sqlite3_int64* t) { return Real(v)->xCurrentTimeInt64(Real(v), t); }
// Version 3: tools that inject faults below SQLite (its test suite's
// test_syscall) replace the real VFS's system calls through any VFS above.
int ShimSetSystemCall(sqlite3_vfs* v, const char* n, sqlite3_syscall_ptr p) {
  return Real(v)->xSetSystemCall(Real(v), n, p);
}
sqlite3_syscall_ptr ShimGetSystemCall(sqlite3_vfs* v, const char* n) { return Real(v)->xGetSystemCall(Real(v), n); }
const char* ShimNextSystemCall(sqlite3_vfs* v, const char* n) { return Real(v)->xNextSystemCall(Real(v), n); }

}  // namespace

int RegisterSnapshotVfs(const char* name) {
  if (sqlite3_vfs_find(name) != nullptr) return SQLITE_OK;
  sqlite3_vfs* real = sqlite3_vfs_find(nullptr);
  if (real == nullptr) return SQLITE_ERROR;
  auto* vfs = new (std::nothrow) sqlite3_vfs();  // registered for the life of the process
  if (vfs == nullptr) return SQLITE_NOMEM;
  // The real VFS's version, so that nothing it offers is hidden.
  vfs->iVersion = std::min(real->iVersion, 3);
  vfs->szOsFile = int(sizeof(ShimFile)) + real->szOsFile;
  vfs->mxPathname = real->mxPathname;
  vfs->zName = name;
  vfs->pAppData = real;
  vfs->xOpen = ShimOpen;
  vfs->xDelete = ShimDelete;
  vfs->xAccess = ShimAccess;
  vfs->xFullPathname = ShimFullPathname;
  vfs->xDlOpen = ShimDlOpen;
  vfs->xDlError = ShimDlError;
  vfs->xDlSym = ShimDlSym;
  vfs->xDlClose = ShimDlClose;
  vfs->xRandomness = ShimRandomness;
  vfs->xSleep = ShimSleep;
  vfs->xCurrentTime = ShimCurrentTime;
  vfs->xGetLastError = ShimGetLastError;
  if (vfs->iVersion >= 2) vfs->xCurrentTimeInt64 = ShimCurrentTimeInt64;
  if (vfs->iVersion >= 3) {
    vfs->xSetSystemCall = ShimSetSystemCall;
    vfs->xGetSystemCall = ShimGetSystemCall;
    vfs->xNextSystemCall = ShimNextSystemCall;
  }
  return sqlite3_vfs_register(vfs, 0);
}

int MakeSnapshotVfsDefault() {
  int rc = RegisterSnapshotVfs();
  if (rc != SQLITE_OK) return rc;
  return sqlite3_vfs_register(sqlite3_vfs_find(kSnapshotVfsName), 1);
}

}  // namespace snapshot
