// Compaction: many snapshots of small changes fold into a few files, every
// snapshot keeps its id and reads back byte for byte, readers that opened a
// snapshot before keep reading it, and a compaction or prune that fails or
// crashes at any step leaves every snapshot whole.

#include <map>
#include <random>
#include <string>
#include <vector>

#include "store/bundle.h"
#include "store/pack.h"
#include "store/snapshot_reader.h"
#include "tests/crash_env.h"
#include "tests/store/fault_env.h"
#include "tests/store/store_test_util.h"

namespace store_test {
namespace {

constexpr uint32_t kPageSize = 4096;

using Limits = StoreOptions::CompactionLimits;

StoreOptions CompactingOptions(const std::string& dir, size_t threshold, Env* env = Env::Default(),
                               const Limits& limits = Limits()) {
  StoreOptions o = Options(dir, true, env);
  o.compaction_file_threshold = threshold;
  o.compaction_limits = limits;
  return o;
}

// Limits small enough that compacting a test's store takes several rounds
// of folds and merges (copying the newest snapshot's pages has tests of
// its own: here it would only multiply the steps).
Limits SmallRounds() {
  Limits l;
  l.max_records = 3;
  l.max_packs = 2;
  l.max_copied_pages = 0;
  return l;
}

// Snapshots of a small database changed a little each time, taken the way a
// tracked backup takes them (on the previous snapshot, only changed pages).
// Returns each snapshot's image by id. With `compact`, runs a compaction
// round after each when the store needs one, as the SQL functions do.
std::map<uint64_t, Image> TakeSmallChanges(Store* store, Image* img, int n, uint32_t seed, bool compact = false) {
  std::map<uint64_t, Image> out;
  std::mt19937 rng(seed);
  Manifest base;
  bool have_base = false;
  uint64_t id = 0;
  if (!ListIds(store).empty()) {
    have_base = store->LatestId(&id).ok() && store->ReadManifest(id, &base).ok();
  }
  for (int i = 0; i < n; i++) {
    std::vector<uint32_t> changed = {1, 2 + uint32_t(rng() % (img->pages.size() - 1))};
    const uint32_t version = seed * 100000 + uint32_t(i) + 2;
    for (uint32_t p : changed) img->pages[p - 1] = TextPage(kPageSize, p, version);
    Status s = Snap(store, *img, "auto", &id, have_base ? &base : nullptr, have_base ? &changed : nullptr);
    EXPECT_TRUE(s.ok()) << Describe(s);
    if (!s.ok()) return out;
    out[id] = *img;
    if (compact) {
      bool more = false;
      EXPECT_OK(store->CompactIfNeeded(&more));
    }
    EXPECT_OK(store->ReadManifest(id, &base));
    have_base = true;
  }
  return out;
}

size_t FilesIn(const std::string& dir) {
  return FilesUnder(dir + "/snapshots").size() + FilesUnder(dir + "/packs").size();
}

// Every snapshot in `want` is listed with its id and reads back exactly,
// nothing else is listed, and the store verifies.
void CheckAll(Store* store, const std::map<uint64_t, Image>& want, const std::string& context) {
  SCOPED_TRACE(context);
  std::vector<uint64_t> ids;
  for (const auto& [id, img] : want) ids.push_back(id);
  EXPECT_EQ(ids, ListIds(store));
  for (const auto& [id, img] : want) EXPECT_TRUE(ReadsBack(store, id, img)) << "snapshot " << id;
  Status v = store->Verify(0);
  EXPECT_TRUE(v.ok()) << Describe(v);
}

TEST(StoreCompaction, ManySmallSnapshotsFoldIntoFewFilesAndReadBack) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  auto store = OpenOrDie(CompactingOptions(dir, 12));
  ASSERT_NE(store, nullptr);
  Image img = MakeImage(kPageSize, 40, 1);
  uint64_t first = 0;
  ASSERT_OK(Snap(store.get(), img, "full", &first));
  std::map<uint64_t, Image> want = {{first, img}};
  std::map<uint64_t, SnapshotInfo> infos;
  for (const auto& [id, im] : TakeSmallChanges(store.get(), &img, 80, 1, /*compact=*/true)) want[id] = im;
  for (const SnapshotInfo& i : [&] { std::vector<SnapshotInfo> v; EXPECT_OK(store->List(&v)); return v; }()) {
    infos[i.id] = i;
  }
  // Without compaction: 161 files.
  EXPECT_LE(FilesIn(dir), 12u + 2u) << ::testing::PrintToString(FilesUnder(dir));
  EXPECT_FALSE(FilesUnder(dir + "/snapshots", snapshot::kBundleSuffix).empty());
  CheckAll(store.get(), want, "writer");
  store.reset();
  auto reader = OpenOrDie(Options(dir, false));
  ASSERT_NE(reader, nullptr);
  CheckAll(reader.get(), want, "reader");
  // A bundled snapshot lists as it did when it was loose: same label, times, sizes.
  std::vector<SnapshotInfo> listed;
  ASSERT_OK(reader->List(&listed));
  for (const SnapshotInfo& i : listed) {
    const SnapshotInfo& was = infos[i.id];
    EXPECT_EQ(was.created_ms, i.created_ms);
    EXPECT_EQ(was.label, i.label);
    EXPECT_EQ(was.page_count, i.page_count);
    EXPECT_EQ(was.pages_new, i.pages_new);
    EXPECT_EQ(was.bytes_new, i.bytes_new);
  }
}

// Publishing a snapshot never compacts, whatever the store holds: a
// snapshot must not wait for a compaction (one once held the store for 37
// s). The rounds its callers run afterwards fold the store.
TEST(StoreCompaction, CommittingASnapshotNeverCompacts) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  auto store = OpenOrDie(CompactingOptions(dir, 6));
  ASSERT_NE(store, nullptr);
  Image img = MakeImage(kPageSize, 20, 1);
  uint64_t first = 0;
  ASSERT_OK(Snap(store.get(), img, "full", &first));
  std::map<uint64_t, Image> want = {{first, img}};
  for (const auto& [id, im] : TakeSmallChanges(store.get(), &img, 20, 8)) want[id] = im;
  EXPECT_EQ(2u * want.size(), FilesIn(dir)) << "a pack and a manifest per snapshot, nothing folded";
  EXPECT_TRUE(FilesUnder(dir + "/snapshots", snapshot::kBundleSuffix).empty());
  int rounds = 0;
  for (bool more = true; more; rounds++) {
    ASSERT_LT(rounds, 20) << "the rounds never end";
    ASSERT_OK(store->CompactIfNeeded(&more));
  }
  EXPECT_LE(FilesIn(dir), 6u + 2u);
  CheckAll(store.get(), want, "compacted");
}

