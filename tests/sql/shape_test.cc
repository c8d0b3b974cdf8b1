// Database shapes: page sizes, empty databases, auto-vacuum, growing and
// shrinking between snapshots, schema names that need quoting, exclusive
// locking mode and memory-mapped connections.

#include "tests/sql/sql_test_util.h"

namespace snapshot_test {
namespace {

struct PageSizeCase {
  int page_size;
  std::string mode;
};

void PrintTo(const PageSizeCase& c, std::ostream* os) { *os << c.page_size << " " << c.mode; }

class SqlPageSize : public SqlFixture, public ::testing::WithParamInterface<PageSizeCase> {};

TEST_P(SqlPageSize, BackupRestoreAndRestoreTo) {
  const int ps = GetParam().page_size;
  const bool wal = GetParam().mode == "WAL";
  Conn w(DbPath());
  Ok(w, "PRAGMA page_size=" + std::to_string(ps));
  Ok(w, "PRAGMA journal_mode=" + GetParam().mode);
  if (wal) Ok(w, "PRAGMA wal_autocheckpoint=0");
  Fill(w, "t", 3000, 400);  // > 1 MB: several compression frames at any page size
  Ok(w, "CREATE INDEX t_a ON t(a); DELETE FROM t WHERE id % 5 = 0");
  ASSERT_EQ(ps, PageSize(w));
  const std::string image = Serialize(w);
  const std::string d1 = Digest(w);

  EXPECT_EQ(1, Backup(w));
  EXPECT_EQ(ps, QueryInt(w, "SELECT page_size FROM snapshot_list WHERE id = 1"));
  EXPECT_EQ(int64_t(image.size()), QueryInt(w, "SELECT db_bytes FROM snapshot_list WHERE id = 1"));
  const std::string out = Path("r.db");
  EXPECT_EQ("1", RestoreTo(w, out, 1));
  EXPECT_EQ("", ComparePages(ReadFile(out), image, uint32_t(ps)));
  if (!wal) {
    EXPECT_EQ("", SameBytes(ReadFile(out), ReadFile(DbPath())));
  }
  {
    Conn r(out, false);
    EXPECT_EQ("ok", Integrity(r));
    EXPECT_EQ(d1, Digest(r));
    EXPECT_EQ(ps, PageSize(r));
  }

  Ok(w, "UPDATE t SET a = upper(a) WHERE id % 3 = 0; DELETE FROM t WHERE id > 2000");
  const std::string d2 = Digest(w);
  EXPECT_EQ(1, Restore(w, 1));
  EXPECT_EQ(d1, Digest(w));
  EXPECT_EQ("ok", Integrity(w));
  EXPECT_EQ(ps, PageSize(w));
  EXPECT_EQ("", ComparePages(Serialize(w), image, uint32_t(ps)));
  EXPECT_EQ(2, Restore(w, 2));  // the pre-restore snapshot
  EXPECT_EQ(d2, Digest(w));
  EXPECT_EQ("ok", Query(w, "SELECT snapshot_verify()"));
}

INSTANTIATE_TEST_SUITE_P(SqlSizes, SqlPageSize,
                         ::testing::Values(PageSizeCase{512, "DELETE"}, PageSizeCase{512, "WAL"},
                                           PageSizeCase{65536, "DELETE"}, PageSizeCase{65536, "WAL"}),
                         [](const ::testing::TestParamInfo<PageSizeCase>& i) {
                           return std::to_string(i.param.page_size) + "_" + i.param.mode;
                         });

class SqlShape : public SqlFixture {};

TEST_F(SqlShape, EmptyDatabaseBacksUpAndRestores) {
  Conn a(DbPath());
  ASSERT_EQ(0u, FileSize(DbPath()));
  EXPECT_EQ(1, Backup(a, "empty"));
  EXPECT_FALSE(Exists(DbPath() + "-shm")) << "a backup of a database in no WAL mode created a -shm file";
  EXPECT_EQ("0|0", Query(a, "SELECT page_count || '|' || db_bytes FROM snapshot_list WHERE id = 1"));
  EXPECT_EQ("ok", Query(a, "SELECT snapshot_verify(1)"));
  const std::string out = Path("empty-restored.db");
  EXPECT_EQ("1", RestoreTo(a, out, 1));
  EXPECT_TRUE(Exists(out));
  EXPECT_EQ(0u, FileSize(out));
  {
    Conn r(out, false);
    EXPECT_EQ("0", Query(r, "SELECT count(*) FROM sqlite_schema"));
    EXPECT_EQ("ok", Integrity(r));
  }

  Fill(a, "t", 100);
  const std::string full = Digest(a);
  Conn b(DbPath());
  EXPECT_EQ(100, QueryInt(b, "SELECT count(*) FROM t"));
  EXPECT_EQ(1, Restore(a, 1));
  EXPECT_EQ("0", Query(a, "SELECT count(*) FROM sqlite_schema"));
  EXPECT_EQ("ok", Integrity(a));
  EXPECT_TRUE(Contains(Query(b, "SELECT count(*) FROM t"), "no such table"));
  EXPECT_EQ("1:empty,2:pre-restore", SnapshotIds(a));
  EXPECT_EQ(2, Restore(a, 2));
  EXPECT_EQ(full, Digest(a));
  EXPECT_EQ(full, Digest(b));
  EXPECT_EQ("ok", Query(a, "SELECT snapshot_verify()"));
}

TEST_F(SqlShape, EmptySnapshotRestoresIntoWalDatabase) {
  Conn a(DbPath());
  EXPECT_EQ(1, Backup(a, "empty"));
  Ok(a, "PRAGMA journal_mode=WAL");
  Fill(a, "t", 100);
  const std::string full = Digest(a);
  EXPECT_EQ(1, Restore(a, 1));
  EXPECT_EQ("0", Query(a, "SELECT count(*) FROM sqlite_schema"));
  EXPECT_EQ("ok", Integrity(a));
  EXPECT_EQ("wal", Query(a, "PRAGMA journal_mode"));
  EXPECT_EQ(2, Restore(a, 2));
  EXPECT_EQ(full, Digest(a));
}

// An empty snapshot has no page size of its own; restoring it into a WAL
// database of another page size is refused like any other, and a refused
// restore records nothing.
TEST_F(SqlShape, EmptySnapshotIntoWalDatabaseOfAnotherPageSize) {
  Conn a(DbPath());
  EXPECT_EQ(1, Backup(a, "empty"));
  Ok(a, "PRAGMA page_size=8192; PRAGMA journal_mode=WAL");
  Fill(a, "t", 100);
  ASSERT_EQ(8192, PageSize(a));
  const std::string r = Query(a, "SELECT snapshot_restore(1)");
  if (IsError(r)) {
    EXPECT_TRUE(Contains(r, "page size")) << r;
    EXPECT_EQ(1, SnapshotCount(a)) << "a refused restore left a pre-restore snapshot: " << SnapshotIds(a);
    EXPECT_EQ(100, QueryInt(a, "SELECT count(*) FROM t"));
  } else {
    // Accepted: then it must have worked, and be undoable.
    EXPECT_EQ("0", Query(a, "SELECT count(*) FROM sqlite_schema"));
    EXPECT_EQ("ok", Integrity(a));
    EXPECT_EQ(2, Restore(a, 2));
    EXPECT_EQ(100, QueryInt(a, "SELECT count(*) FROM t"));
  }
  EXPECT_EQ("ok", Integrity(a));
}

TEST_F(SqlShape, AutoVacuumDatabase) {
  for (const char* mode : {"FULL", "INCREMENTAL"}) {
    SCOPED_TRACE(mode);
    const std::string path = Path(std::string("av-") + mode + ".db");
    Conn a(path);
    Ok(a, std::string("PRAGMA auto_vacuum=") + mode);
    Fill(a, "t", 3000, 300);
    Ok(a, "CREATE INDEX t_a ON t(a)");
    const std::string full = Digest(a);
    const int64_t full_pages = PageCount(a);
    EXPECT_EQ(1, Backup(a));
    Ok(a, "DELETE FROM t WHERE id > 100; PRAGMA incremental_vacuum");
    ASSERT_LT(PageCount(a), full_pages / 2);
    const std::string small = Digest(a);
    EXPECT_EQ(1, Restore(a, 1));
    EXPECT_EQ(full, Digest(a));
    EXPECT_EQ(full_pages, PageCount(a));
    EXPECT_EQ("ok", Integrity(a));
    EXPECT_EQ(2, Restore(a, 2));
    EXPECT_EQ(small, Digest(a));
    EXPECT_EQ("ok", Integrity(a));
  }
}

// Schema names that need quoting reach every function intact.
TEST_F(SqlShape, SchemaNameThatNeedsQuoting) {
  Conn a(DbPath());
  const std::string aux = Path("odd name.db");
  Ok(a, "ATTACH '" + aux + "' AS \"we\"\"ird sch\"");
  Ok(a, "CREATE TABLE \"we\"\"ird sch\".t(x); INSERT INTO \"we\"\"ird sch\".t VALUES (1), (2)");
  const std::string schema = "we\"ird sch";
  EXPECT_EQ("1", QueryArgs(a, "SELECT snapshot_backup('q', ?)", {Arg::Text(schema)}));
  EXPECT_EQ("1", QueryArgs(a, "SELECT count(*) FROM snapshot_list(?)", {Arg::Text(schema)}));
  Ok(a, "DELETE FROM \"we\"\"ird sch\".t");
  EXPECT_EQ("1", QueryArgs(a, "SELECT snapshot_restore(1, ?)", {Arg::Text(schema)}));
  EXPECT_EQ("2", Query(a, "SELECT count(*) FROM \"we\"\"ird sch\".t"));
  EXPECT_EQ("ok", QueryArgs(a, "SELECT snapshot_verify(NULL, ?)", {Arg::Text(schema)}));
  EXPECT_TRUE(Exists(aux + "-snapshots/STORE"));
}

TEST_F(SqlShape, GrowShrinkAndPageSizeChangeBetweenSnapshots) {
  Conn a(DbPath());
  Ok(a, "PRAGMA journal_mode=DELETE");
  struct State {
    int64_t id;
    std::string digest, file;
    int64_t page_size, page_count;
  };
  std::vector<State> states;
  auto snap = [&](const std::string& label) {
    State s;
    s.id = Backup(a, label);
    s.digest = Digest(a);
    s.file = ReadFile(DbPath());
    s.page_size = PageSize(a);
    s.page_count = PageCount(a);
    states.push_back(s);
  };
  Fill(a, "t", 100);
  snap("small");
  Fill(a, "t", 4000, 500);
  Fill(a, "u", 500, 2000);
  snap("grown");
  ASSERT_GT(states[1].page_count, states[0].page_count * 10);
  Ok(a, "DELETE FROM t WHERE id > 300; DROP TABLE u; VACUUM");
  snap("shrunk");
  ASSERT_LT(states[2].page_count, states[1].page_count / 10);
  Ok(a, "PRAGMA page_size=8192; VACUUM");
  ASSERT_EQ(8192, PageSize(a));
  Fill(a, "v", 200, 100);
  snap("8k pages");
  Ok(a, "INSERT INTO v(a) VALUES ('current')");
  const std::string current = Digest(a);

  for (const State& s : states) {
    SCOPED_TRACE("snapshot " + std::to_string(s.id));
    EXPECT_EQ(s.page_size, QueryInt(a, "SELECT page_size FROM snapshot_list WHERE id = " + std::to_string(s.id)));
    EXPECT_EQ(s.page_count, QueryInt(a, "SELECT page_count FROM snapshot_list WHERE id = " + std::to_string(s.id)));
    const std::string out = Path("r" + std::to_string(s.id) + ".db");
    EXPECT_EQ(std::to_string(s.id), RestoreTo(a, out, s.id));
    EXPECT_EQ("", SameBytes(ReadFile(out), s.file));
  }
  // Restore them into the live database, out of order, crossing page sizes.
  Conn b(DbPath());
  for (int k : {0, 3, 1, 2, 0}) {
    const State& s = states[size_t(k)];
    SCOPED_TRACE("restoring snapshot " + std::to_string(s.id));
    EXPECT_EQ(s.id, Restore(a, s.id));
    EXPECT_EQ(s.digest, Digest(a));
    EXPECT_EQ(s.digest, Digest(b));
    EXPECT_EQ("ok", Integrity(a));
    EXPECT_EQ(s.page_size, PageSize(a));
    EXPECT_EQ(s.page_count, PageCount(a));
    EXPECT_EQ("", ComparePages(ReadFile(DbPath()), s.file, uint32_t(s.page_size)));
  }
  // The first pre-restore snapshot holds the state before all of that.
  const int64_t first_pre = QueryInt(a, "SELECT min(id) FROM snapshot_list WHERE label = 'pre-restore'");
  EXPECT_EQ(5, first_pre);
  EXPECT_EQ(first_pre, Restore(a, first_pre));
  EXPECT_EQ(current, Digest(a));
  EXPECT_EQ(8192, PageSize(a));
  EXPECT_EQ("ok", Query(a, "SELECT snapshot_verify()"));
}

TEST_F(SqlShape, WalRefusesSnapshotOfAnotherPageSize) {
  Conn a(DbPath());
  Fill(a, "t", 200);
  EXPECT_EQ(1, Backup(a, "4k"));
  Ok(a, "PRAGMA page_size=8192; VACUUM; PRAGMA journal_mode=WAL");
  ASSERT_EQ(8192, PageSize(a));
  Ok(a, "INSERT INTO t(a) VALUES ('after')");
  ExpectRefused(a, "SELECT snapshot_restore(1)", {"page size", "WAL", "journal_mode=DELETE"}, StoreDir());
  EXPECT_EQ("ok", Integrity(a));
  EXPECT_EQ("wal", Query(a, "PRAGMA journal_mode"));
  EXPECT_EQ(1, SnapshotCount(a));
  // The way out the message names works.
  const std::string out = Path("r.db");
  EXPECT_EQ("1", RestoreTo(a, out, 1));
  Ok(a, "PRAGMA journal_mode=DELETE");
  EXPECT_EQ(1, Restore(a, 1));
  EXPECT_EQ("ok", Integrity(a));  // (PRAGMA page_size is refreshed by the next read)
  EXPECT_EQ(4096, PageSize(a));
  EXPECT_EQ(0, QueryInt(a, "SELECT count(*) FROM t WHERE a = 'after'"));
}

TEST_F(SqlShape, ExclusiveLockingMode) {
  Conn a(DbPath());
  Ok(a, "PRAGMA locking_mode=EXCLUSIVE");
  Fill(a, "t", 500);
  const std::string d1 = Digest(a);
  EXPECT_EQ(1, Backup(a));
  Ok(a, "DELETE FROM t WHERE id > 20; INSERT INTO t(a) VALUES ('later')");
  const std::string d2 = Digest(a);
  EXPECT_EQ(1, Restore(a, 1));
  EXPECT_EQ(d1, Digest(a));
  EXPECT_EQ("ok", Integrity(a));
  EXPECT_EQ(2, Restore(a, 2));
  EXPECT_EQ(d2, Digest(a));
  Ok(a, "PRAGMA locking_mode=NORMAL; SELECT count(*) FROM t");  // releases the lock
  Conn b(DbPath());
  EXPECT_EQ(d2, Digest(b));
  EXPECT_EQ("ok", Integrity(b));
}

TEST_F(SqlShape, MemoryMappedConnectionsSeeShrinkingAndGrowingRestores) {
  Conn a(DbPath());
  Conn b(DbPath());
  for (sqlite3* c : {a.get(), b.get()}) Ok(c, "PRAGMA mmap_size=268435456");
  Fill(a, "t", 50);
  const std::string small = Digest(a);
  EXPECT_EQ(1, Backup(a, "small"));
  Fill(a, "t", 5000, 400);
  const std::string big = Digest(a);
  const int64_t big_pages = PageCount(a);
  EXPECT_EQ(big, Digest(b));  // b has the big file mapped
  EXPECT_EQ(1, Restore(a, 1));
  EXPECT_LT(PageCount(b), big_pages / 10);
  EXPECT_EQ(small, Digest(b));
  EXPECT_EQ("ok", Integrity(b));
  EXPECT_EQ(2, Restore(b, 2));
  EXPECT_EQ(big, Digest(a));
  EXPECT_EQ("ok", Integrity(a));
}

}  // namespace
}  // namespace snapshot_test
