// Every journal mode: a snapshot's image equals the source page for page, an
// unchanged database adds no pages, a restore keeps the live journal mode,
// and a backup inside a read transaction sees that transaction.

#include "tests/sql/sql_test_util.h"

namespace snapshot_test {
namespace {

class SqlJournal : public SqlFixture, public ::testing::WithParamInterface<std::string> {
 protected:
  bool wal() const { return GetParam() == "WAL"; }
};

// Builds a database with tables, an index and free pages; in WAL mode all of
// it stays in the -wal file (the writer never checkpoints and stays open).
void BuildMixedDb(sqlite3* w, const std::string& mode) {
  const bool wal = mode == "WAL";
  EXPECT_EQ(Lower(mode), Query(w, "PRAGMA journal_mode=" + mode));
  if (wal) Ok(w, "PRAGMA wal_autocheckpoint=0");
  Fill(w, "t1", 1500, 300);
  Ok(w, "CREATE INDEX t1_a ON t1(a)");
  Fill(w, "t2", 300, 3000);  // overflow pages
  Ok(w, "DELETE FROM t1 WHERE id % 7 = 0");  // free pages
  Ok(w, "CREATE TABLE kv(k TEXT PRIMARY KEY, v) WITHOUT ROWID; INSERT INTO kv VALUES ('a', 1), ('b', 2)");
}

TEST_P(SqlJournal, RestoreToEqualsSourcePageForPage) {
  Conn w(DbPath());
  BuildMixedDb(w, GetParam());
  if (wal()) {
    // The committed content is only in the -wal file: the database file
    // itself is still (nearly) empty.
    ASSERT_GT(FileSize(DbPath() + "-wal"), 1u << 20);
    ASSERT_LT(FileSize(DbPath()), 8192u);
  }
  const std::string image = Serialize(w);
  ASSERT_EQ(uint64_t(PageCount(w)) * 4096, image.size());
  const std::string digest = Digest(w);

  Conn other(DbPath());
  EXPECT_EQ(1, Backup(other, "from another connection"));
  EXPECT_EQ(2, Backup(w, "from the writer"));
  if (wal()) {
    // Snapshot 1 read the committed pages from the -wal file (checked above);
    // a snapshot then checkpoints (ext/tracked_capture.cc), so snapshot 2
    // read them from the database file. Both must give the same image.
    ASSERT_EQ(uint64_t(PageCount(w)) * 4096, FileSize(DbPath())) << "no checkpoint ran after the snapshot";
  }

  for (int id : {1, 2}) {
    SCOPED_TRACE("snapshot " + std::to_string(id));
    const std::string out = Path("restored" + std::to_string(id) + ".db");
    EXPECT_EQ(std::to_string(id), RestoreTo(other, out, id));
    const std::string restored = ReadFile(out);
    EXPECT_EQ("", ComparePages(restored, image, 4096));
    if (!wal()) {
      // Rollback mode: the file is the database, byte for byte.
      EXPECT_EQ("", SameBytes(restored, ReadFile(DbPath())));
    }
    Conn r(out, /*load=*/false);
    EXPECT_EQ("ok", Integrity(r));
    EXPECT_EQ(digest, Digest(r));
  }

  // Restore into the live database after changing it: from the connection
  // in the journal mode under test (journal modes other than WAL are
  // per connection), then from another one.
  for (sqlite3* restorer : {w.get(), other.get()}) {
    SCOPED_TRACE(restorer == w.get() ? "restored by the writer" : "restored by another connection");
    Ok(w, "DELETE FROM t1 WHERE id < 1000; DROP TABLE t2; CREATE TABLE extra(x)");
    EXPECT_NE(digest, Digest(other));
    EXPECT_EQ(1, Restore(restorer, 1));
    EXPECT_EQ("ok", Integrity(other));
    EXPECT_EQ("ok", Integrity(w));
    EXPECT_EQ(digest, Digest(w));
    EXPECT_EQ(digest, Digest(other));
    EXPECT_EQ("", ComparePages(Serialize(w), image, 4096));
    EXPECT_EQ(Lower(GetParam()), Query(w, "PRAGMA journal_mode"));
    if (!wal()) {
      EXPECT_EQ("", ComparePages(ReadFile(DbPath()), image, 4096));
      EXPECT_FALSE(Exists(DbPath() + "-journal") && FileSize(DbPath() + "-journal") > 0 && GetParam() == "DELETE");
    }
  }
  EXPECT_EQ("ok", Query(w, "SELECT snapshot_verify()"));
}

TEST_P(SqlJournal, UnchangedDatabaseAddsNoPages) {
  Conn w(DbPath());
  BuildMixedDb(w, GetParam());
  EXPECT_EQ(1, Backup(w));
  EXPECT_EQ(2, Backup(w));
  EXPECT_EQ(PageCount(w), QueryInt(w, "SELECT pages_new FROM snapshot_list WHERE id = 1"));
  EXPECT_EQ(0, QueryInt(w, "SELECT pages_new FROM snapshot_list WHERE id = 2"));
  Ok(w, "UPDATE t1 SET a = 'changed' WHERE id = 3");
  EXPECT_EQ(3, Backup(w));
  const int64_t added = QueryInt(w, "SELECT pages_new FROM snapshot_list WHERE id = 3");
  EXPECT_GE(added, 1);
  EXPECT_LE(added, 6);  // page 1, a leaf of t1, leaves of the index
  EXPECT_EQ("ok", Query(w, "SELECT snapshot_verify()"));
}

TEST_P(SqlJournal, RestoreKeepsTheLiveJournalMode) {
  // A snapshot taken in the other journal mode restores into this one.
  Conn a(DbPath());
  const std::string other_mode = wal() ? "DELETE" : "WAL";
  Ok(a, "PRAGMA journal_mode=" + other_mode);
  Fill(a, "t", 200);
  const std::string d1 = Digest(a);
  EXPECT_EQ(1, Backup(a));
  Ok(a, "PRAGMA journal_mode=" + GetParam());
  Ok(a, "DELETE FROM t WHERE id > 10");
  EXPECT_EQ(1, Restore(a, 1));
  EXPECT_EQ(d1, Digest(a));
  EXPECT_EQ(Lower(GetParam()), Query(a, "PRAGMA journal_mode"));
  EXPECT_EQ("ok", Integrity(a));
  Conn b(DbPath());
  if (wal()) {
    EXPECT_EQ("wal", Query(b, "PRAGMA journal_mode"));  // the only persistent mode
  }
  EXPECT_EQ(d1, Digest(b));
}

TEST_P(SqlJournal, BackupInsideReadTransactionSeesThatTransaction) {
  Conn a(DbPath());
  Ok(a, "PRAGMA journal_mode=" + GetParam());
  Fill(a, "t", 100);
  const std::string d1 = Digest(a);
  Ok(a, "BEGIN");
  EXPECT_EQ(100, QueryInt(a, "SELECT count(*) FROM t"));
  if (wal()) {
    // Another connection commits meanwhile; the read transaction still sees
    // the older state, and so must the snapshot.
    Conn b(DbPath());
    Ok(b, "DELETE FROM t WHERE id > 50");
  }
  EXPECT_EQ(1, Backup(a, "in a read transaction"));
  Ok(a, "COMMIT");
  const std::string out = Path("r.db");
  EXPECT_EQ("1", RestoreTo(a, out, 1));
  Conn r(out, false);
  EXPECT_EQ(d1, Digest(r));
  EXPECT_EQ("ok", Integrity(r));
}

INSTANTIATE_TEST_SUITE_P(SqlModes, SqlJournal,
                         ::testing::Values("DELETE", "TRUNCATE", "PERSIST", "MEMORY", "OFF", "WAL"), ModeName);

}  // namespace
}  // namespace snapshot_test
