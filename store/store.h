// Store: a directory of incremental, deduplicated, compressed page snapshots
// of one SQLite database. Independent of SQLite: it deals in pages.
//
//   <dir>/STORE                  identity: format version, database name, hash key
//   <dir>/LOCK                   flock: shared to read, exclusive to change
//   <dir>/packs/NNNNNNNNNN.pack  compressed pages added by one snapshot
//   <dir>/snapshots/NNNNNNNNNN.snap   one snapshot's metadata and page map
//
// Writing a snapshot: NewSnapshot() returns a SnapshotBuilder; feed it pages
// (all of them, or only those that may have changed, when the caller knows
// the others are as in the base snapshot); Commit() publishes it. A page whose
// content the store already holds is referenced, not stored again. Packs are
// made durable before the manifest that refers to them, and a manifest is
// published by an atomic rename, so a crash leaves every listed snapshot whole
// and at worst an unreferenced pack that a later prune removes.
//
// Ids are never allocated twice: the file holding the largest id is never
// deleted (docs/FORMAT.md §8), so an old copy of a file put back into the
// store is always a copy of that same file.
//
// Typical use:
//   std::unique_ptr<Store> store;
//   StoreOptions o; o.dir = "app.db-snapshots"; o.db_name = "app.db";
//   Store::Open(o, &store);
//   std::unique_ptr<SnapshotBuilder> b;
//   store->NewSnapshot(4096, page_count, nullptr, &b);
//   for (pgno ...) b->AddPage(pgno, data);
//   uint64_t id; b->Commit("nightly", &id);
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "store/bundle.h"
#include "store/env.h"
#include "store/frame_cache.h"
#include "store/hash.h"
#include "store/manifest.h"
#include "store/pack.h"
#include "store/page_index.h"
#include "store/status.h"

namespace snapshot {

struct StoreOptions {
  Env* env = Env::Default();
  std::string dir;
  // The database's file name (no directory): a store refuses to serve a
  // database of another name, so two databases never share one by mistake.
  std::string db_name;
  bool create_if_missing = false;  // create <dir> if absent, and a store in it
  bool create_store = false;       // start a new store in an existing, empty <dir>
                                   // (both need exclusive)
  bool exclusive = false;          // lock for writing (backup, restore, prune)
  int lock_timeout_ms = 30000;
  unsigned file_mode = 0600;       // permission bits of files the store creates
  CompressOptions compress;
  // CompactIfNeeded() runs a round once snapshots/ and packs/ hold more
  // files than this between them (store/compaction.cc). 0: never (Compact()
  // and CompactRound() still do).
  size_t compaction_file_threshold = 64;
  // What one compaction round may rewrite, so that the store's lock is
  // held for a short, bounded time however large the store has grown.
  struct CompactionLimits {
    // Manifests rewritten: loose ones folded plus the records of every
    // bundle the round rewrites (folded, or naming a merged pack).
    size_t max_records = 4096;
    // Their bytes, uncompressed: a manifest is about 14 bytes per page of
    // a database whose changes are scattered (330 KB at 24,000 pages), and
    // folding rewrites each one, so a count alone let a round hold the
    // lock for seconds (bench/README.md, "Continuous protection").
    uint64_t max_record_bytes = uint64_t(64) << 20;
    size_t max_packs = 32;                      // packs merged into one
    uint64_t max_pack_bytes = uint64_t(8) << 20;  // their bytes on disk
    // Pages of the newest snapshot copied out of sparse frames (and 4
    // times as many decoded to find them): 8 MiB of 4 KiB pages.
    size_t max_copied_pages = 2048;
  } compaction_limits;
};

class RetentionPolicy;
class SnapshotBuilder;
class SnapshotImage;

struct PruneResult {
  std::vector<uint64_t> deleted;  // snapshot ids
  std::vector<uint64_t> pinned;   // kept only because they are being read (attached)
  uint64_t bytes_reclaimed = 0;
};

class Store {
 public:
  ~Store();
  static Status Open(const StoreOptions& options, std::unique_ptr<Store>* out);

  const std::string& dir() const { return options_.dir; }
  // Tells this store from any other (derived from its random hash key), so
  // a record of "changes since snapshot N" is never applied to another
  // store's snapshot N.
  uint64_t tag() const { return Checksum64(secret_, sizeof secret_); }
  // The keyed hash this store gives a page of `page_size` bytes, to compare
  // a page read elsewhere (the live database) with SnapshotImage::StoredHash.
  PageHash HashOfPage(const uint8_t* data, uint32_t page_size) const { return HashPage(secret_, data, page_size); }

