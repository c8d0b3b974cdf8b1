// snapshot_diff and snapshot_integrity_check through SQL, on real databases.
//
// Every snapshot_diff result is checked against a brute-force comparison of
// the two images, made without the extension's b-tree code: each snapshot
// is written out with snapshot_restore_to() (the live database is copied
// with the backup API), the files are compared page by page, SQLite's own
// dbstat table says which pages belong to which table or index, and SQL
// (EXCEPT / INTERSECT on rowid and every column) counts the rows added,
// deleted and changed.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/shim_vfs.h"
#include "tests/test_util.h"

namespace snapshot_test {
namespace {

struct Expected {
  std::string status;
  int64_t pages = 0;
  int64_t added = -1, deleted = -1, changed = -1;  // -1: NULL (no rowid rows)
  bool operator==(const Expected& o) const {
    return status == o.status && pages == o.pages && added == o.added && deleted == o.deleted && changed == o.changed;
  }
};

std::ostream& operator<<(std::ostream& os, const Expected& e) {
  return os << "{" << e.status << " pages=" << e.pages << " rows +" << e.added << " -" << e.deleted << " ~"
            << e.changed << "}";
}

using DiffResult = std::map<std::string, Expected>;  // "type name" -> counts

std::vector<std::vector<std::string>> Rows(sqlite3* db, const std::string& sql) {
  std::vector<std::vector<std::string>> out;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db);
    return out;
  }
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    std::vector<std::string> row;
    for (int i = 0; i < sqlite3_column_count(st); i++) {
      const unsigned char* t = sqlite3_column_text(st, i);
      row.push_back(t ? reinterpret_cast<const char*>(t) : "NULL");
    }
    out.push_back(row);
  }
  if (rc != SQLITE_DONE) ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db);
  sqlite3_finalize(st);
  return out;
}

DiffResult SnapshotDiff(sqlite3* db, const std::string& args) {
  DiffResult out;
  for (const auto& r : Rows(db, "SELECT type, name, status, pages_changed, rows_added, rows_deleted, rows_changed "
                                "FROM snapshot_diff(" + args + ")")) {
    auto num = [](const std::string& s) { return s == "NULL" ? int64_t(-1) : std::stoll(s); };
    out[r[0] + " " + r[1]] = Expected{r[2], num(r[3]), num(r[4]), num(r[5]), num(r[6])};
  }
  return out;
}

// Copies the live database `db` to `path` with the backup API.
void CopyLive(sqlite3* db, const std::string& path) {
  sqlite3* out = nullptr;
  ASSERT_EQ(SQLITE_OK, sqlite3_open(path.c_str(), &out));
  sqlite3_backup* b = sqlite3_backup_init(out, "main", db, "main");
  ASSERT_NE(nullptr, b);
  EXPECT_EQ(SQLITE_DONE, sqlite3_backup_step(b, -1));
  sqlite3_backup_finish(b);
  EXPECT_EQ("", Exec(out, "PRAGMA journal_mode=DELETE"));
  sqlite3_close(out);
}

