// snapshot_diff: an eponymous, read-only table of what changed, per table
// and index, between two snapshots, or between a snapshot and the live
// database.
//
//   SELECT * FROM snapshot_diff(17);            -- snapshot 17 against the live database
//   SELECT * FROM snapshot_diff(17, 18);        -- snapshot 17 against snapshot 18
//   SELECT name, rows_deleted FROM snapshot_diff(17) WHERE status <> 'unchanged';
//   SELECT * FROM snapshot_diff(17, NULL, 'aux');  -- another attached schema
//
// Reads nothing from the database but what ext/image_diff.h says; the store
// is held under its shared lock, so no prune removes either snapshot
// meanwhile. The live side is read under one read transaction, taken before
// the store's lock (the order every function keeps). When the database's
// tracking is trusted (snapshot_tracking() says "tracked") only the pages
// marked since its base snapshot are read from the live files, and the rest
// compared as between two snapshots (ext/diff_sources.h); otherwise every
// live page is read and hashed, and in rollback mode writers wait for that
// read lock as long.
#include "vfs/sqlite_api.h"

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "ext/capture.h"
#include "ext/connection.h"
#include "ext/diff_sources.h"
#include "ext/image_diff.h"
#include "ext/inspect.h"
#include "ext/sql_util.h"
#include "ext/tracked_capture.h"
#include "ext/vtab_util.h"
#include "store/page_diff.h"

namespace snapshot {
namespace {

enum Column {
  kName, kType, kTblName, kStatus, kPagesChanged, kRowsAdded, kRowsDeleted, kRowsChanged,
  kArgA, kArgB, kArgSchema  // hidden: the table-valued function's arguments
};

// The pages that differ are listed (and the live side's kept in memory), so
// a manifest declaring billions of pages (a damaged or hostile store) must
// be refused before any list is built: 2^24 pages is 64 GiB at 4 KiB pages.
constexpr uint32_t kMaxDiffPages = uint32_t(1) << 24;

Status CheckDiffable(const SnapshotImage& image) {
  if (image.info().page_count <= kMaxDiffPages) return Status::OK();
  return Status::InvalidArgument("snapshot " + std::to_string(image.info().id) + " has " +
                                 std::to_string(image.info().page_count) + " pages; snapshot_diff compares at most " +
                                 std::to_string(kMaxDiffPages));
}

// The live side: through the tracking when it is trusted (`tracked`, if
// pinned: the marked pages read), else every page (`from`/`from_schema`
// hold the read transaction).
Status LiveSide(sqlite3* db, std::unique_ptr<TrackedLiveImage> tracked, sqlite3* from, const char* from_schema,
                Store* store, SnapshotImage* a, std::unique_ptr<LivePages>* live) {
  std::unique_ptr<SnapshotImage> tracked_base;
  if (tracked != nullptr && tracked->OpenBase(store, &tracked_base).ok() && CheckDiffable(*tracked_base).ok()) {
    InterruptCheck interrupt(db);
    return LivePages::FromTracked(tracked.get(), std::move(tracked_base), store, a,
                                  [&interrupt] { return interrupt.Poll(); }, live);
  }
  tracked.reset();  // its pin, and the snapshot lock, before the long read
  return LivePages::Capture(from, from_schema, store, a, db, live);
}

// Compares snapshot `a` with snapshot `b`, or with the live database when
// `b` is null.
Status Diff(sqlite3* db, const ConnectionSettings& settings, const SnapshotSpec& a, const SnapshotSpec* b,
            const char* schema, std::vector<TreeDiff>* out) {
  StoreLocation where;  // first, so that a bad schema is named as such
  SNAPSHOT_RETURN_IF_ERROR(LocateStore(db, schema, settings, &where));
  // The live database: a read transaction first (on a connection of the
  // extension's own when it may), then the tracking's pin if it can be
  // trusted (ext/tracked_capture.h: the snapshot lock, not waited for, and
  // in WAL mode a moment's write lock), then the store's lock.
  PrivateConnection reader;
  sqlite3* from = db;
  const char* from_schema = schema;
  Statement pin;
  std::unique_ptr<TrackedLiveImage> tracked;
  if (b == nullptr) {
    if (OpenPrivateReader(db, schema, settings.busy_timeout_ms, &reader).ok()) {
      from = reader.db();
      from_schema = "main";
    }
    SNAPSHOT_RETURN_IF_ERROR(PinReadTransaction(from, from_schema, settings.busy_timeout_ms, &pin));
    if (!TrackedLiveImage::Pin(db, schema, from, from_schema, settings, &tracked).ok()) tracked.reset();
  }
  std::unique_ptr<Store> store;
  SNAPSHOT_RETURN_IF_ERROR(OpenStore(db, schema, settings, StoreAccess::kRead, &store));
  uint64_t a_id = 0, b_id = 0;
  SNAPSHOT_RETURN_IF_ERROR(ResolveSnapshot(store.get(), a, &a_id));
  if (b != nullptr) SNAPSHOT_RETURN_IF_ERROR(ResolveSnapshot(store.get(), *b, &b_id));
  std::unique_ptr<SnapshotImage> image_a, image_b;
  SNAPSHOT_RETURN_IF_ERROR(store->OpenImage(a_id, &image_a));
  SNAPSHOT_RETURN_IF_ERROR(CheckDiffable(*image_a));
  SnapshotPages pages_a(image_a.get());
  InterruptCheck interrupt(db);
  auto poll = [&interrupt] { return interrupt.Poll(); };
  if (b != nullptr) {
    SNAPSHOT_RETURN_IF_ERROR(store->OpenImage(b_id, &image_b));
    SNAPSHOT_RETURN_IF_ERROR(CheckDiffable(*image_b));
    SnapshotPages pages_b(image_b.get());
    std::vector<uint32_t> differing;
    DifferingPages(image_a.get(), image_b.get(), &differing);
    return DiffImages(&pages_a, &pages_b, differing, poll, out);
  }
  std::unique_ptr<LivePages> live;
  SNAPSHOT_RETURN_IF_ERROR(LiveSide(db, std::move(tracked), from, from_schema, store.get(), image_a.get(), &live));
  pin.Finalize();  // every live page that differs is in memory now
  return DiffImages(&pages_a, live.get(), live->differing(), poll, out);
}

struct DiffSpec {
  using Row = TreeDiff;
  static constexpr char kModuleName[] = "snapshot_diff";
  static constexpr char kDeclaration[] =
      "CREATE TABLE x(name TEXT, type TEXT, tbl_name TEXT, status TEXT, pages_changed INTEGER, rows_added INTEGER, "
      "rows_deleted INTEGER, rows_changed INTEGER, a HIDDEN, b HIDDEN, schema HIDDEN)";

