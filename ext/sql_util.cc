#include "ext/sql_util.h"

#include <time.h>

#include <random>

namespace snapshot {

Status SqliteStatus(sqlite3* db, int rc, const std::string& context) {
  std::string msg = context + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) return Status::Busy(msg);
  if ((rc & 0xff) == SQLITE_INTERRUPT) return Status::Interrupted(msg);
  return Status::IOError(msg);
}

static Status QueryOne(sqlite3* db, const std::string& sql, Statement* stmt) {
  int rc = sqlite3_prepare_v2(db, sql.c_str(), -1, stmt->out(), nullptr);
  if (rc == SQLITE_OK) rc = sqlite3_step(stmt->get());
  if (rc != SQLITE_ROW) return SqliteStatus(db, rc, sql);
  return Status::OK();
}

Status QueryInt(sqlite3* db, const std::string& sql, int64_t* out) {
  Statement stmt;
  SNAPSHOT_RETURN_IF_ERROR(QueryOne(db, sql, &stmt));
  *out = sqlite3_column_int64(stmt.get(), 0);
  return Status::OK();
}

Status QueryText(sqlite3* db, const std::string& sql, std::string* out) {
  Statement stmt;
  SNAPSHOT_RETURN_IF_ERROR(QueryOne(db, sql, &stmt));
  const unsigned char* t = sqlite3_column_text(stmt.get(), 0);
  *out = t ? reinterpret_cast<const char*>(t) : "";
  return Status::OK();
}

sqlite3_file* FilePointer(sqlite3* db, const char* schema, int op) {
  sqlite3_file* file = nullptr;
  if (sqlite3_file_control(db, schema, op, &file) != SQLITE_OK) return nullptr;
  return file != nullptr && file->pMethods != nullptr ? file : nullptr;
}

void SleepBetweenLockTries() {
  // A random phase, so that the tries do not fall into step with a
  // writer's commits and miss its gaps every time.
  thread_local std::minstd_rand rng(std::random_device{}());
  struct timespec ts = {0, long(150000 + rng() % 200000)};
  nanosleep(&ts, nullptr);
}

int PollingBusyHandler(void* timeout_ms, int count) {
  // Count 0 starts a wait; a thread waits for one lock at a time.
  thread_local int64_t deadline = 0;
  const int64_t now = MonotonicMs();
  if (count == 0) deadline = now + intptr_t(timeout_ms);
  if (now >= deadline) return 0;
  SleepBetweenLockTries();
  return 1;
}

std::string QuoteIdentifier(const char* name) {
  char* q = sqlite3_mprintf("%w", name);
  std::string s = q ? q : "";
  sqlite3_free(q);
  return s;
}

void ResultStatus(sqlite3_context* ctx, const char* function, const Status& s) {
  const std::string msg = std::string(function) + ": " + s.message();
  sqlite3_result_error(ctx, msg.c_str(), -1);
  if (SqliteCodeOf(s) != SQLITE_ERROR) sqlite3_result_error_code(ctx, SqliteCodeOf(s));
}

const char* TextArg(int argc, sqlite3_value** argv, int i) {
  if (i >= argc || sqlite3_value_type(argv[i]) == SQLITE_NULL) return nullptr;
  return reinterpret_cast<const char*>(sqlite3_value_text(argv[i]));
}

Status SnapshotArg(sqlite3_value* v, const char* what, SnapshotSpec* spec) {
  *spec = SnapshotSpec::Latest();
  if (v == nullptr || sqlite3_value_type(v) == SQLITE_NULL) return Status::OK();
  if (sqlite3_value_type(v) == SQLITE_TEXT) {
    return SnapshotSpec::Parse(reinterpret_cast<const char*>(sqlite3_value_text(v)), spec);
  }
  if (sqlite3_value_type(v) != SQLITE_INTEGER || sqlite3_value_int64(v) <= 0) {
    return Status::InvalidArgument(std::string(what) +
                                   " must be a snapshot id, a positive integer (see SELECT id FROM snapshot_list), "
                                   "or text: 'latest' or a moment such as '2026-12-05 14:59:00'");
  }
  *spec = SnapshotSpec::Id(uint64_t(sqlite3_value_int64(v)));
  return Status::OK();
}

const char* SchemaArg(int argc, sqlite3_value** argv, int i) {
  const char* s = TextArg(argc, argv, i);
  return s ? s : "main";
}

}  // namespace snapshot
