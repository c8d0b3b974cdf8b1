// The `snapshot` VFS records every page written through it (vfs/snapshot_vfs.h).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>

#include "tests/test_util.h"
#include "vfs/snapshot_vfs.h"
#include "vfs/tracking_format.h"

namespace snapshot_test {
namespace {

using snapshot::kTrackBitmapOffset;
using snapshot::kTrackMagic;

// Pages whose bit is set in <db>-snaptrack.
std::set<uint32_t> MarkedPages(const std::string& db) {
  const std::string data = ReadFile(db + "-snaptrack");
  std::set<uint32_t> pages;
  EXPECT_EQ(0, data.compare(0, 8, kTrackMagic));
  for (size_t b = kTrackBitmapOffset; b < data.size(); b++) {
    for (int k = 0; k < 8; k++) {
      if (static_cast<unsigned char>(data[b]) >> k & 1) {
        pages.insert(uint32_t(8 * (b - kTrackBitmapOffset) + k + 1));
      }
    }
  }
  return pages;
}

// Forgets every mark (as a snapshot will once it has used them).
void ClearMarks(const std::string& db) {
  std::string data = ReadFile(db + "-snaptrack");
  std::fill(data.begin() + kTrackBitmapOffset, data.end(), '\0');
  std::ofstream(db + "-snaptrack", std::ios::binary | std::ios::trunc) << data;
}

// Pages whose content differs between two images of a database.
std::set<uint32_t> ChangedPages(const std::string& a, const std::string& b, uint32_t page_size) {
  std::set<uint32_t> out;
  auto page = [page_size](const std::string& s, size_t off) { return off < s.size() ? s.substr(off, page_size) : ""; };
  for (size_t off = 0; off < std::max(a.size(), b.size()); off += page_size) {
    if (page(a, off) != page(b, off)) out.insert(uint32_t(off / page_size + 1));
  }
  return out;
}

class VfsTracking : public ::testing::TestWithParam<std::string> {
 protected:
  bool wal() const { return GetParam() == "WAL"; }
  TempDir dir_;
};

TEST_P(VfsTracking, EveryChangedPageIsMarked) {
  const std::string path = dir_ / "app.db";
  sqlite3* db = OpenThroughVfs(path);
  ASSERT_EQ("", Exec(db, "PRAGMA journal_mode=" + GetParam() + "; PRAGMA wal_autocheckpoint=0; PRAGMA cache_size=20"));
  ASSERT_EQ("", Exec(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); CREATE INDEX tv ON t(v);"
                         "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<4000) "
                         "INSERT INTO t(v) SELECT hex(randomblob(100)) FROM c"));
  const int64_t pages = QueryInt(db, "PRAGMA page_count");
  std::set<uint32_t> all;
  for (uint32_t p = 1; p <= pages; p++) all.insert(p);
  const std::set<uint32_t> marked_at_creation = MarkedPages(path);
  for (uint32_t p : all) EXPECT_TRUE(marked_at_creation.count(p)) << "page " << p << " written but not marked";
  ASSERT_EQ("", Exec(db, "PRAGMA wal_checkpoint(TRUNCATE)"));

