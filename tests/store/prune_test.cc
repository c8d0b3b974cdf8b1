// Pruning (Store::Prune): it keeps exactly what the rules say, deletes packs
// no snapshot refers to, and rewrites packs that are mostly dead.

#include <set>
#include <string>
#include <vector>

#include "tests/store/store_test_util.h"

namespace store_test {
namespace {

class StorePrune : public ::testing::Test {
 protected:
  // Five snapshots of unrelated content (each its own pack), one a second
  // apart, at t = 1000 .. 5000 s.
  void SetUp() override {
    dir_ = tmp_ / "s";
    StoreOptions o = Options(dir_, true, &clock_);
    store_ = OpenOrDie(o);
    ASSERT_NE(store_, nullptr);
    for (uint32_t i = 0; i < 5; i++) {
      clock_.now = 1000000 + 1000 * i;
      images_.push_back(MakeImage(4096, 20 + i, 10 + i));
      uint64_t id = 0;
      ASSERT_OK(Snap(store_.get(), images_.back(), "s" + std::to_string(i), &id));
      ids_.push_back(id);
      bytes_[id] = InfoOf(store_.get(), id).bytes_new;
    }
    clock_.now = 1000000 + 10000;  // "now": the newest is 6 s old
  }

  // Prunes and checks that exactly `keep` (indexes into ids_) remain, each
  // whole, and that every byte of the others is reclaimed.
  void PruneAndCheck(int64_t keep_last, int64_t keep_ms, const std::vector<int>& keep) {
    SCOPED_TRACE("keep_last=" + std::to_string(keep_last) + " keep_ms=" + std::to_string(keep_ms));
    const std::vector<uint64_t> before_ids = ListIds(store_.get());
    uint64_t before = 0, after = 0;
    ASSERT_OK(store_->StoredBytes(&before));
    PruneResult pr;
    ASSERT_OK(store_->Prune(keep_last, keep_ms, &pr));
    std::vector<uint64_t> want_ids, want_deleted;
    uint64_t want_reclaimed = 0;
    for (int i : keep) want_ids.push_back(ids_[i]);
    for (uint64_t id : before_ids) {
      if (!std::count(want_ids.begin(), want_ids.end(), id)) {
        want_deleted.push_back(id);
        want_reclaimed += bytes_[id];
      }
    }
    EXPECT_EQ(want_ids, ListIds(store_.get()));
    EXPECT_EQ(want_deleted, pr.deleted);
    EXPECT_EQ(want_reclaimed, pr.bytes_reclaimed);
    ASSERT_OK(store_->StoredBytes(&after));
    EXPECT_EQ(before - want_reclaimed, after);
    for (int i : keep) EXPECT_TRUE(ReadsBack(store_.get(), ids_[i], images_[i]));
    for (uint64_t id : want_deleted) EXPECT_FALSE(fs::exists(PackFile(dir_, id)));
    EXPECT_OK(store_->Verify(0));
  }

