#include "tests/crash_env.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

namespace snapshot_test {

using snapshot::Status;
using snapshot::WritableFile;

namespace {

// Rel()'s answer for a path outside the root (no real path holds a NUL).
const std::string kOutside(1, '\0');

std::string Normalize(const std::string& p) {
  std::string out;
  for (char c : p) {
    if (c == '/' && !out.empty() && out.back() == '/') continue;
    out += c;
  }
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

// The directory holding a root-relative path ("" is the root).
std::string RelDir(const std::string& rel) {
  const size_t slash = rel.find_last_of('/');
  return slash == std::string::npos ? std::string() : rel.substr(0, slash);
}

}  // namespace

// Records each write at the offset it lands on, and each sync, by inode: a
// file renamed while open is still the same file.
class CrashFile : public WritableFile {
 public:
  CrashFile(CrashEnv* env, uint64_t inode, std::unique_ptr<WritableFile> target)
      : env_(env), inode_(inode), target_(std::move(target)) {}
  Status Append(const void* data, size_t n) override {
    Status s = target_->Append(data, n);
    if (s.ok()) env_->RecordWrite(inode_, end_, data, n);
    end_ += n;
    return s;
  }
  Status WriteAt(uint64_t offset, const void* data, size_t n) override {
    Status s = target_->WriteAt(offset, data, n);
    if (s.ok()) env_->RecordWrite(inode_, offset, data, n);
    return s;
  }
  Status Sync() override {
    Status s = target_->Sync();
    if (s.ok()) env_->RecordSyncFile(inode_);
    return s;
  }
  Status Close() override { return target_->Close(); }
  void SetWritebackGate(std::function<void()> gate) override { target_->SetWritebackGate(std::move(gate)); }