  // A scattered change, a transaction that spills its cache and rolls back,
  // and another commit: the marks must cover every page whose content
  // changed, and not much more.
  ClearMarks(path);
  const std::string before = ReadFile(path);
  ASSERT_EQ("", Exec(db, "BEGIN; UPDATE t SET v = hex(randomblob(100)); ROLLBACK;"));
  ASSERT_EQ("", Exec(db, "UPDATE t SET v = 'x' || v WHERE id % 97 = 0"));
  ASSERT_EQ("", Exec(db, "PRAGMA wal_checkpoint(TRUNCATE)"));
  const std::set<uint32_t> changed = ChangedPages(before, ReadFile(path), 4096);
  const std::set<uint32_t> marked = MarkedPages(path);
  ASSERT_FALSE(changed.empty());
  for (uint32_t p : changed) EXPECT_TRUE(marked.count(p)) << "page " << p << " changed but not marked";
  EXPECT_EQ("ok", Query(db, "PRAGMA integrity_check"));
  sqlite3_close(db);
}

TEST_P(VfsTracking, MarksSurviveAKilledWriter) {
  const std::string path = dir_ / "app.db";
  {
    sqlite3* db = OpenThroughVfs(path);
    ASSERT_EQ("", Exec(db, "PRAGMA journal_mode=" + GetParam() + "; CREATE TABLE t(v)"));
    sqlite3_close(db);
  }
  ClearMarks(path);
  pid_t child = fork();
  if (child == 0) {
    sqlite3* db = OpenThroughVfs(path);
    Exec(db, "PRAGMA wal_autocheckpoint=0; WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<200) INSERT INTO t SELECT hex(randomblob(3000)) FROM c");
    kill(getpid(), SIGKILL);  // no clean-up of any kind
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(child, waitpid(child, &status, 0));
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_GE(MarkedPages(path).size(), 100u) << "the killed writer's marks were lost";
}

// Snapshots taken and restored through the VFS are exact.
TEST_P(VfsTracking, SnapshotsWorkThroughIt) {
  const std::string path = dir_ / "app.db";
  sqlite3* db = OpenThroughVfs(path);
  ASSERT_EQ("", Exec(db, "PRAGMA journal_mode=" + GetParam() + "; CREATE TABLE t(v);"
                         "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<3000) "
                         "INSERT INTO t SELECT hex(randomblob(300)) FROM c"));
  EXPECT_EQ("1", Query(db, "SELECT snapshot_backup()"));
  const int64_t rows = QueryInt(db, "SELECT count(*) FROM t");
  ASSERT_EQ("", Exec(db, "DELETE FROM t WHERE rowid % 3 = 0"));
  EXPECT_EQ("1", Query(db, "SELECT snapshot_restore(1)"));
  EXPECT_EQ(rows, QueryInt(db, "SELECT count(*) FROM t"));
  EXPECT_EQ("ok", Query(db, "PRAGMA integrity_check"));
  EXPECT_EQ("1", Query(db, "SELECT snapshot_restore_to('" + dir_ / "copy.db" + "', 1)"));
  sqlite3* copy = OpenDb(dir_ / "copy.db", false);
  EXPECT_EQ(rows, QueryInt(copy, "SELECT count(*) FROM t"));
  sqlite3_close(copy);
  sqlite3_close(db);
}

INSTANTIATE_TEST_SUITE_P(Modes, VfsTracking, ::testing::Values("DELETE", "WAL"),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

// Paced write-back (vfs/paced_sync.h), which the snapshot switches on for
// its checkpoint: with the file control set, every 256 KiB a connection
// writes to the database file is synced after one gate call, the
// connection's own syncs wait at the gate too, and switching it off syncs
// the rest; once it is off, nothing waits. A connection that is not through
// the snapshot VFS does not know the control.
TEST(PacedWriteback, GateOpensFor256KiBWrittenAndForEverySync) {
  TempDir dir;
  const std::string path = dir / "app.db";
  sqlite3* db = OpenThroughVfs(path);
  ASSERT_EQ("", Exec(db, "PRAGMA journal_mode=DELETE; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"
                         "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<4000) "
                         "INSERT INTO t(v) SELECT hex(randomblob(500)) FROM c"));
  const int64_t pages = QueryInt(db, "PRAGMA page_count");
  const int64_t batches = pages * 4096 / (256 << 10);  // whole 256 KiB written by an UPDATE of every row
  ASSERT_GE(batches, 12);
  int calls = 0;
  snapshot::SnapshotWritebackGate gate = {[](void* n) { ++*static_cast<int*>(n); }, &calls};
  ASSERT_EQ(SQLITE_OK, sqlite3_file_control(db, "main", snapshot::kPaceWritebackFcntl, &gate));
  // Every page, then the commit's own sync of the database file.
  ASSERT_EQ("", Exec(db, "UPDATE t SET v = lower(v)"));
  EXPECT_EQ(batches + 1, calls);
  calls = 0;
  ASSERT_EQ("", Exec(db, "UPDATE t SET v = upper(v) WHERE id = 2000"));
  EXPECT_EQ(1, calls);  // the commit's sync only
  // With synchronous=OFF SQLite never syncs: what is left is synced when
  // pacing is switched off, and nothing waits after that.
  ASSERT_EQ("", Exec(db, "PRAGMA synchronous=OFF"));
  calls = 0;
  ASSERT_EQ("", Exec(db, "UPDATE t SET v = lower(v) WHERE id = 2000"));
  EXPECT_EQ(0, calls);
  ASSERT_EQ(SQLITE_OK, sqlite3_file_control(db, "main", snapshot::kPaceWritebackFcntl, nullptr));
  EXPECT_EQ(1, calls);
  calls = 0;
  ASSERT_EQ("", Exec(db, "PRAGMA synchronous=FULL; UPDATE t SET v = upper(v)"));
  EXPECT_EQ(0, calls);
  EXPECT_EQ("ok", Query(db, "PRAGMA integrity_check"));
  sqlite3_close(db);

  sqlite3* plain = OpenDb(path);
  EXPECT_EQ(SQLITE_NOTFOUND, sqlite3_file_control(plain, "main", snapshot::kPaceWritebackFcntl, &gate));
  sqlite3_close(plain);
}

}  // namespace
}  // namespace snapshot_test