// One round rewrites at most what the limits allow: so many manifests
// (folded or rewritten), so many packs merged. Rounds run until none has
// work leave every snapshot as it was, in few files.
TEST(StoreCompaction, ARoundRewritesNoMoreThanItsLimits) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  Limits limits;
  limits.max_records = 5;
  limits.max_packs = 3;
  auto store = OpenOrDie(CompactingOptions(dir, 0, Env::Default(), limits));
  ASSERT_NE(store, nullptr);
  Image img = MakeImage(kPageSize, 30, 1);
  uint64_t first = 0;
  ASSERT_OK(Snap(store.get(), img, "full", &first));
  std::map<uint64_t, Image> want = {{first, img}};
  for (const auto& [id, im] : TakeSmallChanges(store.get(), &img, 30, 9)) want[id] = im;
  int rounds = 0;
  for (bool did = true; did; rounds++) {
    ASSERT_LT(rounds, 100) << "the rounds never end";
    const size_t loose = FilesUnder(dir + "/snapshots", snapshot::kManifestSuffix).size();
    const size_t packs = PackIdsOnDisk(dir).size();
    ASSERT_OK(store->CompactRound(&did));
    EXPECT_GE(FilesUnder(dir + "/snapshots", snapshot::kManifestSuffix).size() + limits.max_records, loose)
        << "round " << rounds << " folded more manifests than its limit";
    EXPECT_GE(PackIdsOnDisk(dir).size() + limits.max_packs - 1, packs)
        << "round " << rounds << " merged more packs than its limit";
    // No bundle ever holds more records than a round may rewrite.
    for (const std::string& name : FilesUnder(dir + "/snapshots", snapshot::kBundleSuffix)) {
      uint64_t bid = 0;
      ASSERT_TRUE(snapshot::ParseFileId(name, snapshot::kBundleSuffix, &bid)) << name;
      std::unique_ptr<snapshot::BundleReader> r;
      ASSERT_OK(snapshot::BundleReader::Open(Env::Default(), dir + "/snapshots/" + name, bid, &r));
      EXPECT_LE(r->records().size(), limits.max_records) << name;
    }
  }
  EXPECT_GT(rounds, 3) << "the limits did not split the work";
  // Every manifest folded but the newest two; fewer files than the 62 of
  // no compaction (bundles of at most 5 records, packs whose merge would
  // rewrite more than 5 manifests left as they are).
  EXPECT_EQ(2u, FilesUnder(dir + "/snapshots", snapshot::kManifestSuffix).size());
  EXPECT_LT(FilesIn(dir), 2u * want.size());
  CheckAll(store.get(), want, "after the rounds");
}

