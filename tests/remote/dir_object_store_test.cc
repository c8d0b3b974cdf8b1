// DirObjectStore: objects in a local directory, every step through an Env,
// so the store's FaultEnv can fail each of them. Needs no server.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "remote/dir_object_store.h"
#include "tests/store/fault_env.h"
#include "tests/test_util.h"

namespace {

using snapshot::DirObjectStore;
using snapshot::Env;
using snapshot::ObjectInfo;
using snapshot::Status;
using snapshot_test::ReadFile;
using snapshot_test::TempDir;

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary).write(data.data(), static_cast<std::streamsize>(data.size()));
}

std::vector<std::string> Keys(DirObjectStore& objects, const std::string& prefix = "") {
  std::vector<ObjectInfo> listed;
  Status s = objects.List(prefix, &listed);
  EXPECT_TRUE(s.ok()) << s.message();
  std::vector<std::string> keys;
  for (const ObjectInfo& o : listed) keys.push_back(o.key);
  return keys;
}

TEST(DirObjectStore, PutGetListDeleteRoundTrip) {
  TempDir dir;
  DirObjectStore objects(dir / "remote", Env::Default());
  EXPECT_TRUE(Keys(objects).empty());
  const std::string pack(3 << 20, 'p');
  WriteFile(dir / "pack", pack);
  WriteFile(dir / "manifest", "m");
  ASSERT_TRUE(objects.Put("packs/000001.pack", dir / "pack").ok());
  ASSERT_TRUE(objects.Put("snapshots/000001.snap", dir / "manifest").ok());
  EXPECT_EQ((std::vector<std::string>{"packs/000001.pack", "snapshots/000001.snap"}), Keys(objects));
  EXPECT_EQ(std::vector<std::string>{"snapshots/000001.snap"}, Keys(objects, "snap"));
  ObjectInfo info;
  ASSERT_TRUE(objects.Head("packs/000001.pack", &info).ok());
  EXPECT_EQ(pack.size(), info.size);
  ASSERT_TRUE(objects.Get("packs/000001.pack", dir / "out", 0600).ok());
  EXPECT_TRUE(ReadFile(dir / "out") == pack);
  ASSERT_TRUE(objects.Delete("packs/000001.pack").ok());
  EXPECT_TRUE(objects.Head("packs/000001.pack", &info).IsNotFound());
  EXPECT_TRUE(objects.Get("packs/000001.pack", dir / "out2", 0600).IsNotFound());
  EXPECT_TRUE(objects.Delete("packs/000001.pack").ok());
  for (const char* bad : {"", "/abs", "a//b", "../up", "a/./b", ".uploads/x"}) {
    EXPECT_EQ(Status::Code::kInvalidArgument, objects.Put(bad, dir / "manifest").code()) << bad;
  }
}

// A crash at each step of an upload (every later step fails too, as if the
// process had died there) leaves the old object or the new one, whole,
// and nothing else listed.
TEST(DirObjectStore, CrashAtEveryStepOfAPutLeavesAWholeObject) {
  TempDir dir;
  const std::string old_data(100000, 'o'), new_data(250000, 'n');
  WriteFile(dir / "old", old_data);
  WriteFile(dir / "new", new_data);
  int k = 1;
  for (;; k++) {
    const std::string root = dir / ("remote" + std::to_string(k));
    DirObjectStore clean(root, Env::Default());
    ASSERT_TRUE(clean.Put("packs/a", dir / "old").ok());

    store_test::FaultEnv faults;
    faults.Arm(k, /*sticky=*/true);
    Status s = DirObjectStore(root, &faults).Put("packs/a", dir / "new");
    faults.Disarm();
    EXPECT_EQ(std::vector<std::string>{"packs/a"}, Keys(clean)) << "after " << faults.first_fault();
    ASSERT_TRUE(clean.Get("packs/a", dir / "out", 0600).ok());
    const std::string got = ReadFile(dir / "out");
    EXPECT_TRUE(got == old_data || got == new_data) << "a partial object after " << faults.first_fault();
    if (!faults.fired()) {
      ASSERT_TRUE(s.ok()) << s.message();
      EXPECT_TRUE(got == new_data);
      break;
    }
    EXPECT_FALSE(s.ok()) << faults.first_fault() << " was not reported";
  }
  EXPECT_GT(k, 4) << "fewer steps than create, append, fsync, close, rename";
}

}  // namespace
