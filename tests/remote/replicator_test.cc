// Replicator over DirObjectStore: no server, and every file-system step of
// the remote's side failing in turn (tests/store/fault_env.h), as the local
// store's crash tests do. A DirObjectStore lays objects out under their keys,
// so the remote directory is itself a store that the store's own reader can
// open and verify.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <set>
#include <string>
#include <vector>

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

namespace {

// An ObjectStore over a DirObjectStore that runs `hook` before its first
// upload of a pack, and checks after every change it makes that the remote,
// opened as a store, verifies whole: no manifest names a missing object.
class CheckedRemote : public snapshot::ObjectStore {
 public:
  explicit CheckedRemote(const std::string& root) : root_(root), inner_(root, Env::Default()) {}
  std::function<void()> hook;
  int changes = 0;
  std::string first_broken;  // what the remote looked like when it first did not verify

  Status Put(const std::string& key, const std::string& path) override {
    BeforePut(key);
    Status s = inner_.Put(key, path);
    Check("after putting " + key);
    return s;
  }
  Status PutFrom(const std::string& key, snapshot::RandomAccessFile& source) override {
    BeforePut(key);
    Status s = inner_.PutFrom(key, source);
    Check("after putting " + key);
    return s;
  }
  Status Get(const std::string& key, const std::string& path, unsigned mode) override {
    return inner_.Get(key, path, mode);
  }
  Status Head(const std::string& key, snapshot::ObjectInfo* info) override { return inner_.Head(key, info); }
  Status List(const std::string& prefix, std::vector<snapshot::ObjectInfo>* objects) override {
    Status s = inner_.List(prefix, objects);
    objects->erase(std::remove_if(objects->begin(), objects->end(),
                                  [](const snapshot::ObjectInfo& o) { return o.key == "LOCK"; }),
                   objects->end());  // made by opening the copy as a store
    return s;
  }
  Status Delete(const std::string& key) override {
    Status s = inner_.Delete(key);
    Check("after deleting " + key);
    return s;
  }

 private:
  void BeforePut(const std::string& key) {
    if (hook && key.compare(0, 6, "packs/") == 0) {
      auto h = std::move(hook);
      hook = nullptr;
      h();
    }
  }
  void Check(const std::string& when) {
    changes++;
    if (!first_broken.empty() || !Env::Default()->FileExists(root_ + "/STORE")) return;
    auto copy = OpenOrDie(Options(root_, /*exclusive=*/false));
    Status v = copy ? copy->Verify(0) : Status::IOError("cannot open");
    if (!v.ok()) first_broken = when + ": " + Describe(v);
  }
  std::string root_;
  DirObjectStore inner_;
};

}  // namespace

// The push holds the store's lock only while it lists: a backup (the
// exclusive lock) gets it at once while the files go up.
TEST(Replicator, APushDoesNotHoldTheStoreWhileItUploads) {
  TempDir tmp;
  uint64_t id = 0;
  {
    auto store = OpenOrDie(Options(tmp / "local"));
    ASSERT_TRUE(Snap(store.get(), MakeImage(4096, 60, 1), "a", &id).ok());
  }
  CheckedRemote remote(tmp / "remote");
  bool got_lock = false;
  remote.hook = [&] {
    snapshot::StoreOptions o = Options(tmp / "local");
    o.lock_timeout_ms = 0;
    std::unique_ptr<Store> writer;
    got_lock = Store::Open(o, &writer).ok();
  };
  PushResult pushed;
  ASSERT_TRUE(Replicator(Env::Default(), tmp / "local", &remote, "remote").Push(&pushed).ok());
  EXPECT_TRUE(got_lock) << "a writer waited for the upload";
}

