// Interrupting long work (sqlite3_interrupt, Ctrl-C in the shell) leaves the
// store and the database as they were.

#include <chrono>
#include <thread>

#include "tests/sql/sql_test_util.h"

namespace snapshot_test {
namespace {

class SqlInterrupt : public SqlFixture, public ::testing::WithParamInterface<std::string> {};

// Runs `sql` on db while another thread interrupts it after `delay_ms`;
// returns the statement's result ("ERROR: ..." when it was stopped).
std::string RunInterrupted(sqlite3* db, const std::string& sql, int delay_ms) {
  std::thread t([db, delay_ms] {
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    sqlite3_interrupt(db);
  });
  const std::string r = Query(db, sql);
  t.join();
  return r;
}

TEST_P(SqlInterrupt, LeavesStoreAndDatabaseAsTheyWere) {
  Conn a(DbPath());
  Ok(a, "PRAGMA journal_mode=" + GetParam());
  Fill(a, "t", 40000, 1500);  // ~70 MB: a backup takes far longer than the delay
  EXPECT_EQ(1, Backup(a, "first"));
  Ok(a, "UPDATE t SET b = randomblob(1500)");  // every page changes: the next backup is long
  const std::string digest = Digest(a);
  const auto store_before = TreeState(StoreDir());
  const std::string r = RunInterrupted(a, "SELECT snapshot_backup('second')", 20);
  ASSERT_TRUE(IsError(r)) << "the backup finished before it was interrupted: " << r;
  EXPECT_TRUE(Contains(r, "interrupt")) << r;
  EXPECT_EQ(store_before, TreeState(StoreDir())) << "an interrupted backup changed the store";
  EXPECT_EQ(digest, Digest(a));
  EXPECT_EQ("1:first", SnapshotIds(a));
  // The connection works on, and so does the store.
  EXPECT_EQ(2, Backup(a, "again"));
  EXPECT_EQ("ok", Query(a, "SELECT snapshot_verify()"));
  // restore_to stops too, and leaves no file behind.
  const std::string out = Path("out.db");
  const std::string r2 = RunInterrupted(a, "SELECT snapshot_restore_to('" + out + "', 2)", 20);
  ASSERT_TRUE(IsError(r2)) << r2;
  EXPECT_TRUE(Contains(r2, "interrupt")) << r2;
  EXPECT_FALSE(std::filesystem::exists(out));
  for (const auto& e : std::filesystem::directory_iterator(dir_.path())) {
    EXPECT_EQ(std::string::npos, e.path().filename().string().find(".tmp")) << e.path();
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, SqlInterrupt, ::testing::Values("DELETE", "WAL"), ModeName);

}  // namespace
}  // namespace snapshot_test
