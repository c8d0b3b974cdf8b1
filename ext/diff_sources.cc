#include "ext/diff_sources.h"

#include <algorithm>
#include <cstring>

#include "ext/capture.h"
#include "ext/sql_util.h"
#include "store/page_diff.h"
#include "vfs/token_registry.h"

namespace snapshot {

Status SnapshotPages::ReadPage(uint32_t pgno, std::string* out) {
  out->resize(page_size());
  Status s = image_->ReadPage(pgno, reinterpret_cast<uint8_t*>(&(*out)[0]));
  if (!s.ok()) return Status::Corruption(Describe() + ": page " + std::to_string(pgno) + ": " + s.message());
  return s;
}

namespace {

constexpr char kLiveSinkVfsName[] = "snapshot_diff_live";

// Where the backup's pages go: to `receive` (LivePages::Receive). Read
// back (SQLite reads page 1 back), a page is a kept one or the base's.
struct LiveSink {
  std::function<void(uint32_t pgno, const uint8_t* page)> receive;
  SnapshotImage* base = nullptr;
  uint32_t page_size = 0;
  const std::map<uint32_t, std::string>* pages = nullptr;
  uint64_t size = 0;
  Status error;
};

TokenRegistry<LiveSink>& SinkRegistry() {
  static auto* r = new TokenRegistry<LiveSink>;
  return *r;
}

struct SinkFile {
  sqlite3_file base;
  LiveSink* sink;
};

LiveSink* SinkOf(sqlite3_file* f) { return reinterpret_cast<SinkFile*>(f)->sink; }

int SinkWrite(sqlite3_file* f, const void* data, int amount, sqlite3_int64 offset) {
  LiveSink* sink = SinkOf(f);
  if (uint32_t(amount) != sink->page_size || uint64_t(offset) % sink->page_size != 0) {
    sink->error = Status::IOError("internal: the live database's pages came in pieces");
    return SQLITE_IOERR_WRITE;
  }
  sink->receive(uint32_t(uint64_t(offset) / sink->page_size) + 1, static_cast<const uint8_t*>(data));
  sink->size = std::max(sink->size, uint64_t(offset) + uint64_t(amount));
  return SQLITE_OK;
}

int SinkRead(sqlite3_file* f, void* out, int amount, sqlite3_int64 offset) {
  LiveSink* sink = SinkOf(f);
  if (uint64_t(offset) >= sink->size) {
    std::memset(out, 0, size_t(amount));
    return SQLITE_IOERR_SHORT_READ;
  }
  // Whole pages only; a page not kept is the base's.
  if (uint32_t(amount) != sink->page_size || uint64_t(offset) % sink->page_size != 0) return SQLITE_IOERR_READ;
  const uint32_t pgno = uint32_t(uint64_t(offset) / sink->page_size) + 1;
  auto it = sink->pages->find(pgno);
  if (it != sink->pages->end()) {
    std::memcpy(out, it->second.data(), size_t(amount));
    return SQLITE_OK;
  }
  Status s = sink->base->ReadPage(pgno, static_cast<uint8_t*>(out));
  if (!s.ok()) {
    if (sink->error.ok()) sink->error = s;
    return SQLITE_IOERR_READ;
  }
  return SQLITE_OK;
}

int SinkTruncate(sqlite3_file* f, sqlite3_int64 size) {
  SinkOf(f)->size = uint64_t(size);
  return SQLITE_OK;
}
int SinkFileSize(sqlite3_file* f, sqlite3_int64* size) {
  *size = sqlite3_int64(SinkOf(f)->size);
  return SQLITE_OK;
}
int SinkClose(sqlite3_file*) { return SQLITE_OK; }
int SinkSync(sqlite3_file*, int) { return SQLITE_OK; }
int SinkLock(sqlite3_file*, int) { return SQLITE_OK; }
int SinkCheckReservedLock(sqlite3_file*, int* out) {
  *out = 0;
  return SQLITE_OK;
}
int SinkFileControl(sqlite3_file*, int, void*) { return SQLITE_NOTFOUND; }
int SinkSectorSize(sqlite3_file*) { return 4096; }
int SinkDeviceCharacteristics(sqlite3_file*) { return 0; }

const sqlite3_io_methods kSinkMethods = {
    1, SinkClose, SinkRead, SinkWrite, SinkTruncate, SinkSync, SinkFileSize, SinkLock, SinkLock,
    SinkCheckReservedLock, SinkFileControl, SinkSectorSize, SinkDeviceCharacteristics,
    nullptr, nullptr, nullptr, nullptr, nullptr, nullptr};

int SinkOpen(sqlite3_vfs*, const char* name, sqlite3_file* f, int flags, int* out_flags) {
  LiveSink* sink = (flags & SQLITE_OPEN_MAIN_DB) ? SinkRegistry().Find(name) : nullptr;
  f->pMethods = nullptr;
  if (sink == nullptr) return SQLITE_CANTOPEN;
  reinterpret_cast<SinkFile*>(f)->sink = sink;
  f->pMethods = &kSinkMethods;
  if (out_flags) *out_flags = flags;
  return SQLITE_OK;
}

sqlite3_vfs* DefaultVfs() { return sqlite3_vfs_find(nullptr); }
int SinkDelete(sqlite3_vfs*, const char*, int) { return SQLITE_OK; }
int SinkAccess(sqlite3_vfs*, const char*, int, int* out) {
  *out = 0;
  return SQLITE_OK;
}
int SinkFullPathname(sqlite3_vfs*, const char* name, int n, char* out) {
  sqlite3_snprintf(n, out, "%s", name);
  return SQLITE_OK;
}
int SinkRandomness(sqlite3_vfs*, int n, char* out) { return DefaultVfs()->xRandomness(DefaultVfs(), n, out); }
int SinkSleep(sqlite3_vfs*, int us) { return DefaultVfs()->xSleep(DefaultVfs(), us); }
int SinkCurrentTime(sqlite3_vfs*, double* t) { return DefaultVfs()->xCurrentTime(DefaultVfs(), t); }
int SinkGetLastError(sqlite3_vfs*, int, char*) { return 0; }

int RegisterSinkVfs() {
  static sqlite3_vfs vfs = [] {
    sqlite3_vfs v;
    std::memset(&v, 0, sizeof v);
    v.iVersion = 1;
    v.szOsFile = sizeof(SinkFile);
    v.mxPathname = 512;
    v.zName = kLiveSinkVfsName;
    v.xOpen = SinkOpen;
    v.xDelete = SinkDelete;
    v.xAccess = SinkAccess;
    v.xFullPathname = SinkFullPathname;
    v.xRandomness = SinkRandomness;
    v.xSleep = SinkSleep;
    v.xCurrentTime = SinkCurrentTime;
    v.xGetLastError = SinkGetLastError;
    return v;
  }();
  if (sqlite3_vfs_find(kLiveSinkVfsName) != nullptr) return SQLITE_OK;
  return sqlite3_vfs_register(&vfs, 0);
}

}  // namespace

Status LivePages::Capture(sqlite3* db, const char* schema, Store* store, SnapshotImage* base, sqlite3* caller,
                          std::unique_ptr<LivePages>* out) {
  const std::string q = "PRAGMA \"" + QuoteIdentifier(schema) + "\".";
  int64_t page_size = 0, page_count = 0;
  SNAPSHOT_RETURN_IF_ERROR(QueryInt(db, q + "page_size", &page_size));
  SNAPSHOT_RETURN_IF_ERROR(QueryInt(db, q + "page_count", &page_count));
  std::unique_ptr<LivePages> live(new LivePages(base, uint32_t(page_size), uint32_t(page_count)));

  int rc = RegisterSinkVfs();
  if (rc != SQLITE_OK) return SqliteStatus(nullptr, rc, "cannot register the diff's VFS");
  LiveSink sink;
  LivePages* l = live.get();
  sink.receive = [l, store](uint32_t pgno, const uint8_t* page) { l->Receive(store, pgno, page); };
  sink.base = base;
  sink.page_size = live->page_size_;
  sink.pages = &live->pages_;
  ScopedToken<LiveSink> token(&SinkRegistry(), &sink);
  Status result = CopyIntoPageSink(db, schema, token.token(), kLiveSinkVfsName, "the diff's page sink", caller,
                                   /*progress=*/nullptr);
  if (!sink.error.ok()) return sink.error;
  SNAPSHOT_RETURN_IF_ERROR(result);
  live->ListDiffering({});
  *out = std::move(live);
  return Status::OK();
}

Status LivePages::FromTracked(TrackedLiveImage* image, std::unique_ptr<SnapshotImage> tracked, Store* store,
                              SnapshotImage* base, const std::function<Status()>& poll,
                              std::unique_ptr<LivePages>* out) {
  std::unique_ptr<LivePages> live(new LivePages(base, image->page_size(), image->page_count()));
  SNAPSHOT_RETURN_IF_ERROR(image->ReadPages([&](uint32_t pgno, const uint8_t* page) {
    SNAPSHOT_RETURN_IF_ERROR(poll());
    live->Receive(store, pgno, page);
    return Status::OK();
  }));
  live->read_ = image->pages();
  // A page not read is the tracked base's: it differs from `base` where the
  // two snapshots do.
  std::vector<uint32_t> snapshots_differ, unread_differing;
  if (tracked->info().id != base->info().id) DifferingPages(base, tracked.get(), &snapshots_differ);
  for (uint32_t p : snapshots_differ) {
    if (p <= live->page_count_ && !std::binary_search(live->read_.begin(), live->read_.end(), p)) {
      unread_differing.push_back(p);
    }
  }
  // The same snapshot as `base` (the usual case: a diff against the
  // newest): its pages are read through `base`, whose frames are decoded
  // already for mapping the b-trees.
  if (tracked->info().id != base->info().id) live->tracked_ = std::move(tracked);
  live->ListDiffering(unread_differing);
  *out = std::move(live);
  return Status::OK();
}

void LivePages::Receive(Store* store, uint32_t pgno, const uint8_t* page) {
  PageHash stored;
  const bool same_as_base = pgno != 1 && base_->info().page_size == page_size_ && pgno <= base_->info().page_count &&
                            base_->StoredHash(pgno, &stored) && stored == store->HashOfPage(page, page_size_);
  if (same_as_base) {
    pages_.erase(pgno);
  } else {
    pages_[pgno].assign(reinterpret_cast<const char*>(page), page_size_);
  }
}

void LivePages::ListDiffering(const std::vector<uint32_t>& unread_differing) {
  // Pages past the end of the live database are the base's only.
  for (auto it = pages_.begin(); it != pages_.end();) {
    it = it->first > page_count_ ? pages_.erase(it) : std::next(it);
  }
  for (const auto& p : pages_) differing_.push_back(p.first);
  for (uint32_t p : unread_differing) differing_.push_back(p);
  for (uint32_t p = page_count_ + 1; p <= base_->info().page_count; p++) differing_.push_back(p);
  std::sort(differing_.begin(), differing_.end());
  differing_.erase(std::unique(differing_.begin(), differing_.end()), differing_.end());
  if (page_size_ != base_->info().page_size) {
    // Nothing is shared: every page differs (and was kept, or is the
    // tracked base's, whose page size is the live one's).
    differing_.clear();
    for (uint32_t p = 1; p <= std::max(page_count_, base_->info().page_count); p++) differing_.push_back(p);
  }
}

Status LivePages::ReadPage(uint32_t pgno, std::string* out) {
  if (pgno == 0 || pgno > page_count_) return Status::Corruption("the live database has no page " + std::to_string(pgno));
  auto it = pages_.find(pgno);
  if (it != pages_.end()) {
    *out = it->second;
    return Status::OK();
  }
  // Not kept: the same as the base's if it was read (or every page was),
  // else the tracked base's.
  SnapshotImage* from = tracked_ != nullptr && !std::binary_search(read_.begin(), read_.end(), pgno) ? tracked_.get()
                                                                                                  : base_;
  out->resize(page_size_);
  Status s = from->ReadPage(pgno, reinterpret_cast<uint8_t*>(&(*out)[0]));
  if (!s.ok()) {
    return Status::Corruption("snapshot " + std::to_string(from->info().id) + ": page " + std::to_string(pgno) + ": " +
                              s.message());
  }
  return Status::OK();
}

}  // namespace snapshot
