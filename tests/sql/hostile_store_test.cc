// A hostile store, through the SQL functions: files that pass every check
// of their own format but declare sizes meant to exhaust memory or disk. A
// user meets them as a clear SQL error; the database is left as it was and
// the process goes on.
#include <malloc.h>
#include <signal.h>
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

// Sanitizers reserve terabytes of address space: a limit on it (below)
// and their shadow memory do not mix.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kUnderSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
constexpr bool kUnderSanitizer = true;
#else
constexpr bool kUnderSanitizer = false;
#endif
#else
constexpr bool kUnderSanitizer = false;
#endif

// Limits this process's address space to what is mapped now and `headroom`
// bytes more (the soft limit only, so that it can be lifted again), so
// that a larger allocation fails whatever the machine's memory and
// overcommit policy. Keeps the limit it replaces in *old_limit; false when
// it cannot set one.
bool LimitAddressSpace(rlim_t headroom, struct rlimit* old_limit) {
  long pages = 0;
  FILE* statm = std::fopen("/proc/self/statm", "r");
  if (statm == nullptr) return false;
  const bool read = std::fscanf(statm, "%ld", &pages) == 1;
  std::fclose(statm);
  if (!read || getrlimit(RLIMIT_AS, old_limit) != 0) return false;
  struct rlimit lim = *old_limit;
  lim.rlim_cur = rlim_t(pages) * rlim_t(sysconf(_SC_PAGESIZE)) + headroom;
  return setrlimit(RLIMIT_AS, &lim) == 0;
}

// Snapshot 1's manifest, rewritten to declare `page_count` pages: the real
// ones, then pages in pack 0 (zeros, nothing stored). It is well formed (its
// checksum is not a secret), so it passes every check.
void DeclarePages(const TempDir& dir, uint32_t page_count) {
  const std::string manifest_path = dir / ("app.db-snapshots/snapshots/" + snapshot::FileNameForId(1, ".snap"));
  snapshot::Manifest m;
  ASSERT_TRUE(snapshot::Manifest::Decode(ReadFile(manifest_path), "", &m).ok());
  m.extents.push_back(snapshot::Extent{m.info.page_count + 1, page_count - m.info.page_count, 0, 0});
  m.info.page_count = page_count;
  ASSERT_NO_FATAL_FAILURE(WriteBytes(manifest_path, m.Encode()));
}

// The manifest is well formed (its checksum is not a secret): its extents
// cover its page count, all but the real pages in pack 0 (zeros, nothing
// stored), so nothing bounds their number but the 32-bit count.
TEST(HostileStore, RestoreRefusesAManifestDeclaringBillionsOfPages) {
  TempDir dir;
  sqlite3* db = MakeDatabaseWithOneSnapshot(dir);
  ASSERT_NO_FATAL_FAILURE(DeclarePages(dir, UINT32_MAX));
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
  if (kUnderSanitizer) GTEST_SKIP() << "a limit on the address space and a sanitizer's shadow memory do not mix";
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
    struct rlimit unlimited;
    if (!LimitAddressSpace(rlim_t(1) << 30, &unlimited)) return 5;
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

// A restore that fails with an exception half way (here std::bad_alloc: the
// rollback-journal restore lists the pages that differ, millions of them,
// and the address space runs out) still ends as every failed restore does:
// the database is as it was and unlocked for other writers, and the
// pre-restore snapshot it recorded is taken back.
TEST(HostileStore, ARestoreThatRunsOutOfMemoryChangesNothing) {
  if (kUnderSanitizer) GTEST_SKIP() << "a limit on the address space and a sanitizer's shadow memory do not mix";
  TempDir dir;
  const std::string db_path = dir / "app.db";
  sqlite3_close(MakeDatabaseWithOneSnapshot(dir));
  // 15 Mi pages: a list of 4 bytes a page outgrows 24 MiB of room long
  // before its end (and stays under the 16 Mi pages the journaled restore
  // lists at most).
  ASSERT_NO_FATAL_FAILURE(DeclarePages(dir, uint32_t(15) << 20));
  const std::string before = ReadFile(db_path);

  struct Result {
    int rc;
    char message[512];
    int other_writer_rc;
    int64_t snapshots, rows;
  };
  Shared<Result> result;
  Children children(db_path);
  const pid_t pid = children.Spawn([&] {
    std::string error;
    sqlite3* db = OpenConn(db_path, true, &error);
    if (db == nullptr) return 2;
    // Should the list fit after all, the restore stops at the file size
    // limit instead of writing gigabytes of zeros.
    signal(SIGXFSZ, SIG_IGN);
    const struct rlimit file_limit = {rlim_t(64) << 20, rlim_t(64) << 20};
    if (setrlimit(RLIMIT_FSIZE, &file_limit) != 0) return 3;
    {
      Stmt restore(db, "SELECT snapshot_restore(1)");
      struct rlimit unlimited;
      malloc_trim(0);  // so that memory freed earlier is not room the limit does not count
      if (!LimitAddressSpace(rlim_t(24) << 20, &unlimited)) return 5;
      result->rc = restore.Step();
      if (setrlimit(RLIMIT_AS, &unlimited) != 0) return 6;
      SetMsg(result->message, sizeof result->message, restore.Error());
    }
    // Another connection can write at once: the restore let go of the lock.
    sqlite3* other = OpenConn(db_path, false, &error);
    if (other == nullptr) return 7;
    result->other_writer_rc = ExecRc(other, "BEGIN IMMEDIATE; COMMIT");
    sqlite3_close(other);
    if (!QueryI64(db, "SELECT count(*) FROM snapshot_list", &result->snapshots, &error)) return 8;
    if (!QueryI64(db, "SELECT count(*) FROM t", &result->rows, &error)) return 9;
    sqlite3_close(db);
    return 0;
  });
  ASSERT_EQ(0, children.Wait(pid)) << "the process did not live through the restore";
  std::printf("[ hostile  ] snapshot_restore() out of memory: %s\n", result->message);
  EXPECT_EQ(SQLITE_NOMEM, result->rc) << result->message;
  EXPECT_EQ(SQLITE_OK, result->other_writer_rc) << "the failed restore kept the database's write lock";
  EXPECT_EQ(1, result->snapshots) << "the failed restore left its pre-restore snapshot";
  EXPECT_EQ(2, result->rows);
  EXPECT_TRUE(ReadFile(db_path) == before) << "the failed restore changed the database";
}

}  // namespace
}  // namespace snapshot_test
