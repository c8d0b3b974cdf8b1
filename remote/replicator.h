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
// checked end to end by the ObjectStore (remote/object_store.h). A remote
// that already holds another store (another STORE) is refused.
//
// Locks: a push takes the push lock (remote/push_lock.h: one push of a
// store at a time, in any process), then the store's shared lock only
// while it lists the files and reads the manifests, and uploads without
// it, so a backup, prune or automatic snapshot never waits for the
// network. Meanwhile a prune or compaction may remove a listed file: it is
// dropped from the push; or rewrite a loose manifest to name a pack newer
// than the listing: that manifest is read once, checked, and sent only if
// every pack it names is already remote, else it waits. A round where
// either happened is followed by another from a new listing (at most
// kMaxRounds), and only a round that sent everything it listed deletes
// anything remotely.
//
// Then Push deletes remotely what the store no longer has (a prune or a
// compaction removed it locally, so no remaining snapshot needs it):
// manifests, then bundles, then packs, so again a remote manifest never
// names a missing object. It deletes nothing when the store looks damaged
// (a loose manifest it cannot read, a pack a snapshot names missing), and
// refuses to push at all when the remote holds ids newer than the store's
// (the store was put back from an older copy), and sends no manifest that
// does not read back whole.
//
// Every push, failed or not, updates the store's record of its remote copy
// (remote/remote_status.h: the snapshots the remote holds, the last error),
// which snapshot_list and snapshot_status() read without the network.
//
// Stopping: remote->SetCancel(...) stops a push (also while it waits for
// another push) or a fetch with Interrupted, leaving only whole objects
// remotely and no fetched directory locally.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "remote/object_store.h"
#include "store/env.h"
#include "store/manifest.h"
#include "store/snapshot_spec.h"
#include "store/status.h"

namespace snapshot {

class Store;

struct PushResult {
  uint64_t files_uploaded = 0;
  uint64_t bytes_uploaded = 0;
  uint64_t files_in_store = 0;  // the local store's files, all held remotely when OK
  uint64_t files_deleted = 0;   // remote files the store no longer has
  uint64_t files_gone = 0;      // listed, then removed locally before they went up
  int rounds = 0;               // listings: more than 1 when the store changed meanwhile
};

class Replicator {
 public:
  // `remote_name` (s3://bucket/prefix) names the remote in errors and in
  // the store's record of what the remote holds.
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
  // Rounds of one push before it gives up on a store that keeps changing.
  static constexpr int kMaxRounds = 4;

  struct LocalFile {
    std::string key;  // also its path relative to the store
    uint64_t size = 0;
    bool mutable_ = false;  // compared by content, not by name and size
  };
  // What a round read under the store's lock.
  struct Listing {
    std::string store_file;  // STORE's bytes
    std::vector<LocalFile> files;
    std::vector<SnapshotInfo> snapshots;
    std::set<uint64_t> named;  // packs the snapshots name
    Status prune_guard;        // not OK: the store looks damaged, delete nothing remotely
  };
  Status ListLocal(std::vector<LocalFile>* files);
  Status ListUnderLock(Listing* listing);
  Status PushRound(const Listing& listing, PushResult* result, bool* uploaded_all, bool* complete);
  Status CheckSameStore(const std::string& local_store_file, bool* upload_store);
  bool RemoteHas(const LocalFile& f);
  Status PruneRemote(const Listing& listing, PushResult* result);

  Env* env_;
  std::string store_dir_;
  ObjectStore* remote_;
  std::string remote_name_;
  int lock_timeout_ms_;
  // The remote's objects as last listed (refreshed by each round), updated
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
