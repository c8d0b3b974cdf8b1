// A snapshot round trip through the store (store/store.h): every page reads
// back byte for byte for every page size, labels and timestamps, what the
// builder refuses, unchanged pages stored once (within a snapshot and against
// its base), and the edge shapes: an empty database, the lock-byte page.

#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "tests/store/store_test_util.h"

namespace store_test {
namespace {

class StoreRoundTrip : public ::testing::TestWithParam<uint32_t> {};

TEST_P(StoreRoundTrip, EveryPageReadsBackExactly) {
  const uint32_t page_size = GetParam();
  // About 2.5 MiB: several compression frames whatever the page size.
  const uint32_t n = (5u << 19) / page_size;
  Image img = MakeImage(page_size, n, 1);
  // Partly repeating: some pages are copies of others (e.g. empty leaves).
  for (uint32_t i = 10; i < n; i += 7) img.pages[i] = img.pages[3];
  TempDir tmp;
  const std::string dir = tmp / "db-snapshots";
  auto store = OpenOrDie(Options(dir));
  ASSERT_NE(store, nullptr);

  const int64_t t0 = Env::Default()->NowMillis();
  uint64_t id = 0;
  ASSERT_OK(Snap(store.get(), img, "nightly 2026-01-01", &id));
  const int64_t t1 = Env::Default()->NowMillis();
  EXPECT_GE(id, 1u);
  EXPECT_TRUE(ReadsBack(store.get(), id, img));

  std::vector<SnapshotInfo> infos;
  ASSERT_OK(store->List(&infos));
  ASSERT_EQ(1u, infos.size());
  const SnapshotInfo& info = infos[0];
  EXPECT_EQ(id, info.id);
  EXPECT_EQ("nightly 2026-01-01", info.label);
  EXPECT_EQ(page_size, info.page_size);
  EXPECT_EQ(n, info.page_count);
  EXPECT_EQ(uint64_t(page_size) * n, info.db_bytes());
  EXPECT_EQ(DistinctPages(img), info.pages_new);
  EXPECT_GE(info.created_ms, t0);
  EXPECT_LE(info.created_ms, t1);
  // bytes_new is what this snapshot added: its pack and its manifest.
  EXPECT_GT(info.bytes_new, 0u);
  EXPECT_EQ(FileSize(PackFile(dir, id)) + FileSize(ManifestFile(dir, id)), info.bytes_new);
  // Compressed: this text-like content shrinks well below half.
  EXPECT_LT(info.bytes_new, info.db_bytes() / 2);
  uint64_t stored = 0;
  ASSERT_OK(store->StoredBytes(&stored));
  EXPECT_EQ(info.bytes_new, stored);

  uint64_t latest = 0;
  ASSERT_OK(store->LatestId(&latest));
  EXPECT_EQ(id, latest);
  EXPECT_OK(store->Verify(0));
  EXPECT_OK(store->Verify(id));
  EXPECT_CODE(kNotFound, store->Verify(id + 100));
  Manifest m;
  EXPECT_CODE(kNotFound, store->ReadManifest(id + 100, &m));
  std::unique_ptr<SnapshotImage> none;
  EXPECT_CODE(kNotFound, store->OpenImage(id + 100, &none));

  // Byte-range reads across page boundaries, and past the end (zeros).
  std::string flat;
  for (const auto& p : img.pages) flat += p;
  std::unique_ptr<SnapshotImage> image;
  ASSERT_OK(store->OpenImage(id, &image));
  EXPECT_EQ(info.id, image->info().id);
  std::mt19937 rng(page_size);
  for (int i = 0; i < 50; i++) {
    const uint64_t off = rng() % flat.size();
    const size_t len = 1 + rng() % (3 * page_size);
    std::string got(len, '\x55');
    ASSERT_OK(image->Read(off, len, reinterpret_cast<uint8_t*>(&got[0])));
    std::string want = flat.substr(off, len);
    want.resize(len, '\0');
    ASSERT_EQ(want, got) << "Read(" << off << ", " << len << ")";
  }
  std::string buf(page_size, 'x');
  EXPECT_CODE(kInvalidArgument, image->ReadPage(0, reinterpret_cast<uint8_t*>(&buf[0])));
  EXPECT_CODE(kInvalidArgument, image->ReadPage(n + 1, reinterpret_cast<uint8_t*>(&buf[0])));
  image.reset();

  // It persists: a new, shared (reading) open of the store sees the same.
  store.reset();
  auto reader = OpenOrDie(Options(dir, /*exclusive=*/false));
  ASSERT_NE(reader, nullptr);
  EXPECT_TRUE(ReadsBack(reader.get(), id, img));
  std::vector<SnapshotInfo> again;
  ASSERT_OK(reader->List(&again));
  ASSERT_EQ(1u, again.size());
  EXPECT_EQ(info.created_ms, again[0].created_ms);
  EXPECT_EQ(info.bytes_new, again[0].bytes_new);
  EXPECT_EQ(info.pages_new, again[0].pages_new);
  // A reader may not write.
  std::unique_ptr<SnapshotBuilder> b;
  EXPECT_FALSE(reader->NewSnapshot(page_size, 1, nullptr, &b).ok());
  PruneResult pr;
  EXPECT_FALSE(reader->Prune(1, -1, &pr).ok());
  EXPECT_EQ(std::vector<uint64_t>{id}, ListIds(reader.get()));
}

// A reader whose cache holds one frame decodes each frame into the buffer of
// the one it evicts, whatever their sizes (the last frame is shorter): every
// page must still read back exactly, in any order, and every stored hash
// (read from the pack one frame's worth at a time) must be the page's.
TEST_P(StoreRoundTrip, AOneFrameCacheReadsEveryPageInAnyOrder) {
  const uint32_t page_size = GetParam();
  const uint32_t n = (5u << 19) / page_size;  // 2.5 frames of 1 MiB
  Image img = MakeImage(page_size, n, 1);
  TempDir tmp;
  auto store = OpenOrDie(Options(tmp / "db-snapshots"));
  ASSERT_NE(store, nullptr);
  uint64_t id = 0;
  ASSERT_OK(Snap(store.get(), img, "", &id));
  std::unique_ptr<SnapshotImage> image;
  ASSERT_OK(store->OpenImage(id, &image));
  image->SetCacheBytes(1);  // at least one frame is kept: exactly one
  std::vector<uint32_t> order;
  for (uint32_t p = 1; p <= n; p++) order.push_back(p);
  for (uint32_t p = n; p >= 1; p--) order.push_back(p);
  std::mt19937 rng(page_size);
  for (uint32_t i = 0; i < n; i++) order.push_back(1 + rng() % n);
  std::string buf(page_size, '\0');
  for (uint32_t p : order) {
    ASSERT_OK(image->ReadPage(p, reinterpret_cast<uint8_t*>(&buf[0])));
    ASSERT_EQ(img.pages[p - 1], buf) << "page " << p;
    PageHash stored;
    ASSERT_TRUE(image->StoredHash(p, &stored)) << "page " << p;
    ASSERT_EQ(store->HashOfPage(reinterpret_cast<const uint8_t*>(buf.data()), page_size), stored) << "page " << p;
  }
}

INSTANTIATE_TEST_SUITE_P(StorePageSizes, StoreRoundTrip, ::testing::Values(512u, 4096u, 65536u));

TEST(StoreRoundTrip, TimestampsAreIsoUtcWithMilliseconds) {
  EXPECT_EQ("1970-01-01T00:00:00.000Z", snapshot::FormatTimestamp(0));
  EXPECT_EQ("2026-11-25T14:34:25.123Z", snapshot::FormatTimestamp(1795617265123));
}

TEST(StoreRoundTrip, LabelsAreValidated) {
  TempDir tmp;
  auto store = OpenOrDie(Options(tmp / "s"));
  ASSERT_NE(store, nullptr);
  Image img = MakeImage(4096, 3, 1);
  uint64_t id = 0;
  EXPECT_CODE(kInvalidArgument, Snap(store.get(), img, "bad/label", &id));
  EXPECT_CODE(kInvalidArgument, Snap(store.get(), img, "bad\nlabel", &id));
  EXPECT_CODE(kInvalidArgument, Snap(store.get(), img, std::string(snapshot::kMaxLabelBytes + 1, 'a'), &id));
  EXPECT_TRUE(ListIds(store.get()).empty());
  // Nothing is left behind by the refused snapshots.
  EXPECT_TRUE(FilesUnder(tmp / "s", ".pack").empty()) << FilesUnder(tmp / "s", ".pack")[0];
  EXPECT_TRUE(FilesUnder(tmp / "s", ".tmp").empty());
  ASSERT_OK(Snap(store.get(), img, std::string(snapshot::kMaxLabelBytes, 'a'), &id));
  EXPECT_EQ(std::string(snapshot::kMaxLabelBytes, 'a'), InfoOf(store.get(), id).label);
  ASSERT_OK(Snap(store.get(), img, "", &id));
  EXPECT_EQ("", InfoOf(store.get(), id).label);
}

TEST(StoreRoundTrip, BuilderRejectsBadInput) {
  TempDir tmp;
  auto store = OpenOrDie(Options(tmp / "s"));
  ASSERT_NE(store, nullptr);
  std::unique_ptr<SnapshotBuilder> b;
  for (uint32_t ps : {0u, 256u, 1000u, 4095u, 131072u}) {
    EXPECT_CODE(kInvalidArgument, store->NewSnapshot(ps, 10, nullptr, &b));
  }
  Image img = MakeImage(4096, 10, 1);
  ASSERT_OK(store->NewSnapshot(4096, 10, nullptr, &b));
  EXPECT_CODE(kInvalidArgument, b->AddPage(0, reinterpret_cast<const uint8_t*>(img.pages[0].data())));
  EXPECT_CODE(kInvalidArgument, b->AddPage(11, reinterpret_cast<const uint8_t*>(img.pages[0].data())));
  // Without a base every page must be given.
  for (uint32_t p = 1; p <= 10; p++) {
    if (p != 7) ASSERT_OK(b->AddPage(p, reinterpret_cast<const uint8_t*>(img.pages[p - 1].data())));
  }
  uint64_t id = 0;
  Status s = b->Commit("x", &id);
  EXPECT_EQ(Status::Code::kInvalidArgument, s.code()) << Describe(s);
  EXPECT_NE(std::string::npos, s.message().find("7")) << s.message();
  b.reset();
  EXPECT_TRUE(ListIds(store.get()).empty());
  EXPECT_TRUE(FilesUnder(tmp / "s", ".tmp").empty());
  // The abandoned pages are not used for deduplication later: a snapshot of
  // the same content stores every page and reads back.
  ASSERT_OK(Snap(store.get(), img, "x", &id));
  EXPECT_EQ(10u, InfoOf(store.get(), id).pages_new);
  EXPECT_TRUE(ReadsBack(store.get(), id, img));
  EXPECT_OK(store->Verify(0));
}

TEST(StoreRoundTrip, PageAddedTwiceKeepsLastContent) {
  TempDir tmp;
  auto store = OpenOrDie(Options(tmp / "s"));
  ASSERT_NE(store, nullptr);
  Image img = MakeImage(1024, 20, 1);
  std::unique_ptr<SnapshotBuilder> b;
  ASSERT_OK(store->NewSnapshot(1024, 20, nullptr, &b));
  const std::string first = TextPage(1024, 999, 9);
  ASSERT_OK(b->AddPage(5, reinterpret_cast<const uint8_t*>(first.data())));
  for (uint32_t i = 20; i >= 1; i--) ASSERT_OK(b->AddPage(i, reinterpret_cast<const uint8_t*>(img.pages[i - 1].data())));
  uint64_t id = 0;
  ASSERT_OK(b->Commit("", &id));
  EXPECT_TRUE(ReadsBack(store.get(), id, img));
}

// With a base (a tracked snapshot: only changed pages are added), a page is
// compared with the base's page of the same number, not with an index of the
// whole store, so the cost follows the pages added.
TEST(StoreRoundTrip, SnapshotWithBaseComparesWithTheBasePage) {
  TempDir tmp;
  Image img = MakeImage(4096, 50, 1);
  uint64_t first = 0, second = 0;
  {
    auto store = OpenOrDie(Options(tmp / "s"));
    ASSERT_NE(store, nullptr);
    ASSERT_OK(Snap(store.get(), img, "full", &first));
  }
  auto store = OpenOrDie(Options(tmp / "s"));  // a new opening: no index loaded
  ASSERT_NE(store, nullptr);
  Manifest base;
  ASSERT_OK(store->ReadManifest(first, &base));
  Image next = img;
  next.pages[9] = TextPage(4096, 777, 3);  // page 10 changed
  next.pages[19] = img.pages[29];          // page 20 now holds page 30's content
  std::vector<uint32_t> added = {5, 10, 20};  // page 5 written but unchanged
  ASSERT_OK(Snap(store.get(), next, "incremental", &second, &base, &added));
  EXPECT_EQ(2u, InfoOf(store.get(), second).pages_new) << "page 5 is the base's; pages 10 and 20 are stored";
  EXPECT_TRUE(ReadsBack(store.get(), second, next));
  EXPECT_TRUE(ReadsBack(store.get(), first, img));
  EXPECT_OK(store->Verify(0));
}

// Counts the bytes read from files under packs/.
class PackReadCountingEnv : public EnvWrapper {
 public:
  PackReadCountingEnv() : EnvWrapper(Env::Default()) {}
  Status NewRandomAccessFile(const std::string& p, std::unique_ptr<snapshot::RandomAccessFile>* o) override {
    SNAPSHOT_RETURN_IF_ERROR(target()->NewRandomAccessFile(p, o));
    if (p.find("/packs/") != std::string::npos) o->reset(new Counting(std::move(*o), &bytes));
    return Status::OK();
  }
  std::atomic<uint64_t> bytes{0};

