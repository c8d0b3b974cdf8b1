// Helpers shared by the SQL-level tests (tests/sql/*_test.cc): the extension
// loaded into real SQLite connections on real database files, driven only
// through its SQL surface (snapshot_backup, snapshot_restore,
// snapshot_restore_to, snapshot_list, snapshot_verify, snapshot_prune,
// snapshot_config, snapshot_dir, snapshot_version).
//
// Every suite is named Sql* (run them with --gtest_filter='Sql*') and derives
// from SqlFixture (a fresh directory, no SNAPSHOT_DIR from the environment):
//
//   TEST_F(SqlShape, Something) {
//     Conn a(DbPath());
//     Fill(a, "t", 100);
//     EXPECT_EQ(1, Backup(a));
//     ExpectRefused(a, "SELECT snapshot_restore(99)", {"99"}, StoreDir());
//   }
#pragma once

#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "store/hash.h"
#include "tests/test_util.h"

namespace snapshot_test {

namespace fs = std::filesystem;
// A connection closed at scope exit (close_v2: tolerant of leftover statements).
class Conn {
 public:
  explicit Conn(const std::string& path, bool load = true) : db_(OpenDb(path, load)) {}
  // Opens with explicit flags (e.g. read-only) and loads the extension.
  Conn(const std::string& path, int flags) {
    EXPECT_EQ(SQLITE_OK, sqlite3_open_v2(path.c_str(), &db_, flags, nullptr)) << sqlite3_errmsg(db_);
    sqlite3_enable_load_extension(db_, 1);
    char* err = nullptr;
    EXPECT_EQ(SQLITE_OK, sqlite3_load_extension(db_, SNAPSHOT_EXTENSION_PATH, "sqlite3_snapshot_init", &err))
        << (err ? err : "");
    sqlite3_free(err);
  }
  ~Conn() { sqlite3_close_v2(db_); }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  operator sqlite3*() const { return db_; }
  sqlite3* get() const { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

inline bool IsError(const std::string& s) { return s.rfind("ERROR: ", 0) == 0; }

inline std::string Lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

inline bool Contains(const std::string& hay, const std::string& needle) {
  return Lower(hay).find(Lower(needle)) != std::string::npos;
}

// Runs SQL that must succeed.
inline void Ok(sqlite3* db, const std::string& sql) { EXPECT_EQ("", Exec(db, sql)) << sql; }

// A bound argument for QueryArgs.
struct Arg {
  enum Kind { kNull, kInt, kDouble, kText, kBlob } kind = kNull;
  int64_t i = 0;
  double d = 0;
  std::string s;
  static Arg Null() { return Arg(); }
  static Arg Int(int64_t v) {
    Arg a;
    a.kind = kInt;
    a.i = v;
    return a;
  }
  static Arg Double(double v) {
    Arg a;
    a.kind = kDouble;
    a.d = v;
    return a;
  }
  static Arg Text(std::string v) {
    Arg a;
    a.kind = kText;
    a.s = std::move(v);
    return a;
  }
  static Arg Blob(std::string v) {
    Arg a;
    a.kind = kBlob;
    a.s = std::move(v);
    return a;
  }
};

// Like Query(), with ?-parameters bound.
inline std::string QueryArgs(sqlite3* db, const std::string& sql, const std::vector<Arg>& args) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
    return std::string("ERROR: ") + sqlite3_errmsg(db);
  }
  for (size_t k = 0; k < args.size(); k++) {
    const Arg& a = args[k];
    const int n = int(k + 1);
    switch (a.kind) {
      case Arg::kNull: sqlite3_bind_null(stmt, n); break;
      case Arg::kInt: sqlite3_bind_int64(stmt, n, a.i); break;
      case Arg::kDouble: sqlite3_bind_double(stmt, n, a.d); break;
      case Arg::kText: sqlite3_bind_text(stmt, n, a.s.data(), int(a.s.size()), SQLITE_TRANSIENT); break;
      case Arg::kBlob: sqlite3_bind_blob(stmt, n, a.s.data(), int(a.s.size()), SQLITE_TRANSIENT); break;
    }
  }
  return StepFirstColumn(db, stmt);
}

inline int64_t Backup(sqlite3* db, const std::string& label = "") {
  const std::string r = QueryArgs(db, "SELECT snapshot_backup(?)", {Arg::Text(label)});
  EXPECT_FALSE(IsError(r)) << "snapshot_backup('" << label << "'): " << r;
  return IsError(r) ? -1 : std::strtoll(r.c_str(), nullptr, 10);
}

inline int64_t Restore(sqlite3* db, int64_t id) {
  const std::string r = Query(db, "SELECT snapshot_restore(" + std::to_string(id) + ")");
  EXPECT_EQ(std::to_string(id), r) << "snapshot_restore(" << id << ")";
  return IsError(r) ? -1 : std::strtoll(r.c_str(), nullptr, 10);
}

inline std::string RestoreTo(sqlite3* db, const std::string& path, int64_t id) {
  return QueryArgs(db, "SELECT snapshot_restore_to(?, ?)", {Arg::Text(path), Arg::Int(id)});
}

inline int64_t SnapshotCount(sqlite3* db, const std::string& schema = "main") {
  return QueryInt(db, "SELECT count(*) FROM snapshot_list('" + schema + "')");
}

// "id:label,id:label,..." oldest first.
inline std::string SnapshotIds(sqlite3* db) {
  return Query(db, "SELECT group_concat(id || ':' || label, ',') FROM (SELECT id, label FROM snapshot_list ORDER BY id)");
}

inline std::string Integrity(sqlite3* db, const std::string& schema = "main") {
  return Query(db, "PRAGMA \"" + schema + "\".integrity_check");
}

// A content digest of a schema: its schema SQL and every row of every table,
// in rowid order (long values by hash, so the digest stays small).
inline std::string Digest(sqlite3* db, const std::string& schema = "main") {
  std::string out;
  std::vector<std::string> tables;
  {
    sqlite3_stmt* s = nullptr;
    const std::string sql = "SELECT type, name, tbl_name, coalesce(sql,'') FROM \"" + schema +
                            "\".sqlite_schema ORDER BY type, name";
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) {
      return std::string("ERROR: ") + sqlite3_errmsg(db);
    }
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      const std::string type = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
      const std::string name = reinterpret_cast<const char*>(sqlite3_column_text(s, 1));
      out += type + "|" + name + "|" + reinterpret_cast<const char*>(sqlite3_column_text(s, 3)) + "\n";
      if (type == "table" && name.rfind("sqlite_", 0) != 0) tables.push_back(name);
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE) return std::string("ERROR: ") + sqlite3_errmsg(db);
  }
  for (const std::string& t : tables) {
    sqlite3_stmt* s = nullptr;
    const std::string from = " FROM \"" + schema + "\".\"" + t + "\"";
    if (sqlite3_prepare_v2(db, ("SELECT rowid, *" + from + " ORDER BY rowid").c_str(), -1, &s, nullptr) != SQLITE_OK &&
        sqlite3_prepare_v2(db, ("SELECT *" + from + " ORDER BY 1").c_str(), -1, &s, nullptr) != SQLITE_OK) {
      return std::string("ERROR: ") + sqlite3_errmsg(db);  // (the second form: WITHOUT ROWID tables)
    }
    out += "[" + t + "]";
    uint64_t rows = 0;
    std::string bytes;  // every value, tagged with its type and length
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      rows++;
      for (int c = 0; c < sqlite3_column_count(s); c++) {
        const int type = sqlite3_column_type(s, c);
        const void* p = type == SQLITE_BLOB ? sqlite3_column_blob(s, c) : sqlite3_column_text(s, c);
        const int n = sqlite3_column_bytes(s, c);
        const char tag = char('0' + type);
        bytes.push_back(tag);
        bytes.append(reinterpret_cast<const char*>(&n), sizeof n);
        if (p != nullptr && n > 0) bytes.append(static_cast<const char*>(p), size_t(n));
      }
    }
    char buf[64];
    std::snprintf(buf, sizeof buf, "%llu rows %016llx\n", static_cast<unsigned long long>(rows),
                  static_cast<unsigned long long>(snapshot::Checksum64(bytes.data(), bytes.size())));
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE) return std::string("ERROR: ") + sqlite3_errmsg(db);
    out += buf;
  }
  return out;
}

