// The snapshot VFS's own I/O failing: every read it makes to check what
// other writers did (the change counter, WAL headers and frame headers) and
// to start a new tracking period. A failed read must never pass for "the
// check passed" or "the end of the WAL": the change record is then
// distrusted, and the next snapshot, restored, still holds every commit.
//
// The faults come from tests/shim_vfs.h layered *under* the snapshot VFS,
// which only a process of its own can do (the VFS takes the default VFS of
// the moment it is registered): each case runs in a forked child.
//
// Also here: the VFS passes the system-call methods of a version-3 VFS
// through (fault injection below SQLite), and deleting a database through
// the VFS deletes its side files.
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <memory>
#include <vector>

#include "tests/shim_vfs.h"
#include "tests/test_util.h"
#include "store/coding.h"
#include "vfs/snapshot_vfs.h"
#include "vfs/sqlite_format.h"
#include "vfs/tracking_format.h"

namespace snapshot_test {
namespace {

constexpr char kIoErrorReason[] = "untracked: the change record could not be checked (an I/O error)";

// A connection that does not use the snapshot VFS (nor load the extension).
sqlite3* OpenPlain(const std::string& path) {
  sqlite3* db = nullptr;
  EXPECT_EQ(SQLITE_OK, sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, "unix"));
  sqlite3_busy_timeout(db, 5000);
  return db;
}

// Fails the n-th read (from 1) that `matches`, and only that one; returns
// the count of matching reads so far.
std::shared_ptr<const int> FailNthRead(int n, std::function<bool(int flags, int amount, sqlite3_int64 offset)> matches) {
  auto seen = std::make_shared<int>(0);
  Shim().read_fault = [=](int flags, int amount, sqlite3_int64 offset) {
    return matches(flags, amount, offset) && ++*seen == n ? SQLITE_IOERR_READ : SQLITE_OK;
  };
  return seen;
}
bool WalFrameHeaderRead(int flags, int amount, sqlite3_int64) {
  return (flags & SQLITE_OPEN_WAL) && amount == int(snapshot::kWalFrameHeaderSize);
}

// 400 rows of 300 bytes: about 30 leaf pages. Row 5 and row 390 are on
// different pages, so marks for one are not marks for the other.
sqlite3* MakeDatabase(const std::string& path, const std::string& mode) {
  sqlite3* db = OpenThroughVfs(path);
  EXPECT_EQ("", Exec(db, "PRAGMA journal_mode=" + mode + "; PRAGMA wal_autocheckpoint=0;"
                         "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"
                         "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<400) "
                         "INSERT INTO t(v) SELECT hex(randomblob(150)) FROM c"));
  EXPECT_EQ("1", Query(db, "SELECT snapshot_backup()"));
  return db;
}

// A commit through the snapshot VFS: row 390 becomes 'tracked'.
void TrackedCommit(sqlite3* db) { EXPECT_EQ("", Exec(db, "UPDATE t SET v = 'tracked' WHERE id = 390")); }

// A commit the snapshot VFS never sees: row 5 becomes 'plain'.
void PlainCommit(const std::string& path) {
  sqlite3* plain = OpenPlain(path);
  EXPECT_EQ("", Exec(plain, "PRAGMA wal_autocheckpoint=0; UPDATE t SET v = 'plain' WHERE id = 5"));
  sqlite3_close(plain);
}

// The next snapshot, restored into a new file, holds the plain commit and
// every other one (`rows`: the v values that must be there).
void ExpectNextSnapshotHolds(sqlite3* db, const std::string& copy, const std::vector<std::string>& rows) {
  const std::string id = Query(db, "SELECT snapshot_backup()");
  ASSERT_EQ(id, Query(db, "SELECT snapshot_restore_to('" + copy + "', " + id + ")"));
  sqlite3* c = OpenPlain(copy);
  for (const std::string& v : rows) {
    EXPECT_EQ("1", Query(c, "SELECT count(*) FROM t WHERE v = '" + v + "'")) << "snapshot " << id << " lost " << v;
  }
  EXPECT_EQ("ok", Query(c, "PRAGMA integrity_check"));
  sqlite3_close(c);
}

// The next snapshot, restored into a new file, has the rows of the database,
// which is intact. Returns the snapshot's id.
std::string ExpectNextSnapshotIsTheDatabase(sqlite3* db, const std::string& copy) {
  EXPECT_EQ("ok", Query(db, "PRAGMA integrity_check"));
  const std::string id = Query(db, "SELECT snapshot_backup()");
  EXPECT_EQ(id, Query(db, "SELECT snapshot_restore_to('" + copy + "', " + id + ")"));
  const std::string all = "SELECT group_concat(id || ':' || v, ',') FROM t";
  sqlite3* c = OpenPlain(copy);
  EXPECT_EQ(Query(db, all), Query(c, all)) << "snapshot " << id << " is not the database";
  sqlite3_close(c);
  return id;
}

// A write the VFS cannot check because its own read failed fails as the
// write itself would have (SQLite's fault-injection tests count on it): the
// statement fails with an I/O error and SQLite rolls it back, so row `id`
// keeps the value `before` it had.
void ExpectCommitFailsAndRollsBack(sqlite3* db, const std::string& update, int id, const std::string& before) {
  EXPECT_EQ("disk I/O error", Exec(db, update));
  EXPECT_EQ(SQLITE_IOERR, sqlite3_errcode(db) & 0xFF);
  EXPECT_EQ("ok", Query(db, "PRAGMA integrity_check"));
  EXPECT_EQ(before, Query(db, "SELECT v FROM t WHERE id = " + std::to_string(id)));
}

// The VFS's own 4-byte read of the change counter (SQLite reads 16 bytes
// there). SQLite's pager has always read the counter under the lock it
// commits with, and the VFS then needs no read of its own; it reads when a
// writer writes page 1 without having read it under its lock.
bool ChangeCounterRead(int flags, int amount, sqlite3_int64 offset) {
  return (flags & SQLITE_OPEN_MAIN_DB) && amount == 4 && offset == sqlite3_int64(snapshot::kDbHeaderChangeCounterOffset);
}

// Each case has a directory of its own and a database at `path` in it;
// most run in a child process over the shim (OnDatabaseInChild).
class VfsIoError : public ::testing::Test {
 protected:
  // Runs body(db) in a child process over the shim, db a connection through
  // the snapshot VFS to MakeDatabase(path, mode); closes the connection the
  // body leaves in db (it may close it and open another).
  template <typename Body>
  void OnDatabaseInChild(const std::string& mode, Body body) {
    InChildOverShim([&] {
      sqlite3* db = MakeDatabase(path, mode);
      body(db);
      sqlite3_close(db);
    });
  }

