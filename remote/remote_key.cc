#include "remote/remote_key.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace snapshot {
namespace {

// A key file is 32 raw bytes or 64 hex digits and a line end; anything
// much larger is not a key file.
constexpr size_t kMaxKeyFileBytes = 256;
const char kKdfContext[crypto_kdf_CONTEXTBYTES + 1] = "SQSNOBJ1";

std::string OctalMode(unsigned mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", mode & 07777);
  return text;
}

// The key bytes of a file's contents; false when they are not a key.
bool ParseKey(const unsigned char* data, size_t n, unsigned char key[RemoteKey::kBytes]) {
  // 32 hex digits are half a key written as text, not 32 random bytes
  // (which are all hex digits once in 10^34).
  const bool all_hex = std::all_of(data, data + n, [](unsigned char c) { return std::isxdigit(c) != 0; });
  if (n == RemoteKey::kBytes && !all_hex) {
    std::memcpy(key, data, n);
    return true;
  }
  while (n > 0 && (data[n - 1] == '\n' || data[n - 1] == '\r' || data[n - 1] == ' ')) n--;
  size_t decoded = 0;
  const char* end = nullptr;
  return n == 2 * RemoteKey::kBytes &&
         sodium_hex2bin(key, RemoteKey::kBytes, reinterpret_cast<const char*>(data), n, nullptr, &decoded, &end) == 0 &&
         decoded == RemoteKey::kBytes && end == reinterpret_cast<const char*>(data) + n;
}

}  // namespace

Status RemoteKey::Load(const std::string& path, std::unique_ptr<RemoteKey>* out) {
  const std::string what = std::string(kRemoteKeyFileVariable) + " " + path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    return Status::InvalidArgument("cannot read the key file " + what + ": " + std::strerror(errno));
  }
  struct stat st;
  unsigned char data[kMaxKeyFileBytes + 1];
  ssize_t n = -1;
  std::string problem;
  if (::fstat(fd, &st) != 0) {
    problem = std::string("cannot stat it: ") + std::strerror(errno);
  } else if (!S_ISREG(st.st_mode)) {
    problem = "it is not a regular file";
  } else if ((st.st_mode & 077) != 0) {
    // Checked on the open file, so a file swapped in meanwhile is not read.
    problem = "others than its owner may access it (mode " + OctalMode(st.st_mode) + "): chmod 600 " + path;
  } else {
    n = ::read(fd, data, sizeof data);
    if (n < 0) problem = std::string("cannot read it: ") + std::strerror(errno);
  }
  ::close(fd);
  if (!problem.empty()) return Status::InvalidArgument("the key file " + what + " is refused: " + problem);
  unsigned char key[kBytes];
  const bool parsed = ParseKey(data, size_t(n), key);
  sodium_memzero(data, sizeof data);
  if (!parsed) {
    return Status::InvalidArgument("the key file " + what +
                                   " holds no key: it must hold 64 hex digits (or 32 raw bytes), as "
                                   "`head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'` writes");
  }
  *out = FromBytes(key, path);
  sodium_memzero(key, sizeof key);
  return Status::OK();
}

std::unique_ptr<RemoteKey> RemoteKey::FromBytes(const unsigned char key[kBytes], std::string source) {
  // Picks the fastest implementations once; safe to call again and from
  // any thread. It fails only without a random source, which nothing here
  // uses (nonces are derived, not drawn).
  if (sodium_init() < 0) {
    // Still correct (the portable implementations are used), so go on.
  }
  std::unique_ptr<RemoteKey> k(new RemoteKey());
  unsigned char id[kBytes];
  crypto_kdf_derive_from_key(k->object_key_, kBytes, 1, kKdfContext, key);
  crypto_kdf_derive_from_key(k->nonce_key_, kBytes, 2, kKdfContext, key);
  crypto_kdf_derive_from_key(id, kBytes, 3, kKdfContext, key);
  std::memcpy(k->id_, id, kIdBytes);
  sodium_memzero(id, sizeof id);
  k->source_ = std::move(source);
  return k;
}

RemoteKey::~RemoteKey() {
  sodium_memzero(object_key_, sizeof object_key_);
  sodium_memzero(nonce_key_, sizeof nonce_key_);
}

std::string RemoteKeyFileSetting() {
  const char* path = std::getenv(kRemoteKeyFileVariable);
  return path ? path : "";
}

}  // namespace snapshot
