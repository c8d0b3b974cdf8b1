// Power-loss tests: the disk states a power cut can leave, not only kill -9.
//
// kill -9 loses nothing already written (the page cache survives it); a
// power cut loses whatever was not synced, in part and in any order, and may
// tear the last write. tests/crash_env.h records every change the store makes
// and builds each such state; here each state is opened as a new Store and
// must keep every snapshot that was reported written, list nothing
// half-written, and take the next backup.
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "store/store.h"
#include "tests/crash_env.h"
#include "tests/test_util.h"

namespace {

namespace fs = std::filesystem;
using snapshot::Env;
using snapshot::Manifest;
using snapshot::PruneResult;
using snapshot::SnapshotBuilder;
using snapshot::SnapshotImage;
using snapshot::SnapshotInfo;
using snapshot::Status;
using snapshot::Store;
using snapshot::StoreOptions;
using snapshot_test::CrashEnv;
using snapshot_test::CrashState;
using snapshot_test::TempDir;

constexpr uint32_t kPageSize = 4096;

// Page content that compresses like a table's and differs for each (page, version).
std::string Page(uint32_t pgno, uint32_t version) {
  std::string p = "page " + std::to_string(pgno) + " version " + std::to_string(version) + ";";
  uint32_t x = pgno * 2654435761u + version * 40503u + 1;
  while (p.size() < kPageSize) {
    x = x * 1103515245u + 12345u;
    p += "row(" + std::to_string(x % 100000) + ",'" + std::to_string((x >> 12) % 97) + "');";
  }
  p.resize(kPageSize);
  return p;
}

using Image = std::vector<std::string>;  // [i] is page i+1

StoreOptions Options(Env* env, const std::string& dir, bool exclusive) {
  StoreOptions o;
  o.env = env;
  o.dir = dir;
  o.db_name = "app.db";
  o.exclusive = exclusive;
  o.create_if_missing = exclusive;
  o.lock_timeout_ms = 0;
  o.compress.threads = 0;
  o.compress.frame_bytes = 4 * kPageSize;  // several frames per pack: more writes to lose or tear
  return o;
}

// One backup as the SQL functions take it: a new Store object, then all the
// pages (base == false) or only `changed` ones over the latest snapshot.
Status Backup(Env* env, const std::string& dir, const Image& img, const std::set<uint32_t>* changed,
              uint64_t* id) {
  std::unique_ptr<Store> store;
  SNAPSHOT_RETURN_IF_ERROR(Store::Open(Options(env, dir, true), &store));
  Manifest base;
  uint64_t base_id = 0;
  const bool incremental = changed != nullptr && store->LatestId(&base_id).ok();
  if (incremental) SNAPSHOT_RETURN_IF_ERROR(store->ReadManifest(base_id, &base));
  std::unique_ptr<SnapshotBuilder> b;
  SNAPSHOT_RETURN_IF_ERROR(store->NewSnapshot(kPageSize, uint32_t(img.size()), incremental ? &base : nullptr, &b));
  for (uint32_t pgno = 1; pgno <= img.size(); pgno++) {
    if (incremental && pgno <= base.info.page_count && !changed->count(pgno)) continue;
    SNAPSHOT_RETURN_IF_ERROR(b->AddPage(pgno, reinterpret_cast<const uint8_t*>(img[pgno - 1].data())));
  }
  return b->Commit("test", id);
}

// "" if snapshot `id` reads back as `img` and verifies, else what differs.
std::string ReadsBackAs(Store* store, uint64_t id, const Image& img) {
  Status v = store->Verify(id);
  if (!v.ok()) return "verify: " + v.message();
  std::unique_ptr<SnapshotImage> image;
  Status s = store->OpenImage(id, &image);
  if (!s.ok()) return "open: " + s.message();
  if (image->info().page_count != img.size()) return "page count " + std::to_string(image->info().page_count);
  std::string page(kPageSize, '\0');
  for (uint32_t pgno = 1; pgno <= img.size(); pgno++) {
    s = image->ReadPage(pgno, reinterpret_cast<uint8_t*>(&page[0]));
    if (!s.ok()) return "page " + std::to_string(pgno) + ": " + s.message();
    if (page != img[pgno - 1]) return "page " + std::to_string(pgno) + " differs";
  }
  return "";
}

struct Written {
  Image img;
  size_t acked_at;  // CrashEnv::ops() when Commit returned OK
};
struct PruneCall {
  size_t started;  // CrashEnv::ops() when it was called
  std::vector<uint64_t> deleted;
};

// What a power cut at `st` must leave: every snapshot acknowledged before it
// (and not deleted by a prune already under way) listed and byte-exact;
// nothing listed that does not read back whole; and a store that takes the
// next backup. "" if so, else the first violation.
std::string CheckState(Env* env, const CrashState& st, const std::string& dir,
                       const std::map<uint64_t, Written>& written, const std::vector<PruneCall>& prunes) {
  std::set<uint64_t> must;
  for (const auto& [id, w] : written) {
    bool may_be_deleted = false;
    for (const PruneCall& p : prunes) {
      for (uint64_t d : p.deleted) may_be_deleted = may_be_deleted || (d == id && p.started < st.crash_point);
    }
    if (w.acked_at <= st.crash_point && !may_be_deleted) must.insert(id);
  }
  {
    std::unique_ptr<Store> reader;
    Status s = Store::Open(Options(env, dir, false), &reader);
    if (s.IsNotFound() && must.empty()) {
      // Nothing was acknowledged: no store is a correct state.
    } else if (!s.ok()) {
      return "a reader cannot open the store: " + s.message();
    } else {
      std::vector<SnapshotInfo> listed;
      s = reader->List(&listed);
      if (!s.ok()) return "list: " + s.message();
      std::set<uint64_t> seen;
      for (const SnapshotInfo& info : listed) {
        seen.insert(info.id);
        auto it = written.find(info.id);
        if (it == written.end()) return "snapshot " + std::to_string(info.id) + " is listed but was never written";
        const std::string diff = ReadsBackAs(reader.get(), info.id, it->second.img);
        if (!diff.empty()) return "listed snapshot " + std::to_string(info.id) + " is not whole: " + diff;
      }
      for (uint64_t id : must) {
        if (!seen.count(id)) return "acknowledged snapshot " + std::to_string(id) + " is missing";
      }
    }
  }
  // The next backup must succeed on whatever was left, and read back.
  Image next;
  for (uint32_t pgno = 1; pgno <= 12; pgno++) next.push_back(Page(pgno, 99));
  uint64_t id = 0;
  Status s = Backup(env, dir, next, nullptr, &id);
  if (!s.ok()) return "the next backup failed: " + s.message();
  std::unique_ptr<Store> store;
  s = Store::Open(Options(env, dir, false), &store);
  if (!s.ok()) return "open after the next backup: " + s.message();
  const std::string diff = ReadsBackAs(store.get(), id, next);
  if (!diff.empty()) return "the next backup does not read back: " + diff;
  s = store->Verify(0);
  if (!s.ok()) return "verify after the next backup: " + s.message();
  return "";
}

// The checks' own Env: the states under test are already on the disk, and
// the next backup's durability is not what is checked, so its syncs are
// skipped (a real fsync per state would be most of the run time).
class NoSyncEnv : public snapshot::EnvWrapper {
 public:
  NoSyncEnv() : EnvWrapper(Env::Default()) {}
  Status NewWritableFile(const std::string& p, unsigned m, std::unique_ptr<snapshot::WritableFile>* o) override {
    std::unique_ptr<snapshot::WritableFile> f;
    SNAPSHOT_RETURN_IF_ERROR(target()->NewWritableFile(p, m, &f));
    o->reset(new File(std::move(f)));
    return Status::OK();
  }
  Status SyncDir(const std::string&) override { return Status::OK(); }

