// Damage to every structure of the store's format (docs/FORMAT.md), through
// the extension's SQL functions, as a user meets it.
//
// A store of four snapshots is made once: 1 is full, 2 and 3 are built on
// the previous one (their packs hold only the changed pages, so they depend
// on pack 1 too), 4 follows a rewrite of most of the database. Then every
// case copies that store, damages one structure in one way (a bit flip, a
// truncation, a zeroed range, two files of a kind swapped, a file missing,
// an old copy of a file), and checks:
//  - snapshot_verify() fails and names exactly the snapshots that depend on
//    the damaged bytes (every case is detected);
//  - snapshot_verify(id) and snapshot_restore_to(path, id) fail for each of
//    them, leaving no file behind; snapshot_restore(id) refuses and leaves
//    the database as it was;
//  - every other snapshot verifies and snapshot_restore_to() writes exactly
//    the database it was taken of.
// Which snapshots depend on which bytes is computed from the manifests and
// the packs' frame tables (the pages each snapshot uses, the frames holding
// them). The number of cases is printed at the end (and recorded as the
// test property damage_cases).
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "store/format.h"
#include "store/manifest.h"
#include "store/pack.h"
#include "store/store.h"
#include "tests/test_util.h"

namespace snapshot_test {
namespace {

namespace fs = std::filesystem;
using snapshot::FileNameForId;

void Write(const std::string& path, const std::string& data) {
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(nullptr, f) << path;
  ASSERT_EQ(data.size(), std::fwrite(data.data(), 1, data.size(), f));
  ASSERT_EQ(0, std::fclose(f));
}

std::string PackRel(uint64_t id) { return "packs/" + FileNameForId(id, ".pack"); }
std::string SnapRel(uint64_t id) { return "snapshots/" + FileNameForId(id, ".snap"); }

// What one snapshot reads: for each pack, the set of frames holding its pages.
struct Uses {
  std::map<uint64_t, std::set<uint32_t>> frames;
};

// A pack's layout, from its footer and frame table.
struct PackLayout {
  uint64_t size = 0, index_offset = 0;
  std::vector<snapshot::FrameEntry> frames;
};

// One damage: a name, what it does to a copy of the store, and the
// snapshots it must make fail.
struct Case {
  std::string name;
  std::function<void(const std::string& store)> apply;
  std::set<uint64_t> affected;
};

class Damage : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    Build();
  }
  static void TearDownTestSuite() {
    std::printf("[ damage   ] %d damage cases, every one detected\n", cases_run_);
    RecordProperty("damage_cases", cases_run_);
    delete dir_;
    dir_ = nullptr;
  }
  static std::string Path(const std::string& name) { return *dir_ / name; }
  // The store beside app.db, where snapshot_backup() makes it.
  static std::string Pristine() { return Path("app.db-snapshots"); }