 private:
  CrashEnv* env_;
  uint64_t inode_;
  uint64_t end_ = 0;  // a file is created empty (or truncated): appends start at 0
  std::unique_ptr<WritableFile> target_;
};

CrashEnv::CrashEnv(std::string root) : EnvWrapper(snapshot::Env::Default()), root_(Normalize(root)) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root_, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    const std::string rel = Rel(it->path().string());
    if (it->is_directory()) {
      base_dirs_.push_back(rel);
    } else if (it->is_regular_file()) {
      std::ifstream f(it->path(), std::ios::binary);
      std::string content((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      const uint64_t inode = next_inode_++;
      base_names_[rel] = inode;
      base_content_[inode] = std::move(content);
      live_[rel] = inode;
    }
  }
}

uint64_t CrashEnv::RecordOpen(const std::string& path, bool created) {
  std::lock_guard<std::mutex> l(mu_);
  const std::string rel = Rel(path);
  auto it = live_.find(rel);
  if (it != live_.end() && !created) return it->second;
  const uint64_t inode = next_inode_++;
  live_[rel] = inode;
  RecordLocked(Op{Kind::kLink, rel, "", inode, 0, ""});
  return inode;
}

void CrashEnv::RecordTruncate(uint64_t inode, uint64_t size) { Record(Op{Kind::kTruncate, "", "", inode, size, ""}); }

void CrashEnv::RecordRemove(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  live_.erase(Rel(path));
  RecordLocked(Op{Kind::kUnlink, Rel(path), "", 0, 0, ""});
}

void CrashEnv::RecordSyncDir(const std::string& dir) { Record(Op{Kind::kSyncDir, Rel(dir), "", 0, 0, ""}); }
CrashEnv::~CrashEnv() = default;

std::string CrashEnv::Rel(const std::string& path) const {
  const std::string p = Normalize(path);
  if (p == root_) return "";
  if (p.compare(0, root_.size() + 1, root_ + "/") == 0) return p.substr(root_.size() + 1);
  return kOutside;
}

void CrashEnv::RecordLocked(Op op) {
  if (op.path == kOutside || op.to == kOutside) return;  // not under the root: not modelled
  log_.push_back(std::move(op));
}

void CrashEnv::Record(Op op) {
  std::lock_guard<std::mutex> l(mu_);
  RecordLocked(std::move(op));
}

void CrashEnv::RecordWrite(uint64_t inode, uint64_t offset, const void* data, size_t n) {
  Op op{Kind::kWrite, "", "", inode, offset, std::string(static_cast<const char*>(data), n)};
  Record(std::move(op));
}

void CrashEnv::RecordSyncFile(uint64_t inode) { Record(Op{Kind::kSyncFile, "", "", inode, 0, ""}); }

size_t CrashEnv::ops() const {
  std::lock_guard<std::mutex> l(mu_);
  return log_.size();
}

Status CrashEnv::NewWritableFile(const std::string& p, unsigned m, std::unique_ptr<WritableFile>* o) {
  std::unique_ptr<WritableFile> f;
  SNAPSHOT_RETURN_IF_ERROR(target()->NewWritableFile(p, m, &f));
  const std::string rel = Rel(p);
  if (rel == kOutside) {
    *o = std::move(f);
    return Status::OK();
  }
  uint64_t inode;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = live_.find(rel);
    if (it != live_.end()) {
      // O_TRUNC of an existing file: the same inode, emptied (a data change).
      inode = it->second;
      RecordLocked(Op{Kind::kTruncate, rel, "", inode, 0, ""});
    } else {
      inode = next_inode_++;
      live_[rel] = inode;
      RecordLocked(Op{Kind::kLink, rel, "", inode, 0, ""});
    }
  }
  o->reset(new CrashFile(this, inode, std::move(f)));
  return Status::OK();
}

Status CrashEnv::RenameFile(const std::string& f, const std::string& t) {
  SNAPSHOT_RETURN_IF_ERROR(target()->RenameFile(f, t));
  std::lock_guard<std::mutex> l(mu_);
  const std::string from = Rel(f), to = Rel(t);
  auto it = live_.find(from);
  if (it != live_.end()) {
    live_[to] = it->second;
    live_.erase(from);
  }
  RecordLocked(Op{Kind::kRename, from, to, 0, 0, ""});
  return Status::OK();
}

Status CrashEnv::RenameNoReplace(const std::string& f, const std::string& t) {
  SNAPSHOT_RETURN_IF_ERROR(target()->RenameNoReplace(f, t));
  // link(2) then unlink(2): two name changes, each durable on its own.
  std::lock_guard<std::mutex> l(mu_);
  const std::string from = Rel(f), to = Rel(t);
  auto it = live_.find(from);
  const uint64_t inode = it == live_.end() ? 0 : it->second;
  live_[to] = inode;
  live_.erase(from);
  RecordLocked(Op{Kind::kLink, to, "", inode, 0, ""});
  RecordLocked(Op{Kind::kUnlink, from, "", 0, 0, ""});
  return Status::OK();
}

Status CrashEnv::RemoveFile(const std::string& p) {
  const bool existed = target()->FileExists(p);
  SNAPSHOT_RETURN_IF_ERROR(target()->RemoveFile(p));
  if (!existed) return Status::OK();
  std::lock_guard<std::mutex> l(mu_);
  live_.erase(Rel(p));
  RecordLocked(Op{Kind::kUnlink, Rel(p), "", 0, 0, ""});
  return Status::OK();
}

Status CrashEnv::SyncDir(const std::string& d) {
  SNAPSHOT_RETURN_IF_ERROR(target()->SyncDir(d));
  Record(Op{Kind::kSyncDir, Rel(d), "", 0, 0, ""});
  return Status::OK();
}

Status CrashEnv::CreateDir(const std::string& d, unsigned m) {
  const bool existed = target()->IsDirectory(d);
  SNAPSHOT_RETURN_IF_ERROR(target()->CreateDir(d, m));
  if (!existed) Record(Op{Kind::kMkdir, Rel(d), "", 0, 0, ""});
  return Status::OK();
}

std::vector<std::string> CrashEnv::NameDirs(const Op& op) const {
  switch (op.kind) {
    case Kind::kLink:
    case Kind::kMkdir:
    case Kind::kUnlink:
      return {RelDir(op.path)};
    case Kind::kRename:
      // Atomic: durable once the directory it lands in is synced (the store
      // renames only within one directory).
      return {RelDir(op.to)};
    default:
      return {};
  }
}

std::vector<bool> CrashEnv::Forced(size_t crash_point) const {
  std::vector<bool> forced(crash_point, false);
  std::set<uint64_t> synced_files;
  std::set<std::string> synced_dirs;
  for (size_t i = crash_point; i-- > 0;) {
    const Op& op = log_[i];
    if (op.kind == Kind::kSyncFile) {
      synced_files.insert(op.inode);
      forced[i] = true;
    } else if (op.kind == Kind::kSyncDir) {
      synced_dirs.insert(op.path);
      forced[i] = true;
    } else if (op.kind == Kind::kWrite || op.kind == Kind::kTruncate) {
      forced[i] = synced_files.count(op.inode) > 0;
    } else {
      for (const std::string& d : NameDirs(op)) forced[i] = forced[i] || synced_dirs.count(d) > 0;
    }
  }
  return forced;
}

std::vector<size_t> CrashEnv::CrashPoints() const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<size_t> points;
  for (size_t i = 0; i < log_.size(); i++) {
    if (IsSync(log_[i])) points.push_back(i);
  }
  points.push_back(log_.size());
  return points;
}