// The same bound in bytes: a large database's manifests are hundreds of
// KB each (about 14 bytes a page when its changes are scattered), and a
// round that folded 4096 of them held the store's lock for seconds.
TEST(StoreCompaction, ARoundRewritesNoMoreManifestBytesThanItsLimit) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  Image img = MakeImage(kPageSize, 30, 1);
  std::map<uint64_t, Image> want;
  uint64_t largest = 0;  // manifest, in bytes
  {
    auto plain = OpenOrDie(CompactingOptions(dir, 0));
    ASSERT_NE(plain, nullptr);
    uint64_t first = 0;
    ASSERT_OK(Snap(plain.get(), img, "full", &first));
    want[first] = img;
    for (const auto& [id, im] : TakeSmallChanges(plain.get(), &img, 30, 9)) want[id] = im;
    for (const auto& [id, im] : want) largest = std::max<uint64_t>(largest, FileSize(ManifestFile(dir, id)));
  }
  Limits limits;
  limits.max_record_bytes = 4 * largest;  // four records at least, whatever their count limit
  auto store = OpenOrDie(CompactingOptions(dir, 0, Env::Default(), limits));
  ASSERT_NE(store, nullptr);
  int rounds = 0;
  for (bool did = true; did; rounds++) {
    ASSERT_LT(rounds, 100) << "the rounds never end";
    ASSERT_OK(store->CompactRound(&did));
    for (const std::string& name : FilesUnder(dir + "/snapshots", snapshot::kBundleSuffix)) {
      uint64_t bid = 0;
      ASSERT_TRUE(snapshot::ParseFileId(name, snapshot::kBundleSuffix, &bid)) << name;
      std::unique_ptr<snapshot::BundleReader> r;
      ASSERT_OK(snapshot::BundleReader::Open(Env::Default(), dir + "/snapshots/" + name, bid, &r));
      uint64_t bytes = 0;
      for (const snapshot::BundleRecord& rec : r->records()) bytes += rec.length;
      EXPECT_LE(bytes, limits.max_record_bytes) << name << " after round " << rounds;
      EXPECT_GE(r->records().size(), 1u);
    }
  }
  EXPECT_GT(rounds, 3) << "the limit did not split the work";
  EXPECT_EQ(2u, FilesUnder(dir + "/snapshots", snapshot::kManifestSuffix).size()) << "every manifest folded but two";
  CheckAll(store.get(), want, "after the rounds");
}

// A store that compaction has folded takes prunes, more snapshots and
// compactions again, and every kept snapshot still reads back.
TEST(StoreCompaction, PruneDeletesBundledSnapshotsAndReclaimsTheirPages) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  auto store = OpenOrDie(CompactingOptions(dir, 10));
  ASSERT_NE(store, nullptr);
  Image img = MakeImage(kPageSize, 30, 1);
  uint64_t first = 0;
  ASSERT_OK(Snap(store.get(), img, "full", &first));
  std::map<uint64_t, Image> want = TakeSmallChanges(store.get(), &img, 30, 2);
  uint64_t before = 0, after = 0;
  ASSERT_OK(store->StoredBytes(&before));
  PruneResult pr;
  ASSERT_OK(store->Prune(10, -1, &pr));
  EXPECT_EQ(21u, pr.deleted.size());
  while (want.size() > 10) want.erase(want.begin());
  CheckAll(store.get(), want, "after prune");
  ASSERT_OK(store->StoredBytes(&after));
  EXPECT_LT(after, before);
  EXPECT_GT(pr.bytes_reclaimed, 0u);
  for (const auto& [id, im] : TakeSmallChanges(store.get(), &img, 15, 3)) want[id] = im;
  CheckAll(store.get(), want, "after more snapshots");
}

