// Hostile packs and manifests (store/pack.h, store/manifest.h): built by hand
// with well-formed checksums (they are not keyed, anyone can compute them)
// around inconsistent content. Still Corruption, never garbage or a crash.

#include <zstd.h>

#include <string>
#include <vector>

#include "store/pack.h"
#include "tests/store/store_test_util.h"

namespace store_test {
namespace {

struct RawFrame {
  std::string compressed;
  uint32_t page_count = 0;
};

std::string Compress(const std::string& raw) {
  std::string out(ZSTD_compressBound(raw.size()), '\0');
  size_t n = ZSTD_compress(&out[0], out.size(), raw.data(), raw.size(), 1);
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(n);
  return out;
}

// A pack laid out as store/pack.h describes, with all checksums right.
std::string BuildPack(uint64_t id, uint32_t page_size, const std::vector<RawFrame>& frames,
                      const std::vector<PageHash>& hashes, uint64_t index_offset_override = 0,
                      uint32_t n_pages_override = 0) {
  std::string out;
  snapshot::ByteWriter w(&out);
  w.Bytes(snapshot::kPackMagic, 8);
  w.U32(snapshot::kFormatVersion);
  w.U32(page_size);
  w.U64(id);
  w.U64(snapshot::Checksum64(out.data(), out.size()));
  std::string index;
  snapshot::ByteWriter iw(&index);
  for (const RawFrame& f : frames) {
    iw.U64(out.size());
    iw.U32(static_cast<uint32_t>(f.compressed.size()));
    iw.U32(f.page_count);
    iw.U64(snapshot::Checksum64(f.compressed.data(), f.compressed.size()));
    out += f.compressed;
  }
  for (const PageHash& h : hashes) {
    iw.U64(h.lo);
    iw.U64(h.hi);
  }
  const uint64_t index_offset = index_offset_override ? index_offset_override : out.size();
  out += index;
  std::string footer;
  snapshot::ByteWriter fw(&footer);
  fw.U64(index_offset);
  fw.U32(static_cast<uint32_t>(frames.size()));
  fw.U32(n_pages_override ? n_pages_override : static_cast<uint32_t>(hashes.size()));
  fw.U64(snapshot::Checksum64(index.data(), index.size()));
  fw.U64(snapshot::Checksum64(footer.data(), footer.size()));
  fw.Bytes(snapshot::kPackEndMagic, 8);
  return out + footer;
}

class StoreHostile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_ / "s";
    img_ = MakeImage(ps_, 8, 1);
    auto store = OpenOrDie(Options(dir_));
    ASSERT_NE(store, nullptr);
    ASSERT_OK(Snap(store.get(), img_, "good", &good_id_));
    // The store's hash key, to compute page hashes the way the store does.
    secret_ = StoreSecret(dir_);
  }
  PageHash Hash(const std::string& page) const {
    return snapshot::HashPage(reinterpret_cast<const uint8_t*>(secret_.data()), page.data(), page.size());
  }
  // A manifest for snapshot `id` mapping page i+1 to (pack, first_index + i).
  void WriteManifest(uint64_t id, uint64_t pack, uint32_t first_index, uint32_t pages, uint32_t page_size = 0) {
    Manifest m;
    m.info.id = id;
    m.info.created_ms = 1700000000000;
    m.info.page_size = page_size ? page_size : ps_;
    std::vector<PageRef> refs;
    for (uint32_t i = 0; i < pages; i++) refs.push_back(PageRef{pack, first_index + i});
    m.SetPageMap(refs);
    WriteBytes(ManifestFile(dir_, id), m.Encode());
  }
  // The hostile snapshot `id` is listed (it parses), is named by Verify, and
  // none of its pages reads back as anything but Corruption or the truth.
  void CheckHostile(uint64_t id, const std::string& what, bool valid = false) {
    SCOPED_TRACE(what);
    auto store = OpenOrDie(Options(dir_, false));
    ASSERT_NE(store, nullptr);
    EXPECT_EQ((std::vector<uint64_t>{good_id_, id}), ListIds(store.get()));
    Status v = store->Verify(0);
    if (valid) {
      EXPECT_OK(v);
    } else {
      EXPECT_EQ(Status::Code::kCorruption, v.code()) << Describe(v);
      EXPECT_EQ(std::set<uint64_t>{id}, NamedIds(v.message())) << v.message();
    }
    std::unique_ptr<SnapshotImage> image;
    Status s = store->OpenImage(id, &image);
    bool failed = !s.ok();
    if (!s.ok()) {
      EXPECT_EQ(Status::Code::kCorruption, s.code()) << Describe(s);
    }
    for (uint32_t p = 1; s.ok() && p <= image->info().page_count; p++) {
      std::string buf(image->info().page_size, '\0');
      Status r = image->ReadPage(p, reinterpret_cast<uint8_t*>(&buf[0]));
      if (!r.ok()) {
        EXPECT_EQ(Status::Code::kCorruption, r.code()) << "page " << p << ": " << Describe(r);
        failed = true;
      } else {
        EXPECT_EQ(img_.pages[p - 1], buf) << "page " << p << " is garbage";
      }
    }
    EXPECT_EQ(!valid, failed);
    EXPECT_TRUE(ReadsBack(store.get(), good_id_, img_));
  }
  std::vector<PageHash> Hashes() const {
    std::vector<PageHash> h;
    for (const auto& p : img_.pages) h.push_back(Hash(p));
    return h;
  }
  std::string Raw(uint32_t from, uint32_t n) const {
    std::string r;
    for (uint32_t i = from; i < from + n; i++) r += img_.pages[i];
    return r;
  }

