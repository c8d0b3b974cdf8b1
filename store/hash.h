// The two hashes of the store, both XXH3 (libxxhash, header-only):
//
//  - PageHash: 128-bit, keyed with a random secret kept in the store's STORE
//    file. It names page content for deduplication and is re-checked on every
//    page read back. The key means that somebody who can put data into the
//    database, but cannot read the store, cannot craft two pages that collide.
//  - Checksum64: unkeyed 64-bit, guards every other stored byte (headers,
//    indexes, compressed frames, manifests) against damage.
#pragma once

#include <cstddef>
#include <cstdint>

namespace snapshot {

constexpr size_t kHashSecretSize = 192;  // >= XXH3_SECRET_SIZE_MIN

struct PageHash {
  uint64_t lo = 0;
  uint64_t hi = 0;
  bool operator==(const PageHash& o) const { return lo == o.lo && hi == o.hi; }
  bool operator!=(const PageHash& o) const { return !(*this == o); }
};

PageHash HashPage(const uint8_t* secret, const void* data, size_t n);
uint64_t Checksum64(const void* data, size_t n);

// Checksum64 of bytes fed in pieces: equal to Checksum64 of their
// concatenation, without holding them all at once.
class Checksum64Stream {
 public:
  Checksum64Stream();
  ~Checksum64Stream();
  Checksum64Stream(const Checksum64Stream&) = delete;
  Checksum64Stream& operator=(const Checksum64Stream&) = delete;
  void Update(const void* data, size_t n);
  uint64_t Digest() const;

 private:
  void* state_;  // XXH3_state_t, kept out of this header
};

}  // namespace snapshot
