// snapshot_integrity_check(snapshot [, schema]) -> 'ok', or what SQLite's
// PRAGMA integrity_check finds wrong in the snapshot (an id, 'latest' or a
// moment, as snapshot_restore takes), one problem a line.
//
// snapshot_verify() proves that a snapshot's stored bytes are the ones that
// were written; this proves that those bytes are a sound SQLite database
// (every b-tree, index entry, freelist page and constraint checked), without
// writing the snapshot anywhere: SQLite reads it in place through the
// read-only snapshot_image VFS (vfs/internal_vfs.h), each page decompressed
// and hash-checked as it is read. A page the store cannot give back is an
// SQL error naming the snapshot and the page, not a finding.
//
// A function of its own rather than a mode of snapshot_verify(): that
// function's second argument is already the schema, so
// snapshot_verify(17, 'integrity') would be ambiguous with a schema of that
// name.
#include "vfs/sqlite_api.h"

#include <memory>
#include <string>

#include "ext/connection.h"
#include "ext/inspect.h"
#include "ext/sql_fence.h"
#include "ext/sql_util.h"
#include "vfs/internal_vfs.h"

namespace snapshot {
namespace {

Status CheckSnapshot(sqlite3* db, const char* schema, const ConnectionSettings& settings, const SnapshotSpec& spec,
                     std::string* report) {
  std::unique_ptr<Store> store;
  SNAPSHOT_RETURN_IF_ERROR(OpenStore(db, schema, settings, StoreAccess::kRead, &store));
  uint64_t id = 0;
  SNAPSHOT_RETURN_IF_ERROR(ResolveSnapshot(store.get(), spec, &id));
  std::unique_ptr<SnapshotImage> image;
  SNAPSHOT_RETURN_IF_ERROR(store->OpenImage(id, &image));
  ImageSource source;
  source.image = image.get();
  ScopedToken<ImageSource> token(&ImageRegistry(), &source);
  PrivateConnection check;
  int rc = check.Open(token.token().c_str(), SQLITE_OPEN_READONLY, kImageVfsName, settings.busy_timeout_ms);
  if (rc != SQLITE_OK) return SqliteStatus(check.db(), rc, "cannot open snapshot " + std::to_string(id));
  Statement stmt;
  rc = sqlite3_prepare_v2(check.db(), "PRAGMA integrity_check", -1, stmt.out(), nullptr);
  report->clear();
  while (rc == SQLITE_OK || rc == SQLITE_ROW) {
    rc = sqlite3_step(stmt.get());
    if (rc != SQLITE_ROW) break;
    const unsigned char* line = sqlite3_column_text(stmt.get(), 0);
    if (!report->empty()) report->append("\n");
    report->append(line ? reinterpret_cast<const char*>(line) : "");
  }
  if (!source.error.ok()) {
    return Status::Corruption("snapshot " + std::to_string(id) + " cannot be read: " + source.error.message());
  }
  if (rc != SQLITE_DONE) {
    // A database too damaged for integrity_check to walk is a finding too.
    if ((rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB) {
      if (!report->empty()) report->append("\n");
      report->append("snapshot " + std::to_string(id) + " is not a sound database: " + sqlite3_errmsg(check.db()));
      return Status::OK();
    }
    return SqliteStatus(check.db(), rc, "cannot check snapshot " + std::to_string(id));
  }
  return Status::OK();
}

void IntegrityCheckFunc(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  auto* settings = static_cast<ConnectionSettings*>(sqlite3_user_data(ctx));
  const char* schema = SchemaArg(argc, argv, 1);
  SnapshotSpec spec;
  Status s = SnapshotArg(argv[0], "the snapshot", &spec);
  std::string report;
  if (s.ok()) s = CheckSnapshot(sqlite3_context_db_handle(ctx), schema, *settings, spec, &report);
  if (!s.ok()) return ResultStatus(ctx, "snapshot_integrity_check", s);
  sqlite3_result_text(ctx, report.c_str(), -1, SQLITE_TRANSIENT);
}

}  // namespace

int RegisterIntegrityCheck(sqlite3* db, ConnectionSettings* settings) {
  for (int n = 1; n <= 2; n++) {
    settings->refs++;
    const int rc = CreateFencedFunction(db, "snapshot_integrity_check", n, SQLITE_UTF8 | SQLITE_DIRECTONLY, settings,
                                        Fenced<IntegrityCheckFunc>(), ReleaseSettings);
    if (rc != SQLITE_OK) return rc;
  }
  return SQLITE_OK;
}

}  // namespace snapshot
