#include "ext/capture.h"

#include <cstring>
#include <vector>

#include "ext/progress.h"
#include "ext/sql_util.h"
#include "store/coding.h"
#include "vfs/db_files.h"
#include "vfs/internal_vfs.h"
#include "vfs/sqlite_format.h"

namespace snapshot {

Status PinReadTransaction(sqlite3* db, const char* schema, int timeout_ms, Statement* pin) {
  const std::string sql = "SELECT count(*) FROM \"" + QuoteIdentifier(schema) + "\".sqlite_schema";
  // Preparing reads the schema, which takes the lock too: both are retried.
  int rc = RetryWhileBusy(timeout_ms, [&] {
    int r = pin->get() != nullptr ? SQLITE_OK : sqlite3_prepare_v2(db, sql.c_str(), -1, pin->out(), nullptr);
    if (r == SQLITE_OK) r = sqlite3_step(pin->get());
    if (r != SQLITE_ROW && pin->get() != nullptr) sqlite3_reset(pin->get());
    return r;
  });
  if (rc != SQLITE_ROW) return SqliteStatus(db, rc, "cannot start a read transaction on the database");
  return Status::OK();
}

Status OpenPrivateReader(sqlite3* db, const char* schema, int timeout_ms, PrivateConnection* out) {
  const char* filename = sqlite3_db_filename(db, schema);
  if (filename == nullptr || filename[0] == '\0') return Status::NotSupported("no database file");
  if (!sqlite3_get_autocommit(db) || sqlite3_txn_state(db, schema) != SQLITE_TXN_NONE) {
    return Status::NotSupported("inside a transaction: the snapshot is what it sees");
  }
  if (sqlite3_uri_boolean(filename, "nolock", 0) || sqlite3_uri_boolean(filename, "immutable", 0)) {
    return Status::NotSupported("opened without locking");
  }
  std::string locking_mode;
  const std::string q = "PRAGMA \"" + QuoteIdentifier(schema) + "\".locking_mode";
  if (!QueryText(db, q, &locking_mode).ok() || sqlite3_stricmp(locking_mode.c_str(), "normal") != 0) {
    return Status::NotSupported("exclusive locking mode: the connection may hold the lock itself");
  }
  sqlite3_vfs* vfs = nullptr;
  sqlite3_file_control(db, schema, SQLITE_FCNTL_VFS_POINTER, &vfs);
  if (vfs == nullptr) return Status::NotSupported("no VFS");
  const int flags = sqlite3_db_readonly(db, schema) == 1 ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
  const int rc = out->Open(filename, flags, vfs->zName, timeout_ms);
  if (rc != SQLITE_OK) return SqliteStatus(out->db(), rc, "cannot open the database again");
  return Status::OK();
}

Status CopyIntoPageSink(sqlite3* db, const char* schema, const std::string& sink_name, const char* sink_vfs,
                        const char* what, sqlite3* interruptible_by, ProgressFile* progress) {
  sqlite3* dst = nullptr;
  int rc = sqlite3_open_v2(sink_name.c_str(), &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, sink_vfs);
  if (rc == SQLITE_OK) {
    rc = sqlite3_exec(dst, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-2048;", nullptr,
                      nullptr, nullptr);
  }
  Status result;
  if (rc != SQLITE_OK) {
    result = SqliteStatus(dst, rc, std::string("cannot open ") + what);
  } else {
    sqlite3_backup* backup = sqlite3_backup_init(dst, "main", db, schema);
    if (backup == nullptr) {
      result = SqliteStatus(dst, sqlite3_errcode(dst), "cannot start reading the database");
    } else {
      // In steps, so that an interrupt is noticed; the pinned read
      // transaction keeps every step at the same commit.
      InterruptCheck interrupt(interruptible_by);
      do {
        rc = sqlite3_backup_step(backup, 1024);
        if (progress) {
          const int total = sqlite3_backup_pagecount(backup);
          progress->Update(uint64_t(total - sqlite3_backup_remaining(backup)), uint64_t(total));
        }
        if (rc == SQLITE_OK) result = interrupt.Poll(1);
      } while (rc == SQLITE_OK && result.ok());
      sqlite3_backup_finish(backup);
      if (result.ok() && rc != SQLITE_DONE) result = SqliteStatus(db, rc, "cannot read the database");
    }
  }
  sqlite3_close(dst);
  return result;
}

namespace {

// Reads the committed image from the files (the caller holds a lock that
// keeps it still; see vfs/db_files.h).
// An interrupt of `interruptible_by`, if set, stops it.
Status CaptureFromFiles(sqlite3* db, const char* schema, Store* store, bool include_wal, sqlite3* interruptible_by,
                        ProgressFile* progress, std::unique_ptr<SnapshotBuilder>* builder) {
  sqlite3_file* file = FilePointer(db, schema, SQLITE_FCNTL_FILE_POINTER);
  if (file == nullptr) return Status::IOError("cannot reach the database file");
  sqlite3_file* wal = include_wal ? FilePointer(db, schema, SQLITE_FCNTL_JOURNAL_POINTER) : nullptr;
  DbImageLayout layout;
  SNAPSHOT_RETURN_IF_ERROR(ReadDbLayout(file, wal, &layout));
  SNAPSHOT_RETURN_IF_ERROR(store->NewSnapshot(layout.page_size, layout.page_count, nullptr, builder));
  SnapshotBuilder* b = builder->get();
  b->SetCommitTime(LastCommitWriteTime(sqlite3_db_filename(db, schema), layout.wal));
  InterruptCheck interrupt(interruptible_by != nullptr ? interruptible_by : db);
  return ReadDbPages(file, wal, layout, [&](uint32_t pgno, const uint8_t* page) {
    SNAPSHOT_RETURN_IF_ERROR(interruptible_by != nullptr ? interrupt.Poll() : Status::OK());
    if (progress) progress->Update(pgno, layout.page_count);
    return b->AddPage(pgno, page);
  });
}

Status CaptureThroughPager(sqlite3* db, const char* schema, SnapshotBuilder* builder, int64_t schema_cookie,
                           sqlite3* interruptible_by, ProgressFile* progress) {
  CaptureSink sink;
  sink.builder = builder;
  ScopedToken<CaptureSink> token(&CaptureRegistry(), &sink);
  Status result = CopyIntoPageSink(db, schema, token.token(), kCaptureVfsName, "the capture database",
                                   interruptible_by, progress);
  if (!sink.error.ok()) return sink.error;
  SNAPSHOT_RETURN_IF_ERROR(result);
  if (builder->page_count() == 0) return Status::OK();
  if (sink.page1.size() != builder->page_size()) return Status::IOError("internal: page 1 was not captured");
  // The backup API gives its destination a schema cookie of its own; put
  // back the source's, so the snapshot's header is the database's.
  uint8_t* p = reinterpret_cast<uint8_t*>(&sink.page1[0]);
  StoreU32BE(p + kDbHeaderSchemaCookieOffset, uint32_t(schema_cookie));
  return builder->AddPage(1, p);
}

}  // namespace

Status CaptureSnapshot(sqlite3* db, const char* schema, Store* store, const CaptureOptions& options,
                       std::unique_ptr<SnapshotBuilder>* builder) {
  const int txn = sqlite3_txn_state(db, schema);
  if (txn < 0) return Status::InvalidArgument(std::string("no such database schema: ") + schema);
  if (txn == SQLITE_TXN_WRITE) {
    return Status::InvalidArgument(
        "cannot take a snapshot inside a write transaction (it would contain uncommitted changes); COMMIT first");
  }
  sqlite3* caller = options.caller != nullptr ? options.caller : db;
  Statement pin;
  SNAPSHOT_RETURN_IF_ERROR(PinReadTransaction(db, schema, options.busy_timeout_ms, &pin));
  const std::string q = "PRAGMA \"" + QuoteIdentifier(schema) + "\".";
  std::string journal_mode;
  SNAPSHOT_RETURN_IF_ERROR(QueryText(db, q + "journal_mode", &journal_mode));
  if (sqlite3_stricmp(journal_mode.c_str(), "wal") != 0) {
    return CaptureFromFiles(db, schema, store, /*include_wal=*/false, caller, options.progress, builder);
  }
  int64_t page_size, page_count, schema_cookie;
  SNAPSHOT_RETURN_IF_ERROR(QueryInt(db, q + "page_size", &page_size));
  SNAPSHOT_RETURN_IF_ERROR(QueryInt(db, q + "page_count", &page_count));
  SNAPSHOT_RETURN_IF_ERROR(QueryInt(db, q + "schema_version", &schema_cookie));
  SNAPSHOT_RETURN_IF_ERROR(store->NewSnapshot(uint32_t(page_size), uint32_t(page_count), nullptr, builder));
  // Writers may commit meanwhile, so this is only at or after the pinned
  // commit (the tracked capture, under the write lock, dates it exactly).
  (*builder)->SetCommitTime(LastCommitWriteTime(sqlite3_db_filename(db, schema), /*wal_mode=*/true));
  return CaptureThroughPager(db, schema, builder->get(), schema_cookie, caller, options.progress);
}

Status CaptureUnderWriteLock(sqlite3* db, const char* schema, Store* store,
                             std::unique_ptr<SnapshotBuilder>* builder) {
  // Under the restore's write lock: short, and not interrupted half-way.
  return CaptureFromFiles(db, schema, store, /*include_wal=*/true, /*interruptible_by=*/nullptr, nullptr, builder);
}

}  // namespace snapshot