// An attached snapshot opened before a compaction keeps reading every page
// while its manifest is bundled and its packs are merged away.
TEST(StoreCompaction, OpenReaderSurvivesItsPacksBeingMerged) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  auto store = OpenOrDie(CompactingOptions(dir, 0));
  ASSERT_NE(store, nullptr);
  Image img = MakeImage(kPageSize, 30, 1);
  std::map<uint64_t, Image> want = TakeSmallChanges(store.get(), &img, 1, 4);
  for (const auto& [id, im] : TakeSmallChanges(store.get(), &img, 10, 5)) want[id] = im;
  const uint64_t attached = std::next(want.begin(), 3)->first;
  snapshot::SnapshotReaderOptions ro;
  ro.store_dir = dir;
  ro.db_name = "app.db";
  ro.snapshot = snapshot::SnapshotSpec::Id(attached);
  std::unique_ptr<snapshot::SnapshotReader> reader;
  store.reset();  // the reader needs the shared lock to open
  ASSERT_OK(snapshot::SnapshotReader::Open(ro, &reader));
  const std::set<uint64_t> packs_before = PackIdsOnDisk(dir);
  store = OpenOrDie(CompactingOptions(dir, 0));
  ASSERT_NE(store, nullptr);
  ASSERT_OK(store->Compact());
  const std::set<uint64_t> packs_after = PackIdsOnDisk(dir);
  EXPECT_LT(packs_after.size(), packs_before.size()) << "nothing was merged";
  EXPECT_FALSE(FilesUnder(dir + "/snapshots", snapshot::kBundleSuffix).empty());
  std::string page(kPageSize, '\0');
  const Image& w = want[attached];
  for (uint32_t p = 1; p <= w.pages.size(); p++) {
    ASSERT_OK(reader->ReadPage(p, reinterpret_cast<uint8_t*>(&page[0])));
    EXPECT_EQ(w.pages[p - 1], page) << "page " << p;
  }
  CheckAll(store.get(), want, "after compaction");
}

// After a failure or crash (FaultEnv sticky) at each file-system step of
// `op`: every snapshot in `want` is listed and reads back exactly, nothing
// else is, the next exclusive open clears debris, and running `op` again
// finishes the job.
void FailAtEveryStep(const std::string& golden, const std::map<uint64_t, Image>& want,
                     const std::map<uint64_t, Image>& may_go, const std::function<Status(Store*)>& op,
                     const std::function<void(const std::string& dir)>& check_done, int min_steps,
                     const Limits& limits = Limits()) {
  TempDir tmp;
  for (bool sticky : {false, true}) {
    int k = 1;
    for (;; k++) {
      ASSERT_LT(k, 1000) << "the operation never succeeds";
      const std::string context = std::string(sticky ? "crash" : "single failure") + " at op " + std::to_string(k);
      SCOPED_TRACE(context);
      const std::string dir = tmp / ("w-" + std::to_string(sticky) + "-" + std::to_string(k));
      CopyDir(golden, dir);
      FaultEnv env;
      Status s;
      {
        auto store = OpenOrDie(CompactingOptions(dir, 0, &env, limits));
        ASSERT_NE(store, nullptr);
        env.Arm(k, sticky);
        s = op(store.get());
      }
      env.Disarm();
      if (s.ok()) {
        EXPECT_FALSE(env.fired()) << "succeeded although " << env.first_fault() << " failed";
        check_done(dir);
        break;
      }
      EXPECT_TRUE(env.fired()) << Describe(s);
      EXPECT_NE(std::string::npos, s.message().find("injected fault")) << Describe(s);
      {
        auto reader = OpenOrDie(Options(dir, false));
        ASSERT_NE(reader, nullptr);
        const std::vector<uint64_t> ids = ListIds(reader.get());
        for (const auto& [id, img] : want) {
          EXPECT_TRUE(std::count(ids.begin(), ids.end(), id)) << "snapshot " << id << " is no longer listed";
          EXPECT_TRUE(ReadsBack(reader.get(), id, img)) << env.first_fault();
        }
        for (uint64_t id : ids) {
          if (want.count(id)) continue;
          auto it = may_go.find(id);
          if (it == may_go.end()) {
            ADD_FAILURE() << "snapshot " << id << " appeared";
          } else {
            EXPECT_TRUE(ReadsBack(reader.get(), id, it->second));
          }
        }
        Status v = reader->Verify(0);
        EXPECT_TRUE(v.ok()) << Describe(v) << " after " << env.first_fault();
      }
      {
        auto store = OpenOrDie(CompactingOptions(dir, 0, Env::Default(), limits));
        ASSERT_NE(store, nullptr);
        EXPECT_TRUE(FilesUnder(dir, snapshot::kTempSuffix).empty());
        ASSERT_OK(op(store.get()));
      }
      check_done(dir);
      fs::remove_all(dir);
      if (::testing::Test::HasFatalFailure()) return;
    }
    EXPECT_GE(k, min_steps) << (sticky ? "crash" : "single failure");
  }
}

// A golden store: a full snapshot, then small changes; compacted once part
// way (so it holds bundles and merged packs), then more loose snapshots.
void MakeGolden(const std::string& dir, std::map<uint64_t, Image>* want) {
  auto store = OpenOrDie(CompactingOptions(dir, 0));
  ASSERT_NE(store, nullptr);
  Image img = MakeImage(kPageSize, 24, 1);
  uint64_t first = 0;
  ASSERT_OK(Snap(store.get(), img, "full", &first));
  (*want)[first] = img;
  for (const auto& [id, im] : TakeSmallChanges(store.get(), &img, 4, 6)) (*want)[id] = im;
  ASSERT_OK(store->Compact());
  for (const auto& [id, im] : TakeSmallChanges(store.get(), &img, 4, 7)) (*want)[id] = im;
}

