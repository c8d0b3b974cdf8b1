// Damage to the store seen through SQL: reported (snapshot_verify, restore)
// and never restored.

#include "tests/sql/sql_test_util.h"

namespace snapshot_test {
namespace {

class SqlDamageOnPageOne : public SqlFixture {};

class SqlDamage : public SqlFixture, public ::testing::WithParamInterface<std::string> {
 protected:
  // Two snapshots whose packs have many frames (random, incompressible rows).
  void Build(sqlite3* a) {
    Ok(a, "PRAGMA journal_mode=" + GetParam());
    Fill(a, "t", 3000, 1500);  // ~4.6 MB: several compression frames in pack 1
    EXPECT_EQ(1, Backup(a, "one"));
    Ok(a, "UPDATE t SET b = randomblob(1500) WHERE id > 2500");
    EXPECT_EQ(2, Backup(a, "two"));
    EXPECT_EQ("ok", Query(a, "SELECT snapshot_verify()"));
    Ok(a, "DELETE FROM t WHERE id % 2 = 0");
  }
};

TEST_P(SqlDamage, FlippedByteInTheMiddleOfAPack) {
  Conn a(DbPath());
  Build(a);
  const std::string live = Digest(a);
  const std::string pack = PackPath(StoreDir(), 1);
  ASSERT_GT(FileSize(pack), 4000000u);
  FlipByte(pack, FileSize(pack) / 3);  // a frame in the middle: page 1 still reads

  const std::string v = Query(a, "SELECT snapshot_verify()");
  EXPECT_TRUE(IsError(v)) << v;
  EXPECT_TRUE(Contains(v, "snapshot 1 (")) << v;
  EXPECT_TRUE(Contains(v, "damaged")) << v;
  EXPECT_TRUE(Contains(Query(a, "SELECT snapshot_verify(1)"), "snapshot 1 (")) << Query(a, "SELECT snapshot_verify(1)");

  // Refused before anything is written: the database and the store stay
  // as they were (no pre-restore snapshot of a restore that cannot happen).
  ExpectRefused(a, "SELECT snapshot_restore(1)", {"damaged"}, StoreDir());
  EXPECT_EQ(live, Digest(a));
  EXPECT_EQ("ok", Integrity(a));
  EXPECT_FALSE(Exists(DbPath() + "-journal"));
  Conn b(DbPath());
  EXPECT_EQ(live, Digest(b));

  const std::string out = Path("r.db");
  const std::string t = RestoreTo(a, out, 1);
  EXPECT_TRUE(IsError(t)) << t;
  EXPECT_TRUE(Contains(t, "damaged")) << t;
  EXPECT_FALSE(Exists(out));
  EXPECT_FALSE(Exists(out + ".tmp"));
}

// In rollback mode pages are stored in page order, so frame 0 of the first
// pack holds page 1, which SQLite reads when it opens the snapshot.
TEST_F(SqlDamageOnPageOne, IsReportedAsDamage) {
  Conn a(DbPath());
  Ok(a, "PRAGMA journal_mode=DELETE");
  Fill(a, "t", 3000, 1500);
  EXPECT_EQ(1, Backup(a, "one"));
  Ok(a, "DELETE FROM t WHERE id % 2 = 0");
  const std::string live = Digest(a);
  FlipByte(PackPath(StoreDir(), 1), 32 + 100);  // frame 0: holds page 1
  const std::string v = Query(a, "SELECT snapshot_verify(1)");
  EXPECT_TRUE(Contains(v, "snapshot 1 (")) << v;
  const auto store_before = TreeState(StoreDir());
  const std::string r = Query(a, "SELECT snapshot_restore(1)");
  EXPECT_TRUE(IsError(r)) << r;
  EXPECT_TRUE(Contains(r, "damaged")) << "the error does not say the snapshot is damaged: " << r;
  EXPECT_EQ(live, Digest(a));
  EXPECT_EQ("ok", Integrity(a));
  EXPECT_EQ(store_before, TreeState(StoreDir()));
  const std::string t = RestoreTo(a, Path("r.db"), 1);
  EXPECT_TRUE(Contains(t, "damaged")) << t;
}

TEST_P(SqlDamage, DamagedManifest) {
  Conn a(DbPath());
  Build(a);
  const std::string live = Digest(a);
  const std::string manifest = StoreDir() + "/snapshots/0000000002.snap";
  FlipByte(manifest, FileSize(manifest) / 2);
  const std::string v = Query(a, "SELECT snapshot_verify()");
  EXPECT_TRUE(Contains(v, "snapshot 2 (")) << v;
  EXPECT_FALSE(Contains(v, "snapshot 1 (")) << v;
  EXPECT_EQ("ok", Query(a, "SELECT snapshot_verify(1)"));
  const std::string r = Query(a, "SELECT snapshot_restore(2)");
  EXPECT_TRUE(IsError(r)) << r;
  EXPECT_EQ(live, Digest(a));
  // The damaged snapshot is not listed, so never restored as "latest".
  EXPECT_EQ("1:one", SnapshotIds(a));
  // Prune cannot know what a damaged snapshot needs: it deletes nothing.
  ExpectRefused(a, "SELECT snapshot_prune(1)", {"snapshot 2"}, StoreDir());
}

// After damage is found, a new backup must not silently depend on the
// damaged bytes: it is what the user takes to be safe again, and while it
// refers to them no prune can get rid of them either.
TEST_P(SqlDamage, NewBackupAfterDamageIsRestorable) {
  Conn a(DbPath());
  Ok(a, "PRAGMA journal_mode=" + GetParam());
  Fill(a, "t", 3000, 1500);
  EXPECT_EQ(1, Backup(a, "one"));
  Ok(a, "UPDATE t SET a = 'changed' WHERE id > 2900");  // the other pages stay as stored
  const std::string pack = PackPath(StoreDir(), 1);
  FlipByte(pack, FileSize(pack) / 3);
  EXPECT_TRUE(Contains(Query(a, "SELECT snapshot_verify()"), "snapshot 1 ("));
  const std::string live = Digest(a);
  EXPECT_EQ(2, Backup(a, "after damage"));
  EXPECT_EQ("ok", Query(a, "SELECT snapshot_verify(2)"));
  const std::string out = Path("r.db");
  EXPECT_EQ("2", RestoreTo(a, out, 2));
  if (Exists(out)) {
    Conn r(out, false);
    EXPECT_EQ(live, Digest(r));
  }
}

INSTANTIATE_TEST_SUITE_P(SqlModes, SqlDamage, ::testing::Values("DELETE", "WAL"), ModeName);

}  // namespace
}  // namespace snapshot_test
