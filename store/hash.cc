#define XXH_INLINE_ALL
#include <xxhash.h>

#include "store/hash.h"

#include <new>

namespace snapshot {

PageHash HashPage(const uint8_t* secret, const void* data, size_t n) {
  XXH128_hash_t h = XXH3_128bits_withSecret(data, n, secret, kHashSecretSize);
  return PageHash{h.low64, h.high64};
}

uint64_t Checksum64(const void* data, size_t n) { return XXH3_64bits(data, n); }

Checksum64Stream::Checksum64Stream() : state_(XXH3_createState()) {
  if (state_ == nullptr) throw std::bad_alloc();
  XXH3_64bits_reset(static_cast<XXH3_state_t*>(state_));
}
Checksum64Stream::~Checksum64Stream() { XXH3_freeState(static_cast<XXH3_state_t*>(state_)); }
void Checksum64Stream::Update(const void* data, size_t n) {
  XXH3_64bits_update(static_cast<XXH3_state_t*>(state_), data, n);
}
uint64_t Checksum64Stream::Digest() const { return XXH3_64bits_digest(static_cast<const XXH3_state_t*>(state_)); }

}  // namespace snapshot