TEST(StoreCompaction, CompactionInterruptedAtEveryStep) {
  TempDir tmp;
  const std::string golden = tmp / "golden";
  std::map<uint64_t, Image> want;
  MakeGolden(golden, &want);
  ASSERT_FALSE(HasFatalFailure());
  // What the same compaction leaves when nothing goes wrong.
  const std::string clean = tmp / "clean";
  CopyDir(golden, clean);
  {
    auto store = OpenOrDie(CompactingOptions(clean, 0));
    ASSERT_NE(store, nullptr);
    ASSERT_OK(store->Compact());
  }
  const size_t files_clean = FilesIn(clean);
  ASSERT_LT(files_clean, FilesIn(golden));
  FailAtEveryStep(
      golden, want, {}, [](Store* s) { return s->Compact(); },
      [&](const std::string& dir) {
        auto reader = OpenOrDie(Options(dir, false));
        ASSERT_NE(reader, nullptr);
        CheckAll(reader.get(), want, "compacted");
        // At most an interrupted run's new pack more, kept for its id.
        EXPECT_LE(FilesIn(dir), files_clean + 1);
      },
      30);
}

// The same in small rounds: a failure or crash in any round, the first
// or a later one, leaves every snapshot whole.
TEST(StoreCompaction, CompactionInRoundsInterruptedAtEveryStep) {
  TempDir tmp;
  const std::string golden = tmp / "golden";
  std::map<uint64_t, Image> want;
  MakeGolden(golden, &want);
  ASSERT_FALSE(HasFatalFailure());
  const std::string clean = tmp / "clean";
  CopyDir(golden, clean);
  int rounds = 0;
  {
    auto store = OpenOrDie(CompactingOptions(clean, 0, Env::Default(), SmallRounds()));
    ASSERT_NE(store, nullptr);
    for (bool did = true; did; rounds++) ASSERT_OK(store->CompactRound(&did));
  }
  ASSERT_GE(rounds, 3) << "one round did it all: the test would not cover a crash between rounds";
  const size_t files_clean = FilesIn(clean);
  FailAtEveryStep(
      golden, want, {}, [](Store* s) { return s->Compact(); },
      [&](const std::string& dir) {
        auto reader = OpenOrDie(Options(dir, false));
        ASSERT_NE(reader, nullptr);
        CheckAll(reader.get(), want, "compacted");
        EXPECT_LE(FilesIn(dir), files_clean + 1);
      },
      30, SmallRounds());
}

// What restoring the newest snapshot decodes: the pages it stores, and the
// pages of every frame holding one of them.
struct NewestLayout {
  uint64_t needed = 0;
  uint64_t held = 0;
  uint64_t sparse_frames = 0;  // frames of which it needs fewer than half the pages
};

NewestLayout LayoutOfNewest(Store* store, const std::string& dir) {
  NewestLayout out;
  uint64_t id = 0;
  Manifest m;
  EXPECT_OK(store->LatestId(&id));
  EXPECT_OK(store->ReadManifest(id, &m));
  std::map<uint64_t, std::unique_ptr<snapshot::PackReader>> packs;
  std::map<std::pair<uint64_t, uint32_t>, uint32_t> needed;  // (pack, frame) -> pages
  for (const Extent& e : m.extents) {
    if (e.pack == 0) continue;
    std::unique_ptr<snapshot::PackReader>& r = packs[e.pack];
    if (r == nullptr) EXPECT_OK(snapshot::PackReader::Open(Env::Default(), PackFile(dir, e.pack), e.pack, nullptr, &r));
    if (r == nullptr) return out;
    for (uint32_t i = 0; i < e.page_count; i++) needed[{e.pack, r->FrameOf(e.first_index + i)}]++;
    out.needed += e.page_count;
  }
  for (const auto& [where, n] : needed) {
    const uint32_t pages = packs[where.first]->frames()[where.second].page_count;
    out.held += pages;
    if (2 * n < pages) out.sparse_frames++;
  }
  return out;
}

// A store whose newest snapshot's pages sit in sparse frames: a full
// snapshot in frames of 8 pages, then small changes, each a pack of its
// own, until most of the full snapshot's pages are superseded. Returns the
// full snapshot's pack's size.
uint64_t MakeScattered(const std::string& dir, std::map<uint64_t, Image>* want, uint32_t pages, int changes) {
  StoreOptions o = CompactingOptions(dir, 0);
  o.compress.frame_bytes = 8 * kPageSize;
  auto store = OpenOrDie(o);
  EXPECT_NE(store, nullptr);
  if (store == nullptr) return 0;
  Image img = MakeImage(kPageSize, pages, 1);
  uint64_t first = 0;
  EXPECT_OK(Snap(store.get(), img, "full", &first));
  (*want)[first] = img;
  for (const auto& [id, im] : TakeSmallChanges(store.get(), &img, changes, 11)) (*want)[id] = im;
  return FileSize(PackFile(dir, first));
}