  // Drops the store lock while keeping the files already open readable
  // (store files are never changed in place, only replaced or unlinked).
  // Restore reads its snapshot so while it waits for the database's write
  // lock, since no store lock may be held while waiting for a database lock.
  void ReleaseLock() { lock_.reset(); }
  Env* env() const { return options_.env; }

  // Every complete snapshot, oldest first.
  Status List(std::vector<SnapshotInfo>* out);
  // NotFound when the store holds no snapshot.
  Status LatestId(uint64_t* id);
  Status ReadManifest(uint64_t id, Manifest* out);

  // Starts a snapshot of page_count pages of page_size bytes. With `base`
  // (an existing snapshot of the same page size), pages never added are taken
  // from it, and a page added is stored unless the base or this snapshot
  // already has its content: the cost follows the pages added, not the
  // store's size. Without, every page must be added, and each is looked up
  // among all the store holds. Needs an exclusive store.
  Status NewSnapshot(uint32_t page_size, uint32_t page_count, const Manifest* base,
                     std::unique_ptr<SnapshotBuilder>* out);

  // Opens snapshot `id` for reading pages. Needs the store lock held while used.
  Status OpenImage(uint64_t id, std::unique_ptr<SnapshotImage>* out);

  // Re-reads and checks every byte snapshot `id` depends on (all snapshots
  // when id is 0). OK, or Corruption naming each damaged snapshot.
  Status Verify(uint64_t id);

  // Deletes snapshots that are neither among the newest keep_last (< 0: rule
  // unused) nor newer than keep_ms milliseconds (< 0: unused); the newest
  // snapshot is always kept. Then deletes packs no snapshot needs (except
  // the one holding the store's largest id, kept until a larger id exists,
  // so that no id is allocated twice) and rewrites packs that are mostly
  // unneeded, so their space is reclaimed.
  Status Prune(int64_t keep_last, int64_t keep_ms, PruneResult* result);
  // The same, deleting the snapshots that `policy` does not keep as of the
  // Env's clock (store/retention.h: tiers, labels, the newest).
  Status Prune(const RetentionPolicy& policy, PruneResult* result);

  // Takes back snapshot `id`, which must be the one just committed through
  // this Store: removes its manifest. Its pack stays, as an orphan that a
  // later prune removes (a snapshot that stored no page leaves an empty
  // pack), so that the id is never allocated again. Used to take back a
  // 'pre-restore' snapshot when the restore fails.
  Status Discard(uint64_t id);

  // Sum of the sizes of all packs, manifests and bundles.
  Status StoredBytes(uint64_t* bytes);

  // Compaction folds manifests into bundles and merges small packs, so
  // that the store holds a few dozen files however many snapshots it has
  // (store/compaction.cc). It works in rounds, each rewriting at most what
  // StoreOptions::compaction_limits allow; each round is crash-safe at
  // every step, and a crash between rounds leaves a store as good as the
  // last round made it. Snapshot ids and contents never change.
  //
  // Committing a snapshot never compacts: callers run a round once the
  // snapshot is published and its caller no longer waits on it (the
  // automatic snapshots' thread, snapshot_backup() after its snapshot,
  // prune), so a snapshot never waits for a compaction.
  //
  // One round; *did_work: whether it changed anything.
  Status CompactRound(bool* did_work);
  // One round, if snapshots/ and packs/ hold more files than
  // compaction_file_threshold; *more: whether they still do after a round
  // that changed something, so that another round is worth running soon.
  Status CompactIfNeeded(bool* more);
  // Rounds until one finds nothing to do.
  Status Compact();
  // Whether the store in `dir` may need a round (CompactIfNeeded), from a
  // listing made without its lock: whether opening it for one is worth it.
  static bool MayNeedCompaction(Env* env, const std::string& dir, size_t threshold);

