#include "remote/push_lock.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

namespace snapshot {
namespace {

// The stores this process is pushing, and their lock files' descriptors
// (-1 while the thread that owns the entry opens it). Never destroyed:
// used by the fork handlers and by threads that may outlive exit's
// destructors.
std::mutex& TableMu() {
  static auto* mu = new std::mutex;
  return *mu;
}
std::map<std::string, int>& Table() {
  static auto* table = new std::map<std::string, int>;
  return *table;
}

void BeforeFork() { TableMu().lock(); }
void AfterForkInParent() { TableMu().unlock(); }
void AfterForkInChild() {
  // The threads that pushed are not in the child: their entries would never
  // be released, and their descriptors are the child's copies (closing
  // them releases no lock of the parent's: record locks are per process).
  for (const auto& entry : Table()) {
    if (entry.second >= 0) ::close(entry.second);
  }
  Table().clear();
  TableMu().unlock();
}

void InstallForkHandlers() {
  static std::once_flag once;
  std::call_once(once, [] { pthread_atfork(BeforeFork, AfterForkInParent, AfterForkInChild); });
}

constexpr int kTryEveryMs = 20;

}  // namespace

Status PushLock::Acquire(Env* env, const std::string& store_dir, unsigned mode,
                         const std::function<bool()>& should_stop, int timeout_ms, std::unique_ptr<PushLock>* out) {
  (void)env;  // the lock is the kernel's: no Env can fake it
  InstallForkHandlers();
  // One name per directory, however the caller spelled it: threads that
  // named it differently must still exclude each other.
  char resolved[PATH_MAX];
  const std::string key = ::realpath(store_dir.c_str(), resolved) != nullptr ? std::string(resolved) : store_dir;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms < 0 ? 0 : timeout_ms);
  auto wait = [&]() -> Status {
    if (should_stop && should_stop()) return Status::Interrupted("interrupted while waiting for another push");
    if (timeout_ms >= 0 && std::chrono::steady_clock::now() >= deadline) {
      return Status::Busy("another push of " + store_dir + " is running");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(kTryEveryMs));
    return Status::OK();
  };
  // This process's threads first.
  for (;;) {
    {
      std::lock_guard<std::mutex> l(TableMu());
      if (Table().emplace(key, -1).second) break;
    }
    SNAPSHOT_RETURN_IF_ERROR(wait());
  }
  const std::string path = JoinPath(store_dir, kPushLockFileName);
  int fd, open_errno = 0;
  {
    // Under the table's mutex, so that a fork sees either no descriptor or
    // one recorded in the table, which its child then closes.
    std::lock_guard<std::mutex> l(TableMu());
    fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, mode & 0666u);
    open_errno = errno;
    if (fd >= 0) Table()[key] = fd;
    if (fd < 0) Table().erase(key);
  }
  if (fd < 0) {
    const int err = open_errno;
    return Status::IOError("cannot open " + path + ": " + std::strerror(err));
  }
  for (;;) {
    struct flock fl;
    std::memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = 0;
    fl.l_len = 1;
    if (::fcntl(fd, F_SETLK, &fl) == 0) break;
    const int err = errno;
    Status s = (err == EACCES || err == EAGAIN) ? wait()
                                                : Status::IOError("cannot lock " + path + ": " + std::strerror(err));
    if (!s.ok()) {
      {
        std::lock_guard<std::mutex> l(TableMu());
        ::close(fd);
        Table().erase(key);
      }
      return s;
    }
  }
  out->reset(new PushLock(key, fd));
  return Status::OK();
}

PushLock::~PushLock() {
  std::lock_guard<std::mutex> l(TableMu());
  ::close(fd_);  // releases the record lock
  Table().erase(key_);
}

}  // namespace snapshot
