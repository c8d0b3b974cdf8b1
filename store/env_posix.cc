// The POSIX Env: plain open/pread/write/fsync/rename, flock for store locks.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "store/env.h"

namespace snapshot {
namespace {

Status PosixError(const std::string& context, int err) {
  std::string m = context + ": " + std::strerror(err);
  if (err == ENOSPC || err == EDQUOT) m += " (the disk is full; nothing was changed)";
  return Status::IOError(m);
}

class PosixWritableFile : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixWritableFile() override { Close(); }

  Status Append(const void* data, size_t n) override {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      ssize_t w = ::write(fd_, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        return PosixError("write " + path_, errno);
      }
      p += w;
      n -= static_cast<size_t>(w);
      appended_ += static_cast<uint64_t>(w);
    }
    PaceWriteback();
    return Status::OK();
  }
  Status WriteAt(uint64_t offset, const void* data, size_t n) override {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      ssize_t w = ::pwrite(fd_, p, n, static_cast<off_t>(offset));
      if (w < 0) {
        if (errno == EINTR) continue;
        return PosixError("write " + path_, errno);
      }
      p += w;
      n -= static_cast<size_t>(w);
      offset += static_cast<uint64_t>(w);
    }
    return Status::OK();
  }
  Status Sync() override {
    if (gate_) gate_();  // the final flush, too, between two of the writers' commits
    if (::fsync(fd_) != 0) return PosixError("fsync " + path_, errno);
    return Status::OK();
  }
  void SetWritebackGate(std::function<void()> gate) override { gate_ = std::move(gate); }
  Status Close() override {
    if (fd_ < 0) return Status::OK();
    int rc = ::close(fd_);
    fd_ = -1;
    if (rc != 0) return PosixError("close " + path_, errno);
    return Status::OK();
  }

 private:
  // A pack of hundreds of megabytes left dirty until its one fsync would
  // flush them all at once, and every other fsync on the disk (the
  // database's writers' commits) would queue behind it. So, as appended data
  // passes each chunk, its write-back is started, and the chunk before is
  // waited for: little is left dirty, and the final fsync is short. Only
  // pacing: durability still comes from Sync().
  //
  // The chunk is small because a writer's commit queues behind whatever of
  // ours is in flight: with 8 MiB chunks a writer's p99 commit time during a
  // full snapshot was several times what it was with 256 KiB chunks, and
  // smaller chunks gained nothing more (bench/README.md, "Commit latency",
  // the table of snapshot variants).
  void PaceWriteback() {
    constexpr uint64_t kChunk = 256 << 10;
    while (appended_ - started_ >= kChunk) {
      if (gate_) gate_();
      ::sync_file_range(fd_, off64_t(started_), off64_t(kChunk), SYNC_FILE_RANGE_WRITE);
      if (started_ >= kChunk) {
        ::sync_file_range(fd_, off64_t(started_ - kChunk), off64_t(kChunk),
                          SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
      }
      started_ += kChunk;
    }
  }

  std::string path_;
  std::function<void()> gate_;
  uint64_t appended_ = 0;  // bytes appended (WriteAt does not move it)
  uint64_t started_ = 0;   // write-back started up to here
  int fd_;
};

class PosixRandomAccessFile : public RandomAccessFile {
 public:
  PosixRandomAccessFile(std::string path, int fd, uint64_t size)
      : path_(std::move(path)), fd_(fd), size_(size) {}
  ~PosixRandomAccessFile() override { ::close(fd_); }

  Status Read(uint64_t offset, size_t n, void* out) const override {
    char* p = static_cast<char*>(out);
    while (n > 0) {
      ssize_t r = ::pread(fd_, p, n, static_cast<off_t>(offset));
      if (r < 0) {
        if (errno == EINTR) continue;
        return PosixError("read " + path_, errno);
      }
      if (r == 0) return Status::Corruption(path_ + " is shorter than its index says (truncated?)");
      p += r;
      n -= static_cast<size_t>(r);
      offset += static_cast<uint64_t>(r);
    }
    return Status::OK();
  }
  uint64_t Size() const override { return size_; }

 private:
  std::string path_;
  int fd_;
  uint64_t size_;
};

class PosixFileLock : public FileLock {
 public:
  explicit PosixFileLock(int fd) : fd_(fd) {}
  ~PosixFileLock() override {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }

 private:
  int fd_;
};

