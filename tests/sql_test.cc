// SQL-level tests: the extension loaded into real SQLite connections on real
// database files, driven only through its SQL surface (snapshot_backup,
// snapshot_restore, snapshot_restore_to, snapshot_list, snapshot_verify,
// snapshot_prune, snapshot_config, snapshot_dir, snapshot_version).
//
// Every suite is named Sql*; run them with --gtest_filter='Sql*'. The >1 GiB
// lock-byte-page test runs by default; SNAPSHOT_SKIP_BIG=1 skips it.
#include "tests/shim_vfs.h"
#include "tests/test_util.h"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "store/hash.h"

namespace snapshot_test {
namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

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

bool IsError(const std::string& s) { return s.rfind("ERROR: ", 0) == 0; }

std::string Lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool Contains(const std::string& hay, const std::string& needle) {
  return Lower(hay).find(Lower(needle)) != std::string::npos;
}

// Runs SQL that must succeed.
void Ok(sqlite3* db, const std::string& sql) { EXPECT_EQ("", Exec(db, sql)) << sql; }

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
std::string QueryArgs(sqlite3* db, const std::string& sql, const std::vector<Arg>& args) {
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

int64_t Backup(sqlite3* db, const std::string& label = "") {
  const std::string r = QueryArgs(db, "SELECT snapshot_backup(?)", {Arg::Text(label)});
  EXPECT_FALSE(IsError(r)) << "snapshot_backup('" << label << "'): " << r;
  return IsError(r) ? -1 : std::strtoll(r.c_str(), nullptr, 10);
}

int64_t Restore(sqlite3* db, int64_t id) {
  const std::string r = Query(db, "SELECT snapshot_restore(" + std::to_string(id) + ")");
  EXPECT_EQ(std::to_string(id), r) << "snapshot_restore(" << id << ")";
  return IsError(r) ? -1 : std::strtoll(r.c_str(), nullptr, 10);
}

std::string RestoreTo(sqlite3* db, const std::string& path, int64_t id) {
  return QueryArgs(db, "SELECT snapshot_restore_to(?, ?)", {Arg::Text(path), Arg::Int(id)});
}

int64_t SnapshotCount(sqlite3* db, const std::string& schema = "main") {
  return QueryInt(db, "SELECT count(*) FROM snapshot_list('" + schema + "')");
}

// "id:label,id:label,..." oldest first.
std::string SnapshotIds(sqlite3* db) {
  return Query(db, "SELECT group_concat(id || ':' || label, ',') FROM (SELECT id, label FROM snapshot_list ORDER BY id)");
}

std::string Integrity(sqlite3* db, const std::string& schema = "main") {
  return Query(db, "PRAGMA \"" + schema + "\".integrity_check");
}

// A content digest of a schema: its schema SQL and every row of every table,
// in rowid order (long values by hash, so the digest stays small).
std::string Digest(sqlite3* db, const std::string& schema = "main") {
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
std::string Serialize(sqlite3* db, const std::string& schema = "main") {
  sqlite3_int64 size = 0;
  unsigned char* p = sqlite3_serialize(db, schema.c_str(), &size, 0);
  std::string out = p ? std::string(reinterpret_cast<const char*>(p), size_t(size)) : std::string();
  sqlite3_free(p);
  return out;
}

// "" when a == b, else where they first differ.
std::string SameBytes(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return "sizes differ: " + std::to_string(a.size()) + " vs " + std::to_string(b.size());
  auto m = std::mismatch(a.begin(), a.end(), b.begin());
  if (m.first == a.end()) return "";
  return "first difference at byte " + std::to_string(m.first - a.begin());
}

void WriteFile(const std::string& path, const std::string& data) {
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(nullptr, f) << path;
  ASSERT_EQ(data.size(), std::fwrite(data.data(), 1, data.size(), f));
  std::fclose(f);
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

uint64_t FileSize(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? uint64_t(st.st_size) : 0;
}

unsigned FileMode(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? unsigned(st.st_mode) & 07777u : 0xFFFFu;
}

// Every entry under `dir` with a content hash: equal maps mean the store was
// not touched.
std::map<std::string, std::string> TreeState(const std::string& dir) {
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

std::vector<std::string> FilesIn(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    out.push_back(it->path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void FlipByte(const std::string& path, uint64_t offset) {
  std::string data = ReadFile(path);
  ASSERT_LT(offset, data.size()) << path;
  data[offset] = char(data[offset] ^ 0x5a);
  WriteFile(path, data);
}

std::string PackPath(const std::string& store, int64_t id) {
  char name[32];
  std::snprintf(name, sizeof name, "%010lld.pack", static_cast<long long>(id));
  return store + "/packs/" + name;
}

// Fills `table` (created if needed as (id INTEGER PRIMARY KEY, a TEXT, b BLOB))
// with n rows of random content of about row_bytes bytes each.
void Fill(sqlite3* db, const std::string& table, int n, int row_bytes = 200) {
  Ok(db, "CREATE TABLE IF NOT EXISTS " + table + "(id INTEGER PRIMARY KEY, a TEXT, b BLOB)");
  Ok(db, "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<" + std::to_string(n) +
             ") INSERT INTO " + table + "(a, b) SELECT 'row ' || i || ' ' || hex(randomblob(8)), randomblob(" +
             std::to_string(row_bytes) + ") FROM c");
}

int64_t Prune(sqlite3* db, int64_t keep_last) {
  return QueryInt(db, "SELECT snapshot_prune(" + std::to_string(keep_last) + ")");
}

int64_t PageSize(sqlite3* db) { return QueryInt(db, "PRAGMA page_size"); }
int64_t PageCount(sqlite3* db) { return QueryInt(db, "PRAGMA page_count"); }

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
void ExpectRefused(sqlite3* db, const std::string& sql, const std::vector<std::string>& needles,
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
std::string ModeName(const ::testing::TestParamInfo<std::string>& info) { return info.param; }

// ---------------------------------------------------------------------------
// 1. The README story
// ---------------------------------------------------------------------------

class SqlReadme : public SqlFixture, public ::testing::WithParamInterface<std::string> {};

TEST_P(SqlReadme, BackupDeleteRestoreBringsRowsBackForEveryConnection) {
  Conn a(DbPath());
  Ok(a, "PRAGMA journal_mode=" + GetParam());
  Ok(a, "CREATE TABLE important(id INTEGER PRIMARY KEY, v TEXT)");
  Ok(a, "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<1000) "
        "INSERT INTO important(v) SELECT 'value ' || i FROM c");
  // Another connection, opened before the restore, with schema and pages cached.
  Conn b(DbPath());
  EXPECT_EQ(1000, QueryInt(b, "SELECT count(*) FROM important"));

  EXPECT_EQ("1", Query(a, "SELECT snapshot_backup('before-upgrade')"));
  const std::string before = Digest(a);
  EXPECT_EQ("1|before-upgrade|4096", Query(a, "SELECT id || '|' || label || '|' || page_size FROM snapshot_list"));
  EXPECT_EQ(PageCount(a), QueryInt(a, "SELECT page_count FROM snapshot_list WHERE id = 1"));
  EXPECT_EQ(PageCount(a) * 4096, QueryInt(a, "SELECT db_bytes FROM snapshot_list WHERE id = 1"));
  EXPECT_EQ(PageCount(a), QueryInt(a, "SELECT pages_new FROM snapshot_list WHERE id = 1"));
  EXPECT_LT(0, QueryInt(a, "SELECT bytes_new FROM snapshot_list WHERE id = 1"));
  const std::string created = Query(a, "SELECT created FROM snapshot_list WHERE id = 1");
  EXPECT_EQ(24u, created.size()) << created;  // 2026-01-02T03:04:05.678Z
  EXPECT_EQ('Z', created.back()) << created;

  Ok(a, "DELETE FROM important");
  EXPECT_EQ(0, QueryInt(b, "SELECT count(*) FROM important"));

  EXPECT_EQ("1", Query(a, "SELECT snapshot_restore(1)"));
  EXPECT_EQ(1000, QueryInt(a, "SELECT count(*) FROM important"));
  EXPECT_EQ(before, Digest(a));
  EXPECT_EQ("ok", Integrity(a));
  // The other connection sees the restored rows at its next query.
  EXPECT_EQ(1000, QueryInt(b, "SELECT count(*) FROM important"));
  EXPECT_EQ(before, Digest(b));
  EXPECT_EQ("ok", Integrity(b));
  EXPECT_EQ(Lower(GetParam()), Query(a, "PRAGMA journal_mode"));
  EXPECT_EQ("1:before-upgrade,2:pre-restore", SnapshotIds(a));
  // A connection opened afterwards sees it too.
  Conn c(DbPath());
  EXPECT_EQ(before, Digest(c));
}

TEST_P(SqlReadme, PreparedStatementsReprepareAfterSchemaDifference) {
  Conn a(DbPath());
  Ok(a, "PRAGMA journal_mode=" + GetParam());
  Ok(a, "CREATE TABLE t(a); INSERT INTO t VALUES (1), (2), (3);"
        "CREATE TABLE x(v); INSERT INTO x VALUES ('x1'), ('x2');");
  EXPECT_EQ(1, Backup(a, "v1"));
  // Change the schema after the snapshot: drop a table, change one, add one.
  Ok(a, "DROP TABLE x; ALTER TABLE t ADD COLUMN b DEFAULT 7; CREATE TABLE y(z); INSERT INTO y VALUES (1);");

  Conn b(DbPath());
  sqlite3_stmt* on_t = nullptr;
  sqlite3_stmt* on_y = nullptr;
  sqlite3_stmt* own = nullptr;  // the restoring connection's own statement
  ASSERT_EQ(SQLITE_OK, sqlite3_prepare_v2(b, "SELECT * FROM t ORDER BY rowid", -1, &on_t, nullptr));
  ASSERT_EQ(SQLITE_OK, sqlite3_prepare_v2(b, "SELECT count(*) FROM y", -1, &on_y, nullptr));
  ASSERT_EQ(SQLITE_OK, sqlite3_prepare_v2(a, "SELECT * FROM t ORDER BY rowid", -1, &own, nullptr));
  ASSERT_EQ(SQLITE_ROW, sqlite3_step(on_t));
  EXPECT_EQ(2, sqlite3_column_count(on_t));
  EXPECT_EQ(7, sqlite3_column_int(on_t, 1));
  sqlite3_reset(on_t);
  ASSERT_EQ(SQLITE_ROW, sqlite3_step(on_y));
  sqlite3_reset(on_y);

  EXPECT_EQ("1", Query(a, "SELECT snapshot_restore(1)"));

  // b's statement is re-prepared against the restored schema: one column.
  ASSERT_EQ(SQLITE_ROW, sqlite3_step(on_t)) << sqlite3_errmsg(b);
  EXPECT_EQ(1, sqlite3_column_count(on_t));
  EXPECT_EQ(1, sqlite3_column_int(on_t, 0));
  ASSERT_EQ(SQLITE_ROW, sqlite3_step(on_t));
  ASSERT_EQ(SQLITE_ROW, sqlite3_step(on_t));
  EXPECT_EQ(3, sqlite3_column_int(on_t, 0));
  EXPECT_EQ(SQLITE_DONE, sqlite3_step(on_t));
  // A statement on a table the snapshot does not have fails cleanly.
  EXPECT_EQ(SQLITE_ERROR, sqlite3_step(on_y));
  EXPECT_TRUE(Contains(sqlite3_errmsg(b), "no such table: y")) << sqlite3_errmsg(b);
  // The dropped table is back, for both connections.
  EXPECT_EQ("x1,x2", Query(b, "SELECT group_concat(v) FROM x"));
  EXPECT_EQ("x1,x2", Query(a, "SELECT group_concat(v) FROM x"));
  ASSERT_EQ(SQLITE_ROW, sqlite3_step(own)) << sqlite3_errmsg(a);
  EXPECT_EQ(1, sqlite3_column_count(own));
  sqlite3_finalize(on_t);
  sqlite3_finalize(on_y);
  sqlite3_finalize(own);

  // And back to the later schema through the pre-restore snapshot.
  EXPECT_EQ("2", Query(a, "SELECT snapshot_restore(2)"));
  EXPECT_EQ("7", Query(b, "SELECT b FROM t WHERE a = 1"));
  EXPECT_TRUE(Contains(Query(b, "SELECT * FROM x"), "no such table"));
  EXPECT_EQ("ok", Integrity(b));
}

INSTANTIATE_TEST_SUITE_P(SqlModes, SqlReadme, ::testing::Values("DELETE", "WAL"), ModeName);

// ---------------------------------------------------------------------------
// 2. Journal modes: snapshot images equal the source, page for page
// ---------------------------------------------------------------------------

class SqlJournal : public SqlFixture, public ::testing::WithParamInterface<std::string> {
 protected:
  bool wal() const { return GetParam() == "WAL"; }
};

// Builds a database with tables, an index and free pages; in WAL mode all of
// it stays in the -wal file (the writer never checkpoints and stays open).
void BuildMixedDb(sqlite3* w, const std::string& mode) {
  const bool wal = mode == "WAL";
  EXPECT_EQ(Lower(mode), Query(w, "PRAGMA journal_mode=" + mode));
  if (wal) Ok(w, "PRAGMA wal_autocheckpoint=0");
  Fill(w, "t1", 1500, 300);
  Ok(w, "CREATE INDEX t1_a ON t1(a)");
  Fill(w, "t2", 300, 3000);  // overflow pages
  Ok(w, "DELETE FROM t1 WHERE id % 7 = 0");  // free pages
  Ok(w, "CREATE TABLE kv(k TEXT PRIMARY KEY, v) WITHOUT ROWID; INSERT INTO kv VALUES ('a', 1), ('b', 2)");
}

TEST_P(SqlJournal, RestoreToEqualsSourcePageForPage) {
  Conn w(DbPath());
  BuildMixedDb(w, GetParam());
  if (wal()) {
    // The committed content is only in the -wal file: the database file
    // itself is still (nearly) empty.
    ASSERT_GT(FileSize(DbPath() + "-wal"), 1u << 20);
    ASSERT_LT(FileSize(DbPath()), 8192u);
  }
  const std::string image = Serialize(w);
  ASSERT_EQ(uint64_t(PageCount(w)) * 4096, image.size());
  const std::string digest = Digest(w);

  Conn other(DbPath());
  EXPECT_EQ(1, Backup(other, "from another connection"));
  EXPECT_EQ(2, Backup(w, "from the writer"));
  if (wal()) {
    // Snapshot 1 read the committed pages from the -wal file (checked above);
    // a snapshot then checkpoints (ext/tracked_capture.cc), so snapshot 2
    // read them from the database file. Both must give the same image.
    ASSERT_EQ(uint64_t(PageCount(w)) * 4096, FileSize(DbPath())) << "no checkpoint ran after the snapshot";
  }

  for (int id : {1, 2}) {
    SCOPED_TRACE("snapshot " + std::to_string(id));
    const std::string out = Path("restored" + std::to_string(id) + ".db");
    EXPECT_EQ(std::to_string(id), RestoreTo(other, out, id));
    const std::string restored = ReadFile(out);
    EXPECT_EQ("", ComparePages(restored, image, 4096));
    if (!wal()) {
      // Rollback mode: the file is the database, byte for byte.
      EXPECT_EQ("", SameBytes(restored, ReadFile(DbPath())));
    }
    Conn r(out, /*load=*/false);
    EXPECT_EQ("ok", Integrity(r));
    EXPECT_EQ(digest, Digest(r));
  }

  // Restore into the live database after changing it: from the connection
  // in the journal mode under test (journal modes other than WAL are
  // per connection), then from another one.
  for (sqlite3* restorer : {w.get(), other.get()}) {
    SCOPED_TRACE(restorer == w.get() ? "restored by the writer" : "restored by another connection");
    Ok(w, "DELETE FROM t1 WHERE id < 1000; DROP TABLE t2; CREATE TABLE extra(x)");
    EXPECT_NE(digest, Digest(other));
    EXPECT_EQ(1, Restore(restorer, 1));
    EXPECT_EQ("ok", Integrity(other));
    EXPECT_EQ("ok", Integrity(w));
    EXPECT_EQ(digest, Digest(w));
    EXPECT_EQ(digest, Digest(other));
    EXPECT_EQ("", ComparePages(Serialize(w), image, 4096));
    EXPECT_EQ(Lower(GetParam()), Query(w, "PRAGMA journal_mode"));
    if (!wal()) {
      EXPECT_EQ("", ComparePages(ReadFile(DbPath()), image, 4096));
      EXPECT_FALSE(Exists(DbPath() + "-journal") && FileSize(DbPath() + "-journal") > 0 && GetParam() == "DELETE");
    }
  }
  EXPECT_EQ("ok", Query(w, "SELECT snapshot_verify()"));
}

TEST_P(SqlJournal, UnchangedDatabaseAddsNoPages) {
  Conn w(DbPath());
  BuildMixedDb(w, GetParam());
  EXPECT_EQ(1, Backup(w));
  EXPECT_EQ(2, Backup(w));
  EXPECT_EQ(PageCount(w), QueryInt(w, "SELECT pages_new FROM snapshot_list WHERE id = 1"));
  EXPECT_EQ(0, QueryInt(w, "SELECT pages_new FROM snapshot_list WHERE id = 2"));
  Ok(w, "UPDATE t1 SET a = 'changed' WHERE id = 3");
  EXPECT_EQ(3, Backup(w));
  const int64_t added = QueryInt(w, "SELECT pages_new FROM snapshot_list WHERE id = 3");
  EXPECT_GE(added, 1);
  EXPECT_LE(added, 6);  // page 1, a leaf of t1, leaves of the index
  EXPECT_EQ("ok", Query(w, "SELECT snapshot_verify()"));
}

TEST_P(SqlJournal, RestoreKeepsTheLiveJournalMode) {
  // A snapshot taken in the other journal mode restores into this one.
  Conn a(DbPath());
  const std::string other_mode = wal() ? "DELETE" : "WAL";
  Ok(a, "PRAGMA journal_mode=" + other_mode);
  Fill(a, "t", 200);
  const std::string d1 = Digest(a);
  EXPECT_EQ(1, Backup(a));
  Ok(a, "PRAGMA journal_mode=" + GetParam());
  Ok(a, "DELETE FROM t WHERE id > 10");
  EXPECT_EQ(1, Restore(a, 1));
  EXPECT_EQ(d1, Digest(a));
  EXPECT_EQ(Lower(GetParam()), Query(a, "PRAGMA journal_mode"));
  EXPECT_EQ("ok", Integrity(a));
  Conn b(DbPath());
  if (wal()) {
    EXPECT_EQ("wal", Query(b, "PRAGMA journal_mode"));  // the only persistent mode
  }
  EXPECT_EQ(d1, Digest(b));
}

TEST_P(SqlJournal, BackupInsideReadTransactionSeesThatTransaction) {
  Conn a(DbPath());
  Ok(a, "PRAGMA journal_mode=" + GetParam());
  Fill(a, "t", 100);
  const std::string d1 = Digest(a);
  Ok(a, "BEGIN");
  EXPECT_EQ(100, QueryInt(a, "SELECT count(*) FROM t"));
  if (wal()) {
    // Another connection commits meanwhile; the read transaction still sees
    // the older state, and so must the snapshot.
    Conn b(DbPath());
    Ok(b, "DELETE FROM t WHERE id > 50");
  }
  EXPECT_EQ(1, Backup(a, "in a read transaction"));
  Ok(a, "COMMIT");
  const std::string out = Path("r.db");
  EXPECT_EQ("1", RestoreTo(a, out, 1));
  Conn r(out, false);
  EXPECT_EQ(d1, Digest(r));
  EXPECT_EQ("ok", Integrity(r));
}

INSTANTIATE_TEST_SUITE_P(SqlModes, SqlJournal,
                         ::testing::Values("DELETE", "TRUNCATE", "PERSIST", "MEMORY", "OFF", "WAL"), ModeName);

// ---------------------------------------------------------------------------
// 3. Page sizes, empty databases, growing and shrinking databases
// ---------------------------------------------------------------------------

struct PageSizeCase {
  int page_size;
  std::string mode;
};

void PrintTo(const PageSizeCase& c, std::ostream* os) { *os << c.page_size << " " << c.mode; }

class SqlPageSize : public SqlFixture, public ::testing::WithParamInterface<PageSizeCase> {};

TEST_P(SqlPageSize, BackupRestoreAndRestoreTo) {
  const int ps = GetParam().page_size;
  const bool wal = GetParam().mode == "WAL";
  Conn w(DbPath());
  Ok(w, "PRAGMA page_size=" + std::to_string(ps));
  Ok(w, "PRAGMA journal_mode=" + GetParam().mode);
  if (wal) Ok(w, "PRAGMA wal_autocheckpoint=0");
  Fill(w, "t", 3000, 400);  // > 1 MB: several compression frames at any page size
  Ok(w, "CREATE INDEX t_a ON t(a); DELETE FROM t WHERE id % 5 = 0");
  ASSERT_EQ(ps, PageSize(w));
  const std::string image = Serialize(w);
  const std::string d1 = Digest(w);

  EXPECT_EQ(1, Backup(w));
  EXPECT_EQ(ps, QueryInt(w, "SELECT page_size FROM snapshot_list WHERE id = 1"));
  EXPECT_EQ(int64_t(image.size()), QueryInt(w, "SELECT db_bytes FROM snapshot_list WHERE id = 1"));
  const std::string out = Path("r.db");
  EXPECT_EQ("1", RestoreTo(w, out, 1));
  EXPECT_EQ("", ComparePages(ReadFile(out), image, uint32_t(ps)));
  if (!wal) {
    EXPECT_EQ("", SameBytes(ReadFile(out), ReadFile(DbPath())));
  }
  {
    Conn r(out, false);
    EXPECT_EQ("ok", Integrity(r));
    EXPECT_EQ(d1, Digest(r));
    EXPECT_EQ(ps, PageSize(r));
  }

  Ok(w, "UPDATE t SET a = upper(a) WHERE id % 3 = 0; DELETE FROM t WHERE id > 2000");
  const std::string d2 = Digest(w);
  EXPECT_EQ(1, Restore(w, 1));
  EXPECT_EQ(d1, Digest(w));
  EXPECT_EQ("ok", Integrity(w));
  EXPECT_EQ(ps, PageSize(w));
  EXPECT_EQ("", ComparePages(Serialize(w), image, uint32_t(ps)));
  EXPECT_EQ(2, Restore(w, 2));  // the pre-restore snapshot
  EXPECT_EQ(d2, Digest(w));
  EXPECT_EQ("ok", Query(w, "SELECT snapshot_verify()"));
}

INSTANTIATE_TEST_SUITE_P(SqlSizes, SqlPageSize,
                         ::testing::Values(PageSizeCase{512, "DELETE"}, PageSizeCase{512, "WAL"},
                                           PageSizeCase{65536, "DELETE"}, PageSizeCase{65536, "WAL"}),
                         [](const ::testing::TestParamInfo<PageSizeCase>& i) {
                           return std::to_string(i.param.page_size) + "_" + i.param.mode;
                         });

class SqlShape : public SqlFixture {};

TEST_F(SqlShape, EmptyDatabaseBacksUpAndRestores) {
  Conn a(DbPath());
  ASSERT_EQ(0u, FileSize(DbPath()));
  EXPECT_EQ(1, Backup(a, "empty"));
  EXPECT_FALSE(Exists(DbPath() + "-shm")) << "a backup of a database in no WAL mode created a -shm file";
  EXPECT_EQ("0|0", Query(a, "SELECT page_count || '|' || db_bytes FROM snapshot_list WHERE id = 1"));
  EXPECT_EQ("ok", Query(a, "SELECT snapshot_verify(1)"));
  const std::string out = Path("empty-restored.db");
  EXPECT_EQ("1", RestoreTo(a, out, 1));
  EXPECT_TRUE(Exists(out));
  EXPECT_EQ(0u, FileSize(out));
  {
    Conn r(out, false);
    EXPECT_EQ("0", Query(r, "SELECT count(*) FROM sqlite_schema"));
    EXPECT_EQ("ok", Integrity(r));
  }

  Fill(a, "t", 100);
  const std::string full = Digest(a);
  Conn b(DbPath());
  EXPECT_EQ(100, QueryInt(b, "SELECT count(*) FROM t"));
  EXPECT_EQ(1, Restore(a, 1));
  EXPECT_EQ("0", Query(a, "SELECT count(*) FROM sqlite_schema"));
  EXPECT_EQ("ok", Integrity(a));
  EXPECT_TRUE(Contains(Query(b, "SELECT count(*) FROM t"), "no such table"));
  EXPECT_EQ("1:empty,2:pre-restore", SnapshotIds(a));
  EXPECT_EQ(2, Restore(a, 2));
  EXPECT_EQ(full, Digest(a));
  EXPECT_EQ(full, Digest(b));
  EXPECT_EQ("ok", Query(a, "SELECT snapshot_verify()"));
}

TEST_F(SqlShape, EmptySnapshotRestoresIntoWalDatabase) {
  Conn a(DbPath());
  EXPECT_EQ(1, Backup(a, "empty"));
  Ok(a, "PRAGMA journal_mode=WAL");
  Fill(a, "t", 100);
  const std::string full = Digest(a);
  EXPECT_EQ(1, Restore(a, 1));
  EXPECT_EQ("0", Query(a, "SELECT count(*) FROM sqlite_schema"));
  EXPECT_EQ("ok", Integrity(a));
  EXPECT_EQ("wal", Query(a, "PRAGMA journal_mode"));
  EXPECT_EQ(2, Restore(a, 2));
  EXPECT_EQ(full, Digest(a));
}

// An empty snapshot has no page size of its own; restoring it into a WAL
// database of another page size is refused like any other, and a refused
// restore records nothing.
TEST_F(SqlShape, EmptySnapshotIntoWalDatabaseOfAnotherPageSize) {
  Conn a(DbPath());
  EXPECT_EQ(1, Backup(a, "empty"));
  Ok(a, "PRAGMA page_size=8192; PRAGMA journal_mode=WAL");
  Fill(a, "t", 100);
  ASSERT_EQ(8192, PageSize(a));
  const std::string r = Query(a, "SELECT snapshot_restore(1)");
  if (IsError(r)) {
    EXPECT_TRUE(Contains(r, "page size")) << r;
    EXPECT_EQ(1, SnapshotCount(a)) << "a refused restore left a pre-restore snapshot: " << SnapshotIds(a);
    EXPECT_EQ(100, QueryInt(a, "SELECT count(*) FROM t"));
  } else {
    // Accepted: then it must have worked, and be undoable.
    EXPECT_EQ("0", Query(a, "SELECT count(*) FROM sqlite_schema"));
    EXPECT_EQ("ok", Integrity(a));
    EXPECT_EQ(2, Restore(a, 2));
    EXPECT_EQ(100, QueryInt(a, "SELECT count(*) FROM t"));
  }
  EXPECT_EQ("ok", Integrity(a));
}

TEST_F(SqlShape, AutoVacuumDatabase) {
  for (const char* mode : {"FULL", "INCREMENTAL"}) {
    SCOPED_TRACE(mode);
    const std::string path = Path(std::string("av-") + mode + ".db");
    Conn a(path);
    Ok(a, std::string("PRAGMA auto_vacuum=") + mode);
    Fill(a, "t", 3000, 300);
    Ok(a, "CREATE INDEX t_a ON t(a)");
    const std::string full = Digest(a);
    const int64_t full_pages = PageCount(a);
    EXPECT_EQ(1, Backup(a));
    Ok(a, "DELETE FROM t WHERE id > 100; PRAGMA incremental_vacuum");
    ASSERT_LT(PageCount(a), full_pages / 2);
    const std::string small = Digest(a);
    EXPECT_EQ(1, Restore(a, 1));
    EXPECT_EQ(full, Digest(a));
    EXPECT_EQ(full_pages, PageCount(a));
    EXPECT_EQ("ok", Integrity(a));
    EXPECT_EQ(2, Restore(a, 2));
    EXPECT_EQ(small, Digest(a));
    EXPECT_EQ("ok", Integrity(a));
  }
}

// Schema names that need quoting reach every function intact.
TEST_F(SqlShape, SchemaNameThatNeedsQuoting) {
  Conn a(DbPath());
  const std::string aux = Path("odd name.db");
  Ok(a, "ATTACH '" + aux + "' AS \"we\"\"ird sch\"");
  Ok(a, "CREATE TABLE \"we\"\"ird sch\".t(x); INSERT INTO \"we\"\"ird sch\".t VALUES (1), (2)");
  const std::string schema = "we\"ird sch";
  EXPECT_EQ("1", QueryArgs(a, "SELECT snapshot_backup('q', ?)", {Arg::Text(schema)}));
  EXPECT_EQ("1", QueryArgs(a, "SELECT count(*) FROM snapshot_list(?)", {Arg::Text(schema)}));
  Ok(a, "DELETE FROM \"we\"\"ird sch\".t");
  EXPECT_EQ("1", QueryArgs(a, "SELECT snapshot_restore(1, ?)", {Arg::Text(schema)}));
  EXPECT_EQ("2", Query(a, "SELECT count(*) FROM \"we\"\"ird sch\".t"));
  EXPECT_EQ("ok", QueryArgs(a, "SELECT snapshot_verify(NULL, ?)", {Arg::Text(schema)}));
  EXPECT_TRUE(Exists(aux + "-snapshots/STORE"));
}

TEST_F(SqlShape, GrowShrinkAndPageSizeChangeBetweenSnapshots) {
  Conn a(DbPath());
  Ok(a, "PRAGMA journal_mode=DELETE");
  struct State {
    int64_t id;
    std::string digest, file;
    int64_t page_size, page_count;
  };
  std::vector<State> states;
  auto snap = [&](const std::string& label) {
    State s;
    s.id = Backup(a, label);
    s.digest = Digest(a);
    s.file = ReadFile(DbPath());
    s.page_size = PageSize(a);
    s.page_count = PageCount(a);
    states.push_back(s);
  };
  Fill(a, "t", 100);
  snap("small");
  Fill(a, "t", 4000, 500);
  Fill(a, "u", 500, 2000);
  snap("grown");
  ASSERT_GT(states[1].page_count, states[0].page_count * 10);
  Ok(a, "DELETE FROM t WHERE id > 300; DROP TABLE u; VACUUM");
  snap("shrunk");
  ASSERT_LT(states[2].page_count, states[1].page_count / 10);
  Ok(a, "PRAGMA page_size=8192; VACUUM");
  ASSERT_EQ(8192, PageSize(a));
  Fill(a, "v", 200, 100);
  snap("8k pages");
  Ok(a, "INSERT INTO v(a) VALUES ('current')");
  const std::string current = Digest(a);

  for (const State& s : states) {
    SCOPED_TRACE("snapshot " + std::to_string(s.id));
    EXPECT_EQ(s.page_size, QueryInt(a, "SELECT page_size FROM snapshot_list WHERE id = " + std::to_string(s.id)));
    EXPECT_EQ(s.page_count, QueryInt(a, "SELECT page_count FROM snapshot_list WHERE id = " + std::to_string(s.id)));
    const std::string out = Path("r" + std::to_string(s.id) + ".db");
    EXPECT_EQ(std::to_string(s.id), RestoreTo(a, out, s.id));
    EXPECT_EQ("", SameBytes(ReadFile(out), s.file));
  }
  // Restore them into the live database, out of order, crossing page sizes.
  Conn b(DbPath());
  for (int k : {0, 3, 1, 2, 0}) {
    const State& s = states[size_t(k)];
    SCOPED_TRACE("restoring snapshot " + std::to_string(s.id));
    EXPECT_EQ(s.id, Restore(a, s.id));
    EXPECT_EQ(s.digest, Digest(a));
    EXPECT_EQ(s.digest, Digest(b));
    EXPECT_EQ("ok", Integrity(a));
    EXPECT_EQ(s.page_size, PageSize(a));
    EXPECT_EQ(s.page_count, PageCount(a));
    EXPECT_EQ("", ComparePages(ReadFile(DbPath()), s.file, uint32_t(s.page_size)));
  }
  // The first pre-restore snapshot holds the state before all of that.
  const int64_t first_pre = QueryInt(a, "SELECT min(id) FROM snapshot_list WHERE label = 'pre-restore'");
  EXPECT_EQ(5, first_pre);
  EXPECT_EQ(first_pre, Restore(a, first_pre));
  EXPECT_EQ(current, Digest(a));
  EXPECT_EQ(8192, PageSize(a));
  EXPECT_EQ("ok", Query(a, "SELECT snapshot_verify()"));
}

TEST_F(SqlShape, WalRefusesSnapshotOfAnotherPageSize) {
  Conn a(DbPath());
  Fill(a, "t", 200);
  EXPECT_EQ(1, Backup(a, "4k"));
  Ok(a, "PRAGMA page_size=8192; VACUUM; PRAGMA journal_mode=WAL");
  ASSERT_EQ(8192, PageSize(a));
  Ok(a, "INSERT INTO t(a) VALUES ('after')");
  ExpectRefused(a, "SELECT snapshot_restore(1)", {"page size", "WAL", "journal_mode=DELETE"}, StoreDir());
  EXPECT_EQ("ok", Integrity(a));
  EXPECT_EQ("wal", Query(a, "PRAGMA journal_mode"));
  EXPECT_EQ(1, SnapshotCount(a));
  // The way out the message names works.
  const std::string out = Path("r.db");
  EXPECT_EQ("1", RestoreTo(a, out, 1));
  Ok(a, "PRAGMA journal_mode=DELETE");
  EXPECT_EQ(1, Restore(a, 1));
  EXPECT_EQ("ok", Integrity(a));  // (PRAGMA page_size is refreshed by the next read)
  EXPECT_EQ(4096, PageSize(a));
  EXPECT_EQ(0, QueryInt(a, "SELECT count(*) FROM t WHERE a = 'after'"));
}

// ---------------------------------------------------------------------------
// 4. A database larger than 1 GiB: the lock-byte page
// ---------------------------------------------------------------------------

// Compares two files page by page, streaming, masking what ComparePages masks
// on page 1 when `mask_header`.
std::string CompareFilesStreaming(const std::string& a, const std::string& b, uint32_t page_size, bool mask_header) {
  FILE* fa = std::fopen(a.c_str(), "rb");
  FILE* fb = std::fopen(b.c_str(), "rb");
  if (!fa || !fb) {
    if (fa) std::fclose(fa);
    if (fb) std::fclose(fb);
    return "cannot open";
  }
  std::string result;
  if (FileSize(a) != FileSize(b)) {
    result = "sizes differ: " + std::to_string(FileSize(a)) + " vs " + std::to_string(FileSize(b));
  }
  const size_t chunk = size_t(page_size) * 256;
  std::vector<char> ba(chunk), bb(chunk);
  uint64_t off = 0;
  while (result.empty()) {
    const size_t na = std::fread(ba.data(), 1, chunk, fa);
    const size_t nb = std::fread(bb.data(), 1, chunk, fb);
    if (na != nb) {
      result = "short read";
      break;
    }
    if (na == 0) break;
    if (off == 0 && mask_header) {
      for (size_t i : {24, 25, 26, 27, 40, 41, 42, 43, 92, 93, 94, 95, 96, 97, 98, 99}) ba[i] = bb[i] = 0;
    }
    if (std::memcmp(ba.data(), bb.data(), na) != 0) {
      for (size_t i = 0; i < na; i++) {
        if (ba[i] != bb[i]) {
          result = "page " + std::to_string((off + i) / page_size + 1) + " differs";
          break;
        }
      }
    }
    off += na;
  }
  std::fclose(fa);
  std::fclose(fb);
  return result;
}

class SqlLockByte : public SqlFixture {};

TEST_F(SqlLockByte, DatabaseOverOneGiB) {
  const char* skip = getenv("SNAPSHOT_SKIP_BIG");
  if (skip != nullptr && std::string(skip) == "1") GTEST_SKIP() << "SNAPSHOT_SKIP_BIG=1";
  struct statvfs vfs;
  ASSERT_EQ(0, statvfs(dir_.path().c_str(), &vfs));
  const uint64_t free_bytes = uint64_t(vfs.f_bavail) * vfs.f_frsize;
  if (free_bytes < (5ull << 30)) GTEST_SKIP() << "needs 5 GiB free in " << dir_.path() << ", has " << free_bytes;
  using Clock = std::chrono::steady_clock;
  auto t0 = Clock::now();
  auto lap = [&](const char* what) {
    const auto now = Clock::now();
    std::printf("  [big] %-40s %6.1f s\n", what, std::chrono::duration<double>(now - t0).count());
    std::fflush(stdout);
    t0 = now;
  };

  const uint32_t lock_page = (1u << 30) / 4096 + 1;
  Conn a(DbPath());
  Ok(a, "PRAGMA journal_mode=DELETE; PRAGMA synchronous=OFF");
  // 1100 rows of 1 MB: every page real, a tenth of each row random (so rows
  // differ and misplaced pages show), the rest compressible.
  Ok(a, "CREATE TABLE big(id INTEGER PRIMARY KEY, b BLOB)");
  Ok(a, "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<1100) "
        "INSERT INTO big(b) SELECT randomblob(100000) || zeroblob(900000) FROM c");
  Fill(a, "tail", 500);  // rows past the lock-byte page
  const int64_t pages = PageCount(a);
  ASSERT_GT(pages, int64_t(lock_page) + 1000);
  ASSERT_GT(FileSize(DbPath()), 1100000000u);
  const std::string digest1 = Digest(a);
  lap("built");

  // Rollback mode: the snapshot reads the file.
  EXPECT_EQ(1, Backup(a, "big"));
  lap("snapshot 1");
  EXPECT_EQ(pages, QueryInt(a, "SELECT page_count FROM snapshot_list WHERE id = 1"));
  const std::string out1 = Path("r1.db");
  EXPECT_EQ("1", RestoreTo(a, out1, 1));
  lap("restore_to 1");
  EXPECT_EQ("", CompareFilesStreaming(out1, DbPath(), 4096, /*mask_header=*/false));
  {
    Conn r(out1, false);
    EXPECT_EQ("ok", Integrity(r));
    EXPECT_EQ(digest1, Digest(r));
  }
  std::remove(out1.c_str());
  lap("compared and checked");

  // Change pages on both sides of the lock-byte page, then restore into the
  // live database and back (recording pre-restore 2).
  Ok(a, "UPDATE big SET b = randomblob(1000) WHERE id IN (3, 1090); INSERT INTO tail(a) VALUES ('after');"
        "UPDATE tail SET a = 'changed' WHERE id = 7");
  const std::string digest2 = Digest(a);
  EXPECT_EQ(1, Restore(a, 1));
  lap("restore 1 into the live database");
  EXPECT_EQ(digest1, Digest(a));
  EXPECT_EQ("ok", Integrity(a));
  EXPECT_EQ("1:big,2:pre-restore", SnapshotIds(a));
  EXPECT_EQ(2, Restore(a, 2));
  EXPECT_EQ(digest2, Digest(a));
  EXPECT_EQ("ok", Integrity(a));
  lap("restore 2 and checks");

  // WAL mode: the snapshot goes through SQLite's pager, with changes on
  // both sides of the lock-byte page still in the -wal file.
  Ok(a, "PRAGMA journal_mode=WAL");
  {
    Conn w(DbPath());
    Ok(w, "PRAGMA wal_autocheckpoint=0");
    Ok(w, "UPDATE big SET b = randomblob(2000) WHERE id IN (5, 1080); INSERT INTO tail(a) VALUES ('wal');"
          "UPDATE tail SET a = 'wal' WHERE id = 9");
    ASSERT_GT(FileSize(DbPath() + "-wal"), 0u);
    const std::string digest4 = Digest(w);
    EXPECT_EQ(4, Backup(w, "big wal"));
    lap("snapshot 4 (WAL)");
    const std::string out4 = Path("r4.db");
    EXPECT_EQ("4", RestoreTo(w, out4, 4));
    lap("restore_to 4");
    Ok(w, "PRAGMA wal_checkpoint(TRUNCATE)");
    EXPECT_EQ(0u, FileSize(DbPath() + "-wal"));
    EXPECT_EQ("", CompareFilesStreaming(out4, DbPath(), 4096, /*mask_header=*/true));
    Conn r(out4, false);
    EXPECT_EQ("ok", Integrity(r));
    EXPECT_EQ(digest4, Digest(r));
    lap("compared and checked");
  }
  EXPECT_EQ("ok", Query(a, "SELECT snapshot_verify()"));
  lap("verify");
}

// ---------------------------------------------------------------------------
// 5. pre-restore snapshots
// ---------------------------------------------------------------------------

class SqlPreRestore : public SqlFixture, public ::testing::WithParamInterface<std::string> {};

TEST_P(SqlPreRestore, EveryRestoreRecordsTheStateItReplaces) {
  const bool wal = GetParam() == "WAL";
  Conn w(DbPath());  // the writer; in WAL mode its commits stay in the -wal file
  Ok(w, "PRAGMA journal_mode=" + GetParam());
  if (wal) Ok(w, "PRAGMA wal_autocheckpoint=0");
  Conn a(DbPath());  // restores

  Fill(w, "t", 800);
  const std::string d1 = Digest(w);
  EXPECT_EQ(1, Backup(a, "one"));
  Ok(w, "DELETE FROM t WHERE id % 2 = 0; CREATE TABLE more(x); INSERT INTO more VALUES (1)");
  const std::string d2 = Digest(w);
  EXPECT_EQ(2, Backup(a, "two"));
  Fill(w, "t", 300, 1000);
  Ok(w, "UPDATE more SET x = 2");
  const std::string d3 = Digest(w);
  const std::string image3 = Serialize(w);
  if (wal) {
    ASSERT_GT(FileSize(DbPath() + "-wal"), 0u);
  }

  // restore(1): records state 3 as snapshot 3.
  EXPECT_EQ(1, Restore(a, 1));
  EXPECT_EQ(d1, Digest(w));
  EXPECT_EQ("1:one,2:two,3:pre-restore", SnapshotIds(a));
  const std::string out3 = Path("pre3.db");
  EXPECT_EQ("3", RestoreTo(a, out3, 3));
  EXPECT_EQ("", ComparePages(ReadFile(out3), image3, 4096));
  {
    Conn r(out3, false);
    EXPECT_EQ(d3, Digest(r));
    EXPECT_EQ("ok", Integrity(r));
  }

  // Restoring the pre-restore snapshot undoes the restore (and is itself
  // recorded: snapshot 4 holds state 1).
  EXPECT_EQ(3, Restore(a, 3));
  EXPECT_EQ(d3, Digest(w));
  EXPECT_EQ("ok", Integrity(w));
  EXPECT_EQ("1:one,2:two,3:pre-restore,4:pre-restore", SnapshotIds(a));

  EXPECT_EQ(2, Restore(w, 2));  // from the writer connection itself
  EXPECT_EQ(d2, Digest(a));
  EXPECT_EQ(5, SnapshotCount(a));
  // The latest snapshot is the last pre-restore: a bare snapshot_restore()
  // undoes the last restore.
  EXPECT_EQ("5", Query(a, "SELECT snapshot_restore()"));
  EXPECT_EQ(d3, Digest(a));
  EXPECT_EQ(6, SnapshotCount(a));
  EXPECT_EQ(4, Restore(a, 4));
  EXPECT_EQ(d1, Digest(a));
  EXPECT_EQ("ok", Integrity(a));
  EXPECT_EQ("ok", Query(a, "SELECT snapshot_verify()"));
  EXPECT_EQ(7, SnapshotCount(a));
  // Recording a state the store already holds adds at most the header page.
  EXPECT_LE(QueryInt(a, "SELECT pages_new FROM snapshot_list WHERE id = 7"), 1);
}

INSTANTIATE_TEST_SUITE_P(SqlModes, SqlPreRestore, ::testing::Values("DELETE", "WAL"), ModeName);

// ---------------------------------------------------------------------------
// 6. Bad input: a clear error, and nothing changed
// ---------------------------------------------------------------------------

class SqlBadInput : public SqlFixture {
 protected:
  // app.db with a table and one snapshot.
  void SetUpDbWithSnapshot(sqlite3* db) {
    Fill(db, "t", 200);
    EXPECT_EQ(1, Backup(db, "first"));
    Ok(db, "DELETE FROM t WHERE id > 150");
  }
};

TEST_F(SqlBadInput, UnknownId) {
  Conn a(DbPath());
  SetUpDbWithSnapshot(a);
  ExpectRefused(a, "SELECT snapshot_restore(42)", {"no snapshot with id 42"}, StoreDir());
  ExpectRefused(a, "SELECT snapshot_restore_to(?, 42)", {"no snapshot with id 42"}, StoreDir(),
                {Arg::Text(Path("out.db"))});
  EXPECT_FALSE(Exists(Path("out.db")));
  ExpectRefused(a, "SELECT snapshot_verify(42)", {"no snapshot with id 42"}, StoreDir());
  EXPECT_EQ(1, SnapshotCount(a));
}

TEST_F(SqlBadInput, RestoreBeforeAnySnapshot) {
  Conn a(DbPath());
  Fill(a, "t", 10);
  const std::string d = Digest(a);
  const std::string to = QueryArgs(a, "SELECT snapshot_restore_to(?)", {Arg::Text(Path("out.db"))});
  EXPECT_TRUE(Contains(to, "no snapshot has been taken yet")) << to;
  EXPECT_FALSE(Exists(Path("out.db")));
  EXPECT_TRUE(Contains(Query(a, "SELECT snapshot_verify()"), "no snapshot has been taken yet"));
  EXPECT_EQ(0, SnapshotCount(a));
  const std::string r = Query(a, "SELECT snapshot_restore()");
  EXPECT_TRUE(IsError(r));
  EXPECT_TRUE(Contains(r, "no snapshot has been taken yet")) << r;
  const std::string r1 = Query(a, "SELECT snapshot_restore(1)");
  EXPECT_TRUE(Contains(r1, "no snapshot")) << r1;
  EXPECT_EQ(0, SnapshotCount(a));
  EXPECT_EQ(d, Digest(a));
}

// A failed restore must not create the store: "changes nothing". The
// functions that only read the store (snapshot_list, snapshot_verify,
// snapshot_restore_to) already leave it absent.
TEST_F(SqlBadInput, RestoreBeforeAnySnapshotCreatesNoStore) {
  Conn a(DbPath());
  Fill(a, "t", 10);
  EXPECT_TRUE(IsError(Query(a, "SELECT snapshot_restore_to('" + Path("x.db") + "')")));
  EXPECT_TRUE(IsError(Query(a, "SELECT snapshot_verify()")));
  EXPECT_EQ(0, SnapshotCount(a));
  ASSERT_FALSE(Exists(StoreDir()));
  ExpectRefused(a, "SELECT snapshot_restore()", {"no snapshot has been taken yet"}, StoreDir());
  ExpectRefused(a, "SELECT snapshot_restore(3)", {"no snapshot"}, StoreDir());
  EXPECT_FALSE(Exists(StoreDir())) << "a failed snapshot_restore() created " << StoreDir();
}

TEST_F(SqlBadInput, StoreOfAnotherDatabase) {
  Conn a(DbPath());
  SetUpDbWithSnapshot(a);
  const std::string other = Path("other.db");
  Conn b(other);
  Fill(b, "mine", 20);
  // Put app.db's store where other.db looks for its own.
  fs::copy(StoreDir(), other + "-snapshots", fs::copy_options::recursive);
  const std::string ostore = other + "-snapshots";
  for (const char* sql : {"SELECT snapshot_backup()", "SELECT snapshot_restore(1)", "SELECT snapshot_restore()",
                          "SELECT snapshot_verify()", "SELECT snapshot_prune(1)", "SELECT count(*) FROM snapshot_list"}) {
    SCOPED_TRACE(sql);
    ExpectRefused(b, sql, {"belongs to database 'app.db'", "other.db"}, ostore);
  }
  ExpectRefused(b, "SELECT snapshot_restore_to(?, 1)", {"belongs to database"}, ostore, {Arg::Text(Path("o.db"))});
  EXPECT_FALSE(Exists(Path("o.db")));
  EXPECT_EQ(20, QueryInt(b, "SELECT count(*) FROM mine"));
}

// Rewrites STORE's format version (u32 at offset 8) and its checksum.
void PatchStoreVersion(const std::string& store_dir, uint32_t version) {
  const std::string path = store_dir + "/STORE";
  std::string data = ReadFile(path);
  ASSERT_GT(data.size(), 20u);
  ASSERT_EQ("SQSNSTOR", data.substr(0, 8));
  for (int i = 0; i < 4; i++) data[8 + i] = char((version >> (8 * i)) & 0xff);
  const uint64_t sum = snapshot::Checksum64(data.data(), data.size() - 8);
  for (int i = 0; i < 8; i++) data[data.size() - 8 + i] = char((sum >> (8 * i)) & 0xff);
  WriteFile(path, data);
}

TEST_F(SqlBadInput, StoreOfNewerFormatVersion) {
  Conn a(DbPath());
  SetUpDbWithSnapshot(a);
  // Sanity: rewriting the current version (1) keeps the store readable, so
  // the patch itself is right.
  PatchStoreVersion(StoreDir(), 1);
  EXPECT_EQ(1, SnapshotCount(a));
  PatchStoreVersion(StoreDir(), 2);
  for (const char* sql : {"SELECT snapshot_backup()", "SELECT snapshot_restore(1)", "SELECT snapshot_restore()",
                          "SELECT snapshot_verify()", "SELECT snapshot_prune(1)", "SELECT count(*) FROM snapshot_list"}) {
    SCOPED_TRACE(sql);
    ExpectRefused(a, sql, {"newer version", "format 2"}, StoreDir());
  }
  ExpectRefused(a, "SELECT snapshot_restore_to(?, 1)", {"newer version"}, StoreDir(), {Arg::Text(Path("o.db"))});
  EXPECT_FALSE(Exists(Path("o.db")));
}

TEST_F(SqlBadInput, DamagedStoreFile) {
  Conn a(DbPath());
  SetUpDbWithSnapshot(a);
  const std::string path = StoreDir() + "/STORE";
  std::string data = ReadFile(path);
  data[20] = char(data[20] ^ 1);  // inside the creation time: only the checksum notices
  WriteFile(path, data);
  ExpectRefused(a, "SELECT snapshot_backup()", {"damaged", "checksum"}, StoreDir());
  ExpectRefused(a, "SELECT snapshot_restore(1)", {"damaged"}, StoreDir());
  WriteFile(path, "not a store");
  ExpectRefused(a, "SELECT snapshot_backup()", {"not a snapshot store"}, StoreDir());
}

TEST_F(SqlBadInput, MissingConfiguredStoreDir) {
  Conn a(DbPath());
  Fill(a, "t", 20);
  EXPECT_EQ("/nonexistent/x", Query(a, "SELECT snapshot_config('dir', '/nonexistent/x')"));
  EXPECT_EQ("/nonexistent/x", Query(a, "SELECT snapshot_dir()"));
  ExpectRefused(a, "SELECT snapshot_backup()", {"/nonexistent/x", "does not exist"}, "/nonexistent/x");
  ExpectRefused(a, "SELECT snapshot_restore()", {"/nonexistent/x"}, "/nonexistent/x");
  ExpectRefused(a, "SELECT snapshot_prune(1)", {"/nonexistent/x", "does not exist"}, "/nonexistent/x");
  EXPECT_FALSE(Exists("/nonexistent"));
  EXPECT_FALSE(Exists(StoreDir())) << "fell back to the default store";
}

TEST_F(SqlBadInput, ReadOnlyStoreDir) {
  if (geteuid() == 0) GTEST_SKIP() << "running as root: directory permissions are not enforced";
  Conn a(DbPath());
  SetUpDbWithSnapshot(a);
  for (const std::string& d : {StoreDir() + "/packs", StoreDir() + "/snapshots", StoreDir()}) {
    ASSERT_EQ(0, chmod(d.c_str(), 0555));
  }
  ExpectRefused(a, "SELECT snapshot_backup()", {"permission denied"}, StoreDir());
  // Reading still works.
  EXPECT_EQ(1, SnapshotCount(a));
  EXPECT_EQ("ok", Query(a, "SELECT snapshot_verify()"));
  EXPECT_EQ("1", RestoreTo(a, Path("r.db"), 1));
  for (const std::string& d : {StoreDir(), StoreDir() + "/packs", StoreDir() + "/snapshots"}) {
    chmod(d.c_str(), 0755);
  }
}

TEST_F(SqlBadInput, NotFromTriggersOrViews) {
  Conn a(DbPath());
  SetUpDbWithSnapshot(a);
  Ok(a, "CREATE TABLE log(x)");
  Ok(a, "CREATE TRIGGER tr AFTER INSERT ON log BEGIN SELECT snapshot_backup('from trigger'); END");
  ExpectRefused(a, "INSERT INTO log VALUES (1)", {"unsafe use of snapshot_backup"}, StoreDir());
  Ok(a, "DROP TRIGGER tr");
  Ok(a, "CREATE TRIGGER tr AFTER INSERT ON log BEGIN SELECT snapshot_restore(1); END");
  ExpectRefused(a, "INSERT INTO log VALUES (1)", {"unsafe use of snapshot_restore"}, StoreDir());
  Ok(a, "DROP TRIGGER tr");
  const std::vector<std::pair<std::string, std::string>> calls = {
      {"snapshot_backup", "snapshot_backup('v')"},
      {"snapshot_restore", "snapshot_restore(1)"},
      {"snapshot_restore_to", "snapshot_restore_to('" + Path("v.db") + "')"},
      {"snapshot_verify", "snapshot_verify()"},
      {"snapshot_prune", "snapshot_prune(1)"},
      {"snapshot_config", "snapshot_config('dir', '/tmp')"},
      {"snapshot_dir", "snapshot_dir()"},
  };
  for (const auto& [name, call] : calls) {
    SCOPED_TRACE(call);
    Ok(a, "CREATE VIEW v AS SELECT " + call + " AS r");
    ExpectRefused(a, "SELECT * FROM v", {"unsafe use of " + name}, StoreDir());
    Ok(a, "DROP VIEW v");
  }
  EXPECT_FALSE(Exists(Path("v.db")));
  EXPECT_TRUE(Query(a, "SELECT snapshot_config('dir')") == "NULL");
  Ok(a, "CREATE VIEW lv AS SELECT * FROM snapshot_list");
  ExpectRefused(a, "SELECT * FROM lv", {"unsafe use of virtual table"}, StoreDir());
  // snapshot_version() is harmless and allowed anywhere.
  Ok(a, "CREATE VIEW vv AS SELECT snapshot_version() AS v");
  EXPECT_EQ(Query(a, "SELECT snapshot_version()"), Query(a, "SELECT v FROM vv"));
  EXPECT_EQ(1, SnapshotCount(a));
}

TEST_F(SqlBadInput, RestoreInsideTransaction) {
  Conn a(DbPath());
  SetUpDbWithSnapshot(a);
  for (const char* begin : {"BEGIN", "BEGIN IMMEDIATE", "SAVEPOINT s"}) {
    SCOPED_TRACE(begin);
    Ok(a, begin);
    ExpectRefused(a, "SELECT snapshot_restore(1)", {"inside a transaction"}, StoreDir());
    Ok(a, "INSERT INTO t(a) VALUES ('in txn')");
    ExpectRefused(a, "SELECT snapshot_restore()", {"inside a transaction"}, StoreDir());
    Ok(a, "ROLLBACK");
  }
  EXPECT_EQ(150, QueryInt(a, "SELECT count(*) FROM t"));
  EXPECT_EQ(1, SnapshotCount(a));
}

TEST_F(SqlBadInput, RestoreWhileOwnStatementIsReading) {
  Conn a(DbPath());
  SetUpDbWithSnapshot(a);
  sqlite3_stmt* s = nullptr;
  ASSERT_EQ(SQLITE_OK, sqlite3_prepare_v2(a, "SELECT id FROM t", -1, &s, nullptr));
  ASSERT_EQ(SQLITE_ROW, sqlite3_step(s));  // holds a read transaction
  const auto store_before = TreeState(StoreDir());
  const std::string r = Query(a, "SELECT snapshot_restore(1)");
  EXPECT_TRUE(IsError(r)) << r;
  EXPECT_TRUE(Contains(r, "in use") || Contains(r, "statement of its own")) << r;
  sqlite3_finalize(s);
  EXPECT_EQ(store_before, TreeState(StoreDir()));
  EXPECT_EQ(150, QueryInt(a, "SELECT count(*) FROM t"));
}

TEST_F(SqlBadInput, BackupInsideWriteTransaction) {
  Conn a(DbPath());
  SetUpDbWithSnapshot(a);
  Ok(a, "BEGIN; INSERT INTO t(a) VALUES ('uncommitted')");
  ExpectRefused(a, "SELECT snapshot_backup('x')", {"write transaction", "COMMIT"}, StoreDir());
  Ok(a, "ROLLBACK");
  Ok(a, "BEGIN IMMEDIATE");
  ExpectRefused(a, "SELECT snapshot_backup('x')", {"write transaction"}, StoreDir());
  Ok(a, "COMMIT");
  EXPECT_EQ(1, SnapshotCount(a));
  EXPECT_EQ(2, Backup(a, "after commit"));
}

TEST_F(SqlBadInput, MemoryAndTempSchemas) {
  {
    Conn m(":memory:");
    Fill(m, "t", 10);
    for (const char* sql : {"SELECT snapshot_backup()", "SELECT snapshot_restore()", "SELECT snapshot_restore(1)",
                            "SELECT snapshot_dir()", "SELECT snapshot_verify()", "SELECT snapshot_prune(1)",
                            "SELECT count(*) FROM snapshot_list"}) {
      SCOPED_TRACE(sql);
      const std::string r = Query(m, sql);
      EXPECT_TRUE(IsError(r)) << r;
      EXPECT_TRUE(Contains(r, "in-memory")) << r;
    }
    const std::string r = QueryArgs(m, "SELECT snapshot_restore_to(?)", {Arg::Text(Path("m.db"))});
    EXPECT_TRUE(Contains(r, "in-memory")) << r;
    EXPECT_FALSE(Exists(Path("m.db")));
  }
  {
    Conn anon("");  // a private, temporary on-disk database
    Fill(anon, "t", 10);
    EXPECT_TRUE(Contains(Query(anon, "SELECT snapshot_backup()"), "temporary or in-memory"));
  }
  Conn a(DbPath());
  SetUpDbWithSnapshot(a);
  Ok(a, "CREATE TEMP TABLE tt(x); INSERT INTO tt VALUES (1)");
  ExpectRefused(a, "SELECT snapshot_backup('x', 'temp')", {"temp", "temporary or in-memory"}, StoreDir());
  ExpectRefused(a, "SELECT snapshot_restore(1, 'temp')", {"temporary or in-memory"}, StoreDir());
  ExpectRefused(a, "SELECT snapshot_backup('x', 'nosuch')", {"no such database schema: nosuch"}, StoreDir());
  ExpectRefused(a, "SELECT snapshot_restore(1, 'nosuch')", {"no such database schema"}, StoreDir());
  ExpectRefused(a, "SELECT count(*) FROM snapshot_list('nosuch')", {"no such database schema"}, StoreDir());
  ExpectRefused(a, "SELECT count(*) FROM snapshot_list('temp')", {"temporary or in-memory"}, StoreDir());
  ExpectRefused(a, "SELECT snapshot_dir('nosuch')", {"no such database schema"}, StoreDir());
  ExpectRefused(a, "SELECT snapshot_backup('x', '')", {"no such database schema"}, StoreDir());
  // An attached :memory: database.
  Ok(a, "ATTACH ':memory:' AS mem");
  ExpectRefused(a, "SELECT snapshot_backup('x', 'mem')", {"in-memory"}, StoreDir());
  EXPECT_EQ(1, SnapshotCount(a));
}

TEST_F(SqlBadInput, BadLabels) {
  Conn a(DbPath());
  SetUpDbWithSnapshot(a);
  for (const std::string& label : {std::string("a/b"), std::string("..\\x"), std::string("../../etc"),
                                   std::string("tab\there"), std::string("new\nline"), std::string("bell\x07"),
                                   std::string("del\x7f"), std::string(201, 'x')}) {
    SCOPED_TRACE("label of " + std::to_string(label.size()) + " bytes");
    ExpectRefused(a, "SELECT snapshot_backup(?)", {"label"}, StoreDir(), {Arg::Text(label)});
  }
  ExpectRefused(a, "SELECT snapshot_backup(?)", {"200 bytes"}, StoreDir(), {Arg::Text(std::string(201, 'x'))});
  ExpectRefused(a, "SELECT snapshot_backup(?)", {"control characters"}, StoreDir(), {Arg::Text("x\ry")});
  EXPECT_EQ(1, SnapshotCount(a));
  // The limits themselves are accepted, as is non-ASCII text.
  EXPECT_EQ(2, Backup(a, std::string(200, 'y')));
  EXPECT_EQ(std::string(200, 'y'), Query(a, "SELECT label FROM snapshot_list WHERE id = 2"));
  EXPECT_EQ(3, Backup(a, "sauvegarde d'été ✓ .. ~"));
  EXPECT_EQ("sauvegarde d'été ✓ .. ~", Query(a, "SELECT label FROM snapshot_list WHERE id = 3"));
  EXPECT_EQ("4", Query(a, "SELECT snapshot_backup(NULL)"));
  EXPECT_EQ("", Query(a, "SELECT label FROM snapshot_list WHERE id = 4"));
}

TEST_F(SqlBadInput, RestoreToNeverOverwrites) {
  Conn a(DbPath());
  SetUpDbWithSnapshot(a);
  const std::string existing = Path("existing.db");
  WriteFile(existing, "precious");
  ExpectRefused(a, "SELECT snapshot_restore_to(?, 1)", {"already exists", "existing.db"}, StoreDir(),
                {Arg::Text(existing)});
  EXPECT_EQ("precious", ReadFile(existing));
  // Not even the live database itself.
  const std::string live = ReadFile(DbPath());
  ExpectRefused(a, "SELECT snapshot_restore_to(?, 1)", {"already exists"}, StoreDir(), {Arg::Text(DbPath())});
  EXPECT_EQ(live, ReadFile(DbPath()));
  ExpectRefused(a, "SELECT snapshot_restore_to('', 1)", {"empty"}, StoreDir());
  ExpectRefused(a, "SELECT snapshot_restore_to(NULL, 1)", {"empty"}, StoreDir());
  ExpectRefused(a, "SELECT snapshot_restore_to(?, 1)", {"no-such-dir"}, StoreDir(),
                {Arg::Text(Path("no-such-dir/x.db"))});
  EXPECT_FALSE(Exists(Path("no-such-dir")));
  // Not inside the store.
  ExpectRefused(a, "SELECT snapshot_restore_to(?, 1)", {"inside the snapshot store"}, StoreDir(),
                {Arg::Text(StoreDir() + "/packs/x.db")});
  EXPECT_EQ(std::vector<std::string>({"app.db", "app.db-snapshots", "app.db-snaptrack", "existing.db"}),
            FilesIn(dir_.path()));
}

// snapshot_restore_to() writes "<path>.tmp" and renames it; a file of that
// name that the user owns must not be destroyed.
TEST_F(SqlBadInput, RestoreToLeavesAnExistingTmpSiblingAlone) {
  Conn a(DbPath());
  SetUpDbWithSnapshot(a);
  const std::string target = Path("copy.db");
  WriteFile(target + ".tmp", "the user's own file");
  const std::string r = RestoreTo(a, target, 1);
  EXPECT_TRUE(Exists(target + ".tmp")) << "snapshot_restore_to('copy.db') deleted copy.db.tmp (result: " << r << ")";
  EXPECT_EQ("the user's own file", ReadFile(target + ".tmp"));
}

TEST_F(SqlBadInput, InvalidIds) {
  Conn a(DbPath());
  SetUpDbWithSnapshot(a);
  for (const char* id : {"0", "-1", "'abc'", "1.5", "X'01'", "''", "-9223372036854775808"}) {
    SCOPED_TRACE(id);
    ExpectRefused(a, std::string("SELECT snapshot_restore(") + id + ")", {"positive integer"}, StoreDir());
    ExpectRefused(a, std::string("SELECT snapshot_restore_to(?, ") + id + ")", {"positive integer"}, StoreDir(),
                  {Arg::Text(Path("x.db"))});
    ExpectRefused(a, std::string("SELECT snapshot_verify(") + id + ")", {"positive integer"}, StoreDir());
  }
  ExpectRefused(a, "SELECT snapshot_restore(9223372036854775807)", {"no snapshot with id"}, StoreDir());
  EXPECT_FALSE(Exists(Path("x.db")));
  // A numeric text id is an id.
  EXPECT_EQ("ok", Query(a, "SELECT snapshot_verify('1')"));
}

TEST_F(SqlBadInput, PruneArguments) {
  Conn a(DbPath());
  SetUpDbWithSnapshot(a);
  EXPECT_EQ(2, Backup(a));
  ExpectRefused(a, "SELECT snapshot_prune(NULL)", {"needs a rule"}, StoreDir());
  ExpectRefused(a, "SELECT snapshot_prune(NULL, NULL)", {"needs a rule"}, StoreDir());
  for (const char* keep_last : {"0", "-1", "'abc'", "1.5", "X'01'"}) {
    SCOPED_TRACE(keep_last);
    ExpectRefused(a, std::string("SELECT snapshot_prune(") + keep_last + ")", {"keep_last"}, StoreDir());
  }
  for (const char* keep_days : {"-1", "'x'", "1e7", "X'01'"}) {
    SCOPED_TRACE(keep_days);
    ExpectRefused(a, std::string("SELECT snapshot_prune(1, ") + keep_days + ")", {"keep_days"}, StoreDir());
  }
  ExpectRefused(a, "SELECT snapshot_prune(1, NULL, 'nosuch')", {"no such database schema"}, StoreDir());
  EXPECT_EQ(2, SnapshotCount(a));
}

TEST_F(SqlBadInput, ConfigArguments) {
  Conn a(DbPath());
  const std::string level = Query(a, "SELECT snapshot_config('level')");
  EXPECT_EQ("2", level);  // README: default 2
  EXPECT_TRUE(Contains(Query(a, "SELECT snapshot_config('nope')"), "unknown setting"));
  EXPECT_TRUE(Contains(Query(a, "SELECT snapshot_config(NULL)"), "unknown setting"));
  EXPECT_TRUE(Contains(Query(a, "SELECT snapshot_config('level', 0)"), "level must be an integer"));
  EXPECT_TRUE(Contains(Query(a, "SELECT snapshot_config('level', 'high')"), "level must be an integer"));
  EXPECT_TRUE(Contains(Query(a, "SELECT snapshot_config('threads', 17)"), "threads must be an integer from 0 to 16"));
  EXPECT_TRUE(Contains(Query(a, "SELECT snapshot_config('threads', -1)"), "threads"));
  EXPECT_TRUE(Contains(Query(a, "SELECT snapshot_config('busy_timeout', 1.5)"), "busy_timeout"));
  // Defaults, unchanged by the refused calls.
  EXPECT_EQ(level, Query(a, "SELECT snapshot_config('level')"));
  EXPECT_EQ("2", Query(a, "SELECT snapshot_config('threads')"));
  EXPECT_EQ("30000", Query(a, "SELECT snapshot_config('busy_timeout')"));
  EXPECT_EQ("NULL", Query(a, "SELECT snapshot_config('dir')"));
  // Accepted values are kept, per connection, and the functions use them.
  EXPECT_EQ("19", Query(a, "SELECT snapshot_config('level', 19)"));
  EXPECT_EQ("0", Query(a, "SELECT snapshot_config('threads', 0)"));
  EXPECT_EQ("19", Query(a, "SELECT snapshot_config('level')"));
  Conn b(DbPath());
  EXPECT_EQ(level, Query(b, "SELECT snapshot_config('level')"));
  Fill(a, "t", 300);
  EXPECT_EQ(1, Backup(a));
  EXPECT_EQ("ok", Query(a, "SELECT snapshot_verify()"));
  EXPECT_EQ("1", RestoreTo(b, Path("r.db"), 1));
  EXPECT_EQ("", SameBytes(ReadFile(Path("r.db")), ReadFile(DbPath())));
}

// A connection that may not write must not have its database replaced.
TEST_F(SqlBadInput, RestoreOnReadOnlyConnection) {
  {
    Conn a(DbPath());
    SetUpDbWithSnapshot(a);
  }
  Conn ro(DbPath(), SQLITE_OPEN_READONLY);
  const std::string d = Digest(ro);
  // Reading the store works.
  EXPECT_EQ(1, SnapshotCount(ro));
  EXPECT_EQ("1", RestoreTo(ro, Path("r.db"), 1));
  const auto store_before = TreeState(StoreDir());
  const std::string r = Query(ro, "SELECT snapshot_restore(1)");
  EXPECT_TRUE(IsError(r)) << r;
  EXPECT_TRUE(Contains(r, "read-only") || Contains(r, "readonly")) << r;
  EXPECT_FALSE(Contains(r, "page size")) << "misdiagnosed: " << r;
  EXPECT_EQ(store_before, TreeState(StoreDir()));
  EXPECT_EQ(d, Digest(ro));
}

TEST_F(SqlBadInput, RestoreOnQueryOnlyConnection) {
  Conn a(DbPath());
  SetUpDbWithSnapshot(a);
  Ok(a, "PRAGMA query_only=1");
  ASSERT_TRUE(IsError(Query(a, "DELETE FROM t")));  // the guard is on
  const std::string d = Digest(a);
  const std::string r = Query(a, "SELECT snapshot_restore(1)");
  EXPECT_TRUE(IsError(r)) << "snapshot_restore() replaced the database of a query_only connection";
  EXPECT_EQ(d, Digest(a));
}

// ---------------------------------------------------------------------------
// 7. Choosing the store directory; its files' permissions
// ---------------------------------------------------------------------------

class SqlStoreDir : public SqlFixture {};

TEST_F(SqlStoreDir, DefaultDirIsBesideTheDatabase) {
  Conn a(DbPath());
  Fill(a, "t", 10);
  const std::string db_file = Query(a, "SELECT file FROM pragma_database_list WHERE name = 'main'");
  EXPECT_EQ(db_file + "-snapshots", Query(a, "SELECT snapshot_dir()"));
  EXPECT_EQ(db_file + "-snapshots", Query(a, "SELECT snapshot_dir('main')"));
  EXPECT_FALSE(Exists(StoreDir()));
  EXPECT_EQ(0, SnapshotCount(a));
  EXPECT_FALSE(Exists(StoreDir())) << "listing created the store";
  EXPECT_EQ(1, Backup(a));
  EXPECT_TRUE(Exists(StoreDir() + "/STORE"));
  EXPECT_EQ(1u, FilesIn(StoreDir() + "/snapshots").size());
  EXPECT_EQ(1u, FilesIn(StoreDir() + "/packs").size());
}

TEST_F(SqlStoreDir, EnvironmentAndConfigChooseTheStore) {
  const std::string env_dir = Path("env-store");
  const std::string cfg_dir = Path("cfg-store");
  ASSERT_TRUE(fs::create_directory(env_dir));
  ASSERT_TRUE(fs::create_directory(cfg_dir));
  const std::string aux = Path("aux.db");
  Conn a(DbPath());
  Fill(a, "t", 50);
  {
    ScopedEnv env("SNAPSHOT_DIR", env_dir.c_str());
    EXPECT_EQ(env_dir, Query(a, "SELECT snapshot_dir()"));
    EXPECT_EQ(1, Backup(a, "to env"));
    EXPECT_TRUE(Exists(env_dir + "/STORE"));
    EXPECT_FALSE(Exists(StoreDir()));

    // Other schemas ignore SNAPSHOT_DIR.
    Ok(a, "ATTACH '" + aux + "' AS aux; CREATE TABLE aux.x(v); INSERT INTO aux.x VALUES (1)");
    const std::string aux_file = Query(a, "SELECT file FROM pragma_database_list WHERE name = 'aux'");
    EXPECT_EQ(aux_file + "-snapshots", Query(a, "SELECT snapshot_dir('aux')"));
    EXPECT_EQ("1", Query(a, "SELECT snapshot_backup('aux one', 'aux')"));
    EXPECT_TRUE(Exists(aux + "-snapshots/STORE"));
    EXPECT_EQ(1, SnapshotCount(a, "aux"));
    EXPECT_EQ("aux one", Query(a, "SELECT label FROM snapshot_list('aux')"));
    EXPECT_EQ("aux one", Query(a, "SELECT label FROM snapshot_list WHERE schema = 'aux'"));

    // snapshot_config('dir') beats the environment, for this connection only.
    EXPECT_EQ(cfg_dir, Query(a, "SELECT snapshot_config('dir', '" + cfg_dir + "')"));
    EXPECT_EQ(cfg_dir, Query(a, "SELECT snapshot_dir()"));
    EXPECT_EQ(0, SnapshotCount(a));
    EXPECT_EQ(1, Backup(a, "to cfg"));
    EXPECT_EQ("to cfg", Query(a, "SELECT label FROM snapshot_list"));
    EXPECT_TRUE(Exists(cfg_dir + "/STORE"));
    // ... and not for schema aux.
    EXPECT_EQ(aux_file + "-snapshots", Query(a, "SELECT snapshot_dir('aux')"));
    Conn b(DbPath());
    EXPECT_EQ(env_dir, Query(b, "SELECT snapshot_dir()"));
    EXPECT_EQ("to env", Query(b, "SELECT label FROM snapshot_list"));

    // Restores come from the chosen store.
    Ok(a, "DELETE FROM t; DELETE FROM aux.x");
    EXPECT_EQ(1, Restore(a, 1));
    EXPECT_EQ(50, QueryInt(a, "SELECT count(*) FROM t"));
    EXPECT_EQ("2", Query(a, "SELECT max(id) FROM snapshot_list"));  // pre-restore in cfg_dir
    EXPECT_EQ("1", Query(a, "SELECT snapshot_restore(1, 'aux')"));
    EXPECT_EQ("1", Query(a, "SELECT v FROM aux.x"));
    EXPECT_EQ("ok", Query(a, "SELECT snapshot_verify(NULL, 'aux')"));
    EXPECT_EQ("1", Query(a, "SELECT snapshot_restore_to('" + Path("aux-copy.db") + "', 1, 'aux')"));
    EXPECT_EQ("1", Query(a, "SELECT snapshot_prune(1, NULL, 'aux')"));  // snapshot 1; its pre-restore stays
    EXPECT_EQ("2:pre-restore", Query(a, "SELECT id || ':' || label FROM snapshot_list('aux')"));

    // Unsetting the setting goes back to the environment.
    EXPECT_EQ("NULL", Query(a, "SELECT snapshot_config('dir', NULL)"));
    EXPECT_EQ(env_dir, Query(a, "SELECT snapshot_dir()"));
    EXPECT_EQ("1", Query(b, "SELECT count(*) FROM snapshot_list"));
  }
  // Without either, the default.
  EXPECT_EQ(Query(a, "SELECT file FROM pragma_database_list WHERE name = 'main'") + "-snapshots",
            Query(a, "SELECT snapshot_dir()"));
  EXPECT_FALSE(Exists(StoreDir()));
}

// A chosen directory that already holds other files is never taken over
// (SNAPSHOT_DIR=/tmp must not become a store, nor clean anybody's *.tmp).
TEST_F(SqlStoreDir, DirectoryWithOtherFilesIsNotTakenOver) {
  const std::string busy = Path("busy");
  ASSERT_TRUE(fs::create_directory(busy));
  WriteFile(busy + "/notes.txt", "mine");
  WriteFile(busy + "/work.tmp", "also mine");
  Conn a(DbPath());
  Fill(a, "t", 20);
  {
    ScopedEnv env("SNAPSHOT_DIR", busy.c_str());
    ExpectRefused(a, "SELECT snapshot_backup()", {busy, "not empty"}, busy);
  }
  Ok(a, "SELECT snapshot_config('dir', '" + busy + "')");
  ExpectRefused(a, "SELECT snapshot_backup()", {"not empty"}, busy);
  ExpectRefused(a, "SELECT snapshot_prune(1)", {}, busy);
  ExpectRefused(a, "SELECT snapshot_restore()", {}, busy);
  EXPECT_EQ(std::vector<std::string>({"notes.txt", "work.tmp"}), FilesIn(busy));
  // The default location taken by a plain file.
  Ok(a, "SELECT snapshot_config('dir', NULL)");
  WriteFile(StoreDir(), "a file where the store would go");
  ExpectRefused(a, "SELECT snapshot_backup()", {"not a directory"}, StoreDir());
  EXPECT_EQ("a file where the store would go", ReadFile(StoreDir()));
}

// One SNAPSHOT_DIR for two databases (a copied cron line): the second is
// refused rather than mixed into the first one's store.
TEST_F(SqlStoreDir, SharedEnvironmentDirServesOneDatabase) {
  const std::string shared = Path("shared");
  ASSERT_TRUE(fs::create_directory(shared));
  ScopedEnv env("SNAPSHOT_DIR", shared.c_str());
  Conn a(DbPath());
  Fill(a, "t", 20);
  EXPECT_EQ(1, Backup(a));
  Conn b(Path("other.db"));
  Fill(b, "u", 20);
  ExpectRefused(b, "SELECT snapshot_backup()", {"belongs to database 'app.db'"}, shared);
  ExpectRefused(b, "SELECT snapshot_restore(1)", {"belongs to database 'app.db'"}, shared);
  EXPECT_EQ(20, QueryInt(b, "SELECT count(*) FROM u"));
  EXPECT_EQ(1, SnapshotCount(a));
}

TEST_F(SqlStoreDir, StoreFilesGetTheDatabaseFileMode) {
  const mode_t old_umask = umask(022);
  for (unsigned mode : {0640u, 0600u}) {
    SCOPED_TRACE(mode);
    const std::string db = Path("m" + std::to_string(mode) + ".db");
    Conn a(db);
    Fill(a, "t", 300);
    ASSERT_EQ(0, chmod(db.c_str(), mode));
    EXPECT_EQ(1, Backup(a));
    Ok(a, "DELETE FROM t WHERE id > 100");
    EXPECT_EQ(1, Restore(a, 1));  // adds a pre-restore snapshot and pack
    EXPECT_EQ(1, Prune(a, 1));  // snapshot 1 goes, pre-restore 2 stays
    const std::string store = db + "-snapshots";
    int files = 0;
    for (auto it = fs::recursive_directory_iterator(store); it != fs::recursive_directory_iterator(); ++it) {
      const std::string p = it->path().string();
      const unsigned m = FileMode(p);
      if (it->is_directory()) {
        EXPECT_EQ(0u, m & 0022u) << p << " is writable by others: " << std::oct << m;
        EXPECT_EQ(0u, m & 0007u & ~((mode & 0007u) | ((mode & 0004u) >> 2))) << p << ": " << std::oct << m;
      } else {
        files++;
        EXPECT_EQ(mode, m) << p << ": " << std::oct << m;
      }
    }
    EXPECT_GE(files, 4);  // STORE, LOCK, a pack, a manifest
    EXPECT_EQ(mode, FileMode(store) & 0666u) << std::oct << FileMode(store);
    const std::string out = Path("copy" + std::to_string(mode) + ".db");
    EXPECT_EQ("2", RestoreTo(a, out, 2));
    EXPECT_EQ(mode, FileMode(out)) << std::oct << FileMode(out);
  }
  umask(old_umask);
}

// ---------------------------------------------------------------------------
// 8. One load per process
// ---------------------------------------------------------------------------

class SqlAutoExtension : public SqlFixture {};

TEST_F(SqlAutoExtension, LaterConnectionsHaveTheFunctions) {
  std::string version;
  {
    Conn loader(DbPath());
    version = Query(loader, "SELECT snapshot_version()");
    EXPECT_FALSE(IsError(version));
    EXPECT_FALSE(version.empty());
  }  // the loading connection is closed: the library stays loaded
  Conn plain(DbPath(), /*load=*/false);
  EXPECT_EQ(version, Query(plain, "SELECT snapshot_version()"));
  Fill(plain, "t", 20);
  EXPECT_EQ(1, Backup(plain, "auto"));
  EXPECT_EQ(1, SnapshotCount(plain));
  sqlite3* v2 = nullptr;
  ASSERT_EQ(SQLITE_OK, sqlite3_open_v2(Path("other.db").c_str(), &v2, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr));
  EXPECT_EQ(version, Query(v2, "SELECT snapshot_version()"));
  sqlite3_close(v2);
}

// ---------------------------------------------------------------------------
// 9. Damage is reported and never restored
// ---------------------------------------------------------------------------

class SqlDamageOnPageOne : public SqlFixture {};

class SqlDamage : public SqlFixture, public ::testing::WithParamInterface<std::string> {
 protected:
  // Two snapshots whose packs have many frames (random, incompressible rows).
  void Build(sqlite3* a) {
    Ok(a, "PRAGMA journal_mode=" + GetParam());
    Fill(a, "t", 3000, 1500);  // ~4.6 MB: several compression frames in pack 1
    EXPECT_EQ(1, Backup(a, "one"));
    Ok(a, "UPDATE t SET b = randomblob(1500) WHERE id > 2500");
    EXPECT_EQ(2, Backup(a, "two"));
    EXPECT_EQ("ok", Query(a, "SELECT snapshot_verify()"));
    Ok(a, "DELETE FROM t WHERE id % 2 = 0");
  }
};

TEST_P(SqlDamage, FlippedByteInTheMiddleOfAPack) {
  Conn a(DbPath());
  Build(a);
  const std::string live = Digest(a);
  const std::string pack = PackPath(StoreDir(), 1);
  ASSERT_GT(FileSize(pack), 4000000u);
  FlipByte(pack, FileSize(pack) / 3);  // a frame in the middle: page 1 still reads

  const std::string v = Query(a, "SELECT snapshot_verify()");
  EXPECT_TRUE(IsError(v)) << v;
  EXPECT_TRUE(Contains(v, "snapshot 1 (")) << v;
  EXPECT_TRUE(Contains(v, "damaged")) << v;
  EXPECT_TRUE(Contains(Query(a, "SELECT snapshot_verify(1)"), "snapshot 1 (")) << Query(a, "SELECT snapshot_verify(1)");

  // Refused before anything is written: the database and the store stay
  // as they were (no pre-restore snapshot of a restore that cannot happen).
  ExpectRefused(a, "SELECT snapshot_restore(1)", {"damaged"}, StoreDir());
  EXPECT_EQ(live, Digest(a));
  EXPECT_EQ("ok", Integrity(a));
  EXPECT_FALSE(Exists(DbPath() + "-journal"));
  Conn b(DbPath());
  EXPECT_EQ(live, Digest(b));

  const std::string out = Path("r.db");
  const std::string t = RestoreTo(a, out, 1);
  EXPECT_TRUE(IsError(t)) << t;
  EXPECT_TRUE(Contains(t, "damaged")) << t;
  EXPECT_FALSE(Exists(out));
  EXPECT_FALSE(Exists(out + ".tmp"));
}

// In rollback mode pages are stored in page order, so frame 0 of the first
// pack holds page 1, which SQLite reads when it opens the snapshot.
TEST_F(SqlDamageOnPageOne, IsReportedAsDamage) {
  Conn a(DbPath());
  Ok(a, "PRAGMA journal_mode=DELETE");
  Fill(a, "t", 3000, 1500);
  EXPECT_EQ(1, Backup(a, "one"));
  Ok(a, "DELETE FROM t WHERE id % 2 = 0");
  const std::string live = Digest(a);
  FlipByte(PackPath(StoreDir(), 1), 32 + 100);  // frame 0: holds page 1
  const std::string v = Query(a, "SELECT snapshot_verify(1)");
  EXPECT_TRUE(Contains(v, "snapshot 1 (")) << v;
  const auto store_before = TreeState(StoreDir());
  const std::string r = Query(a, "SELECT snapshot_restore(1)");
  EXPECT_TRUE(IsError(r)) << r;
  EXPECT_TRUE(Contains(r, "damaged")) << "the error does not say the snapshot is damaged: " << r;
  EXPECT_EQ(live, Digest(a));
  EXPECT_EQ("ok", Integrity(a));
  EXPECT_EQ(store_before, TreeState(StoreDir()));
  const std::string t = RestoreTo(a, Path("r.db"), 1);
  EXPECT_TRUE(Contains(t, "damaged")) << t;
}

TEST_P(SqlDamage, DamagedManifest) {
  Conn a(DbPath());
  Build(a);
  const std::string live = Digest(a);
  const std::string manifest = StoreDir() + "/snapshots/0000000002.snap";
  FlipByte(manifest, FileSize(manifest) / 2);
  const std::string v = Query(a, "SELECT snapshot_verify()");
  EXPECT_TRUE(Contains(v, "snapshot 2 (")) << v;
  EXPECT_FALSE(Contains(v, "snapshot 1 (")) << v;
  EXPECT_EQ("ok", Query(a, "SELECT snapshot_verify(1)"));
  const std::string r = Query(a, "SELECT snapshot_restore(2)");
  EXPECT_TRUE(IsError(r)) << r;
  EXPECT_EQ(live, Digest(a));
  // The damaged snapshot is not listed, so never restored as "latest".
  EXPECT_EQ("1:one", SnapshotIds(a));
  // Prune cannot know what a damaged snapshot needs: it deletes nothing.
  ExpectRefused(a, "SELECT snapshot_prune(1)", {"snapshot 2"}, StoreDir());
}

// After damage is found, a new backup must not silently depend on the
// damaged bytes: it is what the user takes to be safe again, and while it
// refers to them no prune can get rid of them either.
TEST_P(SqlDamage, NewBackupAfterDamageIsRestorable) {
  Conn a(DbPath());
  Ok(a, "PRAGMA journal_mode=" + GetParam());
  Fill(a, "t", 3000, 1500);
  EXPECT_EQ(1, Backup(a, "one"));
  Ok(a, "UPDATE t SET a = 'changed' WHERE id > 2900");  // the other pages stay as stored
  const std::string pack = PackPath(StoreDir(), 1);
  FlipByte(pack, FileSize(pack) / 3);
  EXPECT_TRUE(Contains(Query(a, "SELECT snapshot_verify()"), "snapshot 1 ("));
  const std::string live = Digest(a);
  EXPECT_EQ(2, Backup(a, "after damage"));
  EXPECT_EQ("ok", Query(a, "SELECT snapshot_verify(2)"));
  const std::string out = Path("r.db");
  EXPECT_EQ("2", RestoreTo(a, out, 2));
  if (Exists(out)) {
    Conn r(out, false);
    EXPECT_EQ(live, Digest(r));
  }
}

INSTANTIATE_TEST_SUITE_P(SqlModes, SqlDamage, ::testing::Values("DELETE", "WAL"), ModeName);

// ---------------------------------------------------------------------------
// 10. Prune
// ---------------------------------------------------------------------------

class SqlPrune : public SqlFixture {};

TEST_F(SqlPrune, KeepLastLeavesTheNewestRestorable) {
  Conn a(DbPath());
  std::vector<std::string> digests;
  Fill(a, "t", 1000, 300);
  for (int i = 1; i <= 5; i++) {
    Ok(a, "UPDATE t SET b = randomblob(300) WHERE id % 5 = " + std::to_string(i % 5));
    Fill(a, "t", 50, 300);
    EXPECT_EQ(i, Backup(a, "s" + std::to_string(i)));
    digests.push_back(Digest(a));
  }
  Ok(a, "DELETE FROM t");
  EXPECT_EQ("0", Query(a, "SELECT snapshot_prune(5)"));
  EXPECT_EQ("0", Query(a, "SELECT snapshot_prune(100)"));
  EXPECT_EQ(3, Prune(a, 2));
  EXPECT_EQ("4:s4,5:s5", SnapshotIds(a));
  EXPECT_EQ("ok", Query(a, "SELECT snapshot_verify()"));
  EXPECT_TRUE(Contains(Query(a, "SELECT snapshot_restore(1)"), "no snapshot with id 1"));
  EXPECT_EQ(4, Restore(a, 4));
  EXPECT_EQ(digests[3], Digest(a));
  EXPECT_EQ("ok", Integrity(a));
  EXPECT_EQ(5, Restore(a, 5));
  EXPECT_EQ(digests[4], Digest(a));
  const std::string out = Path("r4.db");
  EXPECT_EQ("4", RestoreTo(a, out, 4));
  Conn r(out, false);
  EXPECT_EQ(digests[3], Digest(r));
  EXPECT_EQ("ok", Integrity(r));
}

TEST_F(SqlPrune, ReclaimsSpaceAndRewritesPacks) {
  Conn a(DbPath());
  Fill(a, "t", 2000, 1000);
  EXPECT_EQ(1, Backup(a));
  Ok(a, "UPDATE t SET b = randomblob(1000) WHERE id % 3 != 0");  // 2/3 of pack 1 no longer live
  EXPECT_EQ(2, Backup(a));
  const std::string d2 = Digest(a);
  const std::vector<std::string> packs_before = FilesIn(StoreDir() + "/packs");
  EXPECT_EQ(2u, packs_before.size());
  uint64_t bytes_before = 0;
  for (const auto& p : packs_before) bytes_before += FileSize(StoreDir() + "/packs/" + p);
  EXPECT_EQ(1, Prune(a, 1));
  const std::vector<std::string> packs_after = FilesIn(StoreDir() + "/packs");
  uint64_t bytes_after = 0;
  for (const auto& p : packs_after) bytes_after += FileSize(StoreDir() + "/packs/" + p);
  EXPECT_EQ(packs_after.end(), std::find(packs_after.begin(), packs_after.end(), "0000000001.pack"))
      << "pack 1 was not rewritten";
  EXPECT_LT(bytes_after, bytes_before * 3 / 4);
  EXPECT_EQ("ok", Query(a, "SELECT snapshot_verify()"));
  Ok(a, "DELETE FROM t");
  EXPECT_EQ(2, Restore(a, 2));
  EXPECT_EQ(d2, Digest(a));
  EXPECT_EQ("ok", Integrity(a));
  // New backups still deduplicate against the rewritten pack (ids follow
  // the highest pack id: the rewrite took 3, the pre-restore 4).
  EXPECT_EQ(5, Backup(a));
  EXPECT_LE(QueryInt(a, "SELECT pages_new FROM snapshot_list WHERE id = 5"), 1);
}

TEST_F(SqlPrune, KeepDays) {
  Conn a(DbPath());
  Fill(a, "t", 100);
  for (int i = 1; i <= 3; i++) {
    Ok(a, "INSERT INTO t(a) VALUES ('" + std::to_string(i) + "')");
    EXPECT_EQ(i, Backup(a));
  }
  const std::string d3 = Digest(a);
  // Everything is younger than a day: nothing goes, whatever keep_last says.
  EXPECT_EQ("0", Query(a, "SELECT snapshot_prune(NULL, 1)"));
  EXPECT_EQ("0", Query(a, "SELECT snapshot_prune(1, 1)"));
  EXPECT_EQ("0", Query(a, "SELECT snapshot_prune(1, 0.5)"));
  EXPECT_EQ(3, SnapshotCount(a));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  // Nothing is younger than 0 days; keep_last 2 keeps two.
  EXPECT_EQ("1", Query(a, "SELECT snapshot_prune(2, 0)"));
  EXPECT_EQ("2,3", Query(a, "SELECT group_concat(id) FROM snapshot_list"));
  // Only the age rule: the newest is always kept.
  EXPECT_EQ("1", Query(a, "SELECT snapshot_prune(NULL, 0)"));
  EXPECT_EQ("3", Query(a, "SELECT group_concat(id) FROM snapshot_list"));
  Ok(a, "DELETE FROM t");
  EXPECT_EQ(3, Restore(a, 3));
  EXPECT_EQ(d3, Digest(a));
  EXPECT_EQ("ok", Query(a, "SELECT snapshot_verify()"));
}

// ---------------------------------------------------------------------------
// More shapes: exclusive locking mode, memory-mapped I/O
// ---------------------------------------------------------------------------

TEST_F(SqlShape, ExclusiveLockingMode) {
  Conn a(DbPath());
  Ok(a, "PRAGMA locking_mode=EXCLUSIVE");
  Fill(a, "t", 500);
  const std::string d1 = Digest(a);
  EXPECT_EQ(1, Backup(a));
  Ok(a, "DELETE FROM t WHERE id > 20; INSERT INTO t(a) VALUES ('later')");
  const std::string d2 = Digest(a);
  EXPECT_EQ(1, Restore(a, 1));
  EXPECT_EQ(d1, Digest(a));
  EXPECT_EQ("ok", Integrity(a));
  EXPECT_EQ(2, Restore(a, 2));
  EXPECT_EQ(d2, Digest(a));
  Ok(a, "PRAGMA locking_mode=NORMAL; SELECT count(*) FROM t");  // releases the lock
  Conn b(DbPath());
  EXPECT_EQ(d2, Digest(b));
  EXPECT_EQ("ok", Integrity(b));
}

TEST_F(SqlShape, MemoryMappedConnectionsSeeShrinkingAndGrowingRestores) {
  Conn a(DbPath());
  Conn b(DbPath());
  for (sqlite3* c : {a.get(), b.get()}) Ok(c, "PRAGMA mmap_size=268435456");
  Fill(a, "t", 50);
  const std::string small = Digest(a);
  EXPECT_EQ(1, Backup(a, "small"));
  Fill(a, "t", 5000, 400);
  const std::string big = Digest(a);
  const int64_t big_pages = PageCount(a);
  EXPECT_EQ(big, Digest(b));  // b has the big file mapped
  EXPECT_EQ(1, Restore(a, 1));
  EXPECT_LT(PageCount(b), big_pages / 10);
  EXPECT_EQ(small, Digest(b));
  EXPECT_EQ("ok", Integrity(b));
  EXPECT_EQ(2, Restore(b, 2));
  EXPECT_EQ(big, Digest(a));
  EXPECT_EQ("ok", Integrity(a));
}

// ---------------------------------------------------------------------------
// Crash safety of a restore: a VFS shim over the default VFS copies the
// database and its journal aside at the moment the restore syncs the
// database file (the state a power cut at that instant leaves on disk), or
// fails that sync. SQLite then has to roll the hot journal back to exactly
// the state before the restore.
// ---------------------------------------------------------------------------

struct CrashCase {
  std::string name;
  int snapshot_rows;  // rows of the snapshot restored
  int live_rows;      // rows of the live database it replaces
};

void PrintTo(const CrashCase& c, std::ostream* os) { *os << c.name; }

class SqlCrash : public SqlFixture, public ::testing::WithParamInterface<CrashCase> {
 protected:
  void TearDown() override { Shim().Reset(); }
};

// A crash while the restore is writing leaves a hot journal; whatever
// SQLite does with it must give back the state before the restore.
TEST_P(SqlCrash, CrashDuringRestoreRollsBackToTheStateBefore) {
  sqlite3* a = OpenThroughShim(DbPath());
  Ok(a, "PRAGMA journal_mode=DELETE");
  Fill(a, "t", GetParam().snapshot_rows, 500);
  EXPECT_EQ(1, Backup(a, "snapshot"));
  Ok(a, "DELETE FROM t");
  Fill(a, "t", GetParam().live_rows, 500);
  const std::string before = Digest(a);
  const int64_t pages_before = PageCount(a);

  Shim().crash_dir = Path("crash");
  EXPECT_EQ(1, Restore(a, 1));
  const int images = Shim().crash_images;
  Shim().crash_dir.clear();
  EXPECT_GE(images, 1) << "the restore never synced the database file";
  sqlite3_close_v2(a);

  for (int i = 1; i <= images; i++) {
    SCOPED_TRACE("crash at database sync #" + std::to_string(i));
    const std::string img = Path("crash/" + std::to_string(i) + "/app.db");
    ASSERT_TRUE(Exists(img + "-journal")) << "no hot journal at the sync";
    Conn r(img, /*load=*/false);  // SQLite rolls the hot journal back
    EXPECT_EQ("ok", Integrity(r));
    EXPECT_EQ(before, Digest(r));
    EXPECT_EQ(pages_before, PageCount(r));
  }
}

// The same point as a failed fsync instead of a crash: the restore fails,
// and the next reader rolls the database back.
TEST_P(SqlCrash, FailedDatabaseSyncRollsBackToTheStateBefore) {
  sqlite3* a = OpenThroughShim(DbPath());
  Ok(a, "PRAGMA journal_mode=DELETE");
  Fill(a, "t", GetParam().snapshot_rows, 500);
  EXPECT_EQ(1, Backup(a, "snapshot"));
  Ok(a, "DELETE FROM t");
  Fill(a, "t", GetParam().live_rows, 500);
  const std::string before = Digest(a);
  const int64_t pages_before = PageCount(a);

  Shim().fail_db_syncs = 1;
  const std::string r = Query(a, "SELECT snapshot_restore(1)");
  EXPECT_EQ(0, Shim().fail_db_syncs) << "the restore never synced the database file";
  Shim().fail_db_syncs = 0;
  EXPECT_TRUE(IsError(r)) << r;
  Conn b(DbPath(), /*load=*/false);
  EXPECT_EQ("ok", Integrity(b));
  EXPECT_EQ(before, Digest(b));
  EXPECT_EQ(pages_before, PageCount(b));
  EXPECT_EQ(before, Digest(a));
  EXPECT_EQ("ok", Integrity(a));
  sqlite3_close_v2(a);
}

INSTANTIATE_TEST_SUITE_P(SqlRestoreShapes, SqlCrash,
                         ::testing::Values(CrashCase{"shrinks", 100, 3000}, CrashCase{"grows", 3000, 100},
                                           CrashCase{"same_size", 1000, 1000}),
                         [](const ::testing::TestParamInfo<CrashCase>& i) { return i.param.name; });

// ---------------------------------------------------------------------------
// 11. Importing full-copy backups (what cp-based scripts left behind)
// ---------------------------------------------------------------------------

class SqlImport : public SqlFixture {};

TEST_F(SqlImport, FullCopiesBecomeDeduplicatedSnapshots) {
  std::vector<std::string> copies, digests;
  {
    Conn a(DbPath());
    Fill(a, "t", 2000, 300);
    for (int night = 0; night < 3; night++) {
      Ok(a, "UPDATE t SET a = 'night " + std::to_string(night) + "' WHERE id % 50 = 0");
      const std::string copy = Path("db-backup-" + std::to_string(night) + ".sqlite3");
      WriteFile(copy, ReadFile(DbPath()));  // the old script: cp db.sqlite3 backups/
      copies.push_back(copy);
      Conn c(copy, false);
      digests.push_back(Digest(c));
    }
  }
  ASSERT_EQ(0, ::system(("touch -d '2023-09-26 23:26:01 UTC' '" + copies[0] + "'").c_str()));
  Conn a(DbPath());
  EXPECT_EQ("1", QueryArgs(a, "SELECT snapshot_import(?)", {Arg::Text(copies[0])}));
  EXPECT_EQ("2023-09-26T23:26:01.000Z", Query(a, "SELECT label FROM snapshot_list WHERE id = 1"));
  EXPECT_EQ("2", QueryArgs(a, "SELECT snapshot_import(?, 'second')", {Arg::Text(copies[1])}));
  EXPECT_EQ("3", QueryArgs(a, "SELECT snapshot_import(?)", {Arg::Text(copies[2])}));
  // The first import stores everything; later ones only what changed.
  const int64_t pages = QueryInt(a, "SELECT page_count FROM snapshot_list WHERE id = 1");
  EXPECT_EQ(pages, QueryInt(a, "SELECT pages_new FROM snapshot_list WHERE id = 1"));
  for (int id : {2, 3}) {
    const int64_t added = QueryInt(a, "SELECT pages_new FROM snapshot_list WHERE id = " + std::to_string(id));
    EXPECT_GT(added, 0);
    EXPECT_LT(added * 4, pages) << "import " << id << " stored most pages again";
  }
  // Each imported snapshot is exactly its copy.
  for (int i = 0; i < 3; i++) {
    const std::string out = Path("restored-" + std::to_string(i) + ".db");
    EXPECT_EQ(std::to_string(i + 1), RestoreTo(a, out, i + 1));
    EXPECT_EQ(ReadFile(copies[size_t(i)]), ReadFile(out)) << "copy " << i;
    Conn r(out, false);
    EXPECT_EQ(digests[size_t(i)], Digest(r));
  }
  EXPECT_EQ("ok", Query(a, "SELECT snapshot_verify()"));
}

TEST_F(SqlImport, RefusesWhatIsNotAGoodCopy) {
  Conn a(DbPath());
  Fill(a, "t", 3000, 300);
  EXPECT_EQ(1, Backup(a));
  const std::string copy = Path("copy.sqlite3");
  std::string bytes = ReadFile(DbPath());
  // A torn copy: a stretch of pages from somewhere else (as cp of a file
  // being written can give).
  for (size_t i = 40 * 4096; i < 48 * 4096 && i < bytes.size(); i++) bytes[i] = char(i * 7);
  WriteFile(copy, bytes);
  ExpectRefused(a, "SELECT snapshot_import(?)", {"damaged", "not imported"}, StoreDir(), {Arg::Text(copy)});
  ExpectRefused(a, "SELECT snapshot_import(?)", {"live database"}, StoreDir(), {Arg::Text(DbPath())});
  ExpectRefused(a, "SELECT snapshot_import(?)", {"not a readable file"}, StoreDir(), {Arg::Text(Path("nope"))});
  ExpectRefused(a, "SELECT snapshot_import(?)", {"not a readable file"}, StoreDir(), {Arg::Text(Path(""))});
  WriteFile(Path("text.txt"), std::string(10000, 'x'));
  ExpectRefused(a, "SELECT snapshot_import(?)", {"cannot"}, StoreDir(), {Arg::Text(Path("text.txt"))});
  const std::string good = Path("good.sqlite3");
  WriteFile(good, ReadFile(DbPath()));
  ExpectRefused(a, "SELECT snapshot_import(?, 'a/b')", {"label"}, StoreDir(), {Arg::Text(good)});
  Ok(a, "CREATE TABLE log(x); CREATE TRIGGER tr AFTER INSERT ON log BEGIN SELECT snapshot_import('x'); END;");
  EXPECT_TRUE(Contains(Query(a, "INSERT INTO log VALUES (1)"), "unsafe use of snapshot_import"));
}

// ---------------------------------------------------------------------------
// 12. Interrupting long work (sqlite3_interrupt, Ctrl-C in the shell)
// ---------------------------------------------------------------------------

class SqlInterrupt : public SqlFixture, public ::testing::WithParamInterface<std::string> {};

// Runs `sql` on db while another thread interrupts it after `delay_ms`;
// returns the statement's result ("ERROR: ..." when it was stopped).
std::string RunInterrupted(sqlite3* db, const std::string& sql, int delay_ms) {
  std::thread t([db, delay_ms] {
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    sqlite3_interrupt(db);
  });
  const std::string r = Query(db, sql);
  t.join();
  return r;
}

TEST_P(SqlInterrupt, LeavesStoreAndDatabaseAsTheyWere) {
  Conn a(DbPath());
  Ok(a, "PRAGMA journal_mode=" + GetParam());
  Fill(a, "t", 40000, 1500);  // ~70 MB: a backup takes far longer than the delay
  EXPECT_EQ(1, Backup(a, "first"));
  Ok(a, "UPDATE t SET b = randomblob(1500)");  // every page changes: the next backup is long
  const std::string digest = Digest(a);
  const auto store_before = TreeState(StoreDir());
  const std::string r = RunInterrupted(a, "SELECT snapshot_backup('second')", 20);
  ASSERT_TRUE(IsError(r)) << "the backup finished before it was interrupted: " << r;
  EXPECT_TRUE(Contains(r, "interrupt")) << r;
  EXPECT_EQ(store_before, TreeState(StoreDir())) << "an interrupted backup changed the store";
  EXPECT_EQ(digest, Digest(a));
  EXPECT_EQ("1:first", SnapshotIds(a));
  // The connection works on, and so does the store.
  EXPECT_EQ(2, Backup(a, "again"));
  EXPECT_EQ("ok", Query(a, "SELECT snapshot_verify()"));
  // restore_to stops too, and leaves no file behind.
  const std::string out = Path("out.db");
  const std::string r2 = RunInterrupted(a, "SELECT snapshot_restore_to('" + out + "', 2)", 20);
  ASSERT_TRUE(IsError(r2)) << r2;
  EXPECT_TRUE(Contains(r2, "interrupt")) << r2;
  EXPECT_FALSE(std::filesystem::exists(out));
  for (const auto& e : std::filesystem::directory_iterator(dir_.path())) {
    EXPECT_EQ(std::string::npos, e.path().filename().string().find(".tmp")) << e.path();
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, SqlInterrupt, ::testing::Values("DELETE", "WAL"), ModeName);

// ---------------------------------------------------------------------------
// 13. Progress another connection can read
// ---------------------------------------------------------------------------

class SqlProgress : public SqlFixture {};

TEST_F(SqlProgress, ABackupShowsHowFarItIs) {
  {
    Conn a(DbPath());
    Fill(a, "t", 40000, 1500);  // ~70 MB
  }
  Conn watcher(DbPath());
  EXPECT_EQ("NULL", Query(watcher, "SELECT snapshot_progress()"));
  std::string backup_result;
  std::thread worker([&] {
    Conn a(DbPath());
    backup_result = Query(a, "SELECT snapshot_backup()");
  });
  std::string seen;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (seen.empty() && std::chrono::steady_clock::now() < deadline) {
    const std::string p = Query(watcher, "SELECT snapshot_progress()");
    if (p.rfind("backup: ", 0) == 0) seen = p;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  worker.join();
  EXPECT_EQ("1", backup_result);
  EXPECT_TRUE(Contains(seen, " of " + std::to_string(QueryInt(watcher, "PRAGMA page_count")) + " pages (")) << seen;
  EXPECT_EQ("NULL", Query(watcher, "SELECT snapshot_progress()")) << "progress outlived the backup";
  // A file left by a process that died is not reported.
  WriteFile(StoreDir() + "/PROGRESS", "backup 999999999 1 5 10 2\n");
  EXPECT_EQ("NULL", Query(watcher, "SELECT snapshot_progress()"));
  EXPECT_EQ(2, Backup(watcher));  // and the next backup clears it
  EXPECT_FALSE(std::filesystem::exists(StoreDir() + "/PROGRESS"));
}

}  // namespace
}  // namespace snapshot_test