 private:
  struct File : snapshot::WritableFile {
    explicit File(std::unique_ptr<snapshot::WritableFile> f) : f_(std::move(f)) {}
    Status Append(const void* d, size_t n) override { return f_->Append(d, n); }
    Status WriteAt(uint64_t o, const void* d, size_t n) override { return f_->WriteAt(o, d, n); }
    Status Sync() override { return Status::OK(); }
    Status Close() override { return f_->Close(); }
    std::unique_ptr<snapshot::WritableFile> f_;
  };
};

// Drops the store's fsyncs of one directory (passes the rest on): a store
// that forgot them, to show that the crash states catch it.
class ForgetfulEnv : public snapshot::EnvWrapper {
 public:
  ForgetfulEnv(Env* target, std::string dir_suffix) : EnvWrapper(target), suffix_(std::move(dir_suffix)) {}
  Status SyncDir(const std::string& d) override {
    if (d.size() >= suffix_.size() && d.compare(d.size() - suffix_.size(), suffix_.size(), suffix_) == 0) {
      return Status::OK();
    }
    return target()->SyncDir(d);
  }

 private:
  std::string suffix_;
};

struct ScenarioResult {
  size_t states = 0, points = 0, changes = 0;
  std::vector<std::string> failures;  // the first few
};

// Full and incremental backups, prunes that delete and rewrite packs, run
// through `env` (which records into `crash`); then a power cut at every
// crash point, in every state CrashEnv builds for it.
void RunScenario(const TempDir& tmp, CrashEnv* crash, Env* env, ScenarioResult* result) {
  const std::string dir = tmp / "live/app.db-snapshots";
  std::map<uint64_t, Written> written;
  std::vector<PruneCall> prunes;
  Image img;
  for (uint32_t pgno = 1; pgno <= 40; pgno++) img.push_back(Page(pgno, 1));
  auto backup = [&](const std::set<uint32_t>* changed) {
    uint64_t id = 0;
    Status s = Backup(env, dir, img, changed, &id);
    ASSERT_TRUE(s.ok()) << s.message();
    written[id] = Written{img, crash->ops()};
  };
  auto change = [&](uint32_t first, uint32_t last, uint32_t version) {
    std::set<uint32_t> changed;
    for (uint32_t pgno = first; pgno <= last; pgno++) {
      if (pgno > img.size()) img.resize(pgno);
      img[pgno - 1] = Page(pgno, version);
      changed.insert(pgno);
    }
    return changed;
  };
  auto prune = [&](int64_t keep_last) {
    PruneCall call{crash->ops(), {}};
    std::unique_ptr<Store> store;
    ASSERT_TRUE(Store::Open(Options(env, dir, true), &store).ok());
    PruneResult r;
    Status s = store->Prune(keep_last, -1, &r);
    ASSERT_TRUE(s.ok()) << s.message();
    call.deleted = r.deleted;
    prunes.push_back(call);
  };

  backup(nullptr);                       // 1: full
  std::set<uint32_t> c = change(1, 16, 2);
  backup(&c);                            // 2: incremental
  c = change(10, 48, 3);
  backup(&c);                            // 3: incremental, grown
  prune(2);                              // deletes 1; its pack is mostly dead: rewritten
  c = change(30, 36, 4);
  backup(nullptr);                       // 4: full, deduplicated against the store
  prune(1);                              // deletes 2 and 3
  c = change(5, 8, 5);
  backup(&c);                            // 5: incremental
  ASSERT_EQ(3u, prunes[0].deleted.size() + prunes[1].deleted.size());  // 1, then 2 and 3

  std::mt19937 rng(12345);
  NoSyncEnv check_env;
  result->changes = crash->ops();
  for (size_t cp : crash->CrashPoints()) {
    result->points++;
    for (const CrashState& st : crash->CrashStates(cp, &rng, /*random_subsets=*/8)) {
      const std::string root = tmp / ("state" + std::to_string(result->states++));
      ASSERT_TRUE(crash->Materialize(st, root).ok());
      const std::string failure = CheckState(&check_env, st, root + "/app.db-snapshots", written, prunes);
      if (!failure.empty() && result->failures.size() < 5) result->failures.push_back(st.what + ": " + failure);
      fs::remove_all(root);
    }
  }
}

TEST(PowerLossStore, EveryCrashStateKeepsAcknowledgedSnapshots) {
  const auto start = std::chrono::steady_clock::now();
  TempDir tmp;
  ASSERT_EQ(0, ::mkdir((tmp / "live").c_str(), 0700));
  CrashEnv crash(tmp / "live");
  ScenarioResult r;
  RunScenario(tmp, &crash, &crash, &r);
  ASSERT_FALSE(HasFailure());
  for (const std::string& f : r.failures) ADD_FAILURE() << f;
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("[ power-loss ] store: %zu crash states at %zu crash points over %zu recorded changes, %.1f s\n",
              r.states, r.points, r.changes, secs);
  EXPECT_GT(r.states, 100u);
}

// The states are strong enough to catch a store that forgets a sync: without
// the fsync of packs/, a snapshot's pack may vanish while its manifest stays.
TEST(PowerLossStore, CatchesAForgottenDirectorySync) {
  TempDir tmp;
  ASSERT_EQ(0, ::mkdir((tmp / "live").c_str(), 0700));
  CrashEnv crash(tmp / "live");
  ForgetfulEnv forgetful(&crash, "/packs");
  ScenarioResult r;
  RunScenario(tmp, &crash, &forgetful, &r);
  ASSERT_FALSE(HasFailure());
  ASSERT_FALSE(r.failures.empty());
  std::printf("[ power-loss ] caught: %s\n", r.failures[0].c_str());
  EXPECT_NE(std::string::npos, r.failures[0].find("missing")) << r.failures[0];
}

}  // namespace