 private:
  friend class SnapshotBuilder;
  friend class SnapshotImage;
  explicit Store(const StoreOptions& o) : options_(o) {}
  Status Init();
  Status CheckDirIsOurs();
  Status CreateStoreFile(const std::string& path);
  // Writes STORE in the current format version with secret_.
  Status WriteStoreFile(const std::string& path, int64_t created_ms, const std::string& db_name);
  Status ReadStoreFile(const std::string& path);
  Status RemoveDebris();
  Status ScanIds(std::vector<uint64_t>* manifests, std::vector<uint64_t>* packs);
  Status NextId(uint64_t* id);
  // Before manifest `id` goes: makes sure a file named with `id` stays, so
  // that NextId never returns it again. That is pack `id` if the snapshot
  // stored pages, else an empty pack (of `page_size`) published now.
  Status KeepIdAllocated(uint64_t id, uint32_t page_size);
  // Opens pack `id` (once per Store) with its frame table only; the second
  // form also loads its page hash table, for hash().
  Status GetPack(uint64_t id, const PackReader** out);
  Status GetPackWithHashes(uint64_t id, const PackReader** out);
  void ForgetPack(uint64_t id);
  // Whether the store holds content hashing to `h` at `ref`, for a page of
  // `page_size`. Reads only that hash, until a 64th of the pack's pages
  // have been compared; then the pack's whole index, once.
  bool StoredHashIs(const PageRef& ref, uint32_t page_size, const PageHash& h);
  Status LoadDedupIndex();
  bool FrameIsSound(const PageRef& ref, uint32_t page_size);
  Status WriteManifest(const Manifest& m);
  // Both Prunes: reads every manifest (all must be readable), lets `select`
  // mark which to keep (snapshots newest id first, the Env's time), deletes
  // the others, then the packs and parts of packs no kept snapshot needs.
  using KeepSelector =
      std::function<void(const std::vector<SnapshotInfo>& newest_first, int64_t now_ms, std::vector<bool>* keep)>;
  Status PruneExcept(const KeepSelector& select, PruneResult* result);
  std::string PackPath(uint64_t id) const;
  std::string ManifestPath(uint64_t id) const;

  // Bundles and compaction (store/compaction.cc).
  struct Held;
  struct CompactionPlan;
  std::string BundlePath(uint64_t id) const;
  Status ScanBundleIds(std::vector<uint64_t>* ids);
  Status GetBundle(uint64_t id, BundleReader** out);
  // A snapshot's own manifest file; then, the newest bundle that holds it.
  Status ReadLooseManifest(uint64_t id, Manifest* out, std::string* bytes = nullptr);
  Status ReadBundledManifest(uint64_t id, Manifest* out, std::string* bytes = nullptr);
  // Ids of every snapshot, loose or bundled; bundles that cannot be read
  // are named in *damaged_bundles.
  Status AllSnapshotIds(std::vector<uint64_t>* ids, std::vector<std::string>* damaged_bundles);
  struct Catalog;
  Status LoadLoose(std::vector<Held>* held);
  Status ReadCatalog(const std::vector<Held>& loose, Catalog* cat);
  Status LoadBundle(uint64_t bundle, const Catalog& cat, std::vector<Held>* held);
  static void SortHeld(std::vector<Held>* held);
  Status LoadAll(std::vector<Held>* all, std::set<uint64_t>* bundles_with_copies);
  static void AddBundlePacks(const std::vector<Held>& held, std::map<uint64_t, std::set<uint64_t>>* bundle_packs);
  Status LivePages(const std::vector<Held>& held, const std::vector<uint64_t>& pack_ids,
                   std::map<uint64_t, std::vector<bool>>* live);
  Status CountFiles(size_t* n);
  void PlanFolding(const std::vector<Held>& held, const std::vector<uint64_t>& pack_ids,
                   const std::map<uint64_t, std::set<uint64_t>>& bundle_packs, uint64_t newest, bool relist,
                   CompactionPlan* plan);
  void PlanCopies(const Held& newest, CompactionPlan* plan);
  Status WriteMergedPack(const std::vector<uint64_t>& group, const std::set<std::pair<uint64_t, uint32_t>>& copy_frames,
                         uint32_t page_size, const std::map<uint64_t, std::vector<bool>>& live, const Manifest& newest,
                         uint64_t* new_id, std::map<uint64_t, std::vector<uint32_t>>* remap,
                         std::map<std::pair<uint64_t, uint32_t>, uint32_t>* copied);
  Status ApplyPlan(std::vector<Held>* held, const std::map<uint64_t, std::vector<bool>>& live,
                   const std::set<uint64_t>& bundles_with_copies, const CompactionPlan& plan);

