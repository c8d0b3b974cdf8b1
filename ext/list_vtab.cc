// snapshot_list: an eponymous, read-only table of the snapshots in a store.
//
//   SELECT * FROM snapshot_list;                 -- schema main
//   SELECT * FROM snapshot_list('aux');          -- another attached schema
//
// `created` is when a snapshot was written; `committed` when the newest
// commit it holds was made (earlier when nothing was written for a while
// before the snapshot), NULL for snapshots that did not record it.
// `location` says where the snapshot is: `local` (not yet on the store's
// remote, or there is no remote), `both`, or `remote` (pruned here, still
// on the remote until the next push mirrors the prune). It comes from the
// record the pushes keep in the store (remote/remote_status.h): listing
// never asks the network.
#include "vfs/sqlite_api.h"

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "ext/connection.h"
#include "ext/functions.h"
#include "ext/remote_functions.h"
#include "ext/vtab_util.h"

namespace snapshot {
namespace {

enum Column {
  kId, kCreated, kLabel, kPageSize, kPageCount, kPagesNew, kBytesNew, kDbBytes, kCommitted, kLocation, kSchema
};

struct ListedSnapshot {
  SnapshotInfo info;
  const char* location;  // "local", "remote" or "both"
};

struct ListSpec {
  using Row = ListedSnapshot;
  static constexpr char kModuleName[] = "snapshot_list";
  static constexpr char kDeclaration[] =
      "CREATE TABLE x(id INTEGER, created TEXT, label TEXT, page_size INTEGER, page_count INTEGER, "
      "pages_new INTEGER, bytes_new INTEGER, db_bytes INTEGER, committed TEXT, location TEXT, schema HIDDEN)";

  static int BestIndex(sqlite3_vtab*, sqlite3_index_info* info) {
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

  static Status Fill(const RowTable& t, int idx_num, int argc, sqlite3_value** argv, std::vector<Row>* rows) {
    const char* schema = "main";
    if (idx_num == 1 && argc > 0 && sqlite3_value_text(argv[0]) != nullptr) {
      schema = reinterpret_cast<const char*>(sqlite3_value_text(argv[0]));
    }
    std::unique_ptr<Store> store;
    StoreLocation loc;
    Status s = OpenStore(t.db, schema, *t.settings, StoreAccess::kRead, &store, &loc);
    if (s.IsNotFound()) return Status::OK();  // no store yet: no snapshots
    std::vector<SnapshotInfo> local;
    if (s.ok()) s = store->List(&local);
    if (!s.ok()) return s;
    store.reset();
    std::vector<SnapshotInfo> remote;
    bool known = false;
    // A record that cannot be read leaves every snapshot `local`: the
    // column informs, and snapshot_status() names the problem.
    if (!SnapshotLocations(loc.store_dir, &remote, &known).ok()) remote.clear();
    // Both lists are by id: merge them.
    size_t r = 0;
    for (SnapshotInfo& info : local) {
      while (r < remote.size() && remote[r].id < info.id) rows->push_back({remote[r++], "remote"});
      const bool both = r < remote.size() && remote[r].id == info.id;
      if (both) r++;
      rows->push_back({std::move(info), both ? "both" : "local"});
    }
    while (r < remote.size()) rows->push_back({remote[r++], "remote"});
    return Status::OK();
  }

  static void Column(const Row& row, sqlite3_context* ctx, int col) {
    const SnapshotInfo& r = row.info;
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
      case kLocation: sqlite3_result_text(ctx, row.location, -1, SQLITE_STATIC); break;
      default: sqlite3_result_null(ctx); break;
    }
  }

  static sqlite3_int64 Rowid(const Row& r, size_t) { return sqlite3_int64(r.info.id); }
};

}  // namespace

int RegisterListModule(sqlite3* db, ConnectionSettings* settings) {
  return RowTableModule<ListSpec>::Register(db, settings);
}

}  // namespace snapshot