  // A database of its own in the new directory `dir` (3000 rows, 4096-byte
  // pages), for a test that changes the store beside it; *db has the
  // extension loaded.
  static void NewDatabase(const std::string& dir, sqlite3** db) {
    fs::create_directory(dir);
    *db = OpenDb(dir + "/app.db");
    ASSERT_EQ("", Exec(*db, "PRAGMA page_size=4096; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"
                            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) "
                            "INSERT INTO t SELECT i, printf('%0400d', i * 7919) FROM n;"));
  }

  // Four snapshots of app.db (4096-byte pages, ~3 MB: three frames in a
  // full pack), and what each one's restore must write.
  static void Build() {
    db_ = OpenDb(Path("app.db"));
    ASSERT_EQ("", Exec(db_, "PRAGMA page_size=4096; PRAGMA journal_mode=DELETE;"
                            "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"
                            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 6000) "
                            "INSERT INTO t SELECT i, printf('%0400d', i * 7919) FROM n;"));
    const char* changes[] = {
        nullptr,
        "UPDATE t SET v = printf('%0400d', id * 31) WHERE id <= 60",
        "UPDATE t SET v = printf('%0400d', id * 37) WHERE id > 5900",
        "DELETE FROM t WHERE id % 3 = 0; UPDATE t SET v = printf('%0401d', id * 41); VACUUM",
    };
    for (uint64_t id = 1; id <= 4; id++) {
      if (changes[id - 1]) {
        ASSERT_EQ("", Exec(db_, changes[id - 1]));
      }
      ASSERT_EQ(int64_t(id), QueryInt(db_, "SELECT snapshot_backup('s" + std::to_string(id) + "')"));
      images_[id] = ReadFile(Path("app.db"));
    }
    ASSERT_EQ("ok", Query(db_, "SELECT snapshot_verify()"));
    live_ = ReadFile(Path("app.db"));

    for (uint64_t id = 1; id <= 4; id++) {
      const std::string bytes = ReadFile(Pristine() + "/" + PackRel(id));
      ASSERT_GT(bytes.size(), 0u) << "snapshot " << id << " added no pack";
      std::unique_ptr<snapshot::PackReader> pack;
      static const uint8_t unused_secret[snapshot::kHashSecretSize] = {};
      const snapshot::Status s =
          snapshot::PackReader::Open(snapshot::Env::Default(), Pristine() + "/" + PackRel(id), id, unused_secret, &pack);
      ASSERT_TRUE(s.ok()) << s.message();
      PackLayout& layout = packs_[id];
      layout.size = bytes.size();
      layout.frames = pack->frames();
      layout.index_offset = layout.frames.back().offset + layout.frames.back().compressed_size;
    }
    ASSERT_GE(packs_[1].frames.size(), 3u) << "pack 1 should have several frames";
    for (uint64_t id = 1; id <= 4; id++) {
      snapshot::Manifest m;
      const snapshot::Status s = snapshot::Manifest::Decode(ReadFile(Pristine() + "/" + SnapRel(id)), "", &m);
      ASSERT_TRUE(s.ok()) << s.message();
      for (const snapshot::Extent& e : m.extents) {
        if (e.pack == 0) continue;
        for (uint32_t i = e.first_index; i < e.first_index + e.page_count; i++) {
          uses_[id].frames[e.pack].insert(FrameOf(e.pack, i));
        }
      }
    }
    // The store is meant to show what it claims to: incremental snapshots
    // that share pack 1, and damage that some snapshots do not depend on.
    ASSERT_TRUE(uses_[2].frames.count(1) && uses_[2].frames.count(2));
    ASSERT_TRUE(uses_[3].frames.count(1) && uses_[3].frames.count(3));
    ASSERT_FALSE(uses_[1].frames.count(4));
  }

  static uint32_t FrameOf(uint64_t pack, uint32_t index) {
    const auto& frames = packs_[pack].frames;
    for (uint32_t f = 0; f < frames.size(); f++) {
      if (index >= frames[f].first_index && index < frames[f].first_index + frames[f].page_count) return f;
    }
    ADD_FAILURE() << "index " << index << " is in no frame of pack " << pack;
    return 0;
  }

  // Snapshots that read any of pack `pack`'s frames in [first, last].
  static std::set<uint64_t> UsersOfFrames(uint64_t pack, uint32_t first, uint32_t last) {
    std::set<uint64_t> out;
    for (const auto& [id, u] : uses_) {
      auto it = u.frames.find(pack);
      if (it == u.frames.end()) continue;
      for (uint32_t f : it->second) {
        if (f >= first && f <= last) out.insert(id);
      }
    }
    return out;
  }
  static std::set<uint64_t> UsersOfPack(uint64_t pack) {
    return UsersOfFrames(pack, 0, uint32_t(packs_[pack].frames.size()));
  }
  // Snapshots whose pages lie in the byte range [from, to) of pack `pack`:
  // the frames it overlaps, or the whole pack when it touches the header,
  // the index or the footer (they are checked whenever the pack is opened).
  static std::set<uint64_t> UsersOfBytes(uint64_t pack, uint64_t from, uint64_t to) {
    const PackLayout& p = packs_[pack];
    if (from < snapshot::kPackHeaderSize || to > p.index_offset) return UsersOfPack(pack);
    std::set<uint64_t> out;
    for (uint32_t f = 0; f < p.frames.size(); f++) {
      const uint64_t a = p.frames[f].offset, b = a + p.frames[f].compressed_size;
      if (from < b && to > a) {
        const auto users = UsersOfFrames(pack, f, f);
        out.insert(users.begin(), users.end());
      }
    }
    return out;
  }

  static void Flip(const std::string& path, uint64_t offset) {
    std::string b = ReadFile(path);
    ASSERT_LT(offset, b.size()) << path;
    b[offset] = char(b[offset] ^ 0x10);
    Write(path, b);
  }
  static void Truncate(const std::string& path, uint64_t size) { fs::resize_file(path, size); }
  static void Zero(const std::string& path, uint64_t from, uint64_t to) {
    std::string b = ReadFile(path);
    ASSERT_LE(to, b.size()) << path;
    std::fill(b.begin() + from, b.begin() + to, '\0');
    Write(path, b);
  }
  static void Swap(const std::string& a, const std::string& b) {
    const std::string x = ReadFile(a), y = ReadFile(b);
    Write(a, y);
    Write(b, x);
  }

  // Runs one case on a fresh copy of the pristine store.
  void Run(const Case& c) {
    SCOPED_TRACE(c.name);
    ASSERT_FALSE(c.affected.empty()) << "a case that damages nothing a snapshot needs";
    const std::string store = Path("store");
    const std::string out_dir = Path("out");
    fs::remove_all(store);
    fs::remove_all(out_dir);
    fs::copy(Pristine(), store, fs::copy_options::recursive);
    fs::create_directory(out_dir);
    c.apply(store);
    ASSERT_EQ("", Exec(db_, "SELECT snapshot_config('dir', '" + store + "')"));

    const std::string all = Query(db_, "SELECT snapshot_verify()");
    EXPECT_EQ(0u, all.rfind("ERROR: ", 0)) << "snapshot_verify() missed the damage: " << all;
    for (uint64_t id = 1; id <= 4; id++) {
      const bool hit = c.affected.count(id) > 0;
      const std::string name = "snapshot " + std::to_string(id) + " (";
      // A damaged STORE makes the whole store unreadable: nothing is named.
      if (c.name.rfind("STORE", 0) != 0) {
        EXPECT_EQ(hit, all.find(name) != std::string::npos) << id << ": " << all;
      }

      const std::string one = Query(db_, "SELECT snapshot_verify(" + std::to_string(id) + ")");
      const std::string out = out_dir + "/" + std::to_string(id) + ".db";
      const std::string restored = Query(db_, "SELECT snapshot_restore_to('" + out + "', " + std::to_string(id) + ")");
      if (hit) {
        EXPECT_EQ(0u, one.rfind("ERROR: ", 0)) << "snapshot_verify(" << id << "): " << one;
        EXPECT_EQ(0u, restored.rfind("ERROR: ", 0)) << "snapshot_restore_to of " << id << ": " << restored;
        EXPECT_TRUE(fs::is_empty(out_dir)) << "a refused restore_to of " << id << " left a file";
      } else {
        EXPECT_EQ("ok", one) << "snapshot " << id << " does not depend on the damage";
        EXPECT_EQ(std::to_string(id), restored) << "snapshot " << id << " does not depend on the damage";
        EXPECT_TRUE(ReadFile(out) == images_[id]) << "snapshot " << id << " restored other bytes";
        fs::remove(out);
      }
    }
    // Restoring a damaged snapshot into the live database is refused before
    // anything is written.
    const uint64_t victim = *c.affected.begin();
    const std::string r = Query(db_, "SELECT snapshot_restore(" + std::to_string(victim) + ")");
    EXPECT_EQ(0u, r.rfind("ERROR: ", 0)) << "snapshot_restore(" << victim << "): " << r;
    EXPECT_TRUE(ReadFile(Path("app.db")) == live_) << "a refused restore changed the database";
    cases_run_++;
  }

  static TempDir* dir_;
  static sqlite3* db_;
  static std::map<uint64_t, std::string> images_;
  static std::string live_;
  static std::map<uint64_t, PackLayout> packs_;
  static std::map<uint64_t, Uses> uses_;
  static int cases_run_;
};