 private:
  struct Counting : snapshot::RandomAccessFile {
    Counting(std::unique_ptr<snapshot::RandomAccessFile> f, std::atomic<uint64_t>* n) : f(std::move(f)), n(n) {}
    Status Read(uint64_t offset, size_t len, void* out) const override {
      *n += len;
      return f->Read(offset, len, out);
    }
    uint64_t Size() const override { return f->Size(); }
    std::unique_ptr<snapshot::RandomAccessFile> f;
    std::atomic<uint64_t>* n;
  };
};

// Comparing the pages a tracked snapshot adds with the base's reads their
// hashes only, not the base pack's whole index: the cost follows the pages
// added, not the database's size. A damaged hash entry makes
// the page be stored again, never kept by mistake.
TEST(StoreRoundTrip, ComparingWithTheBaseReadsOnlyThoseHashes) {
  TempDir tmp;
  Image img = MakeImage(4096, 3000, 1);  // a 48 KB page-hash index
  uint64_t first = 0, second = 0, third = 0;
  {
    auto store = OpenOrDie(Options(tmp / "s"));
    ASSERT_NE(store, nullptr);
    ASSERT_OK(Snap(store.get(), img, "full", &first));
  }
  PackReadCountingEnv env;
  {
    auto store = OpenOrDie(Options(tmp / "s", true, &env));
    ASSERT_NE(store, nullptr);
    Manifest base;
    ASSERT_OK(store->ReadManifest(first, &base));
    std::vector<uint32_t> added = {5, 6, 7};  // written, unchanged
    ASSERT_OK(Snap(store.get(), img, "incremental", &second, &base, &added));
    EXPECT_EQ(0u, InfoOf(store.get(), second).pages_new);
    EXPECT_LT(env.bytes.load(), 1000u) << "read the base pack's whole index to compare three pages";
  }
  // Damage page 6's hash in the pack's index: the page is stored again.
  std::vector<std::string> packs;
  for (const auto& e : fs::directory_iterator(fs::path(tmp / "s") / "packs")) packs.push_back(e.path().string());
  ASSERT_EQ(1u, packs.size());
  {
    auto store = OpenOrDie(Options(tmp / "s"));
    ASSERT_NE(store, nullptr);
    Manifest m;
    ASSERT_OK(store->ReadManifest(first, &m));
    uint64_t pack_pages = 0, index_of_page6 = UINT64_MAX;
    for (const Extent& e : m.extents) {
      if (e.first_pgno <= 6 && 6 < e.first_pgno + e.page_count) index_of_page6 = e.first_index + (6 - e.first_pgno);
      pack_pages = std::max<uint64_t>(pack_pages, uint64_t(e.first_index) + e.page_count);
    }
    ASSERT_NE(UINT64_MAX, index_of_page6);
    std::fstream f(packs[0], std::ios::in | std::ios::out | std::ios::binary);
    const auto size = fs::file_size(packs[0]);
    const uint64_t hash_of_page6 = size - snapshot::kPackFooterSize - (pack_pages - index_of_page6) * 16;
    f.seekg(std::streamoff(hash_of_page6));
    char c = 0;
    f.read(&c, 1);
    c = char(c ^ 0x5a);
    f.seekp(std::streamoff(hash_of_page6));
    f.write(&c, 1);
  }
  auto store = OpenOrDie(Options(tmp / "s"));
  ASSERT_NE(store, nullptr);
  Manifest base;
  ASSERT_OK(store->ReadManifest(first, &base));
  std::vector<uint32_t> added = {5, 6, 7};
  ASSERT_OK(Snap(store.get(), img, "after damage", &third, &base, &added));
  EXPECT_EQ(1u, InfoOf(store.get(), third).pages_new) << "page 6's stored hash no longer matches";
  EXPECT_FALSE(store->Verify(0).ok()) << "the damaged index is still reported";
}

TEST(StoreRoundTrip, StoresOfDifferentPageSizesCoexist) {
  TempDir tmp;
  auto store = OpenOrDie(Options(tmp / "s"));
  ASSERT_NE(store, nullptr);
  Image a = MakeImage(4096, 40, 1), b = MakeImage(1024, 100, 1), c = MakeImage(4096, 40, 1);
  uint64_t ia, ib, ic;
  ASSERT_OK(Snap(store.get(), a, "a", &ia));
  ASSERT_OK(Snap(store.get(), b, "b", &ib));
  // A base of another page size gives nothing: every page is needed.
  Manifest base;
  ASSERT_OK(store->ReadManifest(ib, &base));
  std::vector<uint32_t> some = {1, 2};
  EXPECT_CODE(kInvalidArgument, Snap(store.get(), c, "c", &ic, &base, &some));
  ASSERT_OK(Snap(store.get(), c, "c", &ic, &base));
  EXPECT_EQ(0u, InfoOf(store.get(), ic).pages_new);
  EXPECT_TRUE(ReadsBack(store.get(), ia, a));
  EXPECT_TRUE(ReadsBack(store.get(), ib, b));
  EXPECT_TRUE(ReadsBack(store.get(), ic, c));
  EXPECT_OK(store->Verify(0));
}

TEST(StoreDedup, SecondSnapshotStoresOnlyChangedPages) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  auto store = OpenOrDie(Options(dir));
  ASSERT_NE(store, nullptr);
  const uint32_t n = 500;
  Image v1 = MakeImage(4096, n, 1);
  uint64_t id1 = 0, id2 = 0, id3 = 0;
  ASSERT_OK(Snap(store.get(), v1, "v1", &id1));
  uint64_t stored1 = 0;
  ASSERT_OK(store->StoredBytes(&stored1));