// Limits under which the full snapshot's pack of MakeScattered is never
// merged (as a real store's packs over 4 MiB are not): only copying can
// make the newest snapshot's frames dense.
Limits FullPackNeverMerged(uint64_t full_pack_bytes) {
  Limits l;
  l.max_pack_bytes = full_pack_bytes - 1;
  return l;
}

// Restoring the newest snapshot decodes about the pages it needs, however
// long ago each was last changed: compaction copies its pages out of frames
// that hold mostly pages it does not need. Older snapshots keep reading
// theirs, and once they are pruned the copies leave nothing stored twice.
TEST(StoreCompaction, NewestSnapshotsPagesAreCopiedOutOfSparseFrames) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  std::map<uint64_t, Image> want;
  const uint64_t full_pack = MakeScattered(dir, &want, 48, 60);
  ASSERT_FALSE(HasFatalFailure());
  auto store = OpenOrDie(CompactingOptions(dir, 0, Env::Default(), FullPackNeverMerged(full_pack)));
  ASSERT_NE(store, nullptr);
  const NewestLayout before = LayoutOfNewest(store.get(), dir);
  ASSERT_GT(before.held * 4, before.needed * 5) << "the test's store is not scattered";
  ASSERT_GE(before.sparse_frames, 3u);
  int rounds = 0;
  for (bool did = true; did; rounds++) {
    ASSERT_LT(rounds, 100) << "the rounds never end";
    ASSERT_OK(store->CompactRound(&did));
  }
  const NewestLayout after = LayoutOfNewest(store.get(), dir);
  EXPECT_EQ(before.needed, after.needed);
  // Dense (within 9/8), or no frame left of which it needs under half.
  EXPECT_TRUE(after.held * 8 <= after.needed * 9 || after.sparse_frames == 0)
      << after.held << " pages decoded for " << after.needed << ", " << after.sparse_frames << " sparse frames";
  EXPECT_LT(after.held * 4, before.held * 3);
  CheckAll(store.get(), want, "compacted");

  // Only the newest is left: every page stored is one it needs, but for the
  // quarter of a pack prune leaves unrewritten.
  PruneResult pr;
  ASSERT_OK(store->Prune(1, -1, &pr));
  want.erase(want.begin(), std::prev(want.end()));
  CheckAll(store.get(), want, "pruned");
  uint64_t stored_pages = 0;
  for (uint64_t pack : PackIdsOnDisk(dir)) {
    std::unique_ptr<snapshot::PackReader> r;
    ASSERT_OK(snapshot::PackReader::Open(Env::Default(), PackFile(dir, pack), pack, nullptr, &r));
    stored_pages += r->page_count();
  }
  EXPECT_LE(stored_pages * 3, after.needed * 4);
}

// Copying the newest snapshot's pages, interrupted at every step: every
// snapshot stays whole, and running again finishes the job.
TEST(StoreCompaction, CopyingTheNewestsPagesInterruptedAtEveryStep) {
  TempDir tmp;
  const std::string golden = tmp / "golden";
  std::map<uint64_t, Image> want;
  const uint64_t full_pack = MakeScattered(golden, &want, 16, 14);
  ASSERT_FALSE(HasFatalFailure());
  {
    auto store = OpenOrDie(Options(golden, false));
    ASSERT_NE(store, nullptr);
    const NewestLayout l = LayoutOfNewest(store.get(), golden);
    ASSERT_GE(l.sparse_frames, 2u) << "the test's store is not scattered";
    ASSERT_GT(l.held * 8, l.needed * 9) << "the test's store is not scattered";
  }
  FailAtEveryStep(
      golden, want, {}, [](Store* s) { return s->Compact(); },
      [&](const std::string& dir) {
        auto reader = OpenOrDie(Options(dir, false));
        ASSERT_NE(reader, nullptr);
        CheckAll(reader.get(), want, "compacted");
        const NewestLayout l = LayoutOfNewest(reader.get(), dir);
        EXPECT_TRUE(l.held * 8 <= l.needed * 9 || l.sparse_frames == 0) << l.held << " pages for " << l.needed;
      },
      10, FullPackNeverMerged(full_pack));
}