TempDir* Damage::dir_ = nullptr;
sqlite3* Damage::db_ = nullptr;
std::map<uint64_t, std::string> Damage::images_;
std::string Damage::live_;
std::map<uint64_t, PackLayout> Damage::packs_;
std::map<uint64_t, Uses> Damage::uses_;
int Damage::cases_run_ = 0;

const std::set<uint64_t> kAll = {1, 2, 3, 4};

TEST_F(Damage, StoreFile) {
  const uint64_t size = ReadFile(Pristine() + "/STORE").size();
  // magic, version, flags, created, name length, name, secret, checksum
  for (uint64_t at : std::vector<uint64_t>{0ull, 8ull, 12ull, 16ull, 24ull, 28ull, 40ull, 200ull, size - 8, size - 1}) {
    Run({"STORE flip at " + std::to_string(at), [=](const std::string& s) { Flip(s + "/STORE", at); }, kAll});
  }
  for (uint64_t to : std::vector<uint64_t>{0ull, 15ull, 16ull, size / 2, size - 1}) {
    Run({"STORE truncated to " + std::to_string(to), [=](const std::string& s) { Truncate(s + "/STORE", to); }, kAll});
  }
  Run({"STORE zeroed", [=](const std::string& s) { Zero(s + "/STORE", 0, size); }, kAll});
  Run({"STORE secret zeroed", [=](const std::string& s) { Zero(s + "/STORE", 40, 200); }, kAll});
  Run({"STORE missing", [](const std::string& s) { fs::remove(s + "/STORE"); }, kAll});
  // Huge (sparse) files: refused without being loaded into memory.
  Run({"STORE grown to 64 GiB", [](const std::string& s) { Truncate(s + "/STORE", 64ull << 30); }, kAll});
}

