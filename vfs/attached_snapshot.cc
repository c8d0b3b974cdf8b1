#include "vfs/attached_snapshot.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

#include "vfs/sqlite_format.h"

namespace snapshot {
namespace {

std::atomic<StoreDirResolver> g_resolver{nullptr};

// Trivially destructible, so that no thread-exit hook refers into the
// extension's code.
thread_local char t_error[1024];

void SetError(int rc, const std::string& message) {
  std::snprintf(t_error, sizeof t_error, "%s", message.c_str());
  sqlite3_log(rc, "snapshot: %s", t_error);
}

int CodeFor(const Status& s) {
  switch (s.code()) {
    case Status::Code::kOk: return SQLITE_OK;
    case Status::Code::kCorruption: return SQLITE_CORRUPT;
    case Status::Code::kBusy: return SQLITE_BUSY;
    case Status::Code::kIOError: return SQLITE_IOERR;
    default: return SQLITE_CANTOPEN;
  }
}

SnapshotReader* ReaderOf(sqlite3_file* f) { return reinterpret_cast<AttachedSnapshotFile*>(f)->reader; }

int Close(sqlite3_file* f) {
  delete ReaderOf(f);
  reinterpret_cast<AttachedSnapshotFile*>(f)->reader = nullptr;
  return SQLITE_OK;
}

int Read(sqlite3_file* f, void* out, int amount, sqlite3_int64 offset) {
  SnapshotReader* r = ReaderOf(f);
  const uint64_t size = r->info().db_bytes();
  const uint64_t begin = uint64_t(offset);
  const size_t n = begin >= size ? 0 : size_t(std::min<uint64_t>(uint64_t(amount), size - begin));
  if (n > 0) {
    Status s;
    try {
      s = r->Read(begin, n, static_cast<uint8_t*>(out));
    } catch (const std::bad_alloc&) {
      return SQLITE_IOERR_NOMEM;
    }
    if (!s.ok()) {
      const int rc = s.IsCorruption() ? SQLITE_CORRUPT : SQLITE_IOERR_READ;
      SetError(rc, s.message());
      return rc;
    }
  }
  // A snapshot has no -wal beside it: a WAL database's snapshot is served as
  // rollback-journal mode (both version bytes 1), as restore serves it.
  for (uint64_t b = kDbHeaderWriteVersionOffset; b <= kDbHeaderReadVersionOffset; b++) {
    if (b >= begin && b < begin + n) static_cast<uint8_t*>(out)[b - begin] = kFileFormatRollback;
  }
  if (n < size_t(amount)) {
    std::memset(static_cast<uint8_t*>(out) + n, 0, size_t(amount) - n);
    return SQLITE_IOERR_SHORT_READ;
  }
  return SQLITE_OK;
}

int Write(sqlite3_file*, const void*, int, sqlite3_int64) { return SQLITE_READONLY; }
int Truncate(sqlite3_file*, sqlite3_int64) { return SQLITE_READONLY; }
int Sync(sqlite3_file*, int) { return SQLITE_OK; }
int FileSize(sqlite3_file* f, sqlite3_int64* size) {
  *size = sqlite3_int64(ReaderOf(f)->info().db_bytes());
  return SQLITE_OK;
}
// Nothing else changes a snapshot: no lock is needed to read it.
int Lock(sqlite3_file*, int) { return SQLITE_OK; }
int CheckReservedLock(sqlite3_file*, int* out) {
  *out = 0;
  return SQLITE_OK;
}
int FileControl(sqlite3_file*, int, void*) { return SQLITE_NOTFOUND; }
int SectorSize(sqlite3_file*) { return 4096; }
int DeviceCharacteristics(sqlite3_file*) { return SQLITE_IOCAP_IMMUTABLE; }

const sqlite3_io_methods kMethods = {
    1, Close, Read, Write, Truncate, Sync, FileSize, Lock, Lock, CheckReservedLock, FileControl, SectorSize,
    DeviceCharacteristics, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr};

// Whole MiB from 1 to 64 GiB.
bool ParseMiB(const char* text, size_t* bytes) {
  char* end = nullptr;
  const long long v = std::strtoll(text, &end, 10);
  if (end == text || *end != '\0' || v < 1 || v > 65536) return false;
  *bytes = size_t(v) << 20;
  return true;
}

int Open(const char* name, int flags, sqlite3_file* f, int* out_flags) {
  const char* id_text = sqlite3_uri_parameter(name, "snapshot");
  std::string what = std::string("snapshot=") + id_text + " of " + name;
  if ((flags & SQLITE_OPEN_READONLY) == 0) {
    SetError(SQLITE_CANTOPEN, what + " must be opened read-only: add mode=ro to the URI, as in ATTACH "
                                     "'file:app.db?vfs=snapshot&snapshot=17&mode=ro' AS s17");
    return SQLITE_CANTOPEN;
  }
  SnapshotReaderOptions o;
  const Status spec = SnapshotSpec::Parse(id_text, &o.snapshot);
  if (!spec.ok()) {
    SetError(SQLITE_CANTOPEN, what + ": snapshot= " + spec.message());
    return SQLITE_CANTOPEN;
  }
  const char* cache = sqlite3_uri_parameter(name, "snapshot_cache");
  const char* env_cache = std::getenv("SNAPSHOT_ATTACH_CACHE_MB");
  if (cache == nullptr && env_cache != nullptr && env_cache[0] != '\0') cache = env_cache;
  if (cache != nullptr && !ParseMiB(cache, &o.cache_bytes)) {
    SetError(SQLITE_CANTOPEN, what + ": the snapshot cache (snapshot_cache= or SNAPSHOT_ATTACH_CACHE_MB) must be "
                                     "a whole number of MiB from 1 to 65536, not '" + cache + "'");
    return SQLITE_CANTOPEN;
  }
  const std::string db_path = name;
  const char* dir = sqlite3_uri_parameter(name, "snapshot_dir");
  const StoreDirResolver resolver = g_resolver.load();
  if (dir != nullptr && dir[0] != '\0') {
    o.store_dir = dir;
  } else {
    o.store_dir = resolver != nullptr ? resolver(db_path) : db_path + "-snapshots";
  }
  o.db_name = BaseName(db_path);
  std::unique_ptr<SnapshotReader> reader;
  const Status s = SnapshotReader::Open(o, &reader);
  if (!s.ok()) {
    const int rc = CodeFor(s);
    SetError(rc, what + " (store " + o.store_dir + "): " + s.message());
    return rc;
  }
  reinterpret_cast<AttachedSnapshotFile*>(f)->reader = reader.release();
  f->pMethods = &kMethods;
  if (out_flags != nullptr) *out_flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_MAIN_DB;
  t_error[0] = '\0';
  return SQLITE_OK;
}

}  // namespace

bool WantsSnapshot(const char* name, int flags) {
  return (flags & SQLITE_OPEN_MAIN_DB) != 0 && name != nullptr && sqlite3_uri_parameter(name, "snapshot") != nullptr;
}

int OpenAttachedSnapshot(const char* name, int flags, sqlite3_file* f, int* out_flags) {
  f->pMethods = nullptr;
  reinterpret_cast<AttachedSnapshotFile*>(f)->reader = nullptr;
  try {
    return Open(name, flags, f, out_flags);
  } catch (const std::bad_alloc&) {
    return SQLITE_NOMEM;
  }
}

void SetStoreDirResolver(StoreDirResolver resolver) { g_resolver.store(resolver); }

const char* AttachedSnapshotError() { return t_error; }

}  // namespace snapshot
