// BtreeReader: reads SQLite's b-tree file format straight from page images
// (https://www.sqlite.org/fileformat2.html), without the SQLite library, so
// that two images of one database can be compared page by page: which
// b-tree a page belongs to, and which rows a table leaf page holds.
//
// Pages come from a PageSource: a stored snapshot, or the pages of the live
// database. Everything read is checked before it is used (cell offsets,
// child page numbers, overflow chains, the depth of a tree and cycles in
// it), so a damaged or hostile image yields Corruption naming the image and
// the page, never a crash or an endless walk.
//
// Typical use:
//   BtreeReader r(&source);
//   SNAPSHOT_RETURN_IF_ERROR(r.Init());
//   std::vector<SchemaEntry> schema;
//   r.ReadSchema(&schema);
//   BtreeShape shape;
//   r.MapTree(schema[0].root, &shape);            // interior pages and one leaf
//   std::vector<TableRow> rows;
//   r.ReadTableLeaf(shape.leaves[0], &rows, &overflow_pages);
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "store/status.h"

namespace snapshot {

// Where a BtreeReader gets pages from.
class PageSource {
 public:
  virtual ~PageSource() = default;
  virtual uint32_t page_size() const = 0;
  virtual uint32_t page_count() const = 0;
  // Copies page pgno (1..page_count) into *out (page_size bytes).
  virtual Status ReadPage(uint32_t pgno, std::string* out) = 0;
  // Names the image in error messages: "snapshot 17", "the live database".
  virtual std::string Describe() const = 0;
};

// One row of sqlite_schema that owns a b-tree (rootpage > 0).
struct SchemaEntry {
  std::string type;  // "table" or "index"
  std::string name;
  std::string tbl_name;
  uint32_t root = 0;
};

struct BtreeShape {
  bool is_table = false;  // a table b-tree (rowid table); else an index b-tree
                          // (an index or a WITHOUT ROWID table)
  std::vector<uint32_t> interior;  // the root too, when it is interior
  std::vector<uint32_t> leaves;
};

struct TableRow {
  int64_t rowid = 0;
  uint64_t checksum = 0;  // Checksum64 of the whole record, overflow included
};

class BtreeReader {
 public:
  explicit BtreeReader(PageSource* source) : source_(source) {}

  // Reads the database header. An image of zero pages is an empty database.
  Status Init();
  uint32_t usable_size() const { return usable_; }

  // Every table and index with a b-tree, as sqlite_schema lists them, and
  // sqlite_schema itself (root page 1, named "sqlite_schema").
  Status ReadSchema(std::vector<SchemaEntry>* out);

  // The pages of the b-tree rooted at `root`, reading its interior pages
  // and one leaf: the leaves are listed, not read (a leaf's kind is checked
  // when it is read).
  Status MapTree(uint32_t root, BtreeShape* out);

  // The rows of table leaf page `pgno`; the overflow pages their records
  // use are appended to *overflow.
  Status ReadTableLeaf(uint32_t pgno, std::vector<TableRow>* rows, std::vector<uint32_t>* overflow);

  // The freelist's trunk and leaf pages.
  Status FreelistPages(std::vector<uint32_t>* out);

 private:
  struct Page {
    uint32_t pgno = 0;
    std::string data;
    size_t header = 0;  // offset of the b-tree page header (100 on page 1)
    uint8_t flag = 0;
    uint32_t cells = 0;
  };
  Status LoadPage(uint32_t pgno, Page* out);
  Status CellOffset(const Page& p, uint32_t i, size_t* out);
  // The whole payload of the cell whose payload of `size` bytes starts at
  // `offset` of page `p`, reading its overflow chain.
  Status Payload(const Page& p, size_t offset, uint64_t size, std::string* out, std::vector<uint32_t>* overflow);
  Status Damaged(uint32_t pgno, const std::string& what) const;

  PageSource* source_;
  uint32_t usable_ = 0;
  uint32_t page_count_ = 0;
};

// Reads a SQLite varint at p (at most `avail` bytes); returns its length,
// 0 when it runs past `avail`.
size_t GetVarint(const uint8_t* p, size_t avail, uint64_t* out);

}  // namespace snapshot