TEST_F(Damage, Manifests) {
  for (uint64_t id = 1; id <= 4; id++) {
    const std::string rel = SnapRel(id);
    const uint64_t size = ReadFile(Pristine() + "/" + rel).size();
    const uint64_t label_end = 68 + 2;  // labels are "sN"
    // magic, version, flags, id, created, page size, page count, pages_new,
    // bytes_new, commit time, label length, label, extent count, first
    // extent (first pgno, page count, pack, first index), last extent, checksum
    for (uint64_t at : std::vector<uint64_t>{0ull, 8ull, 12ull, 16ull, 24ull, 32ull, 36ull, 40ull, 48ull, 56ull, 64ull, 68ull, label_end,
                        label_end + 4, label_end + 8, label_end + 12, label_end + 20, size - 9, size - 8, size - 1}) {
      Run({"manifest " + std::to_string(id) + " flip at " + std::to_string(at),
           [=](const std::string& s) { Flip(s + "/" + rel, at); }, {id}});
    }
    for (uint64_t to : std::vector<uint64_t>{0ull, 8ull, size / 2, size - 8, size - 1}) {
      Run({"manifest " + std::to_string(id) + " truncated to " + std::to_string(to),
           [=](const std::string& s) { Truncate(s + "/" + rel, to); }, {id}});
    }
    Run({"manifest " + std::to_string(id) + " header zeroed", [=](const std::string& s) { Zero(s + "/" + rel, 8, 64); },
         {id}});
    Run({"manifest " + std::to_string(id) + " grown to 64 GiB",
         [=](const std::string& s) { Truncate(s + "/" + rel, 64ull << 30); }, {id}});
    Run({"manifest " + std::to_string(id) + " extents zeroed",
         [=](const std::string& s) { Zero(s + "/" + rel, label_end + 4, size - 8); }, {id}});
  }
}

