// Helpers for tests that run several processes against one database: time,
// memory shared with forked children, the children themselves, and SQLite
// calls that are safe in a child (no gtest macros).
#pragma once

#include <errno.h>
#include <link.h>
#include <sqlite3.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <functional>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace snapshot_test {

// CLOCK_MONOTONIC is one clock for every process of the machine.
inline int64_t NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}
inline int64_t NowMs() { return NowNs() / 1000000; }
inline void SleepMs(double ms) { usleep(useconds_t(ms * 1000)); }

// An object of type T in memory shared with children forked later.
template <typename T>
class Shared {
 public:
  Shared() {
    void* p = mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) abort();
    ptr_ = new (p) T();
  }
  ~Shared() {
    ptr_->~T();
    munmap(ptr_, sizeof(T));
  }
  Shared(const Shared&) = delete;
  Shared& operator=(const Shared&) = delete;
  T* operator->() const { return ptr_; }
  T& operator*() const { return *ptr_; }

 private:
  T* ptr_;
};
static_assert(std::atomic<int64_t>::is_always_lock_free, "shared-memory atomics must be lock-free");

inline void SetMsg(char* buf, size_t n, const std::string& s) {
  std::snprintf(buf, n, "%s", s.c_str());
}

// A child process reports its failure to the parent through shared memory:
// the message, then the flag; returns the child's exit status.
template <size_t N>
int ReportChildFailure(char (&msg)[N], std::atomic<int>& failed, const std::string& m) {
  SetMsg(msg, N, m);
  failed.store(1);
  return 2;
}

// Descriptors this process has open on `path` or its -wal/-shm/-journal.
// Must be 0 whenever the parent forks: an SQLite connection (its locks and
// its unix VFS inode records) must never be copied into a child. Reading
// the file with other descriptors while a connection is open is also wrong
// (closing any descriptor drops the process's POSIX locks on the file).
inline int OpenFdsTo(const std::string& path) {
  int n = 0;
  FILE* p = popen(("ls -l /proc/" + std::to_string(getpid()) + "/fd 2>/dev/null").c_str(), "r");
  if (p == nullptr) return -1;
  char line[1024];
  while (fgets(line, sizeof line, p)) {
    std::string s(line);
    const size_t arrow = s.find(" -> ");
    if (arrow == std::string::npos) continue;
    std::string target = s.substr(arrow + 4);
    while (!target.empty() && target.back() == '\n') target.pop_back();
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
      if (target == path + suffix) n++;
    }
  }
  pclose(p);
  return n;
}

// Children started by a test; any still running when the test ends (say,
// after a failed ASSERT) are killed, by pid.
class Children {
 public:
  // With `db_path`, checks at each Spawn() that this process has nothing
  // of that database open (see OpenFdsTo).
  explicit Children(std::string db_path = "") : guard_(std::move(db_path)) {}
  ~Children() {
    for (pid_t pid : pids_) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }
  // Runs body() in a child process; its return value is the exit code.
  pid_t Spawn(const std::function<int()>& body) {
    if (!guard_.empty()) {
      const int open_fds = OpenFdsTo(guard_);
      if (open_fds != 0) ADD_FAILURE() << "forking with " << open_fds << " descriptors open on " << guard_;
    }
    fflush(nullptr);
    pid_t pid = fork();
    if (pid < 0) {
      perror("fork");
      abort();
    }
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      int rc = 1;
      try {
        rc = body();
      } catch (...) {
        rc = 99;
      }
      _exit(rc);
    }
    pids_.push_back(pid);
    return pid;
  }
  // Exit code; 128 + signal number when killed by a signal; -1 on timeout
  // (the child is then killed).
  int Wait(pid_t pid, int timeout_ms = 120000) {
    const int64_t deadline = NowMs() + timeout_ms;
    int status = 0;
    for (;;) {
      pid_t r = waitpid(pid, &status, WNOHANG);
      if (r == pid) break;
      if (r < 0 && errno != EINTR) return -2;
      if (NowMs() > deadline) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        Forget(pid);
        return -1;
      }
      SleepMs(2);
    }
    Forget(pid);
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -3;
  }
  // SIGKILL and reap; returns the wait status code as Wait() does.
  int Kill(pid_t pid) {
    kill(pid, SIGKILL);
    return Wait(pid, 30000);
  }

 private:
  void Forget(pid_t pid) { pids_.erase(std::remove(pids_.begin(), pids_.end(), pid), pids_.end()); }
  std::string guard_;
  std::vector<pid_t> pids_;
};

inline int64_t FileSize(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? int64_t(st.st_size) : -1;
}

inline std::string Sql(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char* s = sqlite3_vmprintf(fmt, ap);
  va_end(ap);
  std::string out = s ? s : "";
  sqlite3_free(s);
  return out;
}