// A lock on one byte, owned by its own open file description: released
// when this object closes that description, never by another close.
class PosixByteLock : public FileLock {
 public:
  explicit PosixByteLock(int fd) : fd_(fd) {}
  ~PosixByteLock() override { ::close(fd_); }

 private:
  int fd_;
};

struct flock OneByte(short type, uint64_t offset) {
  struct flock fl;
  std::memset(&fl, 0, sizeof fl);
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = static_cast<off_t>(offset);
  fl.l_len = 1;
  return fl;
}

// Byte offsets a lock can name (off_t is signed).
bool LockableOffset(uint64_t offset) { return offset < (uint64_t(1) << 62); }

class PosixEnv : public Env {
 public:
#ifdef F_OFD_SETLK
  Status LockByteShared(const std::string& path, uint64_t offset, std::unique_ptr<FileLock>* out) override {
    if (!LockableOffset(offset)) return Status::InvalidArgument("lock offset out of range in " + path);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return PosixError("open lock file " + path, errno);
    struct flock fl = OneByte(F_RDLCK, offset);
    if (::fcntl(fd, F_OFD_SETLK, &fl) != 0) {
      const int err = errno;
      ::close(fd);
      if (err == EAGAIN || err == EACCES) return Status::Busy("byte " + std::to_string(offset) + " of " + path + " is locked");
      return PosixError("lock " + path, err);
    }
    out->reset(new PosixByteLock(fd));
    return Status::OK();
  }

  Status IsByteLocked(const std::string& path, uint64_t offset, bool* locked) override {
    if (!LockableOffset(offset)) return Status::InvalidArgument("lock offset out of range in " + path);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return PosixError("open lock file " + path, errno);
    // A fresh description: every lock held on the byte, this process's
    // own included, conflicts with a write lock asked through it.
    struct flock fl = OneByte(F_WRLCK, offset);
    const int rc = ::fcntl(fd, F_OFD_GETLK, &fl);
    const int err = errno;
    ::close(fd);
    if (rc != 0) return PosixError("test lock " + path, err);
    *locked = fl.l_type != F_UNLCK;
    return Status::OK();
  }
#endif


  Status NewWritableFile(const std::string& path, unsigned mode,
                         std::unique_ptr<WritableFile>* out) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) return PosixError("create " + path, errno);
    // The umask may have narrowed the mode; it must never widen it, and the
    // store must be exactly as private as the database, so set it outright.
    if (::fchmod(fd, mode) != 0) {
      int err = errno;
      ::close(fd);
      return PosixError("chmod " + path, err);
    }
    out->reset(new PosixWritableFile(path, fd));
    return Status::OK();
  }

  Status NewRandomAccessFile(const std::string& path,
                             std::unique_ptr<RandomAccessFile>* out) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return Status::NotFound(path + " does not exist");
      return PosixError("open " + path, errno);
    }
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      int err = errno;
      ::close(fd);
      return PosixError("stat " + path, err);
    }
    out->reset(new PosixRandomAccessFile(path, fd, static_cast<uint64_t>(st.st_size)));
    return Status::OK();
  }

  Status RenameFile(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) return PosixError("rename " + from + " to " + to, errno);
    return Status::OK();
  }

  Status RenameNoReplace(const std::string& from, const std::string& to) override {
    // link(2) fails with EEXIST instead of replacing: atomic no-clobber.
    if (::link(from.c_str(), to.c_str()) != 0) {
      if (errno == EEXIST) return Status::InvalidArgument(to + " already exists; it was not overwritten");
      return PosixError("link " + from + " to " + to, errno);
    }
    ::unlink(from.c_str());
    return Status::OK();
  }

  Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return PosixError("remove " + path, errno);
    return Status::OK();
  }

  Status SyncDir(const std::string& dir) override {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return PosixError("open directory " + dir, errno);
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0) return PosixError("fsync directory " + dir, err);
    return Status::OK();
  }

  Status CreateDir(const std::string& dir, unsigned mode) override {
    if (::mkdir(dir.c_str(), mode) != 0) {
      if (errno == EEXIST && IsDirectory(dir)) return Status::OK();
      return PosixError("create directory " + dir, errno);
    }
    ::chmod(dir.c_str(), mode);
    return Status::OK();
  }

  Status GetChildren(const std::string& dir, std::vector<std::string>* names) override {
    names->clear();
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) {
      if (errno == ENOENT) return Status::NotFound(dir + " does not exist");
      return PosixError("list " + dir, errno);
    }
    while (struct dirent* e = ::readdir(d)) {
      if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) names->push_back(e->d_name);
    }
    ::closedir(d);
    return Status::OK();
  }

  bool FileExists(const std::string& path) override { return ::access(path.c_str(), F_OK) == 0; }

  bool IsDirectory(const std::string& path) override {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  }

  Status GetFileSize(const std::string& path, uint64_t* size) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return PosixError("stat " + path, errno);
    *size = static_cast<uint64_t>(st.st_size);
    return Status::OK();
  }

  Status GetFileMode(const std::string& path, unsigned* mode) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return PosixError("stat " + path, errno);
    *mode = static_cast<unsigned>(st.st_mode) & 07777u;
    return Status::OK();
  }

  Status LockFile(const std::string& path, bool exclusive, int timeout_ms, unsigned mode,
                  std::unique_ptr<FileLock>* out) override {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd >= 0) {
      ::fchmod(fd, mode);  // as private as the database, whatever the umask
    } else {
      fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
      if (fd < 0 && (errno == EACCES || errno == EROFS)) fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0) return PosixError("open lock file " + path, errno);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      if (::flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0) break;
      if (errno != EWOULDBLOCK && errno != EINTR) {
        int err = errno;
        ::close(fd);
        return PosixError("lock " + path, err);
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        ::close(fd);
        return Status::Busy("the snapshot store is busy: another backup, restore or prune is running (" + path + ")");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    out->reset(new PosixFileLock(fd));
    return Status::OK();
  }

  int64_t NowMillis() override {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  }

  Status RandomBytes(void* out, size_t n) override {
    int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return PosixError("open /dev/urandom", errno);
    char* p = static_cast<char*>(out);
    while (n > 0) {
      ssize_t r = ::read(fd, p, n);
      if (r <= 0) {
        if (r < 0 && errno == EINTR) continue;
        ::close(fd);
        return Status::IOError("read /dev/urandom failed");
      }
      p += r;
      n -= static_cast<size_t>(r);
    }
    ::close(fd);
    return Status::OK();
  }
};

}  // namespace

