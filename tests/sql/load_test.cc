// Loading the extension once per process: later connections have the
// functions too.

#include "tests/sql/sql_test_util.h"

namespace snapshot_test {
namespace {

class SqlAutoExtension : public SqlFixture {};

TEST_F(SqlAutoExtension, LaterConnectionsHaveTheFunctions) {
  std::string version;
  {
    Conn loader(DbPath());
    version = Query(loader, "SELECT snapshot_version()");
    EXPECT_FALSE(IsError(version));
    EXPECT_FALSE(version.empty());
  }  // the loading connection is closed: the library stays loaded
  Conn plain(DbPath(), /*load=*/false);
  EXPECT_EQ(version, Query(plain, "SELECT snapshot_version()"));
  Fill(plain, "t", 20);
  EXPECT_EQ(1, Backup(plain, "auto"));
  EXPECT_EQ(1, SnapshotCount(plain));
  sqlite3* v2 = nullptr;
  ASSERT_EQ(SQLITE_OK, sqlite3_open_v2(Path("other.db").c_str(), &v2, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr));
  EXPECT_EQ(version, Query(v2, "SELECT snapshot_version()"));
  sqlite3_close(v2);
}

}  // namespace
}  // namespace snapshot_test
