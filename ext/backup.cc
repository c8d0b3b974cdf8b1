#include "ext/backup.h"

#include <memory>

#include "ext/capture.h"
#include "ext/progress.h"
#include "ext/sql_util.h"
#include "ext/tracked_capture.h"
#include "store/store.h"

namespace snapshot {

Status TakeSnapshot(sqlite3* db, const char* schema, const ConnectionSettings& settings, StoreAccess access,
                    const char* operation, const std::string& label, uint64_t* id, sqlite3* source,
                    const UnlessHeld* unless) {
  StoreLocation where;  // first, so a bad schema is named as such
  SNAPSHOT_RETURN_IF_ERROR(LocateStore(db, schema, settings, &where));
  sqlite3* from = source ? source : db;
  const char* from_schema = source ? "main" : schema;
  if (sqlite3_txn_state(from, from_schema) == SQLITE_TXN_WRITE) {
    return Status::InvalidArgument(
        "cannot take a snapshot inside a write transaction (it would contain uncommitted changes); COMMIT first");
  }
  if (source == nullptr) {
    // Reads only what changed, and never stops writers (ext/tracked_capture.h).
    Status s = TakeTrackedSnapshot(db, schema, settings, access, operation, label, id, unless);
    if (s.code() != Status::Code::kNotSupported) return s;
  }
  // Under a read transaction: every page. On a connection of its own when
  // it may, so that it waits for the lock as long as busy_timeout says.
  PrivateConnection reader;
  if (source == nullptr && OpenPrivateReader(db, schema, settings.busy_timeout_ms, &reader).ok()) {
    from = reader.db();
    from_schema = "main";
  }
  Statement pin;
  SNAPSHOT_RETURN_IF_ERROR(PinReadTransaction(from, from_schema, settings.busy_timeout_ms, &pin));
  std::unique_ptr<Store> store;
  StoreLocation loc;
  SNAPSHOT_RETURN_IF_ERROR(OpenStore(db, schema, settings, access, &store, &loc));
  ProgressFile progress(store->dir(), operation, loc.file_mode);
  CaptureOptions options;
  options.busy_timeout_ms = settings.busy_timeout_ms;
  options.progress = &progress;
  options.caller = db;
  std::unique_ptr<SnapshotBuilder> builder;
  SNAPSHOT_RETURN_IF_ERROR(CaptureSnapshot(from, from_schema, store.get(), options, &builder));
  pin.Finalize();  // every page is read: writers may go on while it is made durable
  return builder->Commit(label, id);
}

Status CompactAfterSnapshot(const StoreLocation& where, const ConnectionSettings& settings, bool* more) {
  *more = false;
  // Most snapshots find nothing to do: no lock taken, no fsync.
  if (!Store::MayNeedCompaction(Env::Default(), where.store_dir, StoreOptions().compaction_file_threshold)) {
    return Status::OK();
  }
  ConnectionSettings quick;  // the caller's, but never waiting for the lock
  quick.dir = settings.dir;
  quick.level = settings.level;
  quick.threads = settings.threads;
  quick.busy_timeout_ms = 0;
  std::unique_ptr<Store> store;
  Status s = OpenStoreAt(where, quick, StoreAccess::kWrite, &store);
  if (s.code() == Status::Code::kBusy) return Status::OK();
  SNAPSHOT_RETURN_IF_ERROR(s);
  return store->CompactIfNeeded(more);
}

}  // namespace snapshot
