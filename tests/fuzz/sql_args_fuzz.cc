// Fuzz target: the SQL functions' argument checks, through the built
// extension loaded into a real SQLite connection on a small database.
//
// Input: a byte choosing the function and its argument count, then each
// argument as a type byte (NULL, integer, real, text, blob) and its bytes.
// Every call must return a value or a clean SQL error; the connection must
// stay usable. Paths the fuzzer names are kept inside a scratch directory
// (a bare file name there), and snapshot_config('dir', ...) may only reset
// the store directory to its default beside the database, so that the
// fuzzer never writes outside its scratch directory.
#include <sqlite3.h>

#include "tests/fuzz/fuzz_util.h"

using namespace snapshot_fuzz;

namespace {

struct Function {
  const char* name;
  int min_args, max_args;
  int path_arg;  // index of an argument that names a file, or -1
};

constexpr Function kFunctions[] = {
    {"snapshot_backup", 0, 2, -1},  {"snapshot_restore", 0, 2, -1}, {"snapshot_restore_to", 1, 3, 0},
    {"snapshot_import", 1, 3, 0},   {"snapshot_verify", 0, 2, -1},  {"snapshot_prune", 1, 3, -1},
    {"snapshot_config", 1, 2, -1},  {"snapshot_dir", 0, 1, -1},     {"snapshot_progress", 0, 1, -1},
    {"snapshot_tracking", 0, 1, -1}, {"snapshot_version", 0, 0, -1},
};

sqlite3* Db() {
  static sqlite3* db = [] {
    sqlite3* d = nullptr;
    const std::string path = ScratchDir() + "/fuzz.db";
    FUZZ_CHECK(sqlite3_open(path.c_str(), &d) == SQLITE_OK, "open");
    sqlite3_enable_load_extension(d, 1);
    char* err = nullptr;
    FUZZ_CHECK(sqlite3_load_extension(d, SNAPSHOT_EXTENSION_PATH, "sqlite3_snapshot_init", &err) == SQLITE_OK,
               "load: %s", err ? err : "");
    FUZZ_CHECK(sqlite3_exec(d, "CREATE TABLE IF NOT EXISTS t(x)", nullptr, nullptr, nullptr) == SQLITE_OK, "setup");
    for (int i = 0; i < 20; i++) sqlite3_exec(d, "INSERT INTO t VALUES (randomblob(300))", nullptr, nullptr, nullptr);
    mkdir((ScratchDir() + "/files").c_str(), 0700);
    return d;
  }();
  return db;
}

// Reads n bytes from the input, or fewer at its end.
struct Input {
  const uint8_t* p;
  size_t left;
  std::string Take(size_t n) {
    n = std::min(n, left);
    std::string s(reinterpret_cast<const char*>(p), n);
    p += n;
    left -= n;
    return s;
  }
  uint8_t Byte() { return left ? (left--, *p++) : 0; }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sqlite3* db = Db();
  static int calls = 0;
  if (++calls % 256 == 0) {
    // Keep the store small, so that every call costs about the same.
    RemoveTree(ScratchDir() + "/fuzz.db-snapshots");
    std::error_code ignored;
    for (const auto& entry : std::filesystem::directory_iterator(ScratchDir() + "/files", ignored)) {
      RemoveTree(entry.path());
    }
  }
  Input in{data, size};
  const uint8_t pick = in.Byte();
  // Low 4 bits: the function; high 4 bits: how many optional arguments.
  const Function& fn = kFunctions[(pick & 15) % (sizeof kFunctions / sizeof kFunctions[0])];
  const int argc = fn.min_args + (pick >> 4) % (fn.max_args - fn.min_args + 1);
  std::string sql = std::string("SELECT ") + fn.name + "(";
  for (int i = 0; i < argc; i++) sql += i ? ", ?" : "?";
  sql += ")";
  sqlite3_stmt* stmt = nullptr;
  FUZZ_CHECK(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK, "prepare %s: %s", sql.c_str(),
             sqlite3_errmsg(db));
  std::string config_name;
  for (int i = 0; i < argc; i++) {
    uint8_t type = in.Byte() % 5;
    std::string bytes = in.Take(type == 1 || type == 2 ? 8 : in.Byte());
    if (i == fn.path_arg && type != 0) {
      // A bare name inside the scratch directory, as text whatever its type
      // ('' stays '': "the target path is empty").
      for (char& c : bytes) {
        if (c == '/' || c == '\0') c = '_';
      }
      if (!bytes.empty()) bytes = ScratchDir() + "/files/" + bytes.substr(0, 64);
      type = 3;
    }
    if (std::string(fn.name) == "snapshot_config") {
      if (i == 0 && (type == 3 || type == 4)) config_name = bytes.substr(0, bytes.find('\0'));
      if (i == 1 && config_name == "dir") {
        sqlite3_bind_null(stmt, i + 1);
        continue;
      }
    }
    uint64_t v = 0;
    for (size_t k = 0; k < bytes.size() && k < 8; k++) v |= uint64_t(uint8_t(bytes[k])) << (8 * k);
    double d;
    std::memcpy(&d, &v, sizeof d);
    switch (type) {
      case 0: sqlite3_bind_null(stmt, i + 1); break;
      case 1: sqlite3_bind_int64(stmt, i + 1, sqlite3_int64(v)); break;
      case 2: sqlite3_bind_double(stmt, i + 1, d); break;
      case 3: sqlite3_bind_text(stmt, i + 1, bytes.data(), int(bytes.size()), SQLITE_TRANSIENT); break;
      case 4: sqlite3_bind_blob(stmt, i + 1, bytes.data(), int(bytes.size()), SQLITE_TRANSIENT); break;
    }
  }
  if (std::string(fn.name) == "snapshot_progress") {
    // What is left of the input is the PROGRESS file another process wrote
    // (pid 1 always exists, so a line naming it is shown).
    const std::string store = ScratchDir() + "/fuzz.db-snapshots";
    mkdir(store.c_str(), 0700);
    FUZZ_CHECK(WriteFile(store + "/PROGRESS", in.Take(in.left)), "write PROGRESS");
  }
  const int rc = sqlite3_step(stmt);
  FUZZ_CHECK(rc == SQLITE_ROW || rc == SQLITE_ERROR || rc == SQLITE_BUSY || rc == SQLITE_CORRUPT ||
                 rc == SQLITE_CANTOPEN || rc == SQLITE_NOTADB,
             "%s returned %d: %s", sql.c_str(), rc, sqlite3_errmsg(db));
  sqlite3_finalize(stmt);
  // The connection still works, outside any transaction.
  FUZZ_CHECK(sqlite3_get_autocommit(db), "%s left a transaction open", sql.c_str());
  FUZZ_CHECK(sqlite3_exec(db, "SELECT count(*) FROM t", nullptr, nullptr, nullptr) == SQLITE_OK, "after %s: %s",
             sql.c_str(), sqlite3_errmsg(db));
  return 0;
}
