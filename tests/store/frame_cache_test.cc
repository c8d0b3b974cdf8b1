// The process's frame cache (store/frame_cache.h), shared by snapshot
// readers, and the pack writer's grouping of b-tree interior pages
// (store/pack.h, PagePlacement): what readers rely on is that every page
// reads back byte-exact, that a damaged frame is an error every time, and
// that the cache stays within its bound.
#include <algorithm>
#include <fstream>
#include <random>
#include <thread>

#include "store/frame_cache.h"
#include "store/pack.h"
#include "store/snapshot_reader.h"
#include "tests/store/store_test_util.h"

namespace store_test {
namespace {

using snapshot::FrameCache;
using snapshot::FrameKey;
using snapshot::PackReader;
using snapshot::SnapshotReader;
using snapshot::SnapshotReaderOptions;

// Overwrites 4 bytes of pack `id` at `offset`, in place (an open reader's
// descriptor sees it); returns what was there.
std::string DamagePack(const std::string& dir, uint64_t id, uint64_t offset, const char* with = "\xde\xad\xbe\xef") {
  const std::string pack = PackFile(dir, id);
  std::fstream f(pack, std::ios::in | std::ios::out | std::ios::binary);
  std::string old(4, '\0');
  f.seekg(std::streamoff(offset));
  f.read(&old[0], 4);
  f.seekp(std::streamoff(offset));
  f.write(with, 4);
  return old;
}

std::unique_ptr<PackReader> OpenPack(const std::string& dir, uint64_t id) {
  static const uint8_t kNoSecret[snapshot::kHashSecretSize] = {};  // frames() only: no page is read
  std::unique_ptr<PackReader> r;
  const Status s = PackReader::Open(Env::Default(), PackFile(dir, id), id, kNoSecret, &r);
  EXPECT_TRUE(s.ok()) << Describe(s);
  return r;
}

// A store (so.dir) holding one snapshot of `img` (as "a"); its id.
uint64_t StoreWithOne(const Image& img, const StoreOptions& so) {
  uint64_t id = 0;
  auto store = OpenOrDie(so);
  EXPECT_NE(store, nullptr);
  if (store != nullptr) EXPECT_OK(Snap(store.get(), img, "a", &id));
  return id;
}

TEST(FrameCache, TwoReadersOfOneStoreDecodeEachFrameOnce) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  const Image v1 = MakeImage(4096, 600, 1);  // three frames of 256 pages
  Image v2 = v1;
  for (uint32_t p : {5u, 300u, 550u}) v2.pages[p - 1] = TextPage(4096, p, 2);
  uint64_t id1, id2;
  {
    auto store = OpenOrDie(Options(dir));
    ASSERT_OK(Snap(store.get(), v1, "a", &id1));
    Manifest base;
    ASSERT_OK(store->ReadManifest(id1, &base));
    const std::vector<uint32_t> changed = {5, 300, 550};
    ASSERT_OK(Snap(store.get(), v2, "b", &id2, &base, &changed));
  }
  std::unique_ptr<SnapshotReader> first, second, own;
  ASSERT_OK(SnapshotReader::Open(ReaderOptions(dir, id1), &first));
  ASSERT_TRUE(ReaderReadsBack(first.get(), v1));
  EXPECT_EQ(3u, FrameCache::Shared()->frames());
  // Pack 1's first frame is damaged now; a reader of its own sees that...
  DamagePack(dir, id1, snapshot::kPackHeaderSize + 100);
  SnapshotReaderOptions unshared = ReaderOptions(dir, id2);
  unshared.share_cache = false;
  ASSERT_OK(SnapshotReader::Open(unshared, &own));
  std::string buf(4096, '\0');
  EXPECT_CODE(kCorruption, own->ReadPage(1, reinterpret_cast<uint8_t*>(&buf[0])));
  // ...but another snapshot of the store, sharing the pack, is served the
  // frame the first reader decoded (and checked) before the damage.
  ASSERT_OK(SnapshotReader::Open(ReaderOptions(dir, id2), &second));
  EXPECT_TRUE(ReaderReadsBack(second.get(), v2));
  EXPECT_EQ(4u, FrameCache::Shared()->frames());  // and pack 2's one frame
  first.reset();
  second.reset();
  EXPECT_EQ(0u, FrameCache::Shared()->frames()) << "the cache empties when its last reader goes";
}

TEST(FrameCache, ADamagedFrameIsNeverCached) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  const Image v1 = MakeImage(4096, 600, 1);
  const uint64_t id1 = StoreWithOne(v1, Options(dir));
  ASSERT_NE(0u, id1);
  const auto pack = OpenPack(dir, id1);
  ASSERT_TRUE(pack);
  ASSERT_EQ(3u, pack->frames().size());
  const std::string good = DamagePack(dir, id1, pack->frames()[1].offset + 40);
  std::unique_ptr<SnapshotReader> reader;
  ASSERT_OK(SnapshotReader::Open(ReaderOptions(dir, id1), &reader));
  std::string buf(4096, '\0');
  for (int attempt = 0; attempt < 2; attempt++) {
    SCOPED_TRACE(attempt);
    EXPECT_CODE(kCorruption, reader->ReadPage(300, reinterpret_cast<uint8_t*>(&buf[0])));
  }
  EXPECT_OK(reader->ReadPage(1, reinterpret_cast<uint8_t*>(&buf[0])));
  EXPECT_EQ(v1.pages[0], buf);
  EXPECT_EQ(1u, FrameCache::Shared()->frames());
  // Repaired, the frame is read from the pack again, not from a cached failure.
  DamagePack(dir, id1, pack->frames()[1].offset + 40, good.data());
  EXPECT_TRUE(ReaderReadsBack(reader.get(), v1));
  EXPECT_EQ(3u, FrameCache::Shared()->frames());
}

