// DiffImages: what changed between two images of one database, per table
// and index, reading only the pages that differ and the interior pages of
// each b-tree (SQLite-free; the pages come through PageSource).
//
// Given D, the pages whose content differs (from the store's page hashes:
// store/page_diff.h, or ext/live_image.h for the live database):
//  - each image's b-trees are mapped from sqlite_schema's root pages through
//    their interior pages, so every leaf is known without being read;
//  - a table or index has as many pages changed as it has pages that are in
//    D or that are its pages in one image only (a page that left it);
//  - for a rowid table, only its leaves that changed or that are its leaves
//    in one image only are read, in both images: an unchanged leaf that is
//    the table's in both holds the same rows in both, so a rowid found on
//    the read leaves of one image only was added or deleted, and a rowid on
//    both is changed when its whole record (overflow included) differs;
//  - a row rewritten in place in its overflow pages alone (same size)
//    leaves its leaf unchanged: pages of D that no b-tree or freelist claims
//    are looked for in the overflow chains of the unchanged leaves, which
//    are read only then.
// Page 1 is compared from byte 100: the header's change counter and
// version fields change at every commit and are no table's content.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ext/btree_reader.h"
#include "store/status.h"

namespace snapshot {

struct TreeDiff {
  std::string name;
  std::string type;      // "table" or "index"
  std::string tbl_name;  // the table an index belongs to
  std::string status;    // "added", "dropped", "changed" or "unchanged"
  uint64_t pages_changed = 0;
  bool rows_counted = false;  // a rowid table (in each image that has it)
  uint64_t rows_added = 0, rows_deleted = 0, rows_changed = 0;
};

// `differing`: the pages (ascending) whose content differs between `a` and
// `b`, including the pages only one of them has. `poll` is called often; its
// error (an interrupt) stops the comparison.
Status DiffImages(PageSource* a, PageSource* b, const std::vector<uint32_t>& differing,
                  const std::function<Status()>& poll, std::vector<TreeDiff>* out);

}  // namespace snapshot
