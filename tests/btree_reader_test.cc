// The pieces of snapshot_diff below SQL: BtreeReader (ext/btree_reader.h)
// against SQLite's own account of real database files (dbstat, rowids),
// and on thousands of damaged copies of them; DifferingPages
// (store/page_diff.h) on real stores.
#include <random>
#include <set>
#include <string>
#include <vector>

#include "ext/btree_reader.h"
#include "store/page_diff.h"
#include "store/store.h"
#include "tests/test_util.h"

namespace snapshot_test {
namespace {

using snapshot::BtreeReader;
using snapshot::BtreeShape;
using snapshot::SchemaEntry;
using snapshot::Status;
using snapshot::TableRow;

// A database file's bytes as a PageSource.
class FilePages : public snapshot::PageSource {
 public:
  FilePages(std::string bytes, uint32_t page_size) : bytes_(std::move(bytes)), page_size_(page_size) {}
  uint32_t page_size() const override { return page_size_; }
  uint32_t page_count() const override { return uint32_t(bytes_.size() / page_size_); }
  Status ReadPage(uint32_t pgno, std::string* out) override {
    if (pgno == 0 || pgno > page_count()) return Status::InvalidArgument("no page " + std::to_string(pgno));
    out->assign(bytes_, size_t(pgno - 1) * page_size_, page_size_);
    read_.insert(pgno);
    return Status::OK();
  }
  std::string Describe() const override { return "the test file"; }
  std::string& bytes() { return bytes_; }
  const std::set<uint32_t>& pages_read() const { return read_; }