TEST(FrameCache, EvictsTheLeastRecentlyUsedWithinTheLargestBound) {
  FrameCache cache;
  auto frame = [](char c) { return std::make_shared<std::string>(1000, c); };
  auto key = [](uint32_t f) { return FrameKey{7, 1, f, 100 + f}; };
  cache.Insert(key(0), frame('x'));
  EXPECT_EQ(0u, cache.frames()) << "nothing is kept while no reader is registered";
  auto small = cache.Register(2000);
  {
    auto big = cache.Register(3000);
    EXPECT_EQ(3000u, cache.capacity());
    for (uint32_t f = 0; f < 3; f++) cache.Insert(key(f), frame(char('a' + f)));
    ASSERT_TRUE(cache.Lookup(key(0)));  // now the most recently used
    cache.Insert(key(3), frame('d'));
    EXPECT_EQ(3u, cache.frames());
    EXPECT_FALSE(cache.Lookup(key(1))) << "the least recently used goes first";
    EXPECT_EQ("a", cache.Lookup(key(0))->substr(0, 1));
    // Another key of the same frame number (another store, or a checksum
    // of a pack written anew) is another frame.
    EXPECT_FALSE(cache.Lookup(FrameKey{8, 1, 0, 100}));
    EXPECT_FALSE(cache.Lookup(FrameKey{7, 1, 0, 101}));
  }
  EXPECT_EQ(2000u, cache.capacity());
  EXPECT_EQ(2u, cache.frames());
  EXPECT_LE(cache.bytes(), 2000u);
  // An evicted frame nobody holds lends its buffer to the next decode.
  auto held = cache.Lookup(key(0));
  cache.Insert(key(4), frame('e'));
  cache.Insert(key(5), frame('f'));
  EXPECT_GE(cache.TakeBuffer(1000)->capacity(), 1000u);
  EXPECT_EQ('a', (*held)[0]) << "a frame in use is never reused while held";
  // A bound below one frame still keeps the newest.
  auto tiny = cache.Register(1);
  small.reset();
  cache.Insert(key(6), frame('g'));
  EXPECT_EQ(1u, cache.frames());
}

TEST(FrameCache, ReadersWithinASmallBoundReadEverythingInAnyOrder) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  const Image v1 = MakeImage(4096, 900, 1);
  StoreOptions so = Options(dir);
  so.compress.frame_bytes = 64 << 10;  // 57 frames of 16 pages
  const uint64_t id1 = StoreWithOne(v1, so);
  ASSERT_NE(0u, id1);
  SnapshotReaderOptions o = ReaderOptions(dir, id1);
  o.cache_bytes = 2 * (64 << 10);  // two frames
  std::unique_ptr<SnapshotReader> a, b;
  ASSERT_OK(SnapshotReader::Open(o, &a));
  ASSERT_OK(SnapshotReader::Open(o, &b));
  std::vector<uint32_t> order(900);
  for (uint32_t i = 0; i < order.size(); i++) order[i] = i + 1;
  std::shuffle(order.begin(), order.end(), std::mt19937(3));
  std::string buf(4096, '\0');
  for (size_t i = 0; i < order.size(); i++) {
    SnapshotReader* r = i % 2 ? a.get() : b.get();
    ASSERT_OK(r->ReadPage(order[i], reinterpret_cast<uint8_t*>(&buf[0])));
    ASSERT_EQ(v1.pages[order[i] - 1], buf) << "page " << order[i];
    ASSERT_LE(FrameCache::Shared()->bytes(), o.cache_bytes);
  }
}

