// Power-loss tests: the disk states a power cut can leave, not only kill -9.
//
// kill -9 loses nothing already written (the page cache survives it); a
// power cut loses whatever was not synced, in part and in any order, and may
// tear the last write. tests/crash_env.h records every change the store makes
// and builds each such state; here each state is opened as a new Store and
// must keep every snapshot that was reported written, list nothing
// half-written, and take the next backup. For a database written through the
// snapshot VFS (second half), each state must recover to a commit that
// passes integrity_check, and the next snapshot must be that database.
//
//   build/tests/snapshot_tests --gtest_filter='PowerLoss*'
// prints the number of crash states each test checked.
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "store/store.h"
#include "tests/crash_env.h"
#include "tests/power_loss_vfs.h"
#include "tests/test_util.h"
#include "vfs/tracking_format.h"

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
using snapshot_test::ComparePages;
using snapshot_test::Exec;
using snapshot_test::InChildProcess;
using snapshot_test::LayerSnapshotVfsOverPowerLossVfs;
using snapshot_test::OpenThroughVfs;
using snapshot_test::PowerLossVfs;
using snapshot_test::Query;
using snapshot_test::QueryInt;
using snapshot_test::ReadFile;
using snapshot_test::TempDir;

constexpr uint32_t kPageSize = 4096;

// A temporary directory on tmpfs if there is one: the states are built by
// replaying a record, never by the disk, so real fsyncs (the recorded run's,
// the recoveries' and the next backups') would only cost time.
std::unique_ptr<TempDir> TempDirOnTmpfs() {
  struct stat st;
  const char* old = getenv("TMPDIR");
  const std::string saved = old ? old : "";
  if (::stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && ::access("/dev/shm", W_OK) == 0) {
    ::setenv("TMPDIR", "/dev/shm", 1);
  }
  std::unique_ptr<TempDir> dir(new TempDir);
  if (old) {
    ::setenv("TMPDIR", saved.c_str(), 1);
  } else {
    ::unsetenv("TMPDIR");
  }
  return dir;
}

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
  uint64_t id;  // never allocated twice (docs/FORMAT.md §8)
  Image img;
  size_t acked_at;  // CrashEnv::ops() when Commit returned OK
};
struct PruneCall {  // or a Discard
  size_t started;  // CrashEnv::ops() when it was called
  std::vector<uint64_t> deleted;
};