  TempDir tmp_;
  std::string dir_;
  const uint32_t ps_ = 65536;  // the packs built here hold one page per frame
  Image img_;
  uint64_t good_id_ = 0;
  std::string secret_;
};

TEST_F(StoreHostile, WellFormedPackBuiltByTheTestReadsBack) {
  // Sanity check of BuildPack: with honest content it is a valid pack.
  std::vector<RawFrame> frames;
  for (uint32_t i = 0; i < 8; i++) frames.push_back({Compress(img_.pages[i]), 1});
  WriteBytes(PackFile(dir_, 5), BuildPack(5, ps_, frames, Hashes()));
  WriteManifest(6, 5, 0, 8);
  CheckHostile(6, "honest pack", /*valid=*/true);
}

TEST_F(StoreHostile, InconsistentPacksAreCorruption) {
  struct Case {
    std::string what;
    std::vector<RawFrame> frames;
    std::vector<PageHash> hashes;
  };
  std::vector<Case> cases;
  auto honest = [&] {
    Case c;
    for (uint32_t i = 0; i < 8; i++) c.frames.push_back({Compress(img_.pages[i]), 1});
    c.hashes = Hashes();
    return c;
  };
  {
    Case c = honest();
    c.what = "a page hash that does not match its page";
    c.hashes[3].lo ^= 1;
    cases.push_back(c);
  }
  {
    Case c = honest();
    c.what = "hashes of other pages (content swapped)";
    std::swap(c.frames[2], c.frames[3]);
    cases.push_back(c);
  }
  {
    Case c = honest();
    c.what = "a frame that decompresses to less than a page";
    c.frames[4].compressed = Compress(img_.pages[4].substr(0, ps_ / 2));
    cases.push_back(c);
  }
  {
    Case c = honest();
    c.what = "a frame that decompresses to more than its pages";
    c.frames[4].compressed = Compress(Raw(4, 2));
    cases.push_back(c);
  }
  {
    Case c = honest();
    c.what = "a frame that is not zstd";
    c.frames[1].compressed = img_.pages[1].substr(0, 1000);
    cases.push_back(c);
  }
  {
    Case c = honest();
    c.what = "an empty frame";
    c.frames[1].compressed.clear();
    cases.push_back(c);
  }
  {
    // 6.5 GB of pages in one frame: a reader must not try to allocate that.
    Case c = honest();
    c.what = "a frame claiming 100000 pages";
    c.frames = {{Compress(Raw(0, 8)), 100000}};
    c.hashes.resize(100000);
    cases.push_back(c);
  }
  uint64_t id = 10;
  for (const Case& c : cases) {
    WriteBytes(PackFile(dir_, id), BuildPack(id, ps_, c.frames, c.hashes));
    WriteManifest(id + 1, id, 0, 8);
    CheckHostile(id + 1, c.what);
    fs::remove(ManifestFile(dir_, id + 1));
    fs::remove(PackFile(dir_, id));
    id += 2;
  }
}

