// The snapshot lock: one tracked snapshot of a database at a time, across
// threads and processes. It is a flock on the tracking file (<db>-snaptrack,
// vfs/tracking_format.h), taken on a descriptor of its own, so that it is
// independent of the tracker's mapping and of the OFD lock the tracker
// holds while the file's size changes.
//
//   std::unique_ptr<SnapshotLock> lock;
//   SNAPSHOT_RETURN_IF_ERROR(SnapshotLock::Acquire(db_path, timeout_ms, &lock));
//   ... pin and read the snapshot; the lock is let go with `lock` ...
#pragma once

#include <memory>
#include <string>

#include "store/status.h"

namespace snapshot {

class SnapshotLock {
 public:
  ~SnapshotLock();
  // Busy if another snapshot holds it for longer than timeout_ms; the
  // tracking file must exist (the database was opened through the VFS).
  static Status Acquire(const std::string& db_path, int timeout_ms, std::unique_ptr<SnapshotLock>* out);

 private:
  explicit SnapshotLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace snapshot
