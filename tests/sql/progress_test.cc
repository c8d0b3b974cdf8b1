// snapshot_progress: how far a backup is, read from another connection.

#include <chrono>
#include <filesystem>
#include <thread>

#include "tests/sql/sql_test_util.h"

namespace snapshot_test {
namespace {

class SqlProgress : public SqlFixture {};

TEST_F(SqlProgress, ABackupShowsHowFarItIs) {
  {
    Conn a(DbPath());
    Fill(a, "t", 40000, 1500);  // ~70 MB
  }
  Conn watcher(DbPath());
  EXPECT_EQ("NULL", Query(watcher, "SELECT snapshot_progress()"));
  std::string backup_result;
  std::thread worker([&] {
    Conn a(DbPath());
    backup_result = Query(a, "SELECT snapshot_backup()");
  });
  std::string seen;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (seen.empty() && std::chrono::steady_clock::now() < deadline) {
    const std::string p = Query(watcher, "SELECT snapshot_progress()");
    if (p.rfind("backup: ", 0) == 0) seen = p;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  worker.join();
  EXPECT_EQ("1", backup_result);
  EXPECT_TRUE(Contains(seen, " of " + std::to_string(QueryInt(watcher, "PRAGMA page_count")) + " pages (")) << seen;
  EXPECT_EQ("NULL", Query(watcher, "SELECT snapshot_progress()")) << "progress outlived the backup";
  // A file left by a process that died is not reported.
  WriteFile(StoreDir() + "/PROGRESS", "backup 999999999 1 5 10 2\n");
  EXPECT_EQ("NULL", Query(watcher, "SELECT snapshot_progress()"));
  EXPECT_EQ(2, Backup(watcher));  // and the next backup clears it
  EXPECT_FALSE(std::filesystem::exists(StoreDir() + "/PROGRESS"));
}

}  // namespace
}  // namespace snapshot_test