// A compaction merges the packs the push listed, and rewrites or folds the
// manifests that named them, while the push uploads: the merged-away packs
// are dropped, a manifest that now names the new pack is not sent before
// it, another round sends the new state, and at no step does the remote
// hold a manifest naming a missing object.
TEST(Replicator, PacksMergedAwayMidPushNeverLeaveARemoteManifestNamingAMissingObject) {
  TempDir tmp;
  std::vector<Image> images;
  std::vector<uint64_t> ids;
  {
    auto store = OpenOrDie(Options(tmp / "local"));
    for (uint32_t v = 1; v <= 6; v++) {
      images.push_back(MakeImage(4096, 40, v));
      uint64_t id = 0;
      ASSERT_TRUE(Snap(store.get(), images.back(), "s", &id).ok());
      ids.push_back(id);
      if (v == 3) {  // the remote already holds the first three, as a previous push left them
        CheckedRemote first(tmp / "remote");
        PushResult pushed;
        store.reset();
        ASSERT_TRUE(Replicator(Env::Default(), tmp / "local", &first, "remote").Push(&pushed).ok());
        store = OpenOrDie(Options(tmp / "local"));
      }
    }
  }
  const std::set<uint64_t> packs_before = store_test::PackIdsOnDisk(tmp / "local");
  CheckedRemote remote(tmp / "remote");
  remote.hook = [&] {
    auto store = OpenOrDie(Options(tmp / "local"));
    ASSERT_TRUE(store->Compact().ok());
  };
  PushResult pushed;
  Status s = Replicator(Env::Default(), tmp / "local", &remote, "remote").Push(&pushed);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_NE(packs_before, store_test::PackIdsOnDisk(tmp / "local")) << "the compaction merged no pack";
  EXPECT_LE(2, pushed.rounds) << "the push did not notice the store changed";
  EXPECT_EQ("", remote.first_broken);
  DirObjectStore listed(tmp / "remote", Env::Default());
  EXPECT_EQ(StoreKeys(tmp / "local"), RemoteKeys(listed));
  auto copy = OpenOrDie(Options(tmp / "remote", /*exclusive=*/false));
  for (size_t i = 0; i < ids.size(); i++) EXPECT_TRUE(ReadsBack(copy.get(), ids[i], images[i])) << ids[i];
}

// A push or a fetch stopped by its cancel callback at any point answers
// Interrupted and leaves only whole snapshots remotely and no fetched
// directory locally; the next push completes.
TEST(Replicator, APushOrFetchStoppedByItsCancelLeavesNothingPartial) {
  TempDir tmp;
  const Image first = MakeImage(4096, 60, 1), second = MakeImage(4096, 60, 2);
  uint64_t id1 = 0, id2 = 0;
  {
    auto store = OpenOrDie(Options(tmp / "local"));
    ASSERT_TRUE(Snap(store.get(), first, "a", &id1).ok());
    ASSERT_TRUE(Snap(store.get(), second, "b", &id2).ok());
  }
  int stopped = 0;
  for (int n = 1; n < 1000; n++) {
    CheckedRemote remote(tmp / "remote");
    int polls = 0;
    remote.SetCancel([&] { return ++polls >= n; });
    PushResult pushed;
    Status s = Replicator(Env::Default(), tmp / "local", &remote, "remote").Push(&pushed);
    EXPECT_EQ("", remote.first_broken);
    if (s.ok()) break;
    ASSERT_EQ(Status::Code::kInterrupted, s.code()) << Describe(s);
    stopped++;
  }
  EXPECT_LT(3, stopped) << "the cancel was polled too rarely";
  DirObjectStore remote(tmp / "remote", Env::Default());
  for (int n = 1; n < 1000; n++) {
    int polls = 0;
    remote.SetCancel([&] { return ++polls >= n; });
    uint64_t id = 0;
    Status s = FetchSnapshot(Env::Default(), &remote, "remote", tmp / "cache", SnapshotSpec::Latest(), &id, nullptr);
    if (s.ok()) break;
    ASSERT_EQ(Status::Code::kInterrupted, s.code()) << Describe(s);
    EXPECT_FALSE(Env::Default()->FileExists(tmp / "cache")) << "a stopped fetch leaves no directory";
  }
  auto cache = OpenOrDie(Options(tmp / "cache", /*exclusive=*/false));
  EXPECT_TRUE(ReadsBack(cache.get(), id2, second));
}