  StoreOptions options_;
  std::unique_ptr<FileLock> lock_;
  uint8_t secret_[kHashSecretSize] = {};
  std::map<uint64_t, std::unique_ptr<PackReader>> packs_;  // opened lazily
  std::map<uint64_t, std::unique_ptr<PackHashPeek>> peeks_;  // for StoredHashIs
  // Content hash -> where the store keeps that content; loaded for backups.
  PageIndex dedup_;
  bool dedup_loaded_ = false;
  std::map<std::pair<uint64_t, uint32_t>, bool> frame_sound_;  // (pack, frame) -> checksum ok
  std::map<uint64_t, std::unique_ptr<BundleReader>> bundles_;  // opened lazily
};

class SnapshotBuilder {
 public:
  ~SnapshotBuilder();
  // Adds page pgno (1-based). Pages may come in any order; a page added twice
  // keeps its last content. The lock-byte page may be skipped (it reads as
  // zeros).
  Status AddPage(uint32_t pgno, const uint8_t* data);
  // When the newest commit in the pages added was made (Unix ms), if the
  // caller knows: at or after it, never before (restoring to a moment
  // trusts that the image holds no later commit). A time after the
  // snapshot's creation is recorded as its creation time.
  void SetCommitTime(int64_t unix_ms) { commit_ms_ = unix_ms; }
  // Publishes the snapshot durably; *id is its id.
  Status Commit(const std::string& label, uint64_t* id);
  uint32_t page_size() const { return page_size_; }
  uint32_t page_count() const { return static_cast<uint32_t>(refs_.size()); }

 private:
  friend class Store;
  SnapshotBuilder() = default;
  Store* store_ = nullptr;
  uint64_t id_ = 0;
  uint32_t page_size_ = 0;
  std::vector<PageRef> refs_;
  std::unique_ptr<PackWriter> pack_;
  std::vector<PageHash> added_hashes_;  // entries this builder put in the store's dedup index
  uint64_t pages_new_ = 0;
  int64_t commit_ms_ = kUnknownCommitTime;
};

// Reads the pages of one snapshot, verifying each against its hash.
class SnapshotImage {
 public:
  const SnapshotInfo& info() const { return manifest_.info; }
  // Copies page pgno into out (page_size bytes).
  Status ReadPage(uint32_t pgno, uint8_t* out);
  // Copies `n` bytes at byte offset `offset` of the database image.
  Status Read(uint64_t offset, size_t n, uint8_t* out);
  // The keyed hash of page pgno's content, from its pack's index (no
  // decompression); the zero page (the lock-byte page) has none: false.
  bool StoredHash(uint32_t pgno, PageHash* out);
  // The snapshot's page map (where each page's content is stored).
  const Manifest& manifest() const { return manifest_; }
  // Bounds the decompressed frames kept for later reads by their bytes too
  // (0: by count only); at least one frame is always kept.
  void SetCacheBytes(size_t bytes) { cache_bytes_limit_ = bytes; }
  // Keeps decoded frames in `cache` (shared with other images, of this
  // store or others; `store_tag` is Store::tag()) instead of a cache of
  // its own. The caller keeps the cache registered while the image reads.
  void UseSharedCache(FrameCache* cache, uint64_t store_tag) {
    shared_cache_ = cache;
    shared_tag_ = store_tag;
  }
  // Pack `id`, one this image refers to (opened by Store::OpenImage), for
  // readers that decode its frames themselves (store/stored_order.h).
  Status GetPack(uint64_t id, const PackReader** out) { return store_->GetPack(id, out); }

 private:
  friend class Store;
  // Points current_ at frame `f` holding `ref` (at least as far as `slot`,
  // its place in the frame), from the shared cache or decoded into it.
  Status LoadSharedFrame(const PackReader* pack, const PageRef& ref, uint32_t f, uint32_t slot);
  struct CachedFrame {
    std::string pages;
    uint64_t last_use = 0;
  };
  Store* store_ = nullptr;
  Manifest manifest_;
  std::map<std::pair<uint64_t, uint32_t>, CachedFrame> cache_;
  size_t cache_capacity_ = 64;
  size_t cache_bytes_limit_ = 0;
  size_t cache_bytes_ = 0;
  // An evicted frame's buffer, decoded into next: once the cache is full,
  // reading a frame allocates nothing and touches no new memory.
  std::string spare_;
  FrameScratch scratch_;
  std::string partial_page_;  // for reads that do not cover a whole page
  // The hashes of the frame StoredHash last looked at: callers go through
  // the pages in order, so one read of the file serves a frame's pages.
  std::vector<PageHash> hash_block_;
  std::pair<uint64_t, uint32_t> hash_block_frame_{0, 0};  // pack 0: none
  uint64_t clock_ = 0;
  FrameCache* shared_cache_ = nullptr;
  uint64_t shared_tag_ = 0;
  FrameCache::Frame current_;  // the shared frame read last, and its key
  FrameKey current_key_;
};

// ISO 8601 UTC with milliseconds, e.g. 2026-11-25T14:34:25.123Z.
std::string FormatTimestamp(int64_t unix_ms);

}  // namespace snapshot
