// Snapshots that read only the pages the snapshot VFS saw change, and the
// cases where they must not trust that record: a plain
// sqlite3 without the extension writing between two snapshots, a writer
// killed with kill -9 in the middle of a transaction, a database file
// replaced by another, a reboot, a restore. In each case the next snapshot,
// restored into a new file, must equal the database page for page.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>

#include "tests/shim_vfs.h"
#include "tests/test_util.h"
#include "vfs/tracking_format.h"

namespace snapshot_test {
namespace {

constexpr size_t kBootIdOffset = offsetof(snapshot::TrackHeader, boot_id);
constexpr size_t kCowLastGenerationOffset = offsetof(snapshot::TrackHeader, cow_last_generation);
constexpr size_t kWritesEndedOffset = offsetof(snapshot::TrackHeader, writes_ended);
constexpr size_t kWritesBegunOffset = offsetof(snapshot::TrackHeader, writes_begun);

// Runs SQL in the real sqlite3 shell, which does not load the extension: a
// writer the VFS never sees.
void PlainShell(const std::string& db, const std::string& sql) {
  FILE* p = popen(("sqlite3 -batch -bail '" + db + "' >/dev/null").c_str(), "w");
  ASSERT_NE(nullptr, p);
  std::fputs((".timeout 5000\n" + sql + "\n").c_str(), p);
  ASSERT_EQ(0, pclose(p)) << sql;
}

bool StartsWith(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

class Tracked : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    path_ = dir_ / "app.db";
    db_ = OpenThroughVfs(path_);
    ASSERT_EQ("", Exec(db_, "PRAGMA journal_mode=" + GetParam()));
    ASSERT_EQ("", Exec(db_, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); CREATE INDEX tv ON t(v);"
                            "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<6000) "
                            "INSERT INTO t(v) SELECT hex(randomblob(150)) FROM c"));
  }
  void TearDown() override { sqlite3_close(db_); }

  std::string Tracking() { return Query(db_, "SELECT snapshot_tracking()"); }
  template <typename T>
  T TrackingHeaderField(size_t offset) {
    T n = 0;
    std::memcpy(&n, ReadFile(path_ + "-snaptrack").data() + offset, sizeof n);
    return n;
  }
  int64_t Backup() { return QueryInt(db_, "SELECT snapshot_backup()"); }
  void Change(sqlite3* db, int every) {
    ASSERT_EQ("", Exec(db, "UPDATE t SET v = hex(randomblob(150)) WHERE id % " + std::to_string(every) + " = 0"));
  }

  // Snapshot `id`, restored into a new file, equals the database now, page
  // for page (after a checkpoint that leaves the WAL in place).
  void ExpectSnapshotIsLive(int64_t id) {
    ASSERT_EQ("", Exec(db_, "PRAGMA wal_checkpoint(FULL)"));
    const std::string copy = dir_ / ("copy" + std::to_string(id) + ".db");
    ASSERT_EQ(std::to_string(id), Query(db_, "SELECT snapshot_restore_to('" + copy + "', " + std::to_string(id) + ")"));
    const int64_t pages = QueryInt(db_, "PRAGMA page_count");
    EXPECT_EQ("", ComparePages(ReadFile(path_).substr(0, size_t(pages) * 4096), ReadFile(copy), 4096))
        << "snapshot " << id << " is not the database";
  }

  TempDir dir_;
  std::string path_;
  sqlite3* db_ = nullptr;
};