// Bundle files of `dir`, by id.
std::map<uint64_t, std::string> BundlesIn(const std::string& dir) {
  std::map<uint64_t, std::string> out;
  for (const std::string& name : FilesUnder(dir + "/snapshots", snapshot::kBundleSuffix)) {
    uint64_t id = 0;
    if (snapshot::ParseFileId(name, snapshot::kBundleSuffix, &id)) out[id] = dir + "/snapshots/" + name;
  }
  return out;
}

// A bundle lists exactly the packs its records name.
TEST(StoreCompaction, BundlesListThePacksTheirRecordsName) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  auto store = OpenOrDie(CompactingOptions(dir, 0, Env::Default(), SmallRounds()));
  ASSERT_NE(store, nullptr);
  Image img = MakeImage(kPageSize, 30, 1);
  TakeSmallChanges(store.get(), &img, 20, 14, /*compact=*/false);
  ASSERT_OK(store->Compact());
  const std::map<uint64_t, std::string> bundles = BundlesIn(dir);
  ASSERT_GT(bundles.size(), 1u);
  for (const auto& [bid, path] : bundles) {
    std::unique_ptr<snapshot::BundleReader> r;
    ASSERT_OK(snapshot::BundleReader::Open(Env::Default(), path, bid, &r));
    ASSERT_TRUE(r->has_pack_list()) << path;
    std::vector<uint64_t> listed;
    ASSERT_OK(r->PackList(&listed));
    std::set<uint64_t> named;
    for (size_t i = 0; i < r->records().size(); i++) {
      std::string bytes;
      Manifest m;
      ASSERT_OK(r->Record(i, &bytes));
      ASSERT_OK(Manifest::Decode(bytes, path, &m));
      for (const Extent& e : m.extents) {
        if (e.pack != 0) named.insert(e.pack);
      }
    }
    EXPECT_EQ(std::vector<uint64_t>(named.begin(), named.end()), listed) << path;
  }
}

// Damages the first frame of records of the bundle at `path`: reading any
// of its records then fails.
void DamageRecords(const std::string& path) {
  std::string b = ReadBytes(path);
  const uint64_t frame1 = GetU32(b, 32 + 24) | uint64_t(GetU32(b, 32 + 24 + 4)) << 32;
  const uint32_t size1 = GetU32(b, 32 + 24 + 8);
  ASSERT_GT(size1, 0u);
  b[size_t(frame1 + size1 / 2)] ^= 0x5a;
  WriteBytes(path, b);
}

// A round reads what it rewrites, not every manifest of the store: here
// it folds the newest loose manifests and merges their packs, and the
// older bundle, which names none of those packs, is not read (its records
// are damaged, which a round reading every manifest stops at).
TEST(StoreCompaction, ARoundReadsOnlyTheBundlesItRewrites) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  Limits limits;
  limits.max_packs = 3;
  auto store = OpenOrDie(CompactingOptions(dir, 0, Env::Default(), limits));
  ASSERT_NE(store, nullptr);
  Image img = MakeImage(kPageSize, 30, 1);
  TakeSmallChanges(store.get(), &img, 20, 12);
  ASSERT_OK(store->Compact());
  const std::map<uint64_t, std::string> old_bundles = BundlesIn(dir);
  ASSERT_EQ(1u, old_bundles.size());
  const std::map<uint64_t, Image> recent = TakeSmallChanges(store.get(), &img, 4, 13);
  store.reset();
  DamageRecords(old_bundles.begin()->second);
  store = OpenOrDie(CompactingOptions(dir, 0, Env::Default(), limits));
  ASSERT_NE(store, nullptr);
  bool did = false;
  const std::set<uint64_t> packs_before = PackIdsOnDisk(dir);
  ASSERT_OK(store->CompactRound(&did));
  EXPECT_TRUE(did);
  EXPECT_LT(PackIdsOnDisk(dir).size(), packs_before.size()) << "no pack was merged";
  EXPECT_EQ(2u, FilesUnder(dir + "/snapshots", snapshot::kManifestSuffix).size()) << "no manifest was folded";
  EXPECT_TRUE(fs::exists(old_bundles.begin()->second));
  for (const auto& [id, im] : recent) EXPECT_TRUE(ReadsBack(store.get(), id, im)) << "snapshot " << id;
}

