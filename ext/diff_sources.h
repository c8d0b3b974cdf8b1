// The two kinds of database image snapshot_diff compares, as PageSources
// (ext/btree_reader.h): a stored snapshot, and the live database read at
// one consistent point.
//
// The live database has no stored hashes. LivePages hashes the live pages
// it reads with the store's key and compares each with the base snapshot's
// stored hash, keeping in memory only the pages that differ (and page 1);
// every other page is read from a snapshot when asked for. Memory follows
// the size of the change, not of the database. The live pages come one of
// two ways:
//  - Tracked: when the database's tracking is trusted (snapshot_tracking()
//    says "tracked"), the live image is its tracked base snapshot T with
//    the pages marked since T read from the live files
//    (ext/tracked_capture.h, TrackedLiveImage). The pages that differ from
//    the base are then the ones T differs in (page maps and hashes, as
//    between two snapshots) among those not read, and the read ones whose
//    hash differs. Work and the read lock follow the change.
//  - Capture: every page, through SQLite's backup API (in both journal
//    modes the pages of one commit, WAL frames included) into a private
//    write-only VFS. Work follows the database's size, and in rollback mode
//    the caller's read lock, which writers wait for, lasts as long.
#pragma once

#include "vfs/sqlite_api.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ext/btree_reader.h"
#include "ext/tracked_capture.h"
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
  // The same from a pinned tracked image and its base snapshot `tracked`
  // (TrackedLiveImage::OpenBase), reading only live->pages(). `poll` is
  // called between pages; its error (an interrupt) stops it.
  static Status FromTracked(TrackedLiveImage* live, std::unique_ptr<SnapshotImage> tracked, Store* store,
                            SnapshotImage* base, const std::function<Status()>& poll, std::unique_ptr<LivePages>* out);

  uint32_t page_size() const override { return page_size_; }
  uint32_t page_count() const override { return page_count_; }
  Status ReadPage(uint32_t pgno, std::string* out) override;
  std::string Describe() const override { return "the live database"; }
  // The pages (ascending) whose content differs from the base snapshot's,
  // including those only one of the two has.
  const std::vector<uint32_t>& differing() const { return differing_; }

 private:
  LivePages(SnapshotImage* base, uint32_t page_size, uint32_t page_count)
      : base_(base), page_size_(page_size), page_count_(page_count) {}
  // A live page as read: kept if it differs from the base's.
  void Receive(Store* store, uint32_t pgno, const uint8_t* page);
  // Once every page is in: drops the kept pages past the live end and lists
  // the differing ones, given those that differ among the pages not read
  // (`unread_differing`, ascending; empty when every page was read).
  void ListDiffering(const std::vector<uint32_t>& unread_differing);

  SnapshotImage* base_ = nullptr;
  uint32_t page_size_ = 0;
  uint32_t page_count_ = 0;
  std::map<uint32_t, std::string> pages_;  // differing pages read, and page 1
  // Tracked: the live image's source of the pages not read (null: `base_`,
  // or every page was read), and which were read.
  std::unique_ptr<SnapshotImage> tracked_;
  std::vector<uint32_t> read_;  // ascending
  std::vector<uint32_t> differing_;
};

}  // namespace snapshot
