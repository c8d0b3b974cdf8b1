#include "ext/sql_util.h"


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

std::string QuoteIdentifier(const char* name) {
  char* q = sqlite3_mprintf("%w", name);
  std::string s = q ? q : "";
  sqlite3_free(q);
  return s;
}

}  // namespace snapshot
