#include "ext/functions.h"


#include <zstd.h>

#include <cmath>
#include <string>

#include "ext/capture.h"
#include "ext/connection.h"
#include "ext/sql_util.h"
#include "store/format.h"
#include "vfs/internal_vfs.h"

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

Status BackupTo(sqlite3* db, const char* schema, Store* store, const ConnectionSettings& settings,
                const std::string& label, uint64_t* id) {
  CaptureOptions options;
  options.busy_timeout_ms = settings.busy_timeout_ms;
  std::unique_ptr<SnapshotBuilder> builder;
  SNAPSHOT_RETURN_IF_ERROR(CaptureSnapshot(db, schema, store, options, &builder));
  return builder->Commit(label, id);
}

// snapshot_backup([label [, schema]]) -> id of the new snapshot
void BackupFunc(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  sqlite3* db = sqlite3_context_db_handle(ctx);
  const char* label = TextArg(argc, argv, 0);
  const char* schema = SchemaArg(argc, argv, 1);
  Status s = ValidateLabel(label ? label : "");
  std::unique_ptr<Store> store;
  if (s.ok()) s = OpenStore(db, schema, *Settings(ctx), /*exclusive=*/true, &store);
  uint64_t id = 0;
  if (s.ok()) s = BackupTo(db, schema, store.get(), *Settings(ctx), label ? label : "", &id);
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

// Restores snapshot `id` into `schema` through sqlite3_backup, after recording
// the current state as a 'pre-restore' snapshot. Both happen under the write
// lock the backup takes first, so no commit can slip in between.
Status RestoreInto(sqlite3* db, const char* schema, Store* store, const ConnectionSettings& settings, uint64_t id,
                   uint64_t* pre_restore_id) {
  std::unique_ptr<SnapshotImage> image;
  SNAPSHOT_RETURN_IF_ERROR(store->OpenImage(id, &image));
  if (image->info().page_count == 0) {
    // sqlite3_backup copies an empty source at its first step, before the
    // state it replaces could be recorded: record it first instead.
    SNAPSHOT_RETURN_IF_ERROR(BackupTo(db, schema, store, settings, kPreRestoreLabel, pre_restore_id));
  }
  ImageDatabase source;
  SNAPSHOT_RETURN_IF_ERROR(source.Open(image.get()));
  sqlite3_backup* backup = sqlite3_backup_init(db, schema, source.db(), "main");
  if (backup == nullptr) return SqliteStatus(db, sqlite3_errcode(db), "cannot start the restore");
  // Zero pages: takes the destination's write lock and copies nothing.
  int rc = RetryWhileBusy(settings.busy_timeout_ms, [&] { return sqlite3_backup_step(backup, 0); });
  Status s;
  if (rc == SQLITE_READONLY) {
    s = PageSizeMismatch();
  } else if (rc != SQLITE_OK && rc != SQLITE_DONE) {
    s = SqliteStatus(db, rc, "cannot lock the database for the restore");
  } else if (rc == SQLITE_OK) {
    std::unique_ptr<SnapshotBuilder> builder;
    s = CaptureUnderWriteLock(db, schema, store, &builder);
    if (s.ok()) s = builder->Commit(kPreRestoreLabel, pre_restore_id);
    if (s.ok()) rc = sqlite3_backup_step(backup, -1);
  }
  if (s.ok() && rc != SQLITE_DONE) {
    if (!source.ReadError().ok()) {
      s = Status::Corruption(source.ReadError().message() + "; the database was not changed");
    } else if (rc == SQLITE_READONLY) {
      s = PageSizeMismatch();
    } else {
      s = SqliteStatus(db, rc, "the restore failed and was rolled back");
    }
  }
  sqlite3_backup_finish(backup);
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
  if (s.ok() && sqlite3_txn_state(db, schema) > SQLITE_TXN_NONE) {
    // The calling statement (or another one still running on this
    // connection) reads the database, and a restore must replace it.
    s = Status::InvalidArgument(
        "call snapshot_restore() in a statement of its own (SELECT snapshot_restore(...);), with no other statement "
        "of this connection still reading the database");
  }
  std::unique_ptr<Store> store;
  if (s.ok()) s = OpenStore(db, schema, *Settings(ctx), /*exclusive=*/true, &store);
  if (s.IsNotFound() && requested == 0) s = Status::NotFound("no snapshot has been taken yet");
  if (s.ok()) s = ResolveId(store.get(), requested, &id);
  if (s.ok()) s = RestoreInto(db, schema, store.get(), *Settings(ctx), id, &pre_id);
  if (!s.ok()) return ResultStatus(ctx, "snapshot_restore", s);
  sqlite3_result_int64(ctx, sqlite3_int64(id));
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
  std::unique_ptr<Store> store;
  if (s.ok()) s = OpenStore(db, schema, *Settings(ctx), /*exclusive=*/false, &store);
  if (s.ok()) s = ResolveId(store.get(), requested, &id);
  std::unique_ptr<SnapshotImage> image;
  if (s.ok()) s = store->OpenImage(id, &image);
  if (s.ok()) {
    const std::string tmp = std::string(path) + kTempSuffix;
    std::unique_ptr<WritableFile> out;
    s = env->NewWritableFile(tmp, loc.file_mode, &out);
    std::string page(image->info().page_size, '\0');
    for (uint32_t pgno = 1; s.ok() && pgno <= image->info().page_count; pgno++) {
      s = image->ReadPage(pgno, reinterpret_cast<uint8_t*>(&page[0]));
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

// snapshot_verify([id [, schema]]) -> 'ok', or an error naming the damage
void VerifyFunc(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  sqlite3* db = sqlite3_context_db_handle(ctx);
  uint64_t id;
  Status s = IdArg(argc, argv, 0, &id);
  std::unique_ptr<Store> store;
  if (s.ok()) s = OpenStore(db, SchemaArg(argc, argv, 1), *Settings(ctx), /*exclusive=*/false, &store);
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
  if (s.ok()) s = OpenStore(db, SchemaArg(argc, argv, 2), *Settings(ctx), /*exclusive=*/true, &store);
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
    }
    if (st->dir.empty()) return sqlite3_result_null(ctx);
    return sqlite3_result_text(ctx, st->dir.c_str(), -1, SQLITE_TRANSIENT);
  }
  if (name == "level") return int_setting(&st->level, 1, ZSTD_maxCLevel());
  if (name == "threads") return int_setting(&st->threads, 0, 16);
  if (name == "busy_timeout") return int_setting(&st->busy_timeout_ms, 0, 3600 * 1000);
  sqlite3_result_error(ctx, "snapshot_config: unknown setting (known: dir, level, threads, busy_timeout)", -1);
}

// snapshot_dir([schema]) -> the store directory the functions would use
void DirFunc(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  StoreLocation loc;
  Status s = LocateStore(sqlite3_context_db_handle(ctx), SchemaArg(argc, argv, 0), *Settings(ctx), &loc);
  if (!s.ok()) return ResultStatus(ctx, "snapshot_dir", s);
  sqlite3_result_text(ctx, loc.store_dir.c_str(), -1, SQLITE_TRANSIENT);
}

void VersionFunc(sqlite3_context* ctx, int, sqlite3_value**) {
  sqlite3_result_text(ctx, kVersion, -1, SQLITE_STATIC);
}

void ReleaseSettings(void* p) {
  auto* st = static_cast<ConnectionSettings*>(p);
  if (--st->refs == 0) delete st;
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
      {"snapshot_verify", 0, 2, VerifyFunc, true},
      {"snapshot_prune", 1, 3, PruneFunc, true},
      {"snapshot_config", 1, 2, ConfigFunc, true},
      {"snapshot_dir", 0, 1, DirFunc, true},
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
  return RegisterListModule(db, settings);
}

}  // namespace snapshot