TEST_P(Tracked, ReadsOnlyTheChangedPages) {
  EXPECT_TRUE(StartsWith(Tracking(), "untracked: ")) << Tracking();
  EXPECT_EQ(1, Backup());
  EXPECT_EQ("tracked: 0 pages changed since snapshot 1", Tracking());
  struct stat st;
  EXPECT_EQ(GetParam() == "WAL", stat((path_ + "-shm").c_str(), &st) == 0)
      << "a snapshot of a rollback-mode database must not create a -shm file";
  Change(db_, 500);  // 12 rows
  const std::string tracking = Tracking();
  ASSERT_TRUE(StartsWith(tracking, "tracked: ")) << tracking;
  const int64_t marked = std::strtoll(tracking.c_str() + 9, nullptr, 10);
  const int64_t pages = QueryInt(db_, "PRAGMA page_count");
  EXPECT_GT(marked, 0);
  EXPECT_LT(marked, pages / 10) << "far more pages marked than changed";
  EXPECT_EQ(2, Backup());
  EXPECT_LE(QueryInt(db_, "SELECT pages_new FROM snapshot_list WHERE id = 2"), marked);
  ExpectSnapshotIsLive(2);
  EXPECT_EQ("tracked: 0 pages changed since snapshot 2", Tracking());
  // Several rounds, with the database growing and shrinking.
  for (int round = 0; round < 4; round++) {
    Change(db_, 37 + round);
    ASSERT_EQ("", Exec(db_, round % 2 ? "DELETE FROM t WHERE id % 9 = 0"
                                      : "INSERT INTO t(v) SELECT hex(randomblob(300)) FROM t WHERE id % 5 = 0"));
    EXPECT_TRUE(StartsWith(Tracking(), "tracked: ")) << Tracking();
    const int64_t id = Backup();
    ExpectSnapshotIsLive(id);
  }
}

TEST_P(Tracked, PlainSqliteWritesAreNoticed) {
  EXPECT_EQ(1, Backup());
  Change(db_, 300);
  // A plain sqlite3 writes while a tracked connection is open...
  PlainShell(path_, "UPDATE t SET v = 'plain' WHERE id % 211 = 0;");
  Change(db_, 301);
  EXPECT_TRUE(StartsWith(Tracking(), "untracked: ")) << Tracking();
  EXPECT_EQ(2, Backup());
  ExpectSnapshotIsLive(2);
  EXPECT_TRUE(StartsWith(Tracking(), "tracked: ")) << Tracking();

  // ...and while none is (it is then the last to close, and in WAL mode
  // checkpoints and deletes the WAL it wrote).
  sqlite3_close(db_);
  PlainShell(path_, "UPDATE t SET v = 'plain again' WHERE id % 213 = 0;");
  db_ = OpenThroughVfs(path_);
  Change(db_, 302);
  EXPECT_TRUE(StartsWith(Tracking(), "untracked: ")) << Tracking();
  EXPECT_EQ(3, Backup());
  ExpectSnapshotIsLive(3);

  // A plain write that is the only change.
  PlainShell(path_, "UPDATE t SET v = 'only' WHERE id = 17;");
  EXPECT_TRUE(StartsWith(Tracking(), "untracked: ")) << Tracking();
  EXPECT_EQ(4, Backup());
  ExpectSnapshotIsLive(4);
}

// A tracked writer is killed with kill -9 inside a transaction that has
// spilled pages into the database file (rollback mode) or written frames
// (WAL mode); whoever recovers, with or without the VFS, the next snapshot
// is the database.
TEST_P(Tracked, WriterKilledMidTransaction) {
  for (bool plain_recovery : {false, true}) {
    SCOPED_TRACE(plain_recovery ? "recovered by a plain sqlite3" : "recovered through the VFS");
    const int64_t before = Backup();
    Change(db_, 400);
    pid_t child = fork();
    if (child == 0) {
      sqlite3* w = OpenThroughVfs(path_);
      Exec(w, "PRAGMA cache_size=10; BEGIN; UPDATE t SET v = hex(randomblob(150)) WHERE id % 3 = 0;"
              "INSERT INTO t(v) SELECT v FROM t WHERE id % 7 = 0;");
      kill(getpid(), SIGKILL);  // inside the transaction, no clean-up of any kind
      _exit(0);
    }
    int status = 0;
    ASSERT_EQ(child, waitpid(child, &status, 0));
    ASSERT_TRUE(WIFSIGNALED(status));
    if (!GetParam().compare("DELETE")) {
      struct stat st;
      ASSERT_EQ(0, stat((path_ + "-journal").c_str(), &st)) << "the killed writer left no hot journal";
    }
    if (plain_recovery) {
      sqlite3_close(db_);
      PlainShell(path_, "SELECT count(*) FROM t;");  // rolls the hot journal back
      db_ = OpenThroughVfs(path_);
    }
    const int64_t id = Backup();
    EXPECT_GT(id, before);
    ExpectSnapshotIsLive(id);
    EXPECT_EQ("ok", Query(db_, "PRAGMA integrity_check"));
  }
}

