// PageIndex: page content hash -> where the store keeps that content.
//
// The store's deduplication index. A backup that hashes every page inserts
// one entry per page (262,144 for a 1 GiB database) and, opened for the
// next backup, loads one per page of every pack. As a std::unordered_map,
// one heap node per entry, freeing it at the end of a snapshot took enough
// CPU, beside the database's writers, to slow their commits (bench/README.md,
// "The store's page index, one flat table"). Here
// the entries live in one array: open addressing with linear probing, at
// most half full, so freeing is one deallocation and inserting allocates
// only when the table doubles.
//
// The slot is chosen by the hash's low half. Page hashes are keyed with the
// store's secret, so their bits are uniform; a store damaged or crafted to
// hold many equal hashes makes lookups slow, never wrong.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "store/hash.h"
#include "store/manifest.h"

namespace snapshot {

class PageIndex {
 public:
  // The entry for `h`, or nullptr. Valid until the next Insert or Clear.
  const PageRef* Find(const PageHash& h) const {
    if (slots_.empty()) return nullptr;
    for (size_t i = Home(h);; i = (i + 1) & mask()) {
      const Slot& s = slots_[i];
      if (!s.used) return nullptr;
      if (s.hash == h) return &s.ref;
    }
  }

  // Sets the entry for `h` to `ref`; with keep_existing, an entry already
  // there stays as it is.
  void Insert(const PageHash& h, const PageRef& ref, bool keep_existing = false) {
    if ((size_ + 1) * 2 > slots_.size()) Grow();
    Slot* s = Probe(h);
    if (s->used) {
      if (!keep_existing) s->ref = ref;
      return;
    }
    *s = Slot{h, ref, true};
    size_++;
  }

  // Forgets every entry and gives the memory back.
  void Clear() {
    std::vector<Slot>().swap(slots_);
    size_ = 0;
  }

  size_t size() const { return size_; }

  // Renumbers the entries of pack `pack` whose hashes are `hashes`: index
  // i becomes new_index[i] (a pack writer that placed pages out of the
  // order they came in). Only those entries are looked at, so the cost
  // follows the pages a snapshot added, not the size of the index.
  void RenumberPack(uint64_t pack, const std::vector<uint32_t>& new_index, const std::vector<PageHash>& hashes) {
    if (slots_.empty()) return;
    for (const PageHash& h : hashes) {
      Slot* s = Probe(h);
      if (s->used && s->ref.pack == pack && s->ref.index < new_index.size()) s->ref.index = new_index[s->ref.index];
    }
  }

 private:
  struct Slot {
    PageHash hash;
    PageRef ref;
    bool used = false;
  };

  size_t mask() const { return slots_.size() - 1; }
  size_t Home(const PageHash& h) const { return static_cast<size_t>(h.lo) & mask(); }

  // The slot holding `h`, or the free slot where it belongs.
  Slot* Probe(const PageHash& h) {
    size_t i = Home(h);
    while (slots_[i].used && slots_[i].hash != h) i = (i + 1) & mask();
    return &slots_[i];
  }

  void Grow() {
    std::vector<Slot> old;
    old.swap(slots_);
    slots_.resize(old.empty() ? 1024 : old.size() * 2);
    for (const Slot& s : old) {
      if (s.used) *Probe(s.hash) = s;
    }
  }

  std::vector<Slot> slots_;  // size: 0 or a power of two
  size_t size_ = 0;
};

}  // namespace snapshot
