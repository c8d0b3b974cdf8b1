// The journal writer (vfs/journal_commit.h): a restore writes the pages of
// a snapshot over a live rollback-journal database through a journal of its
// own, in SQLite's format, so that a crash or an I/O error part way leaves a
// hot journal that SQLite itself, in any process, rolls back: the database
// is then exactly as it was, never a mixture. These tests commit the image
// of one real database over another and let a real SQLite connection judge.
#include "vfs/journal_commit.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/shim_vfs.h"
#include "tests/test_util.h"
#include "tests/vfs/vfs_unit_util.h"

namespace snapshot_test {
namespace {

constexpr uint32_t kPageSize = 4096;

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

class JournalCommitTest : public ::testing::Test {
 protected:
  // old.db: the live database; new.db: the image to commit over it, made
  // from a copy of old.db by `change`.
  void MakeImages(const std::string& change) {
    old_path_ = dir_ / "old.db";
    sqlite3* db = OpenPlain(old_path_);
    ASSERT_EQ("", Exec(db, "PRAGMA page_size=" + std::to_string(kPageSize) +
                               "; PRAGMA journal_mode=delete; CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);"
                               " WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)"
                               " INSERT INTO t SELECT i, randomblob(300) FROM n;"));
    sqlite3_close(db);
    const std::string new_path = dir_ / "new.db";
    std::filesystem::copy_file(old_path_, new_path);
    db = OpenPlain(new_path);
    ASSERT_EQ("", Exec(db, change));
    new_rows_ = QueryInt(db, "SELECT count(*) FROM t");
    sqlite3_close(db);
    old_image_ = ReadFile(old_path_);
    new_image_ = ReadFile(new_path);
    ASSERT_NE(old_image_.size(), new_image_.size());
  }

  // Commits new.db's image over the database `db` has open, which holds
  // its EXCLUSIVE lock; `before_page(pgno)` runs before each page is written.
  snapshot::Status CommitNewImage(sqlite3* db, const std::function<void(uint32_t)>& before_page = nullptr) {
    snapshot::JournalCommit c;
    EXPECT_EQ(SQLITE_OK, sqlite3_file_control(db, "main", SQLITE_FCNTL_VFS_POINTER, &c.vfs));
    c.journal_name = sqlite3_filename_journal(sqlite3_db_filename(db, "main"));
    c.db = MainFile(db);
    c.page_size = kPageSize;
    c.old_page_count = uint32_t(old_image_.size() / kPageSize);
    c.new_page_count = uint32_t(new_image_.size() / kPageSize);
    for (uint32_t p = 1; p <= c.new_page_count; p++) c.pages.push_back(p);
    // Last page first: a restore writes pages in the order its store holds
    // them, and the commit must not depend on the order.
    c.write_pages = [&](const snapshot::JournalCommit::PageWriter& write) {
      for (auto p = c.pages.rbegin(); p != c.pages.rend(); ++p) {
        if (before_page) before_page(*p);
        const auto* data = reinterpret_cast<const uint8_t*>(new_image_.data()) + size_t(*p - 1) * kPageSize;
        SNAPSHOT_RETURN_IF_ERROR(write(*p, 1, data));
      }
      return snapshot::Status::OK();
    };
    return snapshot::CommitThroughJournal(c);
  }

  // What a new connection finds, after SQLite rolled back any hot journal.
  void ExpectOldDatabase() {
    sqlite3* db = OpenPlain(old_path_);
    EXPECT_EQ("ok", Query(db, "PRAGMA integrity_check"));
    sqlite3_close(db);
    EXPECT_FALSE(Exists(old_path_ + "-journal")) << "rolled back";
    EXPECT_EQ(std::vector<uint32_t>{}, ChangedPages(old_image_, ReadFile(old_path_), kPageSize));
  }