  // idxNum has bit (1 << k) set for each argument k (a, b, schema) given;
  // they come to Fill in that order.
  static int BestIndex(sqlite3_vtab*, sqlite3_index_info* info) {
    int constraint_of[3] = {-1, -1, -1};
    for (int i = 0; i < info->nConstraint; i++) {
      const auto& c = info->aConstraint[i];
      if (c.iColumn < kArgA || c.op != SQLITE_INDEX_CONSTRAINT_EQ) continue;
      if (!c.usable) return SQLITE_CONSTRAINT;
      constraint_of[c.iColumn - kArgA] = i;
    }
    int next = 1;
    info->idxNum = 0;
    for (int k = 0; k < 3; k++) {
      if (constraint_of[k] < 0) continue;
      info->aConstraintUsage[constraint_of[k]].argvIndex = next++;
      info->aConstraintUsage[constraint_of[k]].omit = 1;
      info->idxNum |= 1 << k;
    }
    info->estimatedCost = 1e6;
    return SQLITE_OK;
  }

  static Status Fill(const RowTable& t, int idx_num, int argc, sqlite3_value** argv, std::vector<Row>* rows) {
    sqlite3_value* args[3] = {nullptr, nullptr, nullptr};
    for (int k = 0, i = 0; k < 3; k++) {
      if ((idx_num & (1 << k)) && i < argc) args[k] = argv[i++];
    }
    auto given = [](sqlite3_value* v) { return v != nullptr && sqlite3_value_type(v) != SQLITE_NULL; };
    if (!given(args[0])) {
      return Status::InvalidArgument("which snapshot? snapshot_diff(a) compares snapshot a with the live database, "
                                     "snapshot_diff(a, b) with snapshot b");
    }
    SnapshotSpec a, b;
    SNAPSHOT_RETURN_IF_ERROR(SnapshotArg(args[0], "a", &a));
    if (given(args[1])) SNAPSHOT_RETURN_IF_ERROR(SnapshotArg(args[1], "b", &b));
    const char* schema = "main";
    if (args[2] != nullptr && sqlite3_value_text(args[2]) != nullptr) {
      schema = reinterpret_cast<const char*>(sqlite3_value_text(args[2]));
    }
    return Diff(t.db, *t.settings, a, given(args[1]) ? &b : nullptr, schema, rows);
  }

  static void Column(const Row& r, sqlite3_context* ctx, int col) {
    auto text = [ctx](const std::string& s) { sqlite3_result_text(ctx, s.c_str(), -1, SQLITE_TRANSIENT); };
    auto rows = [ctx, &r](uint64_t n) {
      if (r.rows_counted) {
        sqlite3_result_int64(ctx, sqlite3_int64(n));
      } else {
        sqlite3_result_null(ctx);  // an index or a WITHOUT ROWID table
      }
    };
    switch (col) {
      case kName: text(r.name); break;
      case kType: text(r.type); break;
      case kTblName: text(r.tbl_name); break;
      case kStatus: text(r.status); break;
      case kPagesChanged: sqlite3_result_int64(ctx, sqlite3_int64(r.pages_changed)); break;
      case kRowsAdded: rows(r.rows_added); break;
      case kRowsDeleted: rows(r.rows_deleted); break;
      case kRowsChanged: rows(r.rows_changed); break;
      default: sqlite3_result_null(ctx); break;
    }
  }

  static sqlite3_int64 Rowid(const Row&, size_t pos) { return sqlite3_int64(pos); }
};

}  // namespace

int RegisterDiffModule(sqlite3* db, ConnectionSettings* settings) {
  return RowTableModule<DiffSpec>::Register(db, settings);
}

}  // namespace snapshot
