#include "store/auto_settings.h"

#include <unistd.h>

#include <cstdlib>
#include <sstream>

namespace snapshot {
namespace {

constexpr char kAutoMagic[] = "SQSNAUTO1";
constexpr size_t kMaxFileBytes = 64 * 1024;  // both files are a few lines

// "key value\n" lines; the value is the rest of the line.
bool NextLine(std::istringstream& in, std::string* key, std::string* value) {
  std::string line;
  if (!std::getline(in, line)) return false;
  const size_t space = line.find(' ');
  *key = line.substr(0, space);
  *value = space == std::string::npos ? "" : line.substr(space + 1);
  return true;
}

bool ParseInt(const std::string& s, int64_t* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (end == nullptr || *end != '\0') return false;
  *out = v;
  return true;
}

}  // namespace

Status ReadAutoSettings(Env* env, const std::string& store_dir, AutoSettings* out) {
  const std::string path = JoinPath(store_dir, kAutoFileName);
  std::string text;
  SNAPSHOT_RETURN_IF_ERROR(ReadSmallFile(env, path, kMaxFileBytes, &text));
  std::istringstream in(text);
  std::string key, value;
  if (!NextLine(in, &key, &value) || key != kAutoMagic) return Status::Corruption(path + " is not an AUTO file");
  AutoSettings a;
  bool have_interval = false;
  while (NextLine(in, &key, &value)) {
    if (key == "interval") {
      have_interval = ParseInt(value, &a.interval_s) && a.interval_s >= 0;
      if (!have_interval) return Status::Corruption(path + ": bad interval '" + value + "'");
    } else if (key == "policy") {
      a.policy = value;
    }  // unknown keys: written by a newer version, ignored
  }
  if (!have_interval) return Status::Corruption(path + " names no interval");
  *out = a;
  return Status::OK();
}

Status WriteAutoSettings(Env* env, const std::string& store_dir, const AutoSettings& a, unsigned mode) {
  if (a.policy.find('\n') != std::string::npos) return Status::InvalidArgument("a policy is one line");
  std::string text = std::string(kAutoMagic) + "\ninterval " + std::to_string(a.interval_s) + "\n";
  if (!a.policy.empty()) text += "policy " + a.policy + "\n";
  return WriteFileAtomically(env, JoinPath(store_dir, kAutoFileName), text, mode);
}

Status ReadAutoStatus(Env* env, const std::string& store_dir, AutoStatus* out) {
  std::string text;
  SNAPSHOT_RETURN_IF_ERROR(ReadSmallFile(env, JoinPath(store_dir, kAutoStatusFileName), kMaxFileBytes, &text));
  std::istringstream in(text);
  std::string key, value;
  AutoStatus st;
  int64_t v = 0;
  while (NextLine(in, &key, &value)) {
    if (key == "error") {
      st.error = value;
      continue;
    }
    if (!ParseInt(value, &v)) continue;
    if (key == "last_id") st.last_id = uint64_t(v);
    if (key == "last_ms") st.last_ms = v;
    if (key == "last_pid") st.last_pid = v;
    if (key == "error_ms") st.error_ms = v;
    if (key == "error_pid") st.error_pid = v;
  }
  *out = st;
  return Status::OK();
}

Status WriteAutoStatus(Env* env, const std::string& store_dir, const AutoStatus& st, unsigned mode) {
  std::string error = st.error;
  for (char& c : error) {
    if (c == '\n') c = ' ';
  }
  const std::string text = "last_id " + std::to_string(st.last_id) + "\nlast_ms " + std::to_string(st.last_ms) +
                           "\nlast_pid " + std::to_string(st.last_pid) + "\nerror_ms " + std::to_string(st.error_ms) +
                           "\nerror_pid " + std::to_string(st.error_pid) + "\nerror " + error + "\n";
  // A temporary name of this process's own: writers of several processes
  // never share one (AUTO is written under the store's lock; this is not).
  // Not synced: a status lost to a power cut is rewritten by the next
  // snapshot, and an fsync per snapshot would cost every second.
  AtomicWriteOptions options;
  options.temp_suffix = "." + std::to_string(long(getpid())) + ".tmp";
  options.sync = false;
  return WriteFileAtomically(env, JoinPath(store_dir, kAutoStatusFileName), text, mode, options);
}

}  // namespace snapshot