  // 2% of the pages change, scattered.
  Image v2 = v1;
  const std::vector<uint32_t> changed = {1, 3, 4, 100, 101, 102, 250, 333, 499, n};
  ASSERT_EQ(n / 50, changed.size());
  for (uint32_t p : changed) v2.pages[p - 1] = TextPage(4096, p, 2);
  ASSERT_OK(Snap(store.get(), v2, "v2", &id2));
  EXPECT_GT(id2, id1);

  const SnapshotInfo i1 = InfoOf(store.get(), id1), i2 = InfoOf(store.get(), id2);
  EXPECT_EQ(n, i1.pages_new);
  EXPECT_EQ(changed.size(), i2.pages_new);
  EXPECT_EQ(n, i2.page_count);
  // Unchanged pages are references into the first snapshot's pack.
  EXPECT_EQ(changed.size(), PagesInPack(store.get(), id2, id2));
  EXPECT_EQ(n - changed.size(), PagesInPack(store.get(), id2, id1));
  EXPECT_LT(i2.bytes_new * 10, i1.bytes_new);
  EXPECT_EQ(FileSize(PackFile(dir, id2)) + FileSize(ManifestFile(dir, id2)), i2.bytes_new);
  uint64_t stored2 = 0;
  ASSERT_OK(store->StoredBytes(&stored2));
  EXPECT_EQ(stored1 + i2.bytes_new, stored2);