TEST_F(Damage, Packs) {
  for (uint64_t id = 1; id <= 4; id++) {
    const std::string rel = PackRel(id);
    const PackLayout p = packs_[id];
    const std::string pack = "pack " + std::to_string(id);
    auto flip = [&](const std::string& what, uint64_t at) {
      Run({pack + " " + what + " flip at " + std::to_string(at), [=](const std::string& s) { Flip(s + "/" + rel, at); },
           UsersOfBytes(id, at, at + 1)});
    };
    auto zero = [&](const std::string& what, uint64_t from, uint64_t to) {
      Run({pack + " " + what + " zeroed [" + std::to_string(from) + ", " + std::to_string(to) + ")",
           [=](const std::string& s) { Zero(s + "/" + rel, from, to); }, UsersOfBytes(id, from, to)});
    };
    // header: magic, version, page size, pack id, checksum
    for (uint64_t at : std::vector<uint64_t>{0ull, 8ull, 12ull, 16ull, 24ull}) flip("header", at);
    zero("header", 0, snapshot::kPackHeaderSize);
    // frames: first byte, middle, last byte of each
    for (const snapshot::FrameEntry& f : p.frames) {
      for (uint64_t at : std::vector<uint64_t>{f.offset, f.offset + f.compressed_size / 2, f.offset + f.compressed_size - 1}) flip("frame", at);
      zero("frame", f.offset + f.compressed_size / 4, f.offset + f.compressed_size / 2);
    }
    // index: a frame entry's offset, size, page count, checksum; first and
    // last page hash
    const uint64_t hashes = p.index_offset + p.frames.size() * snapshot::kFrameEntrySize;
    for (uint64_t at : std::vector<uint64_t>{p.index_offset, p.index_offset + 8, p.index_offset + 12, p.index_offset + 16, hashes,
                        p.size - snapshot::kPackFooterSize - 1}) {
      flip("index", at);
    }
    zero("index", p.index_offset, p.size - snapshot::kPackFooterSize);
    // footer: index offset, frame count, page count, index checksum, footer
    // checksum, end magic
    const uint64_t footer = p.size - snapshot::kPackFooterSize;
    for (uint64_t at : std::vector<uint64_t>{footer, footer + 8, footer + 12, footer + 16, footer + 24, footer + 32, p.size - 1}) {
      flip("footer", at);
    }
    zero("footer", footer, p.size);
    for (uint64_t to : std::vector<uint64_t>{0ull, 31ull, 72ull, p.frames[0].offset + 10, p.index_offset, footer, p.size - 1}) {
      Run({pack + " truncated to " + std::to_string(to), [=](const std::string& s) { Truncate(s + "/" + rel, to); },
           UsersOfPack(id)});
    }
    Run({pack + " grown to 64 GiB", [=](const std::string& s) { Truncate(s + "/" + rel, 64ull << 30); },
         UsersOfPack(id)});
    Run({pack + " appended to", [=](const std::string& s) { Write(s + "/" + rel, ReadFile(s + "/" + rel) + "x"); },
         UsersOfPack(id)});
    Run({pack + " missing", [=](const std::string& s) { fs::remove(s + "/" + rel); }, UsersOfPack(id)});
  }
}

TEST_F(Damage, SwappedFiles) {
  auto both = [](std::set<uint64_t> a, const std::set<uint64_t>& b) {
    a.insert(b.begin(), b.end());
    return a;
  };
  for (auto [a, b] : {std::pair<uint64_t, uint64_t>{1, 2}, {2, 3}, {3, 4}, {1, 4}}) {
    Run({"manifests " + std::to_string(a) + " and " + std::to_string(b) + " swapped",
         [=](const std::string& s) { Swap(s + "/" + SnapRel(a), s + "/" + SnapRel(b)); }, {a, b}});
    Run({"packs " + std::to_string(a) + " and " + std::to_string(b) + " swapped",
         [=](const std::string& s) { Swap(s + "/" + PackRel(a), s + "/" + PackRel(b)); },
         both(UsersOfPack(a), UsersOfPack(b))});
    // One file of a kind put in the place of another (a copy, not a swap).
    Run({"pack " + std::to_string(a) + " replaced by pack " + std::to_string(b),
         [=](const std::string& s) { fs::copy_file(s + "/" + PackRel(b), s + "/" + PackRel(a), fs::copy_options::overwrite_existing); },
         UsersOfPack(a)});
    Run({"manifest " + std::to_string(b) + " replaced by manifest " + std::to_string(a),
         [=](const std::string& s) { fs::copy_file(s + "/" + SnapRel(a), s + "/" + SnapRel(b), fs::copy_options::overwrite_existing); },
         {b}});
  }
}

