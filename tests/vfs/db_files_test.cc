// The WAL reader (vfs/db_files.h): a snapshot of a WAL database reads the
// database file overlaid with the -wal file's frames up to its last commit,
// and must see exactly what SQLite itself would recover from those two
// files after a crash: no frame of an unfinished transaction, none torn, none
// whose checksum fails. Each case below damages a copy of a real WAL the way
// a crash can, and compares the reader's image with SQLite's own recovery of
// the same files.
#include "vfs/db_files.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "tests/test_util.h"
#include "tests/vfs/vfs_unit_util.h"

namespace snapshot_test {
namespace {

constexpr uint32_t kPageSize = 4096;
// SQLite's WAL layout (https://www.sqlite.org/fileformat2.html, 4.1): a
// header, then frames of a header and one page.
constexpr uint64_t kWalHeaderBytes = 32;
constexpr uint64_t kFrameBytes = 24 + kPageSize;

// The image the reader returns for the database and -wal files at `path`.
std::string ReaderImage(const std::string& path, snapshot::DbImageLayout* layout) {
  RawFile db(path, SQLITE_OPEN_MAIN_DB);
  RawFile wal(path + "-wal", SQLITE_OPEN_WAL);
  EXPECT_TRUE(snapshot::ReadDbLayout(db.get(), wal.get(), layout).ok());
  std::string image;
  EXPECT_TRUE(snapshot::ReadDbPages(db.get(), wal.get(), *layout, [&](uint32_t, const uint8_t* page) {
                image.append(reinterpret_cast<const char*>(page), layout->page_size);
                return snapshot::Status::OK();
              }).ok());
  return image;
}

// What SQLite makes of the files at `path`: it recovers the WAL (there is no
// -shm beside the copy), then a checkpoint writes the result into the file.
std::string SqliteImage(const std::string& path) {
  sqlite3* db = OpenPlain(path);
  EXPECT_EQ("ok", Query(db, "PRAGMA integrity_check"));
  EXPECT_EQ("", Exec(db, "PRAGMA wal_checkpoint(TRUNCATE)"));
  const int64_t pages = QueryInt(db, "PRAGMA page_count");
  sqlite3_close(db);
  return ReadFile(path).substr(0, size_t(pages) * kPageSize);
}

class WalReaderTest : public ::testing::Test {
 protected:
  // Three commits in the WAL, never checkpointed: the table, every row
  // rewritten, then a few rows on pages far apart (several frames, the
  // last one the commit frame). The writer stays open so the WAL stays.
  void SetUp() override {
    source_ = dir_ / "source.db";
    writer_ = OpenPlain(source_);
    ASSERT_EQ("", Exec(writer_, "PRAGMA page_size=" + std::to_string(kPageSize) +
                                    "; PRAGMA journal_mode=wal; PRAGMA wal_autocheckpoint=0;"
                                    " CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"
                                    " WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)"
                                    " INSERT INTO t SELECT i, 'a' || hex(randomblob(150)) FROM n;"));
    ASSERT_EQ("", Exec(writer_, "UPDATE t SET v = 'b' || substr(v, 2)"));
    ASSERT_EQ("", Exec(writer_, "UPDATE t SET v = 'c' || substr(v, 2) WHERE id IN (1, 100, 200, 300)"));
    frames_ = (uint64_t(std::filesystem::file_size(source_ + "-wal")) - kWalHeaderBytes) / kFrameBytes;
    ASSERT_GE(frames_, 10u);
  }
  void TearDown() override { sqlite3_close(writer_); }

  // A copy of the database and its WAL (no -shm), with `damage` done to
  // the WAL's bytes.
  std::string CopyWith(const std::string& name, const std::function<void(std::string*)>& damage) {
    const std::string path = dir_ / name;
    std::filesystem::copy_file(source_, path);
    std::string wal = ReadFile(source_ + "-wal");
    damage(&wal);
    std::ofstream(path + "-wal", std::ios::binary) << wal;
    return path;
  }

  // Checks the reader against SQLite on a damaged copy; returns the image.
  std::string ExpectReaderMatchesSqlite(const std::string& path) {
    snapshot::DbImageLayout layout;
    const std::string read = ReaderImage(path, &layout);
    const std::string recovered = SqliteImage(path);
    EXPECT_EQ(recovered.size(), read.size());
    EXPECT_EQ(std::vector<uint32_t>{}, ChangedPages(recovered, read, kPageSize));
    return read;
  }

  // Offset of frame i (1-based) in the WAL.
  static uint64_t FrameOffset(uint64_t i) { return kWalHeaderBytes + (i - 1) * kFrameBytes; }

  TempDir dir_;
  std::string source_;
  sqlite3* writer_ = nullptr;
  uint64_t frames_ = 0;
};

TEST_F(WalReaderTest, ReadsTheLastCommittedImage) {
  const std::string path = CopyWith("intact.db", [](std::string*) {});
  snapshot::DbImageLayout layout;
  ReaderImage(path, &layout);
  EXPECT_EQ(frames_, layout.wal_commit_frame);
  EXPECT_FALSE(layout.wal_pages.empty());
  const std::string read = ExpectReaderMatchesSqlite(path);
  EXPECT_NE(ReadFile(source_).substr(0, read.size()), read) << "the image comes from the WAL, not the file alone";
}

// The last transaction's commit frame never reached the disk: its other
// frames, intact and with good checksums, are not part of the database.
TEST_F(WalReaderTest, IgnoresFramesOfAnUncommittedTransaction) {
  const std::string intact = ExpectReaderMatchesSqlite(CopyWith("intact.db", [](std::string*) {}));
  const std::string read = ExpectReaderMatchesSqlite(
      CopyWith("uncommitted.db", [&](std::string* wal) { wal->resize(FrameOffset(frames_)); }));
  EXPECT_NE(intact, read) << "the last transaction is gone";
}

// A crash in the middle of writing the commit frame.
TEST_F(WalReaderTest, IgnoresATornLastFrame) {
  const std::string intact = ExpectReaderMatchesSqlite(CopyWith("intact.db", [](std::string*) {}));
  const std::string read = ExpectReaderMatchesSqlite(
      CopyWith("torn.db", [&](std::string* wal) { wal->resize(FrameOffset(frames_) + kFrameBytes / 2); }));
  EXPECT_NE(intact, read) << "the last transaction is gone";
}

// A frame of the last transaction whose page is not what its checksum says
// (a sector that never made it): that frame and every one after it are not
// part of the database.
TEST_F(WalReaderTest, IgnoresAFrameWithABadChecksumAndWhatFollows) {
  const std::string intact = ExpectReaderMatchesSqlite(CopyWith("intact.db", [](std::string*) {}));
  const std::string read = ExpectReaderMatchesSqlite(CopyWith("bad_checksum.db", [&](std::string* wal) {
    (*wal)[FrameOffset(frames_ - 1) + 24 + 1000] ^= 0x01;
  }));
  EXPECT_NE(intact, read) << "the last transaction is gone";
}

}  // namespace
}  // namespace snapshot_test