  TempDir dir;
  const std::string path = dir / "app.db";
};

// Rollback mode: a tracked commit checks the change counter SQLite read
// under its lock, and makes no read of its own that an I/O fault injected
// by call count (SQLite's ioerr tests) could land on: the first transaction
// of a connection (page 1 read whole) and later ones (16 bytes at offset 24).
TEST_F(VfsIoError, ATrackedCommitMakesNoReadOfItsOwn) {
  OnDatabaseInChild("DELETE", [&](sqlite3*& db) {
    sqlite3_close(db);
    db = OpenThroughVfs(path);  // a new connection: its first transaction reads page 1 whole
    const auto reads = FailNthRead(INT_MAX, ChangeCounterRead);  // counts, never fails
    EXPECT_EQ("", Exec(db, "UPDATE t SET v = 'first' WHERE id = 390"));
    EXPECT_EQ("", Exec(db, "UPDATE t SET v = 'second' WHERE id = 200"));
    EXPECT_EQ(0, *reads);
    Shim().Reset();
    PlainCommit(path);  // still caught, from the counter SQLite read
    EXPECT_EQ("", Exec(db, "UPDATE t SET v = 'third' WHERE id = 100"));
    EXPECT_EQ("untracked: the database was changed by a connection that does not use the snapshot VFS",
              Query(db, "SELECT snapshot_tracking()"));
    ExpectNextSnapshotIsTheDatabase(db, dir / "copy.db");
  });
}

// Rollback mode: a commit by a plain connection, then a tracked write of
// page 1 with the next change counter (a writer that did not read it under
// its lock: straight through the VFS's file methods), whose read of the
// counter fails. Recording the new counter as if the check had passed
// forgot the plain commit: the next snapshot, tracked, held the old row 5.
// Now the write fails as the read did and changes nothing, and the record
// is distrusted.
TEST_F(VfsIoError, ChangeCounterReadFailsAtATrackedCommit) {
  OnDatabaseInChild("DELETE", [&](sqlite3*& db) {
    PlainCommit(path);
    const std::string image = ReadFile(path);
    const size_t page_size = size_t(std::stoi(Query(db, "PRAGMA page_size")));
    std::string page1 = image.substr(0, page_size);
    uint8_t* header = reinterpret_cast<uint8_t*>(&page1[0]);
    const uint32_t next = snapshot::LoadU32BE(header + snapshot::kDbHeaderChangeCounterOffset) + 1;
    snapshot::StoreU32BE(header + snapshot::kDbHeaderChangeCounterOffset, next);
    snapshot::StoreU32BE(header + snapshot::kDbHeaderVersionValidForOffset, next);
    sqlite3* writer = OpenThroughVfs(path);
    EXPECT_EQ("ok", Query(writer, "PRAGMA quick_check"));  // opens the file
    sqlite3_file* f = nullptr;
    ASSERT_EQ(SQLITE_OK, sqlite3_file_control(writer, "main", SQLITE_FCNTL_FILE_POINTER, &f));
    for (int lock : {SQLITE_LOCK_SHARED, SQLITE_LOCK_RESERVED, SQLITE_LOCK_EXCLUSIVE}) {
      ASSERT_EQ(SQLITE_OK, f->pMethods->xLock(f, lock));
    }
    const auto reads = FailNthRead(1, ChangeCounterRead);
    EXPECT_EQ(SQLITE_IOERR_WRITE, f->pMethods->xWrite(f, page1.data(), int(page_size), 0));
    EXPECT_EQ(1, *reads) << "the change counter was not read";
    Shim().Reset();
    EXPECT_EQ(SQLITE_OK, f->pMethods->xUnlock(f, SQLITE_LOCK_NONE));
    sqlite3_close(writer);
    EXPECT_EQ(image, ReadFile(path)) << "the write went on";
    EXPECT_EQ(kIoErrorReason, Query(db, "SELECT snapshot_tracking()"));
    EXPECT_EQ("", Exec(db, "UPDATE t SET v = 'again' WHERE id = 200"));
    EXPECT_EQ(kIoErrorReason, Query(db, "SELECT snapshot_tracking()"));
    ExpectNextSnapshotHolds(db, dir / "copy.db", {"plain", "again"});
    ExpectNextSnapshotIsTheDatabase(db, dir / "copy2.db");
  });
}

// WAL mode, the snapshot's check of the frames after the last tracked
// commit: the plain commit's frames follow it. A frame header that cannot
// be read is not the end of the WAL.
TEST_F(VfsIoError, FrameHeaderReadFailsWhenASnapshotChecksTheWal) {
  OnDatabaseInChild("WAL", [&](sqlite3*& db) {
    TrackedCommit(db);
    PlainCommit(path);
    // The 1st frame header read is the last tracked commit's, the 2nd the
    // plain commit's first frame.
    FailNthRead(2, WalFrameHeaderRead);
    EXPECT_EQ(kIoErrorReason, Query(db, "SELECT snapshot_tracking()"));
    FailNthRead(2, WalFrameHeaderRead);
    ExpectNextSnapshotHolds(db, dir / "copy.db", {"plain", "tracked"});
    Shim().Reset();
  });
}

// WAL mode, a tracked writer restarting the WAL checks the generation it
// replaces: its frames after the last tracked commit are the plain commit's.
TEST_F(VfsIoError, FrameHeaderReadFailsWhenATrackedWriterRestartsTheWal) {
  OnDatabaseInChild("WAL", [&](sqlite3*& db) {
    TrackedCommit(db);
    PlainCommit(path);
    sqlite3* plain = OpenPlain(path);
    EXPECT_EQ("0", Query(plain, "PRAGMA wal_checkpoint(FULL)"));  // so the next writer restarts the WAL
    sqlite3_close(plain);
    const std::string before = Query(db, "SELECT v FROM t WHERE id = 200");
    FailNthRead(2, WalFrameHeaderRead);
    ExpectCommitFailsAndRollsBack(db, "UPDATE t SET v = 'again' WHERE id = 200", 200, before);
    EXPECT_EQ("", Exec(db, "UPDATE t SET v = 'again' WHERE id = 200"));
    Shim().Reset();
    EXPECT_EQ(kIoErrorReason, Query(db, "SELECT snapshot_tracking()"));
    ExpectNextSnapshotHolds(db, dir / "copy.db", {"plain", "tracked", "again"});
    ExpectNextSnapshotIsTheDatabase(db, dir / "copy2.db");
  });
}

// WAL mode, a write transaction's first frame checks the frame before it.
// With the wal-index in shared memory that needs no read; in exclusive
// locking mode (the wal-index in heap memory) it reads that frame's header.
TEST_F(VfsIoError, FrameBeforeATransactionCannotBeRead) {
  const pid_t writer = fork();
  if (writer == 0) {  // leaves a WAL of tracked frames behind: killed, no checkpoint
    sqlite3* db = MakeDatabase(path, "WAL");
    Exec(db, "UPDATE t SET v = 'tracked' WHERE id = 390");
    kill(getpid(), SIGKILL);
  }
  int status = 0;
  ASSERT_EQ(writer, waitpid(writer, &status, 0));
  InChildOverShim([&] {
    sqlite3* db = OpenThroughVfs(path);
    EXPECT_EQ("exclusive", Query(db, "PRAGMA locking_mode=EXCLUSIVE"));
    const std::string before = Query(db, "SELECT v FROM t WHERE id = 200");
    const auto reads = FailNthRead(1, WalFrameHeaderRead);
    ExpectCommitFailsAndRollsBack(db, "UPDATE t SET v = 'again' WHERE id = 200", 200, before);
    EXPECT_EQ(1, *reads) << "the frame before was not read";
    EXPECT_EQ("", Exec(db, "UPDATE t SET v = 'again' WHERE id = 200"));
    Shim().Reset();
    sqlite3_close(db);
    db = OpenThroughVfs(path);
    EXPECT_EQ(kIoErrorReason, Query(db, "SELECT snapshot_tracking()"));
    ExpectNextSnapshotHolds(db, dir / "copy.db", {"tracked", "again"});
    ExpectNextSnapshotIsTheDatabase(db, dir / "copy2.db");
    sqlite3_close(db);
  });
}

// WAL mode, the WAL ends: truncated by a TRUNCATE checkpoint (read through
// the connection's WAL file), or deleted by the last connection's close
// (read through a file the VFS opens read-only for the check).
class VfsIoErrorWalEnds : public VfsIoError, public ::testing::WithParamInterface<std::string> {};

TEST_P(VfsIoErrorWalEnds, FrameHeaderReadFailsAsTheWalEnds) {
  const bool deleted = GetParam() != "Truncated";
  OnDatabaseInChild("WAL", [&](sqlite3*& db) {
    TrackedCommit(db);
    PlainCommit(path);
    FailNthRead(2, [deleted](int flags, int amount, sqlite3_int64 offset) {
      return WalFrameHeaderRead(flags, amount, offset) && ((flags & SQLITE_OPEN_READONLY) != 0) == deleted;
    });
    if (GetParam() == "DeletedUnopenable") {
      // The WAL is there but cannot be opened: not the same as gone.
      Shim().read_fault = nullptr;
      Shim().open_fault = [](int flags) {
        return (flags & SQLITE_OPEN_WAL) && (flags & SQLITE_OPEN_READONLY) ? SQLITE_CANTOPEN : SQLITE_OK;
      };
    }
    if (deleted) {
      sqlite3_close(db);
      struct stat st;
      EXPECT_NE(0, stat((path + "-wal").c_str(), &st)) << "the last connection's close deletes the WAL";
      db = OpenThroughVfs(path);
    } else {
      EXPECT_EQ("0", Query(db, "PRAGMA wal_checkpoint(TRUNCATE)"));
    }
    Shim().Reset();
    // (Here the racy-mtime rule distrusts the record anyway: the ending
    // checkpoint wrote the database file moments before. The reason says
    // which check saw the failure.)
    EXPECT_EQ(kIoErrorReason, Query(db, "SELECT snapshot_tracking()"));
    ExpectNextSnapshotHolds(db, dir / "copy.db", {"plain", "tracked"});
  });
}

INSTANTIATE_TEST_SUITE_P(VfsIoError, VfsIoErrorWalEnds, ::testing::Values("Truncated", "Deleted", "DeletedUnopenable"),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

// The snapshot side's read of the database header, to compare the change
// counter: unread, it vouches for nothing.
TEST_F(VfsIoError, DatabaseHeaderReadFailsWhenASnapshotChecks) {
  OnDatabaseInChild("DELETE", [&](sqlite3*& db) {
    TrackedCommit(db);
    // The 1st read of the header works out the layout; the 2nd is the check's.
    FailNthRead(2, [](int flags, int amount, sqlite3_int64 offset) {
      return (flags & SQLITE_OPEN_MAIN_DB) && amount == int(snapshot::kDbHeaderSize) && offset == 0;
    });
    EXPECT_EQ(kIoErrorReason, Query(db, "SELECT snapshot_tracking()"));
    Shim().Reset();
    ExpectNextSnapshotHolds(db, dir / "copy.db", {"tracked"});
  });
}

// Rollback mode: after reading without a lock, the snapshot reads the change
// counter to learn whether a writer bypassed the VFS meanwhile. Unread, that
// is not "no": what was read is not kept.
TEST_F(VfsIoError, ChangeCounterReadFailsAfterACopyOnWriteRead) {
  OnDatabaseInChild("DELETE", [&](sqlite3*& db) {
    TrackedCommit(db);
    const auto reads = FailNthRead(1, ChangeCounterRead);
    // (It reads again, every page.)
    ExpectNextSnapshotHolds(db, dir / "copy.db", {"tracked"});
    EXPECT_GE(*reads, 1) << "the check was not made";
    Shim().Reset();
    EXPECT_EQ("2", Query(db, "SELECT count(*) FROM snapshot_list"));
  });
}

// A snapshot starting a new tracking period reads the WAL header once more
// (after its check): if that read fails, the snapshot fails, and the record
// must not be left trusted with half its evidence.
TEST_F(VfsIoError, WalHeaderReadFailsWhenASnapshotResetsTheRecord) {
  OnDatabaseInChild("WAL", [&](sqlite3*& db) {
    TrackedCommit(db);
    FailNthRead(2, [](int flags, int amount, sqlite3_int64 offset) {
      return (flags & SQLITE_OPEN_WAL) && amount == 32 && offset == 0;
    });
    EXPECT_EQ(0u, Query(db, "SELECT snapshot_backup()").rfind("ERROR", 0));
    Shim().Reset();
    EXPECT_EQ(kIoErrorReason, Query(db, "SELECT snapshot_tracking()"));
    PlainCommit(path);
    ExpectNextSnapshotHolds(db, dir / "copy.db", {"plain", "tracked"});
  });
}

// WAL mode, a snapshot finding its pinned commit's frames once the write
// lock is let go: it reads the WAL header again to learn whether the WAL
// was restarted meanwhile. A header that cannot be read is not a restart:
// taken for one, the snapshot was the database file without the WAL.
TEST_F(VfsIoError, WalHeaderReadFailsWhenASnapshotMapsItsFrames) {
  OnDatabaseInChild("WAL", [&](sqlite3*& db) {
    TrackedCommit(db);
    // The 1st and 2nd reads of the header check the WAL and reset the
    // record under the write lock; the 3rd is the mapping's.
    FailNthRead(3, [](int flags, int amount, sqlite3_int64 offset) {
      return (flags & SQLITE_OPEN_WAL) && amount == 32 && offset == 0;
    });
    const std::string id = Query(db, "SELECT snapshot_backup()");
    Shim().Reset();
    EXPECT_EQ(0u, id.rfind("ERROR", 0)) << "the snapshot should have failed";
    if (id.rfind("ERROR", 0) != 0) {
      const std::string copy = dir / "failed.db";
      ASSERT_EQ(id, Query(db, "SELECT snapshot_restore_to('" + copy + "', " + id + ")"));
      sqlite3* c = OpenPlain(copy);
      EXPECT_EQ("1", Query(c, "SELECT count(*) FROM t WHERE v = 'tracked'")) << "snapshot " << id << " lost a commit";
      sqlite3_close(c);
    }
    ExpectNextSnapshotHolds(db, dir / "copy.db", {"tracked"});
  });
}

// A connection whose tracking file could not be opened (here: a directory
// stands in its way) writes untracked, like a plain sqlite3. In WAL mode its
// WAL must not borrow the tracker a connection of the same process opened
// later: the tracker never hears of that connection's write lock, so it
// did not check the frames before its second transaction, and a plain
// commit between its two transactions was missing from the next snapshot.
TEST(VfsUntracked, ConnectionWithoutATrackingFileIsNoticed) {
  TempDir dir;
  const std::string path = dir / "app.db";
  sqlite3* plain = nullptr;
  ASSERT_EQ(SQLITE_OK, sqlite3_open_v2(path.c_str(), &plain, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, "unix"));
  ASSERT_EQ("", Exec(plain, "PRAGMA journal_mode=WAL; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"
                            "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<400) "
                            "INSERT INTO t(v) SELECT hex(randomblob(150)) FROM c"));
  sqlite3_close(plain);
  ASSERT_EQ(0, mkdir((path + "-snaptrack").c_str(), 0700));
  sqlite3* untracked = OpenThroughVfs(path);  // no tracking file; its WAL is opened at its first statement
  ASSERT_EQ(0, rmdir((path + "-snaptrack").c_str()));
  sqlite3* db = OpenThroughVfs(path);
  ASSERT_EQ("", Exec(db, "PRAGMA wal_autocheckpoint=0"));
  ASSERT_EQ("1", Query(db, "SELECT snapshot_backup()"));
  ASSERT_EQ("", Exec(untracked, "PRAGMA wal_autocheckpoint=0; UPDATE t SET v = 'first' WHERE id = 390"));
  PlainCommit(path);
  ASSERT_EQ("", Exec(untracked, "UPDATE t SET v = 'second' WHERE id = 391"));
  // Before this connection has opened the WAL, nothing can be checked...
  EXPECT_EQ(kIoErrorReason, Query(db, "SELECT snapshot_tracking()"));
  // ...after, the WAL holds frames no tracked writer wrote.
  ASSERT_EQ("401", Query(db, "SELECT count(*) + 1 FROM t"));
  EXPECT_EQ("untracked: the WAL was written or ended by a connection that does not use the snapshot VFS",
            Query(db, "SELECT snapshot_tracking()"));
  ExpectNextSnapshotHolds(db, dir / "copy.db", {"first", "plain", "second"});
  sqlite3_close(untracked);
  sqlite3_close(db);
}

// A page that cannot be marked (the tracking file cannot grow: here the
// file size limit stops it) distrusts the record.
TEST_F(VfsIoError, TrackingFileCannotGrow) {
  InChildProcess([&] {  // the file size limit is the process's
    sqlite3_close(MakeDatabase(path, "DELETE"));
    // Only the header and ring: the first mark must grow the file.
    constexpr off_t kTrackBitmapOffset = off_t(snapshot::kTrackBitmapOffset);
    EXPECT_EQ(0, truncate((path + "-snaptrack").c_str(), kTrackBitmapOffset));
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old_limit, limit;
    EXPECT_EQ(0, getrlimit(RLIMIT_FSIZE, &old_limit));
    limit = old_limit;
    limit.rlim_cur = kTrackBitmapOffset + (512 << 10);
    EXPECT_EQ(0, setrlimit(RLIMIT_FSIZE, &limit));
    sqlite3* db = OpenThroughVfs(path);
    TrackedCommit(db);
    EXPECT_EQ(0, setrlimit(RLIMIT_FSIZE, &old_limit));
    EXPECT_EQ("untracked: a changed page could not be recorded", Query(db, "SELECT snapshot_tracking()"));
    ExpectNextSnapshotHolds(db, dir / "copy.db", {"tracked"});
    sqlite3_close(db);
  });
}

// Paced write-back (vfs/paced_sync.h) syncs the database file on the
// connection's own descriptor. A paced sync that fails must fail the
// connection's next sync: Linux reports a write-back error to one fsync, so
// the commit's own sync would succeed over pages that never reached the disk.
TEST_F(VfsIoError, FailedPacedSyncFailsTheCommit) {
  InChildOverShim([&] {
    sqlite3* db = OpenThroughVfs(path);
    EXPECT_EQ("", Exec(db, "PRAGMA journal_mode=DELETE; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"
                           "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<2000) "
                           "INSERT INTO t(v) SELECT hex(randomblob(500)) FROM c"));
    int gates = 0;
    snapshot::SnapshotWritebackGate gate = {[](void* n) { ++*static_cast<int*>(n); }, &gates};
    EXPECT_EQ(SQLITE_OK, sqlite3_file_control(db, "main", snapshot::kPaceWritebackFcntl, &gate));
    Shim().fail_db_syncs = 1;  // the first paced sync, after 256 KiB of the commit's pages
    EXPECT_NE("", Exec(db, "UPDATE t SET v = lower(v)")) << "the commit reported success over a failed sync";
    EXPECT_EQ(0, Shim().fail_db_syncs);
    EXPECT_GE(gates, 1);
    Shim().Reset();
    EXPECT_EQ(SQLITE_OK, sqlite3_file_control(db, "main", snapshot::kPaceWritebackFcntl, nullptr));
    EXPECT_EQ("2000", Query(db, "SELECT count(*) FROM t WHERE v GLOB '*[A-F]*'")) << "the failed commit is not undone";
    EXPECT_EQ("ok", Query(db, "PRAGMA integrity_check"));
    sqlite3_close(db);
  });
}

// Every read, SQLite's and the VFS's, failing once in turn while a plain
// connection and then a tracked one commit: whatever fails, the database is
// intact, the tracked commit happened whole or not at all (and not at all
// when the read that failed was the VFS's check of the change counter: the
// fault is not absorbed), and the next snapshot, restored, is the database.
class VfsIoErrorSweep : public VfsIoError, public ::testing::WithParamInterface<std::string> {};

TEST_P(VfsIoErrorSweep, EachReadFailingOnceLosesNoCommit) {
  InChildOverShim([&] {
    for (int k = 1;; k++) {
      const std::string db_path = dir / ("app" + std::to_string(k) + ".db");
      sqlite3* db = MakeDatabase(db_path, GetParam());
      PlainCommit(db_path);
      const std::string before390 = Query(db, "SELECT v FROM t WHERE id = 390");
      const std::string before200 = Query(db, "SELECT v FROM t WHERE id = 200");
      bool counter_read_failed = false;
      auto reads = std::make_shared<int>(0);
      Shim().read_fault = [&, reads](int flags, int amount, sqlite3_int64 offset) {
        if (++*reads != k) return SQLITE_OK;
        counter_read_failed = ChangeCounterRead(flags, amount, offset);
        return SQLITE_IOERR_READ;
      };
      // Either may fail, with an I/O error, and is then rolled back.
      const std::string error390 = Exec(db, "UPDATE t SET v = 'tracked' WHERE id = 390");
      sqlite3* plain = OpenPlain(db_path);
      Exec(plain, "UPDATE t SET v = 'plain again' WHERE id = 100");
      sqlite3_close(plain);
      const std::string error200 = Exec(db, "UPDATE t SET v = 'again' WHERE id = 200");
      Shim().Reset();
      SCOPED_TRACE("with read " + std::to_string(k) + " failed");
      for (const std::string& e : {error390, error200}) EXPECT_TRUE(e.empty() || e == "disk I/O error") << e;
      EXPECT_EQ(error390.empty() ? "tracked" : before390, Query(db, "SELECT v FROM t WHERE id = 390"));
      EXPECT_EQ(error200.empty() ? "again" : before200, Query(db, "SELECT v FROM t WHERE id = 200"));
      EXPECT_TRUE(!counter_read_failed || !error390.empty() || !error200.empty()) << "a commit went on";
      ExpectNextSnapshotIsTheDatabase(db, db_path + "-copy");
      sqlite3_close(db);
      if (*reads < k || ::testing::Test::HasFailure()) break;  // no read left to fail
    }
  });
}

INSTANTIATE_TEST_SUITE_P(VfsIoError, VfsIoErrorSweep, ::testing::Values("DELETE", "WAL"),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

// Through the snapshot VFS, a replaced system call reaches the VFS below
// (SQLite's own fault-injection tests replace unix's "open").
int FailingOpen(const char*, int, int) {
  errno = EACCES;
  return -1;
}

TEST(VfsSystemCalls, PassThroughToTheVfsBelow) {
  sqlite3_close(OpenDb(":memory:"));  // registers the snapshot VFS
  sqlite3_vfs* snap = sqlite3_vfs_find("snapshot");
  sqlite3_vfs* below = sqlite3_vfs_find("unix");
  ASSERT_NE(nullptr, snap);
  ASSERT_EQ(3, snap->iVersion);
  ASSERT_NE(nullptr, snap->xSetSystemCall);
  EXPECT_STREQ(below->xNextSystemCall(below, nullptr), snap->xNextSystemCall(snap, nullptr));
  sqlite3_syscall_ptr real_open = snap->xGetSystemCall(snap, "open");
  EXPECT_EQ(below->xGetSystemCall(below, "open"), real_open);

  TempDir dir;
  const std::string uri = "file:" + dir / "app.db" + "?vfs=snapshot";
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI;
  ASSERT_EQ(SQLITE_OK, snap->xSetSystemCall(snap, "open", reinterpret_cast<sqlite3_syscall_ptr>(FailingOpen)));
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(uri.c_str(), &db, flags, nullptr);
  sqlite3_close(db);
  ASSERT_EQ(SQLITE_OK, snap->xSetSystemCall(snap, "open", nullptr));  // the default again
  EXPECT_EQ(SQLITE_CANTOPEN, rc);
  EXPECT_EQ(real_open, below->xGetSystemCall(below, "open"));
  db = nullptr;
  EXPECT_EQ(SQLITE_OK, sqlite3_open_v2(uri.c_str(), &db, flags, nullptr));
  EXPECT_EQ("", Exec(db, "CREATE TABLE t(v)"));
  sqlite3_close(db);
}

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

// Deleting a database through the VFS (xDelete, as SQLite's tests and
// tools do) deletes its tracking and copy-on-write files too; deleting
// SQLite's own side files leaves them.
TEST(VfsDelete, DeletingTheDatabaseDeletesItsSideFiles) {
  TempDir dir;
  const std::string path = dir / "app.db";
  sqlite3* db = OpenThroughVfs(path);
  ASSERT_EQ("", Exec(db, "PRAGMA journal_mode=DELETE; CREATE TABLE t(v); INSERT INTO t VALUES (randomblob(9000))"));
  ASSERT_EQ("1", Query(db, "SELECT snapshot_backup()"));
  sqlite3_vfs* snap = sqlite3_vfs_find("snapshot");
  ASSERT_TRUE(Exists(path + "-snaptrack"));
  std::ofstream(path + "-snapcow") << "x";  // as a snapshot killed while reading leaves it
  // A journal's deletion (every rollback-mode commit) leaves them alone.
  std::ofstream(path + "-journal") << "x";
  EXPECT_EQ(SQLITE_OK, snap->xDelete(snap, (path + "-journal").c_str(), 0));
  EXPECT_TRUE(Exists(path + "-snaptrack"));
  sqlite3_close(db);
  EXPECT_EQ(SQLITE_OK, snap->xDelete(snap, path.c_str(), 0));
  EXPECT_FALSE(Exists(path));
  EXPECT_FALSE(Exists(path + "-snaptrack"));
  EXPECT_FALSE(Exists(path + "-snapcow"));
  // A new database at the path starts untracked, and snapshots work.
  db = OpenThroughVfs(path);
  ASSERT_EQ("", Exec(db, "CREATE TABLE u(v); INSERT INTO u VALUES (1)"));
  EXPECT_EQ(0u, Query(db, "SELECT snapshot_tracking()").rfind("untracked: ", 0));
  EXPECT_EQ("2", Query(db, "SELECT snapshot_backup()"));
  EXPECT_EQ(0u, Query(db, "SELECT snapshot_tracking()").rfind("tracked: ", 0));
  sqlite3_close(db);
}

// While a connection of this process still has the database open, its
// snapshots lock the tracking file by path: it stays.
TEST(VfsDelete, TrackingFileInUseStays) {
  TempDir dir;
  const std::string path = dir / "app.db";
  sqlite3* db = OpenThroughVfs(path);
  ASSERT_EQ("", Exec(db, "CREATE TABLE t(v)"));
  sqlite3_vfs* snap = sqlite3_vfs_find("snapshot");
  EXPECT_EQ(SQLITE_OK, snap->xDelete(snap, path.c_str(), 0));
  EXPECT_TRUE(Exists(path + "-snaptrack"));
  sqlite3_close(db);
}

}  // namespace
}  // namespace snapshot_test
