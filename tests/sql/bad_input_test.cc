// Bad input to every SQL function: a clear error, and neither the store nor
// the database changed.

#include "store/format.h"
#include "tests/sql/sql_test_util.h"

namespace snapshot_test {
namespace {

class SqlBadInput : public SqlFixture {
 protected:
  // app.db with a table and one snapshot.
  void SetUpDbWithSnapshot(sqlite3* db) {
    Fill(db, "t", 200);
    EXPECT_EQ(1, Backup(db, "first"));
    Ok(db, "DELETE FROM t WHERE id > 150");
  }
};

TEST_F(SqlBadInput, UnknownId) {
  Conn a(DbPath());
  SetUpDbWithSnapshot(a);
  ExpectRefused(a, "SELECT snapshot_restore(42)", {"no snapshot with id 42"}, StoreDir());
  ExpectRefused(a, "SELECT snapshot_restore_to(?, 42)", {"no snapshot with id 42"}, StoreDir(),
                {Arg::Text(Path("out.db"))});
  EXPECT_FALSE(Exists(Path("out.db")));
  ExpectRefused(a, "SELECT snapshot_verify(42)", {"no snapshot with id 42"}, StoreDir());
  EXPECT_EQ(1, SnapshotCount(a));
}

TEST_F(SqlBadInput, RestoreBeforeAnySnapshot) {
  Conn a(DbPath());
  Fill(a, "t", 10);
  const std::string d = Digest(a);
  const std::string to = QueryArgs(a, "SELECT snapshot_restore_to(?)", {Arg::Text(Path("out.db"))});
  EXPECT_TRUE(Contains(to, "no snapshot has been taken yet")) << to;
  EXPECT_FALSE(Exists(Path("out.db")));
  EXPECT_TRUE(Contains(Query(a, "SELECT snapshot_verify()"), "no snapshot has been taken yet"));
  EXPECT_EQ(0, SnapshotCount(a));
  const std::string r = Query(a, "SELECT snapshot_restore()");
  EXPECT_TRUE(IsError(r));
  EXPECT_TRUE(Contains(r, "no snapshot has been taken yet")) << r;
  const std::string r1 = Query(a, "SELECT snapshot_restore(1)");
  EXPECT_TRUE(Contains(r1, "no snapshot")) << r1;
  EXPECT_EQ(0, SnapshotCount(a));
  EXPECT_EQ(d, Digest(a));
}

// A failed restore must not create the store: "changes nothing". The
// functions that only read the store (snapshot_list, snapshot_verify,
// snapshot_restore_to) already leave it absent.
TEST_F(SqlBadInput, RestoreBeforeAnySnapshotCreatesNoStore) {
  Conn a(DbPath());
  Fill(a, "t", 10);
  EXPECT_TRUE(IsError(Query(a, "SELECT snapshot_restore_to('" + Path("x.db") + "')")));
  EXPECT_TRUE(IsError(Query(a, "SELECT snapshot_verify()")));
  EXPECT_EQ(0, SnapshotCount(a));
  ASSERT_FALSE(Exists(StoreDir()));
  ExpectRefused(a, "SELECT snapshot_restore()", {"no snapshot has been taken yet"}, StoreDir());
  ExpectRefused(a, "SELECT snapshot_restore(3)", {"no snapshot"}, StoreDir());
  EXPECT_FALSE(Exists(StoreDir())) << "a failed snapshot_restore() created " << StoreDir();
}

TEST_F(SqlBadInput, StoreOfAnotherDatabase) {
  Conn a(DbPath());
  SetUpDbWithSnapshot(a);
  const std::string other = Path("other.db");
  Conn b(other);
  Fill(b, "mine", 20);
  // Put app.db's store where other.db looks for its own.
  fs::copy(StoreDir(), other + "-snapshots", fs::copy_options::recursive);
  const std::string ostore = other + "-snapshots";
  for (const char* sql : {"SELECT snapshot_backup()", "SELECT snapshot_restore(1)", "SELECT snapshot_restore()",
                          "SELECT snapshot_verify()", "SELECT snapshot_prune(1)", "SELECT count(*) FROM snapshot_list"}) {
    SCOPED_TRACE(sql);
    ExpectRefused(b, sql, {"belongs to database 'app.db'", "other.db"}, ostore);
  }
  ExpectRefused(b, "SELECT snapshot_restore_to(?, 1)", {"belongs to database"}, ostore, {Arg::Text(Path("o.db"))});
  EXPECT_FALSE(Exists(Path("o.db")));
  EXPECT_EQ(20, QueryInt(b, "SELECT count(*) FROM mine"));
}

// Rewrites STORE's format version (u32 at offset 8) and its checksum.
void PatchStoreVersion(const std::string& store_dir, uint32_t version) {
  const std::string path = store_dir + "/STORE";
  std::string data = ReadFile(path);
  ASSERT_GT(data.size(), 20u);
  ASSERT_EQ("SQSNSTOR", data.substr(0, 8));
  for (int i = 0; i < 4; i++) data[8 + i] = char((version >> (8 * i)) & 0xff);
  const uint64_t sum = snapshot::Checksum64(data.data(), data.size() - 8);
  for (int i = 0; i < 8; i++) data[data.size() - 8 + i] = char((sum >> (8 * i)) & 0xff);
  WriteFile(path, data);
}

TEST_F(SqlBadInput, StoreOfNewerFormatVersion) {
  Conn a(DbPath());
  SetUpDbWithSnapshot(a);
  // Sanity: rewriting the current version keeps the store readable, so the
  // patch itself is right.
  PatchStoreVersion(StoreDir(), snapshot::kFormatVersion);
  EXPECT_EQ(1, SnapshotCount(a));
  const uint32_t newer = snapshot::kFormatVersion + 1;
  PatchStoreVersion(StoreDir(), newer);
  for (const char* sql : {"SELECT snapshot_backup()", "SELECT snapshot_restore(1)", "SELECT snapshot_restore()",
                          "SELECT snapshot_verify()", "SELECT snapshot_prune(1)", "SELECT count(*) FROM snapshot_list"}) {
    SCOPED_TRACE(sql);
    ExpectRefused(a, sql, {"newer version", "format " + std::to_string(newer)}, StoreDir());
  }
  ExpectRefused(a, "SELECT snapshot_restore_to(?, 1)", {"newer version"}, StoreDir(), {Arg::Text(Path("o.db"))});
  EXPECT_FALSE(Exists(Path("o.db")));
}

TEST_F(SqlBadInput, DamagedStoreFile) {
  Conn a(DbPath());
  SetUpDbWithSnapshot(a);
  const std::string path = StoreDir() + "/STORE";
  std::string data = ReadFile(path);
  data[20] = char(data[20] ^ 1);  // inside the creation time: only the checksum notices
  WriteFile(path, data);
  ExpectRefused(a, "SELECT snapshot_backup()", {"damaged", "checksum"}, StoreDir());
  ExpectRefused(a, "SELECT snapshot_restore(1)", {"damaged"}, StoreDir());
  WriteFile(path, "not a store");
  ExpectRefused(a, "SELECT snapshot_backup()", {"not a snapshot store"}, StoreDir());
}

TEST_F(SqlBadInput, MissingConfiguredStoreDir) {
  Conn a(DbPath());
  Fill(a, "t", 20);
  EXPECT_EQ("/nonexistent/x", Query(a, "SELECT snapshot_config('dir', '/nonexistent/x')"));
  EXPECT_EQ("/nonexistent/x", Query(a, "SELECT snapshot_dir()"));
  ExpectRefused(a, "SELECT snapshot_backup()", {"/nonexistent/x", "does not exist"}, "/nonexistent/x");
  ExpectRefused(a, "SELECT snapshot_restore()", {"/nonexistent/x"}, "/nonexistent/x");
  ExpectRefused(a, "SELECT snapshot_prune(1)", {"/nonexistent/x", "does not exist"}, "/nonexistent/x");
  EXPECT_FALSE(Exists("/nonexistent"));
  EXPECT_FALSE(Exists(StoreDir())) << "fell back to the default store";
}

TEST_F(SqlBadInput, ReadOnlyStoreDir) {
  if (geteuid() == 0) GTEST_SKIP() << "running as root: directory permissions are not enforced";
  Conn a(DbPath());
  SetUpDbWithSnapshot(a);
  for (const std::string& d : {StoreDir() + "/packs", StoreDir() + "/snapshots", StoreDir()}) {
    ASSERT_EQ(0, chmod(d.c_str(), 0555));
  }
  ExpectRefused(a, "SELECT snapshot_backup()", {"permission denied"}, StoreDir());
  // Reading still works.
  EXPECT_EQ(1, SnapshotCount(a));
  EXPECT_EQ("ok", Query(a, "SELECT snapshot_verify()"));
  EXPECT_EQ("1", RestoreTo(a, Path("r.db"), 1));
  for (const std::string& d : {StoreDir(), StoreDir() + "/packs", StoreDir() + "/snapshots"}) {
    chmod(d.c_str(), 0755);
  }
}

TEST_F(SqlBadInput, NotFromTriggersOrViews) {
  Conn a(DbPath());
  SetUpDbWithSnapshot(a);
  Ok(a, "CREATE TABLE log(x)");
  Ok(a, "CREATE TRIGGER tr AFTER INSERT ON log BEGIN SELECT snapshot_backup('from trigger'); END");
  ExpectRefused(a, "INSERT INTO log VALUES (1)", {"unsafe use of snapshot_backup"}, StoreDir());
  Ok(a, "DROP TRIGGER tr");
  Ok(a, "CREATE TRIGGER tr AFTER INSERT ON log BEGIN SELECT snapshot_restore(1); END");
  ExpectRefused(a, "INSERT INTO log VALUES (1)", {"unsafe use of snapshot_restore"}, StoreDir());
  Ok(a, "DROP TRIGGER tr");
  const std::vector<std::pair<std::string, std::string>> calls = {
      {"snapshot_backup", "snapshot_backup('v')"},
      {"snapshot_restore", "snapshot_restore(1)"},
      {"snapshot_restore_to", "snapshot_restore_to('" + Path("v.db") + "')"},
      {"snapshot_verify", "snapshot_verify()"},
      {"snapshot_prune", "snapshot_prune(1)"},
      {"snapshot_config", "snapshot_config('dir', '/tmp')"},
      {"snapshot_dir", "snapshot_dir()"},
  };
  for (const auto& [name, call] : calls) {
    SCOPED_TRACE(call);
    Ok(a, "CREATE VIEW v AS SELECT " + call + " AS r");
    ExpectRefused(a, "SELECT * FROM v", {"unsafe use of " + name}, StoreDir());
    Ok(a, "DROP VIEW v");
  }
  EXPECT_FALSE(Exists(Path("v.db")));
  EXPECT_TRUE(Query(a, "SELECT snapshot_config('dir')") == "NULL");
  Ok(a, "CREATE VIEW lv AS SELECT * FROM snapshot_list");
  ExpectRefused(a, "SELECT * FROM lv", {"unsafe use of virtual table"}, StoreDir());
  // snapshot_version() is harmless and allowed anywhere.
  Ok(a, "CREATE VIEW vv AS SELECT snapshot_version() AS v");
  EXPECT_EQ(Query(a, "SELECT snapshot_version()"), Query(a, "SELECT v FROM vv"));
  EXPECT_EQ(1, SnapshotCount(a));
}

TEST_F(SqlBadInput, RestoreInsideTransaction) {
  Conn a(DbPath());
  SetUpDbWithSnapshot(a);
  for (const char* begin : {"BEGIN", "BEGIN IMMEDIATE", "SAVEPOINT s"}) {
    SCOPED_TRACE(begin);
    Ok(a, begin);
    ExpectRefused(a, "SELECT snapshot_restore(1)", {"inside a transaction"}, StoreDir());
    Ok(a, "INSERT INTO t(a) VALUES ('in txn')");
    ExpectRefused(a, "SELECT snapshot_restore()", {"inside a transaction"}, StoreDir());
    Ok(a, "ROLLBACK");
  }
  EXPECT_EQ(150, QueryInt(a, "SELECT count(*) FROM t"));
  EXPECT_EQ(1, SnapshotCount(a));
}

TEST_F(SqlBadInput, RestoreWhileOwnStatementIsReading) {
  Conn a(DbPath());
  SetUpDbWithSnapshot(a);
  sqlite3_stmt* s = nullptr;
  ASSERT_EQ(SQLITE_OK, sqlite3_prepare_v2(a, "SELECT id FROM t", -1, &s, nullptr));
  ASSERT_EQ(SQLITE_ROW, sqlite3_step(s));  // holds a read transaction
  const auto store_before = TreeState(StoreDir());
  const std::string r = Query(a, "SELECT snapshot_restore(1)");
  EXPECT_TRUE(IsError(r)) << r;
  EXPECT_TRUE(Contains(r, "in use") || Contains(r, "statement of its own")) << r;
  sqlite3_finalize(s);
  EXPECT_EQ(store_before, TreeState(StoreDir()));
  EXPECT_EQ(150, QueryInt(a, "SELECT count(*) FROM t"));
}

TEST_F(SqlBadInput, BackupInsideWriteTransaction) {
  Conn a(DbPath());
  SetUpDbWithSnapshot(a);
  Ok(a, "BEGIN; INSERT INTO t(a) VALUES ('uncommitted')");
  ExpectRefused(a, "SELECT snapshot_backup('x')", {"write transaction", "COMMIT"}, StoreDir());
  Ok(a, "ROLLBACK");
  Ok(a, "BEGIN IMMEDIATE");
  ExpectRefused(a, "SELECT snapshot_backup('x')", {"write transaction"}, StoreDir());
  Ok(a, "COMMIT");
  EXPECT_EQ(1, SnapshotCount(a));
  EXPECT_EQ(2, Backup(a, "after commit"));
}

TEST_F(SqlBadInput, MemoryAndTempSchemas) {
  {
    Conn m(":memory:");
    Fill(m, "t", 10);
    for (const char* sql : {"SELECT snapshot_backup()", "SELECT snapshot_restore()", "SELECT snapshot_restore(1)",
                            "SELECT snapshot_dir()", "SELECT snapshot_verify()", "SELECT snapshot_prune(1)",
                            "SELECT count(*) FROM snapshot_list"}) {
      SCOPED_TRACE(sql);
      const std::string r = Query(m, sql);
      EXPECT_TRUE(IsError(r)) << r;
      EXPECT_TRUE(Contains(r, "in-memory")) << r;
    }
    const std::string r = QueryArgs(m, "SELECT snapshot_restore_to(?)", {Arg::Text(Path("m.db"))});
    EXPECT_TRUE(Contains(r, "in-memory")) << r;
    EXPECT_FALSE(Exists(Path("m.db")));
  }
  {
    Conn anon("");  // a private, temporary on-disk database
    Fill(anon, "t", 10);
    EXPECT_TRUE(Contains(Query(anon, "SELECT snapshot_backup()"), "temporary or in-memory"));
  }
  Conn a(DbPath());
  SetUpDbWithSnapshot(a);
  Ok(a, "CREATE TEMP TABLE tt(x); INSERT INTO tt VALUES (1)");
  ExpectRefused(a, "SELECT snapshot_backup('x', 'temp')", {"temp", "temporary or in-memory"}, StoreDir());
  ExpectRefused(a, "SELECT snapshot_restore(1, 'temp')", {"temporary or in-memory"}, StoreDir());
  ExpectRefused(a, "SELECT snapshot_backup('x', 'nosuch')", {"no such database schema: nosuch"}, StoreDir());
  ExpectRefused(a, "SELECT snapshot_restore(1, 'nosuch')", {"no such database schema"}, StoreDir());
  ExpectRefused(a, "SELECT count(*) FROM snapshot_list('nosuch')", {"no such database schema"}, StoreDir());
  ExpectRefused(a, "SELECT count(*) FROM snapshot_list('temp')", {"temporary or in-memory"}, StoreDir());
  ExpectRefused(a, "SELECT snapshot_dir('nosuch')", {"no such database schema"}, StoreDir());
  ExpectRefused(a, "SELECT snapshot_backup('x', '')", {"no such database schema"}, StoreDir());
  // An attached :memory: database.
  Ok(a, "ATTACH ':memory:' AS mem");
  ExpectRefused(a, "SELECT snapshot_backup('x', 'mem')", {"in-memory"}, StoreDir());
  EXPECT_EQ(1, SnapshotCount(a));
}

TEST_F(SqlBadInput, BadLabels) {
  Conn a(DbPath());
  SetUpDbWithSnapshot(a);
  for (const std::string& label : {std::string("a/b"), std::string("..\\x"), std::string("../../etc"),
                                   std::string("tab\there"), std::string("new\nline"), std::string("bell\x07"),
                                   std::string("del\x7f"), std::string(201, 'x')}) {
    SCOPED_TRACE("label of " + std::to_string(label.size()) + " bytes");
    ExpectRefused(a, "SELECT snapshot_backup(?)", {"label"}, StoreDir(), {Arg::Text(label)});
  }
  ExpectRefused(a, "SELECT snapshot_backup(?)", {"200 bytes"}, StoreDir(), {Arg::Text(std::string(201, 'x'))});
  ExpectRefused(a, "SELECT snapshot_backup(?)", {"control characters"}, StoreDir(), {Arg::Text("x\ry")});
  EXPECT_EQ(1, SnapshotCount(a));
  // The limits themselves are accepted, as is non-ASCII text.
  EXPECT_EQ(2, Backup(a, std::string(200, 'y')));
  EXPECT_EQ(std::string(200, 'y'), Query(a, "SELECT label FROM snapshot_list WHERE id = 2"));
  EXPECT_EQ(3, Backup(a, "sauvegarde d'été ✓ .. ~"));
  EXPECT_EQ("sauvegarde d'été ✓ .. ~", Query(a, "SELECT label FROM snapshot_list WHERE id = 3"));
  EXPECT_EQ("4", Query(a, "SELECT snapshot_backup(NULL)"));
  EXPECT_EQ("", Query(a, "SELECT label FROM snapshot_list WHERE id = 4"));
}

TEST_F(SqlBadInput, RestoreToNeverOverwrites) {
  Conn a(DbPath());
  SetUpDbWithSnapshot(a);
  const std::string existing = Path("existing.db");
  WriteFile(existing, "precious");
  ExpectRefused(a, "SELECT snapshot_restore_to(?, 1)", {"already exists", "existing.db"}, StoreDir(),
                {Arg::Text(existing)});
  EXPECT_EQ("precious", ReadFile(existing));
  // Not even the live database itself.
  const std::string live = ReadFile(DbPath());
  ExpectRefused(a, "SELECT snapshot_restore_to(?, 1)", {"already exists"}, StoreDir(), {Arg::Text(DbPath())});
  EXPECT_EQ(live, ReadFile(DbPath()));
  ExpectRefused(a, "SELECT snapshot_restore_to('', 1)", {"empty"}, StoreDir());
  ExpectRefused(a, "SELECT snapshot_restore_to(NULL, 1)", {"empty"}, StoreDir());
  ExpectRefused(a, "SELECT snapshot_restore_to(?, 1)", {"no-such-dir"}, StoreDir(),
                {Arg::Text(Path("no-such-dir/x.db"))});
  EXPECT_FALSE(Exists(Path("no-such-dir")));
  // Not inside the store.
  ExpectRefused(a, "SELECT snapshot_restore_to(?, 1)", {"inside the snapshot store"}, StoreDir(),
                {Arg::Text(StoreDir() + "/packs/x.db")});
  EXPECT_EQ(std::vector<std::string>({"app.db", "app.db-snapshots", "app.db-snaptrack", "existing.db"}),
            FilesIn(dir_.path()));
}

// A deleted database's journal, WAL or tracking file beside the new path
// would be applied to the restored file when SQLite first opens it.
TEST_F(SqlBadInput, RestoreToRefusesWhatADeletedDatabaseLeftBehind) {
  Conn a(DbPath());
  SetUpDbWithSnapshot(a);
  for (const char* suffix : {"-journal", "-wal", "-snaptrack"}) {
    const std::string target = Path("gone.db");
    WriteFile(target + suffix, "left behind");
    ExpectRefused(a, "SELECT snapshot_restore_to(?, 1)", {std::string("gone.db") + suffix, "move it away"}, StoreDir(),
                  {Arg::Text(target)});
    EXPECT_FALSE(Exists(target)) << suffix;
    EXPECT_EQ("left behind", ReadFile(target + suffix));
    std::remove((target + suffix).c_str());
  }
  EXPECT_EQ("1", Query(a, "SELECT snapshot_restore_to('" + Path("gone.db") + "', 1)"));
}

// snapshot_restore_to() writes "<path>.tmp" and renames it; a file of that
// name that the user owns must not be destroyed.
TEST_F(SqlBadInput, RestoreToLeavesAnExistingTmpSiblingAlone) {
  Conn a(DbPath());
  SetUpDbWithSnapshot(a);
  const std::string target = Path("copy.db");
  WriteFile(target + ".tmp", "the user's own file");
  const std::string r = RestoreTo(a, target, 1);
  EXPECT_TRUE(Exists(target + ".tmp")) << "snapshot_restore_to('copy.db') deleted copy.db.tmp (result: " << r << ")";
  EXPECT_EQ("the user's own file", ReadFile(target + ".tmp"));
}

TEST_F(SqlBadInput, InvalidIds) {
  Conn a(DbPath());
  SetUpDbWithSnapshot(a);
  for (const char* id : {"0", "-1", "'abc'", "1.5", "X'01'", "''", "-9223372036854775808"}) {
    SCOPED_TRACE(id);
    ExpectRefused(a, std::string("SELECT snapshot_restore(") + id + ")", {"positive integer"}, StoreDir());
    ExpectRefused(a, std::string("SELECT snapshot_restore_to(?, ") + id + ")", {"positive integer"}, StoreDir(),
                  {Arg::Text(Path("x.db"))});
    ExpectRefused(a, std::string("SELECT snapshot_verify(") + id + ")", {"positive integer"}, StoreDir());
  }
  ExpectRefused(a, "SELECT snapshot_restore(9223372036854775807)", {"no snapshot with id"}, StoreDir());
  EXPECT_FALSE(Exists(Path("x.db")));
  // A numeric text id is an id.
  EXPECT_EQ("ok", Query(a, "SELECT snapshot_verify('1')"));
}

TEST_F(SqlBadInput, PruneArguments) {
  Conn a(DbPath());
  SetUpDbWithSnapshot(a);
  EXPECT_EQ(2, Backup(a));
  ExpectRefused(a, "SELECT snapshot_prune(NULL)", {"needs a rule"}, StoreDir());
  ExpectRefused(a, "SELECT snapshot_prune(NULL, NULL)", {"needs a rule"}, StoreDir());
  for (const char* keep_last : {"0", "-1", "'abc'", "1.5", "X'01'"}) {
    SCOPED_TRACE(keep_last);
    ExpectRefused(a, std::string("SELECT snapshot_prune(") + keep_last + ")", {"keep_last"}, StoreDir());
  }
  for (const char* keep_days : {"-1", "'x'", "1e7", "X'01'"}) {
    SCOPED_TRACE(keep_days);
    ExpectRefused(a, std::string("SELECT snapshot_prune(1, ") + keep_days + ")", {"keep_days"}, StoreDir());
  }
  ExpectRefused(a, "SELECT snapshot_prune(1, NULL, 'nosuch')", {"no such database schema"}, StoreDir());
  EXPECT_EQ(2, SnapshotCount(a));
}

TEST_F(SqlBadInput, ConfigArguments) {
  Conn a(DbPath());
  const std::string level = Query(a, "SELECT snapshot_config('level')");
  EXPECT_EQ("2", level);  // README: default 2
  EXPECT_TRUE(Contains(Query(a, "SELECT snapshot_config('nope')"), "unknown setting"));
  EXPECT_TRUE(Contains(Query(a, "SELECT snapshot_config(NULL)"), "unknown setting"));
  EXPECT_TRUE(Contains(Query(a, "SELECT snapshot_config('level', 0)"), "level must be an integer"));
  EXPECT_TRUE(Contains(Query(a, "SELECT snapshot_config('level', 'high')"), "level must be an integer"));
  EXPECT_TRUE(Contains(Query(a, "SELECT snapshot_config('threads', 17)"), "threads must be an integer from 0 to 16"));
  EXPECT_TRUE(Contains(Query(a, "SELECT snapshot_config('threads', -1)"), "threads"));
  EXPECT_TRUE(Contains(Query(a, "SELECT snapshot_config('busy_timeout', 1.5)"), "busy_timeout"));
  // Defaults, unchanged by the refused calls.
  EXPECT_EQ(level, Query(a, "SELECT snapshot_config('level')"));
  EXPECT_EQ("2", Query(a, "SELECT snapshot_config('threads')"));
  EXPECT_EQ("30000", Query(a, "SELECT snapshot_config('busy_timeout')"));
  EXPECT_EQ("NULL", Query(a, "SELECT snapshot_config('dir')"));
  // Accepted values are kept, per connection, and the functions use them.
  EXPECT_EQ("19", Query(a, "SELECT snapshot_config('level', 19)"));
  EXPECT_EQ("0", Query(a, "SELECT snapshot_config('threads', 0)"));
  EXPECT_EQ("19", Query(a, "SELECT snapshot_config('level')"));
  Conn b(DbPath());
  EXPECT_EQ(level, Query(b, "SELECT snapshot_config('level')"));
  Fill(a, "t", 300);
  EXPECT_EQ(1, Backup(a));
  EXPECT_EQ("ok", Query(a, "SELECT snapshot_verify()"));
  EXPECT_EQ("1", RestoreTo(b, Path("r.db"), 1));
  EXPECT_EQ("", SameBytes(ReadFile(Path("r.db")), ReadFile(DbPath())));
}

// A connection that may not write must not have its database replaced.
TEST_F(SqlBadInput, RestoreOnReadOnlyConnection) {
  {
    Conn a(DbPath());
    SetUpDbWithSnapshot(a);
  }
  Conn ro(DbPath(), SQLITE_OPEN_READONLY);
  const std::string d = Digest(ro);
  // Reading the store works.
  EXPECT_EQ(1, SnapshotCount(ro));
  EXPECT_EQ("1", RestoreTo(ro, Path("r.db"), 1));
  const auto store_before = TreeState(StoreDir());
  const std::string r = Query(ro, "SELECT snapshot_restore(1)");
  EXPECT_TRUE(IsError(r)) << r;
  EXPECT_TRUE(Contains(r, "read-only") || Contains(r, "readonly")) << r;
  EXPECT_FALSE(Contains(r, "page size")) << "misdiagnosed: " << r;
  EXPECT_EQ(store_before, TreeState(StoreDir()));
  EXPECT_EQ(d, Digest(ro));
}

TEST_F(SqlBadInput, RestoreOnQueryOnlyConnection) {
  Conn a(DbPath());
  SetUpDbWithSnapshot(a);
  Ok(a, "PRAGMA query_only=1");
  ASSERT_TRUE(IsError(Query(a, "DELETE FROM t")));  // the guard is on
  const std::string d = Digest(a);
  const std::string r = Query(a, "SELECT snapshot_restore(1)");
  EXPECT_TRUE(IsError(r)) << "snapshot_restore() replaced the database of a query_only connection";
  EXPECT_EQ(d, Digest(a));
}

}  // namespace
}  // namespace snapshot_test
