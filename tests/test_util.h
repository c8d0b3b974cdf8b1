// Helpers shared by the tests: temporary directories, real SQLite databases
// on disk with the extension loaded, and one-line queries.
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "vfs/sqlite_format.h"

namespace snapshot_test {

// A fresh directory under $TMPDIR, removed with its contents at the end.
class TempDir {
 public:
  TempDir() {
    const char* base = getenv("TMPDIR");
    std::string templ = std::string(base && *base ? base : "/tmp") + "/snapshot-test-XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    path_ = mkdtemp(buf.data());
  }
  ~TempDir() { (void)!system(("rm -rf '" + path_ + "'").c_str()); }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Runs `body` in a forked child and fails the test unless the child's
// assertions all passed (the child prints its failures). For what must not
// happen to this process: a VFS registered over another, a resource limit.
template <typename Body>
void InChildProcess(Body body) {
  std::fflush(nullptr);
  const pid_t child = fork();
  if (child == 0) {
    body();
    std::fflush(stdout);
    _exit(::testing::Test::HasFailure() ? 1 : 0);
  }
  int status = 0;
  ASSERT_EQ(child, waitpid(child, &status, 0));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "see the failures above, from the child";
}

// Loads build/snapshot.so into a connection.
inline void LoadExtension(sqlite3* db) {
  sqlite3_enable_load_extension(db, 1);
  char* err = nullptr;
  EXPECT_EQ(SQLITE_OK, sqlite3_load_extension(db, SNAPSHOT_EXTENSION_PATH, "sqlite3_snapshot_init", &err))
      << (err ? err : "");
  sqlite3_free(err);
}

// Opens `path` and loads build/snapshot.so into the connection.
inline sqlite3* OpenDb(const std::string& path, bool load = true) {
  sqlite3* db = nullptr;
  EXPECT_EQ(SQLITE_OK, sqlite3_open(path.c_str(), &db)) << sqlite3_errmsg(db);
  if (load) LoadExtension(db);
  return db;
}

// Opens `path` through the extension's `snapshot` VFS (`?vfs=snapshot`), as
// an application's writer would; the extension is loaded first, which
// registers the VFS.
inline sqlite3* OpenThroughVfs(const std::string& path) {
  sqlite3_close(OpenDb(":memory:"));
  sqlite3* db = nullptr;
  EXPECT_EQ(SQLITE_OK, sqlite3_open_v2(("file:" + path + "?vfs=snapshot").c_str(), &db,
                                       SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI, nullptr));
  sqlite3_busy_timeout(db, 5000);
  return db;
}

// Runs SQL; returns "" on success or the error message.
inline std::string Exec(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  std::string msg = rc == SQLITE_OK ? "" : (err ? err : sqlite3_errstr(rc));
  sqlite3_free(err);
  return msg;
}

// First column of the first row as text ("" when no row; "ERROR: msg" on error).
// Steps a prepared statement once and finalizes it: the first column of its
// first row as text ("" when no row; "ERROR: msg" on error).
inline std::string StepFirstColumn(sqlite3* db, sqlite3_stmt* stmt) {
  std::string out;
  int rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW) {
    const unsigned char* t = sqlite3_column_text(stmt, 0);
    out = t ? reinterpret_cast<const char*>(t) : "NULL";
  } else if (rc != SQLITE_DONE) {
    out = std::string("ERROR: ") + sqlite3_errmsg(db);
  }
  sqlite3_finalize(stmt);
  return out;
}

inline std::string Query(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
    return std::string("ERROR: ") + sqlite3_errmsg(db);
  }
  return StepFirstColumn(db, stmt);
}

inline int64_t QueryInt(sqlite3* db, const std::string& sql) {
  const std::string s = Query(db, sql);
  EXPECT_EQ(s.rfind("ERROR", 0), std::string::npos) << sql << ": " << s;
  return std::strtoll(s.c_str(), nullptr, 10);
}

// Sets and restores an environment variable.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    const char* old = getenv(name);
    had_ = old != nullptr;
    if (had_) old_ = old;
    if (value) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (had_) {
      setenv(name_.c_str(), old_.c_str(), 1);
    } else {
      unsetenv(name_.c_str());
    }
  }

 private:
  std::string name_, old_;
  bool had_ = false;
};

inline std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Zeroes the database header fields that SQLite itself rewrites whenever
// pages are copied into a live file: the change counter, the schema cookie,
// the version-valid-for number and the SQLite version (vfs/sqlite_format.h).
inline void ZeroRewrittenHeaderFields(char* page1, size_t size) {
  for (size_t field : {snapshot::kDbHeaderChangeCounterOffset, snapshot::kDbHeaderSchemaCookieOffset,
                       snapshot::kDbHeaderVersionValidForOffset, snapshot::kDbHeaderSqliteVersionOffset}) {
    for (size_t i = field; i < field + 4 && i < size; i++) page1[i] = 0;
  }
}
inline void ZeroRewrittenHeaderFields(std::string* page1) { ZeroRewrittenHeaderFields(&(*page1)[0], page1->size()); }

// Compares two database images page by page, ignoring the header fields
// ZeroRewrittenHeaderFields names. Returns "" when equal, else a description.
inline std::string ComparePages(const std::string& a, const std::string& b, uint32_t page_size) {
  if (a.size() != b.size()) return "sizes differ: " + std::to_string(a.size()) + " vs " + std::to_string(b.size());
  for (size_t off = 0; off < a.size(); off += page_size) {
    std::string pa = a.substr(off, page_size), pb = b.substr(off, page_size);
    if (off == 0) {
      ZeroRewrittenHeaderFields(&pa);
      ZeroRewrittenHeaderFields(&pb);
    }
    if (pa != pb) return "page " + std::to_string(off / page_size + 1) + " differs";
  }
  return "";
}

}  // namespace snapshot_test
