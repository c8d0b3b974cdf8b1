// A database larger than 1 GiB, across the lock-byte page: its snapshots,
// restore_to and restore give back every page. It runs by default (it needs
// 5 GiB free); SNAPSHOT_SKIP_BIG=1 skips it.

#include <sys/statvfs.h>

#include <chrono>

#include "tests/sql/sql_test_util.h"

namespace snapshot_test {
namespace {

// Compares two files page by page, streaming, masking what ComparePages masks
// on page 1 when `mask_header`.
std::string CompareFilesStreaming(const std::string& a, const std::string& b, uint32_t page_size, bool mask_header) {
  FILE* fa = std::fopen(a.c_str(), "rb");
  FILE* fb = std::fopen(b.c_str(), "rb");
  if (!fa || !fb) {
    if (fa) std::fclose(fa);
    if (fb) std::fclose(fb);
    return "cannot open";
  }
  std::string result;
  if (FileSize(a) != FileSize(b)) {
    result = "sizes differ: " + std::to_string(FileSize(a)) + " vs " + std::to_string(FileSize(b));
  }
  const size_t chunk = size_t(page_size) * 256;
  std::vector<char> ba(chunk), bb(chunk);
  uint64_t off = 0;
  while (result.empty()) {
    const size_t na = std::fread(ba.data(), 1, chunk, fa);
    const size_t nb = std::fread(bb.data(), 1, chunk, fb);
    if (na != nb) {
      result = "short read";
      break;
    }
    if (na == 0) break;
    if (off == 0 && mask_header) {
      ZeroRewrittenHeaderFields(ba.data(), na);
      ZeroRewrittenHeaderFields(bb.data(), nb);
    }
    if (std::memcmp(ba.data(), bb.data(), na) != 0) {
      for (size_t i = 0; i < na; i++) {
        if (ba[i] != bb[i]) {
          result = "page " + std::to_string((off + i) / page_size + 1) + " differs";
          break;
        }
      }
    }
    off += na;
  }
  std::fclose(fa);
  std::fclose(fb);
  return result;
}

class SqlLockByte : public SqlFixture {};

TEST_F(SqlLockByte, DatabaseOverOneGiB) {
  const char* skip = getenv("SNAPSHOT_SKIP_BIG");
  if (skip != nullptr && std::string(skip) == "1") GTEST_SKIP() << "SNAPSHOT_SKIP_BIG=1";
  struct statvfs vfs;
  ASSERT_EQ(0, statvfs(dir_.path().c_str(), &vfs));
  const uint64_t free_bytes = uint64_t(vfs.f_bavail) * vfs.f_frsize;
  if (free_bytes < (5ull << 30)) GTEST_SKIP() << "needs 5 GiB free in " << dir_.path() << ", has " << free_bytes;
  using Clock = std::chrono::steady_clock;
  auto t0 = Clock::now();
  auto lap = [&](const char* what) {
    const auto now = Clock::now();
    std::printf("  [big] %-40s %6.1f s\n", what, std::chrono::duration<double>(now - t0).count());
    std::fflush(stdout);
    t0 = now;
  };

  const uint32_t lock_page = (1u << 30) / 4096 + 1;
  Conn a(DbPath());
  Ok(a, "PRAGMA journal_mode=DELETE; PRAGMA synchronous=OFF");
  // 1100 rows of 1 MB: every page real, a tenth of each row random (so rows
  // differ and misplaced pages show), the rest compressible.
  Ok(a, "CREATE TABLE big(id INTEGER PRIMARY KEY, b BLOB)");
  Ok(a, "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<1100) "
        "INSERT INTO big(b) SELECT randomblob(100000) || zeroblob(900000) FROM c");
  Fill(a, "tail", 500);  // rows past the lock-byte page
  const int64_t pages = PageCount(a);
  ASSERT_GT(pages, int64_t(lock_page) + 1000);
  ASSERT_GT(FileSize(DbPath()), 1100000000u);
  const std::string digest1 = Digest(a);
  lap("built");

  // Rollback mode: the snapshot reads the file.
  EXPECT_EQ(1, Backup(a, "big"));
  lap("snapshot 1");
  EXPECT_EQ(pages, QueryInt(a, "SELECT page_count FROM snapshot_list WHERE id = 1"));
  const std::string out1 = Path("r1.db");
  EXPECT_EQ("1", RestoreTo(a, out1, 1));
  lap("restore_to 1");
  EXPECT_EQ("", CompareFilesStreaming(out1, DbPath(), 4096, /*mask_header=*/false));
  {
    Conn r(out1, false);
    EXPECT_EQ("ok", Integrity(r));
    EXPECT_EQ(digest1, Digest(r));
  }
  std::remove(out1.c_str());
  lap("compared and checked");

  // Change pages on both sides of the lock-byte page, then restore into the
  // live database and back (recording pre-restore 2).
  Ok(a, "UPDATE big SET b = randomblob(1000) WHERE id IN (3, 1090); INSERT INTO tail(a) VALUES ('after');"
        "UPDATE tail SET a = 'changed' WHERE id = 7");
  const std::string digest2 = Digest(a);
  EXPECT_EQ(1, Restore(a, 1));
  lap("restore 1 into the live database");
  EXPECT_EQ(digest1, Digest(a));
  EXPECT_EQ("ok", Integrity(a));
  EXPECT_EQ("1:big,2:pre-restore", SnapshotIds(a));
  EXPECT_EQ(2, Restore(a, 2));
  EXPECT_EQ(digest2, Digest(a));
  EXPECT_EQ("ok", Integrity(a));
  lap("restore 2 and checks");

  // WAL mode: the snapshot goes through SQLite's pager, with changes on
  // both sides of the lock-byte page still in the -wal file.
  Ok(a, "PRAGMA journal_mode=WAL");
  {
    Conn w(DbPath());
    Ok(w, "PRAGMA wal_autocheckpoint=0");
    Ok(w, "UPDATE big SET b = randomblob(2000) WHERE id IN (5, 1080); INSERT INTO tail(a) VALUES ('wal');"
          "UPDATE tail SET a = 'wal' WHERE id = 9");
    ASSERT_GT(FileSize(DbPath() + "-wal"), 0u);
    const std::string digest4 = Digest(w);
    EXPECT_EQ(4, Backup(w, "big wal"));
    lap("snapshot 4 (WAL)");
    const std::string out4 = Path("r4.db");
    EXPECT_EQ("4", RestoreTo(w, out4, 4));
    lap("restore_to 4");
    Ok(w, "PRAGMA wal_checkpoint(TRUNCATE)");
    EXPECT_EQ(0u, FileSize(DbPath() + "-wal"));
    EXPECT_EQ("", CompareFilesStreaming(out4, DbPath(), 4096, /*mask_header=*/true));
    Conn r(out4, false);
    EXPECT_EQ("ok", Integrity(r));
    EXPECT_EQ(digest4, Digest(r));
    lap("compared and checked");
  }
  EXPECT_EQ("ok", Query(a, "SELECT snapshot_verify()"));
  lap("verify");
}

}  // namespace
}  // namespace snapshot_test
