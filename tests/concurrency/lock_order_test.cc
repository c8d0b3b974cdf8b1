// Lock order between the database and the snapshot store.
//
// snapshot_list (like any statement reading a table) holds the database's
// SHARED lock, or WAL read lock, while it waits for the store's shared lock.
// snapshot_backup and snapshot_restore take the store's exclusive lock first
// and wait for the database afterwards. In rollback-journal mode that is a
// lock-order inversion: each waits for the other until a timeout.

#include "tests/concurrency/concurrency_util.h"

namespace snapshot_test {
namespace {

struct LockShm {
  std::atomic<int> step;
  std::atomic<int64_t> list_ms, other_ms;
  char list_result[512];
  char other_result[512];
  std::atomic<int> commit_rc;
};

// One snapshot of the database at `path`, taken before any child is forked.
void BackUp(const std::string& path, int64_t* id) {
  std::string err;
  sqlite3* db = OpenConn(path, true, &err);
  ASSERT_NE(db, nullptr) << err;
  ASSERT_TRUE(QueryI64(db, "SELECT snapshot_backup('base')", id, &err)) << err;
  ASSERT_EQ(SQLITE_OK, sqlite3_close(db));
}

// The reader child: opens a read transaction, says so (step 1), waits for
// step `list_at`, then lists the snapshots inside that transaction and
// records the answer and how long it took.
int ListInAReadTransaction(const std::string& path, LockShm* k, int list_at) {
  std::string e;
  sqlite3* db = OpenConn(path, true, &e);
  if (db == nullptr) return 2;
  ExecRc(db, "PRAGMA busy_timeout=4000");
  Query(db, "SELECT snapshot_config('busy_timeout', 4000)");
  Query(db, "BEGIN");
  Query(db, "SELECT counter FROM meta");  // the read transaction
  k->step.store(1);
  while (k->step.load() < list_at) SleepMs(1);
  const int64_t t0 = NowMs();
  SetMsg(k->list_result, sizeof k->list_result, Query(db, "SELECT count(*) FROM snapshot_list"));
  k->list_ms.store(NowMs() - t0);
  Query(db, "COMMIT");
  sqlite3_close(db);
  return 0;
}

// A child that calls `sql` (a snapshot function, with a busy timeout of 8 s
// both SQLite's and the store's) and records its answer and how long it took.
int TimedSnapshotCall(const std::string& path, LockShm* k, const std::string& sql) {
  std::string e;
  sqlite3* db = OpenConn(path, true, &e);
  if (db == nullptr) return 2;
  ExecRc(db, "PRAGMA busy_timeout=8000");
  Query(db, "SELECT snapshot_config('busy_timeout', 8000)");
  const int64_t t0 = NowMs();
  SetMsg(k->other_result, sizeof k->other_result, Query(db, sql));
  k->other_ms.store(NowMs() - t0);
  sqlite3_close(db);
  return 0;
}

// Each case: a database with one snapshot (`base_id`), and a reader child
// holding a read transaction on it (StartReader).
class ConcurrencyLockOrder : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(CreateDb(path, GetParam(), 50, 10, 100));
    ASSERT_NO_FATAL_FAILURE(BackUp(path, &base_id));
  }

  // Starts ListInAReadTransaction in a child; returns once its read
  // transaction is open.
  pid_t StartReader(int list_at) {
    const pid_t reader = kids.Spawn([&] { return ListInAReadTransaction(path, &*k, list_at); });
    while (k->step.load() < 1) SleepMs(1);
    return reader;
  }

  TempDir dir;
  const std::string path = dir / "live.db";
  int64_t base_id = 0;
  Shared<LockShm> k;
  Children kids{path};
};

// A process with an open read transaction lists the snapshots while a
// restore waits for that transaction to end.
TEST_P(ConcurrencyLockOrder, ListingInAReadTransactionWhileARestoreWaits) {
  const std::string mode = GetParam();
  const pid_t reader = StartReader(2);
  const pid_t restorer =
      kids.Spawn([&] { return TimedSnapshotCall(path, &*k, Sql("SELECT snapshot_restore(%lld)", (long long)base_id)); });
  SleepMs(400);  // the restore is now waiting (rollback mode) or done (WAL)
  k->step.store(2);
  EXPECT_EQ(0, kids.Wait(reader));
  EXPECT_EQ(0, kids.Wait(restorer));
  std::printf("[%s] snapshot_list in the read transaction: '%s' after %lld ms; snapshot_restore: '%s' after %lld ms\n",
              mode.c_str(), k->list_result, (long long)k->list_ms.load(), k->other_result,
              (long long)k->other_ms.load());
  // Listing needs nothing the restore must change: it should answer at
  // once, and the restore go ahead when the reader's transaction ends.
  EXPECT_GE(std::atoi(k->list_result), 1)
      << k->list_result << "\nsnapshot_list waited for the store lock that the restore held while the restore waited for this "
         "reader's database lock (lock-order inversion)";
  EXPECT_LT(k->list_ms.load(), 2000);
  EXPECT_EQ(std::to_string(base_id), std::string(k->other_result));
}

// A writer waits (PENDING) for a reader; a backup waits behind the writer;
// the reader then lists the snapshots.
TEST_P(ConcurrencyLockOrder, ListingWhileABackupWaitsBehindAWriter) {
  const std::string mode = GetParam();
  const pid_t reader = StartReader(3);
  const pid_t writer = kids.Spawn([&]() -> int {
    std::string e;
    sqlite3* db = OpenConn(path, false, &e);
    if (db == nullptr) return 2;
    ExecRc(db, "PRAGMA busy_timeout=8000");
    ExecRc(db, "BEGIN IMMEDIATE; UPDATE meta SET counter = counter + 1;"
               "UPDATE wstate SET commits = commits + 1 WHERE writer = 0");
    k->step.store(2);
    k->commit_rc.store(ExecRc(db, "COMMIT"));  // rollback mode: PENDING, waits for the reader
    sqlite3_close(db);
    return 0;
  });
  while (k->step.load() < 2) SleepMs(1);
  SleepMs(200);
  const pid_t backup = kids.Spawn([&] { return TimedSnapshotCall(path, &*k, "SELECT snapshot_backup('behind-writer')"); });
  SleepMs(400);
  k->step.store(3);
  EXPECT_EQ(0, kids.Wait(reader));
  EXPECT_EQ(0, kids.Wait(writer));
  EXPECT_EQ(0, kids.Wait(backup));
  std::printf("[%s] snapshot_list: '%s' after %lld ms; snapshot_backup: '%s' after %lld ms; writer COMMIT rc %d\n",
              mode.c_str(), k->list_result, (long long)k->list_ms.load(), k->other_result,
              (long long)k->other_ms.load(), k->commit_rc.load());
  EXPECT_GE(std::atoi(k->list_result), 1)
      << k->list_result << "\nsnapshot_list waited for the store lock held by a backup that waited for the database "
         "(lock-order inversion: reader -> backup -> writer -> reader)";
  EXPECT_LT(k->list_ms.load(), 2000);
  EXPECT_EQ(SQLITE_OK, k->commit_rc.load());
  EXPECT_EQ(0u, std::string(k->other_result).rfind("2", 0)) << "backup: " << k->other_result;
}

INSTANTIATE_TEST_SUITE_P(Concurrency, ConcurrencyLockOrder, ::testing::Values("delete", "wal"), ModeName);

}  // namespace
}  // namespace snapshot_test