// The brute-force comparison of database files `a` and `b`.
DiffResult BruteForce(const std::string& a, const std::string& b) {
  sqlite3* db = OpenDb(":memory:", false);
  EXPECT_EQ("", Exec(db, "ATTACH '" + a + "' AS a; ATTACH '" + b + "' AS b"));
  const std::string fa = ReadFile(a), fb = ReadFile(b);
  const uint32_t page_size = uint32_t(QueryInt(db, "PRAGMA a.page_size"));
  EXPECT_EQ(page_size, uint32_t(QueryInt(db, "PRAGMA b.page_size")));
  auto differs = [&](uint32_t p) {
    const size_t off = size_t(p - 1) * page_size;
    const size_t from = p == 1 ? 100 : 0;  // the header is no table's content
    if (off + page_size > fa.size() || off + page_size > fb.size()) return true;
    return fa.compare(off + from, page_size - from, fb, off + from, page_size - from) != 0;
  };
  // Pages of each table and index, per image, from SQLite's dbstat.
  std::map<std::string, std::set<uint32_t>> pages[2];
  std::map<std::string, std::string> kind;  // key -> "table"/"index"
  const char* schemas[2] = {"a", "b"};
  for (int s = 0; s < 2; s++) {
    const std::string sch = schemas[s];
    for (const auto& r : Rows(db, "SELECT type, name FROM " + sch + ".sqlite_schema WHERE rootpage > 0 "
                                  "UNION ALL SELECT 'table', 'sqlite_schema'")) {
      pages[s][r[0] + " " + r[1]];
      kind[r[0] + " " + r[1]] = r[0];
    }
    for (const auto& r : Rows(db, "SELECT d.name, d.pageno, coalesce(m.type, 'table') FROM dbstat('" + sch +
                                      "') d LEFT JOIN " + sch + ".sqlite_schema m ON m.name = d.name")) {
      pages[s][r[2] + " " + r[0]].insert(uint32_t(std::stoul(r[1])));
    }
  }
  DiffResult out;
  for (const auto& k : kind) {
    const std::string& key = k.first;
    const bool in_a = pages[0].count(key), in_b = pages[1].count(key);
    const std::set<uint32_t>& pa = pages[0][key];
    const std::set<uint32_t>& pb = pages[1][key];
    Expected e;
    std::set<uint32_t> all(pa.begin(), pa.end());
    all.insert(pb.begin(), pb.end());
    for (uint32_t p : all) {
      if (differs(p) || !pa.count(p) || !pb.count(p)) e.pages++;
    }
    e.status = !in_a ? "added" : !in_b ? "dropped" : e.pages > 0 ? "changed" : "unchanged";
    const std::string name = key.substr(key.find(' ') + 1);
    const bool rowid_table =
        k.second == "table" &&
        (name == "sqlite_schema" ||
         QueryInt(db, "SELECT count(*) FROM " + std::string(in_a ? "a" : "b") +
                          ".sqlite_schema WHERE name = '" + name + "' AND sql LIKE '%WITHOUT ROWID%'") == 0);
    if (rowid_table) {
      const std::string q = "\"" + name + "\"";
      // A table one image lacks: the other's, with no rows.
      const std::string ra = "(SELECT rowid AS rid, * FROM " + std::string(in_a ? "a." + q : "b." + q + " WHERE 0") + ")";
      const std::string rb = "(SELECT rowid AS rid, * FROM " + std::string(in_b ? "b." + q : "a." + q + " WHERE 0") + ")";
      e.added = QueryInt(db, "SELECT count(*) FROM " + rb + " WHERE rid NOT IN (SELECT rid FROM " + ra + ")");
      e.deleted = QueryInt(db, "SELECT count(*) FROM " + ra + " WHERE rid NOT IN (SELECT rid FROM " + rb + ")");
      const int64_t both = QueryInt(db, "SELECT count(*) FROM " + ra + " WHERE rid IN (SELECT rid FROM " + rb + ")");
      const int64_t same = QueryInt(db, "SELECT count(*) FROM (SELECT * FROM " + ra + " INTERSECT SELECT * FROM " + rb + ")");
      e.changed = both - same;
    }
    out[key] = e;
  }
  sqlite3_close(db);
  return out;
}

class Diff : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    db_ = OpenDb(dir_ / "app.db");
    ASSERT_EQ("", Exec(db_, std::string("PRAGMA journal_mode=") + GetParam()));
  }
  void TearDown() override { sqlite3_close(db_); }

  int64_t Backup() { return QueryInt(db_, "SELECT snapshot_backup()"); }
  std::string Image(int64_t id) {
    const std::string path = dir_ / ("image-" + std::to_string(id) + "-" + std::to_string(++files_) + ".db");
    EXPECT_EQ(std::to_string(id), Query(db_, "SELECT snapshot_restore_to('" + path + "', " + std::to_string(id) + ")"));
    return path;
  }
  std::string Live() {
    const std::string path = dir_ / ("live-" + std::to_string(++files_) + ".db");
    CopyLive(db_, path);
    return path;
  }

  TempDir dir_;
  sqlite3* db_ = nullptr;
  int files_ = 0;
};

