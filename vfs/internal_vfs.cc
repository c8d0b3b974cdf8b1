#include "vfs/internal_vfs.h"

#include "vfs/sqlite_api.h"

#include <algorithm>
#include <cstring>

#include "vfs/sqlite_format.h"

namespace snapshot {
namespace {

struct ImageFile {
  sqlite3_file base;
  ImageSource* source;
};

struct CaptureFile {
  sqlite3_file base;
  CaptureSink* sink;
};

// Methods both file kinds share: they hold no locks and keep nothing on disk.
int NoopClose(sqlite3_file*) { return SQLITE_OK; }
int NoopSync(sqlite3_file*, int) { return SQLITE_OK; }
int NoopLock(sqlite3_file*, int) { return SQLITE_OK; }
int NoReservedLock(sqlite3_file*, int* out) {
  *out = 0;
  return SQLITE_OK;
}
int NoFileControl(sqlite3_file*, int, void*) { return SQLITE_NOTFOUND; }
int SectorSize(sqlite3_file*) { return 4096; }

// ---- snapshot_image ------------------------------------------------------

int ImageRead(sqlite3_file* f, void* out, int amount, sqlite3_int64 offset) {
  ImageSource* src = reinterpret_cast<ImageFile*>(f)->source;
  const SnapshotInfo& info = src->image->info();
  const uint64_t size = info.db_bytes();
  if (uint64_t(offset) >= size) {
    std::memset(out, 0, size_t(amount));
    return SQLITE_IOERR_SHORT_READ;
  }
  const size_t n = size_t(std::min<uint64_t>(uint64_t(amount), size - uint64_t(offset)));
  Status s;
  if (src->bytes != nullptr) {
    std::memcpy(out, src->bytes + offset, n);
  } else {
    s = src->image->Read(uint64_t(offset), n, static_cast<uint8_t*>(out));
  }
  if (!s.ok()) {
    if (src->error.ok()) src->error = s;
    return SQLITE_IOERR_READ;
  }
  // Serve the header as rollback-journal mode (both version bytes 1): the
  // image has no -wal file, and sqlite3_backup marks a WAL destination as
  // WAL again, so a restore keeps the live database's journal mode.
  static_assert(kDbHeaderReadVersionOffset == kDbHeaderWriteVersionOffset + 1, "adjacent");
  if (offset <= sqlite3_int64(kDbHeaderReadVersionOffset) && uint64_t(offset) + n > kDbHeaderWriteVersionOffset) {
    for (uint64_t b = kDbHeaderWriteVersionOffset; b <= kDbHeaderReadVersionOffset; b++) {
      if (b >= uint64_t(offset) && b < uint64_t(offset) + n) {
        static_cast<uint8_t*>(out)[b - uint64_t(offset)] = kFileFormatRollback;
      }
    }
  }
  if (n < size_t(amount)) {
    std::memset(static_cast<uint8_t*>(out) + n, 0, size_t(amount) - n);
    return SQLITE_IOERR_SHORT_READ;
  }
  return SQLITE_OK;
}
int ImageWrite(sqlite3_file*, const void*, int, sqlite3_int64) { return SQLITE_READONLY; }
int ImageTruncate(sqlite3_file*, sqlite3_int64) { return SQLITE_READONLY; }
int ImageFileSize(sqlite3_file* f, sqlite3_int64* size) {
  *size = sqlite3_int64(reinterpret_cast<ImageFile*>(f)->source->image->info().db_bytes());
  return SQLITE_OK;
}
int ImageDeviceCharacteristics(sqlite3_file*) { return SQLITE_IOCAP_IMMUTABLE; }

const sqlite3_io_methods kImageMethods = {
    1, NoopClose, ImageRead, ImageWrite, ImageTruncate, NoopSync, ImageFileSize, NoopLock, NoopLock,
    NoReservedLock, NoFileControl, SectorSize, ImageDeviceCharacteristics,
    nullptr, nullptr, nullptr, nullptr, nullptr, nullptr};

// ---- snapshot_capture ----------------------------------------------------

int CaptureRead(sqlite3_file* f, void* out, int amount, sqlite3_int64 offset) {
  CaptureSink* sink = reinterpret_cast<CaptureFile*>(f)->sink;
  if (uint64_t(offset) >= sink->size) {
    std::memset(out, 0, size_t(amount));
    return SQLITE_IOERR_SHORT_READ;
  }
  // Only page 1 is kept; the backup never reads back any other page.
  if (uint64_t(offset) + uint64_t(amount) <= sink->page1.size()) {
    std::memcpy(out, sink->page1.data() + offset, size_t(amount));
    return SQLITE_OK;
  }
  return SQLITE_IOERR_READ;
}

int CaptureWrite(sqlite3_file* f, const void* data, int amount, sqlite3_int64 offset) {
  CaptureSink* sink = reinterpret_cast<CaptureFile*>(f)->sink;
  const uint32_t page_size = sink->builder->page_size();
  if (uint32_t(amount) != page_size || uint64_t(offset) % page_size != 0) {
    sink->error = Status::IOError("internal: capture received a partial page");
    return SQLITE_IOERR_WRITE;
  }
  const uint32_t pgno = uint32_t(uint64_t(offset) / page_size) + 1;
  if (pgno == 1) {
    sink->page1.assign(static_cast<const char*>(data), page_size);
  } else {
    Status s = sink->builder->AddPage(pgno, static_cast<const uint8_t*>(data));
    if (!s.ok()) {
      if (sink->error.ok()) sink->error = s;
      return SQLITE_IOERR_WRITE;
    }
  }
  sink->size = std::max(sink->size, uint64_t(offset) + uint64_t(amount));
  return SQLITE_OK;
}
int CaptureTruncate(sqlite3_file* f, sqlite3_int64 size) {
  reinterpret_cast<CaptureFile*>(f)->sink->size = uint64_t(size);
  return SQLITE_OK;
}
int CaptureFileSize(sqlite3_file* f, sqlite3_int64* size) {
  *size = sqlite3_int64(reinterpret_cast<CaptureFile*>(f)->sink->size);
  return SQLITE_OK;
}
int CaptureDeviceCharacteristics(sqlite3_file*) { return 0; }

const sqlite3_io_methods kCaptureMethods = {
    1, NoopClose, CaptureRead, CaptureWrite, CaptureTruncate, NoopSync, CaptureFileSize, NoopLock, NoopLock,
    NoReservedLock, NoFileControl, SectorSize, CaptureDeviceCharacteristics,
    nullptr, nullptr, nullptr, nullptr, nullptr, nullptr};

// ---- the VFS objects -------------------------------------------------------

int ImageOpen(sqlite3_vfs*, const char* name, sqlite3_file* f, int flags, int* out_flags) {
  ImageSource* src = (flags & SQLITE_OPEN_MAIN_DB) ? ImageRegistry().Find(name) : nullptr;
  f->pMethods = nullptr;
  if (src == nullptr) return SQLITE_CANTOPEN;
  reinterpret_cast<ImageFile*>(f)->source = src;
  f->pMethods = &kImageMethods;
  if (out_flags) *out_flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_MAIN_DB;
  return SQLITE_OK;
}

int CaptureOpen(sqlite3_vfs*, const char* name, sqlite3_file* f, int flags, int* out_flags) {
  CaptureSink* sink = (flags & SQLITE_OPEN_MAIN_DB) ? CaptureRegistry().Find(name) : nullptr;
  f->pMethods = nullptr;
  if (sink == nullptr) return SQLITE_CANTOPEN;
  reinterpret_cast<CaptureFile*>(f)->sink = sink;
  f->pMethods = &kCaptureMethods;
  if (out_flags) *out_flags = flags;
  return SQLITE_OK;
}

int NoDelete(sqlite3_vfs*, const char*, int) { return SQLITE_OK; }
int NothingExists(sqlite3_vfs*, const char*, int, int* out) {
  *out = 0;
  return SQLITE_OK;
}
int SameName(sqlite3_vfs*, const char* name, int n, char* out) {
  sqlite3_snprintf(n, out, "%s", name);
  return SQLITE_OK;
}
sqlite3_vfs* DefaultVfs() { return sqlite3_vfs_find(nullptr); }
int Randomness(sqlite3_vfs*, int n, char* out) { return DefaultVfs()->xRandomness(DefaultVfs(), n, out); }
int Sleep(sqlite3_vfs*, int us) { return DefaultVfs()->xSleep(DefaultVfs(), us); }
int CurrentTime(sqlite3_vfs*, double* t) { return DefaultVfs()->xCurrentTime(DefaultVfs(), t); }
int CurrentTimeInt64(sqlite3_vfs*, sqlite3_int64* t) { return DefaultVfs()->xCurrentTimeInt64(DefaultVfs(), t); }
int GetLastError(sqlite3_vfs*, int, char*) { return 0; }

sqlite3_vfs MakeVfs(const char* name, int file_size,
                    int (*open)(sqlite3_vfs*, const char*, sqlite3_file*, int, int*)) {
  sqlite3_vfs v;
  std::memset(&v, 0, sizeof v);
  v.iVersion = 2;
  v.szOsFile = file_size;
  v.mxPathname = 512;
  v.zName = name;
  v.xOpen = open;
  v.xDelete = NoDelete;
  v.xAccess = NothingExists;
  v.xFullPathname = SameName;
  v.xRandomness = Randomness;
  v.xSleep = Sleep;
  v.xCurrentTime = CurrentTime;
  v.xGetLastError = GetLastError;
  v.xCurrentTimeInt64 = CurrentTimeInt64;
  return v;
}

}  // namespace

TokenRegistry<ImageSource>& ImageRegistry() {
  static auto* r = new TokenRegistry<ImageSource>;
  return *r;
}

TokenRegistry<CaptureSink>& CaptureRegistry() {
  static auto* r = new TokenRegistry<CaptureSink>;
  return *r;
}

int RegisterInternalVfs() {
  static sqlite3_vfs image_vfs = MakeVfs(kImageVfsName, sizeof(ImageFile), ImageOpen);
  static sqlite3_vfs capture_vfs = MakeVfs(kCaptureVfsName, sizeof(CaptureFile), CaptureOpen);
  if (sqlite3_vfs_find(kImageVfsName) == nullptr) {
    int rc = sqlite3_vfs_register(&image_vfs, 0);
    if (rc != SQLITE_OK) return rc;
  }
  if (sqlite3_vfs_find(kCaptureVfsName) == nullptr) return sqlite3_vfs_register(&capture_vfs, 0);
  return SQLITE_OK;
}

}  // namespace snapshot