// What a power cut at `st` must leave: every snapshot acknowledged before it
// (and not deleted by a prune already under way) listed and byte-exact;
// nothing listed that does not read back whole; and a store that takes the
// next backup. "" if so, else the first violation.
std::string CheckState(Env* env, const CrashState& st, const std::string& dir,
                       const std::vector<Written>& written, const std::vector<PruneCall>& prunes) {
  std::map<uint64_t, const Written*> must;
  for (const Written& w : written) {
    if (w.acked_at > st.crash_point) continue;
    bool may_be_deleted = false;
    for (const PruneCall& p : prunes) {
      for (uint64_t d : p.deleted) {
        may_be_deleted = may_be_deleted || (d == w.id && w.acked_at <= p.started && p.started < st.crash_point);
      }
    }
    if (may_be_deleted) {
      must.erase(w.id);
    } else {
      must[w.id] = &w;
    }
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
        // An acknowledged snapshot must be what was acknowledged; one not
        // yet acknowledged, any snapshot ever written under its id.
        std::string diff = "it was never written";
        auto m = must.find(info.id);
        for (const Written& w : written) {
          if (w.id == info.id && !diff.empty() && (m == must.end() || m->second == &w)) {
            diff = ReadsBackAs(reader.get(), info.id, w.img);
          }
        }
        if (!diff.empty()) return "listed snapshot " + std::to_string(info.id) + " is not whole: " + diff;
      }
      for (const auto& [id, w] : must) {
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
  std::vector<Written> written;
  std::vector<PruneCall> prunes;
  Image img;
  for (uint32_t pgno = 1; pgno <= 40; pgno++) img.push_back(Page(pgno, 1));
  auto backup = [&](const std::set<uint32_t>* changed) {
    uint64_t id = 0;
    Status s = Backup(env, dir, img, changed, &id);
    ASSERT_TRUE(s.ok()) << s.message();
    written.push_back(Written{id, img, crash->ops()});
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
  c = change(20, 24, 6);
  backup(&c);                            // 6: taken back, as a failed restore does
  {
    const uint64_t id = written.back().id;
    PruneCall call{crash->ops(), {id}};
    std::unique_ptr<Store> store;
    ASSERT_TRUE(Store::Open(Options(env, dir, true), &store).ok());
    Status s = store->Discard(id);
    ASSERT_TRUE(s.ok()) << s.message();
    prunes.push_back(call);
  }
  c = change(20, 26, 7);
  backup(&c);                            // 7: 6's pack stays, so its id is never allocated again
  ASSERT_LT(written[written.size() - 2].id, written.back().id);

  std::mt19937 rng(12345);
  NoSyncEnv check_env;
  result->changes = crash->ops();
  for (size_t cp : crash->CrashPoints()) {
    result->points++;
    for (const CrashState& st : crash->CrashStates(cp, &rng, /*random_subsets=*/12)) {
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
  std::unique_ptr<TempDir> tmp = TempDirOnTmpfs();
  ASSERT_EQ(0, ::mkdir((*tmp / "live").c_str(), 0700));
  CrashEnv crash(*tmp / "live");
  ScenarioResult r;
  RunScenario(*tmp, &crash, &crash, &r);
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
  std::unique_ptr<TempDir> tmp = TempDirOnTmpfs();
  ASSERT_EQ(0, ::mkdir((*tmp / "live").c_str(), 0700));
  CrashEnv crash(*tmp / "live");
  ForgetfulEnv forgetful(&crash, "/packs");
  ScenarioResult r;
  RunScenario(*tmp, &crash, &forgetful, &r);
  ASSERT_FALSE(HasFailure());
  ASSERT_FALSE(r.failures.empty());
  std::printf("[ power-loss ] caught: %s\n", r.failures[0].c_str());
  EXPECT_NE(std::string::npos, r.failures[0].find("missing")) << r.failures[0];
}

// ---------------------------------------------------------------------------
// SQLite's side: a database written through the snapshot VFS loses power.
//
// tests/power_loss_vfs.h, under the snapshot VFS, records what SQLite writes
// and syncs to the database, its journal and its WAL. -snaptrack is written
// through a shared mapping and -snapcow with pwrite, outside any VFS: the
// page cache may have written back any part of them, so a state gets a copy
// of them from some moment (the last, a page-by-page mix of it and the
// oldest, or none). A power cut restarts the machine, so the copy's boot id
// is not this boot's. kill -9 loses nothing from the page cache: every
// change kept and the tracking file exactly as it was, with this boot's id;
// those states are checked too, and there the tracking can be trusted.

constexpr size_t kDevOffset = offsetof(snapshot::TrackHeader, dev);  // then ino
constexpr size_t kDevInoSize = sizeof(snapshot::TrackHeader::dev) + sizeof(snapshot::TrackHeader::ino);
static_assert(offsetof(snapshot::TrackHeader, ino) == kDevOffset + sizeof(snapshot::TrackHeader::dev), "adjacent");
constexpr size_t kBootIdOffset = offsetof(snapshot::TrackHeader, boot_id);

// Commit k sets the counter to k and changes rows as a function of k only,
// so the content after each commit is known.
std::string CommitSql(int k) {
  const std::string ks = std::to_string(k);
  return "BEGIN; UPDATE c SET n = " + ks + ";"
         "UPDATE t SET v = printf('%.*c', 40 + (id * " + ks + ") % 120, char(65 + (id + " + ks + ") % 26)) "
         "WHERE id % 9 = " + std::to_string(k % 9) + ";"
         "INSERT INTO t(v) SELECT printf('%.*c', 100, char(97 + (id + " + ks + ") % 26)) FROM t WHERE id % 97 = " +
         std::to_string(k % 97) + "; COMMIT;";
}
std::string Digest(sqlite3* db) {
  return Query(db, "SELECT (SELECT n FROM c) || ':' || count(*) || ':' || total(length(v)) || ':' || "
                   "total(id * unicode(substr(v, 1 + id % 40, 1))) FROM t");
}

struct FilesAt {
  size_t at;  // CrashEnv::ops() when copied
  std::string track, cow;
  bool has_track, has_cow;
};

std::string Slurp(const std::string& path, bool* exists) {
  struct stat st;
  *exists = ::stat(path.c_str(), &st) == 0;
  return *exists ? ReadFile(path) : std::string();
}
void Spit(const std::string& path, const std::string& data) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return;
  std::fwrite(data.data(), 1, data.size(), f);
  std::fclose(f);
}

// The whole test, in a child process (the recording VFS must be under the
// snapshot VFS, which takes the default VFS of the moment it registers).
enum Tracking { kRebootedLast = 0, kRebootedMix = 1, kRebootedNone = 2, kKilled = 3, kStaleSameBoot = 4 };

// `param`: the journal mode, then optionally "/" and the synchronous setting
// (FULL by default).
void RunSqlitePowerLoss(const std::string& param, const std::string& base_dir, bool stale_same_boot) {
  const std::string mode = param.substr(0, param.find('/'));
  const std::string sync = param.find('/') == std::string::npos ? "FULL" : param.substr(param.find('/') + 1);
  const auto start = std::chrono::steady_clock::now();
  const std::string live = base_dir + "/live", path = live + "/app.db";
  ::mkdir(live.c_str(), 0700);
  LayerSnapshotVfsOverPowerLossVfs();
  // Set up, durable before recording starts: a database and snapshot 1, so
  // the tracking file is in use.
  {
    sqlite3* db = OpenThroughVfs(path);
    EXPECT_EQ("", Exec(db, "PRAGMA journal_mode=" + mode + "; CREATE TABLE c(n); INSERT INTO c VALUES(0);"
                           "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"
                           "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM r WHERE i<1500) "
                           "INSERT INTO t(v) SELECT printf('%.*c', 80, char(65 + i % 26)) FROM r"));
    EXPECT_EQ("1", Query(db, "SELECT snapshot_backup()"));
    sqlite3_close(db);
  }
  std::vector<std::string> digests;  // [k]: the content after commit k
  {
    sqlite3* db = snapshot_test::OpenDb(path, false);
    digests.push_back(Digest(db));
    sqlite3_close(db);
  }
  std::vector<FilesAt> files;
  auto copy_files = [&] {
    FilesAt f;
    f.at = 0;
    f.track = Slurp(path + "-snaptrack", &f.has_track);
    f.cow = Slurp(path + "-snapcow", &f.has_cow);
    if (!files.empty() && files.back().track == f.track && files.back().cow == f.cow &&
        files.back().has_track == f.has_track && files.back().has_cow == f.has_cow) {
      return;
    }
    files.push_back(std::move(f));
  };
  struct StoreAt {
    size_t at;
    std::string dir;
  };
  std::vector<StoreAt> stores;
  auto copy_store = [&](size_t at) {
    const std::string to = base_dir + "/store" + std::to_string(stores.size());
    fs::copy(path + "-snapshots", to, fs::copy_options::recursive);
    stores.push_back({at, to});
  };
  copy_store(0);
  copy_files();

  CrashEnv crash(live);
  PowerLossVfs().dir = live;
  PowerLossVfs().env = &crash;
  PowerLossVfs().after_sync = [&] {
    const size_t n = files.size();
    copy_files();
    if (files.size() > n) files.back().at = crash.ops();
  };
  std::vector<size_t> acked_at(1, 0);  // [k]: ops() when commit k returned
  {
    sqlite3* db = OpenThroughVfs(path);
    EXPECT_EQ("", Exec(db, "PRAGMA synchronous=" + sync));
    for (int k = 1; k <= 12; k++) {
      EXPECT_EQ("", Exec(db, CommitSql(k)));
      acked_at.push_back(crash.ops());
      PowerLossVfs().after_sync();  // a moment between two commits, for kill -9
      digests.push_back(Digest(db));
      if (k % 4 == 0) {
        EXPECT_EQ(std::to_string(k / 4 + 1), Query(db, "SELECT snapshot_backup()"));
        copy_store(crash.ops());
        PowerLossVfs().after_sync();
      }
    }
    sqlite3_close(db);  // WAL mode: the last checkpoint, and the WAL deleted
  }
  PowerLossVfs().env = nullptr;
  PowerLossVfs().after_sync = nullptr;
  if (::testing::Test::HasFailure()) return;

  std::mt19937 rng(777);
  size_t states = 0, points = 0, trusted_states = 0;
  std::vector<std::string> failures;
  // Builds the state in a new directory with the tracking files `variant`
  // says (copy `fi` the last one before the crash), recovers the database,
  // checks it holds the state of a commit >= `lowest`, takes a snapshot and
  // checks that it is the database.
  auto check_state = [&](const CrashState& st, Tracking variant, size_t fi, int lowest) {
    const std::string sdir = base_dir + "/s" + std::to_string(states++);
    auto fail = [&](const std::string& m) {
      failures.push_back(param + ": " + st.what + ", tracking variant " + std::to_string(int(variant)) + ": " + m);
    };
    if (!crash.Materialize(st, sdir).ok()) return fail("cannot materialize");
    const std::string db_path = sdir + "/app.db";
    for (const char* suffix : {"-snaptrack", "-snapcow", "-shm"}) ::unlink((db_path + suffix).c_str());
    fs::remove_all(db_path + "-snapshots");
    if (variant != kRebootedNone) {
      const FilesAt& f = files[variant == kRebootedMix || variant == kStaleSameBoot ? 0 : fi];
      std::string track = files[fi].track;
      if (variant == kRebootedMix || variant == kStaleSameBoot) {
        // Any mix of old and new: each page of the mapping from the oldest
        // copy or from the last.
        std::bernoulli_distribution coin(0.5);
        for (size_t off = 0; off < track.size(); off += 4096) {
          if (coin(rng) && off < files[0].track.size()) {
            track.replace(off, std::min<size_t>(4096, track.size() - off), files[0].track, off, 4096);
          }
        }
      }
      if (variant != kKilled && variant != kStaleSameBoot && track.size() > kBootIdOffset) {
        track[kBootIdOffset] ^= 0x5a;
      }
      // The state's database is a copy; after a power cut it is the same
      // file, so the record names its device and inode.
      struct stat db_st;
      if (track.size() >= kDevOffset + kDevInoSize && ::stat(db_path.c_str(), &db_st) == 0) {
        const uint64_t ids[2] = {uint64_t(db_st.st_dev), uint64_t(db_st.st_ino)};
        static_assert(sizeof ids == kDevInoSize, "dev, ino");
        track.replace(kDevOffset, kDevInoSize, reinterpret_cast<const char*>(ids), sizeof ids);
      }
      if (files[fi].has_track) Spit(db_path + "-snaptrack", track);
      if (f.has_cow) Spit(db_path + "-snapcow", f.cow);
    }
    size_t si = 0;
    while (si + 1 < stores.size() && stores[si + 1].at <= st.crash_point) si++;
    fs::copy(stores[si].dir, db_path + "-snapshots", fs::copy_options::recursive);

    // Recovery, by a plain sqlite3 or through the snapshot VFS (which then
    // takes the snapshot, as an application restarting would; after kill
    // -9 always, so that its tracking record can be trusted).
    const bool plain = states % 2 == 0 && variant != kKilled;
    sqlite3* db = plain ? snapshot_test::OpenDb(db_path, false) : OpenThroughVfs(db_path);
    const std::string check = Query(db, "PRAGMA integrity_check");
    const std::string digest = Digest(db);
    const int64_t n = QueryInt(db, "SELECT n FROM c");
    if (check != "ok") {
      fail("integrity_check: " + check);
    } else if (n < lowest || n >= int64_t(digests.size()) || digests[size_t(n)] != digest) {
      fail("holds counter " + std::to_string(n) + " (at least " + std::to_string(lowest) + " expected) with content " +
           digest + ", not the state of a commit");
    }
    if (plain) {
      sqlite3_close(db);
      db = OpenThroughVfs(db_path);
    }

    // The next snapshot is the recovered database, page for page.
    const std::string tracking = Query(db, "SELECT snapshot_tracking()");
    const bool trusted = tracking.rfind("tracked: ", 0) == 0;
    trusted_states += trusted;
    if (trusted && variant != kKilled && variant != kStaleSameBoot) {
      fail("after a reboot the tracking is trusted: " + tracking);
    }
    const std::string id = Query(db, "SELECT snapshot_backup()");
    const std::string copy = sdir + "/copy.db";
    const std::string restored = Query(db, "SELECT snapshot_restore_to('" + copy + "', " + id + ")");
    Exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    const int64_t pages = QueryInt(db, "PRAGMA page_count");
    sqlite3_close(db);
    if (restored != id) {
      fail("snapshot_backup() -> " + id + ", restore -> " + restored);
    } else {
      const std::string diff = ComparePages(ReadFile(db_path).substr(0, size_t(pages) * 4096), ReadFile(copy), 4096);
      if (!diff.empty()) fail("the snapshot taken after the crash (" + tracking + ") is not the database: " + diff);
    }
    fs::remove_all(sdir);
  };
  auto last_acked_at = [&](size_t cp) {
    int k = 0;
    while (k + 1 < int(acked_at.size()) && acked_at[k + 1] <= cp) k++;
    return k;
  };
  auto last_files_at = [&](size_t cp) {
    size_t fi = 0;
    while (fi + 1 < files.size() && files[fi + 1].at <= cp) fi++;
    return fi;
  };

  // A power cut at each sync: the machine restarts, the tracking file is
  // the last copy, a mix of it and the oldest, or gone (in turn).
  for (size_t cp : crash.CrashPoints()) {
    points++;
    // Rollback mode: the commit that deleted its journal is durable only
    // once the next journal's creation syncs the directory (or with
    // synchronous=EXTRA), so the last one may be lost. WAL mode with
    // synchronous=FULL: every returned commit is durable. WAL mode with
    // synchronous=NORMAL: none is until a checkpoint, but each state must
    // still be that of a commit.
    const int lowest = sync != "FULL" ? 0 : mode == "WAL" ? last_acked_at(cp) : std::max(0, last_acked_at(cp) - 1);
    for (const CrashState& st : crash.CrashStates(cp, &rng, /*random_subsets=*/3)) {
      if (stale_same_boot && !failures.empty()) break;  // shown: one is enough
      check_state(st, stale_same_boot ? kStaleSameBoot : Tracking(states % 3), last_files_at(cp), lowest);
    }
  }
  // kill -9 at each moment the tracking file was copied: every change kept,
  // the tracking file exactly as it was, this boot's id.
  for (size_t fi = 1; fi < files.size() && !stale_same_boot; fi++) {
    CrashState st;
    st.crash_point = files[fi].at;
    st.kept.assign(st.crash_point, true);
    st.what = "kill -9 after change " + std::to_string(st.crash_point);
    check_state(st, kKilled, fi, last_acked_at(st.crash_point));
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (stale_same_boot) {
    // Without the boot id check, a tracking file that lost part of its
    // write-back would be trusted, and a snapshot would miss pages.
    EXPECT_FALSE(failures.empty()) << param << ": a stale tracking file with this boot's id did no harm";
    for (const std::string& f : failures) EXPECT_NE(std::string::npos, f.find("is not the database")) << f;
    if (!failures.empty()) std::printf("[ power-loss ] caught: %s\n", failures[0].c_str());
  } else {
    for (size_t i = 0; i < failures.size() && i < 5; i++) ADD_FAILURE() << failures[i];
    if (failures.size() > 5) ADD_FAILURE() << failures.size() - 5 << " more";
    std::printf("[ power-loss ] sqlite %s: %zu crash states at %zu crash points over %zu recorded changes "
                "(%zu with a trusted tracking record), %.1f s\n",
                param.c_str(), states, points, crash.ops(), trusted_states, secs);
    EXPECT_GT(states, 100u);
    EXPECT_GT(trusted_states, 0u);
  }
}

// Runs RunSqlitePowerLoss in a child process.
void RunInChild(const std::string& mode, bool stale_same_boot) {
  std::unique_ptr<TempDir> tmp = TempDirOnTmpfs();
  InChildProcess([&] { RunSqlitePowerLoss(mode, tmp->path(), stale_same_boot); });
}

class PowerLossSqlite : public ::testing::TestWithParam<std::string> {};

TEST_P(PowerLossSqlite, EveryCrashStateRecoversToACommitAndSnapshotsWhole) { RunInChild(GetParam(), false); }

// Why the boot id matters: the same states, but the tracking file partly
// stale and carrying this boot's id, as if no reboot had followed the power
// cut. The other checks do not all catch it: some snapshot misses pages.
// (Without a power cut the file cannot be stale: kill -9 loses nothing of a
// shared mapping.)
TEST_P(PowerLossSqlite, AStaleTrackingFileFromThisBootWouldMissPages) { RunInChild(GetParam(), true); }

INSTANTIATE_TEST_SUITE_P(PowerLoss, PowerLossSqlite, ::testing::Values("DELETE", "WAL", "WAL/NORMAL"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           for (char& ch : name) ch = ch == '/' ? '_' : ch;
                           return name;
                         });

}  // namespace
