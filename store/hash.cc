#define XXH_INLINE_ALL
#include <xxhash.h>

#include "store/hash.h"

namespace snapshot {

PageHash HashPage(const uint8_t* secret, const void* data, size_t n) {
  XXH128_hash_t h = XXH3_128bits_withSecret(data, n, secret, kHashSecretSize);
  return PageHash{h.low64, h.high64};
}

uint64_t Checksum64(const void* data, size_t n) { return XXH3_64bits(data, n); }

}  // namespace snapshot
