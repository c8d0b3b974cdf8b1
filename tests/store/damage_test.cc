// Damage to the store's files (a flipped byte, a truncated or missing pack or
// manifest, a damaged STORE file, garbage with valid names) is detected and
// reported naming the snapshot, never returned as data, never a crash.

#include <random>
#include <set>
#include <string>
#include <vector>

#include "tests/store/store_test_util.h"

namespace store_test {
namespace {

class StoreDamage : public ::testing::Test {
 protected:
  // s1: 48 pages of 4096; s2: s1 with 3 pages changed; s3:
  // unrelated content (its own pack only).
  void SetUp() override {
    dir_ = tmp_ / "s";
    v1_ = MakeImage(4096, 48, 1);
    v2_ = v1_;
    for (uint32_t p : {5u, 6u, 40u}) v2_.pages[p - 1] = TextPage(4096, p, 2);
    v3_ = MakeImage(4096, 30, 3);
    for (auto& p : v3_.pages) p[100] = 'Z';
    auto store = OpenOrDie(Options(dir_));
    ASSERT_NE(store, nullptr);
    ASSERT_OK(Snap(store.get(), v1_, "v1", &id1_));
    ASSERT_OK(Snap(store.get(), v2_, "v2", &id2_));
    ASSERT_OK(Snap(store.get(), v3_, "v3", &id3_));
    ASSERT_EQ(0u, PagesInPack(store.get(), id3_, id1_));
  }

  const Image& ImageOf(uint64_t id) const { return id == id1_ ? v1_ : id == id2_ ? v2_ : v3_; }

  // Reads every page of snapshot `id`: each page either reads back exactly or
  // fails with Corruption; returns whether any failed.
  bool ReadAllExpectingDamage(Store* store, uint64_t id, const std::string& where) {
    const Image& want = ImageOf(id);
    std::unique_ptr<SnapshotImage> image;
    Status s = store->OpenImage(id, &image);
    if (!s.ok()) {
      EXPECT_EQ(Status::Code::kCorruption, s.code()) << where << ": " << Describe(s);
      return true;
    }
    bool damaged = false;
    std::string buf(want.page_size, '\0');
    for (uint32_t p = 1; p <= want.pages.size(); p++) {
      s = image->ReadPage(p, reinterpret_cast<uint8_t*>(&buf[0]));
      if (!s.ok()) {
        EXPECT_EQ(Status::Code::kCorruption, s.code()) << where << " page " << p << ": " << Describe(s);
        damaged = true;
      } else {
        EXPECT_EQ(want.pages[p - 1], buf) << where << ": page " << p << " read back wrong bytes without an error";
      }
    }
    return damaged;
  }

  // With one file damaged: Verify() names exactly the snapshots in `must`
  // (plus possibly those in `may`), those are unreadable, the others whole.
  void CheckDamage(const std::set<uint64_t>& must, const std::set<uint64_t>& may, bool listed,
                   const std::string& where) {
    auto store = OpenOrDie(Options(dir_, false));
    ASSERT_NE(store, nullptr) << where;
    Status v = store->Verify(0);
    ASSERT_EQ(Status::Code::kCorruption, v.code()) << where << ": " << Describe(v);
    const std::set<uint64_t> named = NamedIds(v.message());
    for (uint64_t id : must) EXPECT_TRUE(named.count(id)) << where << ": " << v.message();
    for (uint64_t id : named) EXPECT_TRUE(must.count(id) || may.count(id)) << where << ": " << v.message();
    const std::vector<uint64_t> ids = ListIds(store.get());
    for (uint64_t id : {id1_, id2_, id3_}) {
      const bool is_listed = std::count(ids.begin(), ids.end(), id) > 0;
      if (must.count(id)) {
        EXPECT_EQ(listed, is_listed) << where << ": snapshot " << id;
        EXPECT_EQ(Status::Code::kCorruption, store->Verify(id).code()) << where;
        EXPECT_TRUE(ReadAllExpectingDamage(store.get(), id, where)) << where << ": snapshot " << id << " read back whole";
      } else if (may.count(id)) {
        EXPECT_TRUE(is_listed) << where;
        Status vs = store->Verify(id);
        EXPECT_TRUE(vs.ok() || vs.IsCorruption()) << where << ": " << Describe(vs);
        EXPECT_EQ(!vs.ok(), ReadAllExpectingDamage(store.get(), id, where)) << where;
      } else {
        EXPECT_TRUE(is_listed) << where << ": snapshot " << id;
        EXPECT_OK(store->Verify(id));
        EXPECT_TRUE(ReadsBack(store.get(), id, ImageOf(id))) << where;
      }
    }
    uint64_t latest = 0;
    ASSERT_OK(store->LatestId(&latest));
    EXPECT_EQ(listed || !must.count(id3_) ? id3_ : id2_, latest) << where;
  }