// A point query on an attached snapshot wants one page of a 1 MiB leaf
// frame: it is decoded only to the end of the zstd block holding the page,
// and still the whole compressed frame's checksum is checked.
TEST(FrameCache, OnePageOfAFrameIsDecodedOnlyAsFarAsItsBlock) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  const Image v1 = MakeImage(4096, 600, 1);
  const uint64_t id1 = StoreWithOne(v1, Options(dir));
  ASSERT_NE(0u, id1);
  const std::string secret = StoreSecret(dir);
  std::unique_ptr<PackReader> pack;
  ASSERT_OK(PackReader::Open(Env::Default(), PackFile(dir, id1), id1,
                             reinterpret_cast<const uint8_t*>(secret.data()), &pack));
  ASSERT_EQ(256u, pack->frames()[0].page_count);
  auto first_pages = [&](size_t n) {
    std::string out;
    for (size_t i = 0; i < n; i++) out += v1.pages[i];
    return out;
  };
  std::string pages;
  ASSERT_OK(pack->ReadFramePrefix(0, 2, &pages));
  EXPECT_GE(pages.size(), 3 * 4096u);
  EXPECT_LE(pages.size(), size_t(128) << 10) << "one zstd block at most";
  ASSERT_EQ(0u, pages.size() % 4096);
  EXPECT_EQ(first_pages(pages.size() / 4096), pages);
  ASSERT_OK(pack->ReadFramePrefix(0, 255, &pages));
  EXPECT_EQ(first_pages(256), pages);
  EXPECT_CODE(kInvalidArgument, pack->ReadFramePrefix(0, 256, &pages));
  const snapshot::FrameEntry& e = pack->frames()[0];
  DamagePack(dir, id1, e.offset + e.compressed_size - 8);
  // Damage past the page is found too.
  EXPECT_CODE(kCorruption, pack->ReadFramePrefix(0, 0, &pages));
}

// Pages asked for in any order through a cache of two frames: frames held
// in part are read on, evicted and decoded again, and every page reads back.
TEST(FrameCache, FramesHeldInPartReadBackInAnyOrder) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  const Image v1 = MakeImage(4096, 900, 1);  // four frames, the last 132 pages
  const uint64_t id1 = StoreWithOne(v1, Options(dir));
  ASSERT_NE(0u, id1);
  SnapshotReaderOptions o = ReaderOptions(dir, id1);
  o.cache_bytes = 2 << 20;
  std::unique_ptr<SnapshotReader> a, b;
  ASSERT_OK(SnapshotReader::Open(o, &a));
  ASSERT_OK(SnapshotReader::Open(o, &b));
  std::vector<uint32_t> order;
  for (uint32_t i = 1; i <= 900; i++) order.push_back(i);
  std::shuffle(order.begin(), order.end(), std::mt19937(5));
  order.insert(order.begin(), {256, 1, 2, 600, 257});  // a prefix, then past it
  std::string buf(4096, '\0');
  for (size_t i = 0; i < order.size(); i++) {
    SnapshotReader* r = i % 3 ? a.get() : b.get();
    ASSERT_OK(r->ReadPage(order[i], reinterpret_cast<uint8_t*>(&buf[0])));
    ASSERT_EQ(v1.pages[order[i] - 1], buf) << "page " << order[i];
    ASSERT_LE(FrameCache::Shared()->bytes(), o.cache_bytes);
  }
}

