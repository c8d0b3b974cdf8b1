#include "vfs/snapshot_vfs.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>

#include "ext/sqlite_api.h"
#include "store/coding.h"

namespace snapshot {
namespace {

// One database's tracking file, shared by all connections of this process.
class Tracker {
 public:
  static Tracker* Acquire(const std::string& db_path);  // nullptr if it cannot be opened
  static Tracker* Find(const std::string& db_path);     // an acquired one, or nullptr
  static void Release(Tracker* t);

  // Sets page pgno's bit, growing the file and the mapping when needed.
  void Mark(uint32_t pgno) {
    if (pgno == 0) return;
    const uint64_t byte = kTrackHeaderSize + (uint64_t(pgno) - 1) / 8;
    const uint8_t bit = uint8_t(1u << ((pgno - 1) % 8));
    for (;;) {
      {
        std::shared_lock<std::shared_mutex> l(map_mu_);
        if (byte < mapped_) {
          __atomic_fetch_or(base_ + byte, bit, __ATOMIC_SEQ_CST);
          return;
        }
      }
      if (!Grow(byte + 1)) return;  // best effort: a snapshot then finds the bits untrustworthy
    }
  }

 private:
  explicit Tracker(int fd) : fd_(fd) {}
  ~Tracker() {
    if (base_ != nullptr) munmap(base_, mapped_);
    close(fd_);
  }
  bool Grow(uint64_t need) {
    std::unique_lock<std::shared_mutex> l(map_mu_);
    if (need <= mapped_) return true;
    struct stat st;
    if (fstat(fd_, &st) != 0) return false;
    // Another process may have grown the file already; grow in 1 MiB steps.
    uint64_t size = uint64_t(st.st_size);
    if (size < need) {
      size = (need + (1 << 20) - 1) & ~uint64_t((1 << 20) - 1);
      if (ftruncate(fd_, off_t(size)) != 0) return false;
    }
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (p == MAP_FAILED) return false;
    if (base_ != nullptr) munmap(base_, mapped_);
    base_ = static_cast<uint8_t*>(p);
    mapped_ = size;
    return true;
  }

  static std::mutex& RegistryMutex() {
    static auto* mu = new std::mutex;
    return *mu;
  }
  static std::map<std::string, std::pair<Tracker*, int>>& Registry() {
    static auto* r = new std::map<std::string, std::pair<Tracker*, int>>;
    return *r;
  }

