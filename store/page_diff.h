// Which pages differ between two snapshots of one store, from their page
// maps and stored content hashes alone: no page is decompressed. The
// manifests give each page's place in a pack, and each pack's index the
// keyed hash of its pages' content (store/hash.h), so equal hashes mean
// equal content, wherever each copy is kept.
//
//   std::vector<uint32_t> pages;
//   DifferingPages(image_a.get(), image_b.get(), &pages);   // ascending
#pragma once

#include <cstdint>
#include <vector>

#include "store/status.h"
#include "store/store.h"

namespace snapshot {

// The page numbers (ascending) whose content differs between `a` and `b`,
// including every page that only one of them has. Snapshots of different
// page sizes share no page: all pages differ. A page whose stored hash
// cannot be had (a damaged pack index) counts as differing, so that reading
// it reports the damage.
void DifferingPages(SnapshotImage* a, SnapshotImage* b, std::vector<uint32_t>* out);

}  // namespace snapshot