// A database with every shape the diff reads: a rowid table with an index
// (several levels deep), rows with overflow pages, a WITHOUT ROWID table,
// a table that will be dropped.
void Populate(sqlite3* db) {
  ASSERT_EQ("", Exec(db,
                     "CREATE TABLE t(id INTEGER PRIMARY KEY, project INT, v TEXT);"
                     "CREATE INDEX t_project ON t(project, v);"
                     "CREATE TABLE doc(id INTEGER PRIMARY KEY, body BLOB);"
                     "CREATE TABLE kv(k TEXT PRIMARY KEY, v) WITHOUT ROWID;"
                     "CREATE TABLE old(x);"
                     "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 5000) "
                     "INSERT INTO t SELECT x, x % 7, printf('row %d %s', x, hex(randomblob(16))) FROM c;"
                     "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 20) "
                     "INSERT INTO doc SELECT x, randomblob(9000 + x) FROM c;"
                     "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 500) "
                     "INSERT INTO kv SELECT 'k' || x, x FROM c;"
                     "INSERT INTO old VALUES (1), (2), (3);"));
}

// Deletes (a whole project, as the README's story), inserts that split
// pages, updates in place and with a larger row, overflow rows rewritten
// (one in place, same size), a table dropped and one created.
void Change(sqlite3* db) {
  ASSERT_EQ("", Exec(db,
                     "DELETE FROM t WHERE project = 4;"
                     "UPDATE t SET v = 'edited ' || id WHERE id % 101 = 0;"
                     "UPDATE t SET v = v || hex(randomblob(200)) WHERE id % 997 = 0;"
                     "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 300) "
                     "INSERT INTO t(project, v) SELECT 9, printf('new %d %s', x, hex(randomblob(30))) FROM c;"
                     "UPDATE doc SET body = randomblob(12000) WHERE id = 3;"
                     "UPDATE doc SET body = zeroblob(length(body)) WHERE id = 5;"
                     "DELETE FROM doc WHERE id = 7;"
                     "UPDATE kv SET v = 'x' WHERE k = 'k10';"
                     "DROP TABLE old;"
                     "CREATE TABLE fresh(a, b); INSERT INTO fresh VALUES (1, 2);"));
}

TEST_P(Diff, TwoSnapshotsMatchBruteForce) {
  Populate(db_);
  const int64_t a = Backup();
  Change(db_);
  const int64_t b = Backup();
  const DiffResult got = SnapshotDiff(db_, std::to_string(a) + ", " + std::to_string(b));
  const DiffResult want = BruteForce(Image(a), Image(b));
  EXPECT_EQ(want, got);
  // What the story needs: the deleted project is seen as deleted rows.
  EXPECT_EQ(QueryInt(db_, "SELECT count(*) FROM t WHERE project = 9"), got.at("table t").added);
  EXPECT_EQ("dropped", got.at("table old").status);
  EXPECT_EQ("added", got.at("table fresh").status);
  EXPECT_EQ(-1, got.at("table kv").changed);  // WITHOUT ROWID: no rowid rows to count
  EXPECT_GT(got.at("table kv").pages, 0);
  EXPECT_GE(got.at("table doc").changed, 2);  // including the one rewritten in place
  // And the other way round.
  EXPECT_EQ(BruteForce(Image(b), Image(a)), SnapshotDiff(db_, std::to_string(b) + ", " + std::to_string(a)));
}

TEST_P(Diff, SnapshotAgainstLiveMatchesBruteForce) {
  Populate(db_);
  const int64_t a = Backup();
  Change(db_);
  const DiffResult got = SnapshotDiff(db_, std::to_string(a));
  EXPECT_EQ(BruteForce(Image(a), Live()), got);
  EXPECT_EQ(QueryInt(db_, "SELECT count(*) FROM t WHERE project = 9"), got.at("table t").added);
  // A snapshot of what is live now differs in nothing.
  const int64_t b = Backup();
  for (const auto& row : SnapshotDiff(db_, std::to_string(b))) {
    EXPECT_EQ("unchanged", row.second.status) << row.first;
    EXPECT_EQ(0, row.second.pages) << row.first;
  }
  EXPECT_EQ(SnapshotDiff(db_, std::to_string(a)), SnapshotDiff(db_, std::to_string(a) + ", " + std::to_string(b)));
}

