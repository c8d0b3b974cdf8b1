// CowArea (vfs/cow.h): a snapshot of a rollback-journal database reads the
// database as it was when the snapshot pinned it, although writers go on
// committing through the snapshot VFS meanwhile: each page a writer is about
// to overwrite (or cut off) is first copied into the area.
#include "vfs/cow.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "tests/test_util.h"
#include "tests/vfs/vfs_unit_util.h"
#include "vfs/tracker.h"

namespace snapshot_test {
namespace {

using snapshot::CowArea;
using snapshot::Tracker;

constexpr uint32_t kPageSize = 4096;

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

// Pins the database at `path` (rollback mode) as a copy-on-write snapshot
// does, lets a writer commit `sql` through the snapshot VFS, then reads every
// pinned page from the file as it is now and settles it with the area:
// returns the image so read, and in *pinned the file as it was at the pin.
std::string ReadPinnedImageAfter(const std::string& path, const std::string& sql, std::string* pinned) {
  sqlite3* db = OpenThroughUnitVfs(path);
  Tracker* tracker = Tracker::Find(path);
  EXPECT_NE(nullptr, tracker);
  if (tracker == nullptr) return "";
  *pinned = ReadFile(path);
  const uint32_t page_count = uint32_t(pinned->size() / kPageSize);
  constexpr uint32_t kGeneration = 5;
  std::unique_ptr<CowArea> area;
  EXPECT_TRUE(CowArea::Create(path + snapshot::kCowSuffix, kGeneration, kPageSize, page_count, /*needed=*/nullptr,
                              0600, &area)
                  .ok());
  if (area == nullptr) return "";
  tracker->SetCowGeneration(kGeneration);

  EXPECT_EQ("", Exec(db, sql));

  const std::string now = ReadFile(path);
  std::string read;
  for (uint32_t pgno = 1; pgno <= page_count; pgno++) {
    std::string page = now.substr(std::min<size_t>(now.size(), size_t(pgno - 1) * kPageSize), kPageSize);
    page.resize(kPageSize);  // beyond the end of a truncated file: zeros
    EXPECT_TRUE(area->Settle(pgno, reinterpret_cast<uint8_t*>(&page[0])).ok());
    read += page;
  }
  tracker->SetCowGeneration(0);
  area->FreeSlots();
  sqlite3_close(db);
  return read;
}

void MakeDatabase(const std::string& path) {
  sqlite3* db = OpenPlain(path);
  EXPECT_EQ("", Exec(db, "PRAGMA page_size=" + std::to_string(kPageSize) +
                             "; PRAGMA journal_mode=delete; CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);"
                             " WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)"
                             " INSERT INTO t SELECT i, randomblob(300) FROM n;"));
  sqlite3_close(db);
}

TEST(CowAreaTest, ReturnsThePinnedContentOfPagesWrittenAfterThePin) {
  TempDir dir;
  const std::string path = RealPath(dir.path()) + "/app.db";
  MakeDatabase(path);
  std::string pinned;
  const std::string read =
      ReadPinnedImageAfter(path, "UPDATE t SET v = randomblob(300) WHERE id % 7 = 0", &pinned);
  ASSERT_GE(ChangedPages(pinned, ReadFile(path), kPageSize).size(), 10u) << "the writer changed pages";
  EXPECT_EQ(std::vector<uint32_t>{}, ChangedPages(pinned, read, kPageSize));
}

// VACUUM rewrites every page and truncates the file: pages cut off are
// preserved too.
TEST(CowAreaTest, ReturnsThePinnedContentOfPagesCutOffAfterThePin) {
  TempDir dir;
  const std::string path = RealPath(dir.path()) + "/app.db";
  MakeDatabase(path);
  std::string pinned;
  const std::string read = ReadPinnedImageAfter(path, "DELETE FROM t WHERE id > 50; VACUUM", &pinned);
  ASSERT_LT(ReadFile(path).size(), pinned.size() / 2) << "the file was truncated";
  EXPECT_EQ(std::vector<uint32_t>{}, ChangedPages(pinned, read, kPageSize));
}

// Writers find the area by the generation the tracking file announces: an
// area left by an earlier snapshot is never written for a later one, and
// what a snapshot that died before publishing its area left is removed.
TEST(CowAreaTest, WritersMapOnlyTheAnnouncedGeneration) {
  TempDir dir;
  const std::string path = RealPath(dir.path()) + "/app.db-snapcow";
  std::unique_ptr<CowArea> area;
  ASSERT_TRUE(CowArea::Create(path, 7, kPageSize, 10, nullptr, 0600, &area).ok());
  EXPECT_NE(nullptr, CowArea::Map(path, 7));
  EXPECT_EQ(nullptr, CowArea::Map(path, 8));
  EXPECT_EQ(nullptr, CowArea::Map(path + "-missing", 7));

  const std::string abandoned = path + ".tmp-99999";
  std::ofstream(abandoned) << "half made";
  ASSERT_TRUE(Exists(abandoned));
  CowArea::RemoveAbandoned(path);
  EXPECT_FALSE(Exists(abandoned));
  EXPECT_TRUE(Exists(path));
}

}  // namespace
}  // namespace snapshot_test
