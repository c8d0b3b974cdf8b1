// snapshot_list: an eponymous, read-only table of the snapshots in a store.
//
//   SELECT * FROM snapshot_list;                 -- schema main
//   SELECT * FROM snapshot_list('aux');          -- another attached schema
//
// `created` is when a snapshot was written; `committed` when the newest
// commit it holds was made (earlier when nothing was written for a while
// before the snapshot), NULL for snapshots that did not record it.
#include "vfs/sqlite_api.h"

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "ext/connection.h"
#include "ext/functions.h"
#include "ext/sql_fence.h"

namespace snapshot {
namespace {

enum Column { kId, kCreated, kLabel, kPageSize, kPageCount, kPagesNew, kBytesNew, kDbBytes, kCommitted, kSchema };

struct ListTable {
  sqlite3_vtab base;
  sqlite3* db;
  ConnectionSettings* settings;
};

struct ListCursor {
  sqlite3_vtab_cursor base;
  std::vector<SnapshotInfo> rows;
  size_t pos = 0;
};

int Connect(sqlite3* db, void* aux, int, const char* const*, sqlite3_vtab** out, char**) {
  int rc = sqlite3_declare_vtab(db,
                                "CREATE TABLE x(id INTEGER, created TEXT, label TEXT, page_size INTEGER, "
                                "page_count INTEGER, pages_new INTEGER, bytes_new INTEGER, db_bytes INTEGER, "
                                "committed TEXT, schema HIDDEN)");
  if (rc != SQLITE_OK) return rc;
  auto* t = static_cast<ListTable*>(sqlite3_malloc(sizeof(ListTable)));
  if (t == nullptr) return SQLITE_NOMEM;
  memset(t, 0, sizeof *t);
  t->db = db;
  t->settings = static_cast<ConnectionSettings*>(aux);
  sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
  *out = &t->base;
  return SQLITE_OK;
}

int Disconnect(sqlite3_vtab* vtab) {
  sqlite3_free(vtab);
  return SQLITE_OK;
}

int BestIndex(sqlite3_vtab*, sqlite3_index_info* info) {
  for (int i = 0; i < info->nConstraint; i++) {
    const auto& c = info->aConstraint[i];
    if (c.iColumn == kSchema && c.op == SQLITE_INDEX_CONSTRAINT_EQ) {
      if (!c.usable) return SQLITE_CONSTRAINT;
      info->aConstraintUsage[i].argvIndex = 1;
      info->aConstraintUsage[i].omit = 1;
      info->idxNum = 1;
    }
  }
  info->estimatedCost = 1000;
  return SQLITE_OK;
}

int Open(sqlite3_vtab*, sqlite3_vtab_cursor** out) {
  auto* c = new ListCursor;
  *out = &c->base;
  return SQLITE_OK;
}

int Close(sqlite3_vtab_cursor* cur) {
  delete reinterpret_cast<ListCursor*>(cur);
  return SQLITE_OK;
}

int Filter(sqlite3_vtab_cursor* cur, int idx_num, const char*, int argc, sqlite3_value** argv) {
  auto* c = reinterpret_cast<ListCursor*>(cur);
  auto* t = reinterpret_cast<ListTable*>(cur->pVtab);
  c->rows.clear();
  c->pos = 0;
  const char* schema = "main";
  if (idx_num == 1 && argc > 0 && sqlite3_value_text(argv[0]) != nullptr) {
    schema = reinterpret_cast<const char*>(sqlite3_value_text(argv[0]));
  }
  std::unique_ptr<Store> store;
  Status s = OpenStore(t->db, schema, *t->settings, StoreAccess::kRead, &store);
  if (s.IsNotFound()) return SQLITE_OK;  // no store yet: no snapshots
  if (s.ok()) s = store->List(&c->rows);
  if (!s.ok()) {
    sqlite3_free(t->base.zErrMsg);
    t->base.zErrMsg = sqlite3_mprintf("snapshot_list: %s", s.message().c_str());
    return SQLITE_ERROR;
  }
  return SQLITE_OK;
}

int Next(sqlite3_vtab_cursor* cur) {
  reinterpret_cast<ListCursor*>(cur)->pos++;
  return SQLITE_OK;
}

int Eof(sqlite3_vtab_cursor* cur) {
  auto* c = reinterpret_cast<ListCursor*>(cur);
  return c->pos >= c->rows.size();
}

int ColumnValue(sqlite3_vtab_cursor* cur, sqlite3_context* ctx, int col) {
  auto* c = reinterpret_cast<ListCursor*>(cur);
  const SnapshotInfo& r = c->rows[c->pos];
  switch (col) {
    case kId: sqlite3_result_int64(ctx, sqlite3_int64(r.id)); break;
    case kCreated: sqlite3_result_text(ctx, FormatTimestamp(r.created_ms).c_str(), -1, SQLITE_TRANSIENT); break;
    case kLabel: sqlite3_result_text(ctx, r.label.c_str(), -1, SQLITE_TRANSIENT); break;
    case kPageSize: sqlite3_result_int64(ctx, r.page_size); break;
    case kPageCount: sqlite3_result_int64(ctx, r.page_count); break;
    case kPagesNew: sqlite3_result_int64(ctx, sqlite3_int64(r.pages_new)); break;
    case kBytesNew: sqlite3_result_int64(ctx, sqlite3_int64(r.bytes_new)); break;
    case kDbBytes: sqlite3_result_int64(ctx, sqlite3_int64(r.db_bytes())); break;
    case kCommitted:
      // NULL where no commit time was recorded (snapshots of format version 1).
      if (r.has_commit_time()) {
        sqlite3_result_text(ctx, FormatTimestamp(r.commit_ms).c_str(), -1, SQLITE_TRANSIENT);
      } else {
        sqlite3_result_null(ctx);
      }
      break;
    default: sqlite3_result_null(ctx); break;
  }
  return SQLITE_OK;
}

int Rowid(sqlite3_vtab_cursor* cur, sqlite3_int64* out) {
  auto* c = reinterpret_cast<ListCursor*>(cur);
  *out = sqlite3_int64(c->rows[c->pos].id);
  return SQLITE_OK;
}

sqlite3_module MakeModule() {
  sqlite3_module m;
  memset(&m, 0, sizeof m);
  m.iVersion = 0;
  m.xCreate = nullptr;  // eponymous only
  m.xConnect = FencedMethod<Connect>::Call;
  m.xBestIndex = FencedMethod<BestIndex>::Call;
  m.xDisconnect = FencedMethod<Disconnect>::Call;
  m.xOpen = FencedMethod<Open>::Call;
  m.xClose = FencedMethod<Close>::Call;
  m.xFilter = FencedMethod<Filter>::Call;
  m.xNext = FencedMethod<Next>::Call;
  m.xEof = FencedMethod<Eof>::Call;
  m.xColumn = FencedMethod<ColumnValue>::Call;
  m.xRowid = FencedMethod<Rowid>::Call;
  return m;
}

}  // namespace

int RegisterListModule(sqlite3* db, ConnectionSettings* settings) {
  static const sqlite3_module kModule = MakeModule();
  settings->refs++;
  return sqlite3_create_module_v2(db, "snapshot_list", &kModule, settings, ReleaseSettings);
}

}  // namespace snapshot
