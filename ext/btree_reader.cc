#include "ext/btree_reader.h"

#include <algorithm>
#include <set>

#include "store/coding.h"
#include "store/hash.h"
#include "vfs/sqlite_format.h"

namespace snapshot {
namespace {

// b-tree page kinds (the first byte of the page header).
constexpr uint8_t kIndexInterior = 2;
constexpr uint8_t kTableInterior = 5;
constexpr uint8_t kIndexLeaf = 10;
constexpr uint8_t kTableLeaf = 13;

// SQLite refuses deeper trees (BTCURSOR_MAX_DEPTH): deeper means damage.
constexpr int kMaxDepth = 20;

bool IsInterior(uint8_t flag) { return flag == kIndexInterior || flag == kTableInterior; }
bool IsBtreePage(uint8_t flag) {
  return flag == kIndexInterior || flag == kTableInterior || flag == kIndexLeaf || flag == kTableLeaf;
}

uint16_t LoadU16BE(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }

// The bytes of a table-leaf payload of `size` kept on the page itself
// (fileformat2.html, "Cell Payload Overflow Pages").
uint64_t LocalPayload(uint64_t size, uint32_t usable) {
  const uint64_t max_local = usable - 35;
  if (size <= max_local) return size;
  const uint64_t min_local = (uint64_t(usable - 12) * 32 / 255) - 23;
  const uint64_t k = min_local + (size - min_local) % (usable - 4);
  return k <= max_local ? k : min_local;
}

// Decodes the record `rec` into text/integer columns (enough for
// sqlite_schema): text as is, integers in *ints, other types as "".
bool DecodeRecord(const std::string& rec, std::vector<std::string>* text, std::vector<int64_t>* ints) {
  const uint8_t* p = reinterpret_cast<const uint8_t*>(rec.data());
  uint64_t header_size;
  size_t n = GetVarint(p, rec.size(), &header_size);
  if (n == 0 || header_size > rec.size() || header_size < n) return false;
  size_t body = size_t(header_size);
  for (size_t pos = n; pos < header_size;) {
    uint64_t type;
    const size_t m = GetVarint(p + pos, size_t(header_size) - pos, &type);
    if (m == 0) return false;
    pos += m;
    static const size_t kIntBytes[] = {0, 1, 2, 3, 4, 6, 8};
    size_t len = 0;
    std::string t;
    int64_t v = 0;
    if (type <= 6) {
      len = kIntBytes[type];
      if (body + len > rec.size()) return false;
      for (size_t i = 0; i < len; i++) v = int64_t(uint64_t(v) << 8 | p[body + i]);
      if (len > 0 && len < 8 && (p[body] & 0x80)) v -= int64_t(1) << (8 * len);  // sign
    } else if (type == 7) {
      len = 8;
    } else if (type == 8 || type == 9) {
      v = int64_t(type - 8);
    } else if (type >= 12) {
      len = size_t((type - 12) / 2);
      if (body + len > rec.size()) return false;
      if (type & 1) t.assign(rec, body, len);
    } else {
      return false;  // 10 and 11 are reserved
    }
    if (body + len > rec.size()) return false;
    body += len;
    text->push_back(std::move(t));
    ints->push_back(v);
  }
  return true;
}

}  // namespace

size_t GetVarint(const uint8_t* p, size_t avail, uint64_t* out) {
  uint64_t v = 0;
  for (size_t i = 0; i < 9; i++) {
    if (i >= avail) return 0;
    if (i == 8) {
      *out = (v << 8) | p[i];
      return 9;
    }
    v = (v << 7) | (p[i] & 0x7f);
    if ((p[i] & 0x80) == 0) {
      *out = v;
      return i + 1;
    }
  }
  return 0;
}

Status BtreeReader::Damaged(uint32_t pgno, const std::string& what) const {
  return Status::Corruption(source_->Describe() + " is not a sound database: page " + std::to_string(pgno) + " " +
                            what);
}

Status BtreeReader::Init() {
  page_count_ = source_->page_count();
  if (page_count_ == 0) return Status::OK();
  std::string page1;
  SNAPSHOT_RETURN_IF_ERROR(source_->ReadPage(1, &page1));
  const uint8_t* h = reinterpret_cast<const uint8_t*>(page1.data());
  if (page1.size() < kDbHeaderSize || page1.compare(0, kDbHeaderMagicSize, kDbHeaderMagic, kDbHeaderMagicSize) != 0) {
    return Damaged(1, "does not start with a SQLite database header");
  }
  const uint8_t reserved = h[20];
  if (reserved >= source_->page_size() || source_->page_size() - reserved < 480) {
    return Damaged(1, "has a reserved space per page that leaves too few bytes");
  }
  usable_ = source_->page_size() - reserved;
  return Status::OK();
}

Status BtreeReader::LoadPage(uint32_t pgno, Page* out) {
  if (pgno == 0 || pgno > page_count_) {
    return Damaged(pgno, "is referred to but the database has " + std::to_string(page_count_) + " pages");
  }
  out->pgno = pgno;
  SNAPSHOT_RETURN_IF_ERROR(source_->ReadPage(pgno, &out->data));
  out->header = pgno == 1 ? kDbHeaderSize : 0;
  const uint8_t* d = reinterpret_cast<const uint8_t*>(out->data.data()) + out->header;
  out->flag = d[0];
  if (!IsBtreePage(out->flag)) return Damaged(pgno, "is not a b-tree page");
  out->cells = LoadU16BE(d + 3);
  const size_t header_bytes = IsInterior(out->flag) ? 12 : 8;
  if (out->header + header_bytes + 2 * size_t(out->cells) > usable_) return Damaged(pgno, "lists too many cells");
  return Status::OK();
}

Status BtreeReader::CellOffset(const Page& p, uint32_t i, size_t* out) {
  const size_t array = p.header + (IsInterior(p.flag) ? 12 : 8);
  const size_t off = LoadU16BE(reinterpret_cast<const uint8_t*>(p.data.data()) + array + 2 * size_t(i));
  // A cell has at least 4 bytes (the smallest: a child pointer, or two
  // one-byte varints and a one-byte payload).
  if (off < array + 2 * size_t(p.cells) || off + 4 > usable_) return Damaged(p.pgno, "has a cell outside the page");
  *out = off;
  return Status::OK();
}

Status BtreeReader::MapTree(uint32_t root, BtreeShape* out) {
  out->interior.clear();
  out->leaves.clear();
  std::set<uint32_t> seen;
  // Depth-first from the root, one level per step.
  std::vector<uint32_t> level{root};
  Page p;
  for (int depth = 0; !level.empty(); depth++) {
    if (depth > kMaxDepth) return Damaged(root, "roots a b-tree deeper than SQLite allows");
    // In page order: pages near each other share a compressed frame of the
    // store, which is then decompressed once for the whole level.
    std::sort(level.begin(), level.end());
    std::vector<uint32_t> next;
    size_t leaves_before = out->leaves.size();
    // A b-tree is balanced: when the first page of a level below the root
    // is a leaf, every page of it is (a level that mixes leaves and
    // interior pages is damage, found page by page when the first is
    // interior). So the leaves are listed without being read: mapping a
    // tree costs its interior pages, which a snapshot keeps in frames of
    // their own (store/pack.h), not its size.
    if (depth > 0) {
      SNAPSHOT_RETURN_IF_ERROR(LoadPage(level[0], &p));
      if (!IsInterior(p.flag)) {
        if ((p.flag == kTableLeaf) != out->is_table) return Damaged(level[0], "mixes table and index pages in one b-tree");
        for (uint32_t pgno : level) {
          if (pgno == 0 || pgno > page_count_) {
            return Damaged(pgno, "is referred to but the database has " + std::to_string(page_count_) + " pages");
          }
          if (!seen.insert(pgno).second) return Damaged(pgno, "appears twice in one b-tree");
          out->leaves.push_back(pgno);
        }
        break;
      }
    }
    for (uint32_t pgno : level) {
      if (!seen.insert(pgno).second) return Damaged(pgno, "appears twice in one b-tree");
      SNAPSHOT_RETURN_IF_ERROR(LoadPage(pgno, &p));
      const bool table = p.flag == kTableInterior || p.flag == kTableLeaf;
      if (pgno == root) out->is_table = table;
      if (table != out->is_table) return Damaged(pgno, "mixes table and index pages in one b-tree");
      if (!IsInterior(p.flag)) {
        out->leaves.push_back(pgno);
        continue;
      }
      out->interior.push_back(pgno);
      const uint8_t* d = reinterpret_cast<const uint8_t*>(p.data.data());
      for (uint32_t i = 0; i < p.cells; i++) {
        size_t off = 0;
        SNAPSHOT_RETURN_IF_ERROR(CellOffset(p, i, &off));
        next.push_back(LoadU32BE(d + off));
      }
      next.push_back(LoadU32BE(d + p.header + 8));  // the right-most child
    }
    // A b-tree is balanced: all its leaves are at one depth.
    if (out->leaves.size() > leaves_before && !next.empty()) {
      return Damaged(root, "roots a b-tree whose leaves are at different depths");
    }
    level.swap(next);
  }
  return Status::OK();
}

Status BtreeReader::Payload(const Page& p, size_t offset, uint64_t size, std::string* out,
                            std::vector<uint32_t>* overflow) {
  const uint64_t local = LocalPayload(size, usable_);
  if (offset + local > usable_ || (local < size && offset + local + 4 > usable_)) {
    return Damaged(p.pgno, "has a cell that runs past the page");
  }
  out->assign(p.data, offset, size_t(local));
  if (local == size) return Status::OK();
  uint32_t next = LoadU32BE(reinterpret_cast<const uint8_t*>(p.data.data()) + offset + local);
  std::string page;
  // Each overflow page holds usable - 4 bytes: the chain's length follows
  // from the payload's size, which bounds the walk.
  while (out->size() < size) {
    if (next == 0 || next > page_count_) return Damaged(p.pgno, "has an overflow chain that leaves the database");
    if (overflow->size() > page_count_) return Damaged(p.pgno, "has an overflow chain that loops");
    overflow->push_back(next);
    SNAPSHOT_RETURN_IF_ERROR(source_->ReadPage(next, &page));
    const size_t take = size_t(std::min<uint64_t>(size - out->size(), usable_ - 4));
    out->append(page, 4, take);
    next = LoadU32BE(reinterpret_cast<const uint8_t*>(page.data()));
  }
  return Status::OK();
}

Status BtreeReader::ReadTableLeaf(uint32_t pgno, std::vector<TableRow>* rows, std::vector<uint32_t>* overflow) {
  Page p;
  SNAPSHOT_RETURN_IF_ERROR(LoadPage(pgno, &p));
  if (p.flag != kTableLeaf) return Damaged(pgno, "is not a table leaf page");
  const uint8_t* d = reinterpret_cast<const uint8_t*>(p.data.data());
  std::string payload;
  for (uint32_t i = 0; i < p.cells; i++) {
    size_t off = 0;
    SNAPSHOT_RETURN_IF_ERROR(CellOffset(p, i, &off));
    uint64_t size, rowid;
    const size_t n1 = GetVarint(d + off, usable_ - off, &size);
    const size_t n2 = n1 == 0 ? 0 : GetVarint(d + off + n1, usable_ - off - n1, &rowid);
    if (n2 == 0) return Damaged(pgno, "has a cell that runs past the page");
    if (size > (uint64_t(usable_) - 4) * page_count_ + usable_) return Damaged(pgno, "has a cell larger than the database");
    SNAPSHOT_RETURN_IF_ERROR(Payload(p, off + n1 + n2, size, &payload, overflow));
    rows->push_back(TableRow{int64_t(rowid), Checksum64(payload.data(), payload.size())});
  }
  return Status::OK();
}

Status BtreeReader::ReadSchema(std::vector<SchemaEntry>* out) {
  out->clear();
  if (page_count_ == 0) return Status::OK();
  out->push_back(SchemaEntry{"table", "sqlite_schema", "sqlite_schema", 1});
  BtreeShape shape;
  SNAPSHOT_RETURN_IF_ERROR(MapTree(1, &shape));
  if (!shape.is_table) return Damaged(1, "is not the root of a table b-tree");
  std::vector<uint32_t> ignored;
  std::string payload;
  for (uint32_t leaf : shape.leaves) {
    Page p;
    SNAPSHOT_RETURN_IF_ERROR(LoadPage(leaf, &p));
    if (p.flag != kTableLeaf) return Damaged(leaf, "is not a table leaf page");
    const uint8_t* d = reinterpret_cast<const uint8_t*>(p.data.data());
    for (uint32_t i = 0; i < p.cells; i++) {
      size_t off = 0;
      SNAPSHOT_RETURN_IF_ERROR(CellOffset(p, i, &off));
      uint64_t size, rowid;
      const size_t n1 = GetVarint(d + off, usable_ - off, &size);
      const size_t n2 = n1 == 0 ? 0 : GetVarint(d + off + n1, usable_ - off - n1, &rowid);
      if (n2 == 0 || size > (uint64_t(usable_) - 4) * page_count_ + usable_) {
        return Damaged(leaf, "has a damaged sqlite_schema row");
      }
      SNAPSHOT_RETURN_IF_ERROR(Payload(p, off + n1 + n2, size, &payload, &ignored));
      std::vector<std::string> text;
      std::vector<int64_t> ints;
      if (!DecodeRecord(payload, &text, &ints) || text.size() < 4) {
        return Damaged(leaf, "has a damaged sqlite_schema row");
      }
      if (ints[3] <= 0) continue;  // a view, trigger or virtual table: no b-tree
      if (uint64_t(ints[3]) > page_count_) return Damaged(leaf, "names a root page past the end of the database");
      out->push_back(SchemaEntry{text[0], text[1], text[2], uint32_t(ints[3])});
    }
  }
  return Status::OK();
}

Status BtreeReader::FreelistPages(std::vector<uint32_t>* out) {
  out->clear();
  if (page_count_ == 0) return Status::OK();
  std::string page;
  SNAPSHOT_RETURN_IF_ERROR(source_->ReadPage(1, &page));
  uint32_t trunk = LoadU32BE(reinterpret_cast<const uint8_t*>(page.data()) + kDbHeaderFreelistTrunkOffset);
  while (trunk != 0) {
    if (trunk > page_count_ || out->size() > page_count_) return Damaged(trunk, "is a freelist page out of place");
    out->push_back(trunk);
    SNAPSHOT_RETURN_IF_ERROR(source_->ReadPage(trunk, &page));
    const uint8_t* d = reinterpret_cast<const uint8_t*>(page.data());
    const uint32_t n = LoadU32BE(d + 4);
    if (n > (usable_ - 8) / 4) return Damaged(trunk, "is a freelist trunk page listing too many pages");
    for (uint32_t i = 0; i < n; i++) out->push_back(LoadU32BE(d + 8 + 4 * i));
    trunk = LoadU32BE(d);
  }
  return Status::OK();
}

}  // namespace snapshot
