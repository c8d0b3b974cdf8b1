// Replicator over DirObjectStore: no server, and every file-system step of
// the remote's side failing in turn (tests/store/fault_env.h), as the local
// store's crash tests do. A DirObjectStore lays objects out under their keys,
// so the remote directory is itself a store that the store's own reader can
// open and verify.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>

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

// The store's files, as keys (what the remote should hold after a push).
std::vector<std::string> StoreKeys(const std::string& dir) {
  std::vector<std::string> keys = {"STORE"};
  for (const char* sub : {"packs", "snapshots"}) {
    std::vector<std::string> names;
    Env::Default()->GetChildren(dir + "/" + sub, &names);
    std::sort(names.begin(), names.end());
    for (const std::string& n : names) {
      if (n[0] != '.') keys.push_back(std::string(sub) + "/" + n);
    }
  }
  std::sort(keys.begin(), keys.end());
  return keys;
}

std::vector<std::string> RemoteKeys(DirObjectStore& remote) {
  std::vector<snapshot::ObjectInfo> objects;
  EXPECT_TRUE(remote.List("", &objects).ok());
  std::vector<std::string> keys;
  for (const auto& o : objects) {
    if (o.key != "LOCK") keys.push_back(o.key);  // made by opening the copy as a store
  }
  return keys;
}

// After a local prune, a push deletes remotely what the store no longer
// has, manifests before what they name: stopped at any step, the remote's
// listed snapshots are whole, and the next push finishes the job.
TEST(Replicator, APushAfterAPruneDeletesRemotelyWhatTheStoreNoLongerHas) {
  TempDir tmp;
  std::vector<Image> images;
  std::vector<uint64_t> ids;
  {
    auto store = OpenOrDie(Options(tmp / "local"));
    for (uint32_t v = 1; v <= 3; v++) {
      images.push_back(MakeImage(4096, 40, v));
      uint64_t id = 0;
      ASSERT_TRUE(Snap(store.get(), images.back(), "s", &id).ok());
      ids.push_back(id);
    }
  }
  const std::string pushed_root = tmp / "pushed";
  {
    DirObjectStore remote(pushed_root, Env::Default());
    PushResult pushed;
    ASSERT_TRUE(Replicator(Env::Default(), tmp / "local", &remote, "remote").Push(&pushed).ok());
  }
  {
    auto store = OpenOrDie(Options(tmp / "local"));
    snapshot::PruneResult pruned;
    ASSERT_TRUE(store->Prune(1, -1, &pruned).ok());
    ASSERT_EQ(2u, pruned.deleted.size());
  }
  int k = 1;
  for (;; k++) {
    const std::string root = tmp / ("remote" + std::to_string(k));
    ASSERT_EQ(0, std::system(("cp -a '" + pushed_root + "' '" + root + "'").c_str()));
    store_test::FaultEnv faults;
    faults.Arm(k, /*sticky=*/true);
    DirObjectStore failing(root, &faults);
    PushResult pushed;
    Status s = Replicator(Env::Default(), tmp / "local", &failing, root).Push(&pushed);
    faults.Disarm();
    {
      auto copy = OpenOrDie(Options(root, /*exclusive=*/false));
      ASSERT_NE(nullptr, copy);
      Status v = copy->Verify(0);
      EXPECT_TRUE(v.ok()) << "after " << faults.first_fault() << ": " << Describe(v);
    }
    DirObjectStore clean(root, Env::Default());
    if (!faults.fired()) {
      ASSERT_TRUE(s.ok()) << Describe(s);
      EXPECT_LE(2u, pushed.files_deleted) << "the two pruned manifests at least";
      EXPECT_EQ(StoreKeys(tmp / "local"), RemoteKeys(clean));
      auto copy = OpenOrDie(Options(root, /*exclusive=*/false));
      std::vector<snapshot::SnapshotInfo> listed;
      ASSERT_TRUE(copy->List(&listed).ok());
      ASSERT_EQ(1u, listed.size());
      EXPECT_TRUE(ReadsBack(copy.get(), ids.back(), images.back()));
      break;
    }
    EXPECT_FALSE(s.ok()) << faults.first_fault() << " was not reported";
    ASSERT_TRUE(Replicator(Env::Default(), tmp / "local", &clean, root).Push(&pushed).ok());
    EXPECT_EQ(StoreKeys(tmp / "local"), RemoteKeys(clean)) << "after " << faults.first_fault();
  }
  EXPECT_GT(k, 2) << "fewer steps than two deletions make";
}

// A store that lost a file, or that was put back from an older copy, is no
// guide to what the remote may delete: the push says so and deletes nothing.
TEST(Replicator, ADamagedOrOlderStoreDeletesNothingRemotely) {
  TempDir tmp;
  uint64_t id1 = 0, id2 = 0;
  {
    auto store = OpenOrDie(Options(tmp / "local"));
    ASSERT_TRUE(Snap(store.get(), MakeImage(4096, 20, 1), "a", &id1).ok());
  }
  ASSERT_EQ(0, std::system(("cp -a '" + tmp / "local" + "' '" + tmp / "older" + "'").c_str()));
  {
    auto store = OpenOrDie(Options(tmp / "local"));
    ASSERT_TRUE(Snap(store.get(), MakeImage(4096, 20, 2), "b", &id2).ok());
  }
  DirObjectStore remote(tmp / "remote", Env::Default());
  PushResult pushed;
  ASSERT_TRUE(Replicator(Env::Default(), tmp / "local", &remote, "remote").Push(&pushed).ok());
  const std::vector<std::string> before = RemoteKeys(remote);

  Status s = Replicator(Env::Default(), tmp / "older", &remote, "remote").Push(&pushed);
  EXPECT_EQ(Status::Code::kInvalidArgument, s.code()) << Describe(s);
  EXPECT_NE(std::string::npos, s.message().find("older copy")) << s.message();
  EXPECT_EQ(before, RemoteKeys(remote));

  ASSERT_TRUE(Env::Default()->RemoveFile(tmp / "local/packs/" + snapshot::FileNameForId(id2, ".pack")).ok());
  s = Replicator(Env::Default(), tmp / "local", &remote, "remote").Push(&pushed);
  EXPECT_TRUE(s.IsCorruption()) << Describe(s);
  EXPECT_NE(std::string::npos, s.message().find("nothing was deleted remotely")) << s.message();
  EXPECT_EQ(before, RemoteKeys(remote));
}

}  // namespace
