// Tracker (vfs/tracker.h): what the tracking file records of the writes made
// through the snapshot VFS. An incremental snapshot copies only the pages
// recorded here, so a page missing from the record is a page missing from
// the snapshot, and a page recorded for nothing is work for nothing.
#include "vfs/tracker.h"

#include <gtest/gtest.h>

#include <string>
#include <tuple>
#include <vector>

#include "tests/test_util.h"
#include "tests/vfs/vfs_unit_util.h"

namespace snapshot_test {
namespace {

using snapshot::Tracker;

constexpr uint32_t kPageSize = 4096;

// A database of a few dozen pages, written without the snapshot VFS.
void MakeDatabase(const std::string& path, const char* journal_mode) {
  sqlite3* db = OpenPlain(path);
  EXPECT_EQ("", Exec(db, "PRAGMA page_size=" + std::to_string(kPageSize) + "; PRAGMA journal_mode=" +
                             journal_mode + "; CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);"
                             " WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)"
                             " INSERT INTO t SELECT i, randomblob(300) FROM n;"));
  sqlite3_close(db);
}

// One write transaction through the snapshot VFS: rows far apart, so on
// pages far apart.
constexpr char kTransaction[] = "UPDATE t SET v = randomblob(300) WHERE id IN (3, 250, 480)";

// The database as SQLite sees it, written into the database file: a plain
// connection checkpoints what a WAL still holds (its writes are not
// through the VFS, so they record nothing).
std::string CommittedImage(const std::string& path) {
  sqlite3* db = OpenPlain(path);
  EXPECT_EQ("", Exec(db, "PRAGMA wal_checkpoint(TRUNCATE)"));
  sqlite3_close(db);
  return ReadFile(path);
}

// Every page the transaction changed is recorded, and no other, in both
// journal modes, whether its writer closed its connection or was killed
// right after the commit: the record lives in a shared file, not in the
// writer's memory.
class TrackerRecordTest : public ::testing::TestWithParam<std::tuple<const char*, bool>> {};

TEST_P(TrackerRecordTest, RecordsExactlyThePagesATransactionChanged) {
  const auto [journal_mode, writer_killed] = GetParam();
  TempDir dir;
  const std::string path = RealPath(dir.path()) + "/app.db";
  MakeDatabase(path, journal_mode);
  const std::string before = ReadFile(path);

  auto write_through_vfs = [&] {
    sqlite3* db = OpenThroughUnitVfs(path);
    Tracker* tracker = Tracker::Find(path);
    ASSERT_NE(nullptr, tracker);
    // Reading records nothing.
    std::vector<uint32_t> marks;
    ASSERT_TRUE(tracker->TakeMarks(&marks).ok());
    EXPECT_EQ(std::vector<uint32_t>{}, marks);
    ASSERT_EQ(0, QueryInt(db, "SELECT count(*) FROM t WHERE v IS NULL"));
    ASSERT_EQ("", Exec(db, kTransaction));
    if (!writer_killed) sqlite3_close(db);
  };
  if (writer_killed) {
    ASSERT_TRUE(RunThenKill(write_through_vfs));
  } else {
    write_through_vfs();
  }
  ASSERT_EQ(nullptr, Tracker::Find(path)) << "no connection of this process has the tracking file open";
  const std::vector<uint32_t> changed = ChangedPages(before, CommittedImage(path), kPageSize);
  ASSERT_GE(changed.size(), 3u) << "three rows on pages far apart";

  // A new mapping of the tracking file, as the next snapshot opens it.
  Tracker* tracker = Tracker::AcquireExisting(path);
  ASSERT_NE(nullptr, tracker);
  std::vector<uint32_t> marks;
  ASSERT_TRUE(tracker->TakeMarks(&marks).ok());
  EXPECT_EQ(changed, marks);
  // Taken means taken: the next snapshot starts from nothing.
  ASSERT_TRUE(tracker->TakeMarks(&marks).ok());
  EXPECT_EQ(std::vector<uint32_t>{}, marks);
  Tracker::Release(tracker);
}

INSTANTIATE_TEST_SUITE_P(JournalModes, TrackerRecordTest,
                         ::testing::Combine(::testing::Values("delete", "wal"), ::testing::Bool()),
                         [](const ::testing::TestParamInfo<std::tuple<const char*, bool>>& info) {
                           return std::string(std::get<0>(info.param)) +
                                  (std::get<1>(info.param) ? "_WriterKilled" : "_WriterClosed");
                         });

// The record is trusted only while every commit went through the snapshot
// VFS: a commit made without it changed pages nobody recorded, and the next
// snapshot must read every page instead.
TEST(TrackerTest, ACommitWithoutTheVfsMakesTheRecordUntrusted) {
  TempDir dir;
  const std::string path = RealPath(dir.path()) + "/app.db";
  MakeDatabase(path, "delete");
  sqlite3* db = OpenThroughUnitVfs(path);
  Tracker* tracker = Tracker::Find(path);
  ASSERT_NE(nullptr, tracker);
  sqlite3_file* file = MainFile(db);
  const uint32_t pages = uint32_t(QueryInt(db, "PRAGMA page_count"));

  // What a snapshot does once it has stored the database's current state.
  std::vector<uint32_t> marks;
  ASSERT_TRUE(tracker->TakeMarks(&marks).ok());
  ASSERT_TRUE(tracker->Reset(file, nullptr, kPageSize, 0).ok());
  tracker->SetBase(/*store_tag=*/1, /*base_id=*/1, pages, /*held_before_ms=*/0);
  EXPECT_EQ(uint32_t(snapshot::kTrusted), tracker->Evaluate(file, nullptr, kPageSize));

  ASSERT_EQ("", Exec(db, kTransaction));
  EXPECT_EQ(uint32_t(snapshot::kTrusted), tracker->Evaluate(file, nullptr, kPageSize))
      << "a tracked commit keeps the evidence";

  sqlite3* plain = OpenPlain(path);
  ASSERT_EQ("", Exec(plain, "UPDATE t SET v = randomblob(300) WHERE id = 100"));
  sqlite3_close(plain);
  EXPECT_EQ(uint32_t(snapshot::kForeignCommit), tracker->Evaluate(file, nullptr, kPageSize));
  sqlite3_close(db);
}

}  // namespace
}  // namespace snapshot_test
