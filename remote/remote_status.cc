#include "remote/remote_status.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <sstream>

#include "store/format.h"

namespace snapshot {
namespace {

constexpr char kMagic[] = "SQSNRSTATUS1";
// About 100 bytes a snapshot: room for far more snapshots than a store keeps.
constexpr uint64_t kMaxFileBytes = 64ull << 20;

bool ParseU64(const std::string& s, uint64_t* out) {
  if (s.empty() || s[0] == '-') return false;
  char* end = nullptr;
  *out = std::strtoull(s.c_str(), &end, 10);
  return end != nullptr && *end == '\0';
}

bool ParseI64(const std::string& s, int64_t* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  *out = std::strtoll(s.c_str(), &end, 10);
  return end != nullptr && *end == '\0';
}

std::string Hex(const std::string& s) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

bool Unhex(const std::string& s, std::string* out) {
  if (s.size() % 2 != 0) return false;
  out->clear();
  for (size_t i = 0; i < s.size(); i += 2) {
    char* end = nullptr;
    const std::string byte = s.substr(i, 2);
    const long v = std::strtol(byte.c_str(), &end, 16);
    if (end == nullptr || *end != '\0') return false;
    out->push_back(char(v));
  }
  return true;
}

bool ParseSnapshot(const std::string& value, SnapshotInfo* info) {
  std::istringstream in(value);
  std::string f[8];
  for (std::string& field : f) in >> field;
  uint64_t page_size = 0, page_count = 0;
  if (!ParseU64(f[0], &info->id) || !ParseI64(f[1], &info->created_ms) || !ParseI64(f[2], &info->commit_ms) ||
      !ParseU64(f[3], &page_size) || !ParseU64(f[4], &page_count) || !ParseU64(f[5], &info->pages_new) ||
      !ParseU64(f[6], &info->bytes_new) || !(f[7] == "-" || Unhex(f[7], &info->label))) {
    return false;
  }
  info->page_size = uint32_t(page_size);
  info->page_count = uint32_t(page_count);
  return true;
}

}  // namespace

Status ReadRemoteRecord(Env* env, const std::string& store_dir, RemoteRecord* out) {
  const std::string path = JoinPath(store_dir, kRemoteStatusFileName);
  std::string text;
  SNAPSHOT_RETURN_IF_ERROR(ReadSmallFile(env, path, kMaxFileBytes, &text));
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line) || line != kMagic) return Status::Corruption(path + " is not a REMOTE-STATUS file");
  RemoteRecord r;
  while (std::getline(in, line)) {
    const size_t space = line.find(' ');
    const std::string key = line.substr(0, space);
    const std::string value = space == std::string::npos ? "" : line.substr(space + 1);
    if (key == "url") r.url = value;
    if (key == "pushed_ms") ParseI64(value, &r.pushed_ms);
    if (key == "error_ms") ParseI64(value, &r.error_ms);
    if (key == "error") r.error = value;
    if (key == "snapshot") {
      SnapshotInfo info;
      if (!ParseSnapshot(value, &info)) return Status::Corruption(path + ": bad line '" + line + "'");
      r.snapshots.push_back(info);
    }  // other keys: a newer writer's
  }
  std::sort(r.snapshots.begin(), r.snapshots.end(),
            [](const SnapshotInfo& a, const SnapshotInfo& b) { return a.id < b.id; });
  *out = std::move(r);
  return Status::OK();
}

Status WriteRemoteRecord(Env* env, const std::string& store_dir, const RemoteRecord& r, unsigned mode) {
  std::string error = r.error;
  std::replace(error.begin(), error.end(), '\n', ' ');
  std::string text = std::string(kMagic) + "\nurl " + r.url + "\npushed_ms " + std::to_string(r.pushed_ms) +
                     "\nerror_ms " + std::to_string(r.error_ms) + "\nerror " + error + "\n";
  for (const SnapshotInfo& i : r.snapshots) {
    text += "snapshot " + std::to_string(i.id) + " " + std::to_string(i.created_ms) + " " +
            std::to_string(i.commit_ms) + " " + std::to_string(i.page_size) + " " + std::to_string(i.page_count) +
            " " + std::to_string(i.pages_new) + " " + std::to_string(i.bytes_new) + " " +
            (i.label.empty() ? std::string("-") : Hex(i.label)) + "\n";
  }
  AtomicWriteOptions options;
  options.temp_suffix = "." + std::to_string(long(getpid())) + ".tmp";
  options.sync = false;
  return WriteFileAtomically(env, JoinPath(store_dir, kRemoteStatusFileName), text, mode, options);
}

unsigned StoreFileMode(Env* env, const std::string& store_dir) {
  unsigned mode = 0600;
  if (!env->GetFileMode(JoinPath(store_dir, kStoreFileName), &mode).ok()) return 0600;
  return mode & 0666u;
}

}  // namespace snapshot
