// Manifest: one snapshot's metadata and its complete page map.
//
// Every snapshot carries the location of every one of its pages, so restoring
// it never replays a chain and deleting another snapshot never breaks it. The
// page map is a list of extents: runs of consecutive page numbers stored at
// consecutive indexes of one pack. A full snapshot is one extent; an
// incremental one is a few extents per changed run. See docs/FORMAT.md.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "store/status.h"

namespace snapshot {

// Where one page's content lives: page `index` of pack `pack`. pack 0 means
// "all zero bytes, nothing stored" (used for the lock-byte page).
struct PageRef {
  uint64_t pack = 0;
  uint32_t index = 0;
};

struct Extent {
  uint32_t first_pgno = 0;  // 1-based SQLite page number
  uint32_t page_count = 0;
  uint64_t pack = 0;
  uint32_t first_index = 0;
};

// commit_ms of a snapshot whose commit time nobody recorded (written by a
// version 1 writer, or by a caller that did not know it).
constexpr int64_t kUnknownCommitTime = std::numeric_limits<int64_t>::min();

struct SnapshotInfo {
  uint64_t id = 0;
  int64_t created_ms = 0;  // Unix epoch, UTC: when the snapshot was written
  // When the newest commit the image holds was made (Unix epoch ms, UTC): at
  // or after that commit, at or before created_ms. A snapshot taken long
  // after the last write holds the state as of that write, and restoring "to
  // a moment" must know when that state began. kUnknownCommitTime if not
  // recorded.
  int64_t commit_ms = kUnknownCommitTime;
  std::string label;
  uint32_t page_size = 0;
  uint32_t page_count = 0;
  uint64_t pages_new = 0;  // pages this snapshot added to the store
  uint64_t bytes_new = 0;  // bytes this snapshot added (its pack and manifest files)
  uint64_t db_bytes() const { return uint64_t(page_size) * page_count; }
  bool has_commit_time() const { return commit_ms != kUnknownCommitTime; }
  // The time the image's state began: the commit time if known, else (a
  // version 1 manifest) the only time known, when it was written.
  int64_t state_ms() const { return has_commit_time() ? commit_ms : created_ms; }
};

struct Manifest {
  SnapshotInfo info;
  std::vector<Extent> extents;  // cover pages 1..page_count in order

  // Builds extents from a page map (refs[i] is page i+1).
  void SetPageMap(const std::vector<PageRef>& refs);
  // Appends the pages of `e` after the last extent, merged into it when
  // they continue it (same pack, next indexes): extents stay maximal. Costs
  // one step per extent, whatever its page count.
  void AppendExtent(const Extent& e);
  // Finds page `pgno`; false if out of range.
  bool Lookup(uint32_t pgno, PageRef* ref) const;

  // In the current format version (docs/FORMAT.md §5).
  std::string Encode() const;
  // Checks magic, version, checksum and that extents tile 1..page_count.
  // Reads every version up to the current one (version 1: no commit_ms).
  static Status Decode(const std::string& bytes, const std::string& name, Manifest* out);
  // Reads the info of a manifest's head: its bytes before the extent count,
  // as a bundle keeps them (store/bundle.h). Unchecked by the manifest's own
  // checksum (the bundle's frame checksum covers it).
  static Status DecodeHead(const char* head, size_t size, const std::string& name, SnapshotInfo* out);
};

// Largest accepted label, in bytes.
constexpr size_t kMaxLabelBytes = 200;

// The bytes of a manifest up to its label (version 2; version 1 has 8 fewer,
// and its smallest file is 72 bytes), and the most bytes a manifest that
// starts with `prefix` (at least kManifestPrefixSize bytes, or the whole
// file) can have: one extent per page at most. A reader reads no more than
// that, so a huge damaged file is refused, not loaded.
constexpr size_t kManifestPrefixSize = 68;
uint64_t ManifestSizeLimit(const std::string& prefix);
// Labels are shown in logs and may become file names in scripts: printable
// text without control characters or path separators.
Status ValidateLabel(const std::string& label);

}  // namespace snapshot