TEST_P(Tracked, ReplacedDatabaseFileIsNoticed) {
  EXPECT_EQ(1, Backup());
  // Another database of the same schema, moved over this one while no
  // connection is open (the old -wal goes with the old file).
  const std::string other = dir_ / "other.db";
  PlainShell(other, "PRAGMA journal_mode=" + GetParam() + "; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"
                    "CREATE INDEX tv ON t(v); WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c "
                    "WHERE i<5000) INSERT INTO t(v) SELECT 'other' || i FROM c;");
  sqlite3_close(db_);
  unlink((path_ + "-wal").c_str());
  unlink((path_ + "-shm").c_str());
  ASSERT_EQ(0, rename(other.c_str(), path_.c_str()));
  db_ = OpenThroughVfs(path_);
  EXPECT_TRUE(StartsWith(Tracking(), "untracked: the database file was replaced")) << Tracking();
  EXPECT_EQ(2, Backup());
  ExpectSnapshotIsLive(2);
  EXPECT_EQ("other1", Query(db_, "SELECT v FROM t WHERE id = 1"));
}

TEST_P(Tracked, RebootIsNoticed) {
  EXPECT_EQ(1, Backup());
  Change(db_, 100);
  // Bits still in the page cache may be lost with the machine: a tracking
  // file from another boot is not trusted.
  FILE* f = std::fopen((path_ + "-snaptrack").c_str(), "r+b");
  ASSERT_NE(nullptr, f);
  std::fseek(f, long(kBootIdOffset), SEEK_SET);
  std::fputc(0x5a, f);
  std::fclose(f);
  EXPECT_EQ("untracked: the machine restarted since the last snapshot", Tracking());
  EXPECT_EQ(2, Backup());
  ExpectSnapshotIsLive(2);
  EXPECT_TRUE(StartsWith(Tracking(), "tracked: ")) << Tracking();
}

TEST_P(Tracked, RestoreAndPruneAreNoticed) {
  EXPECT_EQ(1, Backup());
  Change(db_, 50);
  EXPECT_EQ(2, Backup());
  EXPECT_EQ("1", Query(db_, "SELECT snapshot_restore(1)"));  // records 3, pre-restore
  EXPECT_TRUE(StartsWith(Tracking(), "untracked: the database was restored")) << Tracking();
  EXPECT_EQ(4, Backup());
  ExpectSnapshotIsLive(4);
  // The base snapshot pruned away: every page is read again.
  Change(db_, 60);
  ASSERT_EQ("", Exec(db_, "PRAGMA wal_checkpoint(FULL)"));
  EXPECT_EQ(5, Backup());
  Change(db_, 61);
  const std::string store = path_ + "-snapshots";
  ASSERT_EQ(0, unlink((store + "/snapshots/0000000005.snap").c_str()));
  EXPECT_TRUE(StartsWith(Tracking(), "untracked: ")) << Tracking();
  const int64_t id = Backup();
  ExpectSnapshotIsLive(id);
}

