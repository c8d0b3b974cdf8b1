// The README's story, end to end: back up, delete, restore, and every
// connection (and its prepared statements) sees the restored rows.

#include "tests/sql/sql_test_util.h"

namespace snapshot_test {
namespace {

class SqlReadme : public SqlFixture, public ::testing::WithParamInterface<std::string> {};

TEST_P(SqlReadme, BackupDeleteRestoreBringsRowsBackForEveryConnection) {
  Conn a(DbPath());
  Ok(a, "PRAGMA journal_mode=" + GetParam());
  Ok(a, "CREATE TABLE important(id INTEGER PRIMARY KEY, v TEXT)");
  Ok(a, "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<1000) "
        "INSERT INTO important(v) SELECT 'value ' || i FROM c");
  // Another connection, opened before the restore, with schema and pages cached.
  Conn b(DbPath());
  EXPECT_EQ(1000, QueryInt(b, "SELECT count(*) FROM important"));

  EXPECT_EQ("1", Query(a, "SELECT snapshot_backup('before-upgrade')"));
  const std::string before = Digest(a);
  EXPECT_EQ("1|before-upgrade|4096", Query(a, "SELECT id || '|' || label || '|' || page_size FROM snapshot_list"));
  EXPECT_EQ(PageCount(a), QueryInt(a, "SELECT page_count FROM snapshot_list WHERE id = 1"));
  EXPECT_EQ(PageCount(a) * 4096, QueryInt(a, "SELECT db_bytes FROM snapshot_list WHERE id = 1"));
  EXPECT_EQ(PageCount(a), QueryInt(a, "SELECT pages_new FROM snapshot_list WHERE id = 1"));
  EXPECT_LT(0, QueryInt(a, "SELECT bytes_new FROM snapshot_list WHERE id = 1"));
  const std::string created = Query(a, "SELECT created FROM snapshot_list WHERE id = 1");
  EXPECT_EQ(24u, created.size()) << created;  // 2026-01-02T03:04:05.678Z
  EXPECT_EQ('Z', created.back()) << created;

  Ok(a, "DELETE FROM important");
  EXPECT_EQ(0, QueryInt(b, "SELECT count(*) FROM important"));

  EXPECT_EQ("1", Query(a, "SELECT snapshot_restore(1)"));
  EXPECT_EQ(1000, QueryInt(a, "SELECT count(*) FROM important"));
  EXPECT_EQ(before, Digest(a));
  EXPECT_EQ("ok", Integrity(a));
  // The other connection sees the restored rows at its next query.
  EXPECT_EQ(1000, QueryInt(b, "SELECT count(*) FROM important"));
  EXPECT_EQ(before, Digest(b));
  EXPECT_EQ("ok", Integrity(b));
  EXPECT_EQ(Lower(GetParam()), Query(a, "PRAGMA journal_mode"));
  EXPECT_EQ("1:before-upgrade,2:pre-restore", SnapshotIds(a));
  // A connection opened afterwards sees it too.
  Conn c(DbPath());
  EXPECT_EQ(before, Digest(c));
}

TEST_P(SqlReadme, PreparedStatementsReprepareAfterSchemaDifference) {
  Conn a(DbPath());
  Ok(a, "PRAGMA journal_mode=" + GetParam());
  Ok(a, "CREATE TABLE t(a); INSERT INTO t VALUES (1), (2), (3);"
        "CREATE TABLE x(v); INSERT INTO x VALUES ('x1'), ('x2');");
  EXPECT_EQ(1, Backup(a, "v1"));
  // Change the schema after the snapshot: drop a table, change one, add one.
  Ok(a, "DROP TABLE x; ALTER TABLE t ADD COLUMN b DEFAULT 7; CREATE TABLE y(z); INSERT INTO y VALUES (1);");

  Conn b(DbPath());
  sqlite3_stmt* on_t = nullptr;
  sqlite3_stmt* on_y = nullptr;
  sqlite3_stmt* own = nullptr;  // the restoring connection's own statement
  ASSERT_EQ(SQLITE_OK, sqlite3_prepare_v2(b, "SELECT * FROM t ORDER BY rowid", -1, &on_t, nullptr));
  ASSERT_EQ(SQLITE_OK, sqlite3_prepare_v2(b, "SELECT count(*) FROM y", -1, &on_y, nullptr));
  ASSERT_EQ(SQLITE_OK, sqlite3_prepare_v2(a, "SELECT * FROM t ORDER BY rowid", -1, &own, nullptr));
  ASSERT_EQ(SQLITE_ROW, sqlite3_step(on_t));
  EXPECT_EQ(2, sqlite3_column_count(on_t));
  EXPECT_EQ(7, sqlite3_column_int(on_t, 1));
  sqlite3_reset(on_t);
  ASSERT_EQ(SQLITE_ROW, sqlite3_step(on_y));
  sqlite3_reset(on_y);

  EXPECT_EQ("1", Query(a, "SELECT snapshot_restore(1)"));

  // b's statement is re-prepared against the restored schema: one column.
  ASSERT_EQ(SQLITE_ROW, sqlite3_step(on_t)) << sqlite3_errmsg(b);
  EXPECT_EQ(1, sqlite3_column_count(on_t));
  EXPECT_EQ(1, sqlite3_column_int(on_t, 0));
  ASSERT_EQ(SQLITE_ROW, sqlite3_step(on_t));
  ASSERT_EQ(SQLITE_ROW, sqlite3_step(on_t));
  EXPECT_EQ(3, sqlite3_column_int(on_t, 0));
  EXPECT_EQ(SQLITE_DONE, sqlite3_step(on_t));
  // A statement on a table the snapshot does not have fails cleanly.
  EXPECT_EQ(SQLITE_ERROR, sqlite3_step(on_y));
  EXPECT_TRUE(Contains(sqlite3_errmsg(b), "no such table: y")) << sqlite3_errmsg(b);
  // The dropped table is back, for both connections.
  EXPECT_EQ("x1,x2", Query(b, "SELECT group_concat(v) FROM x"));
  EXPECT_EQ("x1,x2", Query(a, "SELECT group_concat(v) FROM x"));
  ASSERT_EQ(SQLITE_ROW, sqlite3_step(own)) << sqlite3_errmsg(a);
  EXPECT_EQ(1, sqlite3_column_count(own));
  sqlite3_finalize(on_t);
  sqlite3_finalize(on_y);
  sqlite3_finalize(own);

  // And back to the later schema through the pre-restore snapshot.
  EXPECT_EQ("2", Query(a, "SELECT snapshot_restore(2)"));
  EXPECT_EQ("7", Query(b, "SELECT b FROM t WHERE a = 1"));
  EXPECT_TRUE(Contains(Query(b, "SELECT * FROM x"), "no such table"));
  EXPECT_EQ("ok", Integrity(b));
}

INSTANTIATE_TEST_SUITE_P(SqlModes, SqlReadme, ::testing::Values("DELETE", "WAL"), ModeName);

}  // namespace
}  // namespace snapshot_test