  TempDir tmp_;
  std::string dir_;
  Image v1_, v2_, v3_;
  uint64_t id1_ = 0, id2_ = 0, id3_ = 0;
};

// Every byte of the first `head` and last `tail` bytes, every 13th byte of
// the `index` bytes before the tail, and every 97th byte elsewhere.
std::vector<size_t> DamagePositions(size_t size, size_t head, size_t index, size_t tail) {
  std::vector<size_t> pos;
  for (size_t i = 0; i < size; i++) {
    if (i < head || i + tail >= size || (i + tail + index >= size && i % 13 == 0) || i % 97 == 0) pos.push_back(i);
  }
  return pos;
}

TEST_F(StoreDamage, FlippedByteInPack) {
  const std::string path = PackFile(dir_, id1_);
  const std::string good = ReadBytes(path);
  // Header, frames, frame table, page hashes, footer.
  const size_t index_bytes = 2 * snapshot::kFrameEntrySize + 48 * 16;
  for (size_t pos : DamagePositions(good.size(), snapshot::kPackHeaderSize, index_bytes, snapshot::kPackFooterSize)) {
    std::string bad = good;
    bad[pos] ^= static_cast<char>(1u << (pos % 8));
    WriteBytes(path, bad);
    CheckDamage({id1_}, {id2_}, true, "pack byte " + std::to_string(pos) + " of " + std::to_string(good.size()));
    if (HasFatalFailure()) return;
  }
  WriteBytes(path, good);
  auto store = OpenOrDie(Options(dir_, false));
  ASSERT_NE(store, nullptr);
  EXPECT_OK(store->Verify(0));
}

TEST_F(StoreDamage, TruncatedOrMissingPack) {
  const std::string path = PackFile(dir_, id1_);
  const std::string good = ReadBytes(path);
  for (size_t len : {size_t(0), size_t(1), size_t(31), size_t(32), size_t(72), good.size() / 2,
                     good.size() - snapshot::kPackFooterSize, good.size() - 1}) {
    WriteBytes(path, good.substr(0, len));
    CheckDamage({id1_, id2_}, {}, true, "pack truncated to " + std::to_string(len));
    if (HasFatalFailure()) return;
  }
  WriteBytes(path, good + "trailing");
  CheckDamage({id1_, id2_}, {}, true, "pack with trailing bytes");
  fs::remove(path);
  CheckDamage({id1_, id2_}, {}, true, "pack removed");
}

TEST_F(StoreDamage, FlippedByteInManifest) {
  for (uint64_t id : {id2_, id3_}) {
    const std::string path = ManifestFile(dir_, id);
    const std::string good = ReadBytes(path);
    for (size_t pos = 0; pos < good.size(); pos++) {
      std::string bad = good;
      bad[pos] ^= static_cast<char>(1u << (pos % 8));
      WriteBytes(path, bad);
      CheckDamage({id}, {}, false, "manifest " + std::to_string(id) + " byte " + std::to_string(pos));
      if (HasFatalFailure()) return;
      // Reading it directly says why.
      auto store = OpenOrDie(Options(dir_, false));
      Manifest m;
      EXPECT_CODE(kCorruption, store->ReadManifest(id, &m));
    }
    WriteBytes(path, good);
  }
}

TEST_F(StoreDamage, TruncatedManifest) {
  const std::string path = ManifestFile(dir_, id2_);
  const std::string good = ReadBytes(path);
  for (size_t len = 0; len < good.size(); len++) {
    WriteBytes(path, good.substr(0, len));
    CheckDamage({id2_}, {}, false, "manifest truncated to " + std::to_string(len));
    if (HasFatalFailure()) return;
  }
  WriteBytes(path, good + std::string(20, '\0'));
  CheckDamage({id2_}, {}, false, "manifest with trailing bytes");
}

TEST_F(StoreDamage, DamagedStoreFileIsRefused) {
  const std::string path = dir_ + "/STORE";
  const std::string good = ReadBytes(path);
  auto check = [&](const std::string& bad, const std::string& where) {
    WriteBytes(path, bad);
    for (bool exclusive : {false, true}) {
      std::unique_ptr<Store> store;
      StoreOptions o = Options(dir_, exclusive);
      o.lock_timeout_ms = 100;
      Status s = Store::Open(o, &store);
      EXPECT_TRUE(s.code() == Status::Code::kCorruption || s.code() == Status::Code::kInvalidArgument)
          << where << (exclusive ? " (exclusive)" : "") << ": " << Describe(s);
      EXPECT_NE(std::string::npos, s.message().find(dir_)) << where << ": the message does not name the store: " << s.message();
      // The damaged file is left as it is, for the operator.
      EXPECT_EQ(bad, ReadBytes(path)) << where;
    }
  };
  for (size_t pos = 0; pos < good.size(); pos++) {
    if (pos >= 8 && pos < 12) continue;  // the version field: see StoreFileVersionDamage below
    std::string bad = good;
    bad[pos] ^= static_cast<char>(1u << (pos % 8));
    check(bad, "STORE byte " + std::to_string(pos));
  }
  for (size_t len = 0; len < good.size(); len++) check(good.substr(0, len), "STORE truncated to " + std::to_string(len));
  check(good + "x", "STORE with a trailing byte");
  WriteBytes(path, good);
  auto store = OpenOrDie(Options(dir_, false));
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(ReadsBack(store.get(), id2_, v2_));
}

// A bit flipped in the STORE file's version field is damage, like any other
// byte: the checksum says so. It must not be reported as "written by a newer
// version; upgrade the extension", which sends the operator the wrong way.
TEST_F(StoreDamage, StoreFileVersionDamageIsCorruptionNotNewerVersion) {
  const std::string path = dir_ + "/STORE";
  const std::string good = ReadBytes(path);
  for (size_t pos = 8; pos < 12; pos++) {
    for (int bit = 0; bit < 8; bit++) {
      std::string bad = good;
      bad[pos] ^= static_cast<char>(1u << bit);
      WriteBytes(path, bad);
      std::unique_ptr<Store> store;
      Status s = Store::Open(Options(dir_, false), &store);
      EXPECT_EQ(Status::Code::kCorruption, s.code()) << "STORE byte " << pos << " bit " << bit << ": " << Describe(s);
    }
  }
  WriteBytes(path, good);
}

TEST_F(StoreDamage, GarbageFilesWithValidNamesAreHarmless) {
  std::mt19937 rng(42);
  auto garbage = [&](size_t n, const char* magic) {
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    if (magic != nullptr) s.replace(0, std::min<size_t>(8, n), magic, std::min<size_t>(8, n));
    return s;
  };
  const uint64_t gid = 50;
  for (size_t n : {0, 1, 7, 8, 15, 16, 31, 32, 71, 72, 73, 100, 200, 4096, 70000}) {
    for (const char* magic : {static_cast<const char*>(nullptr), snapshot::kPackMagic, snapshot::kManifestMagic}) {
      const std::string where = "garbage of " + std::to_string(n) + " bytes" + (magic ? std::string(" after ") + magic : "");
      SCOPED_TRACE(where);
      std::string pack = garbage(n, magic);
      if (n >= 48) pack.replace(n - 8, 8, snapshot::kPackEndMagic, 8);
      WriteBytes(PackFile(dir_, gid), pack);
      WriteBytes(ManifestFile(dir_, gid + 1), garbage(n, magic));
      {
        auto store = OpenOrDie(Options(dir_, false));
        ASSERT_NE(store, nullptr);
        EXPECT_EQ((std::vector<uint64_t>{id1_, id2_, id3_}), ListIds(store.get()));
        Status v = store->Verify(0);
        EXPECT_EQ(Status::Code::kCorruption, v.code()) << Describe(v);
        EXPECT_EQ(std::set<uint64_t>{gid + 1}, NamedIds(v.message())) << v.message();
        std::unique_ptr<SnapshotImage> image;
        EXPECT_FALSE(store->OpenImage(gid + 1, &image).ok());
        for (uint64_t id : {id1_, id2_, id3_}) EXPECT_TRUE(ReadsBack(store.get(), id, ImageOf(id)));
      }
      {
        // Writing around the garbage works too.
        auto store = OpenOrDie(Options(dir_));
        ASSERT_NE(store, nullptr);
        uint64_t id = 0;
        ASSERT_OK(Snap(store.get(), v2_, "", &id));
        EXPECT_GT(id, gid + 1);
        EXPECT_TRUE(ReadsBack(store.get(), id, v2_));
        // Prune may refuse to work around an unreadable snapshot, but must not
        // lose anything.
        PruneResult pr;
        Status ps = store->Prune(1000, -1, &pr);
        EXPECT_TRUE(ps.ok() || ps.IsCorruption()) << Describe(ps);
        EXPECT_TRUE(pr.deleted.empty());
        for (uint64_t i : {id1_, id2_, id3_, id}) EXPECT_TRUE(ReadsBack(store.get(), i, ImageOf(i == id ? id2_ : i)));
        fs::remove(ManifestFile(dir_, id));
      }
      if (HasFatalFailure()) return;
    }
  }
}

}  // namespace
}  // namespace store_test
