// Crash safety of the store: a failure (or a crash, FaultEnv's sticky mode)
// at every step of a snapshot, a prune, and the creation of a store leaves
// every listed snapshot whole, and the next exclusive open recovers.

#include <map>
#include <string>
#include <vector>

#include "tests/store/fault_env.h"
#include "tests/store/store_test_util.h"

namespace store_test {
namespace {

// After a failed or interrupted operation on the store in `dir`: every
// snapshot in `must` is listed, verifies and reads back exactly; any other
// listed snapshot must be in `may` and read back as its content there.
void CheckSurvivors(const std::string& dir, const std::map<uint64_t, Image>& must,
                    const std::map<uint64_t, Image>& may, const std::string& context) {
  SCOPED_TRACE(context);
  auto reader = OpenOrDie(Options(dir, /*exclusive=*/false));
  ASSERT_NE(reader, nullptr);
  const std::vector<uint64_t> ids = ListIds(reader.get());
  for (const auto& [id, img] : must) {
    EXPECT_TRUE(std::count(ids.begin(), ids.end(), id)) << "snapshot " << id << " is no longer listed";
    EXPECT_TRUE(ReadsBack(reader.get(), id, img));
  }
  for (uint64_t id : ids) {
    if (must.count(id)) continue;
    auto it = may.find(id);
    if (it == may.end()) {
      ADD_FAILURE() << "snapshot " << id << " is listed, though the operation that wrote it failed";
      continue;
    }
    EXPECT_TRUE(ReadsBack(reader.get(), id, it->second));
  }
  Status v = reader->Verify(0);
  EXPECT_TRUE(v.ok()) << Describe(v);
}

// Reopening exclusive removes debris; the store then works normally.
void CheckRecovers(const std::string& dir, const Image& next, const std::string& context) {
  SCOPED_TRACE(context);
  auto store = OpenOrDie(Options(dir));
  ASSERT_NE(store, nullptr);
  const std::vector<std::string> debris = FilesUnder(dir, snapshot::kTempSuffix);
  EXPECT_TRUE(debris.empty()) << "left after reopening: " << debris[0];
  uint64_t id = 0;
  ASSERT_OK(Snap(store.get(), next, "after", &id));
  EXPECT_TRUE(ReadsBack(store.get(), id, next));
  // A prune that deletes nothing still removes any pack a failure orphaned.
  PruneResult pr;
  ASSERT_OK(store->Prune(1000, -1, &pr));
  EXPECT_TRUE(pr.deleted.empty());
  EXPECT_EQ(PacksReferenced(store.get()), PackIdsOnDisk(dir));
  EXPECT_TRUE(ReadsBack(store.get(), id, next));
  EXPECT_OK(store->Verify(0));
}

TEST(StoreCrash, SnapshotFailingAtEveryStep) {
  // c adds 2.3 MB of new pages: a pack of several frames.
  const uint32_t ps = 16384;
  Image a = MakeImage(ps, 150, 1);
  Image b = a;
  for (uint32_t p = 1; p <= 20; p++) b.pages[p - 1] = TextPage(ps, p, 2);
  Image c = b;  // 121 changed + 20 added pages, and one page back to its first version
  for (uint32_t p = 30; p <= 150; p++) c.pages[p - 1] = TextPage(ps, p, 3);
  for (uint32_t p = 151; p <= 170; p++) c.pages.push_back(TextPage(ps, p, 3));
  c.pages[4] = a.pages[4];

  TempDir tmp;
  const std::string golden = tmp / "golden";
  uint64_t id_a = 0, id_b = 0;
  {
    auto store = OpenOrDie(Options(golden));
    ASSERT_NE(store, nullptr);
    ASSERT_OK(Snap(store.get(), a, "a", &id_a));
    ASSERT_OK(Snap(store.get(), b, "b", &id_b));
  }
  const std::map<uint64_t, Image> before = {{id_a, a}, {id_b, b}};

  for (bool sticky : {false, true}) {
    int k = 1;
    for (;; k++) {
      ASSERT_LT(k, 500) << "the snapshot never succeeds";
      const std::string context = std::string(sticky ? "crash" : "single failure") + " at op " + std::to_string(k);
      SCOPED_TRACE(context);
      const std::string dir = tmp / ("work-" + std::to_string(sticky) + "-" + std::to_string(k));
      CopyDir(golden, dir);
      FaultEnv env;
      uint64_t id = 0;
      Status s;
      {
        auto store = OpenOrDie(Options(dir, true, &env));
        ASSERT_NE(store, nullptr);
        env.Arm(k, sticky);
        s = Snap(store.get(), c, "c", &id);
        // The store and builder go away with the fault still armed: after a
        // crash, no clean-up happens either.
      }
      env.Disarm();
      if (s.ok()) {
        EXPECT_FALSE(env.fired()) << "the snapshot succeeded although " << env.first_fault() << " failed";
        CheckSurvivors(dir, {{id_a, a}, {id_b, b}, {id, c}}, {}, context);
        break;
      }
      EXPECT_TRUE(env.fired()) << Describe(s);
      EXPECT_NE(std::string::npos, s.message().find("injected fault")) << "the error was not passed on: " << Describe(s);
      // A single failure is reported and leaves no snapshot; after a crash the
      // snapshot may exist, but only whole.
      std::map<uint64_t, Image> may;
      if (sticky) may[id_b + 1] = c;
      CheckSurvivors(dir, before, may, context + " (" + env.first_fault() + ")");
      CheckRecovers(dir, c, context);
      fs::remove_all(dir);
      if (HasFatalFailure()) return;
    }
    // Sanity: every step of the write was exercised (pack: create, header,
    // frames, index, footer, fsync, close, rename, dir fsync; then the same
    // for the manifest).
    EXPECT_GE(k, 17) << (sticky ? "crash" : "single failure");
  }
}

// The last step of a commit, the fsync of the snapshots directory, fails
// after the manifest has been renamed into place. Whatever Commit then
// reports, a snapshot that is listed must be whole: restoring "the latest"
// picks it.
TEST(StoreCrash, ManifestDirectorySyncFailureLeavesNoBrokenSnapshot) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  Image a = MakeImage(4096, 50, 1), b = a;
  for (uint32_t p = 1; p <= 10; p++) b.pages[p - 1] = TextPage(4096, p, 2);
  FaultEnv env;
  uint64_t ia = 0, ib = 0;
  Status s;
  {
    auto store = OpenOrDie(Options(dir, true, &env));
    ASSERT_NE(store, nullptr);
    ASSERT_OK(Snap(store.get(), a, "a", &ia));
    env.ArmMatch("fsync dir " + dir + "/snapshots");
    s = Snap(store.get(), b, "b", &ib);
    ASSERT_TRUE(env.fired());
    env.Disarm();
  }
  auto reader = OpenOrDie(Options(dir, false));
  ASSERT_NE(reader, nullptr);
  const std::vector<uint64_t> ids = ListIds(reader.get());
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(std::vector<uint64_t>{ia}, ids) << "the failed snapshot is listed";
  for (uint64_t id : ids) EXPECT_TRUE(ReadsBack(reader.get(), id, id == ia ? a : b));
  Status v = reader->Verify(0);
  EXPECT_TRUE(v.ok()) << Describe(v);
  uint64_t latest = 0;
  ASSERT_OK(reader->LatestId(&latest));
  EXPECT_TRUE(ReadsBack(reader.get(), latest, latest == ia ? a : b)) << "the latest snapshot cannot be restored";
  // The manifest was in place for a while, so its id is never allocated
  // again: no copy of it made meanwhile can pass for a later snapshot.
  reader.reset();
  auto store = OpenOrDie(Options(dir));
  ASSERT_NE(store, nullptr);
  uint64_t ic = 0;
  ASSERT_OK(Snap(store.get(), b, "c", &ic));
  EXPECT_GT(ic, ia + 1);
}

TEST(StoreCrash, PruneFailingAtEveryStep) {
  const uint32_t ps = 4096;
  // s1: 128 pages; s2: pages 1..64 changed; s3: 1..32 changed again;
  // s4: 100..128 changed. Pruning to the last two deletes s1 and s2 and
  // leaves packs 1 and 2 half dead, so both are compacted.
  Image s1 = MakeImage(ps, 128, 1), s2 = s1, s3, s4;
  for (uint32_t p = 1; p <= 64; p++) s2.pages[p - 1] = TextPage(ps, p, 2);
  s3 = s2;
  for (uint32_t p = 1; p <= 32; p++) s3.pages[p - 1] = TextPage(ps, p, 3);
  s4 = s3;
  for (uint32_t p = 100; p <= 128; p++) s4.pages[p - 1] = TextPage(ps, p, 4);
  Image next = s4;
  next.pages[0] = TextPage(ps, 1, 5);

  TempDir tmp;
  const std::string golden = tmp / "golden";
  uint64_t ids[4];
  uint64_t golden_bytes = 0;
  {
    auto store = OpenOrDie(Options(golden));
    ASSERT_NE(store, nullptr);
    const Image* imgs[4] = {&s1, &s2, &s3, &s4};
    for (int i = 0; i < 4; i++) ASSERT_OK(Snap(store.get(), *imgs[i], "s", &ids[i]));
    ASSERT_OK(store->StoredBytes(&golden_bytes));
  }
  const std::map<uint64_t, Image> kept = {{ids[2], s3}, {ids[3], s4}};
  const std::map<uint64_t, Image> doomed = {{ids[0], s1}, {ids[1], s2}};

  for (bool sticky : {false, true}) {
    int k = 1;
    for (;; k++) {
      ASSERT_LT(k, 500) << "the prune never succeeds";
      const std::string context = std::string(sticky ? "crash" : "single failure") + " at op " + std::to_string(k);
      SCOPED_TRACE(context);
      const std::string dir = tmp / ("work-" + std::to_string(sticky) + "-" + std::to_string(k));
      CopyDir(golden, dir);
      FaultEnv env;
      PruneResult pr;
      Status s;
      {
        auto store = OpenOrDie(Options(dir, true, &env));
        ASSERT_NE(store, nullptr);
        env.Arm(k, sticky);
        s = store->Prune(2, -1, &pr);
      }
      env.Disarm();
      if (s.ok()) {
        EXPECT_FALSE(env.fired()) << "the prune succeeded although " << env.first_fault() << " failed";
        EXPECT_EQ((std::vector<uint64_t>{ids[0], ids[1]}), pr.deleted);
        CheckSurvivors(dir, kept, {}, context);
        auto reader = OpenOrDie(Options(dir, false));
        ASSERT_NE(reader, nullptr);
        EXPECT_FALSE(PackIdsOnDisk(dir).count(ids[0])) << "pack 1 was not compacted";
        EXPECT_FALSE(PackIdsOnDisk(dir).count(ids[1])) << "pack 2 was not compacted";
        EXPECT_EQ(PacksReferenced(reader.get()), PackIdsOnDisk(dir));
        break;
      }
      EXPECT_TRUE(env.fired()) << Describe(s);
      EXPECT_NE(std::string::npos, s.message().find("injected fault")) << Describe(s);
      // Kept snapshots are whole; deleted ones may or may not be gone yet.
      CheckSurvivors(dir, kept, doomed, context + " (" + env.first_fault() + ")");
      {
        // Pruning again finishes the job.
        auto store = OpenOrDie(Options(dir));
        ASSERT_NE(store, nullptr);
        EXPECT_TRUE(FilesUnder(dir, snapshot::kTempSuffix).empty());
        ASSERT_OK(store->Prune(2, -1, &pr));
        EXPECT_EQ((std::vector<uint64_t>{ids[2], ids[3]}), ListIds(store.get()));
        EXPECT_EQ(PacksReferenced(store.get()), PackIdsOnDisk(dir));
        uint64_t bytes = 0;
        ASSERT_OK(store->StoredBytes(&bytes));
        EXPECT_LT(bytes, golden_bytes);
      }
      CheckSurvivors(dir, kept, {}, context + " then pruned again");
      CheckRecovers(dir, next, context);
      fs::remove_all(dir);
      if (HasFatalFailure()) return;
    }
    EXPECT_GE(k, 30) << (sticky ? "crash" : "single failure");
  }
}

TEST(StoreCrash, CreatingStoreFailingAtEveryStep) {
  TempDir tmp;
  Image img = MakeImage(4096, 10, 1);
  for (bool sticky : {false, true}) {
    for (int k = 1;; k++) {
      ASSERT_LT(k, 100);
      SCOPED_TRACE(std::string(sticky ? "crash" : "single failure") + " at op " + std::to_string(k));
      const std::string dir = tmp / ("s-" + std::to_string(sticky) + "-" + std::to_string(k));
      FaultEnv env;
      env.Arm(k, sticky);
      std::unique_ptr<Store> store;
      Status s = Store::Open(Options(dir, true, &env), &store);
      store.reset();
      env.Disarm();
      if (s.ok()) {
        EXPECT_FALSE(env.fired()) << env.first_fault();
        break;
      }
      EXPECT_TRUE(env.fired()) << Describe(s);
      // Whatever was left, the next open makes a working store of it.
      store = OpenOrDie(Options(dir));
      ASSERT_NE(store, nullptr);
      uint64_t id = 0;
      ASSERT_OK(Snap(store.get(), img, "", &id));
      EXPECT_TRUE(ReadsBack(store.get(), id, img));
      EXPECT_TRUE(FilesUnder(dir, snapshot::kTempSuffix).empty());
      store.reset();
      auto reader = OpenOrDie(Options(dir, false));
      ASSERT_NE(reader, nullptr);
      EXPECT_TRUE(ReadsBack(reader.get(), id, img));
    }
  }
}

}  // namespace
}  // namespace store_test
