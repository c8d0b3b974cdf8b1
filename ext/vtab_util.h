// The part every table-valued function of the extension shares
// (snapshot_list, snapshot_diff): an eponymous, read-only virtual table whose
// rows are computed whole when a scan starts (xFilter), kept in the cursor,
// and walked. A table is described by a spec; the module is made here:
//
//   struct ListSpec {
//     using Row = SnapshotInfo;
//     static constexpr char kModuleName[] = "snapshot_list";  // also begins its error messages
//     static constexpr char kDeclaration[] = "CREATE TABLE x(id INTEGER, ..., schema HIDDEN)";
//     static int BestIndex(sqlite3_vtab* vtab, sqlite3_index_info* info);
//     // The rows of one scan, from the arguments as BestIndex arranged them.
//     static Status Fill(const RowTable& table, int idx_num, int argc, sqlite3_value** argv,
//                        std::vector<Row>* rows);
//     static void Column(const Row& row, sqlite3_context* ctx, int col);
//     static sqlite3_int64 Rowid(const Row& row, size_t pos);
//   };
//
//   int RegisterListModule(sqlite3* db, ConnectionSettings* settings) {
//     return RowTableModule<ListSpec>::Register(db, settings);
//   }
//
// Every method SQLite calls is fenced (ext/sql_fence.h); a failed Fill is
// the statement's error, "<kModuleName>: <message>", with SqliteCodeOf's code
// (SQLITE_BUSY for a busy store, as the functions answer).
#pragma once

#include <cstring>
#include <vector>

#include "ext/connection.h"
#include "ext/sql_fence.h"
#include "ext/sql_util.h"
#include "store/status.h"
#include "vfs/sqlite_api.h"

namespace snapshot {

// The table: the connection it belongs to, and that connection's settings
// (the module's client data).
struct RowTable {
  sqlite3_vtab base;
  sqlite3* db;
  ConnectionSettings* settings;
};

template <typename Spec>
class RowTableModule {
 public:
  // Registers the module on `db`; it holds a reference to `settings`.
  static int Register(sqlite3* db, ConnectionSettings* settings) {
    static const sqlite3_module kModule = MakeModule();
    settings->refs++;
    return sqlite3_create_module_v2(db, Spec::kModuleName, &kModule, settings, ReleaseSettings);
  }

 private:
  using Row = typename Spec::Row;

  struct Cursor {
    sqlite3_vtab_cursor base;
    std::vector<Row> rows;
    size_t pos = 0;
  };
  static Cursor* CursorOf(sqlite3_vtab_cursor* cur) { return reinterpret_cast<Cursor*>(cur); }

  static int Connect(sqlite3* db, void* aux, int, const char* const*, sqlite3_vtab** out, char**) {
    int rc = sqlite3_declare_vtab(db, Spec::kDeclaration);
    if (rc != SQLITE_OK) return rc;
    auto* t = static_cast<RowTable*>(sqlite3_malloc(sizeof(RowTable)));
    if (t == nullptr) return SQLITE_NOMEM;
    std::memset(t, 0, sizeof *t);
    t->db = db;
    t->settings = static_cast<ConnectionSettings*>(aux);
    sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
    *out = &t->base;
    return SQLITE_OK;
  }

  static int Disconnect(sqlite3_vtab* vtab) {
    sqlite3_free(vtab);
    return SQLITE_OK;
  }

  static int Open(sqlite3_vtab*, sqlite3_vtab_cursor** out) {
    auto* c = new Cursor;
    *out = &c->base;
    return SQLITE_OK;
  }

  static int Close(sqlite3_vtab_cursor* cur) {
    delete CursorOf(cur);
    return SQLITE_OK;
  }

  static int Filter(sqlite3_vtab_cursor* cur, int idx_num, const char*, int argc, sqlite3_value** argv) {
    Cursor* c = CursorOf(cur);
    auto* t = reinterpret_cast<RowTable*>(cur->pVtab);
    c->rows.clear();
    c->pos = 0;
    const Status s = Spec::Fill(*t, idx_num, argc, argv, &c->rows);
    if (s.ok()) return SQLITE_OK;
    c->rows.clear();
    sqlite3_free(t->base.zErrMsg);
    t->base.zErrMsg = sqlite3_mprintf("%s: %s", Spec::kModuleName, s.message().c_str());
    return SqliteCodeOf(s);
  }

  static int Next(sqlite3_vtab_cursor* cur) {
    CursorOf(cur)->pos++;
    return SQLITE_OK;
  }

  static int Eof(sqlite3_vtab_cursor* cur) {
    Cursor* c = CursorOf(cur);
    return c->pos >= c->rows.size();
  }

  static int Column(sqlite3_vtab_cursor* cur, sqlite3_context* ctx, int col) {
    Cursor* c = CursorOf(cur);
    Spec::Column(c->rows[c->pos], ctx, col);
    return SQLITE_OK;
  }

  static int Rowid(sqlite3_vtab_cursor* cur, sqlite3_int64* out) {
    Cursor* c = CursorOf(cur);
    *out = Spec::Rowid(c->rows[c->pos], c->pos);
    return SQLITE_OK;
  }

  static sqlite3_module MakeModule() {
    sqlite3_module m;
    std::memset(&m, 0, sizeof m);
    m.iVersion = 0;
    m.xCreate = nullptr;  // eponymous only
    m.xConnect = FencedMethod<Connect>::Call;
    m.xBestIndex = FencedMethod<Spec::BestIndex>::Call;
    m.xDisconnect = FencedMethod<Disconnect>::Call;
    m.xOpen = FencedMethod<Open>::Call;
    m.xClose = FencedMethod<Close>::Call;
    m.xFilter = FencedMethod<Filter>::Call;
    m.xNext = FencedMethod<Next>::Call;
    m.xEof = FencedMethod<Eof>::Call;
    m.xColumn = FencedMethod<Column>::Call;
    m.xRowid = FencedMethod<Rowid>::Call;
    return m;
  }
};

}  // namespace snapshot