// The copy-on-write of rollback mode: a writer with no busy timeout at all
// commits while a snapshot reads, and the snapshot is the state it pinned.
TEST_P(Tracked, WritersCommitWhileASnapshotReads) {
  ASSERT_EQ("", Exec(db_, "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<40000) "
                          "INSERT INTO t(v) SELECT hex(randomblob(700)) FROM c"));  // ~60 MB
  const int64_t rows = QueryInt(db_, "SELECT count(*) FROM t");
  int ready[2], done[2];
  ASSERT_EQ(0, pipe(ready));
  ASSERT_EQ(0, pipe(done));
  pid_t child = fork();
  if (child == 0) {
    // A writer process: waits until the snapshot reads (its progress is
    // published), then commits with no busy timeout.
    close(ready[0]);
    close(done[1]);
    sqlite3* w = OpenThroughVfs(path_);
    sqlite3_busy_timeout(w, 0);
    sqlite3* probe = OpenDb(path_);
    std::string progress;
    for (int i = 0; i < 20000 && progress.find("backup") == std::string::npos; i++) {
      progress = Query(probe, "SELECT snapshot_progress()");
      usleep(100);
    }
    int committed = 0;
    if (progress.find("backup") != std::string::npos) {
      for (int i = 0; i < 20; i++) {
        if (Exec(w, "UPDATE t SET v = 'during' WHERE id % 1000 = " + std::to_string(i)).empty()) committed++;
      }
    }
    if (write(ready[1], &committed, sizeof committed) != sizeof committed) _exit(2);
    // Once the snapshot is done: the size of the copy-on-write file this
    // writer still holds open (it lets go at the next snapshot), or -1.
    char byte;
    if (read(done[0], &byte, 1) != 1) _exit(2);
    int64_t cow_size = -1;
    for (int fd = 3; fd < 1024; fd++) {
      char target[4096];
      const ssize_t n = readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), target, sizeof target - 1);
      struct stat st;
      if (n > 0 && std::string(target, size_t(n)) == path_ + "-snapcow (deleted)" && fstat(fd, &st) == 0) {
        cow_size = st.st_size;
      }
    }
    if (write(ready[1], &cow_size, sizeof cow_size) != sizeof cow_size) _exit(2);
    _exit(0);
  }
  close(ready[1]);
  close(done[0]);
  EXPECT_EQ(1, Backup());
  const int64_t pages = QueryInt(db_, "PRAGMA page_count");
  int committed = -1;
  ASSERT_EQ(ssize_t(sizeof committed), read(ready[0], &committed, sizeof committed));
  ASSERT_EQ(1, write(done[1], "x", 1));
  int64_t cow_size = -2;
  ASSERT_EQ(ssize_t(sizeof cow_size), read(ready[0], &cow_size, sizeof cow_size));
  close(ready[0]);
  close(done[1]);
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_EQ(20, committed) << "writers could not commit while the snapshot read";
  if (GetParam() == "DELETE") {
    // The writer preserved pages for the snapshot; the snapshot freed them
    // when it was done, leaving the header and the page states.
    ASSERT_GT(cow_size, 0) << "the writer holds no copy-on-write file";
    EXPECT_LE(cow_size, 4096 + 4 * pages + 4096) << "the preserved pages were not freed";
  }
  // The snapshot holds none of those commits.
  const std::string copy = dir_ / "copy.db";
  ASSERT_EQ("1", Query(db_, "SELECT snapshot_restore_to('" + copy + "', 1)"));
  sqlite3* c = OpenDb(copy, false);
  EXPECT_EQ(rows, QueryInt(c, "SELECT count(*) FROM t"));
  EXPECT_EQ(0, QueryInt(c, "SELECT count(*) FROM t WHERE v = 'during'"));
  EXPECT_EQ("ok", Query(c, "PRAGMA integrity_check"));
  sqlite3_close(c);
  EXPECT_EQ(20, QueryInt(db_, "SELECT count(*) FROM t WHERE v = 'during'") > 0 ? 20 : 0);
}

// Tracked writers count the write transactions they begin and end; a
// snapshot times its own disk writes and compressing by those counts
// (ext/tracked_capture.cc). Read transactions do not count.
TEST_P(Tracked, WriteTransactionsAreCounted) {
  auto counter = [&](size_t offset) { return TrackingHeaderField<uint64_t>(offset); };
  const uint64_t ended = counter(kWritesEndedOffset), begun = counter(kWritesBegunOffset);
  EXPECT_EQ(begun, ended) << "no transaction is running";
  for (int i = 0; i < 5; i++) ASSERT_EQ("", Exec(db_, "UPDATE t SET v = 'x' WHERE id = " + std::to_string(i + 1)));
  EXPECT_EQ(ended + 5, counter(kWritesEndedOffset));
  EXPECT_EQ(begun + 5, counter(kWritesBegunOffset));
  EXPECT_EQ("6000", Query(db_, "SELECT count(*) FROM t"));
  EXPECT_EQ(ended + 5, counter(kWritesEndedOffset));
  ASSERT_EQ("", Exec(db_, "BEGIN IMMEDIATE; UPDATE t SET v = 'y' WHERE id = 9"));
  EXPECT_EQ(begun + 6, counter(kWritesBegunOffset)) << "inside a write transaction";
  EXPECT_EQ(ended + 5, counter(kWritesEndedOffset));
  ASSERT_EQ("", Exec(db_, "COMMIT"));
  EXPECT_EQ(ended + 6, counter(kWritesEndedOffset));
}

