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
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>

#include "remote/s3_client.h"
#include "store/store.h"
#include "tests/remote/remote_test_util.h"
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
using snapshot_test::Query;
using snapshot_test::QueryInt;
using snapshot_test::ReadFile;
using snapshot_test::ScopedEnv;
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
    db_ = OpenDb(machine_a_ / "app.db");
    ASSERT_EQ("", Exec(db_, "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);"
                            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) "
                            "INSERT INTO t(v) SELECT randomblob(600) FROM n;"));
  }

  void TearDown() override {
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
  ASSERT_EQ("2", Query(db_, "SELECT snapshot_backup()"));
  EXPECT_EQ("2", Query(db_, "SELECT snapshot_push()")) << "the new pack and manifest only";
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
  ASSERT_EQ(url_, SetRemote());
  ASSERT_EQ("1", Query(db_, "SELECT snapshot_backup()"));
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
  EXPECT_EQ("6", Query(db_, "SELECT snapshot_push()"));
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
  ASSERT_EQ(url_, SetRemote());
  ASSERT_EQ("1", Query(db_, "SELECT snapshot_backup()"));
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
  ASSERT_EQ(url_, SetRemote());
  ASSERT_EQ("1", Query(db_, "SELECT snapshot_backup()"));
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
  ASSERT_EQ(url_, SetRemote());
  ASSERT_EQ("1", Query(db_, "SELECT snapshot_backup()"));
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

}  // namespace
