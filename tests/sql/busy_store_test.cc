// A busy store (another backup, restore or prune holds its lock longer than
// the busy timeout) is SQLITE_BUSY from every function and table, so that an
// application retries it as it retries SQLite's own busy errors; the message
// says which. Once the lock is free the same statements succeed.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <string>

#include "tests/process_util.h"
#include "tests/test_util.h"

namespace snapshot_test {
namespace {

TEST(BusyStore, EveryFunctionAndTableAnswersSqliteBusy) {
  TempDir dir;
  const std::string path = dir / "live.db";
  sqlite3* db = OpenDb(path);
  CloseAtExit closer(db);
  ASSERT_EQ("", Exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES(1)"));
  ASSERT_EQ("1", Query(db, "SELECT snapshot_backup()"));
  ASSERT_EQ("", Exec(db, "INSERT INTO t VALUES(2)"));
  ASSERT_EQ("2", Query(db, "SELECT snapshot_backup()"));
  ASSERT_EQ("0", Query(db, "SELECT snapshot_config('busy_timeout', 0)"));

  // What another process's prune holds: the store's lock, exclusively.
  const int fd = open((path + "-snapshots/LOCK").c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(0, flock(fd, LOCK_EX));
  const char* statements[] = {"SELECT * FROM snapshot_list", "SELECT * FROM snapshot_diff(1, 2)",
                              "SELECT snapshot_verify()", "SELECT snapshot_backup()"};
  for (const char* sql : statements) {
    std::string err;
    EXPECT_EQ(SQLITE_BUSY, ExecRc(db, sql, &err)) << sql << ": " << err;
    EXPECT_NE(std::string::npos, err.find("busy")) << sql << ": " << err;
  }
  close(fd);
  for (const char* sql : statements) {
    std::string err;
    EXPECT_EQ(SQLITE_OK, ExecRc(db, sql, &err)) << sql << ": " << err;
  }
}

}  // namespace
}  // namespace snapshot_test
