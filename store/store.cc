#include "store/store.h"

#include <time.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "store/coding.h"
#include "store/format.h"

namespace snapshot {
namespace {

// A page the builder has not been given yet.
constexpr uint64_t kUnsetPack = UINT64_MAX;
unsigned DirModeFor(unsigned file_mode) { return file_mode | ((file_mode & 0444u) >> 2); }

}  // namespace

std::string FormatTimestamp(int64_t unix_ms) {
  time_t secs = static_cast<time_t>(unix_ms / 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(unix_ms % 1000));
  return buf;
}

Store::~Store() = default;

std::string Store::PackPath(uint64_t id) const {
  return JoinPath(JoinPath(options_.dir, kPackDirName), FileNameForId(id, kPackSuffix));
}
std::string Store::ManifestPath(uint64_t id) const {
  return JoinPath(JoinPath(options_.dir, kSnapshotDirName), FileNameForId(id, kManifestSuffix));
}

Status Store::Open(const StoreOptions& options, std::unique_ptr<Store>* out) {
  std::unique_ptr<Store> store(new Store(options));
  SNAPSHOT_RETURN_IF_ERROR(store->Init());
  *out = std::move(store);
  return Status::OK();
}

Status Store::Init() {
  Env* env = options_.env;
  const std::string& dir = options_.dir;
  // Another process may be starting the same store at this moment: each step
  // below looks again before it calls what it sees an error.
  if (!env->IsDirectory(dir)) {
    if (env->FileExists(dir) && !env->IsDirectory(dir)) {
      return Status::InvalidArgument("snapshot store " + dir + " is not a directory");
    }
    if (!options_.create_if_missing) {
      return Status::NotFound("snapshot store directory " + dir + " does not exist" +
                              (options_.create_store ? "; create it first (a store directory you chose is never "
                                                       "created, so that an unmounted backup volume is noticed)"
                                                     : " (no snapshot has been taken yet, or the store was "
                                                       "moved or deleted)"));
    }
    const Status made = env->CreateDir(dir, DirModeFor(options_.file_mode));
    if (!made.ok() && !env->IsDirectory(dir)) return made;  // not made meanwhile by another process
    SNAPSHOT_RETURN_IF_ERROR(env->SyncDir(DirName(dir)));
  }
  const std::string store_file = JoinPath(dir, kStoreFileName);
  if (!env->FileExists(store_file)) {
    if (!(options_.create_store || options_.create_if_missing) || !options_.exclusive) {
      return Status::NotFound("no snapshot has been taken yet (" + dir +
                              " holds no snapshot store; if it did, the store was moved or deleted)");
    }
    const Status ours = CheckDirIsOurs();
    if (!ours.ok() && !env->FileExists(store_file)) return ours;  // not a store started meanwhile
  }
  SNAPSHOT_RETURN_IF_ERROR(env->LockFile(JoinPath(dir, kLockFileName), options_.exclusive,
                                         options_.lock_timeout_ms, options_.file_mode, &lock_));
  if (env->FileExists(store_file)) {
    SNAPSHOT_RETURN_IF_ERROR(ReadStoreFile(store_file));
  } else {
    SNAPSHOT_RETURN_IF_ERROR(CheckDirIsOurs());  // again, now under the lock
    SNAPSHOT_RETURN_IF_ERROR(CreateStoreFile(store_file));
  }
  if (options_.exclusive) {
    for (const char* sub : {kPackDirName, kSnapshotDirName}) {
      SNAPSHOT_RETURN_IF_ERROR(env->CreateDir(JoinPath(dir, sub), DirModeFor(options_.file_mode)));
    }
    SNAPSHOT_RETURN_IF_ERROR(env->SyncDir(dir));
    SNAPSHOT_RETURN_IF_ERROR(RemoveDebris());
  }
  return Status::OK();
}

// A directory that holds anything but the store's own (empty) layout is
// somebody else's: never turn it into a store, never clean up in it.
Status Store::CheckDirIsOurs() {
  Env* env = options_.env;
  std::vector<std::string> names;
  SNAPSHOT_RETURN_IF_ERROR(env->GetChildren(options_.dir, &names));
  for (const std::string& n : names) {
    std::vector<std::string> inner;
    const bool ours = n == kLockFileName || n == std::string(kStoreFileName) + kTempSuffix ||
                      ((n == kPackDirName || n == kSnapshotDirName) &&
                       env->GetChildren(JoinPath(options_.dir, n), &inner).ok() && inner.empty());
    if (!ours) {
      return Status::InvalidArgument("the directory " + options_.dir +
                                     " is not empty and holds no snapshot store; choose an empty or new directory");
    }
  }
  return Status::OK();
}

Status Store::WriteStoreFile(const std::string& path, int64_t created_ms, const std::string& db_name) {
  std::string data;
  ByteWriter w(&data);
  w.Bytes(kStoreMagic, 8);
  w.U32(kFormatVersion);
  w.U32(0);  // flags
  w.U64(static_cast<uint64_t>(created_ms));
  w.String(db_name);
  w.Bytes(secret_, sizeof secret_);
  w.U64(Checksum64(data.data(), data.size()));
  return WriteFileAtomically(options_.env, path, data, options_.file_mode);
}

Status Store::CreateStoreFile(const std::string& path) {
  SNAPSHOT_RETURN_IF_ERROR(options_.env->RandomBytes(secret_, sizeof secret_));
  return WriteStoreFile(path, options_.env->NowMillis(), options_.db_name);
}

// Reads the first min(file size, limit) bytes of `path`; *size is the
// file's size. What a reader allocates for a file is bounded by what the
// format allows, not by whatever a damaged file's size is.
static Status ReadPrefix(Env* env, const std::string& path, uint64_t limit, std::string* out, uint64_t* size) {
  std::unique_ptr<RandomAccessFile> f;
  SNAPSHOT_RETURN_IF_ERROR(env->NewRandomAccessFile(path, &f));
  *size = f->Size();
  out->assign(size_t(std::min(*size, limit)), '\0');
  return out->empty() ? Status::OK() : f->Read(0, out->size(), &(*out)[0]);
}

Status Store::ReadStoreFile(const std::string& path) {
  // magic, version, flags, created, the longest name, secret, checksum
  constexpr uint64_t kMaxStoreFileSize = 28 + 4096 + kHashSecretSize + 8;
  std::string data;
  uint64_t size;
  SNAPSHOT_RETURN_IF_ERROR(ReadPrefix(options_.env, path, kMaxStoreFileSize, &data, &size));
  auto bad = [&](const std::string& why) { return Status::Corruption("store file " + path + " is damaged: " + why); };
  if (data.size() < 16 || data.compare(0, 8, kStoreMagic) != 0) {
    return Status::InvalidArgument(options_.dir + " is not a snapshot store (its STORE file has no store magic number)");
  }
  if (size > kMaxStoreFileSize) return bad("larger than a store file can be");
  uint64_t sum;
  ByteReader tail(data.data() + data.size() - 8, 8);
  tail.U64(&sum);
  if (Checksum64(data.data(), data.size() - 8) != sum) return bad("checksum mismatch");
  ByteReader r(data.data() + 8, data.size() - 16);
  uint32_t version, flags;
  uint64_t created;
  std::string db_name;
  if (!r.U32(&version) || version == 0) return bad("no valid format version");
  if (version > kFormatVersion) {
    return Status::NotSupported("the snapshot store " + options_.dir + " was written by a newer version (format " +
                                std::to_string(version) + "; this build reads up to " + std::to_string(kFormatVersion) +
                                "); upgrade the extension");
  }
  if (!(r.U32(&flags) && r.U64(&created) && r.String(&db_name, 4096) && r.Bytes(secret_, sizeof secret_) &&
        r.remaining() == 0)) {
    return bad("truncated");
  }
  if (!options_.db_name.empty() && db_name != options_.db_name) {
    return Status::InvalidArgument("the snapshot store " + options_.dir + " belongs to database '" + db_name +
                                   "', not '" + options_.db_name + "'; choose another store directory");
  }
  if (version < kFormatVersion && options_.exclusive) {
    // A writer is about to add files of this version: STORE says so first
    // (docs/FORMAT.md §11), so that an older build refuses the whole store
    // instead of meeting files it cannot read one by one. Same identity,
    // same secret: only the version changes.
    SNAPSHOT_RETURN_IF_ERROR(WriteStoreFile(path, static_cast<int64_t>(created), db_name));
  }
  return Status::OK();
}

// Temporary files are left only by a crash or a failure mid-write; under the
// exclusive lock nobody else can be writing them.
// Only names the store itself writes are removed: a store may share its
// directory's parent with anything.
Status Store::RemoveDebris() {
  for (const std::string& name : {std::string(kStoreFileName) + kTempSuffix, std::string(kProgressFileName),
                                  std::string(kProgressFileName) + kTempSuffix}) {
    SNAPSHOT_RETURN_IF_ERROR(options_.env->RemoveFile(JoinPath(options_.dir, name)));
  }
  for (const auto& [sub, suffix] : {std::make_pair(kPackDirName, kPackSuffix),
                                    std::make_pair(kSnapshotDirName, kManifestSuffix),
                                    std::make_pair(kSnapshotDirName, kBundleSuffix)}) {
    const std::string d = JoinPath(options_.dir, sub);
    const std::string tmp_suffix = std::string(suffix) + kTempSuffix;
    std::vector<std::string> names;
    SNAPSHOT_RETURN_IF_ERROR(options_.env->GetChildren(d, &names));
    for (const std::string& n : names) {
      uint64_t id;
      if (ParseFileId(n, tmp_suffix.c_str(), &id)) SNAPSHOT_RETURN_IF_ERROR(options_.env->RemoveFile(JoinPath(d, n)));
    }
  }
  return Status::OK();
}

Status Store::ScanIds(std::vector<uint64_t>* manifests, std::vector<uint64_t>* packs) {
  struct Kind {
    const char* sub;
    const char* suffix;
    std::vector<uint64_t>* ids;
  };
  for (const Kind& k : {Kind{kSnapshotDirName, kManifestSuffix, manifests}, Kind{kPackDirName, kPackSuffix, packs}}) {
    if (k.ids == nullptr) continue;
    k.ids->clear();
    std::vector<std::string> names;
    Status s = options_.env->GetChildren(JoinPath(options_.dir, k.sub), &names);
    if (s.IsNotFound()) continue;
    SNAPSHOT_RETURN_IF_ERROR(s);
    for (const std::string& n : names) {
      uint64_t id;
      if (ParseFileId(n, k.suffix, &id)) k.ids->push_back(id);
    }
    std::sort(k.ids->begin(), k.ids->end());
  }
  return Status::OK();
}

// 1 + the largest id of any file. Since the file with the largest id is
// never deleted (Discard, a failed Commit and Prune all keep it), an id is
// never allocated twice: an old copy of a file is then a copy of that same
// file, never of another that once had its name.
Status Store::NextId(uint64_t* id) {
  std::vector<uint64_t> m, p, b;
  SNAPSHOT_RETURN_IF_ERROR(ScanIds(&m, &p));
  SNAPSHOT_RETURN_IF_ERROR(ScanBundleIds(&b));
  uint64_t max_id = 0;
  if (!m.empty()) max_id = std::max(max_id, m.back());
  if (!p.empty()) max_id = std::max(max_id, p.back());
  if (!b.empty()) max_id = std::max(max_id, b.back());
  *id = max_id + 1;
  return Status::OK();
}

Status Store::ReadManifest(uint64_t id, Manifest* out) {
  Status s = ReadLooseManifest(id, out);
  return s.IsNotFound() ? ReadBundledManifest(id, out) : s;
}

Status Store::ReadLooseManifest(uint64_t id, Manifest* out, std::string* bytes) {
  std::string data;
  uint64_t size;
  Status s = ReadPrefix(options_.env, ManifestPath(id), kManifestPrefixSize, &data, &size);
  if (s.IsNotFound()) return Status::NotFound("no snapshot with id " + std::to_string(id));
  SNAPSHOT_RETURN_IF_ERROR(s);
  if (size > ManifestSizeLimit(data)) {
    return Status::Corruption("snapshot file " + FileNameForId(id, kManifestSuffix) +
                              " is damaged: larger than its header allows");
  }
  if (size > data.size()) SNAPSHOT_RETURN_IF_ERROR(ReadPrefix(options_.env, ManifestPath(id), size, &data, &size));
  SNAPSHOT_RETURN_IF_ERROR(Manifest::Decode(data, FileNameForId(id, kManifestSuffix), out));
  if (out->info.id != id) return Status::Corruption("snapshot file for id " + std::to_string(id) + " names another id");
  if (bytes != nullptr) *bytes = std::move(data);
  return Status::OK();
}

Status Store::LatestId(uint64_t* id) {
  std::vector<SnapshotInfo> all;
  SNAPSHOT_RETURN_IF_ERROR(List(&all));
  if (all.empty()) return Status::NotFound("no snapshot has been taken yet");
  *id = all.back().id;
  return Status::OK();
}

Status Store::GetPack(uint64_t id, const PackReader** out) {
  auto it = packs_.find(id);
  if (it == packs_.end()) {
    std::unique_ptr<PackReader> r;
    Status s = PackReader::Open(options_.env, PackPath(id), id, secret_, &r);
    if (s.IsNotFound()) return Status::Corruption("pack " + PackPath(id) + " is missing");
    SNAPSHOT_RETURN_IF_ERROR(s);
    it = packs_.emplace(id, std::move(r)).first;
  }
  *out = it->second.get();
  return Status::OK();
}

Status Store::GetPackWithHashes(uint64_t id, const PackReader** out) {
  SNAPSHOT_RETURN_IF_ERROR(GetPack(id, out));
  return packs_[id]->LoadHashes();
}

void Store::ForgetPack(uint64_t id) {
  packs_.erase(id);
  peeks_.erase(id);
}

bool Store::StoredHashIs(const PageRef& ref, uint32_t page_size, const PageHash& h) {
  auto fits = [&](uint32_t pack_page_size, uint32_t pack_pages) {
    return pack_page_size == page_size && ref.index < pack_pages;
  };
  auto loaded = packs_.find(ref.pack);
  if (loaded == packs_.end() || !loaded->second->hashes_loaded()) {
    auto it = peeks_.find(ref.pack);
    if (it == peeks_.end()) {
      std::unique_ptr<PackHashPeek> peek;
      if (!PackHashPeek::Open(options_.env, PackPath(ref.pack), ref.pack, &peek).ok()) return false;
      it = peeks_.emplace(ref.pack, std::move(peek)).first;
    }
    PackHashPeek& peek = *it->second;
    // One read per page while few pages are compared; once a snapshot has
    // compared a 64th of the pack's pages (a big change), the whole index
    // in one read costs less than the reads still to come.
    if (peek.reads() < peek.page_count() / 64) {
      PageHash stored;
      return fits(peek.page_size(), peek.page_count()) && peek.Hash(ref.index, &stored).ok() && stored == h;
    }
    peeks_.erase(it);
    const PackReader* pack;
    if (!GetPackWithHashes(ref.pack, &pack).ok()) return false;
    loaded = packs_.find(ref.pack);
  }
  const PackReader& pack = *loaded->second;
  return fits(pack.page_size(), pack.page_count()) && pack.hash(ref.index) == h;
}

Status Store::LoadDedupIndex() {
  if (dedup_loaded_) return Status::OK();
  dedup_.Clear();
  std::vector<uint64_t> ids;
  SNAPSHOT_RETURN_IF_ERROR(ScanIds(nullptr, &ids));
  for (uint64_t id : ids) {
    const PackReader* pack;
    // A damaged pack is not used for deduplication; verify reports it.
    if (!GetPackWithHashes(id, &pack).ok()) continue;
    for (uint32_t i = 0; i < pack->page_count(); i++) {
      dedup_.Insert(pack->hash(i), PageRef{id, i}, /*keep_existing=*/true);
    }
  }
  dedup_loaded_ = true;
  return Status::OK();
}

// Whether stored content may be referenced by a new snapshot: its pack has
// this page size and its frame passes its checksum. Each frame is read once
// per store opening, so a frame that has rotted since it was written is
// never built upon: the page is stored again instead.
bool Store::FrameIsSound(const PageRef& ref, uint32_t page_size) {
  const PackReader* pack;
  if (!GetPack(ref.pack, &pack).ok() || pack->page_size() != page_size || ref.index >= pack->page_count()) return false;
  const auto key = std::make_pair(ref.pack, pack->FrameOf(ref.index));
  auto it = frame_sound_.find(key);
  if (it == frame_sound_.end()) it = frame_sound_.emplace(key, pack->CheckFrame(key.second).ok()).first;
  return it->second;
}

Status Store::KeepIdAllocated(uint64_t id, uint32_t page_size) {
  if (options_.env->FileExists(PackPath(id))) return Status::OK();
  std::unique_ptr<PackWriter> empty;
  SNAPSHOT_RETURN_IF_ERROR(PackWriter::Create(options_.env, JoinPath(options_.dir, kPackDirName), id, page_size,
                                              options_.file_mode, options_.compress, &empty));
  uint64_t bytes;
  return empty->Finish(&bytes);
}

// Pack `id` stays: it is a valid orphan pack (every cached fact about it
// still holds), and it keeps the id from being allocated again.
Status Store::Discard(uint64_t id) {
  if (!options_.exclusive) return Status::InvalidArgument("internal: snapshot store opened read-only");
  Manifest m;
  SNAPSHOT_RETURN_IF_ERROR(ReadManifest(id, &m));
  SNAPSHOT_RETURN_IF_ERROR(KeepIdAllocated(id, m.info.page_size));
  SNAPSHOT_RETURN_IF_ERROR(options_.env->RemoveFile(ManifestPath(id)));
  return options_.env->SyncDir(JoinPath(options_.dir, kSnapshotDirName));
}

Status Store::WriteManifest(const Manifest& m) {
  AtomicWriteOptions write;
  write.before_sync = options_.compress.before_writeback;
  return WriteFileAtomically(options_.env, ManifestPath(m.info.id), m.Encode(), options_.file_mode, write);
}

Status Store::NewSnapshot(uint32_t page_size, uint32_t page_count, const Manifest* base,
                          std::unique_ptr<SnapshotBuilder>* out) {
  if (!options_.exclusive) return Status::InvalidArgument("internal: snapshot store opened read-only");
  if (!IsValidPageSize(page_size)) return Status::InvalidArgument("invalid page size " + std::to_string(page_size));
  if (base == nullptr || base->info.page_size != page_size) {
    // Every page comes in: deduplicate against everything the store holds.
    SNAPSHOT_RETURN_IF_ERROR(LoadDedupIndex());
  } else if (!dedup_loaded_) {
    // Only the changed pages come in (a tracked snapshot): they are compared
    // with the base's page of the same number and with each other, not with
    // an index of the whole store, whose cost would grow with the database.
    dedup_.Clear();
  }
  std::unique_ptr<SnapshotBuilder> b(new SnapshotBuilder);
  b->store_ = this;
  b->page_size_ = page_size;
  SNAPSHOT_RETURN_IF_ERROR(NextId(&b->id_));
  b->refs_.assign(page_count, PageRef{kUnsetPack, 0});
  if (base != nullptr && base->info.page_size == page_size) {
    for (const Extent& e : base->extents) {
      for (uint32_t i = 0; i < e.page_count && e.first_pgno - 1 + i < page_count; i++) {
        b->refs_[e.first_pgno - 1 + i] = PageRef{e.pack, e.pack == 0 ? 0 : e.first_index + i};
      }
    }
  }
  *out = std::move(b);
  return Status::OK();
}

SnapshotBuilder::~SnapshotBuilder() {
  if (pack_) {
    // Not committed: forget the pages that were going into the abandoned pack.
    pack_->Abandon();
    store_->dedup_loaded_ = false;
    store_->dedup_.Clear();
  }
}

Status SnapshotBuilder::AddPage(uint32_t pgno, const uint8_t* data) {
  if (pgno == 0 || pgno > refs_.size()) {
    return Status::InvalidArgument("internal: page " + std::to_string(pgno) + " is outside the snapshot");
  }
  const PageHash h = HashPage(store_->secret_, data, page_size_);
  // Added again with the content the base snapshot already has for it (a
  // page written but not changed): keep the base's reference, as for every
  // page not added at all.
  const PageRef old = refs_[pgno - 1];
  if (old.pack != kUnsetPack && old.pack != 0 && old.pack != id_ && store_->StoredHashIs(old, page_size_, h)) {
    return Status::OK();
  }
  const PageRef* stored = store_->dedup_.Find(h);
  if (stored != nullptr && (stored->pack == id_ || store_->FrameIsSound(*stored, page_size_))) {
    refs_[pgno - 1] = *stored;
    return Status::OK();
  }
  if (!pack_) {
    SNAPSHOT_RETURN_IF_ERROR(PackWriter::Create(store_->env(), JoinPath(store_->dir(), kPackDirName), id_,
                                                page_size_, store_->options_.file_mode,
                                                store_->options_.compress, &pack_));
  }
  // Until Commit, a new page's index is its slot in the pack writer
  // (PackWriter::IndexOf), which groups b-tree interior pages.
  const PageRef ref{id_, pack_->page_count()};
  const PagePlacement placement =
      IsTreeInteriorPage(data, page_size_, pgno) ? PagePlacement::kGrouped : PagePlacement::kInOrder;
  SNAPSHOT_RETURN_IF_ERROR(pack_->AddPage(data, h, placement));
  store_->dedup_.Insert(h, ref);
  added_hashes_.push_back(h);
  refs_[pgno - 1] = ref;
  pages_new_++;
  return Status::OK();
}

Status SnapshotBuilder::Commit(const std::string& label, uint64_t* id) {
  SNAPSHOT_RETURN_IF_ERROR(ValidateLabel(label));
  const uint32_t lock_page = LockBytePage(page_size_);
  for (uint32_t i = 0; i < refs_.size(); i++) {
    if (refs_[i].pack != kUnsetPack) continue;
    if (i + 1 != lock_page) return Status::InvalidArgument("internal: page " + std::to_string(i + 1) + " was never added");
    refs_[i] = PageRef{0, 0};
  }
  Manifest m;
  m.info.id = id_;
  m.info.created_ms = store_->env()->NowMillis();
  m.info.commit_ms = commit_ms_ == kUnknownCommitTime ? commit_ms_ : std::min(commit_ms_, m.info.created_ms);
  m.info.label = label;
  m.info.page_size = page_size_;
  m.info.pages_new = pages_new_;
  if (pack_) {
    SNAPSHOT_RETURN_IF_ERROR(pack_->Finish(&m.info.bytes_new));
    if (pack_->reordered()) {
      for (PageRef& r : refs_) {
        if (r.pack == id_) r.index = pack_->IndexOf(r.index);
      }
      store_->dedup_.RenumberPack(id_, pack_->index_of(), added_hashes_);
    }
    pack_.reset();
  }
  m.SetPageMap(refs_);
  const std::string encoded = m.Encode();
  m.info.bytes_new += encoded.size();
  Status s = store_->WriteManifest(m);
  if (!s.ok()) {
    // The manifest may already be in place (only the directory fsync
    // failed): a failed call must not leave a listed snapshot, so take the
    // manifest back. Pack N stays, an orphan that a later prune removes:
    // with it (or, for a snapshot that stored no page, an empty pack) id N
    // is never allocated again, so no copy of this manifest made meanwhile
    // can pass for a later snapshot N. If even that cannot be written, the
    // manifest stays, as when it cannot be unlinked: a whole snapshot.
    Env* env = store_->env();
    const std::string manifest = store_->ManifestPath(id_);
    if (env->FileExists(manifest) && store_->KeepIdAllocated(id_, page_size_).ok() &&
        env->RemoveFile(manifest).ok()) {
      env->SyncDir(DirName(manifest));
    }
    store_->dedup_loaded_ = false;
    store_->dedup_.Clear();
    return s;
  }
  *id = id_;
  return Status::OK();
}

Status Store::OpenImage(uint64_t id, std::unique_ptr<SnapshotImage>* out) {
  std::unique_ptr<SnapshotImage> image(new SnapshotImage);
  image->store_ = this;
  SNAPSHOT_RETURN_IF_ERROR(ReadManifest(id, &image->manifest_));
  std::set<uint64_t> packs;
  for (const Extent& e : image->manifest_.extents) {
    if (e.pack == 0) continue;
    packs.insert(e.pack);
    const PackReader* pack;
    SNAPSHOT_RETURN_IF_ERROR(GetPack(e.pack, &pack));
    if (pack->page_size() != image->manifest_.info.page_size ||
        uint64_t(e.first_index) + e.page_count > pack->page_count()) {
      return Status::Corruption("snapshot " + std::to_string(id) + " refers to pages that pack " +
                                std::to_string(e.pack) + " does not hold");
    }
  }
  // Pages come back in page order; an incremental pack's frames each cover a
  // contiguous stretch of it, so one frame per pack is live at a time.
  image->cache_capacity_ = std::max<size_t>(64, packs.size() * 2 + 8);
  *out = std::move(image);
  return Status::OK();
}

Status SnapshotImage::ReadPage(uint32_t pgno, uint8_t* out) {
  const uint32_t page_size = manifest_.info.page_size;
  PageRef ref;
  if (!manifest_.Lookup(pgno, &ref)) return Status::InvalidArgument("page " + std::to_string(pgno) + " is past the end");
  if (ref.pack == 0) {
    std::memset(out, 0, page_size);
    return Status::OK();
  }
  const PackReader* pack;
  SNAPSHOT_RETURN_IF_ERROR(store_->GetPack(ref.pack, &pack));
  const uint32_t f = pack->FrameOf(ref.index);
  if (shared_cache_ != nullptr) {
    const uint32_t slot = ref.index - pack->frames()[f].first_index;
    SNAPSHOT_RETURN_IF_ERROR(LoadSharedFrame(pack, ref, f, slot));
    std::memcpy(out, current_->data() + size_t(slot) * page_size, page_size);
    return Status::OK();
  }
  auto key = std::make_pair(ref.pack, f);
  auto it = cache_.find(key);
  if (it == cache_.end()) {
    const size_t frame_bytes = size_t(pack->frames()[f].page_count) * page_size;
    while (!cache_.empty() && (cache_.size() >= cache_capacity_ ||
                               (cache_bytes_limit_ != 0 && cache_bytes_ + frame_bytes > cache_bytes_limit_))) {
      auto oldest = std::min_element(cache_.begin(), cache_.end(), [](const auto& a, const auto& b) {
        return a.second.last_use < b.second.last_use;
      });
      cache_bytes_ -= oldest->second.pages.size();
      if (oldest->second.pages.capacity() > spare_.capacity()) spare_.swap(oldest->second.pages);
      cache_.erase(oldest);
    }
    SNAPSHOT_RETURN_IF_ERROR(pack->ReadFrame(f, &spare_, &scratch_));
    cache_bytes_ += spare_.size();
    it = cache_.emplace(key, CachedFrame{std::move(spare_), 0}).first;
    spare_ = std::string();
  }
  it->second.last_use = ++clock_;
  const size_t slot = ref.index - pack->frames()[f].first_index;
  std::memcpy(out, it->second.pages.data() + slot * page_size, page_size);
  return Status::OK();
}

Status SnapshotImage::LoadSharedFrame(const PackReader* pack, const PageRef& ref, uint32_t f, uint32_t slot) {
  const FrameKey key{shared_tag_, ref.pack, f, pack->frames()[f].checksum};
  const size_t need = (size_t(slot) + 1) * pack->page_size();
  const bool same = current_ && !(current_key_ < key) && !(key < current_key_);
  // A scan reads a frame's pages one after another: the frame in hand
  // serves them without taking the cache's lock.
  if (same && current_->size() >= need) return Status::OK();
  current_.reset();  // so that its buffer may be reused once evicted
  FrameCache::Frame frame = shared_cache_->Lookup(key);
  if (!frame || frame->size() < need) {
    // A frame not read before is decoded only as far as the page (a point
    // query); one read before in part is being read on (a scan, or queries
    // that meet in it), so all of it is decoded.
    const FrameEntry& e = pack->frames()[f];
    std::shared_ptr<std::string> pages = shared_cache_->TakeBuffer(size_t(e.page_count) * pack->page_size());
    if (frame || same) {
      frame.reset();
      SNAPSHOT_RETURN_IF_ERROR(pack->ReadFrame(f, pages.get(), &scratch_));
    } else {
      SNAPSHOT_RETURN_IF_ERROR(pack->ReadFramePrefix(f, slot, pages.get(), &scratch_));
    }
    frame = shared_cache_->Insert(key, std::move(pages));
  }
  current_ = std::move(frame);
  current_key_ = key;
  return Status::OK();
}

bool SnapshotImage::StoredHash(uint32_t pgno, PageHash* out) {
  PageRef ref;
  const PackReader* pack;
  if (!manifest_.Lookup(pgno, &ref) || ref.pack == 0 || !store_->GetPack(ref.pack, &pack).ok() ||
      ref.index >= pack->page_count()) {
    return false;
  }
  const auto frame = std::make_pair(ref.pack, pack->FrameOf(ref.index));
  if (hash_block_frame_ != frame) {
    hash_block_frame_ = {0, 0};
    // Unreadable: no hash, so the caller sees a page that differs and reads
    // it, which reports the damage.
    if (!pack->FrameHashes(frame.second, &hash_block_).ok()) return false;
    hash_block_frame_ = frame;
  }
  *out = hash_block_[ref.index - pack->frames()[frame.second].first_index];
  return true;
}

Status SnapshotImage::Read(uint64_t offset, size_t n, uint8_t* out) {
  const uint32_t page_size = manifest_.info.page_size;
  while (n > 0) {
    const uint32_t pgno = static_cast<uint32_t>(offset / page_size) + 1;
    const size_t in_page = static_cast<size_t>(offset % page_size);
    const size_t take = std::min(n, size_t(page_size) - in_page);
    if (pgno > manifest_.info.page_count) {
      std::memset(out, 0, n);  // past the end reads as zeros, like a short file
      return Status::OK();
    }
    if (take == page_size) {
      SNAPSHOT_RETURN_IF_ERROR(ReadPage(pgno, out));  // SQLite's usual read: a whole page
    } else {
      partial_page_.resize(page_size);
      SNAPSHOT_RETURN_IF_ERROR(ReadPage(pgno, reinterpret_cast<uint8_t*>(&partial_page_[0])));
      std::memcpy(out, partial_page_.data() + in_page, take);
    }
    out += take;
    offset += take;
    n -= take;
  }
  return Status::OK();
}

Status Store::Verify(uint64_t id) {
  std::vector<uint64_t> ids;
  if (id != 0) {
    ids.push_back(id);
    Manifest m;
    if (ReadManifest(id, &m).IsNotFound()) return Status::NotFound("no snapshot with id " + std::to_string(id));
  }
  std::vector<std::string> damaged;
  if (id == 0) SNAPSHOT_RETURN_IF_ERROR(AllSnapshotIds(&ids, &damaged));
  // Each frame is read once however many snapshots share it.
  std::map<std::pair<uint64_t, uint32_t>, std::string> frame_errors;
  std::map<uint64_t, std::string> pack_errors;
  std::string pages;
  FrameScratch scratch;
  for (uint64_t sid : ids) {
    Manifest m;
    Status s = ReadManifest(sid, &m);
    std::string problem;
    if (!s.ok()) problem = s.message();
    for (size_t i = 0; problem.empty() && i < m.extents.size(); i++) {
      const Extent& e = m.extents[i];
      if (e.pack == 0) continue;
      auto pe = pack_errors.find(e.pack);
      const PackReader* pack = nullptr;
      if (pe == pack_errors.end()) {
        Status ps = GetPack(e.pack, &pack);
        if (!ps.ok()) pe = pack_errors.emplace(e.pack, ps.message()).first;
      }
      if (pe != pack_errors.end()) {
        problem = pe->second;
        break;
      }
      if (pack->page_size() != m.info.page_size || uint64_t(e.first_index) + e.page_count > pack->page_count()) {
        problem = "refers to pages that pack " + std::to_string(e.pack) + " does not hold";
        break;
      }
      for (uint32_t f = pack->FrameOf(e.first_index); f <= pack->FrameOf(e.first_index + e.page_count - 1); f++) {
        auto key = std::make_pair(e.pack, f);
        auto fe = frame_errors.find(key);
        if (fe == frame_errors.end()) {
          Status fs = pack->ReadFrame(f, &pages, &scratch);
          fe = frame_errors.emplace(key, fs.ok() ? std::string() : fs.message()).first;
        }
        if (!fe->second.empty()) {
          problem = fe->second;
          break;
        }
      }
    }
    if (!problem.empty()) damaged.push_back("snapshot " + std::to_string(sid) + " (" + problem + ")");
  }
  if (damaged.empty()) return Status::OK();
  std::string msg = "snapshot verification failed: " + std::to_string(damaged.size()) + " damaged: ";
  for (size_t i = 0; i < damaged.size(); i++) msg += (i ? "; " : "") + damaged[i];
  return Status::Corruption(msg);
}

Status Store::StoredBytes(uint64_t* bytes) {
  std::vector<uint64_t> m, p;
  SNAPSHOT_RETURN_IF_ERROR(ScanIds(&m, &p));
  *bytes = 0;
  for (uint64_t id : m) {
    uint64_t n = 0;
    if (options_.env->GetFileSize(ManifestPath(id), &n).ok()) *bytes += n;
  }
  for (uint64_t id : p) {
    uint64_t n = 0;
    if (options_.env->GetFileSize(PackPath(id), &n).ok()) *bytes += n;
  }
  SNAPSHOT_RETURN_IF_ERROR(ScanBundleIds(&m));
  for (uint64_t id : m) {
    uint64_t n = 0;
    if (options_.env->GetFileSize(BundlePath(id), &n).ok()) *bytes += n;
  }
  return Status::OK();
}

}  // namespace snapshot
