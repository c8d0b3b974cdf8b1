#include "ext/image_diff.h"

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "vfs/sqlite_format.h"

namespace snapshot {
namespace {

// The second image's pages, taken from the first image where they are the
// same (not in D): both images then share one cache of decompressed pages,
// and a page both need is decompressed once. Page 1 is always the image's
// own (its header, which the freelist starts from, may differ).
class SharedPages : public PageSource {
 public:
  SharedPages(PageSource* own, PageSource* other, const std::set<uint32_t>* differing)
      : own_(own), other_(other), differing_(differing) {}
  uint32_t page_size() const override { return own_->page_size(); }
  uint32_t page_count() const override { return own_->page_count(); }
  Status ReadPage(uint32_t pgno, std::string* out) override {
    const bool same = pgno != 1 && pgno <= other_->page_count() && other_->page_size() == own_->page_size() &&
                      pgno <= own_->page_count() && differing_->count(pgno) == 0;
    return same ? other_->ReadPage(pgno, out) : own_->ReadPage(pgno, out);
  }
  std::string Describe() const override { return own_->Describe(); }

 private:
  PageSource* own_;
  PageSource* other_;
  const std::set<uint32_t>* differing_;
};

// One image and what is known of it.
struct Image {
  explicit Image(PageSource* s) : source(s), reader(s) {}
  PageSource* source;
  BtreeReader reader;
  std::vector<SchemaEntry> schema;
  std::unordered_map<uint32_t, size_t> owner;  // b-tree page -> tree
  std::unordered_set<uint32_t> overflow;       // overflow pages of the leaves read
};

// One table or index, in either image or both.
struct Tree {
  TreeDiff diff;
  uint32_t root[2] = {0, 0};
  BtreeShape shape[2];
  std::unordered_set<uint32_t> leaves_read[2];
  std::map<int64_t, uint64_t> rows[2];  // rowid -> record checksum, from the leaves read
};

class Differ {
 public:
  Differ(PageSource* a, PageSource* b, const std::vector<uint32_t>& d, const std::function<Status()>& poll)
      : differing_(d.begin(), d.end()), shared_b_(b, a, &differing_), images_{Image(a), Image(&shared_b_)}, poll_(poll) {}

  Status Run(std::vector<TreeDiff>* out) {
    for (Image& im : images_) {
      SNAPSHOT_RETURN_IF_ERROR(im.reader.Init());
      SNAPSHOT_RETURN_IF_ERROR(im.reader.ReadSchema(&im.schema));
    }
    SNAPSHOT_RETURN_IF_ERROR(ComparePage1());
    CollectTrees();
    for (size_t t = 0; t < trees_.size(); t++) {
      for (int s = 0; s < 2; s++) SNAPSHOT_RETURN_IF_ERROR(MapTree(t, s));
    }
    for (Tree& t : trees_) SNAPSHOT_RETURN_IF_ERROR(ReadChangedLeaves(&t));
    SNAPSHOT_RETURN_IF_ERROR(FindRewrittenOverflow());
    for (Tree& t : trees_) {
      CountPages(&t);
      CountRows(&t);
      TreeDiff& d = t.diff;
      d.status = t.root[0] == 0 ? "added" : t.root[1] == 0 ? "dropped" : d.pages_changed > 0 ? "changed" : "unchanged";
      out->push_back(d);
    }
    return Status::OK();
  }

 private:
  bool Differs(uint32_t p) const { return differing_.count(p) != 0; }

  Status ComparePage1() {
    differing_.erase(1);
    if (images_[0].source->page_count() == 0 || images_[1].source->page_count() == 0) {
      if (images_[0].source->page_count() != images_[1].source->page_count()) differing_.insert(1);
      return Status::OK();
    }
    std::string p0, p1;
    SNAPSHOT_RETURN_IF_ERROR(images_[0].source->ReadPage(1, &p0));
    SNAPSHOT_RETURN_IF_ERROR(images_[1].source->ReadPage(1, &p1));
    if (p0.size() != p1.size() || p0.compare(kDbHeaderSize, std::string::npos, p1, kDbHeaderSize, std::string::npos)) {
      differing_.insert(1);
    }
    return Status::OK();
  }

  // The union of both schemas, matched by type and name; in the order of
  // the first image, then the tables and indexes only the second has.
  void CollectTrees() {
    std::map<std::pair<std::string, std::string>, size_t> by_name;
    for (int s = 0; s < 2; s++) {
      for (const SchemaEntry& e : images_[s].schema) {
        auto key = std::make_pair(e.type, e.name);
        auto it = by_name.find(key);
        if (it == by_name.end()) {
          it = by_name.emplace(key, trees_.size()).first;
          trees_.emplace_back();
          trees_.back().diff.name = e.name;
          trees_.back().diff.type = e.type;
          trees_.back().diff.tbl_name = e.tbl_name;
        }
        trees_[it->second].root[s] = e.root;
      }
    }
  }

  Status MapTree(size_t t, int s) {
    Tree& tree = trees_[t];
    if (tree.root[s] == 0) return Status::OK();
    SNAPSHOT_RETURN_IF_ERROR(poll_());
    SNAPSHOT_RETURN_IF_ERROR(images_[s].reader.MapTree(tree.root[s], &tree.shape[s]));
    for (const auto* pages : {&tree.shape[s].interior, &tree.shape[s].leaves}) {
      for (uint32_t p : *pages) {
        if (!images_[s].owner.emplace(p, t).second) {
          return Status::Corruption(images_[s].source->Describe() + " is not a sound database: page " +
                                    std::to_string(p) + " belongs to two b-trees");
        }
      }
    }
    return Status::OK();
  }