TEST_F(StoreHostile, ManifestsThatDoNotFitTheirPackAreCorruption) {
  std::vector<RawFrame> frames;
  for (uint32_t i = 0; i < 8; i++) frames.push_back({Compress(img_.pages[i]), 1});
  WriteBytes(PackFile(dir_, 5), BuildPack(5, ps_, frames, Hashes()));
  WriteManifest(6, 5, 1, 8);  // one page past the end
  CheckHostile(6, "pages past the end of the pack");
  WriteManifest(6, 5, 0xfffffff0u, 8);
  CheckHostile(6, "indexes far past the end of the pack");
  WriteManifest(6, 5, 0, 8, 4096);
  CheckHostile(6, "another page size than the pack's");
  WriteManifest(6, 77, 0, 8);
  CheckHostile(6, "a pack that does not exist");
  WriteBytes(PackFile(dir_, 7), BuildPack(5, ps_, frames, Hashes()));  // names itself pack 5
  WriteManifest(6, 7, 0, 8);
  CheckHostile(6, "a pack holding another pack's content");
}

// The footer's index offset is a u64 from the file: offset + index size +
// footer size must not wrap around to the file size. Such a pack must be
// refused as damaged without trying to read (or allocate) its "index".
TEST_F(StoreHostile, PackWithWrappingIndexOffsetIsCorruption) {
  std::vector<RawFrame> frames;
  for (uint32_t i = 0; i < 8; i++) frames.push_back({Compress(img_.pages[i]), 1});
  std::string honest = BuildPack(5, ps_, frames, Hashes());
  const uint32_t n_pages = 1u << 22;  // claims a 64 MiB index
  const uint64_t index_size = uint64_t(8) * snapshot::kFrameEntrySize + uint64_t(n_pages) * 16;
  const uint64_t wrapped = uint64_t(honest.size()) - snapshot::kPackFooterSize - index_size;  // mod 2^64
  WriteBytes(PackFile(dir_, 5), BuildPack(5, ps_, frames, Hashes(), wrapped, n_pages));
  WriteManifest(6, 5, 0, 8);
  CheckHostile(6, "index offset that wraps around");
}

// Prune rewrites packs that are mostly dead. A manifest that parses but
// refers past the end of such a pack must not make it index out of bounds
// (under AddressSanitizer: a heap-buffer-overflow in Store::CompactPack).
TEST_F(StoreHostile, PruneSurvivesManifestReferringPastItsPack) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  // Pack of good_id_ holds 8 pages; this manifest keeps 4 of them live (so
  // half the pack is dead and it is compacted) and refers to 4 more past it.
  WriteManifest(20, good_id_, 4, 8);
  EXPECT_EXIT(
      {
        auto store = OpenOrDie(Options(dir_));
        PruneResult pr;
        Status s = store ? store->Prune(1, -1, &pr) : Status::IOError("open");
        // Snapshot 20 is the newest valid one: kept; snapshot 1 is deleted.
        std::_Exit(s.ok() || s.IsCorruption() ? 0 : 3);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace store_test
