// SnapshotReader: one stored snapshot, open for reading for as long as the
// caller likes, without holding the store's lock and without being pruned.
//
//   SnapshotReaderOptions o;
//   o.store_dir = "app.db-snapshots";
//   o.db_name = "app.db";        // a store of another database is refused
//   o.snapshot = SnapshotSpec::Id(17);   // or Latest(), or a moment
//   std::unique_ptr<SnapshotReader> r;
//   Status s = SnapshotReader::Open(o, &r);
//   r->Read(0, 100, header);     // bytes of the database image
//   r->ReadPage(5, page);        // or whole pages, hash-checked
//
// Open takes the store's shared lock just long enough to pin the snapshot
// (store/pin.h), decode its manifest and open the packs it refers to; then
// it lets the lock go, so backups and prunes run while the reader lives.
// Every pack is opened up front: store files are only ever replaced or
// unlinked, never changed in place, so an open pack stays readable even if
// a prune compacts it away, and the pin keeps the snapshot itself listed.
// Pages are decompressed on demand, a frame (about 1 MiB) at a time, and
// kept in the process's frame cache (store/frame_cache.h), which every
// reader of every store shares, bounded by cache_bytes. Not thread-safe:
// one user at a time (an SQLite connection serialises its reads); readers
// on different threads share the cache safely.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "store/env.h"
#include "store/manifest.h"
#include "store/snapshot_spec.h"
#include "store/status.h"
#include "store/store.h"

namespace snapshot {

// What a reader keeps decompressed by default: 64 frames of 1 MiB, so a
// point query on a 1 GiB database decompresses only the frames of pages
// that are not already cached (its tree's upper levels stay).
constexpr size_t kDefaultReaderCacheBytes = size_t(64) << 20;

struct SnapshotReaderOptions {
  Env* env = Env::Default();
  std::string store_dir;
  std::string db_name;  // the database's file name (no directory); empty: any
  SnapshotSpec snapshot;  // an id, the latest (default) or a moment (store/snapshot_spec.h)
  // Decoded frames are kept in the process's FrameCache, shared by every
  // reader; its bound is the largest cache_bytes of the readers open. With
  // share_cache false, the reader keeps a cache of its own.
  size_t cache_bytes = kDefaultReaderCacheBytes;
  bool share_cache = true;
  int lock_timeout_ms = 30000;  // waiting for a backup or prune to finish
};

class SnapshotReader {
 public:
  ~SnapshotReader();
  // NotFound: no store, no such snapshot (or none yet, for latest);
  // InvalidArgument: the store belongs to another database; Corruption:
  // the manifest or a pack it needs is damaged; Busy: a backup or prune held
  // the store for longer than lock_timeout_ms.
  static Status Open(const SnapshotReaderOptions& options, std::unique_ptr<SnapshotReader>* out);

  const SnapshotInfo& info() const { return image_->info(); }
  const Manifest& manifest() const { return image_->manifest(); }
  // Tells this store from any other (Store::tag).
  uint64_t store_tag() const { return store_tag_; }
  const std::string& store_dir() const { return store_dir_; }

  // Bytes of the database image; past its end reads zeros. Corruption
  // names the snapshot and the page when stored bytes fail their check.
  Status Read(uint64_t offset, size_t n, uint8_t* out);
  Status ReadPage(uint32_t pgno, uint8_t* out);
  // The keyed hash of a page's content, without decompressing it; false for
  // the lock-byte page, which has none.
  bool StoredHash(uint32_t pgno, PageHash* out) { return image_->StoredHash(pgno, out); }

 private:
  SnapshotReader() = default;
  Status Explain(Status s, uint64_t offset) const;

  std::unique_ptr<Store> store_;  // its lock released; its packs open
  std::unique_ptr<FileLock> pin_;
  std::unique_ptr<FrameCache::Registration> cache_claim_;
  std::unique_ptr<SnapshotImage> image_;
  uint64_t store_tag_ = 0;
  std::string store_dir_;
};

}  // namespace snapshot
