// A busy database: the functions wait for its lock, they do not fail, and
// the database's writers do not fail because of them.
//
// Two writer processes commit back to back through plain SQLite (no
// extension, no snapshot VFS), each with a 5 s busy timeout, as an
// application's workers do. They take turns through a shared counter:
// SQLite's own busy handler sleeps up to 100 ms between tries, and two
// writers that never pause starve each other with it, with or without a
// backup. Meanwhile the sqlite3 shell runs the functions as cron would, with
// nothing but `.load`: ten snapshot_backup(), a snapshot_restore(), then
// snapshot_verify() and snapshot_prune(). Every call must succeed, every
// snapshot must restore to a consistent database, and no writer's commit may
// fail: zero failed commits while the functions run, as in a window before
// them with the same writers and no function.
//
// Data model: t(id, w, v) gets one row per commit and c(n) counts them, in
// the same transaction, so count(*) FROM t == c.n in every committed state.
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <vector>

#include "tests/process_util.h"
#include "tests/test_util.h"

namespace snapshot_test {
namespace {

constexpr int kWriters = 2;

struct Control {
  std::atomic<int> stop{0};
  std::atomic<int> phase{0};  // 0: writers alone; 1: the functions run too
  std::atomic<int64_t> turn{0};
  std::atomic<int64_t> commits[kWriters][2] = {};
  std::atomic<int64_t> failed_commits[kWriters][2] = {};
  std::atomic<int> failed{0};
  char msg[512] = {};
};

// One writer: a transaction of one row, then the next at once, when it is
// this writer's turn. A commit that fails (SQLITE_BUSY after the 5 s
// timeout, or anything else) is counted and its message kept.
int WriterMain(const std::string& path, int w, Control* c) {
  std::string err;
  sqlite3* db = OpenConn(path, /*load=*/false, &err);
  if (db == nullptr) return ReportChildFailure(c->msg, c->failed, err);
  sqlite3_busy_timeout(db, 5000);
  while (!c->stop.load()) {
    if (c->turn.load() % kWriters != w) {
      usleep(20);
      continue;
    }
    const int phase = c->phase.load();
    int rc = ExecRc(db,
                    "BEGIN IMMEDIATE; INSERT INTO t(w, v) VALUES (" + std::to_string(w) +
                        ", randomblob(200)); UPDATE c SET n = n + 1; COMMIT;",
                    &err);
    if (rc == SQLITE_OK) {
      c->commits[w][phase]++;
    } else {
      c->failed_commits[w][phase]++;
      SetMsg(c->msg, sizeof c->msg, "writer " + std::to_string(w) + ": " + err);
      ExecRc(db, "ROLLBACK");
    }
    c->turn++;
  }
  sqlite3_close(db);
  return 0;
}

int64_t Commits(Control* c, int phase) {
  int64_t n = 0;
  for (int w = 0; w < kWriters; w++) n += c->commits[w][phase].load();
  return n;
}

// integrity_check and the row-count invariant of the database at `path`.
void ExpectConsistent(const std::string& path, const std::string& what) {
  sqlite3* db = OpenDb(path, /*load=*/false);
  EXPECT_EQ("ok", Query(db, "PRAGMA integrity_check")) << what;
  EXPECT_EQ(QueryInt(db, "SELECT count(*) FROM t"), QueryInt(db, "SELECT n FROM c")) << what;
  sqlite3_close(db);
}

class BusyDatabase : public ::testing::TestWithParam<std::string> {};

TEST_P(BusyDatabase, FunctionsFromABareShellWaitForWritersThatNeverPause) {
  TempDir dir;
  const std::string path = dir / "app.db";
  {
    sqlite3* db = OpenDb(path, /*load=*/false);
    ASSERT_EQ("", Exec(db, "PRAGMA journal_mode=" + GetParam()));
    ASSERT_EQ("", Exec(db,
                       "CREATE TABLE t(id INTEGER PRIMARY KEY, w INT, v BLOB);"
                       "CREATE TABLE c(n INT);"
                       "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 10000)"
                       "  INSERT INTO t(w, v) SELECT -1, randomblob(200) FROM s;"
                       "INSERT INTO c SELECT count(*) FROM t;"));
    sqlite3_close(db);
  }
  Shared<Control> control;
  Children children(path);
  std::vector<pid_t> writers;
  for (int w = 0; w < kWriters; w++) writers.push_back(children.Spawn([&, w] { return WriterMain(path, w, &*control); }));

  // The same writers with no function running: the baseline.
  const int64_t baseline_end = NowMs() + 1000;
  while (NowMs() < baseline_end && !control->failed.load()) SleepMs(10);
  control->phase = 1;

  std::vector<std::string> ids;
  for (int i = 0; i < 10; i++) {
    int status = -1;
    const std::string out = RunShell(&children, path, "SELECT snapshot_backup()", &status);
    EXPECT_EQ(0, status) << "backup " << i << ": " << out;
    if (status != 0) continue;
    EXPECT_EQ(std::to_string(ids.size() + 1), out) << "backup " << i;
    ids.push_back(out);
  }
  ASSERT_FALSE(ids.empty());
  int status = -1;
  std::string out = RunShell(&children, path, "SELECT snapshot_restore(" + ids[ids.size() / 2] + ")", &status);
  EXPECT_EQ(0, status) << "restore: " << out;
  EXPECT_EQ(ids[ids.size() / 2], out);
  const int64_t commits_at_restore = Commits(&*control, 1);
  out = RunShell(&children, path, "SELECT snapshot_verify()", &status);
  EXPECT_EQ(0, status) << out;
  EXPECT_EQ("ok", out);
  out = RunShell(&children, path, "SELECT snapshot_prune(100)", &status);
  EXPECT_EQ(0, status) << out;
  EXPECT_EQ("0", out);
  // The writers go on after the restore.
  const int64_t deadline = NowMs() + 10000;
  while (Commits(&*control, 1) < commits_at_restore + 20 && NowMs() < deadline) SleepMs(5);

  control->stop = 1;
  for (pid_t pid : writers) EXPECT_EQ(0, children.Wait(pid));
  EXPECT_EQ(0, control->failed.load()) << control->msg;
  for (int w = 0; w < kWriters; w++) {
    SCOPED_TRACE("writer " + std::to_string(w));
    EXPECT_GT(control->commits[w][0].load(), 0);
    EXPECT_GT(control->commits[w][1].load(), 0);
    EXPECT_EQ(0, control->failed_commits[w][0].load()) << "without a backup: " << control->msg;
    EXPECT_EQ(0, control->failed_commits[w][1].load()) << "beside the functions: " << control->msg;
  }
  EXPECT_GE(Commits(&*control, 1), commits_at_restore + 20) << "the writers stopped after the restore";

  // Every snapshot is one committed state; so is the live database.
  ExpectConsistent(path, "the live database");
  sqlite3* db = OpenDb(path);
  for (const std::string& id : ids) {
    const std::string copy = dir / ("restored-" + id + ".db");
    EXPECT_EQ(id, Query(db, "SELECT snapshot_restore_to('" + copy + "', " + id + ")"));
    ExpectConsistent(copy, "snapshot " + id);
  }
  sqlite3_close(db);
}

INSTANTIATE_TEST_SUITE_P(Busy, BusyDatabase, ::testing::Values("delete", "wal"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
}  // namespace snapshot_test
