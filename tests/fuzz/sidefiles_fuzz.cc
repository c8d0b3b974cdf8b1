// Fuzz target: the files the snapshot VFS keeps beside a database, the
// tracking file (<db>-snaptrack, vfs/tracker.cc) and the copy-on-write area
// (<db>-snapcow, vfs/cow.cc), read through the built extension in a real
// SQLite connection.
//
// Input: a mode byte, a 16-bit length n, n bytes for -snaptrack, the rest
// for -snapcow (absent when empty). Mode bit 0 set: the n bytes replace the
// tracking file; clear: they are XORed onto the start of the tracking file
// a real backup left (its header), so that zeros leave a file the VFS
// trusts and the fuzzer changes one field at a time.
//
// Each run starts from the same state: the database and its store as a
// first backup left them (same inode, same bytes), the tracking file of that
// backup with the input applied. Then a connection through the snapshot VFS
// changes a few rows and takes a snapshot. Whatever the side files say, a
// snapshot that succeeds must restore to exactly the database: every page
// changed since the base went through the VFS after the files were planted,
// so no bitmap can hide it.
#include <fcntl.h>
#include <sqlite3.h>

#include "tests/fuzz/fuzz_util.h"

using namespace snapshot_fuzz;

namespace {

std::string Db() { return ScratchDir() + "/side.db"; }
std::string StoreDir() { return Db() + "-snapshots"; }

std::string QueryText(sqlite3* db, const std::string& sql, int* rc_out = nullptr) {
  sqlite3_stmt* st = nullptr;
  std::string out;
  int rc = sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr);
  if (rc == SQLITE_OK) rc = sqlite3_step(st);
  if (rc == SQLITE_ROW && sqlite3_column_text(st, 0)) out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  if (rc != SQLITE_ROW) out = sqlite3_errmsg(db);
  sqlite3_finalize(st);
  if (rc_out) *rc_out = rc;
  return out;
}

sqlite3* OpenVfs() {
  sqlite3* db = nullptr;
  FUZZ_CHECK(sqlite3_open_v2(("file:" + Db() + "?vfs=snapshot").c_str(), &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI, nullptr) == SQLITE_OK,
             "open through the snapshot VFS: %s", sqlite3_errmsg(db));
  sqlite3_busy_timeout(db, 1000);
  return db;
}

struct Pristine {
  std::string db, track;
  std::vector<std::pair<std::string, std::string>> store;  // relative path, bytes
};

// The state every run starts from, made once: a database written through
// the VFS and its first snapshot.
const Pristine& GetPristine() {
  static Pristine p = [] {
    Pristine p;
    sqlite3* loader = nullptr;
    sqlite3_open(":memory:", &loader);
    sqlite3_enable_load_extension(loader, 1);
    char* err = nullptr;
    FUZZ_CHECK(sqlite3_load_extension(loader, SNAPSHOT_EXTENSION_PATH, "sqlite3_snapshot_init", &err) == SQLITE_OK,
               "load: %s", err ? err : "");
    sqlite3* db = OpenVfs();
    FUZZ_CHECK(sqlite3_exec(db,
                            "PRAGMA page_size=1024; PRAGMA journal_mode=DELETE;"
                            "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"
                            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300) "
                            "INSERT INTO t SELECT i, printf('%0200d', i) FROM n;",
                            nullptr, nullptr, nullptr) == SQLITE_OK,
               "setup: %s", sqlite3_errmsg(db));
    int rc;
    const std::string id = QueryText(db, "SELECT snapshot_backup()", &rc);
    FUZZ_CHECK(rc == SQLITE_ROW && id == "1", "first backup: %s", id.c_str());
    sqlite3_close(db);
    sqlite3_close(loader);
    p.db = ReadWholeFile(Db());
    p.track = ReadWholeFile(Db() + "-snaptrack");
    FUZZ_CHECK(!p.track.empty(), "no tracking file");
    for (const auto& e : std::filesystem::recursive_directory_iterator(StoreDir())) {
      if (e.is_regular_file()) {
        p.store.emplace_back(std::filesystem::relative(e.path(), StoreDir()).string(), ReadWholeFile(e.path()));
      }
    }
    return p;
  }();
  return p;
}

// Puts the database back to its pristine bytes in place: same inode, so the
// tracking file's record of which file it is about still holds.
void ResetDatabase(const std::string& bytes) {
  const int fd = open(Db().c_str(), O_WRONLY);
  FUZZ_CHECK(fd >= 0 && pwrite(fd, bytes.data(), bytes.size(), 0) == ssize_t(bytes.size()) &&
                 ftruncate(fd, off_t(bytes.size())) == 0 && close(fd) == 0,
             "reset the database");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const Pristine& p = GetPristine();
  const bool replace = data[0] & 1;
  const size_t n = std::min<size_t>(size - 3, size_t(data[1]) | size_t(data[2]) << 8);
  const std::string track_part(reinterpret_cast<const char*>(data) + 3, n);
  const std::string cow_part(reinterpret_cast<const char*>(data) + 3 + n, size - 3 - n);

  ResetDatabase(p.db);
  std::remove((Db() + "-journal").c_str());
  RemoveTree(StoreDir());
  for (const auto& [rel, bytes] : p.store) {
    std::filesystem::create_directories(std::filesystem::path(StoreDir() + "/" + rel).parent_path());
    FUZZ_CHECK(WriteFile(StoreDir() + "/" + rel, bytes), "restore the store");
  }
  std::string track = replace ? track_part : p.track;
  for (size_t i = 0; !replace && i < track_part.size() && i < track.size(); i++) track[i] ^= track_part[i];
  FUZZ_CHECK(WriteFile(Db() + "-snaptrack", track), "write the tracking file");
  std::remove((Db() + "-snapcow").c_str());
  if (!cow_part.empty()) FUZZ_CHECK(WriteFile(Db() + "-snapcow", cow_part), "write the copy-on-write file");

  sqlite3* db = OpenVfs();
  const int changed = sqlite3_exec(db, "UPDATE t SET v = printf('%0201d', id) WHERE id % 50 = 1", nullptr, nullptr, nullptr);
  QueryText(db, "SELECT snapshot_tracking()");
  int rc;
  const std::string id = QueryText(db, "SELECT snapshot_backup()", &rc);
  if (changed == SQLITE_OK && rc == SQLITE_ROW) {
    const std::string out = ScratchDir() + "/restored.db";
    std::remove(out.c_str());
    const std::string restored = QueryText(db, "SELECT snapshot_restore_to('" + out + "', " + id + ")", &rc);
    FUZZ_CHECK(rc == SQLITE_ROW, "snapshot %s does not restore: %s", id.c_str(), restored.c_str());
    FUZZ_CHECK(ReadWholeFile(out) == ReadWholeFile(Db()), "snapshot %s is not the database", id.c_str());
  }
  sqlite3_close(db);
  return 0;
}