// A snapshot killed between creating its copy-on-write file and publishing
// it leaves "-snapcow.tmp-<pid>"; the next one, in either mode, removes it.
TEST_P(Tracked, AbandonedCopyOnWriteFileIsRemoved) {
  const std::string debris = path_ + "-snapcow.tmp-999999";
  std::FILE* f = std::fopen(debris.c_str(), "w");
  ASSERT_NE(nullptr, f);
  std::fputs("left by a snapshot that died", f);
  std::fclose(f);
  const std::string other = path_ + "-other.tmp-999999";  // not ours: kept
  f = std::fopen(other.c_str(), "w");
  ASSERT_NE(nullptr, f);
  std::fclose(f);
  EXPECT_EQ(1, Backup());
  EXPECT_NE(0, access(debris.c_str(), F_OK)) << debris << " is still there";
  EXPECT_EQ(0, access(other.c_str(), F_OK));
  ExpectSnapshotIsLive(1);
}

// The record of changed pages is relative to a snapshot in one store. A
// snapshot into a store without it (new, or emptied) reads every page, and
// pins the database once: not for the marks first, and then again, whole.
// Each pin holds the write lock, and writers wait for it.
TEST_P(Tracked, SnapshotIntoAStoreWithoutTheBasePinsOnce) {
  if (GetParam() != "DELETE") GTEST_SKIP() << "only a rollback-mode pin numbers itself (a copy-on-write generation)";
  EXPECT_EQ(1, Backup());
  Change(db_, 500);
  ASSERT_EQ(0, system(("rm -r '" + path_ + "-snapshots'").c_str()));
  const uint32_t generation = TrackingHeaderField<uint32_t>(kCowLastGenerationOffset);
  EXPECT_EQ(1, Backup()) << "a new store";
  EXPECT_EQ(generation + 1, TrackingHeaderField<uint32_t>(kCowLastGenerationOffset)) << "pins";
  ExpectSnapshotIsLive(1);
  EXPECT_EQ("tracked: 0 pages changed since snapshot 1", Tracking());
}

// Compaction, run by snapshot_backup() once its snapshot is published and the store holds enough files,
// rewrites the newest snapshot's manifest and folds its base pack with the
// small ones (this database's pack is small enough to be folded). The next
// snapshot must still build on it, tracked, and store only what changed;
// a snapshot that reads every page (a connection without the VFS) must
// find every unchanged page in the folded pack.
TEST_P(Tracked, StaysIncrementalAcrossACompaction) {
  if (GetParam() != "DELETE") GTEST_SKIP() << "compaction is the same in both modes (and takes some 35 snapshots)";
  const std::string bundles = path_ + "-snapshots/snapshots";
  auto compacted = [&] {
    for (const auto& e : std::filesystem::directory_iterator(bundles)) {
      if (e.path().extension() == ".bundle") return true;
    }
    return false;
  };
  auto column = [&](const char* name, int64_t id) {
    return QueryInt(db_, std::string("SELECT ") + name + " FROM snapshot_list WHERE id = " + std::to_string(id));
  };
  // One row changed, the snapshot taken: it stores at most the pages the
  // VFS saw change.
  auto one_row_snapshot = [&](int round) {
    EXPECT_EQ("", Exec(db_, "UPDATE t SET v = hex(randomblob(150)) WHERE id = " + std::to_string(1 + 97 * round % 6000)));
    const std::string tracking = Tracking();
    EXPECT_TRUE(StartsWith(tracking, "tracked: ")) << tracking;
    const int64_t marked = std::strtoll(tracking.c_str() + 9, nullptr, 10);
    const int64_t id = Backup();
    EXPECT_LE(column("pages_new", id), marked) << "snapshot " << id << " stored unchanged pages again";
    return id;
  };
  EXPECT_EQ(1, Backup());
  int64_t bytes_before = 0, id = 1;
  for (int round = 1; !compacted(); round++) {
    ASSERT_LT(round, 100) << "no compaction after 100 snapshots";
    id = one_row_snapshot(round);
    if (!compacted()) bytes_before = std::max(bytes_before, column("bytes_new", id));
  }
  for (int round = 200; round < 203; round++) {
    id = one_row_snapshot(round);
    EXPECT_LE(column("bytes_new", id), 2 * bytes_before) << "snapshot " << id;
  }
  ExpectSnapshotIsLive(id);
  // A plain sqlite3 writes: the next snapshot reads every page, and finds
  // all but the changed ones in the store, folded pack included.
  PlainShell(path_, "UPDATE t SET v = 'plain' WHERE id = 5;");
  EXPECT_TRUE(StartsWith(Tracking(), "untracked: ")) << Tracking();
  id = Backup();
  EXPECT_LT(column("pages_new", id), 10) << "a snapshot reading every page stored pages the store holds";
  ExpectSnapshotIsLive(id);
}