// An old copy of a file: the manifest as it was before a prune compacted
// the pack it referred to (so it names a pack that no longer exists).
// Packs are never rewritten, so an old copy of one is the file itself.
TEST_F(Damage, OldCopyOfARewrittenManifest) {
  const std::string dir = Path("old");
  sqlite3* db = nullptr;
  ASSERT_NO_FATAL_FAILURE(NewDatabase(dir, &db));
  ASSERT_EQ(1, QueryInt(db, "SELECT snapshot_backup()"));
  ASSERT_EQ("", Exec(db, "UPDATE t SET v = printf('%0400d', id * 13) WHERE id > 300"));
  ASSERT_EQ(2, QueryInt(db, "SELECT snapshot_backup()"));
  const std::string image = ReadFile(dir + "/app.db");
  const std::string store = dir + "/app.db-snapshots";
  const std::string manifest = store + "/" + SnapRel(2);
  const std::string before_prune = ReadFile(manifest);
  // Snapshot 1 goes; most of pack 1 with it, so its remaining pages are
  // copied into a new pack and manifest 2 is rewritten to point there.
  ASSERT_EQ(1, QueryInt(db, "SELECT snapshot_prune(1)"));
  ASSERT_FALSE(fs::exists(store + "/" + PackRel(1))) << "prune did not compact pack 1";
  ASSERT_NE(before_prune, ReadFile(manifest));
  ASSERT_EQ("ok", Query(db, "SELECT snapshot_verify()"));

  Write(manifest, before_prune);
  const std::string all = Query(db, "SELECT snapshot_verify()");
  EXPECT_EQ(0u, all.rfind("ERROR: ", 0)) << all;
  EXPECT_NE(std::string::npos, all.find("snapshot 2 (")) << all;
  const std::string out = dir + "/out.db";
  const std::string restored = Query(db, "SELECT snapshot_restore_to('" + out + "', 2)");
  EXPECT_EQ(0u, restored.rfind("ERROR: ", 0)) << restored;
  EXPECT_FALSE(fs::exists(out));
  const std::string live = ReadFile(dir + "/app.db");
  EXPECT_EQ(0u, Query(db, "SELECT snapshot_restore(2)").rfind("ERROR: ", 0));
  EXPECT_TRUE(ReadFile(dir + "/app.db") == live);
  EXPECT_TRUE(live == image);
  sqlite3_close(db);
  cases_run_++;
}

// An old copy of a pack whose snapshot was taken back (as a failed restore
// takes back its pre-restore snapshot). The pack stays in the store and its
// id is never allocated again, so the old copy is the file itself: there is
// nothing to detect, and every snapshot still verifies and restores exactly.
// (Were the id allocated again, the copy would replace a later snapshot's
// pack, whose pages it would then return.) Not damage, so not counted.
TEST_F(Damage, OldCopyOfAPackWhoseSnapshotWasTakenBack) {
  const std::string dir = Path("taken-back");
  sqlite3* db = nullptr;
  ASSERT_NO_FATAL_FAILURE(NewDatabase(dir, &db));
  ASSERT_EQ(1, QueryInt(db, "SELECT snapshot_backup()"));
  const std::string image1 = ReadFile(dir + "/app.db");
  ASSERT_EQ("", Exec(db, "UPDATE t SET v = printf('%0400d', id * 13) WHERE id <= 300"));
  ASSERT_EQ(2, QueryInt(db, "SELECT snapshot_backup('pre-restore')"));
  const std::string store = dir + "/app.db-snapshots";
  const std::string old_pack = ReadFile(store + "/" + PackRel(2));
  {
    snapshot::StoreOptions o;
    o.dir = store;
    o.db_name = "app.db";
    o.exclusive = true;
    std::unique_ptr<snapshot::Store> s;
    snapshot::Status st = snapshot::Store::Open(o, &s);
    ASSERT_TRUE(st.ok()) << st.message();
    st = s->Discard(2);
    ASSERT_TRUE(st.ok()) << st.message();
  }
  ASSERT_EQ("", Exec(db, "UPDATE t SET v = printf('%0400d', id * 17) WHERE id <= 300"));
  EXPECT_EQ(3, QueryInt(db, "SELECT snapshot_backup()")) << "the id taken back was allocated again";
  const uint64_t latest = uint64_t(QueryInt(db, "SELECT max(id) FROM snapshot_list"));
  const std::string image_latest = ReadFile(dir + "/app.db");

  Write(store + "/" + PackRel(2), old_pack);
  EXPECT_EQ("ok", Query(db, "SELECT snapshot_verify()"));
  for (const auto& [id, image] : {std::pair<uint64_t, std::string>{1, image1}, {latest, image_latest}}) {
    const std::string out = dir + "/out" + std::to_string(id) + ".db";
    EXPECT_EQ(std::to_string(id), Query(db, "SELECT snapshot_restore_to('" + out + "', " + std::to_string(id) + ")"));
    EXPECT_TRUE(ReadFile(out) == image) << "snapshot " << id << " restored other bytes";
  }
  sqlite3_close(db);
}