TEST_P(Diff, RowRewrittenInPlaceInItsOverflowPagesOnly) {
  // A write into a large record's middle touches only one overflow page:
  // the leaf that holds the row is unchanged, and the row must still be
  // found changed.
  ASSERT_EQ("", Exec(db_, "CREATE TABLE doc(id INTEGER PRIMARY KEY, body BLOB);"
                          "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 5) "
                          "INSERT INTO doc SELECT x, zeroblob(20000) FROM c;"));
  const int64_t a = Backup();
  // Incremental blob I/O writes the record's bytes where they are.
  sqlite3_blob* blob = nullptr;
  ASSERT_EQ(SQLITE_OK, sqlite3_blob_open(db_, "main", "doc", "body", 3, 1, &blob));
  ASSERT_EQ(SQLITE_OK, sqlite3_blob_write(blob, "\x01", 1, 15000));
  ASSERT_EQ(SQLITE_OK, sqlite3_blob_close(blob));
  const DiffResult got = SnapshotDiff(db_, std::to_string(a));
  EXPECT_EQ(1, got.at("table doc").changed);
  EXPECT_EQ(0, got.at("table doc").added + got.at("table doc").deleted);
  EXPECT_EQ(BruteForce(Image(a), Live()), got);
  const int64_t b = Backup();
  EXPECT_EQ(got, SnapshotDiff(db_, std::to_string(a) + ", " + std::to_string(b)));
}

TEST_P(Diff, PagesThatLeaveATableUnchanged) {
  // Without secure_delete, a dropped table's pages go to the freelist as
  // they were: unchanged, yet no longer the table's. Its rows are deleted.
  ASSERT_EQ("", Exec(db_, "PRAGMA secure_delete=OFF"));
  Populate(db_);
  const int64_t a = Backup();
  ASSERT_EQ("", Exec(db_, "DROP TABLE t"));
  const DiffResult got = SnapshotDiff(db_, std::to_string(a));
  EXPECT_EQ(5000, got.at("table t").deleted);
  EXPECT_EQ("dropped", got.at("index t_project").status);
  EXPECT_EQ(BruteForce(Image(a), Live()), got);
}

TEST_P(Diff, ManyCommitsBetweenSnapshots) {
  Populate(db_);
  std::vector<int64_t> ids{Backup()};
  for (int round = 0; round < 4; round++) {
    ASSERT_EQ("", Exec(db_, "DELETE FROM t WHERE id % 13 = " + std::to_string(round) +
                                ";INSERT INTO t(project, v) SELECT project, v || 'x' FROM t WHERE id % 29 = 0;"
                                "UPDATE kv SET v = v + 1 WHERE CAST(substr(k, 2) AS INT) % 3 = 0"));
    ids.push_back(Backup());
  }
  for (size_t i = 0; i < ids.size(); i++) {
    for (size_t j = 0; j < ids.size(); j++) {
      if (i == j) continue;
      EXPECT_EQ(BruteForce(Image(ids[i]), Image(ids[j])),
                SnapshotDiff(db_, std::to_string(ids[i]) + ", " + std::to_string(ids[j])))
          << ids[i] << " vs " << ids[j];
    }
  }
}

INSTANTIATE_TEST_SUITE_P(JournalModes, Diff, ::testing::Values("delete", "wal"));

// snapshot_diff(a) on a database opened through the snapshot VFS: when its
// tracking is trusted, the live side is the tracked base snapshot with the
// marked pages read from the live files. Each case checks it against
// snapshot_diff(a, b), b a snapshot taken right after (of the same state).
class DiffLive : public Diff {
 protected:
  void SetUp() override {
    db_ = OpenThroughVfs(dir_ / "app.db");
    ASSERT_EQ("", Exec(db_, std::string("PRAGMA journal_mode=") + GetParam()));
  }
  std::string Tracking() { return Query(db_, "SELECT snapshot_tracking()"); }
  // snapshot_diff(a), then the same against a snapshot taken right after.
  DiffResult ExpectLiveIsTheNextSnapshot(int64_t a) {
    const DiffResult live = SnapshotDiff(db_, std::to_string(a));
    const int64_t b = Backup();
    EXPECT_EQ(SnapshotDiff(db_, std::to_string(a) + ", " + std::to_string(b)), live);
    return live;
  }
};