// Bundles written before bundles listed their packs are read whole, and
// rounds give them their lists; every snapshot reads back throughout.
TEST(StoreCompaction, BundlesWithoutPackListsAreReadWholeThenListed) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  auto store = OpenOrDie(CompactingOptions(dir, 0, Env::Default(), SmallRounds()));
  ASSERT_NE(store, nullptr);
  Image img = MakeImage(kPageSize, 30, 1);
  std::map<uint64_t, Image> want = TakeSmallChanges(store.get(), &img, 20, 15);
  ASSERT_OK(store->Compact());
  store.reset();
  // As an older writer wrote them: flags 0 (the list frame it never wrote
  // is then an extra frame no record is in, which every reader accepts).
  const std::map<uint64_t, std::string> bundles = BundlesIn(dir);
  ASSERT_GT(bundles.size(), 1u);
  for (const auto& [bid, path] : bundles) {
    std::string b = ReadBytes(path);
    PutU32(&b, 12, 0);
    const size_t tables_end = 40 + 24 * (size_t(GetU32(b, 24)) + GetU32(b, 28));
    PutU64(&b, tables_end - 8, snapshot::Checksum64(b.data(), tables_end - 8));
    WriteBytes(path, b);
    std::unique_ptr<snapshot::BundleReader> r;
    ASSERT_OK(snapshot::BundleReader::Open(Env::Default(), path, bid, &r));
    EXPECT_FALSE(r->has_pack_list());
  }
  store = OpenOrDie(CompactingOptions(dir, 0, Env::Default(), SmallRounds()));
  ASSERT_NE(store, nullptr);
  CheckAll(store.get(), want, "unlisted");
  for (const auto& [id, im] : TakeSmallChanges(store.get(), &img, 6, 16)) want[id] = im;
  ASSERT_OK(store->Compact());
  CheckAll(store.get(), want, "compacted");
  for (const auto& [bid, path] : BundlesIn(dir)) {
    std::unique_ptr<snapshot::BundleReader> r;
    ASSERT_OK(snapshot::BundleReader::Open(Env::Default(), path, bid, &r));
    EXPECT_TRUE(r->has_pack_list()) << path;
  }
}

TEST(StoreCompaction, PruneOfBundledSnapshotsInterruptedAtEveryStep) {
  TempDir tmp;
  const std::string golden = tmp / "golden";
  std::map<uint64_t, Image> all;
  MakeGolden(golden, &all);
  ASSERT_FALSE(HasFatalFailure());
  {
    auto store = OpenOrDie(CompactingOptions(golden, 0));
    ASSERT_NE(store, nullptr);
    ASSERT_OK(store->Compact());  // most snapshots bundled
  }
  // Keep the last 4: deletes the bundled ones and the full snapshot.
  std::map<uint64_t, Image> kept, doomed = all;
  while (kept.size() < 4) {
    kept.insert(*doomed.rbegin());
    doomed.erase(std::prev(doomed.end()));
  }
  FailAtEveryStep(
      golden, kept, doomed, [](Store* s) { PruneResult pr; return s->Prune(4, -1, &pr); },
      [&](const std::string& dir) {
        auto reader = OpenOrDie(Options(dir, false));
        ASSERT_NE(reader, nullptr);
        CheckAll(reader.get(), kept, "pruned");
        // Every pack is needed, but for one holding the store's largest id
        // (an interrupted run's new pack: it keeps the id allocated).
        std::set<uint64_t> on_disk = PackIdsOnDisk(dir);
        const std::set<uint64_t> referenced = PacksReferenced(reader.get());
        if (!on_disk.empty() && !referenced.count(*on_disk.rbegin())) on_disk.erase(std::prev(on_disk.end()));
        EXPECT_EQ(referenced, on_disk);
      },
      10);
}

}  // namespace
}  // namespace store_test

namespace store_test {
namespace {

// A power cut during a compaction, just before each of its syncs and at the
// end: in every disk state it could leave (unsynced changes lost, kept in
// part, torn; names not yet synced lost), every snapshot reads back exactly.
TEST(StoreCompaction, PowerLossDuringCompactionLosesNoSnapshot) {
  TempDir tmp;
  const std::string root = tmp / "live";
  fs::create_directories(root);
  std::map<uint64_t, Image> want;
  MakeGolden(root + "/s", &want);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  snapshot_test::CrashEnv crash(root);
  {
    auto store = OpenOrDie(CompactingOptions(root + "/s", 0, &crash));
    ASSERT_NE(store, nullptr);
    ASSERT_OK(store->Compact());
  }
  std::mt19937 rng(7);
  int states = 0;
  for (size_t cp : crash.CrashPoints()) {
    for (const snapshot_test::CrashState& st : crash.CrashStates(cp, &rng, /*random_subsets=*/2)) {
      SCOPED_TRACE("crash point " + std::to_string(cp) + ": " + st.what);
      const std::string dir = tmp / ("state-" + std::to_string(states++));
      ASSERT_TRUE(crash.Materialize(st, dir).ok());
      auto reader = OpenOrDie(Options(dir + "/s", false));
      ASSERT_NE(reader, nullptr);
      CheckAll(reader.get(), want, "after the power cut");
      fs::remove_all(dir);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
  EXPECT_GT(states, 20);
}

}  // namespace
}  // namespace store_test