// The database image as SQLite's pager sees it (database file overlaid with
// the -wal file's committed frames), via sqlite3_serialize.
inline std::string Serialize(sqlite3* db, const std::string& schema = "main") {
  sqlite3_int64 size = 0;
  unsigned char* p = sqlite3_serialize(db, schema.c_str(), &size, 0);
  std::string out = p ? std::string(reinterpret_cast<const char*>(p), size_t(size)) : std::string();
  sqlite3_free(p);
  return out;
}

// "" when a == b, else where they first differ.
inline std::string SameBytes(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return "sizes differ: " + std::to_string(a.size()) + " vs " + std::to_string(b.size());
  auto m = std::mismatch(a.begin(), a.end(), b.begin());
  if (m.first == a.end()) return "";
  return "first difference at byte " + std::to_string(m.first - a.begin());
}

inline void WriteFile(const std::string& path, const std::string& data) {
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(nullptr, f) << path;
  ASSERT_EQ(data.size(), std::fwrite(data.data(), 1, data.size(), f));
  std::fclose(f);
}

inline bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

inline uint64_t FileSize(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? uint64_t(st.st_size) : 0;
}

inline unsigned FileMode(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? unsigned(st.st_mode) & 07777u : 0xFFFFu;
}

// Every entry under `dir` with a content hash: equal maps mean the store was
// not touched.
inline std::map<std::string, std::string> TreeState(const std::string& dir) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    out["<absent>"] = "";
    return out;
  }
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    const std::string rel = fs::relative(it->path(), dir).string();
    if (it->is_directory()) {
      out[rel] = "dir";
    } else {
      const std::string data = ReadFile(it->path().string());
      char buf[64];
      std::snprintf(buf, sizeof buf, "%zu:%016llx", data.size(),
                    static_cast<unsigned long long>(snapshot::Checksum64(data.data(), data.size())));
      out[rel] = buf;
    }
  }
  return out;
}

