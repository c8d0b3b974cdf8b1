// Progress of a long backup, import or restore, for other connections.
//
// The working call publishes one line in <store>/PROGRESS (replaced by
// rename, never fsynced: it matters only while the work runs) and removes it
// when done; snapshot_progress() on any connection reads it:
//
//   sqlite> SELECT snapshot_progress();
//   backup: 31744 of 58677 pages (54%), 0.2 s, process 4242
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "store/format.h"
#include "store/status.h"

namespace snapshot {

class ProgressFile {
 public:
  ProgressFile(std::string store_dir, std::string operation, unsigned mode);
  ~ProgressFile();
  ProgressFile(const ProgressFile&) = delete;
  ProgressFile& operator=(const ProgressFile&) = delete;

  // Publishes `done` of `total` pages; cheap to call per page (it writes at
  // most four times a second).
  void Update(uint64_t done, uint64_t total);

 private:
  void Write(uint64_t done, uint64_t total);
  std::string path_, operation_;
  unsigned mode_;
  int64_t started_ms_;
  std::chrono::steady_clock::time_point last_write_;
  uint64_t calls_ = 0;
  bool written_ = false;
};

// The published progress of `store_dir` as one line of text; NotFound when
// nothing is running there.
Status ReadProgress(const std::string& store_dir, std::string* line);

}  // namespace snapshot
