#include "ext/remote_functions.h"

#include <cstdlib>
#include <memory>
#include <set>
#include <vector>

#include "ext/restore.h"
#include "ext/sql_fence.h"
#include "ext/sql_util.h"
#include "remote/remote_setting.h"
#include "remote/replicator.h"
#include "remote/remote_status.h"
#include "remote/uploader.h"
#include "store/store.h"

namespace snapshot {
namespace {

ConnectionSettings* Settings(sqlite3_context* ctx) {
  return static_cast<ConnectionSettings*>(sqlite3_user_data(ctx));
}

// snapshot_remote([url or NULL [, schema]]) -> the remote in effect (NULL:
// none), after setting it when an argument is given.
void RemoteFunc(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  sqlite3* db = sqlite3_context_db_handle(ctx);
  const char* schema = SchemaArg(argc, argv, 1);
  Status s;
  StoreLocation loc;
  if (argc > 0) {
    const char* url = TextArg(argc, argv, 0);
    if (url != nullptr) s = CheckRemoteUrl(url);
    // Under the store's exclusive lock, as every change to the store is.
    std::unique_ptr<Store> store;
    if (s.ok()) s = OpenStore(db, schema, *Settings(ctx), StoreAccess::kCreate, &store, &loc);
    if (s.ok()) s = WriteRemoteSetting(Env::Default(), loc.store_dir, url ? url : "", loc.file_mode);
  } else {
    s = LocateStore(db, schema, *Settings(ctx), &loc);
  }
  std::string url;
  if (s.ok()) s = EffectiveRemote(Env::Default(), loc.store_dir, &url);
  if (!s.ok()) return ResultStatus(ctx, "snapshot_remote", s);
  if (url.empty()) return sqlite3_result_null(ctx);
  sqlite3_result_text(ctx, url.c_str(), -1, SQLITE_TRANSIENT);
}

// snapshot_push([schema]) -> the number of files uploaded (0: the remote
// already held them all), once they are durable remotely. Waits for a
// background push of the store, if one runs, then pushes what is left;
// sqlite3_interrupt() stops it (Interrupted: what went up is whole).
void PushFunc(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  sqlite3* db = sqlite3_context_db_handle(ctx);
  StoreLocation loc;
  Status s = LocateStore(db, SchemaArg(argc, argv, 0), *Settings(ctx), &loc);
  std::string url;
  if (s.ok()) s = EffectiveRemote(Env::Default(), loc.store_dir, &url);
  if (s.ok() && url.empty()) {
    s = Status::InvalidArgument("no remote location: SELECT snapshot_remote('s3://bucket/prefix') first, or set " +
                                std::string(kRemoteEnvironmentVariable));
  }
  std::unique_ptr<ObjectStore> remote;
  if (s.ok()) s = OpenRemoteStore(url, /*for_push=*/true, &remote);
  PushResult pushed;
  if (s.ok()) {
    InterruptCheck interrupt(db);
    remote->SetCancel([&interrupt] { return !interrupt.Poll(16).ok(); });
    s = Replicator(Env::Default(), loc.store_dir, remote.get(), url, Settings(ctx)->busy_timeout_ms).Push(&pushed);
  }
  if (!s.ok()) return ResultStatus(ctx, "snapshot_push", s);
  sqlite3_result_int64(ctx, sqlite3_int64(pushed.files_uploaded));
}

}  // namespace

bool IsRemoteLocation(const char* text) { return text != nullptr && std::string(text).compare(0, 5, "s3://") == 0; }

Status RestoreFromRemote(sqlite3* db, const ConnectionSettings& settings, const char* path, const SnapshotSpec& spec,
                         const std::string& url, uint64_t* restored_id) {
  Env* env = Env::Default();
  if (env->FileExists(path)) {
    return Status::InvalidArgument(std::string(path) + " already exists; snapshot_restore_to() only creates new files");
  }
  std::unique_ptr<ObjectStore> remote;
  SNAPSHOT_RETURN_IF_ERROR(OpenRemoteStore(url, /*for_push=*/false, &remote));
  InterruptCheck interrupt(db);  // stops the download; the fetched directory is removed
  remote->SetCancel([&interrupt] { return !interrupt.Poll(16).ok(); });
  // Beside the new file: the same file system, a directory the caller may
  // write, and a name of this call's own.
  uint64_t nonce;
  sqlite3_randomness(sizeof nonce, &nonce);
  StoreLocation cache;
  cache.store_dir = std::string(path) + ".snapshot-remote-" + std::to_string(nonce);
  cache.file_mode = 0644;  // what sqlite3 gives a new database file, less the umask
  uint64_t id = 0;
  Status s = FetchSnapshot(env, remote.get(), url, cache.store_dir, spec, &id, nullptr);
  if (!s.ok()) return s;
  s = RestoreToFileAt(db, cache, settings, path, id, restored_id);
  RemoveFetchedStore(env, cache.store_dir);
  return s;
}

Status VerifyRemote(const ConnectionSettings& settings, const SnapshotSpec* spec, const std::string& url) {
  Env* env = Env::Default();
  std::unique_ptr<ObjectStore> remote;
  SNAPSHOT_RETURN_IF_ERROR(OpenRemoteStore(url, /*for_push=*/false, &remote));
  uint64_t nonce;
  sqlite3_randomness(sizeof nonce, &nonce);
  const char* tmp = std::getenv("TMPDIR");
  const std::string cache = JoinPath(tmp && tmp[0] ? tmp : "/tmp", "snapshot-verify-" + std::to_string(nonce));
  uint64_t id = 0;
  Status s = spec ? FetchSnapshot(env, remote.get(), url, cache, *spec, &id, nullptr)
                  : FetchStore(env, remote.get(), url, cache, nullptr);
  if (!s.ok()) return s;
  StoreOptions o;
  o.dir = cache;
  o.lock_timeout_ms = settings.busy_timeout_ms;
  std::unique_ptr<Store> store;
  s = Store::Open(o, &store);
  if (s.ok()) s = store->Verify(id);
  store.reset();
  RemoveFetchedStore(env, cache);
  if (s.IsCorruption()) return Status::Corruption(url + ": " + s.message());
  return s;
}

Status DescribeRemote(sqlite3* db, const char* schema, const ConnectionSettings& settings, RemoteLag* lag) {
  *lag = RemoteLag();
  StoreLocation loc;
  SNAPSHOT_RETURN_IF_ERROR(LocateStore(db, schema, settings, &loc));
  Env* env = Env::Default();
  SNAPSHOT_RETURN_IF_ERROR(EffectiveRemote(env, loc.store_dir, &lag->url));
  if (lag->url.empty()) return Status::OK();
  lag->uploading = BackgroundPushPending(loc.store_dir);
  RemoteRecord record;
  Status s = ReadRemoteRecord(env, loc.store_dir, &record);
  if (!s.ok() && !s.IsNotFound()) return s;
  if (record.url != lag->url) record = RemoteRecord();  // about another remote: nothing is known of this one
  lag->pushed_ms = record.pushed_ms;
  lag->error = record.error;
  lag->error_ms = record.error_ms;
  std::set<uint64_t> remote_ids;
  for (const SnapshotInfo& info : record.snapshots) {
    remote_ids.insert(info.id);
    lag->newest_remote_id = info.id;
    lag->newest_remote_created_ms = info.created_ms;
  }
  std::unique_ptr<Store> store;
  s = OpenStore(db, schema, settings, StoreAccess::kRead, &store);
  if (s.IsNotFound()) return Status::OK();  // no snapshot yet: nothing behind
  SNAPSHOT_RETURN_IF_ERROR(s);
  std::vector<SnapshotInfo> local;
  SNAPSHOT_RETURN_IF_ERROR(store->List(&local));
  for (const SnapshotInfo& info : local) {
    if (remote_ids.count(info.id) != 0) continue;
    if (lag->not_remote++ == 0) lag->oldest_not_remote_created_ms = info.created_ms;
  }
  return Status::OK();
}

Status SnapshotLocations(const std::string& store_dir, std::vector<SnapshotInfo>* remote_snapshots, bool* known) {
  remote_snapshots->clear();
  *known = false;
  Env* env = Env::Default();
  std::string url;
  SNAPSHOT_RETURN_IF_ERROR(EffectiveRemote(env, store_dir, &url));
  if (url.empty()) return Status::OK();
  RemoteRecord record;
  Status s = ReadRemoteRecord(env, store_dir, &record);
  if (s.IsNotFound() || (s.ok() && record.url != url)) return Status::OK();
  SNAPSHOT_RETURN_IF_ERROR(s);
  *remote_snapshots = std::move(record.snapshots);
  *known = true;
  return Status::OK();
}

int RegisterRemoteFunctions(sqlite3* db, ConnectionSettings* settings) {
  struct Def {
    const char* name;
    int min_args, max_args;
    FencedFunction fn;
  };
  static const Def kDefs[] = {
      {"snapshot_remote", 0, 2, Fenced<RemoteFunc>()},
      {"snapshot_push", 0, 1, Fenced<PushFunc>()},
  };
  for (const Def& d : kDefs) {
    for (int n = d.min_args; n <= d.max_args; n++) {
      settings->refs++;
      // Files, settings and the network: top-level SQL only, never from a
      // trigger, view or schema object.
      int rc = CreateFencedFunction(db, d.name, n, SQLITE_UTF8 | SQLITE_DIRECTONLY, settings, d.fn, ReleaseSettings);
      if (rc != SQLITE_OK) return rc;
    }
  }
  return SQLITE_OK;
}

}  // namespace snapshot