TEST_P(DiffLive, TrackedLiveIsTheSnapshotTakenRightAfter) {
  Populate(db_);
  const int64_t a = Backup();
  Change(db_);
  EXPECT_EQ(0u, Tracking().rfind("tracked:", 0)) << Tracking();
  const DiffResult live = ExpectLiveIsTheNextSnapshot(a);
  EXPECT_EQ(QueryInt(db_, "SELECT count(*) FROM t WHERE project = 9"), live.at("table t").added);
  EXPECT_EQ(BruteForce(Image(a), Live()), live);
}

TEST_P(DiffLive, TrackedBaseNewerThanTheSnapshotCompared) {
  // The marks are relative to the newest snapshot, not to `a`: the pages
  // not read are that snapshot's, compared with `a` by their hashes.
  Populate(db_);
  const int64_t a = Backup();
  Change(db_);
  Backup();
  ASSERT_EQ("", Exec(db_, "DELETE FROM t WHERE id % 11 = 0; UPDATE kv SET v = 'y' WHERE k = 'k20';"
                          "INSERT INTO doc(body) VALUES (randomblob(5000))"));
  EXPECT_EQ(0u, Tracking().rfind("tracked:", 0)) << Tracking();
  const DiffResult live = ExpectLiveIsTheNextSnapshot(a);
  EXPECT_EQ(BruteForce(Image(a), Live()), live);
}

TEST_P(DiffLive, PagesMarkedButUnchanged) {
  Populate(db_);
  const int64_t a = Backup();
  // A transaction that spilled pages to the file (or the WAL) and rolled
  // back: marked, yet the same.
  ASSERT_EQ("", Exec(db_, "PRAGMA cache_size = 2; BEGIN; UPDATE t SET v = v || 'x'; ROLLBACK;"
                          "PRAGMA cache_size = -2000"));
  const std::string tracking = Tracking();
  ASSERT_EQ(0u, tracking.rfind("tracked:", 0)) << tracking;
  EXPECT_GT(std::stoll(tracking.substr(std::strlen("tracked: "))), 10) << tracking;
  for (const auto& row : ExpectLiveIsTheNextSnapshot(a)) {
    EXPECT_EQ("unchanged", row.second.status) << row.first;
    EXPECT_EQ(0, row.second.pages) << row.first;
  }
}

TEST_P(DiffLive, WriterThatBypassedTheVfsMakesItReadEveryPage) {
  Populate(db_);
  const int64_t a = Backup();
  ASSERT_EQ("", Exec(db_, "UPDATE t SET v = 'tracked' WHERE id = 1"));
  // A plain sqlite3 commits without the VFS: none of its pages are marked.
  sqlite3* plain = OpenDb(dir_ / "app.db", false);
  ASSERT_EQ("", Exec(plain, "DELETE FROM t WHERE id % 3 = 0; UPDATE kv SET v = 'plain' WHERE k = 'k7'"));
  sqlite3_close(plain);
  EXPECT_EQ(0u, Tracking().rfind("untracked:", 0)) << Tracking();
  const DiffResult live = ExpectLiveIsTheNextSnapshot(a);
  EXPECT_EQ(5000 / 3, live.at("table t").deleted);
  EXPECT_EQ(1, live.at("table t").changed);
}

INSTANTIATE_TEST_SUITE_P(JournalModes, DiffLive, ::testing::Values("delete", "wal"));

// Through a shim under the snapshot VFS (a process of its own), counts the
// pages snapshot_diff(a) reads from the live database's files: with trusted
// tracking, about the pages the change marked, not the whole database.
class DiffLiveReads : public ::testing::TestWithParam<const char*> {};

