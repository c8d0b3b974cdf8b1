// The page index (store/page_index.h), the hash table a snapshot's new pages
// are looked up in to find those already stored.

#include <map>
#include <random>
#include <utility>
#include <vector>

#include "store/page_index.h"
#include "tests/store/store_test_util.h"

namespace store_test {
namespace {

// The index behaves as a map from hash to reference, through growth, probe
// chains that wrap around the table's end, and equal low halves (a damaged
// or crafted store), checked against std::map.
TEST(StoreDedup, PageIndexAgreesWithAMap) {
  std::mt19937_64 rng(7);
  PageIndex index;
  std::map<std::pair<uint64_t, uint64_t>, std::pair<uint64_t, uint32_t>> model;
  auto check = [&](const PageHash& h) {
    const PageRef* got = index.Find(h);
    auto it = model.find({h.lo, h.hi});
    ASSERT_EQ(got != nullptr, it != model.end());
    if (got != nullptr) {
      EXPECT_EQ(got->pack, it->second.first);
      EXPECT_EQ(got->index, it->second.second);
    }
  };
  std::vector<PageHash> inserted;
  for (uint32_t i = 0; i < 20000; i++) {
    PageHash h;
    // A third share their low half with an earlier hash; some land in the
    // table's last slots, so their probes wrap.
    h.lo = i % 3 == 0 && !inserted.empty() ? inserted[rng() % inserted.size()].lo
                                          : (i % 7 == 0 ? ~uint64_t(0) - (rng() % 4) : rng());
    h.hi = rng() % 1000;  // a small range: some whole hashes come again
    const bool keep = i % 2 == 0;
    const PageRef ref{1 + rng() % 50, i};
    index.Insert(h, ref, keep);
    auto it = model.find({h.lo, h.hi});
    if (it == model.end()) {
      model[{h.lo, h.hi}] = {ref.pack, ref.index};
    } else if (!keep) {
      it->second = {ref.pack, ref.index};
    }
    inserted.push_back(h);
    if (i % 997 == 0) {
      ASSERT_EQ(index.size(), model.size());
    }
  }
  ASSERT_EQ(index.size(), model.size());
  for (const PageHash& h : inserted) check(h);
  for (int i = 0; i < 1000; i++) check(PageHash{rng(), rng()});  // absent
  index.Clear();
  EXPECT_EQ(index.size(), 0u);
  EXPECT_EQ(index.Find(inserted[0]), nullptr);
  index.Insert(inserted[0], PageRef{9, 9});
  ASSERT_NE(index.Find(inserted[0]), nullptr);
  EXPECT_EQ(index.Find(inserted[0])->pack, 9u);
}

// A snapshot whose pack placed its pages out of order renumbers its own
// entries, found by their hashes; entries of other packs stay as they are.
TEST(StoreDedup, RenumberPackMovesOnlyThatPacksEntries) {
  std::mt19937_64 rng(11);
  PageIndex index;
  std::vector<PageHash> others, mine;
  for (uint32_t i = 0; i < 5000; i++) {
    others.push_back(PageHash{rng(), rng()});
    index.Insert(others.back(), PageRef{1 + i % 7, i});
  }
  constexpr uint64_t kPack = 99;
  for (uint32_t i = 0; i < 6; i++) {
    mine.push_back(PageHash{rng(), rng()});
    index.Insert(mine.back(), PageRef{kPack, i});
  }
  index.RenumberPack(kPack, {5, 4, 3, 0, 1, 2}, mine);
  const std::vector<uint32_t> want = {5, 4, 3, 0, 1, 2};
  for (uint32_t i = 0; i < mine.size(); i++) {
    const PageRef* r = index.Find(mine[i]);
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->pack, kPack);
    EXPECT_EQ(r->index, want[i]) << "slot " << i;
  }
  for (uint32_t i = 0; i < others.size(); i++) {
    const PageRef* r = index.Find(others[i]);
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->pack, 1 + i % 7);
    EXPECT_EQ(r->index, i);
  }
  PageIndex empty;
  empty.RenumberPack(kPack, {0}, mine);  // nothing to renumber: no effect, no crash
  EXPECT_EQ(empty.size(), 0u);
}

}  // namespace
}  // namespace store_test
