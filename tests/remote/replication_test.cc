// Replication through SQL against a real object store (tools/object-store.sh):
// snapshot_remote, snapshot_push and snapshot_restore_to(path, id, 's3://...')
// on real databases, as users call them. A second empty directory plays the
// new machine. Each test works under a remote prefix of its own and removes
// it afterwards.
//
//   eval "$(tools/object-store.sh start)"
//   build/tests/remote/remote_tests --gtest_filter='Replication*'
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <thread>

#include "remote/push_lock.h"
#include "remote/s3_client.h"
#include "store/store.h"
#include "tests/process_util.h"
#include "tests/remote/remote_test_util.h"
#include "tests/remote/tcp_proxy.h"
#include "tests/test_util.h"

namespace {

using snapshot::Env;
using snapshot::ObjectInfo;
using snapshot::S3Client;
using snapshot::S3Options;
using snapshot::Status;
using snapshot_test::Exec;
using snapshot_test::FindFileHolding;
using snapshot_test::ObjectStoreDataDir;
using snapshot_test::OpenDb;
using snapshot_test::OpenThroughVfs;
using snapshot_test::Query;
using snapshot_test::QueryInt;
using snapshot_test::ReadFile;
using snapshot_test::ScopedEnv;
using snapshot_test::TcpProxy;
using snapshot_test::TempDir;

class ReplicationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* remote = std::getenv("SNAPSHOT_REMOTE");
    if (std::getenv("AWS_ENDPOINT_URL") == nullptr || remote == nullptr) {
      GTEST_SKIP() << "no object store: run eval \"$(tools/object-store.sh start)\" first";
    }
    url_ = std::string(remote) + "/replication-tests/" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name() + "-" + std::to_string(getpid());
    ASSERT_TRUE(S3Options::FromEnvironment(url_, &options_).ok());
    Status s = S3Client(options_, Env::Default()).CheckBucket();
    if (s.message().find("cannot reach") != std::string::npos) {
      GTEST_SKIP() << "the object store is not running: run eval \"$(tools/object-store.sh start)\" first";
    }
    ASSERT_TRUE(s.ok()) << s.message();
    ready_ = true;
    // Only the remote each test sets: a store without one would push in the
    // background to $SNAPSHOT_REMOTE itself.
    no_default_remote_.reset(new ScopedEnv("SNAPSHOT_REMOTE", nullptr));
    db_ = OpenDb(machine_a_ / "app.db");
    ASSERT_EQ("", Exec(db_, "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);"
                            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) "
                            "INSERT INTO t(v) SELECT randomblob(600) FROM n;"));
  }

  void TearDown() override {
    if (db_ != nullptr) WaitForBackgroundPush(db_);  // nothing goes up after the cleanup
    sqlite3_close(db_);
    if (!ready_) return;
    S3Client s3(options_, Env::Default());
    for (const ObjectInfo& o : Listed()) s3.Delete(o.key);
  }

  std::vector<ObjectInfo> Listed() {
    std::vector<ObjectInfo> objects;
    Status s = S3Client(options_, Env::Default()).List("", &objects);
    EXPECT_TRUE(s.ok()) << s.message();
    return objects;
  }

  // Until this process has no background push of db's store queued or
  // running (generous: a loaded machine may be slow, never a timing claim).
  static void WaitForBackgroundPush(sqlite3* db) {
    for (int i = 0; i < 1200; i++) {
      if (Query(db, "SELECT coalesce(json_extract(snapshot_status(), '$.remote.uploading'), 0)") == "0") return;
      usleep(50 * 1000);
    }
    ADD_FAILURE() << "a background push still runs after 60 s";
  }

  // A field of snapshot_status()'s remote part, as text ("NULL" for null).
  std::string RemoteStatus(const std::string& field) {
    return Query(db_, "SELECT json_extract(snapshot_status(), '$.remote." + field + "')");
  }

  // Waits (generously) until `field` of the remote status reads `value`
  // (or, with `equal` false, anything else).
  bool WaitForRemoteStatus(const std::string& field, const std::string& value, bool equal = true) {
    for (int i = 0; i < 2400; i++) {
      if ((RemoteStatus(field) == value) == equal) return true;
      usleep(50 * 1000);
    }
    return false;
  }

  std::string Locations() {
    return Query(db_, "SELECT group_concat(id || ':' || location, ' ') FROM (SELECT * FROM snapshot_list ORDER BY id)");
  }

  std::string SetRemote() { return Query(db_, "SELECT snapshot_remote('" + url_ + "')"); }

  // snapshot_restore_to on a machine with no store: a connection to a
  // database of its own, as `sqlite3 new.db` would be.
  std::string RestoreOnMachineB(const std::string& name, const std::string& id = "NULL") {
    sqlite3* b = OpenDb(":memory:");
    const std::string r = Query(b, "SELECT snapshot_restore_to('" + machine_b_ / name + "', " + id + ", '" + url_ + "')");
    sqlite3_close(b);
    return r;
  }

  // The names in machine B's directory: the restored file and nothing else.
  std::vector<std::string> FilesOnMachineB() {
    std::vector<std::string> names;
    Env::Default()->GetChildren(machine_b_.path(), &names);
    std::vector<std::string> out;
    for (const std::string& n : names) {
      if (n != "." && n != "..") out.push_back(n);
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  TempDir machine_a_, machine_b_;
  std::unique_ptr<ScopedEnv> no_default_remote_;
  std::string url_;
  S3Options options_;
  sqlite3* db_ = nullptr;
  bool ready_ = false;
};

TEST_F(ReplicationTest, PushThenRestoreOnAnEmptyMachineIsByteExact) {
  ASSERT_EQ("1", Query(db_, "SELECT snapshot_backup()"));
  ASSERT_EQ(url_, SetRemote());
  EXPECT_EQ("3", Query(db_, "SELECT snapshot_push()")) << "STORE, the pack and the manifest";
  ASSERT_EQ("", Exec(db_, "UPDATE t SET v = randomblob(600) WHERE id % 50 = 0"));
  ASSERT_EQ("2", Query(db_, "SELECT snapshot_backup()"));  // uploaded in the background, or by the push
  EXPECT_GE(2, QueryInt(db_, "SELECT snapshot_push()"));
  EXPECT_EQ(5u, Listed().size()) << "the new pack and manifest only";
  const std::string live = ReadFile(machine_a_ / "app.db");

  EXPECT_EQ("2", RestoreOnMachineB("app.db"));
  EXPECT_TRUE(ReadFile(machine_b_ / "app.db") == live) << "the latest snapshot, byte for byte";
  EXPECT_EQ("1", RestoreOnMachineB("first.db", "1"));
  sqlite3* first = OpenDb(machine_b_ / "first.db", false);
  EXPECT_EQ("ok", Query(first, "PRAGMA integrity_check"));
  EXPECT_EQ(QueryInt(db_, "SELECT count(*) FROM t"), QueryInt(first, "SELECT count(*) FROM t"));
  EXPECT_NE(Query(db_, "SELECT hex(v) FROM t WHERE id = 50"), Query(first, "SELECT hex(v) FROM t WHERE id = 50"));
  sqlite3_close(first);
  EXPECT_EQ((std::vector<std::string>{"app.db", "first.db"}), FilesOnMachineB()) << "the fetched objects stay behind";
  EXPECT_NE(std::string::npos, RestoreOnMachineB("app.db").find("already exists"));
}

TEST_F(ReplicationTest, ASecondPushUploadsNothing) {
  ASSERT_EQ("1", Query(db_, "SELECT snapshot_backup()"));
  ASSERT_EQ(url_, SetRemote());
  ASSERT_EQ("3", Query(db_, "SELECT snapshot_push()"));
  const std::vector<ObjectInfo> before = Listed();
  EXPECT_EQ("0", Query(db_, "SELECT snapshot_push()"));
  sqlite3* other = OpenDb(machine_a_ / "app.db");  // another connection reads the same setting
  EXPECT_EQ(url_, Query(other, "SELECT snapshot_remote()"));
  EXPECT_EQ("0", Query(other, "SELECT snapshot_push()"));
  sqlite3_close(other);
  const std::vector<ObjectInfo> after = Listed();
  ASSERT_EQ(before.size(), after.size());
  for (size_t i = 0; i < before.size(); i++) EXPECT_EQ(before[i].key, after[i].key);

  // New snapshots: only their packs and manifests go up.
  for (int i = 0; i < 3; i++) {
    ASSERT_EQ("", Exec(db_, "UPDATE t SET v = randomblob(600) WHERE id = " + std::to_string(i + 1)));
    ASSERT_NE("", Query(db_, "SELECT snapshot_backup()"));
  }
  // Uploaded in the background after each backup, or by this push.
  EXPECT_GE(6, QueryInt(db_, "SELECT snapshot_push()"));
  EXPECT_EQ(before.size() + 6, Listed().size());
  EXPECT_EQ("0", Query(db_, "SELECT snapshot_push()"));

  // A compaction folds manifests into a bundle, merges packs and rewrites
  // the loose manifests it keeps in place, under the same names: the push
  // sends what changed (compared by content), and every snapshot still
  // restores from the remote.
  {
    snapshot::StoreOptions o;
    o.dir = machine_a_ / "app.db-snapshots";
    o.exclusive = true;
    std::unique_ptr<snapshot::Store> store;
    ASSERT_TRUE(snapshot::Store::Open(o, &store).ok());
    ASSERT_TRUE(store->Compact().ok());
  }
  EXPECT_LE(2, QueryInt(db_, "SELECT snapshot_push()")) << "at least the bundle and the merged pack";
  EXPECT_EQ("0", Query(db_, "SELECT snapshot_push()"));
  EXPECT_EQ("4", RestoreOnMachineB("app.db"));
  EXPECT_TRUE(ReadFile(machine_b_ / "app.db") == ReadFile(machine_a_ / "app.db"));
  EXPECT_EQ("1", RestoreOnMachineB("first.db", "1"));
  EXPECT_EQ("3", RestoreOnMachineB("third.db", "3"));
}

TEST_F(ReplicationTest, AnObjectDamagedOrMissingOnTheServerIsNamedByVerifyAndRefusedAtRestore) {
  ASSERT_EQ("1", Query(db_, "SELECT snapshot_backup()"));
  ASSERT_EQ(url_, SetRemote());
  ASSERT_EQ("3", Query(db_, "SELECT snapshot_push()"));
  EXPECT_EQ("ok", Query(db_, "SELECT snapshot_verify(NULL, '" + url_ + "')"));
  EXPECT_EQ("ok", Query(db_, "SELECT snapshot_verify(1, '" + url_ + "')"));
  const std::string pack = ReadFile(machine_a_ / "app.db-snapshots/packs/0000000001.pack");
  const std::string stored = FindFileHolding(ObjectStoreDataDir(), pack);
  ASSERT_FALSE(stored.empty()) << "no file under " << ObjectStoreDataDir() << " holds the pack";
  std::string damaged = pack;
  damaged[pack.size() / 2] ^= 1;
  std::ofstream(stored, std::ios::binary | std::ios::trunc).write(damaged.data(), std::streamsize(damaged.size()));

  const std::string verify = Query(db_, "SELECT snapshot_verify(NULL, '" + url_ + "')");
  EXPECT_NE(std::string::npos, verify.find("packs/0000000001.pack")) << verify;
  EXPECT_NE(std::string::npos, verify.find("damaged")) << verify;
  // Swift quarantines an object whose bytes fail its own checksum once it
  // has served them: from then on it answers 404 for it.
  const std::string r = RestoreOnMachineB("app.db");
  EXPECT_NE(std::string::npos, r.find("ERROR")) << r;
  EXPECT_NE(std::string::npos, r.find("packs/0000000001.pack")) << r;
  EXPECT_EQ(std::vector<std::string>{}, FilesOnMachineB()) << "a refused restore leaves nothing";

  ASSERT_TRUE(S3Client(options_, Env::Default()).Delete("packs/0000000001.pack").ok());
  const std::string missing = RestoreOnMachineB("app.db");
  EXPECT_NE(std::string::npos, missing.find("lacks packs/0000000001.pack")) << missing;
  EXPECT_EQ(std::vector<std::string>{}, FilesOnMachineB());
  const std::string verify_missing = Query(db_, "SELECT snapshot_verify(NULL, '" + url_ + "')");
  EXPECT_NE(std::string::npos, verify_missing.find("snapshot 1")) << verify_missing;
  EXPECT_NE(std::string::npos, verify_missing.find("missing")) << verify_missing;
}

TEST_F(ReplicationTest, WrongOrMissingCredentialsSaySoAndLeaveNothing) {
  ASSERT_EQ("1", Query(db_, "SELECT snapshot_backup()"));
  ASSERT_EQ(url_, SetRemote());
  {
    ScopedEnv wrong("AWS_SECRET_ACCESS_KEY", "not-the-secret");
    const std::string r = Query(db_, "SELECT snapshot_push()");
    EXPECT_NE(std::string::npos, r.find("snapshot_push:")) << r;
    EXPECT_NE(std::string::npos, r.find("AWS_SECRET_ACCESS_KEY")) << r;
    const std::string restore = RestoreOnMachineB("app.db");
    EXPECT_NE(std::string::npos, restore.find("AWS_SECRET_ACCESS_KEY")) << restore;
  }
  {
    ScopedEnv missing("AWS_ACCESS_KEY_ID", nullptr);
    const std::string r = Query(db_, "SELECT snapshot_push()");
    EXPECT_NE(std::string::npos, r.find("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")) << r;
  }
  EXPECT_TRUE(Listed().empty()) << "nothing reached the remote";
  EXPECT_EQ(std::vector<std::string>{}, FilesOnMachineB());
  EXPECT_EQ("3", Query(db_, "SELECT snapshot_push()")) << "with the right credentials it goes up whole";
}

TEST_F(ReplicationTest, TheSettingPersistsAndIsCheckedAndTopLevelOnly) {
  ScopedEnv from_environment("SNAPSHOT_REMOTE", url_.c_str());
  ASSERT_EQ(url_, SetRemote());
  sqlite3* other = OpenDb(machine_a_ / "app.db");
  EXPECT_EQ(url_, Query(other, "SELECT snapshot_remote()"));
  EXPECT_EQ("NULL", Query(other, "SELECT snapshot_remote(NULL)")) << "off, even with SNAPSHOT_REMOTE set";
  EXPECT_EQ("NULL", Query(db_, "SELECT snapshot_remote()"));
  EXPECT_NE(std::string::npos, Query(db_, "SELECT snapshot_push()").find("no remote location"));
  sqlite3_close(other);
  EXPECT_NE(std::string::npos, Query(db_, "SELECT snapshot_remote('http://x/y')").find("s3://bucket/prefix"));
  EXPECT_NE(std::string::npos, Query(db_, "SELECT snapshot_remote('s3:///y')").find("s3://bucket/prefix"));
  ASSERT_EQ("", Exec(db_, "CREATE VIEW v AS SELECT snapshot_remote('s3://evil/x') AS r"));
  EXPECT_NE(std::string::npos, Query(db_, "SELECT r FROM v").find("unsafe use")) << "a view may not call it";
  ASSERT_EQ("", Exec(db_, "CREATE VIEW p AS SELECT snapshot_push() AS n"));
  EXPECT_NE(std::string::npos, Query(db_, "SELECT n FROM p").find("unsafe use of snapshot_push"));
  EXPECT_EQ("NULL", Query(db_, "SELECT snapshot_remote()"));
}

TEST_F(ReplicationTest, ARemoteHoldingAnotherStoreIsRefused) {
  ASSERT_EQ("1", Query(db_, "SELECT snapshot_backup()"));
  ASSERT_EQ(url_, SetRemote());
  ASSERT_EQ("3", Query(db_, "SELECT snapshot_push()"));
  TempDir machine_c;
  sqlite3* c = OpenDb(machine_c / "app.db");
  ASSERT_EQ("", Exec(c, "CREATE TABLE other(x)"));
  ASSERT_EQ("1", Query(c, "SELECT snapshot_backup()"));
  ASSERT_EQ(url_, Query(c, "SELECT snapshot_remote('" + url_ + "')"));
  const std::string r = Query(c, "SELECT snapshot_push()");
  EXPECT_NE(std::string::npos, r.find("holds the copy of another snapshot store")) << r;
  sqlite3_close(c);
  EXPECT_EQ(3u, Listed().size());
}

// After a backup the new files go up in the background (the backup does not
// wait for them); snapshot_list says where each snapshot is and
// snapshot_status() how far behind the remote is, from what the pushes
// recorded, without asking the server.
TEST_F(ReplicationTest, BackupsGoUpInTheBackgroundAndTheListSaysWhereEachSnapshotIs) {
  ASSERT_EQ("1", Query(db_, "SELECT snapshot_backup()"));
  EXPECT_EQ("1:local", Locations()) << "no remote";
  EXPECT_EQ("NULL", Query(db_, "SELECT json_extract(snapshot_status(), '$.remote')"));
  ASSERT_EQ(url_, SetRemote());
  EXPECT_EQ("1:local", Locations()) << "never pushed";
  EXPECT_EQ("1", RemoteStatus("snapshots_not_remote"));
  EXPECT_EQ("NULL", RemoteStatus("newest_remote_id"));
  ASSERT_EQ("3", Query(db_, "SELECT snapshot_push()"));
  EXPECT_EQ("1:both", Locations());
  EXPECT_EQ("0", RemoteStatus("snapshots_not_remote"));
  EXPECT_NE("NULL", RemoteStatus("last_push_at"));

  ASSERT_EQ("", Exec(db_, "UPDATE t SET v = randomblob(600) WHERE id % 40 = 0"));
  ASSERT_EQ("2", Query(db_, "SELECT snapshot_backup()"));
  ASSERT_TRUE(WaitForRemoteStatus("snapshots_not_remote", "0")) << "the background push did not catch up";
  WaitForBackgroundPush(db_);
  EXPECT_EQ("1:both 2:both", Locations());
  EXPECT_EQ("2", RemoteStatus("newest_remote_id"));
  EXPECT_EQ("NULL", RemoteStatus("last_error"));
  EXPECT_EQ(5u, Listed().size()) << "STORE, two packs, two manifests: each once";

  ASSERT_EQ("1", Query(db_, "SELECT snapshot_prune(1)"));
  // The prune's own background push deletes remotely what it deleted here.
  WaitForBackgroundPush(db_);
  EXPECT_EQ("2:both", Locations());
  for (const ObjectInfo& o : Listed()) EXPECT_EQ(std::string::npos, o.key.find("0000000001.snap")) << o.key;
  ASSERT_EQ("0", Query(db_, "SELECT snapshot_push()")) << "nothing left to send";
  EXPECT_EQ("2", RestoreOnMachineB("app.db"));
  EXPECT_TRUE(ReadFile(machine_b_ / "app.db") == ReadFile(machine_a_ / "app.db"));
}

// An automatic snapshot goes up by itself too, to a remote that only the
// environment names (SNAPSHOT_REMOTE; the store has no REMOTE file): the
// writer commits through the VFS and never calls a snapshot function again.
TEST_F(ReplicationTest, AutomaticSnapshotsGoUpToTheEnvironmentsRemote) {
  ScopedEnv from_environment("SNAPSHOT_REMOTE", url_.c_str());
  sqlite3* writer = OpenThroughVfs(machine_a_ / "app.db");
  EXPECT_EQ(url_, Query(writer, "SELECT snapshot_remote()"));
  ASSERT_EQ("1", Query(writer, "SELECT snapshot_auto(1)"));
  ASSERT_EQ("", Exec(writer, "UPDATE t SET v = randomblob(600) WHERE id % 40 = 0"));
  bool up = false;  // generous: never a timing claim
  for (int i = 0; i < 2400 && !up; i++) {
    up = Query(writer, "SELECT count(*) FROM snapshot_list WHERE label = 'auto' AND location = 'both'") != "0";
    if (!up) usleep(50 * 1000);
  }
  EXPECT_TRUE(up) << Query(writer, "SELECT snapshot_status()");
  EXPECT_EQ("0", Query(writer, "SELECT snapshot_auto(0)"));
  WaitForBackgroundPush(writer);
  EXPECT_FALSE(Env::Default()->FileExists(machine_a_ / "app.db-snapshots/REMOTE")) << "the environment's, not a setting";
  sqlite3_close(writer);
}

// A cron job's sqlite3 shell exits right after its backup; at exit the
// process waits (up to 10 s) for its queued upload (remote/uploader.h), so
// the snapshot is on the remote once the shell is gone: 2 MB on loopback.
TEST_F(ReplicationTest, ACronShellsBackupIsOnTheRemoteWhenTheShellExits) {
  ASSERT_EQ(url_, SetRemote());
  snapshot_test::Children children;
  int status = -1;
  const std::string out =
      snapshot_test::RunShell(&children, machine_a_ / "app.db", "SELECT snapshot_backup('cron');", &status);
  ASSERT_EQ(0, status) << out;
  ASSERT_EQ("1", out);
  bool manifest_up = false;
  for (const ObjectInfo& o : Listed()) manifest_up |= o.key.find("0000000001.snap") != std::string::npos;
  EXPECT_TRUE(manifest_up) << "the shell exited before its snapshot went up";
  EXPECT_EQ("1:both", Locations());
}

// The server stops in the middle of a background upload (a proxy in front
// of it cuts every connection and refuses new ones: the shared server
// itself keeps running), then comes back: the backups succeed all along,
// snapshot_status() shows the error and the lag, and the uploads resume by
// themselves until the remote holds each file of the store exactly once.
TEST_F(ReplicationTest, ServerStoppedMidBackgroundUploadThenRestarted) {
  const std::string endpoint = std::getenv("AWS_ENDPOINT_URL");
  TcpProxy proxy(std::atoi(endpoint.substr(endpoint.rfind(':') + 1).c_str()));
  ScopedEnv through_proxy("AWS_ENDPOINT_URL", ("http://127.0.0.1:" + std::to_string(proxy.port())).c_str());
  ASSERT_EQ(url_, SetRemote());
  proxy.CutAfter(256 * 1024);  // inside the first pack (1.8 MB of random rows)
  ASSERT_EQ("1", Query(db_, "SELECT snapshot_backup()")) << "the snapshot does not wait for the network";
  proxy.WaitUntilCut();
  ASSERT_TRUE(proxy.cut()) << "the upload never started";
  ASSERT_EQ("", Exec(db_, "UPDATE t SET v = randomblob(600) WHERE id % 40 = 0"));
  ASSERT_EQ("2", Query(db_, "SELECT snapshot_backup()")) << "nor fails with it";
  ASSERT_TRUE(WaitForRemoteStatus("last_error", "NULL", /*equal=*/false)) << "the failure is not reported";
  EXPECT_EQ("2", RemoteStatus("snapshots_not_remote"));
  EXPECT_EQ("1", Query(db_, "SELECT json_extract(snapshot_status(), '$.remote.uploading')")) << "a retry waits";
  EXPECT_EQ("1:local 2:local", Locations());

  proxy.Resume();
  ASSERT_TRUE(WaitForRemoteStatus("snapshots_not_remote", "0")) << "replication did not resume";
  WaitForBackgroundPush(db_);
  EXPECT_EQ("1:both 2:both", Locations());
  // Exactly the store's files, each once: STORE, the packs, the manifests.
  std::vector<std::string> local = {"STORE"};
  for (const char* dir : {"packs", "snapshots"}) {
    std::vector<std::string> names;
    Env::Default()->GetChildren(machine_a_ / ("app.db-snapshots/" + std::string(dir)), &names);
    for (const std::string& n : names) {
      if (n.find(".pack") != std::string::npos || n.find(".snap") != std::string::npos ||
          n.find(".bundle") != std::string::npos) {
        local.push_back(std::string(dir) + "/" + n);
      }
    }
  }
  std::vector<std::string> remote;
  for (const ObjectInfo& o : Listed()) remote.push_back(o.key);
  std::sort(local.begin(), local.end());
  EXPECT_EQ(local, remote);
  EXPECT_EQ("ok", Query(db_, "SELECT snapshot_verify(NULL, '" + url_ + "')"));
  EXPECT_EQ("2", RestoreOnMachineB("app.db"));
  EXPECT_TRUE(ReadFile(machine_b_ / "app.db") == ReadFile(machine_a_ / "app.db"));
}

// sqlite3_interrupt() stops a push, here while it waits for another push
// of the store (another process holds the push lock), with
// SQLITE_INTERRUPT and nothing sent; the next push completes.
TEST_F(ReplicationTest, APushCanBeInterrupted) {
  ASSERT_EQ("1", Query(db_, "SELECT snapshot_backup()"));
  ASSERT_EQ(url_, SetRemote());
  const std::string store = machine_a_ / "app.db-snapshots";
  int ready[2], release[2];
  ASSERT_EQ(0, pipe(ready));
  ASSERT_EQ(0, pipe(release));
  const pid_t holder = fork();
  if (holder == 0) {  // another process pushing: holds the lock until told
    std::unique_ptr<snapshot::PushLock> held;
    const bool ok = snapshot::PushLock::Acquire(Env::Default(), store, 0600, nullptr, 0, &held).ok();
    char c = ok ? '1' : '0';
    if (write(ready[1], &c, 1) != 1 || read(release[0], &c, 1) < 0) _exit(1);
    _exit(0);
  }
  char c = 0;
  ASSERT_EQ(1, read(ready[0], &c, 1));
  ASSERT_EQ('1', c);
  std::thread interrupter([this] {
    usleep(200 * 1000);  // whenever it comes, the push is still waiting: the lock is held
    sqlite3_interrupt(db_);
  });
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(SQLITE_OK, sqlite3_prepare_v2(db_, "SELECT snapshot_push()", -1, &stmt, nullptr));
  EXPECT_EQ(SQLITE_INTERRUPT, sqlite3_step(stmt)) << sqlite3_errmsg(db_);
  sqlite3_finalize(stmt);
  interrupter.join();
  ASSERT_EQ(1, write(release[1], "x", 1));
  int status = 0;
  waitpid(holder, &status, 0);
  for (int fd : {ready[0], ready[1], release[0], release[1]}) close(fd);
  EXPECT_TRUE(Listed().empty());
  EXPECT_EQ("3", Query(db_, "SELECT snapshot_push()"));
}

// Threads of this process named `name` (/proc/self/task/*/comm).
int ThreadsNamed(const std::string& name) {
  std::vector<std::string> tasks;
  Env::Default()->GetChildren("/proc/self/task", &tasks);
  int n = 0;
  for (const std::string& t : tasks) {
    if (t[0] != '.' && ReadFile("/proc/self/task/" + t + "/comm") == name + "\n") n++;
  }
  return n;
}

// A process forked while a background upload is under way (a preforking
// server) has no upload thread and no queued push of its parent's, can
// push the store itself, and exits at once.
TEST_F(ReplicationTest, AForkedChildInheritsNoHalfOwnedUpload) {
  const std::string endpoint = std::getenv("AWS_ENDPOINT_URL");
  TcpProxy proxy(std::atoi(endpoint.substr(endpoint.rfind(':') + 1).c_str()));
  ScopedEnv through_proxy("AWS_ENDPOINT_URL", ("http://127.0.0.1:" + std::to_string(proxy.port())).c_str());
  ASSERT_EQ(url_, SetRemote());
  proxy.CutAfter(256 * 1024);
  ASSERT_EQ("1", Query(db_, "SELECT snapshot_backup()"));
  proxy.WaitUntilCut();  // the parent's upload now fails and retries
  ASSERT_EQ("1", Query(db_, "SELECT json_extract(snapshot_status(), '$.remote.uploading')"));
  ASSERT_EQ(1, ThreadsNamed("snapshot-push"));
  const pid_t child = fork();
  if (child == 0) {
    int code = 0;
    if (ThreadsNamed("snapshot-push") != 0) code |= 1;
    sqlite3* db = nullptr;
    if (sqlite3_open((machine_a_ / "app.db").c_str(), &db) != SQLITE_OK) _exit(8);
    if (Query(db, "SELECT json_extract(snapshot_status(), '$.remote.uploading')") != "0") code |= 2;
    sqlite3_close(db);
    _exit(code);
  }
  int status = 0;
  ASSERT_EQ(child, waitpid(child, &status, 0));
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(0, WEXITSTATUS(status)) << "1: an upload thread; 2: the parent's queued push";
  proxy.Resume();
  ASSERT_TRUE(WaitForRemoteStatus("snapshots_not_remote", "0"));
  WaitForBackgroundPush(db_);
}

}  // namespace
