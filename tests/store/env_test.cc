// The store's files on disk through the Env (store/env_posix.cc): their modes
// exactly as requested whatever the umask, and the store's locks.

#include <sys/stat.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "tests/store/fault_env.h"
#include "tests/store/store_test_util.h"

namespace store_test {
namespace {

class UmaskGuard {
 public:
  explicit UmaskGuard(mode_t m) : old_(::umask(m)) {}
  ~UmaskGuard() { ::umask(old_); }

 private:
  mode_t old_;
};

unsigned ModeOf(const std::string& path) {
  struct stat st;
  EXPECT_EQ(0, ::stat(path.c_str(), &st)) << path;
  return static_cast<unsigned>(st.st_mode) & 07777u;
}

TEST(StoreFileModes, ExactlyAsRequestedRegardlessOfUmask) {
  struct Case {
    mode_t umask;
    unsigned file_mode, dir_mode;
  };
  for (const Case& c : {Case{022, 0640, 0750}, Case{077, 0640, 0750}, Case{0, 0600, 0700}, Case{022, 0660, 0770},
                        Case{027, 0644, 0755}}) {
    SCOPED_TRACE("umask " + std::to_string(c.umask) + " mode " + std::to_string(c.file_mode));
    UmaskGuard guard(c.umask);
    TempDir tmp;
    const std::string dir = tmp / "s";
    StoreOptions o = Options(dir);
    o.file_mode = c.file_mode;
    {
      auto store = OpenOrDie(o);
      ASSERT_NE(store, nullptr);
      Image a = MakeImage(4096, 64, 1), b = a;
      for (uint32_t p = 1; p <= 40; p++) b.pages[p - 1] = TextPage(4096, p, 2);
      uint64_t ia, ib;
      ASSERT_OK(Snap(store.get(), a, "a", &ia));
      ASSERT_OK(Snap(store.get(), b, "b", &ib));
      PruneResult pr;
      ASSERT_OK(store->Prune(1, -1, &pr));  // compacts: new pack, rewritten manifest
      ASSERT_EQ(1u, pr.deleted.size());
    }
    for (const std::string& d : {dir, dir + "/packs", dir + "/snapshots"}) {
      EXPECT_EQ(c.dir_mode, ModeOf(d)) << d;
    }
    size_t files = 0;
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
      if (!e.is_regular_file()) continue;
      files++;
      EXPECT_EQ(c.file_mode, ModeOf(e.path().string())) << e.path().string();
    }
    EXPECT_GE(files, 5u);  // STORE, LOCK, packs, manifests
  }
}

// WriteFileAtomically: a failure at any step leaves the old content and no
// temporary file (of the name asked for); without sync it calls no fsync.
TEST(StoreAtomicWrite, FailureLeavesTheOldFileAndNoTemporary) {
  TempDir tmp;
  const std::string path = tmp / "STATUS";
  snapshot::AtomicWriteOptions unsynced;
  unsynced.temp_suffix = ".42.tmp";
  unsynced.sync = false;
  ASSERT_OK(snapshot::WriteFileAtomically(Env::Default(), path, "old", 0600, unsynced));
  for (const bool sync : {false, true}) {
    snapshot::AtomicWriteOptions o = unsynced;
    o.sync = sync;
    for (int k = 1;; k++) {
      ASSERT_LT(k, 20);
      FaultEnv env;
      env.Arm(k, false);
      const Status s = snapshot::WriteFileAtomically(&env, path, "new", 0600, o);
      std::string got;
      ASSERT_OK(Env::Default()->ReadFileToString(path, &got));
      EXPECT_FALSE(fs::exists(path + ".42.tmp")) << "step " << k;
      if (s.ok()) {
        EXPECT_EQ("new", got);
        ASSERT_OK(snapshot::WriteFileAtomically(Env::Default(), path, "old", 0600, unsynced));
        break;
      }
      // Only the directory's fsync comes after the rename.
      const bool renamed = env.first_fault().find("fsync dir") != std::string::npos;
      EXPECT_EQ(renamed ? "new" : "old", got) << "step " << k << ": " << s.message();
      if (renamed) ASSERT_OK(snapshot::WriteFileAtomically(Env::Default(), path, "old", 0600, unsynced));
    }
  }
  FaultEnv env;
  env.ArmMatch("fsync");
  EXPECT_OK(snapshot::WriteFileAtomically(&env, path, "unsynced", 0600, unsynced));
  EXPECT_FALSE(env.fired()) << env.first_fault();
  EXPECT_FALSE(snapshot::WriteFileAtomically(&env, path, "synced", 0600).ok()) << "the default syncs";
}

TEST(StoreLocks, ExclusiveExcludesEveryoneElse) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  auto writer = OpenOrDie(Options(dir));
  ASSERT_NE(writer, nullptr);
  uint64_t id;
  ASSERT_OK(Snap(writer.get(), MakeImage(4096, 3, 1), "", &id));
  for (bool exclusive : {true, false}) {
    StoreOptions o = Options(dir, exclusive);
    o.lock_timeout_ms = 50;
    std::unique_ptr<Store> other;
    const auto t0 = std::chrono::steady_clock::now();
    Status s = Store::Open(o, &other);
    const auto waited = std::chrono::steady_clock::now() - t0;
    EXPECT_EQ(Status::Code::kBusy, s.code()) << Describe(s);
    EXPECT_GE(waited, std::chrono::milliseconds(45));
    EXPECT_LT(waited, std::chrono::seconds(5));
  }
  writer.reset();
  auto r1 = OpenOrDie(Options(dir, false));
  auto r2 = OpenOrDie(Options(dir, false));  // readers share
  ASSERT_NE(r1, nullptr);
  ASSERT_NE(r2, nullptr);
  StoreOptions o = Options(dir);
  o.lock_timeout_ms = 50;
  std::unique_ptr<Store> w;
  EXPECT_CODE(kBusy, Store::Open(o, &w));  // a reader excludes a writer
  r1.reset();
  r2.reset();
  EXPECT_OK(Store::Open(o, &w));
}

TEST(StoreLocks, WaiterGetsTheLockWhenReleased) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  auto writer = OpenOrDie(Options(dir));
  ASSERT_NE(writer, nullptr);
  std::atomic<bool> got{false};
  Status result;
  std::thread t([&] {
    StoreOptions o = Options(dir);
    o.lock_timeout_ms = 10000;
    std::unique_ptr<Store> s;
    result = Store::Open(o, &s);
    got = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  EXPECT_FALSE(got.load());
  writer.reset();
  t.join();
  EXPECT_TRUE(result.ok()) << Describe(result);
}

}  // namespace
}  // namespace store_test