std::vector<CrashState> CrashEnv::CrashStates(size_t crash_point, std::mt19937* rng, int random_subsets) const {
  std::lock_guard<std::mutex> l(mu_);
  const std::vector<bool> forced = Forced(crash_point);
  std::vector<size_t> unsynced;
  for (size_t i = 0; i < crash_point; i++) {
    if (!forced[i]) unsynced.push_back(i);
  }
  std::vector<CrashState> out;
  std::set<std::pair<std::vector<bool>, size_t>> seen;
  auto add = [&](const std::string& what, std::vector<bool> kept, size_t torn = SIZE_MAX, size_t torn_bytes = 0) {
    if (!seen.insert({kept, torn == SIZE_MAX ? SIZE_MAX : torn * 1000003 + torn_bytes}).second) return;
    CrashState st;
    st.what = what + " (crash point " + std::to_string(crash_point) + ", " + std::to_string(unsynced.size()) +
              " unsynced changes)";
    st.crash_point = crash_point;
    st.kept = std::move(kept);
    st.torn = torn;
    st.torn_bytes = torn_bytes;
    out.push_back(std::move(st));
  };
  auto prefix = [&](size_t n) {
    std::vector<bool> kept = forced;
    for (size_t k = 0; k < n; k++) kept[unsynced[k]] = true;
    return kept;
  };
  add("every unsynced change lost", prefix(0));
  add("every change reached the disk", prefix(unsynced.size()));
  // A few prefixes: the disk wrote back in order and stopped part way.
  constexpr size_t kPrefixes = 5;
  for (size_t p = 1; p <= kPrefixes && unsynced.size() > 1; p++) {
    const size_t n = unsynced.size() * p / (kPrefixes + 1);
    if (n > 0) add("the first " + std::to_string(n) + " unsynced changes kept", prefix(n));
  }
  // The last write torn: half of it, or its first sector.
  for (size_t k = unsynced.size(); k-- > 0;) {
    const Op& op = log_[unsynced[k]];
    if (op.kind != Kind::kWrite || op.data.size() < 2) continue;
    add("the last unsynced write torn in half", prefix(k + 1), unsynced[k], op.data.size() / 2);
    if (op.data.size() > 512) add("the last unsynced write torn after 512 bytes", prefix(k + 1), unsynced[k], 512);
    break;
  }
  {
    std::vector<bool> kept = forced;
    for (size_t i : unsynced) {
      const Kind k = log_[i].kind;
      kept[i] = k == Kind::kWrite || k == Kind::kTruncate;
    }
    add("all data kept, no unsynced name change", kept);
  }
  std::bernoulli_distribution coin(0.5);
  for (int r = 0; r < random_subsets && unsynced.size() > 1; r++) {
    std::vector<bool> kept = forced;
    for (size_t i : unsynced) kept[i] = coin(*rng);
    add("a random subset of the unsynced changes kept (" + std::to_string(r) + ")", kept);
  }
  return out;
}

Status CrashEnv::Materialize(const CrashState& state, const std::string& to) const {
  std::lock_guard<std::mutex> l(mu_);
  // Replay the kept changes on a model: names -> inodes, inodes -> bytes. A
  // name change whose source or directory did not survive does nothing.
  std::set<std::string> dirs(base_dirs_.begin(), base_dirs_.end());
  dirs.insert("");
  std::map<std::string, uint64_t> names = base_names_;
  std::map<uint64_t, std::string> content = base_content_;
  for (size_t i = 0; i < state.crash_point; i++) {
    if (!state.kept[i]) continue;
    const Op& op = log_[i];
    switch (op.kind) {
      case Kind::kMkdir:
        if (dirs.count(RelDir(op.path))) dirs.insert(op.path);
        break;
      case Kind::kLink:
        if (dirs.count(RelDir(op.path))) names[op.path] = op.inode;
        break;
      case Kind::kRename: {
        auto it = names.find(op.path);
        if (it != names.end() && dirs.count(RelDir(op.to))) {
          const uint64_t inode = it->second;
          names.erase(it);
          names[op.to] = inode;
        }
        break;
      }
      case Kind::kUnlink:
        names.erase(op.path);
        break;
      case Kind::kTruncate:
        content[op.inode].resize(op.offset);
        break;
      case Kind::kWrite: {
        std::string& c = content[op.inode];
        const size_t n = i == state.torn ? state.torn_bytes : op.data.size();
        if (c.size() < op.offset + n) c.resize(op.offset + n, '\0');
        c.replace(op.offset, n, op.data, 0, n);
        break;
      }
      case Kind::kSyncFile:
      case Kind::kSyncDir:
        break;
    }
  }
  const std::string base = Normalize(to);
  ::mkdir(base.c_str(), 0700);
  for (const std::string& d : dirs) {  // sorted: a parent before its children
    if (!d.empty() && ::mkdir((base + "/" + d).c_str(), 0700) != 0) {
      return Status::IOError("materialize: mkdir " + d);
    }
  }
  for (const auto& [name, inode] : names) {
    if (!dirs.count(RelDir(name))) continue;
    std::ofstream f(base + "/" + name, std::ios::binary | std::ios::trunc);
    const std::string& c = content[inode];
    f.write(c.data(), static_cast<std::streamsize>(c.size()));
    if (!f) return Status::IOError("materialize: write " + name);
  }
  return Status::OK();
}

}  // namespace snapshot_test
