#include "vfs/boot_id.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <mutex>

namespace snapshot {
namespace {

// The file holds the id as text, a UUID: 32 hex digits and dashes.
void ReadBootId(uint8_t out[kBootIdSize]) {
  std::memset(out, 0, kBootIdSize);
  char text[64] = {};
  int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t n = read(fd, text, sizeof text - 1);
  close(fd);
  int k = 0;
  for (ssize_t i = 0; i < n && k < int(2 * kBootIdSize); i++) {
    const char c = text[i];
    int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (v < 0) continue;
    out[k / 2] = uint8_t(out[k / 2] | (k % 2 == 0 ? v << 4 : v));
    k++;
  }
}

}  // namespace

// Read once per process (a process does not outlive its boot): a snapshot
// asks for it twice while it holds the database's write lock.
void CurrentBootId(uint8_t out[kBootIdSize]) {
  static uint8_t id[kBootIdSize];
  static std::once_flag once;
  std::call_once(once, [] { ReadBootId(id); });
  std::memcpy(out, id, kBootIdSize);
}

int64_t MonotonicMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace snapshot
