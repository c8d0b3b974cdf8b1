// Capture: reads one transactionally consistent image of a live database
// into a new snapshot.
//
// The image is pinned by a read transaction on the calling connection. In
// rollback-journal mode that transaction's SHARED lock keeps every writer from
// changing the file, so pages are read straight from the database file
// through the connection's own VFS. In WAL mode committed pages may still be
// in the -wal file, so pages are read through SQLite's pager with the backup
// API into the snapshot_capture VFS; writers keep committing meanwhile.
#pragma once

#include "vfs/sqlite_api.h"

#include <memory>
#include <string>

#include "ext/sql_util.h"
#include "store/status.h"
#include "store/store.h"

namespace snapshot {

// Starts a read transaction on `schema` that lasts until `pin` is finalized
// (a SELECT that has returned a row keeps its transaction open). Callers pin
// before they lock the store: database lock first, store lock second. Waits
// up to timeout_ms for the lock, trying often (see RetryWhileBusy), whatever
// busy handler `db` has.
Status PinReadTransaction(sqlite3* db, const char* schema, int timeout_ms, Statement* pin);

// A connection of the extension's own to the file of `schema` of `db`,
// through the same VFS, to capture from instead of `db`: its busy handler
// is the extension's, where `db` may have none, or SQLite's, which a writer
// that commits back to back can starve. NotSupported when the capture must
// use `db` itself: inside a transaction (the snapshot is what that
// transaction sees), in exclusive locking mode (`db` may hold the lock), or
// when `db` was opened without locking.
Status OpenPrivateReader(sqlite3* db, const char* schema, int timeout_ms, PrivateConnection* out);

class ProgressFile;

// Copies every page of `schema`, as the read transaction of `db` sees it,
// through SQLite's pager (sqlite3_backup) into a page sink: a database named
// `sink_name` on the private VFS `sink_vfs`, which receives each page (the
// capture's snapshot_capture in vfs/internal_vfs.h, snapshot_diff's in
// ext/diff_sources.cc). In steps, so that an interrupt of `interruptible_by`
// is noticed; `progress`, if set, follows it. `what` names the sink in an
// error. The sink's own failures are the caller's to check after.
Status CopyIntoPageSink(sqlite3* db, const char* schema, const std::string& sink_name, const char* sink_vfs,
                        const char* what, sqlite3* interruptible_by, ProgressFile* progress);

struct CaptureOptions {
  int busy_timeout_ms = 30000;
  ProgressFile* progress = nullptr;  // updated as pages are read, if set
  sqlite3* caller = nullptr;  // whose sqlite3_interrupt() stops it; default: the connection read
};

// On success *builder holds every page; Commit() it after this returns, so the
// database lock is not held while the snapshot is made durable.
Status CaptureSnapshot(sqlite3* db, const char* schema, Store* store, const CaptureOptions& options,
                       std::unique_ptr<SnapshotBuilder>* builder);

// The same, for a caller that already holds the database's write lock through
// sqlite3_backup (restore, recording the state it is about to replace). Runs
// no SQL statement: one ending in autocommit mode would end that transaction.
Status CaptureUnderWriteLock(sqlite3* db, const char* schema, Store* store,
                             std::unique_ptr<SnapshotBuilder>* builder);

}  // namespace snapshot
