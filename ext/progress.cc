#include "ext/progress.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "store/env.h"

namespace snapshot {

ProgressFile::ProgressFile(std::string store_dir, std::string operation, unsigned mode)
    : path_(JoinPath(store_dir, kProgressFileName)), operation_(std::move(operation)), mode_(mode),
      started_ms_(Env::Default()->NowMillis()) {}

ProgressFile::~ProgressFile() {
  if (written_) Env::Default()->RemoveFile(path_);
}

void ProgressFile::Update(uint64_t done, uint64_t total) {
  if (++calls_ % 256 != 1 && done != total) return;  // the clock, not every page
  const auto now = std::chrono::steady_clock::now();
  if (written_ && now - last_write_ < std::chrono::milliseconds(250)) return;
  last_write_ = now;
  Write(done, total);
}

void ProgressFile::Write(uint64_t done, uint64_t total) {
  Env* env = Env::Default();
  char line[256];
  std::snprintf(line, sizeof line, "%s %ld %lld %llu %llu %lld\n", operation_.c_str(), long(getpid()),
                (long long)started_ms_, (unsigned long long)done, (unsigned long long)total,
                (long long)env->NowMillis());
  const std::string tmp = path_ + ".tmp";
  std::unique_ptr<WritableFile> f;
  // Best effort: progress must never make the work itself fail.
  if (!env->NewWritableFile(tmp, mode_, &f).ok()) return;
  const bool ok = f->Append(line, std::char_traits<char>::length(line)).ok() && f->Close().ok() &&
                  env->RenameFile(tmp, path_).ok();
  if (ok) written_ = true;
}

Status ReadProgress(const std::string& store_dir, std::string* out) {
  // One short line: never more than its first 256 bytes are read, whatever
  // the file's size.
  std::string text(256, '\0');
  std::unique_ptr<RandomAccessFile> f;
  Status s = Env::Default()->NewRandomAccessFile(JoinPath(store_dir, kProgressFileName), &f);
  if (s.ok()) text.resize(std::min<uint64_t>(f->Size(), text.size()));
  if (s.ok() && !text.empty()) s = f->Read(0, text.size(), &text[0]);
  if (!s.ok()) return Status::NotFound("nothing running");
  std::istringstream in(text);
  std::string operation;
  long pid = 0;
  long long started = 0, updated = 0;
  unsigned long long done = 0, total = 0;
  if (!(in >> operation >> pid >> started >> done >> total >> updated)) return Status::NotFound("nothing running");
  // Left by a process that died (its next exclusive open removes the file).
  if (pid <= 0 || (::kill(pid_t(pid), 0) != 0 && errno == ESRCH)) return Status::NotFound("nothing running");
  char line[256];
  std::snprintf(line, sizeof line, "%s: %llu of %llu pages (%d%%), %.1f s, process %ld", operation.c_str(), done, total,
                total ? int(100 * done / total) : 100, (double(updated) - double(started)) / 1000.0, pid);
  *out = line;
  return Status::OK();
}

}  // namespace snapshot