  TempDir dir_;
  std::string old_path_, old_image_, new_image_;
  int64_t new_rows_ = 0;
};

TEST_F(JournalCommitTest, ACompletedCommitIsTheNewImage) {
  MakeImages("UPDATE t SET v = randomblob(300) WHERE id % 3 = 0;"
             " INSERT INTO t SELECT id + 1000, randomblob(300) FROM t");
  sqlite3* db = OpenPlain(old_path_);
  ASSERT_EQ("", Exec(db, "BEGIN EXCLUSIVE"));
  const snapshot::Status s = CommitNewImage(db);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_FALSE(Exists(old_path_ + "-journal")) << "deleting the journal is the commit";
  EXPECT_EQ(std::vector<uint32_t>{}, ChangedPages(new_image_, ReadFile(old_path_), kPageSize));
  // The connection that held the lock sees the new content once it ends its
  // (empty) transaction, as the restore's connection does.
  ASSERT_EQ("", Exec(db, "ROLLBACK"));
  EXPECT_EQ(new_rows_, QueryInt(db, "SELECT count(*) FROM t"));
  EXPECT_EQ("ok", Query(db, "PRAGMA integrity_check"));
  sqlite3_close(db);
}

// The process dies (kill -9) with some new pages written over the old.
TEST_F(JournalCommitTest, SqliteRollsBackACommitKilledHalfway) {
  MakeImages("UPDATE t SET v = randomblob(300) WHERE id % 3 = 0;"
             " INSERT INTO t SELECT id + 1000, randomblob(300) FROM t");
  ASSERT_TRUE(RunThenKill([&] {
    sqlite3* db = OpenPlain(old_path_);
    if (!Exec(db, "BEGIN EXCLUSIVE").empty()) return;
    CommitNewImage(db, [](uint32_t pgno) {
      if (pgno == 10) raise(SIGKILL);
    });
  }));
  ASSERT_TRUE(Exists(old_path_ + "-journal")) << "a hot journal";
  ASSERT_NE(std::vector<uint32_t>{}, ChangedPages(old_image_, ReadFile(old_path_), kPageSize))
      << "new pages were written over the old";
  ExpectOldDatabase();
}

// A writer that leaves a listed page out (or writes one not listed) would
// commit a mix of two images: refused, and rolled back like a failure.
TEST_F(JournalCommitTest, ACommitMissingAPageIsRolledBack) {
  MakeImages("UPDATE t SET v = randomblob(300) WHERE id % 3 = 0;"
             " INSERT INTO t SELECT id + 1000, randomblob(300) FROM t");
  for (const bool extra : {false, true}) {
    sqlite3* db = OpenPlain(old_path_);
    ASSERT_EQ("", Exec(db, "BEGIN EXCLUSIVE"));
    snapshot::JournalCommit c;
    ASSERT_EQ(SQLITE_OK, sqlite3_file_control(db, "main", SQLITE_FCNTL_VFS_POINTER, &c.vfs));
    c.journal_name = sqlite3_filename_journal(sqlite3_db_filename(db, "main"));
    c.db = MainFile(db);
    c.page_size = kPageSize;
    c.old_page_count = uint32_t(old_image_.size() / kPageSize);
    c.new_page_count = uint32_t(new_image_.size() / kPageSize);
    for (uint32_t p = 1; p <= c.new_page_count; p += 2) c.pages.push_back(p);
    c.write_pages = [&](const snapshot::JournalCommit::PageWriter& write) {
      for (uint32_t p : c.pages) {
        if (p == c.pages.back() && !extra) break;
        const auto* data = reinterpret_cast<const uint8_t*>(new_image_.data()) + size_t(p - 1) * kPageSize;
        SNAPSHOT_RETURN_IF_ERROR(write(p, extra && p == c.pages.back() ? 2 : 1, data));
      }
      return snapshot::Status::OK();
    };
    const snapshot::Status s = snapshot::CommitThroughJournal(c);
    EXPECT_FALSE(s.ok()) << (extra ? "a page not listed was written" : "a listed page was left out");
    EXPECT_NE(std::string::npos, s.message().find("roll")) << s.message();
    ASSERT_TRUE(Exists(old_path_ + "-journal")) << "a hot journal";
    ASSERT_EQ("", Exec(db, "ROLLBACK"));
    sqlite3_close(db);
    ExpectOldDatabase();
  }
}

// The database's sync fails after a truncation cut pages off: the journal
// holds them too, and the error leaves it for SQLite to roll back.
TEST_F(JournalCommitTest, SqliteRollsBackACommitWhoseSyncFailed) {
  MakeImages("DELETE FROM t WHERE id > 60; UPDATE t SET v = randomblob(300) WHERE id % 2 = 0; VACUUM");
  sqlite3* db = nullptr;
  ASSERT_EQ(SQLITE_OK, sqlite3_open_v2(old_path_.c_str(), &db, SQLITE_OPEN_READWRITE, ShimVfs()->zName));
  ASSERT_EQ("", Exec(db, "BEGIN EXCLUSIVE"));
  Shim().Reset();
  Shim().fail_db_syncs = 1;
  const snapshot::Status s = CommitNewImage(db);
  Shim().Reset();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(std::string::npos, s.message().find("roll")) << s.message();
  ASSERT_TRUE(Exists(old_path_ + "-journal")) << "a hot journal";
  ASSERT_LT(ReadFile(old_path_).size(), old_image_.size()) << "the file was truncated";
  ASSERT_EQ("", Exec(db, "ROLLBACK"));
  sqlite3_close(db);
  ExpectOldDatabase();
}

}  // namespace
}  // namespace snapshot_test