  // Both read back: the older one still has the old pages.
  EXPECT_TRUE(ReadsBack(store.get(), id1, v1));
  EXPECT_TRUE(ReadsBack(store.get(), id2, v2));

  // Identical content adds no page and no pack, only its manifest.
  ASSERT_OK(Snap(store.get(), v2, "v3", &id3));
  const SnapshotInfo i3 = InfoOf(store.get(), id3);
  EXPECT_EQ(0u, i3.pages_new);
  EXPECT_FALSE(fs::exists(PackFile(dir, id3)));
  EXPECT_EQ(FileSize(ManifestFile(dir, id3)), i3.bytes_new);
  EXPECT_TRUE(ReadsBack(store.get(), id3, v2));

  // Pages going back to an older version come from the older pack.
  Image v4 = v2;
  for (uint32_t p : changed) v4.pages[p - 1] = v1.pages[p - 1];
  uint64_t id4 = 0;
  ASSERT_OK(Snap(store.get(), v4, "v4", &id4));
  EXPECT_EQ(0u, InfoOf(store.get(), id4).pages_new);
  EXPECT_TRUE(ReadsBack(store.get(), id4, v1));

  // A fresh Store object (dedup index rebuilt from the packs) dedups too.
  store.reset();
  store = OpenOrDie(Options(dir));
  ASSERT_NE(store, nullptr);
  uint64_t id5 = 0;
  ASSERT_OK(Snap(store.get(), v2, "v5", &id5));
  EXPECT_EQ(0u, InfoOf(store.get(), id5).pages_new);
  EXPECT_TRUE(ReadsBack(store.get(), id5, v2));
  EXPECT_OK(store->Verify(0));
}

TEST(StoreDedup, DuplicatePagesWithinOneSnapshotAreStoredOnce) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  auto store = OpenOrDie(Options(dir));
  ASSERT_NE(store, nullptr);
  Image img;
  img.page_size = 4096;
  std::vector<std::string> distinct;
  for (uint32_t k = 0; k < 7; k++) distinct.push_back(TextPage(4096, 1000 + k, 1));
  for (uint32_t i = 0; i < 300; i++) img.pages.push_back(distinct[(i * i + i / 3) % 7]);
  uint64_t id = 0;
  ASSERT_OK(Snap(store.get(), img, "dups", &id));
  EXPECT_EQ(7u, InfoOf(store.get(), id).pages_new);
  EXPECT_TRUE(ReadsBack(store.get(), id, img));
  EXPECT_LT(FileSize(PackFile(dir, id)), 7u * 4096);
  EXPECT_OK(store->Verify(id));
}

