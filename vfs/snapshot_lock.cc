#include "vfs/snapshot_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "vfs/tracking_format.h"

namespace snapshot {

SnapshotLock::~SnapshotLock() { close(fd_); }

Status SnapshotLock::Acquire(const std::string& db_path, int timeout_ms, std::unique_ptr<SnapshotLock>* out) {
  const std::string path = db_path + kTrackSuffix;
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return Status::IOError("cannot open " + path + ": " + std::strerror(errno));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) {
      const int err = errno;
      close(fd);
      return Status::IOError("cannot lock " + path + ": " + std::strerror(err));
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      close(fd);
      return Status::Busy("another snapshot of this database is running");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  out->reset(new SnapshotLock(fd));
  return Status::OK();
}

}  // namespace snapshot
