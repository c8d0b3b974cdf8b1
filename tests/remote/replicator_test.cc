// Replicator over DirObjectStore: no server, and every file-system step of
// the remote's side failing in turn (tests/store/fault_env.h), as the local
// store's crash tests do. A DirObjectStore lays objects out under their keys,
// so the remote directory is itself a store that the store's own reader can
// open and verify.
#include <gtest/gtest.h>

#include "remote/dir_object_store.h"
#include "remote/replicator.h"
#include "tests/store/fault_env.h"
#include "tests/store/store_test_util.h"

namespace {

using snapshot::DirObjectStore;
using snapshot::Env;
using snapshot::FetchSnapshot;
using snapshot::PushResult;
using snapshot::Replicator;
using snapshot::SnapshotSpec;
using snapshot::Status;
using snapshot::Store;
using store_test::Describe;
using store_test::Image;
using store_test::MakeImage;
using store_test::OpenOrDie;
using store_test::Options;
using store_test::ReadsBack;
using store_test::Snap;
using store_test::TempDir;

// A push that stops at any step (the process dying there: every later step
// fails too) leaves a remote whose listed snapshots are all whole, and the
// next push completes it.
TEST(Replicator, APushStoppedAtAnyStepLeavesOnlyWholeSnapshotsRemotely) {
  TempDir tmp;
  const Image first = MakeImage(4096, 60, 1), second = MakeImage(4096, 60, 2);
  uint64_t id1 = 0, id2 = 0;
  {
    auto store = OpenOrDie(Options(tmp / "local"));
    ASSERT_TRUE(Snap(store.get(), first, "a", &id1).ok());
    ASSERT_TRUE(Snap(store.get(), second, "b", &id2).ok());
  }
  int k = 1;
  for (;; k++) {
    const std::string root = tmp / ("remote" + std::to_string(k));
    store_test::FaultEnv faults;
    faults.Arm(k, /*sticky=*/true);
    DirObjectStore failing(root, &faults);
    PushResult pushed;
    Status s = Replicator(Env::Default(), tmp / "local", &failing, root).Push(&pushed);
    faults.Disarm();
    if (Env::Default()->FileExists(root + "/STORE")) {
      auto copy = OpenOrDie(Options(root, /*exclusive=*/false));
      ASSERT_NE(nullptr, copy);
      Status v = copy->Verify(0);
      EXPECT_TRUE(v.ok()) << "after " << faults.first_fault() << ": " << Describe(v);
    }
    if (!faults.fired()) {
      ASSERT_TRUE(s.ok()) << Describe(s);
      EXPECT_EQ(5u, pushed.files_uploaded) << "STORE, two packs, two manifests";
      break;
    }
    EXPECT_FALSE(s.ok()) << faults.first_fault() << " was not reported";

    DirObjectStore clean(root, Env::Default());
    ASSERT_TRUE(Replicator(Env::Default(), tmp / "local", &clean, root).Push(&pushed).ok());
    auto copy = OpenOrDie(Options(root, /*exclusive=*/false));
    ASSERT_NE(nullptr, copy);
    EXPECT_TRUE(ReadsBack(copy.get(), id1, first)) << "after " << faults.first_fault();
    EXPECT_TRUE(ReadsBack(copy.get(), id2, second)) << "after " << faults.first_fault();
  }
  EXPECT_GT(k, 10) << "fewer steps than five uploads make";
}

// A fetch takes only the packs the chosen snapshot names, and fails, leaving
// no directory, when one of them is missing.
TEST(Replicator, FetchTakesOnlyTheSnapshotsPacks) {
  TempDir tmp;
  const Image first = MakeImage(4096, 30, 1), second = MakeImage(4096, 30, 2);
  uint64_t id1 = 0, id2 = 0;
  {
    auto store = OpenOrDie(Options(tmp / "local"));
    ASSERT_TRUE(Snap(store.get(), first, "a", &id1).ok());
    ASSERT_TRUE(Snap(store.get(), second, "b", &id2).ok());
  }
  DirObjectStore remote(tmp / "remote", Env::Default());
  PushResult pushed;
  ASSERT_TRUE(Replicator(Env::Default(), tmp / "local", &remote, "remote").Push(&pushed).ok());

  uint64_t id = 0;
  ASSERT_TRUE(FetchSnapshot(Env::Default(), &remote, "remote", tmp / "cache", SnapshotSpec::Id(id1), &id, nullptr).ok());
  EXPECT_EQ(id1, id);
  std::vector<std::string> packs;
  ASSERT_TRUE(Env::Default()->GetChildren(tmp / "cache/packs", &packs).ok());
  packs.erase(std::remove_if(packs.begin(), packs.end(), [](const std::string& n) { return n[0] == '.'; }), packs.end());
  EXPECT_EQ(std::vector<std::string>{snapshot::FileNameForId(id1, ".pack")}, packs);
  {
    auto cache = OpenOrDie(Options(tmp / "cache", /*exclusive=*/false));
    EXPECT_TRUE(ReadsBack(cache.get(), id1, first));
  }
  snapshot::RemoveFetchedStore(Env::Default(), tmp / "cache");
  EXPECT_FALSE(Env::Default()->FileExists(tmp / "cache"));

  ASSERT_TRUE(remote.Delete("packs/" + snapshot::FileNameForId(id2, ".pack")).ok());
  Status s = FetchSnapshot(Env::Default(), &remote, "remote", tmp / "cache", SnapshotSpec::Latest(), &id, nullptr);
  EXPECT_TRUE(s.IsCorruption()) << Describe(s);
  EXPECT_NE(std::string::npos, s.message().find("lacks packs/")) << s.message();
  EXPECT_FALSE(Env::Default()->FileExists(tmp / "cache")) << "a failed fetch leaves no directory";
}

}  // namespace
