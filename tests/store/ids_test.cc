// Snapshot ids (store/store.h): a writer that takes its snapshot back (as a
// failed restore does with its pre-restore snapshot) never frees the
// snapshot's id, so an old copy of a file put back into the store (from a
// copy of the directory, say) is a copy of that same file, never one that
// passes for a later snapshot.

#include <string>

#include "tests/store/fault_env.h"
#include "tests/store/store_test_util.h"

namespace store_test {
namespace {

// The pages of `base` with pages [first, last] at `version`.
Image Changed(const Image& base, uint32_t first, uint32_t last, uint32_t version) {
  Image img = base;
  for (uint32_t p = first; p <= last; p++) img.pages[p - 1] = TextPage(base.page_size, p, version);
  return img;
}

TEST(StoreIds, TakenBackSnapshotsIdIsNeverAllocatedAgain) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  const Image a = MakeImage(4096, 40, 1), b = Changed(a, 1, 20, 2), c = Changed(a, 1, 20, 3);
  auto store = OpenOrDie(Options(dir));
  ASSERT_NE(store, nullptr);
  uint64_t ia = 0, ib = 0, ic = 0;
  ASSERT_OK(Snap(store.get(), a, "a", &ia));
  ASSERT_OK(Snap(store.get(), b, "pre-restore", &ib));
  const std::string old_pack = ReadBytes(PackFile(dir, ib));
  ASSERT_OK(store->Discard(ib));
  EXPECT_EQ(std::vector<uint64_t>{ia}, ListIds(store.get()));
  EXPECT_TRUE(fs::exists(PackFile(dir, ib))) << "the pack holding the largest id was deleted";
  ASSERT_OK(Snap(store.get(), c, "c", &ic));
  EXPECT_GT(ic, ib) << "the id of the snapshot taken back was allocated again";
  store.reset();

  // The taken-back snapshot's pack, copied before the discard, is put back.
  WriteBytes(PackFile(dir, ib), old_pack);
  auto reader = OpenOrDie(Options(dir, false));
  ASSERT_NE(reader, nullptr);
  EXPECT_EQ((std::vector<uint64_t>{ia, ic}), ListIds(reader.get()));
  EXPECT_OK(reader->Verify(0));
  EXPECT_TRUE(ReadsBack(reader.get(), ia, a));
  EXPECT_TRUE(ReadsBack(reader.get(), ic, c));
}

// The same when publishing a manifest fails after it was in place, for a
// snapshot that stored no page: an empty pack keeps its id.
TEST(StoreIds, FailedCommitWithoutPackKeepsItsId) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  const Image a = MakeImage(4096, 20, 1);
  FaultEnv env;
  auto store = OpenOrDie(Options(dir, true, &env));
  ASSERT_NE(store, nullptr);
  uint64_t ia = 0, ib = 0, ic = 0;
  ASSERT_OK(Snap(store.get(), a, "a", &ia));
  env.ArmMatch("fsync dir " + dir + "/snapshots");
  EXPECT_FALSE(Snap(store.get(), a, "b", &ib).ok());
  ASSERT_TRUE(env.fired());
  env.Disarm();
  EXPECT_EQ(std::vector<uint64_t>{ia}, ListIds(store.get()));
  EXPECT_TRUE(fs::exists(PackFile(dir, ia + 1))) << "nothing keeps the id of the manifest taken back";
  ASSERT_OK(Snap(store.get(), a, "c", &ic));
  EXPECT_GT(ic, ia + 1);
  EXPECT_OK(store->Verify(0));
}

// A snapshot that stored no page has no pack to keep its id: taking it back
// leaves an empty pack in its place, which a later prune removes.
TEST(StoreIds, TakenBackSnapshotWithoutPackKeepsItsId) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  const Image a = MakeImage(4096, 40, 1), c = Changed(a, 5, 9, 3);
  auto store = OpenOrDie(Options(dir));
  ASSERT_NE(store, nullptr);
  uint64_t ia = 0, ib = 0, ic = 0;
  ASSERT_OK(Snap(store.get(), a, "a", &ia));
  ASSERT_OK(Snap(store.get(), a, "pre-restore", &ib));
  ASSERT_FALSE(fs::exists(PackFile(dir, ib))) << "a snapshot of unchanged pages stored some";
  const std::string old_manifest = ReadBytes(ManifestFile(dir, ib));
  ASSERT_OK(store->Discard(ib));
  EXPECT_EQ(std::vector<uint64_t>{ia}, ListIds(store.get()));
  EXPECT_TRUE(fs::exists(PackFile(dir, ib)));
  ASSERT_OK(Snap(store.get(), c, "c", &ic));
  EXPECT_GT(ic, ib) << "the id of the snapshot taken back was allocated again";
  EXPECT_OK(store->Verify(0));

  // Its manifest put back is that snapshot again, whole: not snapshot c.
  WriteBytes(ManifestFile(dir, ib), old_manifest);
  EXPECT_EQ((std::vector<uint64_t>{ia, ib, ic}), ListIds(store.get()));
  EXPECT_TRUE(ReadsBack(store.get(), ib, a));
  EXPECT_TRUE(ReadsBack(store.get(), ic, c));

  // The empty pack is an orphan like any other: gone at the next prune,
  // now that a larger id exists.
  PruneResult pr;
  ASSERT_OK(store->Prune(100, -1, &pr));
  EXPECT_FALSE(fs::exists(PackFile(dir, ib)));
  EXPECT_EQ(PacksReferenced(store.get()), PackIdsOnDisk(dir));
  EXPECT_TRUE(ReadsBack(store.get(), ic, c));
}

}  // namespace
}  // namespace store_test