// Readers on two threads (two connections of a web server) through one
// cache that holds two frames: frames are evicted, and their buffers reused,
// while the other thread reads. Named Store* so the TSan stage runs it.
TEST(StoreFrameCache, ReadersOnTwoThreadsShareFramesSafely) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  const Image v1 = MakeImage(4096, 400, 1);
  StoreOptions so = Options(dir);
  so.compress.frame_bytes = 64 << 10;
  const uint64_t id1 = StoreWithOne(v1, so);
  ASSERT_NE(0u, id1);
  SnapshotReaderOptions o = ReaderOptions(dir, id1);
  o.cache_bytes = 2 * (64 << 10);
  std::unique_ptr<SnapshotReader> readers[2];
  for (auto& r : readers) ASSERT_OK(SnapshotReader::Open(o, &r));
  std::string failures[2];
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; t++) {
    threads.emplace_back([&, t] {
      std::vector<uint32_t> order(400);
      for (uint32_t i = 0; i < order.size(); i++) order[i] = i + 1;
      std::shuffle(order.begin(), order.end(), std::mt19937(t + 1));
      std::string buf(4096, '\0');
      for (uint32_t p : order) {
        const Status s = readers[t]->ReadPage(p, reinterpret_cast<uint8_t*>(&buf[0]));
        if (!s.ok() || buf != v1.pages[p - 1]) {
          failures[t] = "page " + std::to_string(p) + ": " + Describe(s);
          return;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ("", failures[0]);
  EXPECT_EQ("", failures[1]);
}

// An image whose pages look like b-tree interior pages here and there
// (page 1's header at offset 100), as SQLite's do.
Image ImageWithInteriorPages(uint32_t n, uint32_t version) {
  Image img = MakeImage(4096, n, version);
  for (uint32_t i = 0; i < n; i++) {
    if (i % 7 == 3) img.pages[i][0] = '\x05';
    if (i % 11 == 5) img.pages[i][0] = '\x02';
  }
  img.pages[0][100] = '\x05';
  return img;
}

bool LooksInterior(const Image& img, uint32_t pgno) {
  const uint8_t* p = reinterpret_cast<const uint8_t*>(img.pages[pgno - 1].data());
  return snapshot::IsTreeInteriorPage(p, img.page_size, pgno);
}

TEST(PackGrouping, InteriorPagesShareFramesOnlyWithEachOtherAndReadBackExactly) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  const Image v1 = ImageWithInteriorPages(1200, 1);
  Image v2 = v1;
  std::vector<uint32_t> changed;
  for (uint32_t p = 2; p <= 1200; p += 37) {
    v2.pages[p - 1] = TextPage(4096, p, 2);
    if (p % 3 == 0) v2.pages[p - 1][0] = '\x05';
    changed.push_back(p);
  }
  v2.pages[0] = TextPage(4096, 1, 2);
  v2.pages[0][100] = '\x02';
  changed.push_back(1);  // last, as a snapshot of a WAL database adds it
  std::vector<uint32_t> page1_last;
  for (uint32_t p = 2; p <= 1200; p++) page1_last.push_back(p);
  page1_last.push_back(1);
  auto store = OpenOrDie(Options(dir));
  uint64_t id1, id2, id3;
  ASSERT_OK(Snap(store.get(), v1, "full", &id1, nullptr, &page1_last));
  Manifest m1;
  ASSERT_OK(store->ReadManifest(id1, &m1));
  ASSERT_OK(Snap(store.get(), v2, "incr", &id2, &m1, &changed));
  // A full snapshot of v1 again, in the same session: every page is found
  // through the deduplication index, which must know where grouping put them.
  ASSERT_OK(Snap(store.get(), v1, "again", &id3));
  EXPECT_EQ(0u, InfoOf(store.get(), id3).pages_new);
  EXPECT_TRUE(ReadsBack(store.get(), id1, v1));
  EXPECT_TRUE(ReadsBack(store.get(), id2, v2));
  EXPECT_TRUE(ReadsBack(store.get(), id3, v1));

  // Every frame of pack 1 holds interior pages only, or none.
  const auto pack = OpenPack(dir, id1);
  ASSERT_TRUE(pack);
  std::vector<int> kind(pack->page_count(), -1);  // by pack index: 1 interior, 0 not
  for (uint32_t p = 1; p <= 1200; p++) {
    PageRef ref;
    ASSERT_TRUE(m1.Lookup(p, &ref));
    ASSERT_EQ(id1, ref.pack);
    kind[ref.index] = LooksInterior(v1, p);
  }
  size_t grouped_frames = 0;
  for (const auto& f : pack->frames()) {
    const int first = kind[f.first_index];
    for (uint32_t i = 0; i < f.page_count; i++) ASSERT_EQ(first, kind[f.first_index + i]) << "frame at " << f.offset;
    if (first == 1) {
      grouped_frames++;
      EXPECT_LE(f.page_count * 4096u, snapshot::kGroupedFrameBytes);
    }
  }
  EXPECT_GE(grouped_frames, 2u);
}

}  // namespace
}  // namespace store_test
