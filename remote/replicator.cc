#include "remote/replicator.h"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "remote/md5.h"
#include "remote/push_lock.h"
#include "remote/remote_status.h"
#include "store/bundle.h"
#include "store/format.h"
#include "store/store.h"

namespace snapshot {
namespace {

// STORE is at most 228 + 4096 bytes (docs/FORMAT.md §3); a manifest is
// bounded by its page count, far below this.
constexpr uint64_t kMaxStoreFileBytes = 228 + 4096;
constexpr uint64_t kMaxManifestBytes = 1ull << 30;

// What makes a STORE this store's: everything but the version (rewritten
// once on a format upgrade) and the checksum over it. The 192-byte secret
// in it is random per store.
std::string StoreIdentity(const std::string& store_file) {
  if (store_file.size() < 28) return std::string();
  return store_file.substr(12, store_file.size() - 12 - 8);
}

// Where a downloaded STORE to compare goes: outside the store, which only
// its exclusive lock holder may write.
std::string TempFileName() {
  const char* dir = std::getenv("TMPDIR");
  uint64_t nonce = 0;
  Env::Default()->RandomBytes(&nonce, sizeof nonce);
  return JoinPath(dir && dir[0] ? dir : "/tmp",
                  "snapshot-remote-" + std::to_string(long(getpid())) + "-" + std::to_string(nonce) + ".tmp");
}

// The recognised files of one store directory (docs/FORMAT.md §2).
Status ListIds(Env* env, const std::string& dir, const char* suffix, std::vector<uint64_t>* ids) {
  ids->clear();
  if (!env->IsDirectory(dir)) return Status::OK();
  std::vector<std::string> names;
  SNAPSHOT_RETURN_IF_ERROR(env->GetChildren(dir, &names));
  for (const std::string& name : names) {
    uint64_t id;
    if (ParseFileId(name, suffix, &id)) ids->push_back(id);
  }
  std::sort(ids->begin(), ids->end());
  return Status::OK();
}

// `s` with `context` before its message, its code kept.
Status Within(const Status& s, const std::string& context) {
  const std::string m = context + ": " + s.message();
  switch (s.code()) {
    case Status::Code::kOk: return s;
    case Status::Code::kNotFound: return Status::NotFound(m);
    case Status::Code::kCorruption: return Status::Corruption(m);
    case Status::Code::kInvalidArgument: return Status::InvalidArgument(m);
    case Status::Code::kBusy: return Status::Busy(m);
    case Status::Code::kNotSupported: return Status::NotSupported(m);
    case Status::Code::kInterrupted: return Status::Interrupted(m);
    default: return Status::IOError(m);
  }
}

// The id in a store file's key (packs/N.pack, snapshots/N.snap or .bundle);
// false for any other key.
bool KeyId(const std::string& key, uint64_t* id, const char** suffix) {
  const size_t slash = key.find('/');
  if (slash == std::string::npos) return false;
  const std::string dir = key.substr(0, slash), name = key.substr(slash + 1);
  for (const char* sfx : {kPackSuffix, kManifestSuffix, kBundleSuffix}) {
    const bool in_dir = dir == (sfx == kPackSuffix ? kPackDirName : kSnapshotDirName);
    if (in_dir && ParseFileId(name, sfx, id)) {
      *suffix = sfx;
      return true;
    }
  }
  return false;
}

std::string PackKey(uint64_t id) { return std::string(kPackDirName) + "/" + FileNameForId(id, kPackSuffix); }

constexpr int kLockRetryMs = 5;  // between tries of the store's lock

AtomicWriteOptions NoSync() {
  AtomicWriteOptions o;
  o.sync = false;  // a private copy, read back at once and removed
  return o;
}

// Held while a push holds the store's shared lock; a fork waits for it.
std::mutex& ListingMu() {
  static auto* mu = new std::mutex;
  return *mu;
}
void InstallForkGuard() {
  static std::once_flag once;
  std::call_once(once, [] {
    pthread_atfork([] { ListingMu().lock(); }, [] { ListingMu().unlock(); }, [] { ListingMu().unlock(); });
  });
}

}  // namespace

Status Replicator::ListLocal(std::vector<LocalFile>* files) {
  files->clear();
  std::vector<uint64_t> ids;
  auto add = [&](const std::string& dir, const char* suffix, bool is_mutable) -> Status {
    SNAPSHOT_RETURN_IF_ERROR(ListIds(env_, JoinPath(store_dir_, dir), suffix, &ids));
    for (uint64_t id : ids) {
      LocalFile f;
      f.key = dir + "/" + FileNameForId(id, suffix);
      f.mutable_ = is_mutable;
      SNAPSHOT_RETURN_IF_ERROR(env_->GetFileSize(JoinPath(store_dir_, f.key), &f.size));
      files->push_back(f);
    }
    return Status::OK();
  };
  // The order of publication: what a file names goes up before it.
  SNAPSHOT_RETURN_IF_ERROR(add(kPackDirName, kPackSuffix, false));
  SNAPSHOT_RETURN_IF_ERROR(add(kSnapshotDirName, kBundleSuffix, false));
  SNAPSHOT_RETURN_IF_ERROR(add(kSnapshotDirName, kManifestSuffix, true));
  return Status::OK();
}

bool Replicator::RemoteHas(const LocalFile& f) {
  auto it = listing_.find(f.key);
  return it != listing_.end() && it->second.size == f.size;
}

Status Replicator::CheckSameStore(const std::string& local, bool* upload_store) {
  auto it = listing_.find(kStoreFileName);
  *upload_store = true;
  if (it == listing_.end()) return Status::OK();
  if (it->second.size == local.size() && it->second.md5 == remote_->StoredMd5(kStoreFileName, local)) {
    *upload_store = false;
    return Status::OK();
  }
  const std::string tmp = TempFileName();
  std::string theirs;
  Status s = remote_->Get(kStoreFileName, tmp, 0600);
  if (s.ok()) s = ReadSmallFile(env_, tmp, kMaxStoreFileBytes, &theirs);
  env_->RemoveFile(tmp);
  if (!s.ok()) return Within(s, "reading " + remote_name_ + "/STORE");
  if (StoreIdentity(theirs).empty() || StoreIdentity(theirs) != StoreIdentity(local)) {
    return Status::InvalidArgument(remote_name_ + " holds the copy of another snapshot store, not of " + store_dir_ +
                                   "; give each store a remote location of its own");
  }
  return Status::OK();  // the same store, its STORE rewritten by a format upgrade
}

Status Replicator::ListUnderLock(Listing* l) {
  // A fork waits while this thread holds the store's lock: a child would
  // otherwise inherit it with the descriptor and hold it forever.
  InstallForkGuard();
  // Tried without waiting, under the mutex, and waited for between tries
  // without it: a fork never waits for the store's lock, only for a listing.
  std::unique_lock<std::mutex> no_fork(ListingMu(), std::defer_lock);
  StoreOptions o;
  o.env = env_;
  o.dir = store_dir_;
  o.lock_timeout_ms = 0;
  std::unique_ptr<Store> store;
  Status s;
  for (int waited_ms = 0;; waited_ms += kLockRetryMs) {
    no_fork.lock();
    s = Store::Open(o, &store);
    if (s.code() != Status::Code::kBusy || waited_ms >= lock_timeout_ms_ || remote_->Cancelled()) break;
    no_fork.unlock();
    std::this_thread::sleep_for(std::chrono::milliseconds(kLockRetryMs));
  }
  const std::string store_path = JoinPath(store_dir_, kStoreFileName);
  if (s.ok() && !env_->FileExists(store_path)) s = Status::NotFound("no snapshot has been taken yet");
  if (!s.ok()) return Within(s, "the snapshot store " + store_dir_);
  SNAPSHOT_RETURN_IF_ERROR(ReadSmallFile(env_, store_path, kMaxStoreFileBytes, &l->store_file));
  SNAPSHOT_RETURN_IF_ERROR(ListLocal(&l->files));
  // What the snapshots name, for the remote prune. Every loose manifest
  // must be readable and every pack named must be here: a store that lost
  // files (by damage, or by hand) is no guide to what the remote may lose.
  SNAPSHOT_RETURN_IF_ERROR(store->List(&l->snapshots));
  std::set<uint64_t> listed;
  for (const SnapshotInfo& info : l->snapshots) {
    listed.insert(info.id);
    Manifest m;
    s = store->ReadManifest(info.id, &m);
    if (!s.ok()) {
      l->prune_guard = Within(s, "nothing was deleted remotely (snapshot_verify() says more)");
      continue;
    }
    for (const Extent& e : m.extents) {
      if (e.pack != 0) l->named.insert(e.pack);
    }
  }
  std::set<std::string> local;
  uint64_t id = 0;
  const char* suffix = nullptr;
  for (const LocalFile& f : l->files) {
    local.insert(f.key);
    if (f.mutable_ && KeyId(f.key, &id, &suffix) && listed.count(id) == 0) {
      l->prune_guard = Status::Corruption("the local manifest " + f.key +
                                          " cannot be read; nothing was deleted remotely (snapshot_verify() says more)");
    }
  }
  for (uint64_t pack : l->named) {
    if (local.count(PackKey(pack)) == 0) {
      l->prune_guard =
          Status::Corruption("the local store lacks " + PackKey(pack) +
                             ", which a snapshot names; nothing was deleted remotely (snapshot_verify() says more)");
    }
  }
  return Status::OK();  // the store's lock goes with `store`
}

Status Replicator::Push(PushResult* result) {
  *result = PushResult();
  // Not even the push lock in a directory that is no store: it would leave
  // a REMOTE-LOCK behind.
  if (!env_->FileExists(JoinPath(store_dir_, kStoreFileName))) {
    return Status::NotFound("the snapshot store " + store_dir_ + ": no snapshot has been taken yet");
  }
  const unsigned mode = StoreFileMode(env_, store_dir_);
  std::unique_ptr<PushLock> lock;
  Status s = PushLock::Acquire(env_, store_dir_, mode, [this] { return remote_->Cancelled(); }, -1, &lock);
  if (!s.ok()) return s;

  RemoteRecord record;
  if (!ReadRemoteRecord(env_, store_dir_, &record).ok() || record.url != remote_name_) record = RemoteRecord();
  record.url = remote_name_;
  Listing l;
  bool uploaded_all = false;
  for (int round = 1; s.ok() && round <= kMaxRounds; round++) {
    l = Listing();
    s = ListUnderLock(&l);
    bool complete = false;
    if (s.ok()) s = PushRound(l, result, &uploaded_all, &complete);
    result->rounds = round;
    if (s.ok() && complete) break;
    if (s.ok() && round == kMaxRounds) {
      s = Status::Busy("the store changed during each of " + std::to_string(kMaxRounds) +
                       " rounds of this push (a compaction or prune each time); what went up is whole, and the "
                       "next push goes on from there");
    }
  }
  // Under the push lock still, so that records of two pushes never mix.
  if (uploaded_all) record.snapshots = l.snapshots;  // every one of them is remote now, and only those
  if (s.ok()) {
    record.pushed_ms = env_->NowMillis();
  } else {
    record.error = s.message();
    record.error_ms = env_->NowMillis();
  }
  WriteRemoteRecord(env_, store_dir_, record, mode);  // best effort: the record only informs
  return s;
}

Status Replicator::PushRound(const Listing& l, PushResult* result, bool* uploaded_all, bool* complete) {
  *uploaded_all = false;
  *complete = false;
  std::vector<ObjectInfo> objects;
  SNAPSHOT_RETURN_IF_ERROR(remote_->List("", &objects));
  listing_.clear();
  for (ObjectInfo& object : objects) listing_[object.key] = std::move(object);

  bool upload_store = false;
  SNAPSHOT_RETURN_IF_ERROR(CheckSameStore(l.store_file, &upload_store));
  result->files_in_store = l.files.size() + 1;

  // Ids are never reused (docs/FORMAT.md §8), but only within one line of
  // history: a remote holding ids this store never reached means the store
  // was put back from an older copy, and its next ids would name other
  // content than the remote's files of those names.
  uint64_t local_max = 0, remote_max = 0, id = 0;
  const char* suffix = nullptr;
  for (const LocalFile& f : l.files) {
    if (KeyId(f.key, &id, &suffix)) local_max = std::max(local_max, id);
  }
  for (const auto& entry : listing_) {
    if (KeyId(entry.first, &id, &suffix)) remote_max = std::max(remote_max, id);
  }
  if (remote_max > local_max) {
    return Status::InvalidArgument(remote_name_ + " holds files up to id " + std::to_string(remote_max) +
                                   ", newer than this store's (" + std::to_string(local_max) +
                                   "): was the store put back from an older copy? Nothing was sent");
  }

  auto uploaded = [&](const std::string& key, uint64_t size) {
    ObjectInfo& now = listing_[key];
    now.key = key;
    now.size = size;
    now.md5.clear();  // compared again next time
    result->files_uploaded++;
    result->bytes_uploaded += size;
  };
  if (upload_store) {
    const std::string tmp = TempFileName();
    Status s = WriteFileAtomically(env_, tmp, l.store_file, 0600);
    if (s.ok()) s = remote_->Put(kStoreFileName, tmp);
    env_->RemoveFile(tmp);
    if (!s.ok()) return Within(s, "uploading STORE to " + remote_name_);
    uploaded(kStoreFileName, l.store_file.size());
  }

  // The files, without the store's lock: packs and bundles never change
  // once written, so one is either sent whole or found gone (a prune or a
  // compaction removed it since the listing). Loose manifests may be
  // rewritten in place (a compaction renumbering packs): each is read once
  // and sent from that copy, and only when every pack it names is already
  // remote; one that names a newer pack waits for the next round.
  bool changed = false;
  for (const LocalFile& f : l.files) {
    if (remote_->Cancelled()) return Status::Interrupted("interrupted; what went up is whole");
    const std::string path = JoinPath(store_dir_, f.key);
    if (!f.mutable_) {
      if (RemoteHas(f)) continue;
      Status s = remote_->Put(f.key, path);
      if (!s.ok() && s.code() != Status::Code::kInterrupted && !env_->FileExists(path)) {
        result->files_gone++;
        changed = true;
        continue;
      }
      if (!s.ok()) return Within(s, "uploading " + f.key + " to " + remote_name_);
      uploaded(f.key, f.size);
      continue;
    }
    std::string bytes;
    Status s = ReadSmallFile(env_, path, kMaxManifestBytes, &bytes);
    if (!s.ok() && !env_->FileExists(path)) {
      result->files_gone++;
      changed = true;
      continue;
    }
    // A manifest that is sent replaces the remote's copy: never by a
    // damaged one.
    Manifest m;
    if (s.ok()) s = Manifest::Decode(bytes, path, &m);
    if (!s.ok()) return Within(s, "not sending " + f.key + " (snapshot_verify() says more)");
    bool names_only_remote = true;
    for (const Extent& e : m.extents) {
      if (e.pack != 0 && listing_.count(PackKey(e.pack)) == 0) names_only_remote = false;
    }
    if (!names_only_remote) {
      changed = true;
      continue;
    }
    auto it = listing_.find(f.key);
    if (it != listing_.end() && it->second.size == bytes.size() && !it->second.md5.empty() &&
        it->second.md5 == remote_->StoredMd5(f.key, bytes)) {
      continue;
    }
    const std::string tmp = TempFileName();
    s = WriteFileAtomically(env_, tmp, bytes, 0600, NoSync());
    if (s.ok()) s = remote_->Put(f.key, tmp);
    env_->RemoveFile(tmp);
    if (!s.ok()) return Within(s, "uploading " + f.key + " to " + remote_name_);
    uploaded(f.key, bytes.size());
  }
  if (changed) return Status::OK();  // another round, from a new listing
  *uploaded_all = true;
  SNAPSHOT_RETURN_IF_ERROR(l.prune_guard);
  SNAPSHOT_RETURN_IF_ERROR(PruneRemote(l, result));
  *complete = true;
  return Status::OK();
}

Status Replicator::PruneRemote(const Listing& l, PushResult* result) {
  std::set<std::string> local;
  for (const LocalFile& f : l.files) local.insert(f.key);
  uint64_t id = 0;
  const char* suffix = nullptr;
  // Manifests first, then bundles, then packs: a remote manifest never
  // names a deleted object, and a push that stops half way leaves only
  // objects nothing names, which the next push deletes.
  for (const char* kind : {kManifestSuffix, kBundleSuffix, kPackSuffix}) {
    for (auto it = listing_.begin(); it != listing_.end();) {
      const bool goes = KeyId(it->first, &id, &suffix) && suffix == kind && local.count(it->first) == 0 &&
                        !(kind == kPackSuffix && l.named.count(id) != 0);
      if (!goes) {
        ++it;
        continue;
      }
      if (remote_->Cancelled()) return Status::Interrupted("interrupted; what went up is whole");
      Status s = remote_->Delete(it->first);
      if (!s.ok()) return Within(s, "deleting " + it->first + " from " + remote_name_);
      result->files_deleted++;
      it = listing_.erase(it);
    }
  }
  return Status::OK();
}

void RemoveFetchedStore(Env* env, const std::string& cache_dir) {
  for (const char* sub : {kPackDirName, kSnapshotDirName, ""}) {
    const std::string dir = sub[0] ? JoinPath(cache_dir, sub) : cache_dir;
    std::vector<std::string> names;
    if (!env->GetChildren(dir, &names).ok()) continue;
    for (const std::string& name : names) {
      if (name != "." && name != ".." && !env->IsDirectory(JoinPath(dir, name))) env->RemoveFile(JoinPath(dir, name));
    }
    ::rmdir(dir.c_str());
  }
}

namespace {

// `spec` null: every pack, not only one snapshot's.
Status FetchInto(Env* env, ObjectStore* remote, const std::string& remote_name, const std::string& cache_dir,
                 const SnapshotSpec* spec, uint64_t* id, FetchResult* result) {
  std::vector<ObjectInfo> objects;
  SNAPSHOT_RETURN_IF_ERROR(remote->List("", &objects));
  std::map<std::string, uint64_t> listed;
  for (const ObjectInfo& o : objects) listed[o.key] = o.size;
  if (listed.count(kStoreFileName) == 0) {
    return Status::NotFound(remote_name + " holds no snapshot store (there is no " + remote_name + "/STORE)");
  }
  auto get = [&](const std::string& key) -> Status {
    Status s = remote->Get(key, JoinPath(cache_dir, key), 0600);
    if (!s.ok()) return Within(s, remote_name + "/" + key);
    result->files++;
    result->bytes += listed[key];
    return Status::OK();
  };
  SNAPSHOT_RETURN_IF_ERROR(get(kStoreFileName));
  // Every manifest, loose or bundled: which snapshot `spec` names, and
  // which copy of it counts, is the store's reader's decision.
  for (const auto& entry : listed) {
    const std::string dir = std::string(kSnapshotDirName) + "/";
    if (entry.first.compare(0, dir.size(), dir) != 0) continue;
    const std::string name = entry.first.substr(dir.size());
    uint64_t unused;
    if (ParseFileId(name, kManifestSuffix, &unused) || ParseFileId(name, kBundleSuffix, &unused)) {
      SNAPSHOT_RETURN_IF_ERROR(get(entry.first));
    }
  }
  if (spec == nullptr) {
    for (const auto& entry : listed) {
      uint64_t pack;
      const std::string dir = std::string(kPackDirName) + "/";
      if (entry.first.compare(0, dir.size(), dir) == 0 && ParseFileId(entry.first.substr(dir.size()), kPackSuffix, &pack)) {
        SNAPSHOT_RETURN_IF_ERROR(get(entry.first));
      }
    }
    return Status::OK();
  }
  StoreOptions o;
  o.env = env;
  o.dir = cache_dir;
  std::unique_ptr<Store> store;
  SNAPSHOT_RETURN_IF_ERROR(Store::Open(o, &store));
  SNAPSHOT_RETURN_IF_ERROR(ResolveSnapshot(store.get(), *spec, id));
  Manifest m;
  SNAPSHOT_RETURN_IF_ERROR(store->ReadManifest(*id, &m));
  std::set<uint64_t> packs;
  for (const Extent& e : m.extents) {
    if (e.pack != 0) packs.insert(e.pack);
  }
  for (uint64_t pack : packs) {
    if (listed.count(PackKey(pack)) == 0) {
      return Status::Corruption(remote_name + " lacks " + PackKey(pack) + ", which snapshot " + std::to_string(*id) +
                                " needs");
    }
    SNAPSHOT_RETURN_IF_ERROR(get(PackKey(pack)));
  }
  return Status::OK();
}

}  // namespace

namespace {

Status Fetch(Env* env, ObjectStore* remote, const std::string& remote_name, const std::string& cache_dir,
             const SnapshotSpec* spec, uint64_t* id, FetchResult* result) {
  FetchResult ignored;
  if (result == nullptr) result = &ignored;
  *result = FetchResult();
  if (env->FileExists(cache_dir)) return Status::InvalidArgument(cache_dir + " already exists");
  Status s = env->CreateDir(cache_dir, 0700);
  if (s.ok()) s = env->CreateDir(JoinPath(cache_dir, kPackDirName), 0700);
  if (s.ok()) s = env->CreateDir(JoinPath(cache_dir, kSnapshotDirName), 0700);
  if (s.ok()) s = FetchInto(env, remote, remote_name, cache_dir, spec, id, result);
  if (!s.ok()) RemoveFetchedStore(env, cache_dir);
  return s;
}

}  // namespace

Status FetchSnapshot(Env* env, ObjectStore* remote, const std::string& remote_name, const std::string& cache_dir,
                     const SnapshotSpec& spec, uint64_t* id, FetchResult* result) {
  return Fetch(env, remote, remote_name, cache_dir, &spec, id, result);
}

Status FetchStore(Env* env, ObjectStore* remote, const std::string& remote_name, const std::string& cache_dir,
                  FetchResult* result) {
  uint64_t unused = 0;
  return Fetch(env, remote, remote_name, cache_dir, nullptr, &unused, result);
}

}  // namespace snapshot