TEST(StoreDedup, BuilderWithBaseNeedsOnlyChangedPages) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  auto store = OpenOrDie(Options(dir));
  ASSERT_NE(store, nullptr);
  const uint32_t n = 300;
  Image v1 = MakeImage(4096, n, 1);
  uint64_t id1 = 0;
  ASSERT_OK(Snap(store.get(), v1, "full", &id1));
  Manifest base;
  ASSERT_OK(store->ReadManifest(id1, &base));
  EXPECT_EQ(id1, base.info.id);
  EXPECT_EQ(n, base.info.page_count);

  // Same size, 2% changed: only those are given.
  Image v2 = v1;
  std::vector<uint32_t> changed = {1, 2, 77, 150, 151, 299};
  for (uint32_t p : changed) v2.pages[p - 1] = TextPage(4096, p, 2);
  uint64_t id2 = 0;
  ASSERT_OK(Snap(store.get(), v2, "incr", &id2, &base, &changed));
  EXPECT_EQ(changed.size(), InfoOf(store.get(), id2).pages_new);
  EXPECT_TRUE(ReadsBack(store.get(), id2, v2));

  // The same content built from all pages is the same snapshot, page for page.
  uint64_t id2b = 0;
  ASSERT_OK(Snap(store.get(), v2, "full again", &id2b));
  EXPECT_EQ(0u, InfoOf(store.get(), id2b).pages_new);
  Manifest m2, m2b;
  ASSERT_OK(store->ReadManifest(id2, &m2));
  ASSERT_OK(store->ReadManifest(id2b, &m2b));
  for (uint32_t p = 1; p <= n; p++) {
    PageRef a, b;
    ASSERT_TRUE(m2.Lookup(p, &a));
    ASSERT_TRUE(m2b.Lookup(p, &b));
    EXPECT_TRUE(a.pack == b.pack && a.index == b.index) << "page " << p;
  }

  // Growing: the new pages must be given; the rest come from the base.
  Manifest base2;
  ASSERT_OK(store->ReadManifest(id2, &base2));
  Image v3 = v2;
  for (uint32_t p = n + 1; p <= n + 25; p++) v3.pages.push_back(TextPage(4096, p, 3));
  std::vector<uint32_t> grown;
  for (uint32_t p = n + 1; p <= n + 25; p++) grown.push_back(p);
  uint64_t id3 = 0;
  std::vector<uint32_t> too_few(grown.begin(), grown.end() - 1);
  EXPECT_CODE(kInvalidArgument, Snap(store.get(), v3, "grown", &id3, &base2, &too_few));
  ASSERT_OK(Snap(store.get(), v3, "grown", &id3, &base2, &grown));
  EXPECT_EQ(25u, InfoOf(store.get(), id3).pages_new);
  EXPECT_TRUE(ReadsBack(store.get(), id3, v3));

  // Shrinking: pages past the new end are dropped.
  Image v4 = v2;
  v4.pages.resize(120);
  std::vector<uint32_t> nothing;
  uint64_t id4 = 0;
  ASSERT_OK(Snap(store.get(), v4, "shrunk", &id4, &base2, &nothing));
  EXPECT_EQ(0u, InfoOf(store.get(), id4).pages_new);
  EXPECT_TRUE(ReadsBack(store.get(), id4, v4));

  EXPECT_TRUE(ReadsBack(store.get(), id1, v1));
  EXPECT_TRUE(ReadsBack(store.get(), id2, v2));
  EXPECT_OK(store->Verify(0));
}

