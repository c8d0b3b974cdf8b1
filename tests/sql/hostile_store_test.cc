// A hostile store, through the SQL functions: files that pass every check
// of their own format but declare sizes meant to exhaust memory or disk. A
// user meets them as a clear SQL error; the database is left as it was and
// the process goes on.
#include <string>

#include "store/format.h"
#include "store/manifest.h"
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
  sqlite3_close(db);
}

}  // namespace
}  // namespace snapshot_test