// A hostile manifest is valid but claims billions of pages, all zero (pack
// 0: nothing stored, so nothing bounds their number but the 32-bit count).
// A prune that compacts a pack such a snapshot uses must rewrite its page
// map at the cost of its extents, not of its page count (a per-page map of
// 2^32 pages is 64 GiB).
TEST(DamageStore, PruneRewritesAHugeZeroExtentWithoutAPerPageMap) {
  TempDir dir;
  snapshot::StoreOptions o;
  o.dir = dir / "store";
  o.db_name = "app.db";
  o.create_if_missing = true;
  o.exclusive = true;
  o.compress.threads = 0;
  std::unique_ptr<snapshot::Store> store;
  ASSERT_TRUE(snapshot::Store::Open(o, &store).ok());
  constexpr uint32_t kPage = 512, kPages = 8;
  snapshot::Manifest base;
  for (int version = 0; version < 2; version++) {
    std::unique_ptr<snapshot::SnapshotBuilder> b;
    ASSERT_TRUE(store->NewSnapshot(kPage, kPages, nullptr, &b).ok());
    for (uint32_t pgno = 1; pgno <= kPages; pgno++) {
      // Version 1 changes every page but the first: pack 1 is then mostly
      // unused once snapshot 1 is pruned, and is compacted.
      const std::string page(kPage, char(pgno == 1 ? 1 : pgno + 16 * version));
      ASSERT_TRUE(b->AddPage(pgno, reinterpret_cast<const uint8_t*>(page.data())).ok());
    }
    uint64_t id;
    ASSERT_TRUE(b->Commit("", &id).ok());
  }
  snapshot::Manifest m;
  ASSERT_TRUE(store->ReadManifest(2, &m).ok());
  const uint32_t extra = UINT32_MAX - kPages;
  m.extents.push_back(snapshot::Extent{kPages + 1, extra, 0, 0});
  m.info.page_count = UINT32_MAX;
  Write(o.dir + "/" + SnapRel(2), m.Encode());

  snapshot::PruneResult pruned;
  const snapshot::Status s = store->Prune(1, -1, &pruned);
  ASSERT_TRUE(s.ok()) << s.message();
  ASSERT_FALSE(fs::exists(o.dir + "/" + PackRel(1))) << "pack 1 was not compacted";
  snapshot::Manifest after;
  ASSERT_TRUE(store->ReadManifest(2, &after).ok());
  EXPECT_EQ(UINT32_MAX, after.info.page_count);
  snapshot::PageRef ref;
  ASSERT_TRUE(after.Lookup(1, &ref));
  EXPECT_NE(1u, ref.pack) << "page 1 still refers to the removed pack";
  ASSERT_TRUE(after.Lookup(UINT32_MAX, &ref));
  EXPECT_EQ(0u, ref.pack);
  std::unique_ptr<snapshot::SnapshotImage> image;
  ASSERT_TRUE(store->OpenImage(2, &image).ok());
  std::string page(kPage, '\0');
  for (uint32_t pgno = 1; pgno <= kPages; pgno++) {
    ASSERT_TRUE(image->ReadPage(pgno, reinterpret_cast<uint8_t*>(&page[0])).ok());
    EXPECT_EQ(std::string(kPage, char(pgno == 1 ? 1 : pgno + 16)), page) << pgno;
  }
}

}  // namespace
}  // namespace snapshot_test
