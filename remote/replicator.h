// Replicator: keeps a copy of a snapshot store in an ObjectStore (S3), and
// brings back from it what one snapshot needs. No SQLite here; the SQL
// functions over it are ext/remote_functions.h.
//
//   S3Options o;
//   S3Options::FromEnvironment("s3://backups/app", &o);
//   S3Client s3(o, Env::Default());
//   Replicator r(Env::Default(), "app.db-snapshots", &s3, "s3://backups/app");
//   PushResult pushed;
//   Status s = r.Push(&pushed);            // durable remotely when OK
//
//   // On another machine, into a directory that does not exist yet:
//   uint64_t id;
//   s = FetchSnapshot(Env::Default(), &s3, "s3://backups/app", "/tmp/cache",
//                     SnapshotSpec::Latest(), &id, nullptr);
//   // /tmp/cache is now a store holding snapshot `id`: restore it the
//   // usual way (every page is checked against its hash as it is read),
//   // then RemoveFetchedStore(Env::Default(), "/tmp/cache").
//
// The remote holds the store's files under the same names (STORE,
// packs/N.pack, snapshots/N.bundle, snapshots/N.snap), so it is a store
// itself, laid out as docs/FORMAT.md says, and a fetched subset of it is
// one too.
//
// Push uploads what the remote lacks, in the order the store publishes:
// STORE, then packs and bundles (immutable: an id is never reused, so a
// name and a size say the remote has it), then loose manifests (a
// compaction may rewrite one in place, so they are compared by MD5). So a
// manifest the remote lists never names an object the remote lacks, even
// when a push stops half way: what a failed push leaves is whole objects
// that nothing names yet, which the next push completes. Every upload is
// checked end to end by the ObjectStore (remote/object_store.h). Push
// holds the store's shared lock throughout, so the files it sends form one
// consistent state (a backup or prune waits for it, up to its busy timeout).
// A remote that already holds another store (another STORE) is refused.
//
// Then Push deletes remotely what the store no longer has (a prune or a
// compaction removed it locally, so no remaining snapshot needs it):
// manifests, then bundles, then packs, so again a remote manifest never
// names a missing object. It deletes nothing when the store looks damaged
// (a loose manifest it cannot read, a pack a snapshot names missing), and
// refuses to push at all when the remote holds ids newer than the store's
// (the store was put back from an older copy), and sends no manifest that
// does not read back whole.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "remote/object_store.h"
#include "store/env.h"
#include "store/snapshot_spec.h"
#include "store/status.h"

namespace snapshot {

class Store;

struct PushResult {
  uint64_t files_uploaded = 0;
  uint64_t bytes_uploaded = 0;
  uint64_t files_in_store = 0;  // the local store's files, all held remotely when OK
  uint64_t files_deleted = 0;   // remote files the store no longer has
};

class Replicator {
 public:
  // `remote_name` (s3://bucket/prefix) only names the remote in errors.
  // `env` and `remote` must outlive the replicator.
  Replicator(Env* env, std::string store_dir, ObjectStore* remote, std::string remote_name,
             int lock_timeout_ms = 30000)
      : env_(env),
        store_dir_(std::move(store_dir)),
        remote_(remote),
        remote_name_(std::move(remote_name)),
        lock_timeout_ms_(lock_timeout_ms) {}

  // Uploads every file of the store the remote lacks, then deletes the
  // remote files the store no longer has; OK when the remote holds exactly
  // the store's files, durably.
  Status Push(PushResult* result);

 private:
  struct LocalFile {
    std::string key;  // also its path relative to the store
    uint64_t size = 0;
    bool mutable_ = false;  // compared by content, not by name and size
  };
  Status ListLocal(std::vector<LocalFile>* files);
  Status CheckSameStore(const std::string& local_store_path, bool* upload_store);
  bool RemoteHas(const LocalFile& f);
  Status PruneRemote(Store* store, const std::vector<LocalFile>& files, PushResult* result);

  Env* env_;
  std::string store_dir_;
  ObjectStore* remote_;
  std::string remote_name_;
  int lock_timeout_ms_;
  // The remote's objects as last listed (refreshed by each Push), updated
  // with every upload.
  std::map<std::string, ObjectInfo> listing_;
};

struct FetchResult {
  uint64_t files = 0;
  uint64_t bytes = 0;
};

// Creates `cache_dir` (which must not exist) and fills it with a store
// holding snapshot `spec` of the remote: STORE, every manifest and bundle
// (to find the snapshot), and only the packs that snapshot names. *id is
// the snapshot's id. On failure the directory is removed again.
Status FetchSnapshot(Env* env, ObjectStore* remote, const std::string& remote_name, const std::string& cache_dir,
                     const SnapshotSpec& spec, uint64_t* id, FetchResult* result);

// The same for every object of the remote store (to verify the whole copy).
Status FetchStore(Env* env, ObjectStore* remote, const std::string& remote_name, const std::string& cache_dir,
                  FetchResult* result);

// Removes a directory FetchSnapshot or FetchStore made, and everything in it.
void RemoveFetchedStore(Env* env, const std::string& cache_dir);

}  // namespace snapshot