  // A rowid table in each image that has it.
  static bool RowidTable(const Tree& t) {
    for (int s = 0; s < 2; s++) {
      if (t.root[s] != 0 && !t.shape[s].is_table) return false;
    }
    return t.diff.type == "table";
  }

  Status ReadLeaf(Tree* t, int s, uint32_t leaf) {
    if (!t->leaves_read[s].insert(leaf).second) return Status::OK();
    SNAPSHOT_RETURN_IF_ERROR(poll_());
    std::vector<TableRow> rows;
    std::vector<uint32_t> overflow;
    SNAPSHOT_RETURN_IF_ERROR(images_[s].reader.ReadTableLeaf(leaf, &rows, &overflow));
    for (const TableRow& r : rows) t->rows[s][r.rowid] = r.checksum;
    for (uint32_t p : overflow) {
      images_[s].overflow.insert(p);
      if (Differs(p)) overflow_changed_[p] = t;
    }
    return Status::OK();
  }

  // Reads, in each image, the table's leaves that changed or that are its
  // leaves in that image only.
  Status ReadChangedLeaves(Tree* t) {
    if (!RowidTable(*t)) return Status::OK();
    std::unordered_set<uint32_t> leaves[2];
    for (int s = 0; s < 2; s++) leaves[s].insert(t->shape[s].leaves.begin(), t->shape[s].leaves.end());
    for (int s = 0; s < 2; s++) {
      for (uint32_t leaf : t->shape[s].leaves) {
        if (Differs(leaf) || leaves[1 - s].count(leaf) == 0) SNAPSHOT_RETURN_IF_ERROR(ReadLeaf(t, s, leaf));
      }
    }
    return Status::OK();
  }

  // Pages of D that no b-tree, freelist or overflow chain read so far
  // claims can only be overflow pages of records on unchanged leaves,
  // rewritten in place. Reads those leaves (in both images) to find them.
  Status FindRewrittenOverflow() {
    std::vector<uint32_t> unclaimed;
    std::unordered_set<uint32_t> free;
    for (Image& im : images_) {
      std::vector<uint32_t> pages;
      SNAPSHOT_RETURN_IF_ERROR(im.reader.FreelistPages(&pages));
      free.insert(pages.begin(), pages.end());
    }
    for (uint32_t p : differing_) {
      bool claimed = free.count(p) || overflow_changed_.count(p);
      for (const Image& im : images_) claimed = claimed || im.owner.count(p);
      if (!claimed) unclaimed.push_back(p);
    }
    if (unclaimed.empty()) return Status::OK();
    for (Tree& t : trees_) {
      if (!RowidTable(t) || t.root[0] == 0 || t.root[1] == 0) continue;
      for (uint32_t leaf : t.shape[1].leaves) {
        if (t.leaves_read[1].count(leaf)) continue;
        // Unchanged and this table's in both images (else it was read):
        // read it in both, so that its rows are compared too.
        SNAPSHOT_RETURN_IF_ERROR(ReadLeaf(&t, 0, leaf));
        SNAPSHOT_RETURN_IF_ERROR(ReadLeaf(&t, 1, leaf));
      }
    }
    return Status::OK();
  }

  void CountPages(Tree* t) {
    std::unordered_set<uint32_t> pages[2];
    for (int s = 0; s < 2; s++) {
      pages[s].insert(t->shape[s].interior.begin(), t->shape[s].interior.end());
      pages[s].insert(t->shape[s].leaves.begin(), t->shape[s].leaves.end());
    }
    uint64_t n = 0;
    for (int s = 0; s < 2; s++) {
      for (uint32_t p : pages[s]) {
        const bool in_other = pages[1 - s].count(p) != 0;
        if (s == 1 && in_other) continue;  // counted from the first image
        if (Differs(p) || !in_other) n++;
      }
    }
    for (const auto& entry : overflow_changed_) {
      if (entry.second == t && !pages[0].count(entry.first) && !pages[1].count(entry.first)) n++;
    }
    t->diff.pages_changed = n;
  }

  static void CountRows(Tree* t) {
    if (!RowidTable(*t)) return;
    TreeDiff& d = t->diff;
    d.rows_counted = true;
    const auto& a = t->rows[0];
    const auto& b = t->rows[1];
    for (const auto& row : a) {
      auto it = b.find(row.first);
      if (it == b.end()) {
        d.rows_deleted++;
      } else if (it->second != row.second) {
        d.rows_changed++;
      }
    }
    for (const auto& row : b) {
      if (a.count(row.first) == 0) d.rows_added++;
    }
  }

  std::set<uint32_t> differing_;  // D; page 1 is decided by ComparePage1
  SharedPages shared_b_;
  Image images_[2];
  std::function<Status()> poll_;
  std::vector<Tree> trees_;
  std::unordered_map<uint32_t, Tree*> overflow_changed_;  // changed overflow page -> its table
};

}  // namespace

Status DiffImages(PageSource* a, PageSource* b, const std::vector<uint32_t>& differing,
                  const std::function<Status()>& poll, std::vector<TreeDiff>* out) {
  out->clear();
  Differ d(a, b, differing, poll);
  return d.Run(out);
}

}  // namespace snapshot
