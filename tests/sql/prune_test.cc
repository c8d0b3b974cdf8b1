// snapshot_prune: the newest stays restorable, space is reclaimed and packs
// rewritten, keep-days.

#include <chrono>
#include <map>
#include <thread>

#include "tests/sql/sql_test_util.h"

namespace snapshot_test {
namespace {

class SqlPrune : public SqlFixture {};

TEST_F(SqlPrune, KeepLastLeavesTheNewestRestorable) {
  Conn a(DbPath());
  std::vector<std::string> digests;
  Fill(a, "t", 1000, 300);
  for (int i = 1; i <= 5; i++) {
    Ok(a, "UPDATE t SET b = randomblob(300) WHERE id % 5 = " + std::to_string(i % 5));
    Fill(a, "t", 50, 300);
    EXPECT_EQ(i, Backup(a, "s" + std::to_string(i)));
    digests.push_back(Digest(a));
  }
  Ok(a, "DELETE FROM t");
  EXPECT_EQ("0", Query(a, "SELECT snapshot_prune(5)"));
  EXPECT_EQ("0", Query(a, "SELECT snapshot_prune(100)"));
  EXPECT_EQ(3, Prune(a, 2));
  EXPECT_EQ("4:s4,5:s5", SnapshotIds(a));
  EXPECT_EQ("ok", Query(a, "SELECT snapshot_verify()"));
  EXPECT_TRUE(Contains(Query(a, "SELECT snapshot_restore(1)"), "no snapshot with id 1"));
  EXPECT_EQ(4, Restore(a, 4));
  EXPECT_EQ(digests[3], Digest(a));
  EXPECT_EQ("ok", Integrity(a));
  EXPECT_EQ(5, Restore(a, 5));
  EXPECT_EQ(digests[4], Digest(a));
  const std::string out = Path("r4.db");
  EXPECT_EQ("4", RestoreTo(a, out, 4));
  Conn r(out, false);
  EXPECT_EQ(digests[3], Digest(r));
  EXPECT_EQ("ok", Integrity(r));
}

TEST_F(SqlPrune, ReclaimsSpaceAndRewritesPacks) {
  Conn a(DbPath());
  Fill(a, "t", 2000, 1000);
  EXPECT_EQ(1, Backup(a));
  Ok(a, "UPDATE t SET b = randomblob(1000) WHERE id % 3 != 0");  // 2/3 of pack 1 no longer live
  EXPECT_EQ(2, Backup(a));
  const std::string d2 = Digest(a);
  const std::vector<std::string> packs_before = FilesIn(StoreDir() + "/packs");
  EXPECT_EQ(2u, packs_before.size());
  uint64_t bytes_before = 0;
  for (const auto& p : packs_before) bytes_before += FileSize(StoreDir() + "/packs/" + p);
  EXPECT_EQ(1, Prune(a, 1));
  const std::vector<std::string> packs_after = FilesIn(StoreDir() + "/packs");
  uint64_t bytes_after = 0;
  for (const auto& p : packs_after) bytes_after += FileSize(StoreDir() + "/packs/" + p);
  EXPECT_EQ(packs_after.end(), std::find(packs_after.begin(), packs_after.end(), "0000000001.pack"))
      << "pack 1 was not rewritten";
  EXPECT_LT(bytes_after, bytes_before * 3 / 4);
  EXPECT_EQ("ok", Query(a, "SELECT snapshot_verify()"));
  Ok(a, "DELETE FROM t");
  EXPECT_EQ(2, Restore(a, 2));
  EXPECT_EQ(d2, Digest(a));
  EXPECT_EQ("ok", Integrity(a));
  // New backups still deduplicate against the rewritten pack (ids follow
  // the highest pack id: the rewrite took 3, the pre-restore 4).
  EXPECT_EQ(5, Backup(a));
  EXPECT_LE(QueryInt(a, "SELECT pages_new FROM snapshot_list WHERE id = 5"), 1);
}

TEST_F(SqlPrune, KeepDays) {
  Conn a(DbPath());
  Fill(a, "t", 100);
  for (int i = 1; i <= 3; i++) {
    Ok(a, "INSERT INTO t(a) VALUES ('" + std::to_string(i) + "')");
    EXPECT_EQ(i, Backup(a));
  }
  const std::string d3 = Digest(a);
  // Everything is younger than a day: nothing goes, whatever keep_last says.
  EXPECT_EQ("0", Query(a, "SELECT snapshot_prune(NULL, 1)"));
  EXPECT_EQ("0", Query(a, "SELECT snapshot_prune(1, 1)"));
  EXPECT_EQ("0", Query(a, "SELECT snapshot_prune(1, 0.5)"));
  EXPECT_EQ(3, SnapshotCount(a));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  // Nothing is younger than 0 days; keep_last 2 keeps two.
  EXPECT_EQ("1", Query(a, "SELECT snapshot_prune(2, 0)"));
  EXPECT_EQ("2,3", Query(a, "SELECT group_concat(id) FROM snapshot_list"));
  // Only the age rule: the newest is always kept.
  EXPECT_EQ("1", Query(a, "SELECT snapshot_prune(NULL, 0)"));
  EXPECT_EQ("3", Query(a, "SELECT group_concat(id) FROM snapshot_list"));
  Ok(a, "DELETE FROM t");
  EXPECT_EQ(3, Restore(a, 3));
  EXPECT_EQ(d3, Digest(a));
  EXPECT_EQ("ok", Query(a, "SELECT snapshot_verify()"));
}

class SqlCompaction : public SqlFixture {};

// snapshot_backup() runs a bounded compaction round once its snapshot is
// published (never inside it): a store that only scheduled backups write,
// with no automatic snapshots' thread, stays small, and every snapshot
// still restores.
TEST_F(SqlCompaction, BackupsKeepTheStoreSmall) {
  Conn a(DbPath());
  Fill(a, "t", 200, 100);
  std::map<int64_t, std::string> digests;
  for (int i = 1; i <= 45; i++) {
    Ok(a, "UPDATE t SET b = randomblob(100) WHERE id = " + std::to_string(i));
    digests[Backup(a)] = Digest(a);
  }
  const size_t files = FilesIn(StoreDir() + "/snapshots").size() + FilesIn(StoreDir() + "/packs").size();
  EXPECT_LE(files, 64u + 2u) << "without compaction: 90";
  EXPECT_EQ(std::to_string(digests.size()), Query(a, "SELECT count(*) FROM snapshot_list"));
  EXPECT_EQ("ok", Query(a, "SELECT snapshot_verify()"));
  for (int64_t id : {digests.begin()->first, std::next(digests.begin(), 20)->first, digests.rbegin()->first}) {
    const std::string out = Path("r" + std::to_string(id) + ".db");
    EXPECT_EQ(std::to_string(id), RestoreTo(a, out, id));
    Conn r(out, false);
    EXPECT_EQ(digests[id], Digest(r)) << "snapshot " << id;
  }
}

}  // namespace
}  // namespace snapshot_test
