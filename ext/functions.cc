#include "ext/functions.h"


#include <zstd.h>

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cmath>
#include <cstring>
#include <string>

#include "ext/capture.h"
#include "ext/attach.h"
#include "ext/connection.h"
#include "ext/inspect.h"
#include "ext/progress.h"
#include "ext/sql_util.h"
#include "ext/tracked_capture.h"
#include "store/coding.h"
#include "store/format.h"
#include "vfs/internal_vfs.h"
#include "vfs/journal_commit.h"
#include "vfs/snapshot_vfs.h"
#include "vfs/tracker.h"

namespace snapshot {
namespace {

constexpr char kVersion[] = "0.1.0";

ConnectionSettings* Settings(sqlite3_context* ctx) {
  return static_cast<ConnectionSettings*>(sqlite3_user_data(ctx));
}

void ResultStatus(sqlite3_context* ctx, const char* function, const Status& s) {
  const std::string msg = std::string(function) + ": " + s.message();
  sqlite3_result_error(ctx, msg.c_str(), -1);
  if (s.code() == Status::Code::kBusy) sqlite3_result_error_code(ctx, SQLITE_BUSY);
  if (s.code() == Status::Code::kInterrupted) sqlite3_result_error_code(ctx, SQLITE_INTERRUPT);
}

// Optional argument i as text; nullptr when absent or NULL.
const char* TextArg(int argc, sqlite3_value** argv, int i) {
  if (i >= argc || sqlite3_value_type(argv[i]) == SQLITE_NULL) return nullptr;
  return reinterpret_cast<const char*>(sqlite3_value_text(argv[i]));
}

const char* SchemaArg(int argc, sqlite3_value** argv, int i) {
  const char* s = TextArg(argc, argv, i);
  return s ? s : "main";
}

// Optional snapshot id argument: 0 when absent or NULL (meaning "latest").
Status IdArg(int argc, sqlite3_value** argv, int i, uint64_t* id) {
  *id = 0;
  if (i >= argc || sqlite3_value_type(argv[i]) == SQLITE_NULL) return Status::OK();
  if (sqlite3_value_numeric_type(argv[i]) != SQLITE_INTEGER || sqlite3_value_int64(argv[i]) <= 0) {
    return Status::InvalidArgument("a snapshot id is a positive integer (see SELECT id FROM snapshot_list)");
  }
  *id = uint64_t(sqlite3_value_int64(argv[i]));
  return Status::OK();
}

// Takes a snapshot of `schema` and publishes it in its store. The order of
// locks is the same everywhere: the database's first, the store's second,
// and no store lock is ever held while waiting for a database lock. (The
// other order deadlocks against a reader that lists snapshots inside its
// read transaction while a writer waits.)
//
// The pages come from schema `schema` of `db`, or, for an import, from the
// main schema of `source`, another connection.
Status TakeSnapshot(sqlite3* db, const char* schema, const ConnectionSettings& settings, StoreAccess access,
                    const char* operation, const std::string& label, uint64_t* id, sqlite3* source = nullptr) {
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
    Status s = TakeTrackedSnapshot(db, schema, settings, access, operation, label, id);
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

// snapshot_backup([label [, schema]]) -> id of the new snapshot
void BackupFunc(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  sqlite3* db = sqlite3_context_db_handle(ctx);
  const char* label = TextArg(argc, argv, 0);
  const char* schema = SchemaArg(argc, argv, 1);
  Status s = ValidateLabel(label ? label : "");
  uint64_t id = 0;
  if (s.ok()) s = TakeSnapshot(db, schema, *Settings(ctx), StoreAccess::kCreate, "backup", label ? label : "", &id);
  if (!s.ok()) return ResultStatus(ctx, "snapshot_backup", s);
  sqlite3_result_int64(ctx, sqlite3_int64(id));
}

Status ResolveId(Store* store, uint64_t requested, uint64_t* id) {
  if (requested != 0) {
    Manifest m;
    SNAPSHOT_RETURN_IF_ERROR(store->ReadManifest(requested, &m));
    *id = requested;
    return Status::OK();
  }
  return store->LatestId(id);
}

// Opens snapshot `id` as a read-only SQLite database (the restore source).
class ImageDatabase {
 public:
  ~ImageDatabase() { sqlite3_close(db_); }
  Status Open(SnapshotImage* image) {
    source_.image = image;
    token_.reset(new ScopedToken<ImageSource>(&ImageRegistry(), &source_));
    int rc = sqlite3_open_v2(token_->token().c_str(), &db_, SQLITE_OPEN_READONLY, kImageVfsName);
    if (rc != SQLITE_OK) return SqliteStatus(db_, rc, "cannot open the snapshot");
    return Status::OK();
  }
  sqlite3* db() const { return db_; }
  // The store's own account of a failed read, when there is one.
  Status ReadError() const { return source_.error; }

 private:
  ImageSource source_;
  std::unique_ptr<ScopedToken<ImageSource>> token_;
  sqlite3* db_ = nullptr;
};

constexpr char kPreRestoreLabel[] = "pre-restore";

Status PageSizeMismatch() {
  return Status::InvalidArgument(
      "cannot restore a snapshot whose page size differs from the database's while the database is in WAL mode; "
      "switch it to PRAGMA journal_mode=DELETE first, or use snapshot_restore_to()");
}

// Whether a restore may write only the pages that differ, through its own
// rollback journal (see vfs/journal_commit.h): rollback-journal modes that
// keep a journal on disk, and a connection that re-reads the file header
// when it next locks the database (not locking_mode=EXCLUSIVE).
bool CanCommitThroughJournal(sqlite3* db, const char* schema) {
  const std::string q = "PRAGMA \"" + QuoteIdentifier(schema) + "\".";
  std::string journal_mode, locking_mode;
  if (!QueryText(db, q + "journal_mode", &journal_mode).ok()) return false;
  if (!QueryText(db, q + "locking_mode", &locking_mode).ok()) return false;
  const bool journaled = sqlite3_stricmp(journal_mode.c_str(), "delete") == 0 ||
                         sqlite3_stricmp(journal_mode.c_str(), "truncate") == 0 ||
                         sqlite3_stricmp(journal_mode.c_str(), "persist") == 0;
  return journaled && sqlite3_stricmp(locking_mode.c_str(), "normal") == 0;
}

// Writes snapshot `image` over the live file, changing only pages whose
// content differs from the state just recorded as snapshot `current` (taken
// under the same EXCLUSIVE lock), as one journaled commit.
Status RestoreThroughJournal(sqlite3* db, const char* schema, Store* store, SnapshotImage* image,
                             uint64_t current_id, ProgressFile* progress) {
  std::unique_ptr<SnapshotImage> current;
  SNAPSHOT_RETURN_IF_ERROR(store->OpenImage(current_id, &current));
  sqlite3_file* file = FilePointer(db, schema, SQLITE_FCNTL_FILE_POINTER);
  sqlite3_vfs* vfs = nullptr;
  sqlite3_file_control(db, schema, SQLITE_FCNTL_VFS_POINTER, &vfs);
  const char* db_name = sqlite3_db_filename(db, schema);
  if (file == nullptr || vfs == nullptr || db_name == nullptr) return Status::IOError("cannot reach the database file");
  uint8_t live_header[100];
  int rc = file->pMethods->xRead(file, live_header, sizeof live_header, 0);
  if (rc != SQLITE_OK) return SqliteStatus(nullptr, rc, "cannot read the database header");
  if (live_header[18] != 1 || live_header[19] != 1) {
    // Switched to WAL since the restore looked: not for this path.
    return Status::NotSupported("the database is no longer in rollback-journal mode");
  }

  JournalCommit c;
  c.vfs = vfs;
  c.journal_name = sqlite3_filename_journal(db_name);
  c.db = file;
  c.page_size = image->info().page_size;
  c.old_page_count = current->info().page_count;
  c.new_page_count = image->info().page_count;
  const uint32_t lock_page = LockBytePage(c.page_size);
  for (uint32_t p = 1; p <= c.new_page_count; p++) {
    if (p == lock_page) continue;
    // Compared by content hash, not by (pack, index): the target was opened
    // before the store lock was taken again, and a compaction may have
    // moved its pages to another pack since.
    PageHash now, then;
    const bool same = p != 1 && current->StoredHash(p, &now) && image->StoredHash(p, &then) && now == then;
    if (!same) c.pages.push_back(p);
  }
  size_t written = 0;
  c.new_content = [&](uint32_t pgno, uint8_t* out) -> Status {
    progress->Update(++written, c.pages.size());
    SNAPSHOT_RETURN_IF_ERROR(image->ReadPage(pgno, out));
    if (pgno == 1) {
      // What SQLite's own commit would write: the next change counter (so
      // every other connection drops its cache), a new schema cookie (so
      // each re-reads the schema), the page count, this library's version,
      // and the live file's journal-mode bytes.
      const uint32_t counter = LoadU32BE(live_header + 24) + 1;
      StoreU32BE(out + 24, counter);
      StoreU32BE(out + 92, counter);
      StoreU32BE(out + 96, uint32_t(sqlite3_libversion_number()));
      StoreU32BE(out + 28, c.new_page_count);
      StoreU32BE(out + 40, LoadU32BE(live_header + 40) + 1);
      out[18] = live_header[18];
      out[19] = live_header[19];
    }
    return Status::OK();
  };
  return CommitThroughJournal(c);
}

// Restores snapshot `id` into `schema`, after recording the current state as
// a 'pre-restore' snapshot; both under the write lock that sqlite3_backup
// takes first, so no commit can slip in between. In rollback-journal mode
// only the pages that differ are written (RestoreThroughJournal); otherwise
// sqlite3_backup copies every page. If the restore fails, the pre-restore
// snapshot is taken back: a failed call changes nothing.
Status RestoreInto(sqlite3* db, const char* schema, const ConnectionSettings& settings, SnapshotImage* image,
                   uint64_t* pre_restore_id) {
  std::unique_ptr<Store> store;  // locked exclusively once the database is
  bool recorded = false;
  if (image->info().page_count == 0) {
    // sqlite3_backup copies an empty source at its first step, before the
    // state it replaces could be recorded, so record it first (outside the
    // write lock: a commit landing in between is not in it). Refuse up front
    // what that step would refuse.
    std::string mode;
    int64_t page_size = 0;
    const std::string q = "PRAGMA \"" + QuoteIdentifier(schema) + "\".";
    if (QueryText(db, q + "journal_mode", &mode).ok() && sqlite3_stricmp(mode.c_str(), "wal") == 0 &&
        QueryInt(db, q + "page_size", &page_size).ok() && uint32_t(page_size) != image->info().page_size) {
      return PageSizeMismatch();
    }
    SNAPSHOT_RETURN_IF_ERROR(
        TakeSnapshot(db, schema, settings, StoreAccess::kWrite, "pre-restore", kPreRestoreLabel, pre_restore_id));
    recorded = true;
  }
  const bool journal_path = image->info().page_count > 0 && CanCommitThroughJournal(db, schema);
  ImageDatabase source;
  Status s = source.Open(image);
  sqlite3_backup* backup = s.ok() ? sqlite3_backup_init(db, schema, source.db(), "main") : nullptr;
  if (s.ok() && backup == nullptr) s = SqliteStatus(db, sqlite3_errcode(db), "cannot start the restore");
  // The restore may write without the snapshot VFS: the next snapshot must
  // not trust the record of changed pages.
  if (s.ok()) DistrustTracking(sqlite3_db_filename(db, schema), kRestored);
  // Zero pages: takes the destination's write lock and copies nothing.
  int rc = !s.ok() ? SQLITE_ERROR
                   : RetryWhileBusy(settings.busy_timeout_ms, [&] { return sqlite3_backup_step(backup, 0); });
  bool copied = false;
  if (!s.ok()) {
    // reported below
  } else if (rc == SQLITE_READONLY) {
    s = PageSizeMismatch();
  } else if (rc != SQLITE_OK && rc != SQLITE_DONE) {
    s = SqliteStatus(db, rc, "cannot lock the database for the restore");
  } else if (rc == SQLITE_OK) {
    // The database's write lock is held: now the store's lock. (SQLITE_DONE
    // means the empty copy is already committed, its pre-restore recorded.)
    StoreLocation loc;
    s = OpenStore(db, schema, settings, StoreAccess::kWrite, &store, &loc);
    std::unique_ptr<ProgressFile> progress;
    if (s.ok()) progress.reset(new ProgressFile(store->dir(), "restore", loc.file_mode));
    if (s.ok()) {
      std::unique_ptr<SnapshotBuilder> builder;
      s = CaptureUnderWriteLock(db, schema, store.get(), &builder);
      if (s.ok()) s = builder->Commit(kPreRestoreLabel, pre_restore_id);
      recorded = recorded || s.ok();
      if (s.ok() && journal_path && builder->page_size() == image->info().page_size) {
        s = RestoreThroughJournal(db, schema, store.get(), image, *pre_restore_id, progress.get());
        copied = s.code() != Status::Code::kNotSupported;
        if (!copied) s = Status::OK();
      }
      while (s.ok() && !copied && (rc = sqlite3_backup_step(backup, 1024)) == SQLITE_OK) {
        const int total = sqlite3_backup_pagecount(backup);
        progress->Update(uint64_t(total - sqlite3_backup_remaining(backup)), uint64_t(total));
      }
    }
  }
  if (s.ok() && !copied && rc != SQLITE_DONE) {
    if (!source.ReadError().ok()) {
      s = Status::Corruption(source.ReadError().message() + "; the database was not changed");
    } else if (rc == SQLITE_READONLY) {
      s = PageSizeMismatch();
    } else {
      s = SqliteStatus(db, rc, "the restore failed and was rolled back");
    }
  }
  // After RestoreThroughJournal this ends the backup's (empty) transaction
  // and releases the lock; otherwise it commits or rolls back the copy.
  if (backup != nullptr) sqlite3_backup_finish(backup);
  if (!s.ok() && recorded) {
    if (!store) OpenStore(db, schema, settings, StoreAccess::kWrite, &store);
    if (store) store->Discard(*pre_restore_id);
  }
  return s;
}

// snapshot_restore([id [, schema]]) -> id restored
void RestoreFunc(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  sqlite3* db = sqlite3_context_db_handle(ctx);
  const char* schema = SchemaArg(argc, argv, 1);
  uint64_t requested, id = 0, pre_id = 0;
  Status s = IdArg(argc, argv, 0, &requested);
  if (s.ok() && !sqlite3_get_autocommit(db)) {
    s = Status::InvalidArgument("cannot restore inside a transaction; COMMIT or ROLLBACK first");
  }
  if (s.ok() && sqlite3_db_readonly(db, schema) == 1) {
    s = Status::InvalidArgument("this connection opened the database read-only; a restore must write it");
  }
  int64_t query_only = 0;
  if (s.ok() && QueryInt(db, "PRAGMA query_only", &query_only).ok() && query_only != 0) {
    s = Status::InvalidArgument("this connection is read-only (PRAGMA query_only); a restore must write the database");
  }
  if (s.ok() && sqlite3_txn_state(db, schema) > SQLITE_TXN_NONE) {
    // The calling statement (or another one still running on this
    // connection) reads the database, and a restore must replace it.
    s = Status::InvalidArgument(
        "call snapshot_restore() in a statement of its own (SELECT snapshot_restore(...);), with no other statement "
        "of this connection still reading the database");
  }
  // First, under the store's shared lock alone: find the snapshot, check
  // every byte it needs (a damaged snapshot changes nothing), and open its
  // files. Then the lock is dropped, since RestoreInto must wait for the
  // database's write lock holding no store lock; the open files stay valid.
  std::unique_ptr<Store> reader;
  std::unique_ptr<SnapshotImage> image;
  if (s.ok()) s = OpenStore(db, schema, *Settings(ctx), StoreAccess::kRead, &reader);
  if (s.ok()) s = ResolveId(reader.get(), requested, &id);
  if (s.ok()) s = reader->Verify(id);
  if (s.ok()) s = reader->OpenImage(id, &image);
  if (s.ok()) reader->ReleaseLock();
  if (s.ok()) s = RestoreInto(db, schema, *Settings(ctx), image.get(), &pre_id);
  if (!s.ok()) return ResultStatus(ctx, "snapshot_restore", s);
  sqlite3_result_int64(ctx, sqlite3_int64(id));
}

// Whether directory `dir` is `root` or below it (both resolved; false when
// either does not exist, since then nothing can be inside it).
bool IsInside(const std::string& dir, const std::string& root) {
  char a[PATH_MAX], b[PATH_MAX];
  if (realpath(dir.c_str(), a) == nullptr || realpath(root.c_str(), b) == nullptr) return false;
  const std::string d(a), r(b);
  return d == r || (d.size() > r.size() && d.compare(0, r.size(), r) == 0 && d[r.size()] == '/');
}

// snapshot_restore_to(path [, id [, schema]]) -> id restored into a new file
void RestoreToFunc(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  sqlite3* db = sqlite3_context_db_handle(ctx);
  const char* path = TextArg(argc, argv, 0);
  const char* schema = SchemaArg(argc, argv, 2);
  uint64_t requested, id = 0;
  Status s = IdArg(argc, argv, 1, &requested);
  Env* env = Env::Default();
  StoreLocation loc;
  if (s.ok() && (path == nullptr || path[0] == '\0')) s = Status::InvalidArgument("the target path is empty");
  if (s.ok()) s = LocateStore(db, schema, *Settings(ctx), &loc);
  if (s.ok() && env->FileExists(path)) {
    s = Status::InvalidArgument(std::string(path) + " already exists; snapshot_restore_to() only creates new files");
  }
  if (s.ok() && IsInside(DirName(path), loc.store_dir)) {
    s = Status::InvalidArgument(std::string(path) + " is inside the snapshot store; choose a path outside " +
                                loc.store_dir);
  }
  std::unique_ptr<Store> store;
  if (s.ok()) s = OpenStore(db, schema, *Settings(ctx), StoreAccess::kRead, &store);
  if (s.ok()) s = ResolveId(store.get(), requested, &id);
  std::unique_ptr<SnapshotImage> image;
  if (s.ok()) s = store->OpenImage(id, &image);
  if (s.ok()) {
    // A name nobody else uses, so that nothing of the user's is truncated.
    uint64_t nonce;
    sqlite3_randomness(sizeof nonce, &nonce);
    const std::string tmp = std::string(path) + ".snapshot-" + std::to_string(nonce) + kTempSuffix;
    std::unique_ptr<WritableFile> out;
    s = env->NewWritableFile(tmp, loc.file_mode, &out);
    std::string page(image->info().page_size, '\0');
    InterruptCheck interrupt(db);
    ProgressFile progress(loc.store_dir, "restore_to", loc.file_mode);
    for (uint32_t pgno = 1; s.ok() && pgno <= image->info().page_count; pgno++) {
      progress.Update(pgno, image->info().page_count);
      s = interrupt.Poll();
      if (s.ok()) s = image->ReadPage(pgno, reinterpret_cast<uint8_t*>(&page[0]));
      if (s.ok()) s = out->Append(page.data(), page.size());
    }
    if (s.ok()) s = out->Sync();
    if (s.ok()) s = out->Close();
    if (s.ok()) s = env->RenameNoReplace(tmp, path);
    if (s.ok()) s = env->SyncDir(DirName(path));
    if (!s.ok()) {
      out.reset();
      env->RemoveFile(tmp);
    }
  }
  if (!s.ok()) return ResultStatus(ctx, "snapshot_restore_to", s);
  sqlite3_result_int64(ctx, sqlite3_int64(id));
}

// snapshot_import(path [, label [, schema]]) -> id of the new snapshot
//
// Takes a full-copy backup file (what `cp db.sqlite3 backups/...` scripts
// made) into the store as a snapshot, deduplicated against everything the
// store holds, labelled by default with the file's modification time. A copy
// that SQLite's quick_check finds damaged (a torn copy of a live database)
// is refused, not stored.
void ImportFunc(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  sqlite3* db = sqlite3_context_db_handle(ctx);
  const char* path = TextArg(argc, argv, 0);
  const char* schema = SchemaArg(argc, argv, 2);
  std::string label = TextArg(argc, argv, 1) ? TextArg(argc, argv, 1) : "";
  StoreLocation loc;
  Status s = LocateStore(db, schema, *Settings(ctx), &loc);
  struct stat st;
  if (s.ok() && (path == nullptr || ::stat(path, &st) != 0 || !S_ISREG(st.st_mode))) {
    s = Status::InvalidArgument(std::string(path ? path : "(null)") + " is not a readable file");
  }
  struct stat live;
  if (s.ok() && ::stat(loc.db_path.c_str(), &live) == 0 && live.st_dev == st.st_dev && live.st_ino == st.st_ino) {
    s = Status::InvalidArgument(std::string(path) + " is the live database; use snapshot_backup()");
  }
  if (s.ok() && label.empty()) label = FormatTimestamp(int64_t(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000);
  if (s.ok()) s = ValidateLabel(label);
  sqlite3* source = nullptr;
  if (s.ok()) {
    // Read-only: a backup file is only read, and checked first.
    int rc = sqlite3_open_v2(path, &source, SQLITE_OPEN_READONLY, nullptr);
    std::string check;
    if (rc == SQLITE_OK) {
      SetPollingBusyTimeout(source, Settings(ctx)->busy_timeout_ms);
      Status q = QueryText(source, "PRAGMA quick_check", &check);
      if (!q.ok()) {
        s = Status::InvalidArgument(std::string(path) + " cannot be read as a SQLite database (" + q.message() + ")");
      } else if (check != "ok") {
        s = Status::Corruption(std::string(path) + " is damaged (quick_check: " + check + "); it was not imported");
      }
    } else {
      s = SqliteStatus(source, rc, std::string("cannot open ") + path);
    }
  }
  uint64_t id = 0;
  if (s.ok()) s = TakeSnapshot(db, schema, *Settings(ctx), StoreAccess::kCreate, "import", label, &id, source);
  sqlite3_close(source);
  if (!s.ok()) return ResultStatus(ctx, "snapshot_import", s);
  sqlite3_result_int64(ctx, sqlite3_int64(id));
}

// snapshot_verify([id [, schema]]) -> 'ok', or an error naming the damage
void VerifyFunc(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  sqlite3* db = sqlite3_context_db_handle(ctx);
  uint64_t id;
  Status s = IdArg(argc, argv, 0, &id);
  std::unique_ptr<Store> store;
  if (s.ok()) s = OpenStore(db, SchemaArg(argc, argv, 1), *Settings(ctx), StoreAccess::kRead, &store);
  if (s.ok()) s = store->Verify(id);
  if (!s.ok()) return ResultStatus(ctx, "snapshot_verify", s);
  sqlite3_result_text(ctx, "ok", -1, SQLITE_STATIC);
}

// snapshot_prune(keep_last [, keep_days [, schema]]) -> snapshots deleted
void PruneFunc(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  sqlite3* db = sqlite3_context_db_handle(ctx);
  int64_t keep_last = -1, keep_ms = -1;
  Status s;
  if (sqlite3_value_type(argv[0]) != SQLITE_NULL) {
    if (sqlite3_value_numeric_type(argv[0]) != SQLITE_INTEGER || sqlite3_value_int64(argv[0]) < 1) {
      s = Status::InvalidArgument("keep_last must be a positive integer or NULL");
    }
    keep_last = sqlite3_value_int64(argv[0]);
  }
  if (s.ok() && argc > 1 && sqlite3_value_type(argv[1]) != SQLITE_NULL) {
    const int t = sqlite3_value_numeric_type(argv[1]);
    const double days = sqlite3_value_double(argv[1]);
    if ((t != SQLITE_INTEGER && t != SQLITE_FLOAT) || !(days >= 0) || days > 1e6) {
      s = Status::InvalidArgument("keep_days must be a number of days >= 0, or NULL");
    }
    keep_ms = int64_t(std::llround(days * 86400000.0));
  }
  std::unique_ptr<Store> store;
  if (s.ok()) s = OpenStore(db, SchemaArg(argc, argv, 2), *Settings(ctx), StoreAccess::kWrite, &store);
  PruneResult result;
  if (s.ok()) s = store->Prune(keep_last, keep_ms, &result);
  if (!s.ok()) return ResultStatus(ctx, "snapshot_prune", s);
  sqlite3_result_int64(ctx, sqlite3_int64(result.deleted.size()));
}

// snapshot_config(name [, value]) -> the setting's value (after setting it)
void ConfigFunc(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  ConnectionSettings* st = Settings(ctx);
  const std::string name = TextArg(argc, argv, 0) ? TextArg(argc, argv, 0) : "";
  const bool set = argc > 1;
  auto int_setting = [&](int* field, int lo, int hi) {
    if (set) {
      const int64_t v = sqlite3_value_int64(argv[1]);
      if (sqlite3_value_numeric_type(argv[1]) != SQLITE_INTEGER || v < lo || v > hi) {
        const std::string m = "snapshot_config: " + name + " must be an integer from " + std::to_string(lo) + " to " +
                              std::to_string(hi);
        return sqlite3_result_error(ctx, m.c_str(), -1);
      }
      *field = int(v);
    }
    sqlite3_result_int(ctx, *field);
  };
  if (name == "dir") {
    if (set) {
      const char* v = TextArg(argc, argv, 1);
      st->dir = v ? v : "";
      NoteConfiguredDir(sqlite3_context_db_handle(ctx), st);  // for snapshots attached later
    }
    if (st->dir.empty()) return sqlite3_result_null(ctx);
    return sqlite3_result_text(ctx, st->dir.c_str(), -1, SQLITE_TRANSIENT);
  }
  if (name == "level") return int_setting(&st->level, 1, ZSTD_maxCLevel());
  if (name == "threads") return int_setting(&st->threads, 0, 16);
  if (name == "busy_timeout") return int_setting(&st->busy_timeout_ms, 0, 3600 * 1000);
  if (name == "default_vfs") {
    // Process-wide: connections opened from now on use the snapshot VFS.
    if (set) {
      if (sqlite3_value_numeric_type(argv[1]) != SQLITE_INTEGER || sqlite3_value_int64(argv[1]) != 1) {
        return sqlite3_result_error(ctx, "snapshot_config: default_vfs can only be set to 1", -1);
      }
      const int rc = MakeSnapshotVfsDefault();
      if (rc != SQLITE_OK) return sqlite3_result_error_code(ctx, rc);
    }
    sqlite3_vfs* def = sqlite3_vfs_find(nullptr);
    return sqlite3_result_int(ctx, def != nullptr && std::strcmp(def->zName, kSnapshotVfsName) == 0);
  }
  sqlite3_result_error(ctx, "snapshot_config: unknown setting (known: dir, level, threads, busy_timeout, default_vfs)",
                       -1);
}

// snapshot_dir([schema]) -> the store directory the functions would use
void DirFunc(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  StoreLocation loc;
  Status s = LocateStore(sqlite3_context_db_handle(ctx), SchemaArg(argc, argv, 0), *Settings(ctx), &loc);
  if (!s.ok()) return ResultStatus(ctx, "snapshot_dir", s);
  sqlite3_result_text(ctx, loc.store_dir.c_str(), -1, SQLITE_TRANSIENT);
}

// snapshot_progress([schema]) -> what a backup, import or restore of this
// database is doing now, in any process; NULL when nothing runs.
void ProgressFunc(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  StoreLocation loc;
  Status s = LocateStore(sqlite3_context_db_handle(ctx), SchemaArg(argc, argv, 0), *Settings(ctx), &loc);
  if (!s.ok()) return ResultStatus(ctx, "snapshot_progress", s);
  std::string line;
  if (!ReadProgress(loc.store_dir, &line).ok()) return sqlite3_result_null(ctx);
  sqlite3_result_text(ctx, line.c_str(), -1, SQLITE_TRANSIENT);
}

// snapshot_tracking([schema]) -> whether the next backup reads only the pages
// the snapshot VFS saw change ("tracked: ...") or every page ("untracked: why").
void TrackingFunc(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  std::string text;
  Status s = DescribeTracking(sqlite3_context_db_handle(ctx), SchemaArg(argc, argv, 0), *Settings(ctx), &text);
  if (!s.ok()) return ResultStatus(ctx, "snapshot_tracking", s);
  sqlite3_result_text(ctx, text.c_str(), -1, SQLITE_TRANSIENT);
}

void VersionFunc(sqlite3_context* ctx, int, sqlite3_value**) {
  sqlite3_result_text(ctx, kVersion, -1, SQLITE_STATIC);
}

}  // namespace

int RegisterSnapshotFunctions(sqlite3* db) {
  struct Def {
    const char* name;
    int min_args, max_args;
    void (*fn)(sqlite3_context*, int, sqlite3_value**);
    bool side_effects;
  };
  static const Def kDefs[] = {
      {"snapshot_backup", 0, 2, BackupFunc, true},
      {"snapshot_restore", 0, 2, RestoreFunc, true},
      {"snapshot_restore_to", 1, 3, RestoreToFunc, true},
      {"snapshot_import", 1, 3, ImportFunc, true},
      {"snapshot_verify", 0, 2, VerifyFunc, true},
      {"snapshot_prune", 1, 3, PruneFunc, true},
      {"snapshot_config", 1, 2, ConfigFunc, true},
      {"snapshot_dir", 0, 1, DirFunc, true},
      {"snapshot_progress", 0, 1, ProgressFunc, true},
      {"snapshot_tracking", 0, 1, TrackingFunc, true},
      {"snapshot_version", 0, 0, VersionFunc, false},
  };
  auto* settings = new ConnectionSettings;
  for (const Def& d : kDefs) {
    // Everything that touches files or settings may only be called from
    // top-level SQL, never from a trigger, view or schema object.
    const int flags = SQLITE_UTF8 | (d.side_effects ? SQLITE_DIRECTONLY : SQLITE_INNOCUOUS | SQLITE_DETERMINISTIC);
    for (int n = d.min_args; n <= d.max_args; n++) {
      settings->refs++;
      int rc = sqlite3_create_function_v2(db, d.name, n, flags, settings, d.fn, nullptr, nullptr, ReleaseSettings);
      if (rc != SQLITE_OK) return rc;
    }
  }
  int rc = RegisterListModule(db, settings);
  if (rc == SQLITE_OK) rc = RegisterDiffModule(db, settings);
  if (rc == SQLITE_OK) rc = RegisterIntegrityCheck(db, settings);
  return rc;
}

}  // namespace snapshot