// A database of ~3,300 pages, snapshot 1 of it, then a change of a few pages.
sqlite3* LargeishDatabaseWithASmallChange(const std::string& path, const char* journal_mode) {
  sqlite3* db = OpenThroughVfs(path);
  EXPECT_EQ("", Exec(db, std::string("PRAGMA journal_mode=") + journal_mode + ";"
                         "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"
                         "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<20000) "
                         "INSERT INTO t(v) SELECT hex(randomblob(300)) FROM c"));
  EXPECT_EQ("1", Query(db, "SELECT snapshot_backup()"));
  EXPECT_EQ("", Exec(db, "UPDATE t SET v = 'changed' WHERE id IN (5, 9000, 19000); DELETE FROM t WHERE id = 12000"));
  EXPECT_GT(QueryInt(db, "PRAGMA page_count"), 3000);
  return db;
}

TEST_P(DiffLiveReads, OnlyThePagesTheChangeMarked) {
  TempDir dir;
  const std::string path = dir / "app.db";
  InChildOverShim([&] {
    sqlite3* db = LargeishDatabaseWithASmallChange(path, GetParam());
    std::atomic<int64_t> pages_read{0};
    Shim().read_fault = [&](int flags, int amount, sqlite3_int64) {
      if ((flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL)) && amount >= 4096) pages_read += amount / 4096;
      return SQLITE_OK;
    };
    const std::string rows = Query(db, "SELECT group_concat(name || ' ' || rows_changed || ' ' || rows_deleted) "
                                       "FROM snapshot_diff(1) WHERE status <> 'unchanged'");
    Shim().read_fault = nullptr;
    EXPECT_EQ("t 3 1", rows);
    // Every page is ~3,300: the diff reads page 1, the marked pages, and
    // what its read transactions read of the schema.
    EXPECT_LT(pages_read.load(), 50);
    sqlite3_close(db);
  });
}

INSTANTIATE_TEST_SUITE_P(JournalModes, DiffLiveReads, ::testing::Values("delete", "wal"));

