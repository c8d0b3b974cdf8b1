// Attaching a snapshot (vfs/attached_snapshot.h) from other processes and
// beside them: the issue's exact lines in the sqlite3 shell and in Debian's
// python3, and writer processes committing to the live database in both
// journal modes while the parent reads a snapshot and takes backups.
#include <climits>

#include "tests/concurrency/concurrency_util.h"

namespace snapshot_test {
namespace {

std::string AttachSql(const std::string& db, const std::string& snap, const std::string& as,
                      const std::string& extra = "&mode=ro") {
  return "ATTACH 'file:" + db + "?vfs=snapshot&snapshot=" + snap + extra + "' AS " + as;
}

void Ok(sqlite3* db, const std::string& sql) { ASSERT_EQ("", Exec(db, sql)) << sql; }

// Rows of an annotation table: 10 projects.
void MakeAnnotations(sqlite3* db, int rows) {
  Ok(db, "CREATE TABLE annotation(id INTEGER PRIMARY KEY, project_id INT, body TEXT)");
  Ok(db, "CREATE INDEX annotation_project ON annotation(project_id)");
  Ok(db, "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<" + std::to_string(rows) +
             ") INSERT INTO annotation SELECT i, i % 10, hex(randomblob(300)) FROM c");
}

// Every row of a schema's annotation table, in order, as one string.
std::string Rows(sqlite3* db, const std::string& schema) {
  return Query(db, "SELECT count(*) || '/' || group_concat(id || ',' || project_id || ',' || body, ';') FROM (SELECT * FROM " +
                       schema + ".annotation ORDER BY id)");
}

// One process's database with snapshot 1 taken, then project 4 deleted.
void MakeAccident(const std::string& path) {
  sqlite3* db = OpenDb(path);
  MakeAnnotations(db, 1000);
  EXPECT_EQ("1", Query(db, "SELECT snapshot_backup()"));
  Ok(db, "DELETE FROM annotation WHERE project_id = 4");
  sqlite3_close(db);
}

TEST(ConcurrencyAttach, TheIssuesLineInTheShellWithARelativePath) {
  TempDir dir_;
  MakeAccident(dir_ / "app.db");
  char cwd[PATH_MAX];
  ASSERT_NE(nullptr, getcwd(cwd, sizeof cwd));
  ASSERT_EQ(0, chdir(dir_.path().c_str()));
  Children kids;
  int status = -1;
  const std::string out = RunShell(&kids, "app.db",
                                   "ATTACH 'file:app.db?vfs=snapshot&snapshot=1&mode=ro' AS s17;\n"
                                   "SELECT count(*) FROM s17.annotation WHERE project_id = 4;\n"
                                   "INSERT INTO main.annotation SELECT * FROM s17.annotation WHERE project_id = 4;\n"
                                   "SELECT count(*) FROM main.annotation WHERE project_id = 4;\n",
                                   &status);
  ASSERT_EQ(0, chdir(cwd));
  EXPECT_EQ(0, status) << out;
  EXPECT_EQ("100\n100", out);
}

TEST(ConcurrencyAttach, DebiansPython) {
  if (!SanitizerPreload().empty()) GTEST_SKIP() << "python3 cannot load an instrumented extension";
  TempDir dir_;
  MakeAccident(dir_ / "app.db");
  const std::string script = dir_ / "attach.py";
  std::ofstream(script) <<
            "import sqlite3, sys, os\n"
            "os.chdir(sys.argv[2])\n"
            "con = sqlite3.connect('app.db')\n"
            "con.enable_load_extension(True)\n"
            "con.load_extension(sys.argv[1])\n"
            "con.execute(\"ATTACH 'file:app.db?vfs=snapshot&snapshot=1&mode=ro' AS s17\")\n"
            "print(con.execute('SELECT count(*) FROM s17.annotation WHERE project_id = 4').fetchone()[0])\n"
            "with con:\n"
            "    con.execute('INSERT INTO main.annotation SELECT * FROM s17.annotation WHERE project_id = 4')\n"
            "print(con.execute('SELECT count(*) FROM main.annotation WHERE project_id = 4').fetchone()[0])\n"
            "try:\n"
            "    con.execute('DELETE FROM s17.annotation')\n"
            "except sqlite3.OperationalError as e:\n"
            "    print(e)\n";
  const std::string cmd = "/usr/bin/python3 '" + script + "' '" + SNAPSHOT_EXTENSION_PATH + "' '" + dir_.path() +
                          "' 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(nullptr, p);
  std::string out;
  char buf[512];
  while (fgets(buf, sizeof buf, p) != nullptr) out += buf;
  const int rc = pclose(p);
  EXPECT_EQ(0, rc) << out;
  EXPECT_EQ("100\n100\nattempt to write a readonly database\n", out);
}

// Writer processes commit to the live database (through the snapshot VFS)
// for as long as the parent reads an attached snapshot and takes backups.
struct WriterControl {
  std::atomic<int> stop{0};
  std::atomic<int64_t> commits{0};
  std::atomic<int> failed{0};
  char msg[256] = {};
};

class ConcurrencyAttachWriters : public ::testing::TestWithParam<std::string> {
 protected:
  std::string DbPath() const { return dir_ / "app.db"; }
  TempDir dir_;
};

int WriterMain(const std::string& path, WriterControl* c, int w) {
  std::string err;
  sqlite3_close(OpenConn(":memory:", true, &err));  // registers the VFS
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(("file:" + path + "?vfs=snapshot").c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI,
                      nullptr) != SQLITE_OK) {
    return ReportChildFailure(c->msg, c->failed, "open: " + std::string(sqlite3_errmsg(db)));
  }
  sqlite3_busy_timeout(db, 10000);
  for (int64_t i = 0; !c->stop.load(); i++) {
    const std::string sql = "BEGIN IMMEDIATE; INSERT INTO annotation(project_id, body) VALUES (" + std::to_string(w) +
                            ", hex(randomblob(200))); UPDATE annotation SET body = hex(randomblob(300)) WHERE id = " +
                            std::to_string(1 + (i * 7 + w) % 2000) + "; DELETE FROM annotation WHERE id = " +
                            std::to_string(2001 + (i * 13 + w) % 2000) + "; COMMIT;";
    const int rc = ExecRc(db, sql, &err);
    if (rc != SQLITE_OK) {
      ExecRc(db, "ROLLBACK", nullptr);
      if (IsBusy(rc)) continue;
      sqlite3_close(db);
      return ReportChildFailure(c->msg, c->failed, "commit: " + err);
    }
    c->commits++;
  }
  sqlite3_close(db);
  return 0;
}

TEST_P(ConcurrencyAttachWriters, TheSnapshotStaysPutWhileWritersCommit) {
  const bool wal = GetParam() == "wal";
  std::string first;
  {
    sqlite3* db = OpenThroughVfs(DbPath());
    if (wal) Ok(db, "PRAGMA journal_mode=WAL");
    MakeAnnotations(db, 4000);
    ASSERT_EQ("1", Query(db, "SELECT snapshot_backup()"));
    first = Rows(db, "main");
    EXPECT_EQ(wal ? "wal" : "delete", Query(db, "PRAGMA journal_mode"));
    sqlite3_close(db);
  }
  Shared<WriterControl> c;
  Children kids(DbPath());
  std::vector<pid_t> pids;
  for (int w = 0; w < 2; w++) pids.push_back(kids.Spawn([&] { return WriterMain(DbPath(), &*c, w); }));
  sqlite3* db = OpenThroughVfs(DbPath());
  Ok(db, AttachSql(DbPath(), "1", "s1", "&mode=ro&snapshot_cache=2"));
  int64_t backups = 0;
  for (int round = 0; round < 6 && c->failed == 0; round++) {
    const int64_t seen = c->commits.load();
    while (c->commits.load() < seen + 20 && c->failed == 0) SleepMs(5);
    EXPECT_EQ(first, Rows(db, "s1")) << "round " << round;
    if (round % 2 == 1) {
      const std::string id = Query(db, "SELECT snapshot_backup()");
      EXPECT_EQ(std::string::npos, id.find("ERROR")) << id;
      backups++;
    }
  }
  EXPECT_EQ("ok", Query(db, "PRAGMA s1.integrity_check"));
  c->stop = 1;
  for (pid_t p : pids) EXPECT_EQ(0, kids.Wait(p)) << c->msg;
  EXPECT_EQ(0, c->failed.load()) << c->msg;
  EXPECT_GT(c->commits.load(), 100);
  // The live database is intact and its latest snapshot is what it holds.
  EXPECT_EQ("ok", Query(db, "PRAGMA main.integrity_check"));
  const std::string live = Rows(db, "main");
  EXPECT_EQ(std::string::npos, Query(db, "SELECT snapshot_backup()").find("ERROR"));
  Ok(db, AttachSql(DbPath(), "latest", "now"));
  EXPECT_EQ(live, Rows(db, "now"));
  EXPECT_EQ(first, Rows(db, "s1"));
  EXPECT_EQ(2 + backups, QueryInt(db, "SELECT max(id) FROM snapshot_list"));
  sqlite3_close(db);
}

INSTANTIATE_TEST_SUITE_P(Modes, ConcurrencyAttachWriters, ::testing::Values("delete", "wal"), ModeName);

}  // namespace
}  // namespace snapshot_test
