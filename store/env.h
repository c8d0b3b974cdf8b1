// Env: every file-system call the store makes goes through this seam.
//
// The store never calls open(2), write(2) or rename(2) itself. Production uses
// Env::Default() (POSIX); tests wrap it to inject faults such as ENOSPC on the
// n-th write or a failing fsync, and check that the store stays consistent.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "store/status.h"

namespace snapshot {

// A file being written sequentially (packs, manifests, restored databases).
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  virtual Status Append(const void* data, size_t n) = 0;
  virtual Status WriteAt(uint64_t offset, const void* data, size_t n) = 0;
  virtual Status Sync() = 0;   // data and metadata durable (fsync)
  virtual Status Close() = 0;  // idempotent
  // Called before the file starts writing back each chunk of what was
  // appended (see PosixWritableFile), and before Sync; it may wait. Files
  // that do not pace their write-back ignore it.
  virtual void SetWritebackGate(std::function<void()> gate) { (void)gate; }
};

// A file read at arbitrary offsets; safe to share between threads.
class RandomAccessFile {
 public:
  virtual ~RandomAccessFile() = default;
  // Reads exactly n bytes at offset; a short read is Corruption.
  virtual Status Read(uint64_t offset, size_t n, void* out) const = 0;
  virtual uint64_t Size() const = 0;
};

// An advisory lock held until destroyed (flock(2): released by a crash too).
class FileLock {
 public:
  virtual ~FileLock() = default;
};

class Env {
 public:
  virtual ~Env() = default;
  static Env* Default();

  // Creates or truncates `path` with permission bits `mode`.
  virtual Status NewWritableFile(const std::string& path, unsigned mode,
                                 std::unique_ptr<WritableFile>* out) = 0;
  virtual Status NewRandomAccessFile(const std::string& path,
                                     std::unique_ptr<RandomAccessFile>* out) = 0;
  virtual Status ReadFileToString(const std::string& path, std::string* out);

  virtual Status RenameFile(const std::string& from, const std::string& to) = 0;
  // Like RenameFile, but fails with InvalidArgument if `to` exists.
  virtual Status RenameNoReplace(const std::string& from, const std::string& to) = 0;
  virtual Status RemoveFile(const std::string& path) = 0;
  virtual Status SyncDir(const std::string& dir) = 0;
  virtual Status CreateDir(const std::string& dir, unsigned mode) = 0;
  virtual Status GetChildren(const std::string& dir, std::vector<std::string>* names) = 0;
  virtual bool FileExists(const std::string& path) = 0;
  virtual bool IsDirectory(const std::string& path) = 0;
  virtual Status GetFileSize(const std::string& path, uint64_t* size) = 0;
  // Permission bits of an existing file (used to give the store the mode of
  // the database it protects).
  virtual Status GetFileMode(const std::string& path, unsigned* mode) = 0;

  // Waits up to timeout_ms for a shared or exclusive lock on `path`
  // (created if missing); Busy if it cannot be had.
  virtual Status LockFile(const std::string& path, bool exclusive, int timeout_ms,
                          unsigned mode, std::unique_ptr<FileLock>* out) = 0;

  // A shared lock on the single byte at `offset` of the existing file
  // `path`, held until destroyed; Busy at once if an exclusive lock is held
  // there. It belongs to its own open file description (Linux OFD locks):
  // closing any other descriptor of the file does not drop it, and it is
  // independent of LockFile's flock(2). Pins (store/pin.h) use it.
  // NotSupported where the platform has no such locks.
  virtual Status LockByteShared(const std::string& path, uint64_t offset, std::unique_ptr<FileLock>* out);
  // Whether anyone, this process included, holds a lock on that byte.
  virtual Status IsByteLocked(const std::string& path, uint64_t offset, bool* locked);

  virtual int64_t NowMillis() = 0;  // wall clock, Unix epoch
  virtual Status RandomBytes(void* out, size_t n) = 0;
};

// Forwards every call to a target Env; subclass it to override a few.
class EnvWrapper : public Env {
 public:
  explicit EnvWrapper(Env* target) : target_(target) {}
  Status NewWritableFile(const std::string& p, unsigned m, std::unique_ptr<WritableFile>* o) override { return target_->NewWritableFile(p, m, o); }
  Status NewRandomAccessFile(const std::string& p, std::unique_ptr<RandomAccessFile>* o) override { return target_->NewRandomAccessFile(p, o); }
  Status RenameFile(const std::string& f, const std::string& t) override { return target_->RenameFile(f, t); }
  Status RenameNoReplace(const std::string& f, const std::string& t) override { return target_->RenameNoReplace(f, t); }
  Status RemoveFile(const std::string& p) override { return target_->RemoveFile(p); }
  Status SyncDir(const std::string& d) override { return target_->SyncDir(d); }
  Status CreateDir(const std::string& d, unsigned m) override { return target_->CreateDir(d, m); }
  Status GetChildren(const std::string& d, std::vector<std::string>* n) override { return target_->GetChildren(d, n); }
  bool FileExists(const std::string& p) override { return target_->FileExists(p); }
  bool IsDirectory(const std::string& p) override { return target_->IsDirectory(p); }
  Status GetFileSize(const std::string& p, uint64_t* s) override { return target_->GetFileSize(p, s); }
  Status GetFileMode(const std::string& p, unsigned* m) override { return target_->GetFileMode(p, m); }
  Status LockFile(const std::string& p, bool e, int t, unsigned m, std::unique_ptr<FileLock>* o) override { return target_->LockFile(p, e, t, m, o); }
  Status LockByteShared(const std::string& p, uint64_t o, std::unique_ptr<FileLock>* l) override { return target_->LockByteShared(p, o, l); }
  Status IsByteLocked(const std::string& p, uint64_t o, bool* l) override { return target_->IsByteLocked(p, o, l); }
  int64_t NowMillis() override { return target_->NowMillis(); }
  Status RandomBytes(void* o, size_t n) override { return target_->RandomBytes(o, n); }

 protected:
  Env* target() const { return target_; }

 private:
  Env* target_;
};

// How WriteFileAtomically writes. The defaults suit a file only the
// exclusive holder of a lock writes, and that must survive a power cut.
struct AtomicWriteOptions {
  // Appended to `path` to name the temporary file. Writers not serialized
  // by a lock (several processes) each need a name of their own.
  std::string temp_suffix = ".tmp";
  // fsync the file before the rename and the directory after. Without:
  // still never a mix of old and new, but a power cut may lose the change.
  bool sync = true;
  // Called before each fsync (the file's, then the directory's): a snapshot
  // waits there for a database writer's commit to end, so that the sync
  // reaches the disk between two commits (CompressOptions::before_writeback).
  std::function<void()> before_sync;
};

// The whole of a small file (a setting or status file of the store): NotFound
// if it does not exist, Corruption if it is over `max_bytes`, so that a
// damaged or hostile file is never read into memory whole.
Status ReadSmallFile(Env* env, const std::string& path, uint64_t max_bytes, std::string* out);

// Writes `data` to `path` durably and atomically: temp file, fsync, rename,
// fsync of the directory. Readers see the old file or the new one, never a mix.
// A failure removes the temporary file.
Status WriteFileAtomically(Env* env, const std::string& path, const std::string& data,
                           unsigned mode, const AtomicWriteOptions& options = AtomicWriteOptions());

std::string JoinPath(const std::string& dir, const std::string& name);
std::string DirName(const std::string& path);
std::string BaseName(const std::string& path);

}  // namespace snapshot
