// FrameCache: decompressed pack frames shared by every reader in the
// process, so that several connections attaching snapshots of one store
// (a web server's threads, a connection opened per request) decode each
// frame once instead of once per connection.
//
//   FrameCache* cache = FrameCache::Shared();
//   auto hold = cache->Register(64 << 20);     // while this reader lives
//   FrameKey k{store_tag, pack_id, f, pack->frames()[f].checksum};
//   FrameCache::Frame pages = cache->Lookup(k);
//   if (!pages) {
//     std::shared_ptr<std::string> buf = cache->TakeBuffer(frame_bytes);
//     if (pack->ReadFrame(f, buf.get(), &scratch).ok()) pages = cache->Insert(k, std::move(buf));
//   }
//
// An entry may hold only the first pages of its frame (PackReader::
// ReadFramePrefix: a point query decodes as far as its page); the caller
// checks that what Lookup returns reaches the page it wants, and inserts
// the longer decode when it does not, which replaces the shorter one.
//
// A key never changes meaning: packs are immutable and their ids are never
// allocated twice in a store (docs/FORMAT.md §8). The key also carries the
// frame's checksum from the pack's checked index, so that even two copies of
// one store directory that went on separately (and so both wrote a pack N)
// never serve each other's pages. Only frames that passed every check
// (checksum, size, every page's hash) are inserted, so a damaged frame is
// read, and refused, again on every access.
//
// Bounded in bytes (the buffers' capacity: a prefix keeps its frame-sized
// buffer), least recently used first out; at least one frame is kept. The
// bound is the largest that any registered reader asked for; when the last
// registration goes, the cache empties and gives its memory back.
// Thread-safe. Independent of SQLite.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <tuple>

namespace snapshot {

struct FrameKey {
  uint64_t store_tag = 0;  // Store::tag()
  uint64_t pack = 0;
  uint32_t frame = 0;
  uint64_t checksum = 0;  // FrameEntry::checksum
  bool operator<(const FrameKey& o) const {
    return std::tie(store_tag, pack, frame, checksum) < std::tie(o.store_tag, o.pack, o.frame, o.checksum);
  }
};

class FrameCache {
 public:
  using Frame = std::shared_ptr<const std::string>;

  // The process's cache, which attached snapshots share.
  static FrameCache* Shared();

  FrameCache() = default;
  FrameCache(const FrameCache&) = delete;
  FrameCache& operator=(const FrameCache&) = delete;

  // A reader's claim on the cache: its bound is the largest of the live
  // registrations' bytes.
  class Registration {
   public:
    ~Registration();

   private:
    friend class FrameCache;
    Registration(FrameCache* cache, std::multiset<size_t>::iterator it) : cache_(cache), it_(it) {}
    FrameCache* cache_;
    std::multiset<size_t>::iterator it_;
  };
  std::unique_ptr<Registration> Register(size_t bytes);

  // The frame's pages, or null. A hit makes it the most recently used.
  Frame Lookup(const FrameKey& key);
  // Adds a frame (or a prefix of one) that passed every check, evicting the
  // least recently used beyond the bound; returns what the cache now holds
  // for `key`: the longer of `pages` and what it held already (another
  // thread may have inserted first).
  Frame Insert(const FrameKey& key, std::shared_ptr<std::string> pages);
  // A buffer to decode a frame of `bytes` into: an evicted frame's, when
  // nobody reads it any more and it is no more than twice that size (reusing
  // it touches no new memory, and the bound counts a buffer's capacity),
  // else a new one.
  std::shared_ptr<std::string> TakeBuffer(size_t bytes);

  size_t bytes() const;
  size_t frames() const;
  size_t capacity() const;

 private:
  struct Entry {
    std::shared_ptr<std::string> pages;
    std::list<FrameKey>::iterator lru;  // position in lru_
  };
  void EvictLocked(size_t incoming);
  size_t CapacityLocked() const { return bounds_.empty() ? 0 : *bounds_.rbegin(); }

  mutable std::mutex mu_;
  std::multiset<size_t> bounds_;  // the registrations' bytes
  std::map<FrameKey, Entry> entries_;
  std::list<FrameKey> lru_;  // most recently used first
  size_t bytes_ = 0;
  std::shared_ptr<std::string> spare_;
};

}  // namespace snapshot