inline std::vector<std::string> FilesIn(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    out.push_back(it->path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

inline void FlipByte(const std::string& path, uint64_t offset) {
  std::string data = ReadFile(path);
  ASSERT_LT(offset, data.size()) << path;
  data[offset] = char(data[offset] ^ 0x5a);
  WriteFile(path, data);
}

inline std::string PackPath(const std::string& store, int64_t id) {
  char name[32];
  std::snprintf(name, sizeof name, "%010lld.pack", static_cast<long long>(id));
  return store + "/packs/" + name;
}

// Fills `table` (created if needed as (id INTEGER PRIMARY KEY, a TEXT, b BLOB))
// with n rows of random content of about row_bytes bytes each.
inline void Fill(sqlite3* db, const std::string& table, int n, int row_bytes = 200) {
  Ok(db, "CREATE TABLE IF NOT EXISTS " + table + "(id INTEGER PRIMARY KEY, a TEXT, b BLOB)");
  Ok(db, "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<" + std::to_string(n) +
             ") INSERT INTO " + table + "(a, b) SELECT 'row ' || i || ' ' || hex(randomblob(8)), randomblob(" +
             std::to_string(row_bytes) + ") FROM c");
}

inline int64_t Prune(sqlite3* db, int64_t keep_last) {
  return QueryInt(db, "SELECT snapshot_prune(" + std::to_string(keep_last) + ")");
}

inline int64_t PageSize(sqlite3* db) { return QueryInt(db, "PRAGMA page_size"); }
inline int64_t PageCount(sqlite3* db) { return QueryInt(db, "PRAGMA page_count"); }

// The base of every suite: a fresh directory, and no SNAPSHOT_DIR from the
// environment the tests were started in.
class SqlFixture : public ::testing::Test {
 protected:
  SqlFixture() : no_env_dir_("SNAPSHOT_DIR", nullptr) {}
  std::string Path(const std::string& name) const { return dir_ / name; }
  std::string DbPath() const { return dir_ / "app.db"; }
  std::string StoreDir() const { return DbPath() + "-snapshots"; }

  TempDir dir_;
  ScopedEnv no_env_dir_;
};

// Checks that `sql` fails with an error mentioning every one of `needles`,
// and changes neither the store directory nor the database.
inline void ExpectRefused(sqlite3* db, const std::string& sql, const std::vector<std::string>& needles,
                   const std::string& store_dir, const std::vector<Arg>& args = {}) {
  const auto store_before = TreeState(store_dir);
  const std::string digest_before = Digest(db);
  const std::string r = QueryArgs(db, sql, args);
  EXPECT_TRUE(IsError(r)) << sql << " succeeded: " << r;
  for (const std::string& n : needles) EXPECT_TRUE(Contains(r, n)) << sql << ": error '" << r << "' lacks '" << n << "'";
  EXPECT_EQ(store_before, TreeState(store_dir)) << sql << " changed the store";
  EXPECT_EQ(digest_before, Digest(db)) << sql << " changed the database";
}

// Journal modes the parameterized suites run in.
inline std::string ModeName(const ::testing::TestParamInfo<std::string>& info) { return info.param; }

}  // namespace snapshot_test
