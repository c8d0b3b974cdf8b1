// A hostile store, through the SQL functions: files that pass every check
// of their own format but declare sizes meant to exhaust memory or disk. A
// user meets them as a clear SQL error; the database is left as it was and
// the process goes on.
#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "store/coding.h"
#include "store/format.h"
#include "store/hash.h"
#include "store/manifest.h"
#include "store/pack.h"
#include "tests/process_util.h"
#include "tests/test_util.h"

namespace snapshot_test {
namespace {

void WriteBytes(const std::string& path, const std::string& data) {
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(nullptr, f) << path;
  ASSERT_EQ(data.size(), std::fwrite(data.data(), 1, data.size(), f));
  ASSERT_EQ(0, std::fclose(f));
}

// app.db in rollback-journal mode (where a restore writes only the pages
// that differ) with snapshot 1 taken, then changed.
sqlite3* MakeDatabaseWithOneSnapshot(const TempDir& dir) {
  sqlite3* db = OpenDb(dir / "app.db");
  EXPECT_EQ("", Exec(db, "PRAGMA page_size=4096; PRAGMA journal_mode=DELETE; CREATE TABLE t(x);"
                         "INSERT INTO t VALUES (1)"));
  EXPECT_EQ(1, QueryInt(db, "SELECT snapshot_backup('real')"));
  EXPECT_EQ("", Exec(db, "INSERT INTO t VALUES (2)"));
  return db;
}

// The manifest is well formed (its checksum is not a secret): its extents
// cover its page count, all but the real pages in pack 0 (zeros, nothing
// stored), so nothing bounds their number but the 32-bit count.
TEST(HostileStore, RestoreRefusesAManifestDeclaringBillionsOfPages) {
  TempDir dir;
  sqlite3* db = MakeDatabaseWithOneSnapshot(dir);
  const std::string manifest_path = dir / ("app.db-snapshots/snapshots/" + snapshot::FileNameForId(1, ".snap"));
  snapshot::Manifest m;
  ASSERT_TRUE(snapshot::Manifest::Decode(ReadFile(manifest_path), "", &m).ok());
  m.extents.push_back(snapshot::Extent{m.info.page_count + 1, UINT32_MAX - m.info.page_count, 0, 0});
  m.info.page_count = UINT32_MAX;
  WriteBytes(manifest_path, m.Encode());
  ASSERT_EQ("ok", Query(db, "SELECT snapshot_verify(1)")) << "the manifest is meant to pass every check";

  const std::string before = ReadFile(dir / "app.db");
  const std::string r = Query(db, "SELECT snapshot_restore(1)");
  EXPECT_EQ(0u, r.rfind("ERROR: ", 0)) << r;
  EXPECT_NE(std::string::npos, r.find("max_page_count")) << r;
  EXPECT_TRUE(ReadFile(dir / "app.db") == before) << "a refused restore changed the database";
  EXPECT_EQ("2", Query(db, "SELECT count(*) FROM t"));
  EXPECT_EQ("1", Query(db, "SELECT count(*) FROM snapshot_list")) << "a refused restore left its pre-restore snapshot";

  // Nor is it written to a new file: its zero pages would fill the disk.
  const std::string copy = dir / "copy.db";
  const std::string to = Query(db, "SELECT snapshot_restore_to('" + copy + "', 1)");
  EXPECT_EQ(0u, to.rfind("ERROR: ", 0)) << to;
  EXPECT_NE(std::string::npos, to.find("max_page_count")) << to;
  EXPECT_FALSE(std::filesystem::exists(copy));

  // Nor compared: snapshot_diff would list every page number.
  for (const char* sql : {"SELECT count(*) FROM snapshot_diff(1)", "SELECT count(*) FROM snapshot_diff(1, 1)"}) {
    const std::string diff = Query(db, sql);
    EXPECT_EQ(0u, diff.rfind("ERROR: ", 0)) << sql << ": " << diff;
    EXPECT_NE(std::string::npos, diff.find("snapshot_diff compares at most")) << sql << ": " << diff;
  }
  sqlite3_close(db);
}

// A pack whose footer declares a 2 GiB index (a sparse file: its size is
// all the footer's checks can hold it to). Reading it must not end the
// process: an allocation of the declared size fails (std::bad_alloc inside
// snapshot_verify(), which no exception may carry into SQLite: the fence of
// ext/sql_fence.h makes it "out of memory"), or the store reads it without
// one and finds it damaged. Either way the caller gets an SQL error and the
// connection goes on. Run in a child whose address space is limited, so
// that such an allocation fails whatever the machine's memory and overcommit
// policy; sanitizers reserve terabytes of address space, so not under them.
TEST(HostileStore, APackDeclaringAHugeIndexIsAnSqlErrorNotACrash) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "a limit on the address space and a sanitizer's shadow memory do not mix";
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
  GTEST_SKIP() << "a limit on the address space and a sanitizer's shadow memory do not mix";
#endif
#endif
  TempDir dir;
  const std::string db_path = dir / "app.db";
  sqlite3_close(MakeDatabaseWithOneSnapshot(dir));
  const std::string pack_path = dir / ("app.db-snapshots/packs/" + snapshot::FileNameForId(1, ".pack"));
  const std::string header = ReadFile(pack_path).substr(0, snapshot::kPackHeaderSize);
  constexpr uint32_t kIndexEntries = uint32_t(1) << 27;  // 16 bytes each: 2 GiB
  std::string footer;
  snapshot::ByteWriter w(&footer);
  w.U64(snapshot::kPackHeaderSize);  // the index starts right after the header
  w.U32(0);                          // frames
  w.U32(kIndexEntries);              // pages
  w.U64(0);                          // the index's checksum: never reached
  w.U64(snapshot::Checksum64(footer.data(), footer.size()));
  w.Bytes(snapshot::kPackEndMagic, 8);
  ASSERT_EQ(size_t(snapshot::kPackFooterSize), footer.size());
  WriteBytes(pack_path, header);
  const uint64_t size = snapshot::kPackHeaderSize + uint64_t(kIndexEntries) * 16 + footer.size();
  std::filesystem::resize_file(pack_path, size - footer.size());
  {
    FILE* f = std::fopen(pack_path.c_str(), "ab");
    ASSERT_NE(nullptr, f);
    ASSERT_EQ(footer.size(), std::fwrite(footer.data(), 1, footer.size(), f));
    ASSERT_EQ(0, std::fclose(f));
  }
  ASSERT_EQ(int64_t(size), FileSize(pack_path));

