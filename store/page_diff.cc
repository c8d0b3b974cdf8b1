#include "store/page_diff.h"

#include <algorithm>

#include "store/format.h"

namespace snapshot {

void DifferingPages(SnapshotImage* a, SnapshotImage* b, std::vector<uint32_t>* out) {
  out->clear();
  const uint32_t na = a->info().page_count, nb = b->info().page_count;
  const uint32_t common = a->info().page_size == b->info().page_size ? std::min(na, nb) : 0;
  const uint32_t lock_page = LockBytePage(a->info().page_size);
  for (uint32_t p = 1; p <= common; p++) {
    PageHash ha, hb;
    const bool has_a = a->StoredHash(p, &ha), has_b = b->StoredHash(p, &hb);
    // Neither has a stored hash only for the lock-byte page (zeros on both).
    const bool same = has_a && has_b ? ha == hb : (!has_a && !has_b && p == lock_page);
    if (!same) out->push_back(p);
  }
  for (uint32_t p = common + 1; p <= std::max(na, nb); p++) out->push_back(p);
}

}  // namespace snapshot