class Stmt {
 public:
  Stmt(sqlite3* db, const std::string& sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql.c_str(), -1, &s_, nullptr);
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool ok() const { return rc_ == SQLITE_OK; }
  int prepare_rc() const { return rc_; }
  Stmt& Bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& Bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), int(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& BindBlob(int i, const std::string& v) {
    sqlite3_bind_blob(s_, i, v.data(), int(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  // A failed prepare reports its error at the first step.
  int Step() { return rc_ != SQLITE_OK ? rc_ : sqlite3_step(s_); }
  void Reset() { sqlite3_reset(s_); }
  int64_t Int(int c) const { return sqlite3_column_int64(s_, c); }
  std::string Text(int c) const {
    const char* t = reinterpret_cast<const char*>(sqlite3_column_blob(s_, c));
    return t ? std::string(t, size_t(sqlite3_column_bytes(s_, c))) : std::string();
  }
  std::string_view View(int c) const {
    const char* t = reinterpret_cast<const char*>(sqlite3_column_blob(s_, c));
    return t ? std::string_view(t, size_t(sqlite3_column_bytes(s_, c))) : std::string_view();
  }
  std::string Error() const { return sqlite3_errmsg(db_); }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
  int rc_;
};

inline int ExecRc(sqlite3* db, const std::string& sql, std::string* err = nullptr) {
  char* e = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &e);
  if (rc != SQLITE_OK && err) *err = e ? e : sqlite3_errstr(rc);
  sqlite3_free(e);
  return rc;
}

// One integer from a query; the statement is finalized before returning, so
// it does not keep a read transaction open.
inline bool QueryI64(sqlite3* db, const std::string& sql, int64_t* out, std::string* err) {
  Stmt s(db, sql);
  if (s.Step() != SQLITE_ROW) {
    *err = sql + ": " + s.Error();
    return false;
  }
  *out = s.Int(0);
  return true;
}

inline bool IsBusy(int rc) { return (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED; }

// FNV-1a over successive byte ranges (row checksums the tests recompute).
class Fnv1a {
 public:
  void Mix(const void* p, size_t n) {
    const unsigned char* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; i++) {
      h_ ^= b[i];
      h_ *= 1099511628211ull;
    }
  }
  uint64_t value() const { return h_; }

 private:
  uint64_t h_ = 14695981039346656037ull;
};

inline uint64_t SplitMix(uint64_t* x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// ---------------------------------------------------------------------------
// The extension in real processes (SNAPSHOT_EXTENSION_PATH and
// SNAPSHOT_SQLITE3_SHELL come from tests/CMakeLists.txt).

// Sanitizer runtimes this process runs with: an exec'd sqlite3 shell needs
// them preloaded to load an instrumented extension.
inline std::string SanitizerPreload() {
  std::vector<std::string> libs;
  dl_iterate_phdr(
      [](struct dl_phdr_info* info, size_t, void* data) {
        const std::string name = info->dlpi_name ? info->dlpi_name : "";
        if (name.find("libasan.so") != std::string::npos || name.find("libubsan.so") != std::string::npos ||
            name.find("libtsan.so") != std::string::npos) {
          static_cast<std::vector<std::string>*>(data)->push_back(name);
        }
        return 0;
      },
      &libs);
  std::string out;
  for (const std::string& l : libs) out += (out.empty() ? "" : ":") + l;
  return out;
}

// Runs `sql` in the sqlite3 shell with the extension loaded, as a cron job
// would. Returns its output (stdout and stderr); *status is its exit code.
inline std::string RunShell(Children* children, const std::string& db_path, const std::string& sql, int* status) {
  int fds[2];
  if (pipe(fds) != 0) abort();
  const std::string preload = SanitizerPreload();
  const std::string load = std::string(".load ") + SNAPSHOT_EXTENSION_PATH;
  pid_t pid = children->Spawn([&]() -> int {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    close(fds[0]);
    close(fds[1]);
    if (!preload.empty()) {
      setenv("LD_PRELOAD", preload.c_str(), 1);
      setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
    }
    execlp(SNAPSHOT_SQLITE3_SHELL, SNAPSHOT_SQLITE3_SHELL, "-batch", "-bail", "-cmd", load.c_str(), db_path.c_str(),
           sql.c_str(), static_cast<char*>(nullptr));
    std::fprintf(stderr, "cannot exec %s: %s\n", SNAPSHOT_SQLITE3_SHELL, strerror(errno));
    return 127;
  });
  close(fds[1]);
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, size_t(n));
  }
  close(fds[0]);
  *status = children->Wait(pid, 60000);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

// Opens a connection; with `load`, loads the extension into it.
inline sqlite3* OpenConn(const std::string& path, bool load, std::string* err) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  if (rc != SQLITE_OK) {
    *err = std::string("open ") + path + ": " + sqlite3_errstr(rc);
    sqlite3_close(db);
    return nullptr;
  }
  if (load) {
    sqlite3_enable_load_extension(db, 1);
    char* e = nullptr;
    if (sqlite3_load_extension(db, SNAPSHOT_EXTENSION_PATH, "sqlite3_snapshot_init", &e) != SQLITE_OK) {
      *err = std::string("load extension: ") + (e ? e : "?");
      sqlite3_free(e);
      sqlite3_close(db);
      return nullptr;
    }
  }
  return db;
}

// Closes a connection when the scope ends, however the test leaves it (an
// ASSERT returns early).
class CloseAtExit {
 public:
  explicit CloseAtExit(sqlite3* db) : db_(db) {}
  ~CloseAtExit() { sqlite3_close(db_); }
  CloseAtExit(const CloseAtExit&) = delete;
  CloseAtExit& operator=(const CloseAtExit&) = delete;
  // The test closed the connection itself.
  void Release() { db_ = nullptr; }

 private:
  sqlite3* db_;
};

}  // namespace snapshot_test