 private:
  std::string bytes_;
  uint32_t page_size_;
  std::set<uint32_t> read_;
};

std::string MakeDatabase(const TempDir& dir) {
  const std::string path = dir / "t.db";
  sqlite3* db = OpenDb(path, false);
  EXPECT_EQ("", Exec(db,
                     "PRAGMA page_size=1024;"
                     "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"
                     "CREATE INDEX tv ON t(v);"
                     "CREATE TABLE big(id INTEGER PRIMARY KEY, b BLOB);"
                     "CREATE TABLE kv(k TEXT PRIMARY KEY, v) WITHOUT ROWID;"
                     "CREATE VIEW vw AS SELECT * FROM t;"
                     "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 3000) "
                     "INSERT INTO t SELECT x * 3, printf('value %d %s', x, hex(randomblob(12))) FROM c;"
                     "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 10) "
                     "INSERT INTO big SELECT x, randomblob(5000 * x) FROM c;"
                     "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 300) "
                     "INSERT INTO kv SELECT 'key ' || x, x FROM c;"
                     "DELETE FROM t WHERE id % 7 = 0;"));
  sqlite3_close(db);
  return path;
}

TEST(BtreeReader, AgreesWithSqlite) {
  TempDir dir;
  const std::string path = MakeDatabase(dir);
  FilePages pages(ReadFile(path), 1024);
  BtreeReader reader(&pages);
  ASSERT_TRUE(reader.Init().ok());
  std::vector<SchemaEntry> schema;
  ASSERT_TRUE(reader.ReadSchema(&schema).ok());
  sqlite3* db = OpenDb(path, false);
  // Every b-tree sqlite_schema lists (not the view), and sqlite_schema.
  std::set<std::string> names;
  for (const SchemaEntry& e : schema) names.insert(e.type + " " + e.name);
  // (A WITHOUT ROWID table's primary key is the table's own b-tree.)
  EXPECT_EQ((std::set<std::string>{"table sqlite_schema", "table t", "index tv", "table big", "table kv"}), names);
  for (const SchemaEntry& e : schema) {
    SCOPED_TRACE(e.name);
    EXPECT_EQ(e.root, uint32_t(QueryInt(db, e.name == "sqlite_schema" ? "SELECT 1" :
                                        "SELECT rootpage FROM sqlite_schema WHERE name = '" + e.name + "'")));
    BtreeShape shape;
    ASSERT_TRUE(reader.MapTree(e.root, &shape).ok());
    EXPECT_EQ(e.name == "t" || e.name == "big" || e.name == "sqlite_schema", shape.is_table);
    // dbstat's internal and leaf pages of this b-tree.
    const std::string in = "(SELECT pageno FROM dbstat WHERE name = '" + e.name + "' AND pagetype = ";
    EXPECT_EQ(QueryInt(db, "SELECT count(*) FROM " + in + "'internal')"), int64_t(shape.interior.size()));
    EXPECT_EQ(QueryInt(db, "SELECT count(*) FROM " + in + "'leaf')"), int64_t(shape.leaves.size()));
    for (uint32_t p : shape.leaves) {
      EXPECT_EQ(1, QueryInt(db, "SELECT count(*) FROM " + in + "'leaf') WHERE pageno = " + std::to_string(p)));
    }
    if (!shape.is_table) continue;
    std::vector<TableRow> rows;
    std::vector<uint32_t> overflow;
    for (uint32_t leaf : shape.leaves) ASSERT_TRUE(reader.ReadTableLeaf(leaf, &rows, &overflow).ok());
    const std::string table = e.name == "sqlite_schema" ? "sqlite_schema" : e.name;
    EXPECT_EQ(QueryInt(db, "SELECT count(*) FROM " + table), int64_t(rows.size()));
    int64_t sum = 0;
    for (const TableRow& r : rows) sum += r.rowid;
    EXPECT_EQ(QueryInt(db, "SELECT sum(rowid) FROM " + table), sum);
    EXPECT_EQ(QueryInt(db, "SELECT count(*) FROM dbstat WHERE name = '" + e.name + "' AND pagetype = 'overflow'"),
              int64_t(overflow.size()));
  }
  sqlite3_close(db);
}

// Mapping a tree reads its interior pages and one leaf, not every leaf: in
// a snapshot the leaves are most of the frames to decompress, the interior
// pages a few frames of their own.
TEST(BtreeReader, MapTreeReadsInteriorPagesAndOneLeaf) {
  TempDir dir;
  const std::string original = ReadFile(MakeDatabase(dir));
  FilePages all(original, 1024);
  BtreeReader schema_reader(&all);
  ASSERT_TRUE(schema_reader.Init().ok());
  std::vector<SchemaEntry> schema;
  ASSERT_TRUE(schema_reader.ReadSchema(&schema).ok());
  for (const SchemaEntry& e : schema) {
    SCOPED_TRACE(e.name);
    FilePages pages(original, 1024);
    BtreeReader reader(&pages);
    ASSERT_TRUE(reader.Init().ok());
    BtreeShape shape;
    ASSERT_TRUE(reader.MapTree(e.root, &shape).ok());
    std::set<uint32_t> expect(shape.interior.begin(), shape.interior.end());
    expect.insert(1);  // Init's header
    std::set<uint32_t> leaves_read;
    for (uint32_t p : pages.pages_read()) {
      if (!expect.count(p)) leaves_read.insert(p);
    }
    EXPECT_LE(leaves_read.size(), 1u) << shape.leaves.size() << " leaves";
  }
}

// Damaged copies: random bytes, 4-byte page numbers and cell counts written
// over a real database, then every b-tree read. OK or Corruption, never a
// crash or an endless walk (the sanitizer build checks every read).
TEST(BtreeReader, DamagedImagesNeverCrash) {
  TempDir dir;
  const std::string original = ReadFile(MakeDatabase(dir));
  std::mt19937 rng(42);
  int corruptions = 0;
  for (int round = 0; round < 3000; round++) {
    FilePages pages(original, 1024);
    std::string& b = pages.bytes();
    const int edits = 1 + int(rng() % 4);
    for (int i = 0; i < edits; i++) {
      const size_t page = rng() % (b.size() / 1024);
      const size_t off = page * 1024 + (rng() % 3 == 0 ? rng() % 16 : rng() % 1024);
      const uint32_t v = rng() % 2 ? uint32_t(rng()) : uint32_t(rng() % (b.size() / 1024 + 3));
      for (int k = 0; k < 4 && off + k < b.size(); k++) b[off + k] = char(v >> (8 * (3 - k)));
    }
    BtreeReader reader(&pages);
    Status s = reader.Init();
    std::vector<SchemaEntry> schema;
    if (s.ok()) s = reader.ReadSchema(&schema);
    for (const SchemaEntry& e : schema) {
      BtreeShape shape;
      Status m = reader.MapTree(e.root, &shape);
      std::vector<TableRow> rows;
      std::vector<uint32_t> overflow, free;
      for (uint32_t leaf : shape.leaves) {
        if (m.ok() && shape.is_table) m = reader.ReadTableLeaf(leaf, &rows, &overflow);
      }
      if (m.ok()) m = reader.FreelistPages(&free);
      if (!m.ok()) {
        EXPECT_TRUE(m.IsCorruption()) << m.message();
        corruptions++;
      }
    }
    if (!s.ok()) {
      EXPECT_TRUE(s.IsCorruption()) << s.message();
      corruptions++;
    }
  }
  EXPECT_GT(corruptions, 100);
}

TEST(BtreeReader, Varints) {
  uint64_t v = 0;
  const uint8_t one[] = {0x7f};
  EXPECT_EQ(1u, snapshot::GetVarint(one, 1, &v));
  EXPECT_EQ(0x7fu, v);
  const uint8_t two[] = {0x81, 0x00};
  EXPECT_EQ(2u, snapshot::GetVarint(two, 2, &v));
  EXPECT_EQ(0x80u, v);
  const uint8_t nine[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  EXPECT_EQ(9u, snapshot::GetVarint(nine, 9, &v));
  EXPECT_EQ(~uint64_t(0), v);
  EXPECT_EQ(0u, snapshot::GetVarint(nine, 8, &v));  // runs past what is there
  EXPECT_EQ(0u, snapshot::GetVarint(two, 1, &v));
}

// DifferingPages on a real store: by stored hash, whatever pack holds each
// page.
TEST(DifferingPages, ByStoredHash) {
  TempDir dir;
  snapshot::StoreOptions o;
  o.dir = dir / "store";
  o.db_name = "app.db";
  o.create_if_missing = true;
  o.exclusive = true;
  std::unique_ptr<snapshot::Store> store;
  ASSERT_TRUE(snapshot::Store::Open(o, &store).ok());
  auto take = [&](uint32_t page_size, uint32_t count, const std::set<uint32_t>& marked) {
    std::unique_ptr<snapshot::SnapshotBuilder> b;
    EXPECT_TRUE(store->NewSnapshot(page_size, count, nullptr, &b).ok());
    std::string page(page_size, '\0');
    for (uint32_t p = 1; p <= count; p++) {
      page.assign(page_size, char(p));
      if (marked.count(p)) page[7] = 'x';
      EXPECT_TRUE(b->AddPage(p, reinterpret_cast<const uint8_t*>(page.data())).ok());
    }
    uint64_t id = 0;
    EXPECT_TRUE(b->Commit("", &id).ok());
    std::unique_ptr<snapshot::SnapshotImage> image;
    EXPECT_TRUE(store->OpenImage(id, &image).ok());
    return image;
  };
  auto a = take(4096, 50, {});
  auto b = take(4096, 50, {3, 17, 40});
  auto c = take(4096, 53, {3});
  auto d = take(1024, 50, {});
  std::vector<uint32_t> out;
  snapshot::DifferingPages(a.get(), a.get(), &out);
  EXPECT_TRUE(out.empty());
  snapshot::DifferingPages(a.get(), b.get(), &out);
  EXPECT_EQ((std::vector<uint32_t>{3, 17, 40}), out);
  snapshot::DifferingPages(c.get(), a.get(), &out);
  EXPECT_EQ((std::vector<uint32_t>{3, 51, 52, 53}), out);
  snapshot::DifferingPages(a.get(), d.get(), &out);
  EXPECT_EQ(50u, out.size());  // other page size: nothing is shared
}

}  // namespace
}  // namespace snapshot_test
