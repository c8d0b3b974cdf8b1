#include "store/snapshot_reader.h"

#include <algorithm>

#include "store/pin.h"

namespace snapshot {

SnapshotReader::~SnapshotReader() {
  image_.reset();  // refers to store_ and holds a frame of the cache
  cache_claim_.reset();
  store_.reset();
  pin_.reset();    // last: the snapshot stays until nothing reads it
}

Status SnapshotReader::Open(const SnapshotReaderOptions& o, std::unique_ptr<SnapshotReader>* out) {
  std::unique_ptr<SnapshotReader> r(new SnapshotReader);
  StoreOptions so;
  so.env = o.env;
  so.dir = o.store_dir;
  so.db_name = o.db_name;
  so.lock_timeout_ms = o.lock_timeout_ms;
  SNAPSHOT_RETURN_IF_ERROR(Store::Open(so, &r->store_));
  uint64_t id = 0;
  SNAPSHOT_RETURN_IF_ERROR(ResolveSnapshot(r->store_.get(), o.snapshot, &id));
  // Pinned before the manifest is read, under the shared lock: no prune
  // can fall between the two.
  SNAPSHOT_RETURN_IF_ERROR(PinSnapshot(o.env, o.store_dir, id, &r->pin_));
  SNAPSHOT_RETURN_IF_ERROR(r->store_->OpenImage(id, &r->image_));
  r->image_->SetCacheBytes(o.cache_bytes);
  r->store_tag_ = r->store_->tag();
  if (o.share_cache) {
    r->cache_claim_ = FrameCache::Shared()->Register(o.cache_bytes);
    r->image_->UseSharedCache(FrameCache::Shared(), r->store_tag_);
  }
  r->store_dir_ = o.store_dir;
  r->store_->ReleaseLock();
  *out = std::move(r);
  return Status::OK();
}

Status SnapshotReader::Explain(Status s, uint64_t offset) const {
  if (s.ok()) return s;
  const std::string where = "snapshot " + std::to_string(image_->info().id) + ", page " +
                            std::to_string(offset / image_->info().page_size + 1) + ": " + s.message();
  return s.IsCorruption() ? Status::Corruption(where) : Status::IOError(where);
}

Status SnapshotReader::Read(uint64_t offset, size_t n, uint8_t* out) {
  // Page by page, so that a failure names the page that failed.
  const uint32_t page_size = image_->info().page_size;
  while (n > 0) {
    const size_t take = std::min<uint64_t>(n, page_size - offset % page_size);
    SNAPSHOT_RETURN_IF_ERROR(Explain(image_->Read(offset, take, out), offset));
    offset += take;
    out += take;
    n -= take;
  }
  return Status::OK();
}

Status SnapshotReader::ReadPage(uint32_t pgno, uint8_t* out) {
  return Explain(image_->ReadPage(pgno, out), uint64_t(pgno - 1) * image_->info().page_size);
}

}  // namespace snapshot
