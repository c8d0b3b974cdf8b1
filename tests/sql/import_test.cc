// snapshot_import: full-copy backups (what cp-based scripts left behind)
// become deduplicated snapshots; what is not a good copy is refused.

#include "tests/sql/sql_test_util.h"

namespace snapshot_test {
namespace {

class SqlImport : public SqlFixture {};

TEST_F(SqlImport, FullCopiesBecomeDeduplicatedSnapshots) {
  std::vector<std::string> copies, digests;
  {
    Conn a(DbPath());
    Fill(a, "t", 2000, 300);
    for (int night = 0; night < 3; night++) {
      Ok(a, "UPDATE t SET a = 'night " + std::to_string(night) + "' WHERE id % 50 = 0");
      const std::string copy = Path("db-backup-" + std::to_string(night) + ".sqlite3");
      WriteFile(copy, ReadFile(DbPath()));  // the old script: cp db.sqlite3 backups/
      copies.push_back(copy);
      Conn c(copy, false);
      digests.push_back(Digest(c));
    }
  }
  ASSERT_EQ(0, ::system(("touch -d '2023-09-26 23:26:01 UTC' '" + copies[0] + "'").c_str()));
  Conn a(DbPath());
  EXPECT_EQ("1", QueryArgs(a, "SELECT snapshot_import(?)", {Arg::Text(copies[0])}));
  EXPECT_EQ("2023-09-26T23:26:01.000Z", Query(a, "SELECT label FROM snapshot_list WHERE id = 1"));
  EXPECT_EQ("2", QueryArgs(a, "SELECT snapshot_import(?, 'second')", {Arg::Text(copies[1])}));
  EXPECT_EQ("3", QueryArgs(a, "SELECT snapshot_import(?)", {Arg::Text(copies[2])}));
  // The first import stores everything; later ones only what changed.
  const int64_t pages = QueryInt(a, "SELECT page_count FROM snapshot_list WHERE id = 1");
  EXPECT_EQ(pages, QueryInt(a, "SELECT pages_new FROM snapshot_list WHERE id = 1"));
  for (int id : {2, 3}) {
    const int64_t added = QueryInt(a, "SELECT pages_new FROM snapshot_list WHERE id = " + std::to_string(id));
    EXPECT_GT(added, 0);
    EXPECT_LT(added * 4, pages) << "import " << id << " stored most pages again";
  }
  // Each imported snapshot is exactly its copy.
  for (int i = 0; i < 3; i++) {
    const std::string out = Path("restored-" + std::to_string(i) + ".db");
    EXPECT_EQ(std::to_string(i + 1), RestoreTo(a, out, i + 1));
    EXPECT_EQ(ReadFile(copies[size_t(i)]), ReadFile(out)) << "copy " << i;
    Conn r(out, false);
    EXPECT_EQ(digests[size_t(i)], Digest(r));
  }
  EXPECT_EQ("ok", Query(a, "SELECT snapshot_verify()"));
}

TEST_F(SqlImport, RefusesWhatIsNotAGoodCopy) {
  Conn a(DbPath());
  Fill(a, "t", 3000, 300);
  EXPECT_EQ(1, Backup(a));
  const std::string copy = Path("copy.sqlite3");
  std::string bytes = ReadFile(DbPath());
  // A torn copy: a stretch of pages from somewhere else (as cp of a file
  // being written can give).
  for (size_t i = 40 * 4096; i < 48 * 4096 && i < bytes.size(); i++) bytes[i] = char(i * 7);
  WriteFile(copy, bytes);
  ExpectRefused(a, "SELECT snapshot_import(?)", {"damaged", "not imported"}, StoreDir(), {Arg::Text(copy)});
  ExpectRefused(a, "SELECT snapshot_import(?)", {"live database"}, StoreDir(), {Arg::Text(DbPath())});
  ExpectRefused(a, "SELECT snapshot_import(?)", {"not a readable file"}, StoreDir(), {Arg::Text(Path("nope"))});
  ExpectRefused(a, "SELECT snapshot_import(?)", {"not a readable file"}, StoreDir(), {Arg::Text(Path(""))});
  WriteFile(Path("text.txt"), std::string(10000, 'x'));
  ExpectRefused(a, "SELECT snapshot_import(?)", {"cannot"}, StoreDir(), {Arg::Text(Path("text.txt"))});
  const std::string good = Path("good.sqlite3");
  WriteFile(good, ReadFile(DbPath()));
  ExpectRefused(a, "SELECT snapshot_import(?, 'a/b')", {"label"}, StoreDir(), {Arg::Text(good)});
  Ok(a, "CREATE TABLE log(x); CREATE TRIGGER tr AFTER INSERT ON log BEGIN SELECT snapshot_import('x'); END;");
  EXPECT_TRUE(Contains(Query(a, "INSERT INTO log VALUES (1)"), "unsafe use of snapshot_import"));
}

}  // namespace
}  // namespace snapshot_test