Env* Env::Default() {
  static PosixEnv* env = new PosixEnv;  // never destroyed: used until exit
  return env;
}

Status Env::LockByteShared(const std::string& path, uint64_t, std::unique_ptr<FileLock>*) {
  return Status::NotSupported("byte-range locks are not supported here (" + path + ")");
}
Status Env::IsByteLocked(const std::string& path, uint64_t, bool*) {
  return Status::NotSupported("byte-range locks are not supported here (" + path + ")");
}

Status Env::ReadFileToString(const std::string& path, std::string* out) {
  std::unique_ptr<RandomAccessFile> f;
  SNAPSHOT_RETURN_IF_ERROR(NewRandomAccessFile(path, &f));
  out->resize(f->Size());
  if (f->Size() == 0) return Status::OK();
  return f->Read(0, out->size(), &(*out)[0]);
}

Status ReadSmallFile(Env* env, const std::string& path, uint64_t max_bytes, std::string* out) {
  std::unique_ptr<RandomAccessFile> f;  // NotFound if it does not exist
  SNAPSHOT_RETURN_IF_ERROR(env->NewRandomAccessFile(path, &f));
  if (f->Size() > max_bytes) return Status::Corruption(path + " is too large");
  out->assign(size_t(f->Size()), '\0');
  if (!out->empty()) SNAPSHOT_RETURN_IF_ERROR(f->Read(0, out->size(), &(*out)[0]));
  return Status::OK();
}

Status WriteFileAtomically(Env* env, const std::string& path, const std::string& data, unsigned mode,
                           const AtomicWriteOptions& options) {
  const std::string tmp = path + options.temp_suffix;
  std::unique_ptr<WritableFile> f;
  Status s = env->NewWritableFile(tmp, mode, &f);
  if (s.ok() && options.before_sync) f->SetWritebackGate(options.before_sync);  // gates its Sync
  if (s.ok()) s = f->Append(data.data(), data.size());
  if (s.ok() && options.sync) s = f->Sync();
  if (s.ok()) s = f->Close();
  if (s.ok()) s = env->RenameFile(tmp, path);
  if (!s.ok()) {
    f.reset();
    env->RemoveFile(tmp);
    return s;
  }
  if (!options.sync) return Status::OK();
  if (options.before_sync) options.before_sync();
  return env->SyncDir(DirName(path));
}

std::string JoinPath(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}

std::string DirName(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string BaseName(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace snapshot