// In WAL mode the pin holds checkpoints back; the snapshot checkpoints once
// it lets go, so that the next writer's commit does not have to copy all
// that was committed meanwhile (ext/tracked_capture.cc).
TEST_P(Tracked, WalIsCheckpointedWhenTheSnapshotEnds) {
  if (GetParam() != "WAL") GTEST_SKIP() << "WAL mode only";
  ASSERT_EQ("", Exec(db_, "PRAGMA wal_autocheckpoint=0"));
  ASSERT_EQ("", Exec(db_, "INSERT INTO t(v) SELECT hex(randomblob(300)) FROM t"));
  const int64_t pages = QueryInt(db_, "PRAGMA page_count");
  ASSERT_LT(ReadFile(path_).size(), size_t(pages) * 4096) << "the new pages should be in the WAL only";
  EXPECT_EQ(1, Backup());
  const std::string file = ReadFile(path_);
  EXPECT_EQ(size_t(pages) * 4096, file.size());
  const std::string copy = dir_ / "copy.db";
  ASSERT_EQ("1", Query(db_, "SELECT snapshot_restore_to('" + copy + "', 1)"));
  EXPECT_EQ("", ComparePages(file, ReadFile(copy), 4096)) << "the database file lacks committed pages";
}

// A snapshot killed with kill -9 while it reads: the next one reads every
// page, writers are unaffected meanwhile, and nothing is lost.
TEST_P(Tracked, SnapshotKilledWhileReading) {
  ASSERT_EQ("", Exec(db_, "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<40000) "
                          "INSERT INTO t(v) SELECT hex(randomblob(700)) FROM c"));  // ~60 MB
  EXPECT_EQ(1, Backup());
  ASSERT_EQ("", Exec(db_, "UPDATE t SET v = hex(randomblob(700)) WHERE id % 2 = 0"));  // a long next snapshot
  pid_t child = fork();
  if (child == 0) {
    sqlite3* c = OpenDb(path_);
    Query(c, "SELECT snapshot_backup()");
    _exit(0);
  }
  std::string progress;
  for (int i = 0; i < 20000 && progress.find("backup") == std::string::npos; i++) {
    progress = Query(db_, "SELECT snapshot_progress()");
    usleep(100);
  }
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_NE(std::string::npos, progress.find("backup")) << "the backup finished before it could be killed";
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_TRUE(StartsWith(Tracking(), "untracked: no snapshot has used")) << Tracking();
  Change(db_, 7);  // writers go on (in rollback mode, through the abandoned copy-on-write area)
  const int64_t id = Backup();
  ExpectSnapshotIsLive(id);
  Change(db_, 11);
  EXPECT_TRUE(StartsWith(Tracking(), "tracked: ")) << Tracking();
  ExpectSnapshotIsLive(Backup());
}

// The tracking file is no more readable than the database.
TEST_P(Tracked, TrackingFileHasTheDatabasesMode) {
  sqlite3_close(db_);
  ASSERT_EQ(0, chmod(path_.c_str(), 0600));
  unlink((path_ + "-snaptrack").c_str());
  db_ = OpenThroughVfs(path_);
  EXPECT_EQ(1, Backup());
  struct stat st;
  ASSERT_EQ(0, stat((path_ + "-snaptrack").c_str(), &st));
  EXPECT_EQ(0600u, st.st_mode & 0777);
}

// The VFS a connection uses.
std::string VfsOf(sqlite3* db) {
  sqlite3_vfs* vfs = nullptr;
  sqlite3_file_control(db, "main", SQLITE_FCNTL_VFS_POINTER, &vfs);
  return vfs != nullptr ? vfs->zName : "";
}

