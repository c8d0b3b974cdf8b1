// SnapshotReader and pins (store/snapshot_reader.h, store/pin.h): a reader
// keeps its snapshot readable and listed while backups and prunes run, and
// holds no store lock while it reads.
#include "store/pin.h"
#include "store/snapshot_reader.h"
#include "tests/store/store_test_util.h"

namespace store_test {
namespace {

using snapshot::FileLock;
using snapshot::SnapshotReader;
using snapshot::SnapshotReaderOptions;

TEST(StorePin, PruneKeepsAPinnedSnapshotAndSaysSo) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  const Image v1 = MakeImage(4096, 20, 1), v2 = MakeImage(4096, 20, 2);
  uint64_t id1, id2;
  {
    auto store = OpenOrDie(Options(dir));
    ASSERT_OK(Snap(store.get(), v1, "a", &id1));
    ASSERT_OK(Snap(store.get(), v2, "b", &id2));
  }
  std::unique_ptr<SnapshotReader> reader;
  ASSERT_OK(SnapshotReader::Open(ReaderOptions(dir, id1), &reader));
  {
    // The reader holds no store lock: an exclusive open succeeds at once.
    StoreOptions o = Options(dir);
    o.lock_timeout_ms = 0;
    auto store = OpenOrDie(o);
    ASSERT_NE(nullptr, store);
    PruneResult r;
    ASSERT_OK(store->Prune(1, -1, &r));
    EXPECT_TRUE(r.deleted.empty());
    EXPECT_EQ(std::vector<uint64_t>{id1}, r.pinned);
    EXPECT_EQ((std::vector<uint64_t>{id1, id2}), ListIds(store.get()));
  }
  EXPECT_TRUE(ReaderReadsBack(reader.get(), v1));
  reader.reset();
  auto store = OpenOrDie(Options(dir));
  PruneResult r;
  ASSERT_OK(store->Prune(1, -1, &r));
  EXPECT_EQ(std::vector<uint64_t>{id1}, r.deleted);
  EXPECT_TRUE(r.pinned.empty());
}

TEST(StorePin, ReaderSurvivesItsPackBeingCompactedAway) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  Image v1 = MakeImage(4096, 40, 1), v2 = v1;
  std::vector<uint32_t> changed;
  for (uint32_t p = 1; p <= 36; p++) {
    v2.pages[p - 1] = TextPage(4096, p, 2);
    changed.push_back(p);
  }
  uint64_t id1, id2;
  {
    auto store = OpenOrDie(Options(dir));
    ASSERT_OK(Snap(store.get(), v1, "a", &id1));
    Manifest base;
    ASSERT_OK(store->ReadManifest(id1, &base));
    ASSERT_OK(Snap(store.get(), v2, "b", &id2, &base, &changed));
  }
  // Snapshot 2 still needs 4 of pack 1's 40 pages.
  std::unique_ptr<SnapshotReader> reader;
  ASSERT_OK(SnapshotReader::Open(ReaderOptions(dir, id2), &reader));
  {
    auto store = OpenOrDie(Options(dir));
    PruneResult r;
    ASSERT_OK(store->Prune(1, -1, &r));  // deletes 1, rewrites pack 1
    EXPECT_EQ(std::vector<uint64_t>{id1}, r.deleted);
  }
  EXPECT_FALSE(fs::exists(dir + "/packs/" + snapshot::FileNameForId(id1, snapshot::kPackSuffix)));
  EXPECT_TRUE(ReaderReadsBack(reader.get(), v2));
}

TEST(StorePin, LatestAndTheErrorsOfOpen) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  std::unique_ptr<SnapshotReader> reader;
  EXPECT_CODE(kNotFound, SnapshotReader::Open(ReaderOptions(dir, 0), &reader));
  const Image v1 = MakeImage(4096, 5, 1), v2 = MakeImage(4096, 7, 2);
  uint64_t id1, id2;
  {
    auto store = OpenOrDie(Options(dir));
    ASSERT_OK(Snap(store.get(), v1, "a", &id1));
    ASSERT_OK(Snap(store.get(), v2, "b", &id2));
  }
  ASSERT_OK(SnapshotReader::Open(ReaderOptions(dir, 0), &reader));
  EXPECT_EQ(id2, reader->info().id);
  EXPECT_TRUE(ReaderReadsBack(reader.get(), v2));
  EXPECT_CODE(kNotFound, SnapshotReader::Open(ReaderOptions(dir, 99), &reader));
  SnapshotReaderOptions other = ReaderOptions(dir, id1);
  other.db_name = "other.db";
  const Status s = SnapshotReader::Open(other, &reader);
  EXPECT_CODE(kInvalidArgument, s);
  EXPECT_NE(std::string::npos, s.message().find("belongs to database 'app.db'")) << s.message();
}

TEST(StorePin, ADamagedFrameIsAnErrorNamingSnapshotAndPage) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  const Image v1 = MakeImage(4096, 600, 1);  // three frames of 256 pages
  uint64_t id1;
  {
    auto store = OpenOrDie(Options(dir));
    ASSERT_OK(Snap(store.get(), v1, "a", &id1));
  }
  std::unique_ptr<SnapshotReader> reader;
  ASSERT_OK(SnapshotReader::Open(ReaderOptions(dir, id1), &reader));
  // Damage the middle of the pack in place, under the open reader.
  const std::string pack = dir + "/packs/" + snapshot::FileNameForId(id1, snapshot::kPackSuffix);
  std::fstream f(pack, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(std::streamoff(fs::file_size(pack) / 2));
  f.write("\xde\xad\xbe\xef", 4);
  f.close();
  std::string buf(4096, '\0');
  bool failed = false;
  for (uint32_t p = 1; p <= 600; p++) {
    Status s = reader->ReadPage(p, reinterpret_cast<uint8_t*>(&buf[0]));
    if (s.ok()) {
      EXPECT_EQ(v1.pages[p - 1], buf) << "page " << p << " read wrong data";
      continue;
    }
    failed = true;
    EXPECT_TRUE(s.IsCorruption()) << Describe(s);
    EXPECT_NE(std::string::npos, s.message().find("snapshot " + std::to_string(id1) + ", page " + std::to_string(p)))
        << s.message();
  }
  EXPECT_TRUE(failed);
}

TEST(StorePin, APinIsSeenByAnyDescriptorAndGoesWithItsOwner) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  { auto store = OpenOrDie(Options(dir)); }
  Env* env = Env::Default();
  bool pinned = true;
  ASSERT_OK(snapshot::IsSnapshotPinned(env, dir, 7, &pinned));
  EXPECT_FALSE(pinned);
  std::unique_ptr<FileLock> pin;
  ASSERT_OK(snapshot::PinSnapshot(env, dir, 7, &pin));
  ASSERT_OK(snapshot::IsSnapshotPinned(env, dir, 7, &pinned));
  EXPECT_TRUE(pinned);
  ASSERT_OK(snapshot::IsSnapshotPinned(env, dir, 8, &pinned));
  EXPECT_FALSE(pinned);
  {
    // The store's own flock on the same file, taken and dropped, leaves it.
    auto store = OpenOrDie(Options(dir));
  }
  ASSERT_OK(snapshot::IsSnapshotPinned(env, dir, 7, &pinned));
  EXPECT_TRUE(pinned);
  pin.reset();
  ASSERT_OK(snapshot::IsSnapshotPinned(env, dir, 7, &pinned));
  EXPECT_FALSE(pinned);
}

}  // namespace
}  // namespace store_test
