#include "ext/functions.h"

#include <zstd.h>

#include <sys/stat.h>

#include <cmath>
#include <cstring>
#include <string>

#include "ext/attach.h"
#include "ext/auto_snapshot.h"
#include "ext/backup.h"
#include "ext/connection.h"
#include "ext/inspect.h"
#include "ext/progress.h"
#include "ext/remote_functions.h"
#include "ext/restore.h"
#include "ext/sql_fence.h"
#include "ext/sql_util.h"
#include "ext/tracked_capture.h"
#include "remote/uploader.h"
#include "store/retention.h"
#include "store/snapshot_spec.h"
#include "vfs/snapshot_vfs.h"

namespace snapshot {
namespace {

// CMake's project(VERSION), which it reads from the one place the version is
// written (see the top of CMakeLists.txt).
constexpr char kVersion[] = SNAPSHOT_VERSION;

ConnectionSettings* Settings(sqlite3_context* ctx) {
  return static_cast<ConnectionSettings*>(sqlite3_user_data(ctx));
}



// The id that restore and restore_to take (0: the latest). A moment is
// resolved to one here, under the store's shared lock.
Status SpecToId(sqlite3* db, const char* schema, const ConnectionSettings& settings, const SnapshotSpec& spec,
                uint64_t* id) {
  *id = spec.kind == SnapshotSpec::Kind::kId ? spec.id : 0;
  if (spec.kind != SnapshotSpec::Kind::kTime) return Status::OK();
  std::unique_ptr<Store> store;
  SNAPSHOT_RETURN_IF_ERROR(OpenStore(db, schema, settings, StoreAccess::kRead, &store));
  return ResolveSnapshot(store.get(), spec, id);
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
  // The snapshot is published: one bounded compaction round now keeps a
  // store that only scheduled backups write (no automatic snapshots'
  // thread) small. It cannot fail the backup, whose snapshot is taken; a
  // round that fails leaves the store as it was, and the next one retries.
  StoreLocation where;
  bool more = false;
  if (LocateStore(db, schema, *Settings(ctx), &where).ok()) {
    (void)CompactAfterSnapshot(where, *Settings(ctx), &more);
    // Off the machine, on a thread of its own: never delays or fails the
    // backup (remote/uploader.h; snapshot_push() waits for it).
    PushInBackgroundIfRemote(where.store_dir);
  }
  sqlite3_result_int64(ctx, sqlite3_int64(id));
}

// snapshot_restore([id or moment [, schema]]) -> id restored
void RestoreFunc(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  sqlite3* db = sqlite3_context_db_handle(ctx);
  const char* schema = SchemaArg(argc, argv, 1);
  SnapshotSpec spec;
  uint64_t requested = 0, id = 0;
  Status s = SpecArg(argc, argv, 0, &spec);
  if (s.ok()) s = SpecToId(db, schema, *Settings(ctx), spec, &requested);
  if (s.ok()) s = RestoreLive(db, schema, *Settings(ctx), requested, &id);
  if (!s.ok()) return ResultStatus(ctx, "snapshot_restore", s);
  StoreLocation where;  // the pre-restore snapshot goes up like any other
  if (LocateStore(db, schema, *Settings(ctx), &where).ok()) PushInBackgroundIfRemote(where.store_dir);
  sqlite3_result_int64(ctx, sqlite3_int64(id));
}

// snapshot_restore_to(path [, id or moment [, schema or 's3://bucket/prefix']])
// -> id restored into a new file, from the schema's store or from a remote
// copy (ext/remote_functions.h)
void RestoreToFunc(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  sqlite3* db = sqlite3_context_db_handle(ctx);
  const char* path = TextArg(argc, argv, 0);
  const char* schema = SchemaArg(argc, argv, 2);
  SnapshotSpec spec;
  uint64_t requested = 0, id = 0;
  Status s = SpecArg(argc, argv, 1, &spec);
  if (s.ok() && (path == nullptr || path[0] == '\0')) s = Status::InvalidArgument("the target path is empty");
  if (s.ok() && IsRemoteLocation(schema)) {
    s = RestoreFromRemote(db, *Settings(ctx), path, spec, schema, &id);
    if (!s.ok()) return ResultStatus(ctx, "snapshot_restore_to", s);
    return sqlite3_result_int64(ctx, sqlite3_int64(id));
  }
  if (s.ok()) s = SpecToId(db, schema, *Settings(ctx), spec, &requested);
  if (s.ok()) s = RestoreToFile(db, schema, *Settings(ctx), path, requested, &id);
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
  PushInBackgroundIfRemote(loc.store_dir);  // an imported snapshot goes up like any other
  sqlite3_result_int64(ctx, sqlite3_int64(id));
}

// snapshot_verify([id or moment [, schema or 's3://bucket/prefix']]) -> 'ok',
// or an error naming the damage (of the schema's store or of a remote copy)
void VerifyFunc(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  sqlite3* db = sqlite3_context_db_handle(ctx);
  const bool every = argc == 0 || sqlite3_value_type(argv[0]) == SQLITE_NULL;
  SnapshotSpec spec;
  Status s = SpecArg(argc, argv, 0, &spec);
  if (s.ok() && IsRemoteLocation(SchemaArg(argc, argv, 1))) {
    s = VerifyRemote(*Settings(ctx), every ? nullptr : &spec, SchemaArg(argc, argv, 1));
    if (!s.ok()) return ResultStatus(ctx, "snapshot_verify", s);
    return sqlite3_result_text(ctx, "ok", -1, SQLITE_STATIC);
  }
  std::unique_ptr<Store> store;
  if (s.ok()) s = OpenStore(db, SchemaArg(argc, argv, 1), *Settings(ctx), StoreAccess::kRead, &store);
  uint64_t id = 0;  // every snapshot
  // An id goes to Verify as it is, so that a damaged one is named as such.
  if (s.ok() && !every) {
    if (spec.kind == SnapshotSpec::Kind::kId) {
      id = spec.id;
    } else {
      s = ResolveSnapshot(store.get(), spec, &id);
    }
  }
  if (s.ok()) s = store->Verify(id);
  if (!s.ok()) return ResultStatus(ctx, "snapshot_verify", s);
  sqlite3_result_text(ctx, "ok", -1, SQLITE_STATIC);
}

// snapshot_id([id or moment [, schema]]) -> the id of the snapshot it names
void IdFunc(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  SnapshotSpec spec;
  Status s = SpecArg(argc, argv, 0, &spec);
  std::unique_ptr<Store> store;
  if (s.ok()) {
    s = OpenStore(sqlite3_context_db_handle(ctx), SchemaArg(argc, argv, 1), *Settings(ctx), StoreAccess::kRead, &store);
  }
  uint64_t id = 0;
  if (s.ok()) s = ResolveSnapshot(store.get(), spec, &id);
  if (!s.ok()) return ResultStatus(ctx, "snapshot_id", s);
  sqlite3_result_int64(ctx, sqlite3_int64(id));
}

// A prune's deletions reach the remote copy as the next push deletes there
// what the store no longer has: start that push now, in the background,
// once this store's lock is released (remote/uploader.h).
void PushPruneInBackground(std::unique_ptr<Store> store) {
  const std::string dir = store->dir();
  store.reset();
  PushInBackgroundIfRemote(dir);
}

// snapshot_prune(policy [, schema]) -> snapshots deleted: the retention
// tiers of store/retention.h, e.g. 'within 1h, hourly 48, daily 30'.
void PrunePolicy(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  const std::string text = reinterpret_cast<const char*>(sqlite3_value_text(argv[0]));
  RetentionPolicy policy;
  Status s = RetentionPolicy::Parse(text, &policy);
  if (!s.ok()) {
    s = Status::InvalidArgument("'" + text + "' is neither keep_last (a positive integer) nor a retention policy: " +
                                s.message());
  }
  if (s.ok() && argc > 2) {
    s = Status::InvalidArgument("a policy takes no keep_days: snapshot_prune(policy [, schema])");
  }
  std::unique_ptr<Store> store;
  if (s.ok()) {
    s = OpenStore(sqlite3_context_db_handle(ctx), SchemaArg(argc, argv, 1), *Settings(ctx), StoreAccess::kWrite, &store);
  }
  PruneResult result;
  if (s.ok()) s = store->Prune(policy, &result);
  if (!s.ok()) return ResultStatus(ctx, "snapshot_prune", s);
  PushPruneInBackground(std::move(store));
  sqlite3_result_int64(ctx, sqlite3_int64(result.deleted.size()));
}

// snapshot_prune(keep_last [, keep_days [, schema]]) -> snapshots deleted,
// or snapshot_prune(policy [, schema]) (PrunePolicy).
void PruneFunc(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  // Text that is not a number is a policy; '10' stays keep_last, as before.
  if (sqlite3_value_type(argv[0]) == SQLITE_TEXT && sqlite3_value_numeric_type(argv[0]) == SQLITE_TEXT) {
    return PrunePolicy(ctx, argc, argv);
  }
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
  PushPruneInBackground(std::move(store));
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

// snapshot_auto([seconds [, policy] [, schema]]) -> the interval (0: off),
// after setting it when seconds is given. The second argument is the schema
// when it names one of the connection's databases, else the policy (a policy
// is never a schema's name); NULL or '' as the policy removes it.
void AutoFunc(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  sqlite3* db = sqlite3_context_db_handle(ctx);
  const char* schema = "main";
  bool policy_given = false;
  const char* policy_text = nullptr;
  if (argc == 2) {
    const char* second = TextArg(argc, argv, 1);
    if (second != nullptr && sqlite3_db_filename(db, second) != nullptr) {
      schema = second;
    } else {
      policy_given = true;
      policy_text = second;
    }
  } else if (argc == 3) {
    policy_given = true;
    policy_text = TextArg(argc, argv, 1);
    schema = SchemaArg(argc, argv, 2);
  }
  Status s;
  if (argc > 0 && sqlite3_value_type(argv[0]) != SQLITE_NULL) {
    const int64_t seconds = sqlite3_value_int64(argv[0]);
    if (sqlite3_value_numeric_type(argv[0]) != SQLITE_INTEGER || seconds < 0 || seconds > kMaxAutoIntervalS) {
      s = Status::InvalidArgument("seconds must be an integer from 0 (off) to " + std::to_string(kMaxAutoIntervalS));
    }
    std::string policy;
    if (s.ok() && policy_text != nullptr && policy_text[0] != '\0') {
      RetentionPolicy parsed;
      s = RetentionPolicy::Parse(policy_text, &parsed);
      if (!s.ok()) s = Status::InvalidArgument("'" + std::string(policy_text) + "' is not a retention policy: " + s.message());
      policy = parsed.ToString();  // canonical, as snapshot_status() shows it
    }
    if (s.ok()) s = SetAutoSnapshots(db, schema, *Settings(ctx), seconds, policy_given ? &policy : nullptr);
  } else if (policy_text != nullptr) {
    s = Status::InvalidArgument("a policy is set with an interval: snapshot_auto(seconds, policy)");
  }
  AutoSettings now;
  if (s.ok()) s = GetAutoSnapshots(db, schema, *Settings(ctx), &now);
  if (!s.ok()) return ResultStatus(ctx, "snapshot_auto", s);
  sqlite3_result_int64(ctx, now.interval_s);
}

// snapshot_status([schema]) -> a JSON object: automatic snapshots' setting,
// last snapshot and last error (ext/auto_snapshot.h), and the tracking state.
void StatusFunc(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  std::string json;
  Status s = DescribeAutoSnapshots(sqlite3_context_db_handle(ctx), SchemaArg(argc, argv, 0), *Settings(ctx), &json);
  if (!s.ok()) return ResultStatus(ctx, "snapshot_status", s);
  sqlite3_result_text(ctx, json.c_str(), -1, SQLITE_TRANSIENT);
}

void VersionFunc(sqlite3_context* ctx, int, sqlite3_value**) {
  sqlite3_result_text(ctx, kVersion, -1, SQLITE_STATIC);
}

}  // namespace

int RegisterSnapshotFunctions(sqlite3* db) {
  struct Def {
    const char* name;
    int min_args, max_args;
    FencedFunction fn;
    bool side_effects;
  };
  static const Def kDefs[] = {
      {"snapshot_backup", 0, 2, Fenced<BackupFunc>(), true},
      {"snapshot_restore", 0, 2, Fenced<RestoreFunc>(), true},
      {"snapshot_restore_to", 1, 3, Fenced<RestoreToFunc>(), true},
      {"snapshot_import", 1, 3, Fenced<ImportFunc>(), true},
      {"snapshot_verify", 0, 2, Fenced<VerifyFunc>(), true},
      {"snapshot_id", 0, 2, Fenced<IdFunc>(), true},
      {"snapshot_prune", 1, 3, Fenced<PruneFunc>(), true},
      {"snapshot_config", 1, 2, Fenced<ConfigFunc>(), true},
      {"snapshot_dir", 0, 1, Fenced<DirFunc>(), true},
      {"snapshot_progress", 0, 1, Fenced<ProgressFunc>(), true},
      {"snapshot_tracking", 0, 1, Fenced<TrackingFunc>(), true},
      {"snapshot_auto", 0, 3, Fenced<AutoFunc>(), true},
      {"snapshot_status", 0, 1, Fenced<StatusFunc>(), true},
      {"snapshot_version", 0, 0, Fenced<VersionFunc>(), false},
  };
  auto* settings = new ConnectionSettings;
  for (const Def& d : kDefs) {
    // Everything that touches files or settings may only be called from
    // top-level SQL, never from a trigger, view or schema object.
    const int flags = SQLITE_UTF8 | (d.side_effects ? SQLITE_DIRECTONLY : SQLITE_INNOCUOUS | SQLITE_DETERMINISTIC);
    for (int n = d.min_args; n <= d.max_args; n++) {
      settings->refs++;
      int rc = CreateFencedFunction(db, d.name, n, flags, settings, d.fn, ReleaseSettings);
      if (rc != SQLITE_OK) return rc;
    }
  }
  int rc = RegisterListModule(db, settings);
  if (rc == SQLITE_OK) rc = RegisterRemoteFunctions(db, settings);
  if (rc == SQLITE_OK) rc = RegisterDiffModule(db, settings);
  if (rc == SQLITE_OK) rc = RegisterIntegrityCheck(db, settings);
  return rc;
}

}  // namespace snapshot