  int fd_;
  std::shared_mutex map_mu_;
  uint8_t* base_ = nullptr;
  uint64_t mapped_ = 0;
};

Tracker* Tracker::Acquire(const std::string& db_path) {
  std::lock_guard<std::mutex> l(RegistryMutex());
  auto& reg = Registry();
  auto it = reg.find(db_path);
  if (it != reg.end()) {
    it->second.second++;
    return it->second.first;
  }
  const std::string path = db_path + kTrackSuffix;
  struct stat db_st;
  const mode_t mode = stat(db_path.c_str(), &db_st) == 0 ? (db_st.st_mode & 0666) : 0600;
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, mode);
  if (fd < 0) return nullptr;
  struct stat st;
  if (fstat(fd, &st) == 0 && st.st_size == 0) {
    // A new file: the header, written once (concurrent creators write the
    // same bytes). The bitmap follows at kTrackHeaderSize.
    uint8_t header[kTrackHeaderSize] = {};
    std::memcpy(header, kTrackMagic, 8);
    if (pwrite(fd, header, sizeof header, 0) != ssize_t(sizeof header)) {
      close(fd);
      return nullptr;
    }
  }
  auto* t = new Tracker(fd);
  reg[db_path] = {t, 1};
  return t;
}

Tracker* Tracker::Find(const std::string& db_path) {
  std::lock_guard<std::mutex> l(RegistryMutex());
  auto it = Registry().find(db_path);
  return it == Registry().end() ? nullptr : it->second.first;
}

void Tracker::Release(Tracker* t) {
  std::lock_guard<std::mutex> l(RegistryMutex());
  for (auto it = Registry().begin(); it != Registry().end(); ++it) {
    if (it->second.first == t && --it->second.second == 0) {
      delete t;
      Registry().erase(it);
      return;
    }
  }
}

// ---- the shim -------------------------------------------------------------

enum class Kind { kMainDb, kWal, kOther };

struct ShimFile {
  sqlite3_file base;
  sqlite3_file* real;  // the underlying VFS's file, allocated right after this
  Kind kind;
  Tracker* tracker;  // owned reference for kMainDb; borrowed for kWal
};

sqlite3_vfs* Real(sqlite3_vfs* vfs) { return static_cast<sqlite3_vfs*>(vfs->pAppData); }
sqlite3_file* R(sqlite3_file* f) { return reinterpret_cast<ShimFile*>(f)->real; }

int ShimClose(sqlite3_file* f) {
  ShimFile* s = reinterpret_cast<ShimFile*>(f);
  int rc = s->real->pMethods ? s->real->pMethods->xClose(s->real) : SQLITE_OK;
  if (s->kind == Kind::kMainDb && s->tracker != nullptr) Tracker::Release(s->tracker);
  s->tracker = nullptr;
  return rc;
}

int ShimWrite(sqlite3_file* f, const void* data, int amount, sqlite3_int64 offset) {
  ShimFile* s = reinterpret_cast<ShimFile*>(f);
  if (s->kind == Kind::kMainDb && s->tracker != nullptr && amount > 0) {
    // The pager writes whole pages, at multiples of the page size.
    const uint64_t first = uint64_t(offset) / uint64_t(amount) + 1;
    s->tracker->Mark(uint32_t(first));
  } else if (s->kind == Kind::kWal && amount == 24 && offset >= 32) {
    // A WAL frame header: its first 4 bytes name the page that follows.
    if (s->tracker != nullptr) s->tracker->Mark(LoadU32BE(static_cast<const uint8_t*>(data)));
  }
  return s->real->pMethods->xWrite(s->real, data, amount, offset);
}

// Everything else passes through.
int ShimRead(sqlite3_file* f, void* p, int n, sqlite3_int64 o) { return R(f)->pMethods->xRead(R(f), p, n, o); }
int ShimTruncate(sqlite3_file* f, sqlite3_int64 n) { return R(f)->pMethods->xTruncate(R(f), n); }
int ShimSync(sqlite3_file* f, int flags) { return R(f)->pMethods->xSync(R(f), flags); }
int ShimFileSize(sqlite3_file* f, sqlite3_int64* n) { return R(f)->pMethods->xFileSize(R(f), n); }
int ShimLock(sqlite3_file* f, int l) { return R(f)->pMethods->xLock(R(f), l); }
int ShimUnlock(sqlite3_file* f, int l) { return R(f)->pMethods->xUnlock(R(f), l); }
int ShimCheckReservedLock(sqlite3_file* f, int* out) { return R(f)->pMethods->xCheckReservedLock(R(f), out); }
int ShimFileControl(sqlite3_file* f, int op, void* arg) { return R(f)->pMethods->xFileControl(R(f), op, arg); }
int ShimSectorSize(sqlite3_file* f) { return R(f)->pMethods->xSectorSize(R(f)); }
int ShimDeviceCharacteristics(sqlite3_file* f) { return R(f)->pMethods->xDeviceCharacteristics(R(f)); }
int ShimShmMap(sqlite3_file* f, int i, int sz, int ext, void volatile** pp) {
  return R(f)->pMethods->xShmMap(R(f), i, sz, ext, pp);
}
int ShimShmLock(sqlite3_file* f, int o, int n, int flags) { return R(f)->pMethods->xShmLock(R(f), o, n, flags); }
void ShimShmBarrier(sqlite3_file* f) { R(f)->pMethods->xShmBarrier(R(f)); }
int ShimShmUnmap(sqlite3_file* f, int del) { return R(f)->pMethods->xShmUnmap(R(f), del); }
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

int ShimOpen(sqlite3_vfs* vfs, const char* name, sqlite3_file* f, int flags, int* out_flags) {
  ShimFile* s = reinterpret_cast<ShimFile*>(f);
  std::memset(s, 0, sizeof *s);
  s->real = reinterpret_cast<sqlite3_file*>(s + 1);
  int rc = Real(vfs)->xOpen(Real(vfs), name, s->real, flags, out_flags);
  if (rc != SQLITE_OK || s->real->pMethods == nullptr) return rc;
  s->kind = Kind::kOther;
  if ((flags & SQLITE_OPEN_MAIN_DB) && name != nullptr) {
    s->kind = Kind::kMainDb;
    s->tracker = Tracker::Acquire(name);
  } else if ((flags & SQLITE_OPEN_WAL) && name != nullptr) {
    // The pager opens the WAL after the database and closes it first, so
    // the database's tracker outlives this borrowed reference.
    s->kind = Kind::kWal;
    s->tracker = Tracker::Find(sqlite3_filename_database(name));
  }
  f->pMethods = MethodsFor(s->real->pMethods->iVersion);
  return SQLITE_OK;
}

int ShimDelete(sqlite3_vfs* v, const char* n, int d) { return Real(v)->xDelete(Real(v), n, d); }
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

}  // namespace

int RegisterSnapshotVfs() {
  if (sqlite3_vfs_find(kSnapshotVfsName) != nullptr) return SQLITE_OK;
  sqlite3_vfs* real = sqlite3_vfs_find(nullptr);
  if (real == nullptr) return SQLITE_ERROR;
  static sqlite3_vfs vfs;  // registered for the life of the process
  std::memset(&vfs, 0, sizeof vfs);
  vfs.iVersion = 2;
  vfs.szOsFile = int(sizeof(ShimFile)) + real->szOsFile;
  vfs.mxPathname = real->mxPathname;
  vfs.zName = kSnapshotVfsName;
  vfs.pAppData = real;
  vfs.xOpen = ShimOpen;
  vfs.xDelete = ShimDelete;
  vfs.xAccess = ShimAccess;
  vfs.xFullPathname = ShimFullPathname;
  vfs.xDlOpen = ShimDlOpen;
  vfs.xDlError = ShimDlError;
  vfs.xDlSym = ShimDlSym;
  vfs.xDlClose = ShimDlClose;
  vfs.xRandomness = ShimRandomness;
  vfs.xSleep = ShimSleep;
  vfs.xCurrentTime = ShimCurrentTime;
  vfs.xGetLastError = ShimGetLastError;
  vfs.xCurrentTimeInt64 = ShimCurrentTimeInt64;
  return sqlite3_vfs_register(&vfs, 0);
}

}  // namespace snapshot