// snapshot_config('default_vfs', 1): connections opened afterwards, without
// naming a VFS (as Django opens them), are tracked. Process-wide, so each
// case runs in a child process.
// In WAL mode the pin holds the WAL write lock for a moment, whatever the
// size of the WAL: it reads no frame under that lock. (It takes the last
// commit from the wal-index and finds that commit's frames once a read
// transaction holds it and the lock is let go.) Every writer waits for
// whatever the pin reads under the lock, and SQLite's busy handler turns
// such a wait into sleeps of up to 100 ms.
TEST(TrackedPin, ReadsNoWalFrameUnderTheWriteLock) {
  TempDir dir;
  const std::string path = dir / "app.db";
  InChildOverShim([&] {  // the shim must be under the snapshot VFS: a process of its own
    sqlite3* db = OpenThroughVfs(path);
    Exec(db, "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;"
             "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"
             "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<6000) "
             "INSERT INTO t(v) SELECT hex(randomblob(150)) FROM c");
    EXPECT_EQ("1", Query(db, "SELECT snapshot_backup()"));
    for (int i = 0; i < 400; i++) {
      Exec(db, "UPDATE t SET v = hex(randomblob(150)) WHERE id % 397 = " + std::to_string(i % 397));
    }
    struct stat st;
    EXPECT_EQ(0, stat((path + "-wal").c_str(), &st));
    EXPECT_GT(st.st_size, 8 << 20) << "the WAL should hold thousands of frames";
    Shim().wal_bytes_read_under_write_lock = 0;
    EXPECT_EQ("2", Query(db, "SELECT snapshot_backup()"));
    // A handful of pages and frame headers: BEGIN IMMEDIATE reads page 1,
    // the tracker checks the frames after the last one it knows, the read
    // transaction reads the schema.
    EXPECT_LT(Shim().wal_bytes_read_under_write_lock.load(), int64_t(16 * (4096 + snapshot::kWalFrameHeaderSize)));
    EXPECT_EQ(0, Shim().wal_write_locks.load());
    // And the snapshot is the database.
    const std::string copy = dir / "copy.db";
    EXPECT_EQ("2", Query(db, "SELECT snapshot_restore_to('" + copy + "')"));
    Exec(db, "PRAGMA wal_checkpoint(FULL)");
    const int64_t pages = QueryInt(db, "PRAGMA page_count");
    EXPECT_EQ("", ComparePages(ReadFile(path).substr(0, size_t(pages) * 4096), ReadFile(copy), 4096));
    sqlite3_close(db);
  });
}

TEST(DefaultVfs, ConfigMakesLaterConnectionsTracked) {
  TempDir dir;
  const std::string path = dir / "app.db";
  pid_t child = fork();
  if (child == 0) {
    sqlite3* loader = OpenDb(":memory:");
    int failures = 0;
    failures += Query(loader, "SELECT snapshot_config('default_vfs')") != "0";
    failures += Query(loader, "SELECT snapshot_config('default_vfs', 0)").rfind("ERROR", 0) != 0;
    failures += Query(loader, "SELECT snapshot_config('default_vfs', 'yes')").rfind("ERROR", 0) != 0;
    failures += Query(loader, "SELECT snapshot_config('default_vfs', 1)") != "1";
    sqlite3* db = nullptr;
    sqlite3_open(path.c_str(), &db);  // as any library would
    failures += VfsOf(db) != "snapshot";
    failures += !Exec(db, "CREATE TABLE t(v); INSERT INTO t VALUES (randomblob(5000))").empty();
    failures += Query(db, "SELECT snapshot_backup()") != "1";
    failures += !Exec(db, "INSERT INTO t VALUES (randomblob(5000))").empty();
    failures += Query(db, "SELECT snapshot_tracking()").rfind("tracked: ", 0) != 0;
    _exit(failures);
  }
  int status = 0;
  ASSERT_EQ(child, waitpid(child, &status, 0));
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(0, WEXITSTATUS(status));
}

TEST(DefaultVfs, EnvironmentVariableAtLoad) {
  TempDir dir;
  pid_t child = fork();
  if (child == 0) {
    setenv("SNAPSHOT_DEFAULT_VFS", "1", 1);
    sqlite3_close(OpenDb(":memory:"));
    sqlite3* db = nullptr;
    sqlite3_open((dir / "app.db").c_str(), &db);
    _exit(VfsOf(db) == "snapshot" ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(child, waitpid(child, &status, 0));
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(0, WEXITSTATUS(status)) << "SNAPSHOT_DEFAULT_VFS=1 did not make the snapshot VFS the default";
}

INSTANTIATE_TEST_SUITE_P(Modes, Tracked, ::testing::Values("DELETE", "WAL"),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

}  // namespace
}  // namespace snapshot_test