// In rollback mode a writer's commit waits for the diff's read lock. Each
// page the diff's thread reads from the database file is made to take 5 ms,
// so reading every page (~3,300) would hold the lock past the writer's
// 10-second busy timeout; reading the marked pages does not come near it.
TEST(DiffLiveWriter, RollbackModeCommitIsNotRefusedDuringALiveDiff) {
  TempDir dir;
  const std::string path = dir / "app.db";
  InChildOverShim([&] {
    sqlite3* db = LargeishDatabaseWithASmallChange(path, "delete");
    sqlite3* writer = OpenThroughVfs(path);
    sqlite3_busy_timeout(writer, 10000);
    const std::thread::id diff_thread = std::this_thread::get_id();
    std::mutex mu;
    std::condition_variable cv;
    bool diff_reading = false;
    Shim().read_fault = [&](int flags, int amount, sqlite3_int64) {
      if (std::this_thread::get_id() == diff_thread && (flags & SQLITE_OPEN_MAIN_DB) && amount >= 4096) {
        {
          std::lock_guard<std::mutex> l(mu);
          diff_reading = true;
        }
        cv.notify_one();
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      return SQLITE_OK;
    };
    std::string commit = "not run";
    std::thread w([&] {
      {
        std::unique_lock<std::mutex> l(mu);
        cv.wait(l, [&] { return diff_reading; });
      }
      commit = Exec(writer, "INSERT INTO t(v) VALUES ('during the diff')");
    });
    EXPECT_EQ("t", Query(db, "SELECT group_concat(name) FROM snapshot_diff(1) WHERE status <> 'unchanged'"));
    {
      std::lock_guard<std::mutex> l(mu);
      diff_reading = true;  // (had it read nothing, the writer would wait forever)
    }
    cv.notify_one();
    w.join();
    Shim().read_fault = nullptr;
    EXPECT_EQ("", commit);
    sqlite3_close(writer);
    sqlite3_close(db);
  });
}

TEST(DiffErrors, ClearErrors) {
  TempDir dir;
  sqlite3* db = OpenDb(dir / "app.db");
  EXPECT_EQ("", Exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES (1)"));
  EXPECT_NE(std::string::npos, Query(db, "SELECT * FROM snapshot_diff(1)").find("ERROR"));  // no store yet
  EXPECT_EQ("1", Query(db, "SELECT snapshot_backup()"));
  EXPECT_NE(std::string::npos, Query(db, "SELECT * FROM snapshot_diff").find("which snapshot?"));
  EXPECT_NE(std::string::npos, Query(db, "SELECT * FROM snapshot_diff(42)").find("no snapshot with id 42"));
  EXPECT_NE(std::string::npos, Query(db, "SELECT * FROM snapshot_diff(1, 42)").find("no snapshot with id 42"));
  EXPECT_NE(std::string::npos, Query(db, "SELECT * FROM snapshot_diff('x')").find("positive integer"));
  EXPECT_NE(std::string::npos, Query(db, "SELECT * FROM snapshot_diff(-1)").find("positive integer"));
  EXPECT_NE(std::string::npos, Query(db, "SELECT * FROM snapshot_diff(1, NULL, 'nosuch')").find("ERROR"));
  EXPECT_EQ("unchanged", Query(db, "SELECT status FROM snapshot_diff(1, 1) WHERE name = 't'"));
  EXPECT_NE(std::string::npos, Query(db, "SELECT snapshot_integrity_check(42)").find("no snapshot with id 42"));
  EXPECT_NE(std::string::npos, Query(db, "SELECT snapshot_integrity_check('x')").find("positive integer"));
  sqlite3_close(db);
}

// Both take a snapshot the way snapshot_restore does: an id (also as text),
// 'latest', or a moment (the newest snapshot taken at or before it).
TEST(DiffErrors, SnapshotsNamedLikeRestoreNamesThem) {
  TempDir dir;
  sqlite3* db = OpenDb(dir / "app.db");
  EXPECT_EQ("", Exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES (1)"));
  EXPECT_EQ("1", Query(db, "SELECT snapshot_backup()"));
  EXPECT_EQ("", Exec(db, "INSERT INTO t VALUES (2)"));
  EXPECT_EQ("2", Query(db, "SELECT snapshot_backup()"));
  EXPECT_EQ("", Exec(db, "INSERT INTO t VALUES (3)"));
  EXPECT_EQ("1", Query(db, "SELECT rows_added FROM snapshot_diff('latest') WHERE name = 't'"));
  EXPECT_EQ("2", Query(db, "SELECT rows_added FROM snapshot_diff('1') WHERE name = 't'"));
  EXPECT_EQ("1", Query(db, "SELECT rows_added FROM snapshot_diff(1, 'latest') WHERE name = 't'"));
  EXPECT_EQ("unchanged", Query(db, "SELECT status FROM snapshot_diff('2999-01-01 00:00:00', 2) WHERE name = 't'"));
  EXPECT_NE(std::string::npos, Query(db, "SELECT * FROM snapshot_diff('2000-01-01T00:00:00Z')").find("ERROR"))
      << "every snapshot is later";
  EXPECT_EQ("ok", Query(db, "SELECT snapshot_integrity_check('latest')"));
  EXPECT_EQ("ok", Query(db, "SELECT snapshot_integrity_check('2999-01-01 00:00:00')"));
  sqlite3_close(db);
}

// Overwrites bytes at `offset` of database file `path`, as a writer that
// does not use the snapshot VFS would: with a new change counter (which is
// how the next snapshot learns that it must read every page).
void Patch(const std::string& path, long offset, const std::string& bytes) {
  FILE* f = std::fopen(path.c_str(), "r+b");
  ASSERT_NE(nullptr, f);
  std::fseek(f, offset, SEEK_SET);
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fseek(f, 24, SEEK_SET);
  std::fwrite("\x00\x7f\x7f\x01", 1, 4, f);
  std::fclose(f);
}

// Snapshots of databases damaged in their b-trees: each diff is an SQL
// error or a result, never a crash (the sanitizer build checks the reads),
// and integrity_check reports the damage rather than 'ok'.
TEST(DiffErrors, DamagedDatabasesInSnapshots) {
  const std::vector<std::pair<long, std::string>> damage = {
      {4096 * 1 + 8, std::string("\x00\x00\x00\x02", 4)},    // page 2's right child: itself
      {4096 * 1 + 8, std::string("\x7f\xff\xff\xff", 4)},    // a child past the end
      {4096 * 1 + 3, std::string("\xff\xff", 2)},            // too many cells
      {4096 * 1 + 12, std::string("\xff\xf0", 2)},           // a cell outside the page
      {4096 * 1 + 0, std::string("\x07", 1)},                // not a b-tree page
      {100 + 8 + 0, std::string("\x00\x00", 2)},             // sqlite_schema cell pointer garbage
      {4096 * 2, std::string(64, '\xff')},                    // a leaf's header and cells
  };
  int errors = 0;
  for (const auto& d : damage) {
    TempDir dir;
    const std::string path = dir / "app.db";
    {
      sqlite3* db = OpenDb(path, false);
      ASSERT_EQ("", Exec(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v);"
                             "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 2000) "
                             "INSERT INTO t SELECT x, randomblob(300) FROM c"));
      ASSERT_EQ(2, QueryInt(db, "SELECT rootpage FROM sqlite_schema WHERE name = 't'"));
      sqlite3_close(db);
    }
    sqlite3* db = OpenDb(path);
    ASSERT_EQ("1", Query(db, "SELECT snapshot_backup()"));
    sqlite3_close(db);
    Patch(path, d.first, d.second);
    db = OpenDb(path);
    EXPECT_EQ("2", Query(db, "SELECT snapshot_backup()"));
    const std::string r12 = Query(db, "SELECT group_concat(name || pages_changed) FROM snapshot_diff(1, 2)");
    const std::string r21 = Query(db, "SELECT group_concat(name || pages_changed) FROM snapshot_diff(2, 1)");
    const std::string live = Query(db, "SELECT group_concat(name || pages_changed) FROM snapshot_diff(1)");
    for (const std::string& r : {r12, r21, live}) {
      if (r.rfind("ERROR", 0) == 0) {
        errors++;
        // The b-tree reader's own finding, or SQLite's when the live
        // database's schema cannot even be read.
        EXPECT_TRUE(r.find("not a sound database") != std::string::npos || r.find("malformed") != std::string::npos)
            << r;
      }
    }
    EXPECT_EQ("ok", Query(db, "SELECT snapshot_integrity_check(1)"));
    EXPECT_NE("ok", Query(db, "SELECT snapshot_integrity_check(2)")) << d.first;
    sqlite3_close(db);
  }
  EXPECT_GT(errors, 0);
}

TEST(IntegrityCheck, ReadsTheSnapshotNotTheLiveFile) {
  TempDir dir;
  const std::string path = dir / "app.db";
  sqlite3* db = OpenDb(path);
  ASSERT_EQ("", Exec(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v); CREATE INDEX tv ON t(v);"
                         "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 3000) "
                         "INSERT INTO t SELECT x, randomblob(100) FROM c"));
  EXPECT_EQ("1", Query(db, "SELECT snapshot_backup()"));
  sqlite3_close(db);
  // Damage the index in the live file: the snapshot stays sound.
  db = OpenDb(path, false);
  const int64_t index_root = QueryInt(db, "SELECT rootpage FROM sqlite_schema WHERE name = 'tv'");
  sqlite3_close(db);
  Patch(path, long(index_root - 1) * 4096 + 8, std::string("\x00\x00\x00\x03", 4));
  db = OpenDb(path);
  EXPECT_NE("ok", Query(db, "PRAGMA integrity_check"));
  EXPECT_EQ("ok", Query(db, "SELECT snapshot_integrity_check(1)"));
  EXPECT_EQ("2", Query(db, "SELECT snapshot_backup()"));
  const std::string report = Query(db, "SELECT snapshot_integrity_check(2)");
  EXPECT_NE(std::string::npos, report.find("2nd reference to page 3")) << report;
  // Nothing was written: no new snapshot, no file beside the store's.
  EXPECT_EQ(2, QueryInt(db, "SELECT count(*) FROM snapshot_list"));
  sqlite3_close(db);
}

}  // namespace
}  // namespace snapshot_test
