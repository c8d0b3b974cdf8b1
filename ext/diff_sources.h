// The two kinds of database image snapshot_diff compares, as PageSources
// (ext/btree_reader.h): a stored snapshot, and the live database read at
// one consistent point.
//
// The live database has no stored hashes, so LivePages reads every page of
// it once, through SQLite's backup API (in both journal modes the pages of
// one commit, WAL frames included) into a private write-only VFS that
// hashes each page with the store's key and compares it with the base
// snapshot's stored hash. It keeps in memory only the pages that differ
// (and page 1); every other page is the base snapshot's, and is read from
// it when asked for. Memory follows the size of the change, not of the
// database.
#pragma once

#include "vfs/sqlite_api.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ext/btree_reader.h"
#include "store/status.h"
#include "store/store.h"

namespace snapshot {

class SnapshotPages : public PageSource {
 public:
  explicit SnapshotPages(SnapshotImage* image) : image_(image) {}
  uint32_t page_size() const override { return image_->info().page_size; }
  uint32_t page_count() const override { return image_->info().page_count; }
  Status ReadPage(uint32_t pgno, std::string* out) override;
  std::string Describe() const override { return "snapshot " + std::to_string(image_->info().id); }

 private:
  SnapshotImage* image_;
};

class LivePages : public PageSource {
 public:
  // Reads the committed state of `schema` of `db`, which the caller keeps
  // still with a read transaction, comparing it with `base` (of `store`).
  // An interrupt of `caller` stops it.
  static Status Capture(sqlite3* db, const char* schema, Store* store, SnapshotImage* base, sqlite3* caller,
                        std::unique_ptr<LivePages>* out);

  uint32_t page_size() const override { return page_size_; }
  uint32_t page_count() const override { return page_count_; }
  Status ReadPage(uint32_t pgno, std::string* out) override;
  std::string Describe() const override { return "the live database"; }
  // The pages (ascending) whose content differs from the base snapshot's,
  // including those only one of the two has.
  const std::vector<uint32_t>& differing() const { return differing_; }

 private:
  SnapshotImage* base_ = nullptr;
  uint32_t page_size_ = 0;
  uint32_t page_count_ = 0;
  std::map<uint32_t, std::string> pages_;  // differing pages, and page 1
  std::vector<uint32_t> differing_;
};

}  // namespace snapshot