  TempDir tmp_;
  std::string dir_;
  ClockEnv clock_;
  std::unique_ptr<Store> store_;
  std::vector<Image> images_;
  std::vector<uint64_t> ids_;
  std::map<uint64_t, uint64_t> bytes_;
};

TEST_F(StorePrune, NeedsARule) {
  PruneResult pr;
  EXPECT_CODE(kInvalidArgument, store_->Prune(-1, -1, &pr));
  EXPECT_EQ(ids_, ListIds(store_.get()));
}

TEST_F(StorePrune, KeepLast) { PruneAndCheck(2, -1, {3, 4}); }
TEST_F(StorePrune, KeepLastMoreThanThereAre) { PruneAndCheck(10, -1, {0, 1, 2, 3, 4}); }
TEST_F(StorePrune, KeepLastZeroStillKeepsNewest) { PruneAndCheck(0, -1, {4}); }
TEST_F(StorePrune, KeepNewerThan) {
  // Ages are 10, 9, 8, 7, 6 s.
  PruneAndCheck(-1, 8500, {2, 3, 4});
}
TEST_F(StorePrune, KeepNewerThanNoneStillKeepsNewest) { PruneAndCheck(-1, 1000, {4}); }
TEST_F(StorePrune, RulesAreAUnion) {
  PruneAndCheck(1, 7500, {3, 4});
  PruneAndCheck(1, 6500, {4});
}
TEST_F(StorePrune, UnionTheOtherWay) { PruneAndCheck(3, 6500, {2, 3, 4}); }

TEST_F(StorePrune, RepeatedPruneIsStable) {
  PruneAndCheck(3, -1, {2, 3, 4});
  PruneAndCheck(3, -1, {2, 3, 4});
  PruneResult pr;
  ASSERT_OK(store_->Prune(3, -1, &pr));
  EXPECT_TRUE(pr.deleted.empty());
  EXPECT_EQ(0u, pr.bytes_reclaimed);
}

// A commit that fails after its pack is in place (or a snapshot taken back)
// leaves a pack no snapshot refers to. A prune removes it (and counts it as
// reclaimed), but only once a larger id exists: the file holding the
// largest id is never deleted, so that the id is never allocated again.
TEST_F(StorePrune, RemovesOrphanedPacksOnceALargerIdExists) {
  const uint64_t orphan = ids_.back() + 1;
  std::unique_ptr<snapshot::PackWriter> w;
  ASSERT_OK(snapshot::PackWriter::Create(Env::Default(), dir_ + "/packs", orphan, 4096, 0600,
                                         snapshot::CompressOptions(), &w));
  for (uint32_t i = 0; i < 70; i++) {
    const std::string page = TextPage(4096, i, 1234);
    ASSERT_OK(w->AddPage(reinterpret_cast<const uint8_t*>(page.data()), PageHash{i, 2}));
  }
  uint64_t n = 0;
  ASSERT_OK(w->Finish(&n));
  EXPECT_EQ(n, FileSize(PackFile(dir_, orphan)));
  PruneResult pr;
  ASSERT_OK(store_->Prune(100, -1, &pr));
  EXPECT_TRUE(pr.deleted.empty());
  EXPECT_EQ(0u, pr.bytes_reclaimed);
  EXPECT_TRUE(fs::exists(PackFile(dir_, orphan))) << "prune deleted the pack holding the largest id";

  const Image next = MakeImage(4096, 10, 99);
  uint64_t id = 0;
  ASSERT_OK(Snap(store_.get(), next, "next", &id));
  EXPECT_GT(id, orphan);
  ASSERT_OK(store_->Prune(100, -1, &pr));
  EXPECT_TRUE(pr.deleted.empty());
  EXPECT_EQ(n, pr.bytes_reclaimed);
  EXPECT_FALSE(fs::exists(PackFile(dir_, orphan)));
  for (size_t i = 0; i < ids_.size(); i++) EXPECT_TRUE(ReadsBack(store_.get(), ids_[i], images_[i]));
  EXPECT_TRUE(ReadsBack(store_.get(), id, next));
  ids_.push_back(id);
  EXPECT_EQ(ids_, ListIds(store_.get()));
}

// Compaction: a pack more than a quarter dead is rewritten with only its live
// pages; one at most a quarter dead is left alone.
class StorePruneCompaction : public StoreInTempDir {};

TEST_F(StorePruneCompaction, RewritesPacksMoreThanAQuarterDead) {
  const uint32_t ps = 4096;
  // Snapshot A: 100 pages in pack A. Snapshot B: 25 of them changed (pack A
  // will be exactly 1/4 dead). Snapshot C: unrelated 100 pages (pack C).
  // Snapshot D: C with 26 pages changed (pack C will be 26% dead).
  Image a = MakeImage(ps, 100, 1), b = a, c = MakeImage(ps, 100, 50), d = c;
  for (uint32_t p = 1; p <= 25; p++) b.pages[p * 4 - 1] = TextPage(ps, p * 4, 2);
  for (uint32_t p = 1; p <= 26; p++) d.pages[p * 3 - 1] = TextPage(ps, p * 3, 51);
  uint64_t ia, ib, ic, id;
  ASSERT_OK(Snap(store.get(), a, "a", &ia));
  ASSERT_OK(Snap(store.get(), b, "b", &ib));
  ASSERT_OK(Snap(store.get(), c, "c", &ic));
  ASSERT_OK(Snap(store.get(), d, "d", &id));
  ASSERT_EQ(26u, InfoOf(store.get(), id).pages_new);
  // Drop A and C by hand-picked rules: keep_last 3 keeps B, C, D; so first
  // delete A only, then C.
  uint64_t before = 0, after = 0;
  ASSERT_OK(store->StoredBytes(&before));
  const uint64_t pack_c_size = FileSize(PackFile(dir, ic));
  PruneResult pr;
  ASSERT_OK(store->Prune(3, -1, &pr));
  EXPECT_EQ(std::vector<uint64_t>{ia}, pr.deleted);
  // Pack A is exactly 1/4 dead: left as it is.
  EXPECT_TRUE(fs::exists(PackFile(dir, ia)));
  EXPECT_TRUE(ReadsBack(store.get(), ib, b));

  ASSERT_OK(store->Prune(1, -1, &pr));
  EXPECT_EQ((std::vector<uint64_t>{ib, ic}), pr.deleted);
  EXPECT_FALSE(fs::exists(PackFile(dir, ia)));  // wholly dead: removed
  EXPECT_FALSE(fs::exists(PackFile(dir, ic)));  // 26% dead: rewritten
  EXPECT_EQ(std::vector<uint64_t>{id}, ListIds(store.get()));
  EXPECT_TRUE(ReadsBack(store.get(), id, d));
  EXPECT_OK(store->Verify(0));
  const std::set<uint64_t> packs = PackIdsOnDisk(dir);
  EXPECT_EQ(PacksReferenced(store.get()), packs);
  EXPECT_EQ(2u, packs.size());  // pack D and the compacted copy of pack C
  ASSERT_OK(store->StoredBytes(&after));
  EXPECT_LT(after, before);
  EXPECT_GT(pr.bytes_reclaimed, 0u);
  uint64_t compacted = 0;
  for (uint64_t p : packs)
    if (p != id) compacted = p;
  EXPECT_GT(compacted, id);
  EXPECT_LT(FileSize(PackFile(dir, compacted)), pack_c_size * 80 / 100);
  EXPECT_EQ(74u, PagesInPack(store.get(), id, compacted));

  // A fresh reader, and dedup against the compacted pack.
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_TRUE(ReadsBack(store.get(), id, d));
  uint64_t ie = 0;
  ASSERT_OK(Snap(store.get(), d, "e", &ie));
  EXPECT_EQ(0u, InfoOf(store.get(), ie).pages_new);
  EXPECT_TRUE(ReadsBack(store.get(), ie, d));
  EXPECT_OK(store->Verify(0));
}

// A snapshot this build cannot read (written by a newer version, or a read
// that failed) is not deleted by prune; neither may the packs it needs be.
TEST_F(StorePruneCompaction, NeverDeletesPacksOfSnapshotsItCannotRead) {
  Image a = MakeImage(4096, 40, 1), b = MakeImage(4096, 40, 2);
  uint64_t ia, ib;
  ASSERT_OK(Snap(store.get(), a, "a", &ia));
  ASSERT_OK(Snap(store.get(), b, "b", &ib));
  const std::string path = ManifestFile(dir, ib);
  const std::string v1 = ReadBytes(path);
  std::string v2 = v1;
  PutU32(&v2, 8, snapshot::kFormatVersion + 1);
  FixTrailingChecksum(&v2);
  WriteBytes(path, v2);
  ASSERT_NO_FATAL_FAILURE(Reopen());
  PruneResult pr;
  Status ps = store->Prune(10, -1, &pr);  // may refuse; may not lose snapshot b
  EXPECT_TRUE(ps.ok() || ps.IsCorruption() || ps.code() == Status::Code::kNotSupported) << Describe(ps);
  EXPECT_TRUE(pr.deleted.empty());
  EXPECT_TRUE(fs::exists(path));
  EXPECT_TRUE(fs::exists(PackFile(dir, ib))) << "prune deleted the pack of snapshot " << ib
                                             << ", which it could not read";
  // The newer version reading it finds it whole.
  WriteBytes(path, v1);
  ASSERT_NO_FATAL_FAILURE(Reopen(false));
  EXPECT_OK(store->Verify(ib));
  EXPECT_TRUE(ReadsBack(store.get(), ib, b));
  EXPECT_TRUE(ReadsBack(store.get(), ia, a));
}

}  // namespace
}  // namespace store_test
