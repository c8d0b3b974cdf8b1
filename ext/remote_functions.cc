#include "ext/remote_functions.h"

#include <cstdlib>
#include <memory>

#include "ext/restore.h"
#include "ext/sql_fence.h"
#include "ext/sql_util.h"
#include "remote/remote_setting.h"
#include "remote/replicator.h"
#include "remote/s3_client.h"

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

Status OpenRemote(const std::string& url, std::unique_ptr<S3Client>* out) {
  S3Options options;
  SNAPSHOT_RETURN_IF_ERROR(S3Options::FromEnvironment(url, &options));
  out->reset(new S3Client(options, Env::Default()));
  return Status::OK();
}

// snapshot_push([schema]) -> the number of files uploaded (0: the remote
// already held them all), once they are durable remotely.
void PushFunc(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  StoreLocation loc;
  Status s = LocateStore(sqlite3_context_db_handle(ctx), SchemaArg(argc, argv, 0), *Settings(ctx), &loc);
  std::string url;
  if (s.ok()) s = EffectiveRemote(Env::Default(), loc.store_dir, &url);
  if (s.ok() && url.empty()) {
    s = Status::InvalidArgument("no remote location: SELECT snapshot_remote('s3://bucket/prefix') first, or set " +
                                std::string(kRemoteEnvironmentVariable));
  }
  std::unique_ptr<S3Client> remote;
  if (s.ok()) s = OpenRemote(url, &remote);
  PushResult pushed;
  if (s.ok()) s = Replicator(Env::Default(), loc.store_dir, remote.get(), url, Settings(ctx)->busy_timeout_ms).Push(&pushed);
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
  std::unique_ptr<S3Client> remote;
  SNAPSHOT_RETURN_IF_ERROR(OpenRemote(url, &remote));
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
  std::unique_ptr<S3Client> remote;
  SNAPSHOT_RETURN_IF_ERROR(OpenRemote(url, &remote));
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