TEST(StoreEdge, EmptySnapshot) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  auto store = OpenOrDie(Options(dir));
  ASSERT_NE(store, nullptr);
  uint64_t none = 0;
  EXPECT_CODE(kNotFound, store->LatestId(&none));
  EXPECT_OK(store->Verify(0));  // nothing to verify
  Image empty;
  empty.page_size = 4096;
  uint64_t id = 0;
  ASSERT_OK(Snap(store.get(), empty, "empty", &id));
  const SnapshotInfo info = InfoOf(store.get(), id);
  EXPECT_EQ(0u, info.page_count);
  EXPECT_EQ(4096u, info.page_size);
  EXPECT_EQ(0u, info.pages_new);
  EXPECT_EQ(FileSize(ManifestFile(dir, id)), info.bytes_new);
  EXPECT_FALSE(fs::exists(PackFile(dir, id)));
  EXPECT_OK(store->Verify(0));
  EXPECT_OK(store->Verify(id));
  uint64_t latest = 0;
  ASSERT_OK(store->LatestId(&latest));
  EXPECT_EQ(id, latest);
  std::unique_ptr<SnapshotImage> image;
  ASSERT_OK(store->OpenImage(id, &image));
  EXPECT_EQ(0u, image->info().page_count);
  std::string buf(4096, 'x');
  EXPECT_CODE(kInvalidArgument, image->ReadPage(1, reinterpret_cast<uint8_t*>(&buf[0])));
  ASSERT_OK(image->Read(0, 100, reinterpret_cast<uint8_t*>(&buf[0])));
  EXPECT_EQ(std::string(100, '\0'), buf.substr(0, 100));
  // An empty base: every page of the next snapshot is new.
  Manifest base;
  ASSERT_OK(store->ReadManifest(id, &base));
  Image img = MakeImage(4096, 5, 1);
  uint64_t id2 = 0;
  ASSERT_OK(Snap(store.get(), img, "", &id2, &base));
  EXPECT_TRUE(ReadsBack(store.get(), id2, img));
}

