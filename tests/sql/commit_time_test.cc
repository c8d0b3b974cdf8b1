// snapshot_list's `committed`: when the newest commit a snapshot holds was
// made, which is earlier than `created` when the snapshot was taken after
// writes stopped, and what a moment is matched against to restore the state
// of that moment. Both journal modes, through the snapshot VFS (the tracked
// capture) and without it (the capture under a read transaction); the file
// whose time is taken in WAL mode; and stores whose snapshots predate the
// field (format version 1): listed with `committed` NULL, still restored,
// and written on in the current version.

#include <fcntl.h>
#include <sys/stat.h>

#include <chrono>
#include <thread>

#include "store/coding.h"
#include "store/format.h"
#include "store/store.h"
#include "store/timestamp.h"
#include "tests/sql/sql_test_util.h"

namespace snapshot_test {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The `column` time of snapshot `id` as Unix ms; -1 when NULL.
int64_t TimeOf(sqlite3* db, int64_t id, const std::string& column) {
  const std::string text =
      Query(db, "SELECT ifnull(" + column + ", 'NULL') FROM snapshot_list WHERE id = " + std::to_string(id));
  if (text == "NULL") return -1;
  int64_t ms = 0;
  EXPECT_TRUE(snapshot::ParseTimestamp(text, &ms).ok()) << column << " of snapshot " << id << ": " << text;
  return ms;
}

// Sets a file's modification time, as if it was last written at `unix_ms`.
void SetMtime(const std::string& path, int64_t unix_ms) {
  const struct timespec t[2] = {{unix_ms / 1000, (unix_ms % 1000) * 1000000},
                                {unix_ms / 1000, (unix_ms % 1000) * 1000000}};
  ASSERT_EQ(0, utimensat(AT_FDCWD, path.c_str(), t, 0)) << path;
}

class SqlCommitTime : public SqlFixture, public ::testing::WithParamInterface<std::string> {};

// A snapshot taken well after the last commit lists that commit's time, not
// its own; with the VFS and without it.
TEST_P(SqlCommitTime, ASnapshotTakenAfterWritesStoppedShowsTheEarlierCommit) {
  sqlite3* through_vfs = OpenThroughVfs(DbPath());
  Conn plain(Path("plain.db"));
  sqlite3* dbs[] = {through_vfs, plain};
  for (sqlite3* db : dbs) {
    EXPECT_EQ(GetParam(), Query(db, "PRAGMA journal_mode=" + GetParam()));
    Fill(db, "t", 300);
    EXPECT_EQ(1, Backup(db, "first"));
  }
  // Clocks of the file system lag the fine clock by up to a scheduler tick.
  const int64_t before = NowMs() - 50;
  for (sqlite3* db : dbs) Ok(db, "UPDATE t SET a = 'changed' WHERE id % 7 = 0");
  const int64_t after = NowMs();
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  for (sqlite3* db : dbs) {
    const std::string which = db == through_vfs ? "through the VFS" : "without the VFS";
    EXPECT_EQ(2, Backup(db, "later")) << which;
    const int64_t committed = TimeOf(db, 2, "committed"), created = TimeOf(db, 2, "created");
    EXPECT_GE(committed, before) << which;
    EXPECT_LE(committed, after) << which;
    EXPECT_GE(created - committed, 1000) << which;
    // Half a second after that commit the database was in the state the
    // later snapshot holds, though it was written later: a restore to that
    // moment takes it.
    const std::string moment = snapshot::FormatTimestamp(committed + 500);
    EXPECT_EQ("2", Query(db, "SELECT snapshot_id('" + moment + "')")) << which;
    // The first snapshot, taken right after its commit: committed at or
    // before created, never after.
    EXPECT_LE(TimeOf(db, 1, "committed"), TimeOf(db, 1, "created")) << which;
    EXPECT_NE(-1, TimeOf(db, 1, "committed")) << which;
  }
  sqlite3_close(through_vfs);
}

INSTANTIATE_TEST_SUITE_P(Modes, SqlCommitTime, ::testing::Values("delete", "wal"), ModeName);

// WAL mode: while the -wal file holds frames it is the one every commit was
// written to, and its time is taken, not the database file's (which a
// checkpoint dates after the commit); once a checkpoint empties it, the
// database file's.
TEST_F(SqlCommitTime, WalModeDatesTheCommitByTheWalWhileItHoldsFrames) {
  sqlite3* db = OpenThroughVfs(DbPath());
  EXPECT_EQ("wal", Query(db, "PRAGMA journal_mode=wal"));
  Fill(db, "t", 100);
  const int64_t wal_time = 1700000000123, db_time = 1700000456789;  // in 2023
  SetMtime(DbPath() + "-wal", wal_time);
  SetMtime(DbPath(), db_time);
  EXPECT_EQ(1, Backup(db));
  EXPECT_EQ(wal_time, TimeOf(db, 1, "committed"));
  Ok(db, "PRAGMA wal_checkpoint(TRUNCATE)");
  ASSERT_EQ(0u, FileSize(DbPath() + "-wal"));
  SetMtime(DbPath(), db_time);
  EXPECT_EQ(2, Backup(db));
  EXPECT_EQ(db_time, TimeOf(db, 2, "committed"));
  sqlite3_close(db);
}

// Rewrites a store written now as format version 1 wrote it: manifests
// without commit_ms (8 bytes at offset 56), version 1 in every manifest
// and in STORE, checksums recomputed.
void DowngradeToVersion1(const std::string& store) {
  auto reseal = [](std::string* data) {
    data->resize(data->size() - 8);
    std::string sum;
    snapshot::ByteWriter(&sum).U64(snapshot::Checksum64(data->data(), data->size()));
    *data += sum;
  };
  auto set_version_1 = [](std::string* data) { (*data)[8] = 1, (*data)[9] = (*data)[10] = (*data)[11] = 0; };
  for (const std::string& name : FilesIn(store + "/snapshots")) {
    const std::string path = store + "/snapshots/" + name;
    std::string data = ReadFile(path);
    ASSERT_EQ(snapshot::kFormatVersion, uint8_t(data[8])) << path;
    set_version_1(&data);
    data.erase(56, 8);
    reseal(&data);
    WriteFile(path, data);
  }
  std::string data = ReadFile(store + "/STORE");
  set_version_1(&data);
  reseal(&data);
  WriteFile(store + "/STORE", data);
}

TEST_F(SqlCommitTime, Version1SnapshotsListWithoutACommitTimeAndStillRestore) {
  Conn db(DbPath());
  Fill(db, "t", 300);
  EXPECT_EQ(1, Backup(db, "old"));
  const std::string old_state = Digest(db);
  const int64_t created = TimeOf(db, 1, "created");
  DowngradeToVersion1(StoreDir());

  EXPECT_EQ("old", Query(db, "SELECT label FROM snapshot_list WHERE id = 1"));
  EXPECT_EQ(-1, TimeOf(db, 1, "committed"));
  EXPECT_EQ(created, TimeOf(db, 1, "created"));
  EXPECT_EQ("ok", Query(db, "SELECT snapshot_verify()"));
  // A moment resolves by the creation time when no commit time is known.
  EXPECT_EQ("1", Query(db, "SELECT snapshot_id('" + snapshot::FormatTimestamp(created) + "')"));

  // A writer marks the store as the version it writes, then adds to it.
  Ok(db, "DELETE FROM t WHERE id > 10");
  EXPECT_EQ(2, Backup(db, "new"));
  EXPECT_EQ(snapshot::kFormatVersion, uint8_t(ReadFile(StoreDir() + "/STORE")[8]));
  EXPECT_NE(-1, TimeOf(db, 2, "committed"));
  EXPECT_EQ(-1, TimeOf(db, 1, "committed"));
  EXPECT_EQ("1", Query(db, "SELECT snapshot_restore(1)"));
  EXPECT_EQ(old_state, Digest(db));
  EXPECT_EQ("ok", Integrity(db));
}

}  // namespace
}  // namespace snapshot_test
