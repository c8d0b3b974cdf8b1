// Attaching a snapshot read-only, in place (vfs/attached_snapshot.h):
//
//   ATTACH 'file:app.db?vfs=snapshot&snapshot=17&mode=ro' AS s17;
//
// in one process: copying rows back, two at once, under a prune, over a
// damaged pack, the store found as the functions find it, nothing written,
// and the errors an operator sees when it cannot be done. The shell, Python
// and writer processes are in tests/concurrency/attach_test.cc.
#include <chrono>
#include <thread>

#include "tests/sql/sql_test_util.h"

namespace snapshot_test {
namespace {

std::string AttachSql(const std::string& db, const std::string& snap, const std::string& as,
                      const std::string& extra = "&mode=ro") {
  return "ATTACH 'file:" + db + "?vfs=snapshot&snapshot=" + snap + extra + "' AS " + as;
}

// The reason snapshot_attach_error() gives, "" if none.
std::string AttachError(sqlite3* db) { return Query(db, "SELECT coalesce(snapshot_attach_error(), '')"); }

std::string Ids(sqlite3* db) { return Query(db, "SELECT group_concat(id) FROM (SELECT id FROM snapshot_list ORDER BY id)"); }

// Rows of an annotation table: 10 projects, bodies big enough for several
// zstd frames (the reader decompresses about 1 MiB at a time).
void MakeAnnotations(sqlite3* db, int rows) {
  Ok(db, "CREATE TABLE annotation(id INTEGER PRIMARY KEY, project_id INT, body TEXT)");
  Ok(db, "CREATE INDEX annotation_project ON annotation(project_id)");
  Ok(db, "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<" + std::to_string(rows) +
             ") INSERT INTO annotation SELECT i, i % 10, hex(randomblob(300)) FROM c");
}

class SqlAttach : public SqlFixture {};

TEST_F(SqlAttach, CopiesOneProjectBackWhileTheRestStays) {
  Conn db(DbPath());
  MakeAnnotations(db, 3000);
  ASSERT_EQ(1, Backup(db));
  const std::string before = Digest(db);
  Ok(db, "DELETE FROM annotation WHERE project_id = 4");
  Ok(db, "INSERT INTO annotation VALUES (100000, 7, 'written after the accident')");
  ASSERT_EQ(0, QueryInt(db, "SELECT count(*) FROM annotation WHERE project_id = 4"));
  Ok(db, AttachSql(DbPath(), "1", "s1"));
  EXPECT_EQ(before, Digest(db, "s1"));
  EXPECT_EQ(300, QueryInt(db, "SELECT count(*) FROM s1.annotation WHERE project_id = 4"));
  Ok(db, "INSERT INTO main.annotation SELECT * FROM s1.annotation WHERE project_id = 4");
  EXPECT_EQ(300, QueryInt(db, "SELECT count(*) FROM annotation WHERE project_id = 4"));
  EXPECT_EQ(1, QueryInt(db, "SELECT count(*) FROM annotation WHERE id = 100000"));
  EXPECT_EQ("ok", Query(db, "PRAGMA s1.integrity_check"));
  // The attached schema is read-only, with SQLite's own error.
  EXPECT_NE("", Exec(db, "DELETE FROM s1.annotation"));
  EXPECT_EQ(SQLITE_READONLY, sqlite3_errcode(db));
  EXPECT_NE("", Exec(db, "CREATE TABLE s1.x(a)"));
  EXPECT_EQ(SQLITE_READONLY, sqlite3_errcode(db));
  EXPECT_EQ(before, Digest(db, "s1"));
  Ok(db, "DETACH s1");
  Ok(db, AttachSql(DbPath(), "latest", "s2"));
  EXPECT_EQ(before, Digest(db, "s2"));
}

TEST_F(SqlAttach, TwoSnapshotsAtOnce) {
  Conn db(DbPath());
  MakeAnnotations(db, 2000);
  ASSERT_EQ(1, Backup(db));
  Ok(db, "DELETE FROM annotation WHERE project_id IN (3, 4)");
  ASSERT_EQ(2, Backup(db));
  Ok(db, "DELETE FROM annotation");
  Ok(db, AttachSql(DbPath(), "1", "s1"));
  Ok(db, AttachSql(DbPath(), "2", "s2"));
  EXPECT_EQ(2000, QueryInt(db, "SELECT count(*) FROM s1.annotation"));
  EXPECT_EQ(1600, QueryInt(db, "SELECT count(*) FROM s2.annotation"));
  // What the second snapshot lost, by comparing the two.
  EXPECT_EQ("3,4", Query(db, "SELECT group_concat(p) FROM (SELECT DISTINCT project_id AS p FROM "
                             "(SELECT * FROM s1.annotation EXCEPT SELECT * FROM s2.annotation) ORDER BY p)"));
  EXPECT_EQ(0, QueryInt(db, "SELECT count(*) FROM (SELECT * FROM s2.annotation EXCEPT SELECT * FROM s1.annotation)"));
}

// snapshot= names a snapshot as every function does: an id, 'latest', or a
// moment (the newest snapshot taken at or before it).
TEST_F(SqlAttach, AMomentNamesTheNewestSnapshotTakenAtOrBeforeIt) {
  Conn db(DbPath());
  MakeAnnotations(db, 100);
  ASSERT_EQ(1, Backup(db));
  const std::string first = Query(db, "SELECT created FROM snapshot_list WHERE id = 1");
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the two must differ in their millisecond
  Ok(db, "DELETE FROM annotation WHERE project_id = 4");
  ASSERT_EQ(2, Backup(db));
  Ok(db, AttachSql(DbPath(), first, "s1"));
  EXPECT_EQ(100, QueryInt(db, "SELECT count(*) FROM s1.annotation"));
  Ok(db, AttachSql(DbPath(), "2999-01-01T00:00:00Z", "s2"));  // a moment after both: the latest
  EXPECT_EQ(90, QueryInt(db, "SELECT count(*) FROM s2.annotation"));
}

TEST_F(SqlAttach, PruneSkipsAnAttachedSnapshotUntilItIsDetached) {
  Conn db(DbPath());
  MakeAnnotations(db, 2000);
  ASSERT_EQ(1, Backup(db));
  const std::string first = Digest(db);
  for (int i = 2; i <= 3; i++) {
    Ok(db, "UPDATE annotation SET body = hex(randomblob(300)) WHERE id % 2 = 0");
    ASSERT_EQ(i, Backup(db));
  }
  Ok(db, AttachSql(DbPath(), "1", "s1"));
  int64_t newest = 0;
  {
    Conn other(DbPath());
    EXPECT_EQ(1, Prune(other, 1));  // snapshot 2 only
    EXPECT_EQ("1,3", Ids(other));
    // And backups go on while it is attached: the reader holds no store lock.
    // (Ids only grow; the prune's compaction may have taken one for a pack.)
    Ok(other, "UPDATE annotation SET body = 'x' WHERE id = 1");
    newest = Backup(other);
    EXPECT_GT(newest, 3);
  }
  EXPECT_EQ(first, Digest(db, "s1"));
  Ok(db, "DETACH s1");
  EXPECT_EQ(2, Prune(db, 1));
  EXPECT_EQ(std::to_string(newest), Ids(db));
}

TEST_F(SqlAttach, ADamagedPackIsAReadErrorNamingSnapshotAndPageNeverWrongData) {
  Conn db(DbPath());
  MakeAnnotations(db, 8000);  // about 1300 pages: several frames
  ASSERT_EQ(1, Backup(db));
  Ok(db, AttachSql(DbPath(), "1", "s1", "&mode=ro&snapshot_cache=1"));
  const std::string pack = PackPath(StoreDir(), 1);
  FlipByte(pack, FileSize(pack) / 2);
  const std::string r = Query(db, "SELECT sum(length(body)) FROM s1.annotation");
  EXPECT_TRUE(IsError(r)) << "read through a damaged pack: " << r;
  EXPECT_EQ(SQLITE_CORRUPT, sqlite3_errcode(db));
  EXPECT_TRUE(Contains(AttachError(db), "snapshot 1, page ")) << AttachError(db);
}

TEST_F(SqlAttach, ClearErrorsAtAttachAndNothingCreated) {
  Conn db(DbPath());
  MakeAnnotations(db, 10);
  const auto tree = TreeState(dir_.path());
  auto refused = [&](const std::string& sql, const std::string& reason) {
    EXPECT_NE("", Exec(db, sql)) << sql;
    EXPECT_EQ(SQLITE_CANTOPEN, sqlite3_errcode(db)) << sql;
    EXPECT_TRUE(Contains(AttachError(db), reason)) << sql << ": '" << AttachError(db) << "' lacks '" << reason << "'";
    EXPECT_EQ(tree, TreeState(dir_.path())) << sql << " changed files";
  };
  refused(AttachSql(DbPath(), "1", "s"), "no snapshot has been taken yet");
  ASSERT_EQ(1, Backup(db));
  const auto with_store = TreeState(dir_.path());
  const auto refused2 = [&](const std::string& sql, const std::string& reason) {
    EXPECT_NE("", Exec(db, sql)) << sql;
    EXPECT_EQ(SQLITE_CANTOPEN, sqlite3_errcode(db)) << sql;
    EXPECT_TRUE(Contains(AttachError(db), reason)) << sql << ": '" << AttachError(db) << "' lacks '" << reason << "'";
    EXPECT_EQ(with_store, TreeState(dir_.path())) << sql << " changed files";
  };
  refused2(AttachSql(DbPath(), "7", "s"), "no snapshot with id 7");
  refused2(AttachSql(DbPath(), "1", "s", ""), "must be opened read-only");
  refused2(AttachSql(DbPath(), "1", "s", "&mode=rw"), "must be opened read-only");
  refused2(AttachSql(DbPath(), "-1", "s"), "names no snapshot");
  refused2(AttachSql(DbPath(), "2001-01-01T00:00:00Z", "s"), "");  // before the first snapshot
  refused2(AttachSql(DbPath(), "1", "s", "&mode=ro&snapshot_cache=0"), "whole number of MiB");
  // Another database's store, named explicitly.
  refused2(AttachSql(Path("other.db"), "1", "s", "&mode=ro&snapshot_dir=" + StoreDir()),
           "belongs to database 'app.db', not 'other.db'");
  // A successful open clears the reason.
  Ok(db, AttachSql(DbPath(), "1", "s"));
  EXPECT_EQ("", AttachError(db));
}

TEST_F(SqlAttach, NothingIsWrittenAnywhere) {
  {
    Conn db(DbPath());
    MakeAnnotations(db, 2000);
    ASSERT_EQ(1, Backup(db));
  }
  const auto tree = TreeState(dir_.path());
  {
    Conn mem(":memory:");
    Ok(mem, AttachSql(DbPath(), "1", "s1"));
    EXPECT_EQ(2000, QueryInt(mem, "SELECT count(*) FROM s1.annotation"));
    EXPECT_NE("", Exec(mem, "INSERT INTO s1.annotation VALUES (9999999, 1, 'x')"));
    EXPECT_EQ("ok", Query(mem, "PRAGMA s1.integrity_check"));
    Ok(mem, "DETACH s1");
  }
  EXPECT_EQ(tree, TreeState(dir_.path()));
}

TEST_F(SqlAttach, FindsTheStoreAsTheFunctionsDo) {
  const std::string elsewhere = Path("backups");
  ASSERT_TRUE(fs::create_directory(elsewhere));
  {
    Conn db(DbPath());
    MakeAnnotations(db, 100);
    Ok(db, "SELECT snapshot_config('dir', '" + elsewhere + "')");
    ASSERT_EQ(1, Backup(db));
    // The connection's snapshot_config('dir'), which the VFS cannot see.
    Ok(db, AttachSql(DbPath(), "1", "s1"));
    EXPECT_EQ(100, QueryInt(db, "SELECT count(*) FROM s1.annotation"));
  }
  Conn db(DbPath());
  // That connection is gone: the default store, which does not exist.
  EXPECT_NE("", Exec(db, AttachSql(DbPath(), "1", "s1")));
  EXPECT_TRUE(Contains(AttachError(db), DbPath() + "-snapshots")) << AttachError(db);
  Ok(db, AttachSql(DbPath(), "1", "s1", "&mode=ro&snapshot_dir=" + elsewhere));
  {
    ScopedEnv env("SNAPSHOT_DIR", elsewhere.c_str());
    Ok(db, AttachSql(DbPath(), "latest", "s2"));
  }
}

}  // namespace
}  // namespace snapshot_test