TEST(StoreEdge, LockBytePageReadsAsZeros) {
  // 65536-byte pages: the page holding byte 2^30 is page 16385.
  const uint32_t ps = 65536, lock_page = 16385, n = 16390;
  Image img;
  img.page_size = ps;
  const std::string common = TextPage(ps, 1, 1), other = TextPage(ps, 2, 1);
  img.pages.assign(n, common);
  for (uint32_t p : {1u, 2u, 16384u, 16386u, 16390u}) img.pages[p - 1] = TextPage(ps, p, 7);
  for (uint32_t p = 100; p < n; p += 1000) img.pages[p - 1] = other;
  img.pages[lock_page - 1].clear();  // not given; must read as zeros

  TempDir tmp;
  auto store = OpenOrDie(Options(tmp / "s"));
  ASSERT_NE(store, nullptr);
  uint64_t id = 0;
  ASSERT_OK(Snap(store.get(), img, "big", &id));
  const SnapshotInfo info = InfoOf(store.get(), id);
  EXPECT_EQ(n, info.page_count);
  EXPECT_EQ(7u, info.pages_new);
  EXPECT_GT(info.db_bytes(), snapshot::kLockByteOffset);
  EXPECT_TRUE(ReadsBack(store.get(), id, img));

  std::unique_ptr<SnapshotImage> image;
  ASSERT_OK(store->OpenImage(id, &image));
  std::string buf(3 * ps, 'x');
  ASSERT_OK(image->Read(snapshot::kLockByteOffset - 10, 3 * ps, reinterpret_cast<uint8_t*>(&buf[0])));
  EXPECT_EQ(img.pages[lock_page - 2].substr(ps - 10), buf.substr(0, 10));
  EXPECT_EQ(std::string(ps, '\0'), buf.substr(10, ps));
  EXPECT_EQ(img.pages[lock_page], buf.substr(10 + ps, ps));
  image.reset();
  EXPECT_OK(store->Verify(id));

  // The lock-byte page is the only one that may be left out.
  std::unique_ptr<SnapshotBuilder> b;
  ASSERT_OK(store->NewSnapshot(ps, 3, nullptr, &b));
  ASSERT_OK(b->AddPage(1, reinterpret_cast<const uint8_t*>(common.data())));
  ASSERT_OK(b->AddPage(3, reinterpret_cast<const uint8_t*>(common.data())));
  uint64_t bad = 0;
  EXPECT_CODE(kInvalidArgument, b->Commit("", &bad));
  b.reset();

  // Incremental on top of it: the zero page is carried over.
  Manifest base;
  ASSERT_OK(store->ReadManifest(id, &base));
  Image v2 = img;
  v2.pages[n - 1] = TextPage(ps, n, 8);
  std::vector<uint32_t> changed = {n};
  uint64_t id2 = 0;
  ASSERT_OK(Snap(store.get(), v2, "incr", &id2, &base, &changed));
  EXPECT_EQ(1u, InfoOf(store.get(), id2).pages_new);
  EXPECT_TRUE(ReadsBack(store.get(), id2, v2));
}

}  // namespace
}  // namespace store_test