  struct Result {
    int rc;
    char message[512];
    bool usable_after;
  };
  Shared<Result> result;
  Children children(db_path);
  const pid_t pid = children.Spawn([&] {
    sqlite3* db = nullptr;
    if (sqlite3_open(db_path.c_str(), &db) != SQLITE_OK) return 2;
    sqlite3_enable_load_extension(db, 1);
    if (sqlite3_load_extension(db, SNAPSHOT_EXTENSION_PATH, "sqlite3_snapshot_init", nullptr) != SQLITE_OK) return 3;
    // Room for everything but the index: 1 GiB more than is mapped now.
    long pages = 0;
    FILE* statm = std::fopen("/proc/self/statm", "r");
    if (statm == nullptr || std::fscanf(statm, "%ld", &pages) != 1) return 4;
    std::fclose(statm);
    const rlim_t limit = rlim_t(pages) * rlim_t(sysconf(_SC_PAGESIZE)) + (rlim_t(1) << 30);
    const struct rlimit lim = {limit, limit};
    if (setrlimit(RLIMIT_AS, &lim) != 0) return 5;
    {
      Stmt verify(db, "SELECT snapshot_verify()");
      result->rc = verify.Step();
      SetMsg(result->message, sizeof result->message, verify.Error());
    }
    int64_t one = 0;
    std::string error;
    result->usable_after = QueryI64(db, "SELECT 1", &one, &error) && one == 1;
    sqlite3_close(db);
    return 0;
  });
  ASSERT_EQ(0, children.Wait(pid)) << "the process did not live through reading the pack";
  std::printf("[ hostile  ] snapshot_verify() of the pack: %s\n", result->message);
  EXPECT_TRUE(result->rc == SQLITE_NOMEM || result->rc == SQLITE_ERROR) << result->rc << ": " << result->message;
  EXPECT_NE("", std::string(result->message));
  EXPECT_TRUE(result->usable_after) << "the connection did not go on after the error";
}

}  // namespace
}  // namespace snapshot_test
