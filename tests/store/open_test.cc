// Opening a store (Store::Open): a store belongs to one database, refuses a
// newer format version, and is created only where asked.

#include <string>

#include "tests/store/store_test_util.h"

namespace store_test {
namespace {

TEST(StoreIdentity, BelongsToOneDatabase) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  { ASSERT_NE(OpenOrDie(Options(dir)), nullptr); }
  for (bool exclusive : {false, true}) {
    StoreOptions o = Options(dir, exclusive);
    o.db_name = "other.db";
    std::unique_ptr<Store> store;
    Status s = Store::Open(o, &store);
    EXPECT_EQ(Status::Code::kInvalidArgument, s.code()) << Describe(s);
    EXPECT_NE(std::string::npos, s.message().find("app.db")) << s.message();
    EXPECT_NE(std::string::npos, s.message().find("other.db")) << s.message();
  }
  EXPECT_NE(OpenOrDie(Options(dir, false)), nullptr);
}

TEST(StoreIdentity, NewerStoreFormatIsNotSupported) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  {
    auto store = OpenOrDie(Options(dir));
    ASSERT_NE(store, nullptr);
    uint64_t id;
    ASSERT_OK(Snap(store.get(), MakeImage(4096, 3, 1), "", &id));
  }
  std::string data = ReadBytes(dir + "/STORE");
  ASSERT_EQ(snapshot::kFormatVersion, GetU32(data, 8));
  PutU32(&data, 8, snapshot::kFormatVersion + 1);
  FixTrailingChecksum(&data);
  WriteBytes(dir + "/STORE", data);
  for (bool exclusive : {false, true}) {
    std::unique_ptr<Store> store;
    Status s = Store::Open(Options(dir, exclusive), &store);
    EXPECT_EQ(Status::Code::kNotSupported, s.code()) << Describe(s);
    EXPECT_EQ(data, ReadBytes(dir + "/STORE"));
  }
}

TEST(StoreIdentity, NewerManifestFormatIsNotSupported) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  auto store = OpenOrDie(Options(dir));
  ASSERT_NE(store, nullptr);
  Image img = MakeImage(4096, 3, 1);
  uint64_t i1, i2;
  ASSERT_OK(Snap(store.get(), img, "", &i1));
  ASSERT_OK(Snap(store.get(), img, "", &i2));
  std::string data = ReadBytes(ManifestFile(dir, i2));
  ASSERT_EQ(snapshot::kFormatVersion, GetU32(data, 8));
  PutU32(&data, 8, snapshot::kFormatVersion + 1);
  FixTrailingChecksum(&data);
  WriteBytes(ManifestFile(dir, i2), data);
  Manifest m;
  EXPECT_CODE(kNotSupported, store->ReadManifest(i2, &m));
  std::unique_ptr<SnapshotImage> image;
  EXPECT_CODE(kNotSupported, store->OpenImage(i2, &image));
  // Not listed, so never picked as the latest by this build.
  EXPECT_EQ(std::vector<uint64_t>{i1}, ListIds(store.get()));
  uint64_t latest = 0;
  ASSERT_OK(store->LatestId(&latest));
  EXPECT_EQ(i1, latest);
  // New snapshots do not reuse its id.
  uint64_t i3;
  ASSERT_OK(Snap(store.get(), img, "", &i3));
  EXPECT_GT(i3, i2);
  EXPECT_EQ(data, ReadBytes(ManifestFile(dir, i2)));
}

TEST(StoreIdentity, MissingDirectory) {
  TempDir tmp;
  for (bool exclusive : {false, true}) {
    StoreOptions o = Options(tmp / "nope", exclusive);
    o.create_if_missing = false;
    std::unique_ptr<Store> store;
    EXPECT_CODE(kNotFound, Store::Open(o, &store));
    EXPECT_FALSE(fs::exists(tmp / "nope"));
  }
  // A directory with no store in it yet: readers find nothing.
  fs::create_directory(tmp / "empty");
  std::unique_ptr<Store> store;
  EXPECT_CODE(kNotFound, Store::Open(Options(tmp / "empty", false), &store));
  // Parent missing too: create_if_missing creates only the last level.
  StoreOptions o = Options(tmp / "a/b/c");
  EXPECT_FALSE(Store::Open(o, &store).ok());
}

TEST(StoreIdentity, NewStoreOnlyWhereAsked) {
  TempDir tmp;
  // Exclusive, but not asked to create a store: an empty directory stays empty.
  fs::create_directory(tmp / "empty");
  StoreOptions o = Options(tmp / "empty");
  o.create_store = false;
  o.create_if_missing = false;
  std::unique_ptr<Store> store;
  EXPECT_CODE(kNotFound, Store::Open(o, &store));
  EXPECT_TRUE(fs::is_empty(tmp / "empty"));
  // Somebody else's directory is never made into a store, nor cleaned up.
  fs::create_directory(tmp / "theirs");
  WriteBytes(tmp / "theirs/notes.txt.tmp", "mine");
  WriteBytes(tmp / "theirs/x.pack.tmp", "mine too");
  EXPECT_CODE(kInvalidArgument, Store::Open(Options(tmp / "theirs"), &store));
  EXPECT_EQ((std::vector<std::string>{"notes.txt.tmp", "x.pack.tmp"}), FilesUnder(tmp / "theirs"));
}

TEST(StoreIdentity, StoreDirThatIsAFile) {
  TempDir tmp;
  WriteBytes(tmp / "file", "not a directory");
  for (bool exclusive : {false, true}) {
    std::unique_ptr<Store> store;
    EXPECT_CODE(kInvalidArgument, Store::Open(Options(tmp / "file", exclusive), &store));
  }
  EXPECT_EQ("not a directory", ReadBytes(tmp / "file"));
}

TEST(StoreIdentity, DirectoryThatIsNotAStore) {
  TempDir tmp;
  fs::create_directory(tmp / "d");
  WriteBytes(tmp / "d/STORE", "hello, this is some other program's file");
  std::unique_ptr<Store> store;
  Status s = Store::Open(Options(tmp / "d"), &store);
  EXPECT_EQ(Status::Code::kInvalidArgument, s.code()) << Describe(s);
  EXPECT_EQ("hello, this is some other program's file", ReadBytes(tmp / "d/STORE"));
}

}  // namespace
}  // namespace store_test
