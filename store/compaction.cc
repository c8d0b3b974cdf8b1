// Compaction and prune: the parts of Store that rewrite what is stored.
//
// A snapshot every few seconds adds a pack and a manifest each time. This
// file keeps such a store small and fast to open:
//   - manifests are folded into bundles (store/bundle.h): many snapshots in
//     one compressed file, each record the manifest's own bytes;
//   - small packs are merged into one, holding only the pages some snapshot
//     still needs, the newest snapshot's pages first and in page order, so
//     that restoring it reads few frames;
//   - prune deletes snapshots and reclaims the space no snapshot needs.
// Bundles and merged packs are folded again as they accumulate, each into
// one of about four times its size, so a store holds a few dozen files
// however many snapshots it has, and each record or page is rewritten only
// a few times over its life.
//
// Compaction runs in rounds, each bounded by StoreOptions::compaction_limits
// (manifests rewritten, packs and bytes merged), because it holds the
// store's exclusive lock and every snapshot waits for that lock: a bundle
// stops growing once folding it would pass the limit, and packs whose merge
// would rewrite too many manifests stay as they are. Nobody compacts inside
// a snapshot's commit; see Store::CompactRound for who runs the rounds.
//
// Every change follows one order, so that a crash (or a failure) at any
// step leaves every snapshot readable and every pack it names in place:
//   1. new packs, then new bundles, written and made durable;
//   2. changed loose manifests replaced, each atomically;
//   3. the manifests and bundles these replace unlinked, snapshots/ synced;
//   4. packs no snapshot names any more unlinked, packs/ synced.
// Until step 3 a snapshot may be held twice (a loose manifest or an older
// bundle, and a new bundle): both copies are whole and name packs that
// exist. Readers prefer a loose manifest, then the bundle with the largest
// id; compaction drops the other copies. Readers that opened a snapshot
// before (a pinned attached snapshot, a restore) keep reading through the
// files they opened: unlinked files stay readable while open.
#include <algorithm>
#include <set>
#include <unordered_set>

#include "store/bundle.h"
#include "store/format.h"
#include "store/pin.h"
#include "store/retention.h"
#include "store/store.h"

namespace snapshot {
namespace {

// The newest manifests stay loose: the next snapshot builds on the newest,
// and a restore that fails takes back the snapshot it just took (Discard).
constexpr size_t kLooseManifestsKept = 2;
// A run of bundles or packs is folded into the newer ones when it is at
// most this many times their size.
constexpr uint64_t kFoldRatio = 4;
// Packs larger than this are never merged (their pages are a database's
// bulk, already in large frames; rewriting one inside a snapshot's commit
// held a 100 MB database's store for 37 s in bench/continuous.py); prune
// still rewrites them when mostly dead.
constexpr uint64_t kMaxMergedPackBytes = uint64_t(4) << 20;
// Restoring the newest snapshot decodes every frame that holds one of its
// pages. When those frames hold more than 17/16 of its pages, a round
// copies its pages out of the frames where they are fewer than 3/4 of the
// pages, sparsest first, into the pack it writes. A copy doubles a page
// only while older snapshots still name the old place: prune reclaims it
// when they go, and a merge that meets both copies keeps one.
constexpr uint64_t kSparseNum = 3, kSparseDen = 4;
constexpr uint64_t kFramesHeldNum = 17, kFramesHeldDen = 16;
// What a round decodes to copy pages, against the bytes it may merge.
constexpr uint64_t kCopyReadRatio = 4;

// Manifests a round rewrites, counted against CompactionLimits'
// max_records and max_record_bytes.
struct Rewrites {
  uint64_t records = 0, bytes = 0;
  Rewrites operator+(const Rewrites& o) const { return {records + o.records, bytes + o.bytes}; }
  bool Within(const StoreOptions::CompactionLimits& l) const {
    return records <= l.max_records && bytes <= l.max_record_bytes;
  }
};

Rewrites AllRecords(const BundleReader& r) {
  Rewrites w{r.records().size(), 0};
  for (const BundleRecord& rec : r.records()) w.bytes += rec.length;
  return w;
}

std::string IdList(const std::vector<uint64_t>& ids) {
  std::string out;
  for (uint64_t id : ids) out += (out.empty() ? "" : ", ") + std::to_string(id);
  return out.empty() ? "(none)" : out;
}

}  // namespace

// One snapshot, as the store holds it.
struct Store::Held {
  Manifest m;
  std::string bytes;    // as stored: the loose file or the bundle record
  uint64_t bundle = 0;  // where it was read from; 0: its loose manifest
  bool changed = false;  // m no longer matches bytes (it names a new pack)
};

struct Store::CompactionPlan {
  std::set<uint64_t> doomed;                       // snapshots to delete
  std::vector<std::vector<uint64_t>> pack_groups;  // each becomes one new pack
  std::set<uint64_t> dead_packs;                   // to unlink
  // A dead pack holding the store's largest id: unlinked only once this
  // compaction has written a file of a larger id (see NextId).
  uint64_t dead_largest = 0;
  std::set<uint64_t> fold_loose;                   // loose manifests into the new bundle
  std::set<uint64_t> fold_bundles;                 // bundles into the new bundle
  // Frames (pack, frame) whose pages the newest snapshot uses are copied
  // into the new pack, for the newest snapshot only.
  std::set<std::pair<uint64_t, uint32_t>> copy_frames;
  // Bundles rewritten as they are, to give them the list of the packs
  // their records name.
  std::set<uint64_t> relist;

  bool Empty() const {
    return doomed.empty() && pack_groups.empty() && dead_packs.empty() && dead_largest == 0 && fold_loose.empty() &&
           fold_bundles.empty() && copy_frames.empty() && relist.empty();
  }
};

std::string Store::BundlePath(uint64_t id) const {
  return JoinPath(JoinPath(options_.dir, kSnapshotDirName), FileNameForId(id, kBundleSuffix));
}

Status Store::ScanBundleIds(std::vector<uint64_t>* ids) {
  ids->clear();
  std::vector<std::string> names;
  Status s = options_.env->GetChildren(JoinPath(options_.dir, kSnapshotDirName), &names);
  if (s.IsNotFound()) return Status::OK();
  SNAPSHOT_RETURN_IF_ERROR(s);
  for (const std::string& n : names) {
    uint64_t id;
    if (ParseFileId(n, kBundleSuffix, &id)) ids->push_back(id);
  }
  std::sort(ids->begin(), ids->end());
  return Status::OK();
}

Status Store::GetBundle(uint64_t id, BundleReader** out) {
  auto it = bundles_.find(id);
  if (it == bundles_.end()) {
    std::unique_ptr<BundleReader> r;
    SNAPSHOT_RETURN_IF_ERROR(BundleReader::Open(options_.env, BundlePath(id), id, &r));
    it = bundles_.emplace(id, std::move(r)).first;
  }
  *out = it->second.get();
  return Status::OK();
}

Status Store::ReadBundledManifest(uint64_t id, Manifest* out, std::string* bytes) {
  std::vector<uint64_t> bundles;
  SNAPSHOT_RETURN_IF_ERROR(ScanBundleIds(&bundles));
  Status damaged;
  for (auto b = bundles.rbegin(); b != bundles.rend(); ++b) {  // the newest copy first
    BundleReader* r;
    Status s = GetBundle(*b, &r);
    if (!s.ok()) {
      if (damaged.ok()) damaged = s;
      continue;
    }
    const long i = r->Find(id);
    if (i < 0) continue;
    std::string record;
    SNAPSHOT_RETURN_IF_ERROR(r->Record(size_t(i), &record));
    const std::string name = FileNameForId(*b, kBundleSuffix) + " (snapshot " + std::to_string(id) + ")";
    SNAPSHOT_RETURN_IF_ERROR(Manifest::Decode(record, name, out));
    if (out->info.id != id) return Status::Corruption("snapshot bundle record for id " + std::to_string(id) + " names another id");
    if (bytes != nullptr) *bytes = std::move(record);
    return Status::OK();
  }
  // A damaged bundle may have held it: say so rather than "no such snapshot".
  if (!damaged.ok()) return damaged;
  return Status::NotFound("no snapshot with id " + std::to_string(id));
}

Status Store::List(std::vector<SnapshotInfo>* out) {
  out->clear();
  std::vector<uint64_t> ids, bundles;
  SNAPSHOT_RETURN_IF_ERROR(ScanIds(&ids, nullptr));
  SNAPSHOT_RETURN_IF_ERROR(ScanBundleIds(&bundles));
  std::unordered_set<uint64_t> seen;
  for (uint64_t id : ids) {
    Manifest m;
    // A damaged snapshot is not listed (and so never restored as "latest");
    // snapshot_verify() names it.
    if (ReadLooseManifest(id, &m).ok()) {
      out->push_back(m.info);
      seen.insert(id);
    }
  }
  // Only the heads of bundled manifests: listing decompresses no extents.
  std::string heads;
  for (auto b = bundles.rbegin(); b != bundles.rend(); ++b) {
    BundleReader* r;
    if (!GetBundle(*b, &r).ok() || !r->Heads(&heads).ok()) continue;  // snapshot_verify names it
    const std::string name = FileNameForId(*b, kBundleSuffix);
    out->reserve(out->size() + r->records().size());
    seen.reserve(seen.size() + r->records().size());
    for (const BundleRecord& rec : r->records()) {
      SnapshotInfo info;
      if (seen.count(rec.snapshot_id) ||
          !Manifest::DecodeHead(heads.data() + rec.head_offset, rec.head_length, name, &info).ok() ||
          info.id != rec.snapshot_id) {
        continue;
      }
      seen.insert(rec.snapshot_id);
      out->push_back(std::move(info));
    }
  }
  auto by_id = [](const SnapshotInfo& a, const SnapshotInfo& b) { return a.id < b.id; };
  if (!std::is_sorted(out->begin(), out->end(), by_id)) std::sort(out->begin(), out->end(), by_id);
  return Status::OK();
}

Status Store::AllSnapshotIds(std::vector<uint64_t>* ids, std::vector<std::string>* damaged_bundles) {
  std::vector<uint64_t> bundles;
  SNAPSHOT_RETURN_IF_ERROR(ScanIds(ids, nullptr));
  SNAPSHOT_RETURN_IF_ERROR(ScanBundleIds(&bundles));
  for (uint64_t b : bundles) {
    BundleReader* r;
    Status s = GetBundle(b, &r);
    if (!s.ok()) {
      if (damaged_bundles != nullptr) damaged_bundles->push_back("bundle " + std::to_string(b) + " (" + s.message() + ")");
      continue;
    }
    for (const BundleRecord& rec : r->records()) ids->push_back(rec.snapshot_id);
  }
  std::sort(ids->begin(), ids->end());
  ids->erase(std::unique(ids->begin(), ids->end()), ids->end());
  return Status::OK();
}

// Which copy of each bundled snapshot counts (docs/FORMAT.md section 5.2:
// its loose manifest, else the bundle of largest id that holds it), found
// from the bundles' record tables: no record is decompressed.
struct Store::Catalog {
  std::vector<uint64_t> bundles;                 // ascending
  std::map<uint64_t, std::vector<bool>> counts;  // bundle -> for each record, whether it is the copy that counts
  std::set<uint64_t> copies;                     // bundles holding a copy that does not count
  uint64_t newest = 0;                           // the largest snapshot id
  uint64_t newest_bundle = 0;                    // the bundle holding it; 0: loose (or none)
};

// Every loose manifest, as Held; any that cannot be read stops everything:
// which packs it needs is then unknown, so nothing may be deleted.
Status Store::LoadLoose(std::vector<Held>* held) {
  std::vector<uint64_t> ids;
  SNAPSHOT_RETURN_IF_ERROR(ScanIds(&ids, nullptr));
  for (uint64_t id : ids) {
    Held h;
    Status s = ReadLooseManifest(id, &h.m, &h.bytes);
    if (!s.ok()) return Status::Corruption("snapshot " + std::to_string(id) + " cannot be read (" + s.message() + ")");
    held->push_back(std::move(h));
  }
  return Status::OK();
}

Status Store::ReadCatalog(const std::vector<Held>& loose, Catalog* cat) {
  SNAPSHOT_RETURN_IF_ERROR(ScanBundleIds(&cat->bundles));
  std::unordered_set<uint64_t> seen;
  for (const Held& h : loose) {
    seen.insert(h.m.info.id);
    cat->newest = std::max(cat->newest, h.m.info.id);
  }
  for (auto b = cat->bundles.rbegin(); b != cat->bundles.rend(); ++b) {
    BundleReader* r;
    Status s = GetBundle(*b, &r);
    if (!s.ok()) return Status::Corruption("snapshot bundle " + std::to_string(*b) + " cannot be read (" + s.message() + ")");
    std::vector<bool>& counts = cat->counts[*b];
    counts.resize(r->records().size());
    for (size_t i = 0; i < counts.size(); i++) {
      const uint64_t id = r->records()[i].snapshot_id;
      counts[i] = seen.insert(id).second;
      if (!counts[i]) {
        cat->copies.insert(*b);  // an older copy, left by an interrupted compaction
      } else if (id > cat->newest) {
        cat->newest = id;
        cat->newest_bundle = *b;
      }
    }
  }
  return Status::OK();
}

// Decodes the records of bundle `b` that count, into *held.
Status Store::LoadBundle(uint64_t b, const Catalog& cat, std::vector<Held>* held) {
  BundleReader* r;
  SNAPSHOT_RETURN_IF_ERROR(GetBundle(b, &r));
  const std::vector<bool>& counts = cat.counts.at(b);
  for (size_t i = 0; i < r->records().size(); i++) {
    if (!counts[i]) continue;
    const uint64_t id = r->records()[i].snapshot_id;
    Held h;
    h.bundle = b;
    Status s = r->Record(i, &h.bytes);
    if (s.ok()) s = Manifest::Decode(h.bytes, FileNameForId(b, kBundleSuffix), &h.m);
    if (s.ok() && h.m.info.id != id) s = Status::Corruption("a record names another id");
    if (!s.ok()) return Status::Corruption("snapshot " + std::to_string(id) + " cannot be read (" + s.message() + ")");
    held->push_back(std::move(h));
  }
  return Status::OK();
}

void Store::SortHeld(std::vector<Held>* held) {
  std::sort(held->begin(), held->end(), [](const Held& a, const Held& b) { return a.m.info.id < b.m.info.id; });
}

// Every snapshot, oldest first.
Status Store::LoadAll(std::vector<Held>* all, std::set<uint64_t>* bundles_with_copies) {
  all->clear();
  Catalog cat;
  SNAPSHOT_RETURN_IF_ERROR(LoadLoose(all));
  SNAPSHOT_RETURN_IF_ERROR(ReadCatalog(*all, &cat));
  for (uint64_t b : cat.bundles) SNAPSHOT_RETURN_IF_ERROR(LoadBundle(b, cat, all));
  SortHeld(all);
  bundles_with_copies->insert(cat.copies.begin(), cat.copies.end());
  return Status::OK();
}

// The packs each bundle's loaded records name.
void Store::AddBundlePacks(const std::vector<Held>& held, std::map<uint64_t, std::set<uint64_t>>* bundle_packs) {
  for (const Held& h : held) {
    if (h.bundle == 0) continue;
    std::set<uint64_t>& packs = (*bundle_packs)[h.bundle];
    for (const Extent& e : h.m.extents) {
      if (e.pack != 0) packs.insert(e.pack);
    }
  }
}

// Which pages of which packs the snapshots need. Corruption when a snapshot
// names pages no valid pack holds.
Status Store::LivePages(const std::vector<Held>& held, const std::vector<uint64_t>& pack_ids,
                        std::map<uint64_t, std::vector<bool>>* live) {
  live->clear();
  for (uint64_t pid : pack_ids) {
    const PackReader* pack;
    if (GetPack(pid, &pack).ok()) (*live)[pid].assign(pack->page_count(), false);
  }
  for (const Held& h : held) {
    for (const Extent& e : h.m.extents) {
      if (e.pack == 0) continue;
      auto it = live->find(e.pack);
      const PackReader* pack;
      if (it == live->end() || !GetPack(e.pack, &pack).ok() || pack->page_size() != h.m.info.page_size ||
          uint64_t(e.first_index) + e.page_count > it->second.size()) {
        return Status::Corruption("snapshot " + std::to_string(h.m.info.id) + " refers to pages that pack " +
                                  std::to_string(e.pack) + " does not hold (see snapshot_verify)");
      }
      std::fill(it->second.begin() + e.first_index, it->second.begin() + e.first_index + e.page_count, true);
    }
  }
  return Status::OK();
}

// Chooses what a compaction folds: the loose manifests but the newest, with
// the bundles no more than kFoldRatio times what is folded so far (newest
// first); likewise the packs, from the newest down, except the newest
// snapshot's own pack (Discard may still need it). `bundle_packs` holds,
// for each bundle, the packs its records name (or more). With `relist`,
// a round with room to spare rewrites one bundle that does not list its
// packs, so that later rounds need not read it.
void Store::PlanFolding(const std::vector<Held>& held, const std::vector<uint64_t>& pack_ids,
                        const std::map<uint64_t, std::set<uint64_t>>& bundle_packs, uint64_t newest, bool relist,
                        CompactionPlan* plan) {
  std::vector<const Held*> loose;
  for (const Held& h : held) {
    if (h.bundle == 0 && !plan->doomed.count(h.m.info.id)) loose.push_back(&h);
  }
  const StoreOptions::CompactionLimits& limits = options_.compaction_limits;
  Rewrites rewritten;  // manifests this round rewrites, against the limits
  std::vector<uint64_t> bundle_ids;
  if (!ScanBundleIds(&bundle_ids).ok()) bundle_ids.clear();
  if (loose.size() > kLooseManifestsKept && limits.max_records > 0) {
    // The oldest first: a round that cannot take them all leaves the newer
    // ones for the next, and bundles stay in the order of their records.
    // At least one, however large, so that rounds make progress.
    Rewrites folded;
    for (size_t i = 0; i + kLooseManifestsKept < loose.size(); i++) {
      const Rewrites more = folded + Rewrites{1, loose[i]->bytes.size()};
      if (folded.records > 0 && !more.Within(limits)) break;
      plan->fold_loose.insert(loose[i]->m.info.id);
      folded = more;
    }
    // Newest records first: a bundle rewritten because a record changed
    // gets a new id but keeps its place among the others.
    std::vector<std::pair<uint64_t, BundleReader*>> bundles;  // (newest record, bundle)
    for (uint64_t b : bundle_ids) {
      BundleReader* r;
      if (GetBundle(b, &r).ok() && !r->records().empty()) bundles.emplace_back(r->records().back().snapshot_id, r);
    }
    std::sort(bundles.rbegin(), bundles.rend());
    for (const auto& [newest_record, r] : bundles) {
      const Rewrites more = folded + AllRecords(*r);
      if (r->records().size() > kFoldRatio * folded.records || !more.Within(limits)) break;
      plan->fold_bundles.insert(r->id());
      folded = more;
    }
    rewritten = folded;
  }

  std::set<uint64_t> taken(plan->dead_packs.begin(), plan->dead_packs.end());
  for (const auto& g : plan->pack_groups) taken.insert(g.begin(), g.end());
  std::vector<uint64_t> group;
  uint64_t bytes = 0;
  uint32_t page_size = 0;
  for (auto it = pack_ids.rbegin(); it != pack_ids.rend() && group.size() < limits.max_packs; ++it) {
    const uint64_t pid = *it;
    const PackReader* pack;
    if (pid == newest || taken.count(pid) || !GetPack(pid, &pack).ok()) continue;
    const uint64_t size = pack->file_size();
    if (size > kMaxMergedPackBytes || (page_size != 0 && pack->page_size() != page_size) ||
        (!group.empty() && size > kFoldRatio * bytes) || bytes + size > limits.max_pack_bytes) {
      break;
    }
    page_size = pack->page_size();
    group.push_back(pid);
    bytes += size;
  }

  // Merging rewrites every manifest that names a merged pack, and the
  // older a pack, the more (and the older, more bundled) snapshots name
  // it: keep the longest start of the group, which runs from the newest
  // pack down, whose rewrites stay within the limit.
  std::map<uint64_t, size_t> place;  // pack -> its place in group
  for (size_t i = 0; i < group.size(); i++) place[group[i]] = i;
  std::vector<std::set<uint64_t>> bundles_from(group.size());  // bundles first dirtied at each place
  std::vector<Rewrites> loose_from(group.size());
  auto first_place = [&](const auto& packs_named) {
    size_t first = group.size();
    for (uint64_t pack : packs_named) {
      auto p = place.find(pack);
      if (p != place.end()) first = std::min(first, p->second);
    }
    return first;
  };
  for (const Held& h : held) {
    const uint64_t id = h.m.info.id;
    if (h.bundle != 0 || plan->doomed.count(id) || plan->fold_loose.count(id)) continue;  // rewritten anyway
    std::vector<uint64_t> named;
    for (const Extent& e : h.m.extents) named.push_back(e.pack);
    const size_t first = first_place(named);
    if (first < group.size()) loose_from[first] = loose_from[first] + Rewrites{1, h.bytes.size()};
  }
  for (const auto& [b, packs_named] : bundle_packs) {
    if (plan->fold_bundles.count(b)) continue;
    const size_t first = first_place(packs_named);
    if (first < group.size()) bundles_from[first].insert(b);
  }
  std::set<uint64_t> dirty;
  size_t keep = 0;
  const Rewrites rewritten_by_folding = rewritten;
  for (size_t i = 0; i < group.size(); i++) {
    Rewrites more = loose_from[i];
    for (uint64_t b : bundles_from[i]) {
      BundleReader* r;
      if (!dirty.count(b) && GetBundle(b, &r).ok()) more = more + AllRecords(*r);
    }
    if (!(rewritten + more).Within(limits)) break;
    rewritten = rewritten + more;
    dirty.insert(bundles_from[i].begin(), bundles_from[i].end());
    keep = i + 1;
  }
  group.resize(keep);
  if (group.size() >= 2) {
    plan->pack_groups.push_back(group);
  } else {  // nothing merged: nothing rewritten for it
    dirty.clear();
    rewritten = rewritten_by_folding;
  }

  if (!relist) return;
  for (uint64_t b : bundle_ids) {
    BundleReader* r;
    if (plan->fold_bundles.count(b) || dirty.count(b) || !GetBundle(b, &r).ok() || r->has_pack_list()) continue;
    if ((rewritten + AllRecords(*r)).Within(limits)) plan->relist.insert(b);
    break;
  }
}

// Chooses frames whose pages the newest snapshot should have copied (see
// kSparseNum): a restore of it then decodes about the pages it needs,
// however long ago each was last changed. Only a loose newest manifest is
// rewritten so (one small file); packs merged this round are dense for it
// anyway.
void Store::PlanCopies(const Held& newest, CompactionPlan* plan) {
  const Manifest& m = newest.m;
  if (newest.bundle != 0 || plan->doomed.count(m.info.id)) return;
  std::set<uint64_t> merged;
  for (const auto& g : plan->pack_groups) merged.insert(g.begin(), g.end());
  struct Use {
    uint64_t pack;
    uint32_t frame;
    uint32_t needed;
    uint32_t pages;
  };
  std::map<std::pair<uint64_t, uint32_t>, Use> frames;
  uint64_t needed = 0, held = 0;
  for (const Extent& e : m.extents) {
    if (e.pack == 0) continue;
    needed += e.page_count;
    if (merged.count(e.pack)) {
      held += e.page_count;
      continue;
    }
    const PackReader* pack;
    // Damage is for snapshot_verify to name; copying is only an optimization.
    if (!GetPack(e.pack, &pack).ok() || pack->page_size() != m.info.page_size ||
        uint64_t(e.first_index) + e.page_count > pack->page_count()) {
      return;
    }
    for (uint32_t i = e.first_index, end = e.first_index + e.page_count; i < end;) {
      const uint32_t f = pack->FrameOf(i);
      const FrameEntry& fe = pack->frames()[f];
      const uint32_t n = std::min(end, fe.first_index + fe.page_count) - i;
      Use& u = frames.emplace(std::make_pair(e.pack, f), Use{e.pack, f, 0, fe.page_count}).first->second;
      u.needed += n;
      i += n;
    }
  }
  std::vector<Use> sparse;
  for (const auto& [key, u] : frames) {
    held += u.pages;
    // Its own pack is dense for it, and Discard may still need it whole.
    if (u.pack != m.info.id && u.needed * kSparseDen < u.pages * kSparseNum) sparse.push_back(u);
  }
  std::sort(sparse.begin(), sparse.end(),
            [](const Use& a, const Use& b) { return uint64_t(a.needed) * b.pages < uint64_t(b.needed) * a.pages; });
  const StoreOptions::CompactionLimits& limits = options_.compaction_limits;
  const uint64_t copy_limit = limits.max_copied_pages;
  uint64_t copied = 0, decoded = 0;
  for (const Use& u : sparse) {
    if (held * kFramesHeldDen <= needed * kFramesHeldNum) break;
    if (copied + u.needed > copy_limit || decoded + u.pages > kCopyReadRatio * copy_limit) break;
    plan->copy_frames.emplace(u.pack, u.frame);
    held -= u.pages - u.needed;
    copied += u.needed;
    decoded += u.pages;
  }
}

// Writes one pack of the live pages of the packs in `group`: first those
// the newest snapshot uses, in its page order (restoring it then reads them
// front to back), with its pages in `copy_frames` among them, then the
// others in their old order. Content already written is referenced, not
// written again. *remap gives each old (pack, index) of the group its new
// index; *copied each copied page's.
Status Store::WriteMergedPack(const std::vector<uint64_t>& group, const std::set<std::pair<uint64_t, uint32_t>>& copy_frames,
                              uint32_t page_size, const std::map<uint64_t, std::vector<bool>>& live,
                              const Manifest& newest, uint64_t* new_id, std::map<uint64_t, std::vector<uint32_t>>* remap,
                              std::map<std::pair<uint64_t, uint32_t>, uint32_t>* copied) {
  std::map<uint64_t, const PackReader*> packs;  // the group's and the copied frames'
  for (uint64_t pid : group) {
    SNAPSHOT_RETURN_IF_ERROR(GetPack(pid, &packs[pid]));
    (*remap)[pid].assign(packs[pid]->page_count(), UINT32_MAX);
  }
  for (const auto& [pid, f] : copy_frames) SNAPSHOT_RETURN_IF_ERROR(GetPack(pid, &packs[pid]));
  SNAPSHOT_RETURN_IF_ERROR(NextId(new_id));
  std::unique_ptr<PackWriter> writer;
  SNAPSHOT_RETURN_IF_ERROR(PackWriter::Create(options_.env, JoinPath(options_.dir, kPackDirName), *new_id, page_size,
                                              options_.file_mode, options_.compress, &writer));
  // A few decoded frames: the newest snapshot's pages jump between packs.
  struct Decoded {
    std::string pages;
    std::vector<PageHash> hashes;
    uint64_t last_use = 0;
  };
  std::map<std::pair<uint64_t, uint32_t>, Decoded> frames;
  uint64_t clock = 0;
  FrameScratch scratch;
  PageIndex written;  // content -> its index in the new pack
  auto add = [&](const PackReader* pack, uint32_t index, uint32_t* slot) -> Status {
    if (*slot != UINT32_MAX) return Status::OK();
    const uint32_t f = pack->FrameOf(index);
    auto it = frames.find({pack->id(), f});
    if (it == frames.end()) {
      if (frames.size() >= 16) {
        frames.erase(std::min_element(frames.begin(), frames.end(), [](const auto& a, const auto& b) {
          return a.second.last_use < b.second.last_use;
        }));
      }
      it = frames.emplace(std::make_pair(pack->id(), f), Decoded()).first;
      // Every page is checked against its hash here, so equal hashes below
      // are equal content.
      SNAPSHOT_RETURN_IF_ERROR(pack->ReadFrame(f, &it->second.pages, &scratch));
      SNAPSHOT_RETURN_IF_ERROR(pack->FrameHashes(f, &it->second.hashes));
    }
    it->second.last_use = ++clock;
    const uint32_t at = index - pack->frames()[f].first_index;
    const PageHash& hash = it->second.hashes[at];
    if (const PageRef* there = written.Find(hash)) {
      *slot = there->index;
      return Status::OK();
    }
    *slot = writer->page_count();
    written.Insert(hash, PageRef{*new_id, *slot});
    return writer->AddPage(reinterpret_cast<const uint8_t*>(it->second.pages.data()) + size_t(at) * page_size, hash);
  };
  for (const Extent& e : newest.extents) {
    auto p = packs.find(e.pack);
    if (p == packs.end()) continue;
    const bool in_group = remap->count(e.pack) != 0;
    for (uint32_t i = e.first_index; i < e.first_index + e.page_count; i++) {
      if (in_group) {
        SNAPSHOT_RETURN_IF_ERROR(add(p->second, i, &(*remap)[e.pack][i]));
      } else if (copy_frames.count({e.pack, p->second->FrameOf(i)})) {
        SNAPSHOT_RETURN_IF_ERROR(add(p->second, i, &copied->emplace(std::make_pair(e.pack, i), UINT32_MAX).first->second));
      }
    }
  }
  SNAPSHOT_RETURN_IF_ERROR(writer->EndFrame());  // no frame mixes the newest's pages with others
  for (uint64_t pid : group) {
    const std::vector<bool>& bits = live.at(pid);
    std::vector<uint32_t>& map = (*remap)[pid];
    for (uint32_t i = 0; i < bits.size(); i++) {
      if (bits[i]) SNAPSHOT_RETURN_IF_ERROR(add(packs[pid], i, &map[i]));
    }
  }
  uint64_t bytes;
  return writer->Finish(&bytes);
}

Status Store::ApplyPlan(std::vector<Held>* held, const std::map<uint64_t, std::vector<bool>>& live,
                        const std::set<uint64_t>& bundles_with_copies, const CompactionPlan& plan) {
  Env* env = options_.env;
  // 1. New packs, and every snapshot pointed at them (in memory).
  std::map<uint64_t, std::vector<uint32_t>> remap;  // old pack -> new index of each old index
  std::map<uint64_t, uint64_t> new_pack_of;
  const Manifest* newest = nullptr;
  for (const Held& h : *held) {
    if (!plan.doomed.count(h.m.info.id)) newest = &h.m;
  }
  // The newest snapshot's copied pages go into a pack of their page size:
  // the last group's, or one of their own.
  std::vector<std::vector<uint64_t>> groups = plan.pack_groups;
  size_t copy_host = groups.size();
  if (!plan.copy_frames.empty() && newest != nullptr) {
    const PackReader* pack;
    if (!groups.empty() && GetPack(groups.back()[0], &pack).ok() && pack->page_size() == newest->info.page_size) {
      copy_host = groups.size() - 1;
    } else {
      groups.emplace_back();
    }
  }
  std::map<std::pair<uint64_t, uint32_t>, uint32_t> copied;  // (old pack, index) -> index in copy_pack
  std::set<uint64_t> copied_from;
  uint64_t copy_pack = 0;
  for (size_t g = 0; g < groups.size(); g++) {
    uint64_t new_id = 0;
    std::map<uint64_t, std::vector<uint32_t>> part;
    const bool host = g == copy_host;
    uint32_t page_size = newest != nullptr ? newest->info.page_size : 0;
    if (!groups[g].empty()) {
      const PackReader* pack;
      SNAPSHOT_RETURN_IF_ERROR(GetPack(groups[g][0], &pack));
      page_size = pack->page_size();
    }
    static const Manifest kNoSnapshot;
    SNAPSHOT_RETURN_IF_ERROR(WriteMergedPack(groups[g], host ? plan.copy_frames : std::set<std::pair<uint64_t, uint32_t>>(),
                                             page_size, live, newest != nullptr ? *newest : kNoSnapshot, &new_id, &part,
                                             &copied));
    if (host) copy_pack = new_id;
    for (auto& [pid, map] : part) {
      new_pack_of[pid] = new_id;
      remap[pid] = std::move(map);
    }
  }
  for (const auto& [where, index] : copied) copied_from.insert(where.first);
  for (Held& h : *held) {
    if (plan.doomed.count(h.m.info.id)) continue;
    const bool gets_copies = &h.m == newest && !copied.empty();
    bool uses = false;
    for (const Extent& e : h.m.extents) uses = uses || new_pack_of.count(e.pack) || (gets_copies && copied_from.count(e.pack));
    if (!uses) continue;
    // Extent by extent, page by page only within a rewritten or copied
    // pack: a manifest's page count (up to 2^32, in zero pages) bounds
    // nothing here.
    std::vector<Extent> old_extents;
    old_extents.swap(h.m.extents);
    for (const Extent& e : old_extents) {
      auto np = new_pack_of.find(e.pack);
      if (np != new_pack_of.end()) {
        const std::vector<uint32_t>& map = remap[e.pack];
        for (uint32_t i = 0; i < e.page_count; i++) {
          h.m.AppendExtent(Extent{e.first_pgno + i, 1, np->second, map[e.first_index + i]});
        }
      } else if (gets_copies && copied_from.count(e.pack)) {
        for (uint32_t i = 0; i < e.page_count; i++) {
          auto c = copied.find({e.pack, e.first_index + i});
          h.m.AppendExtent(c == copied.end() ? Extent{e.first_pgno + i, 1, e.pack, e.first_index + i}
                                             : Extent{e.first_pgno + i, 1, copy_pack, c->second});
        }
      } else {
        h.m.AppendExtent(e);
      }
    }
    h.changed = true;
  }

  // 2. New bundles: the folded manifests in one; every other bundle that
  // loses a record or holds a changed one (or an older copy), rewritten.
  std::set<uint64_t> dirty(bundles_with_copies.begin(), bundles_with_copies.end());
  dirty.insert(plan.relist.begin(), plan.relist.end());
  for (const Held& h : *held) {
    if (h.bundle != 0 && (h.changed || plan.doomed.count(h.m.info.id))) dirty.insert(h.bundle);
  }
  for (uint64_t b : plan.fold_bundles) dirty.erase(b);
  std::map<uint64_t, BundleWriter> writers;  // key: a dirty bundle, or 0 for the fold
  std::set<uint64_t> replaced_loose;
  for (const Held& h : *held) {
    if (plan.doomed.count(h.m.info.id)) continue;
    uint64_t key;
    if ((h.bundle == 0 && plan.fold_loose.count(h.m.info.id)) || plan.fold_bundles.count(h.bundle)) {
      key = 0;
      if (h.bundle == 0) replaced_loose.insert(h.m.info.id);
    } else if (h.bundle != 0 && dirty.count(h.bundle)) {
      key = h.bundle;
    } else {
      continue;
    }
    SNAPSHOT_RETURN_IF_ERROR(writers[key].Add(h.m.info.id, h.changed ? h.m.Encode() : h.bytes, h.m.extents.size()));
  }
  bool wrote = !groups.empty();
  for (auto& [key, writer] : writers) {
    if (writer.records() == 0) continue;
    wrote = true;
    uint64_t id, bytes;
    SNAPSHOT_RETURN_IF_ERROR(NextId(&id));
    SNAPSHOT_RETURN_IF_ERROR(writer.Publish(env, BundlePath(id), id, options_.file_mode, &bytes));
  }

  // 3. Loose manifests that stay loose but name a new pack.
  for (const Held& h : *held) {
    if (h.bundle == 0 && h.changed && !replaced_loose.count(h.m.info.id) && !plan.doomed.count(h.m.info.id)) {
      SNAPSHOT_RETURN_IF_ERROR(WriteManifest(h.m));
    }
  }

  // 4. What the new files replace; snapshots/ synced before any pack goes,
  // so that no manifest naming it can come back after a power cut.
  bool removed = false;
  for (uint64_t id : replaced_loose) {
    SNAPSHOT_RETURN_IF_ERROR(env->RemoveFile(ManifestPath(id)));
    removed = true;
  }
  std::set<uint64_t> gone_bundles(dirty.begin(), dirty.end());
  gone_bundles.insert(plan.fold_bundles.begin(), plan.fold_bundles.end());
  for (uint64_t b : gone_bundles) {
    bundles_.erase(b);
    SNAPSHOT_RETURN_IF_ERROR(env->RemoveFile(BundlePath(b)));
    removed = true;
  }
  if (removed) SNAPSHOT_RETURN_IF_ERROR(env->SyncDir(JoinPath(options_.dir, kSnapshotDirName)));

  // 5. Packs no snapshot names any more.
  std::set<uint64_t> gone_packs(plan.dead_packs.begin(), plan.dead_packs.end());
  for (const auto& [pid, unused] : new_pack_of) gone_packs.insert(pid);
  if (plan.dead_largest != 0 && wrote) gone_packs.insert(plan.dead_largest);
  for (uint64_t pid : gone_packs) {
    ForgetPack(pid);
    SNAPSHOT_RETURN_IF_ERROR(env->RemoveFile(PackPath(pid)));
  }
  dedup_loaded_ = false;
  dedup_.Clear();
  frame_sound_.clear();
  return gone_packs.empty() ? Status::OK() : env->SyncDir(JoinPath(options_.dir, kPackDirName));
}

// A round reads what it may rewrite, not the whole store: the loose
// manifests, every bundle's record table and pack list, and the records of
// the bundles it rewrites (folded, naming a merged pack, holding a copy, or
// listing no packs: written before bundles had lists).
Status Store::CompactRound(bool* did_work) {
  *did_work = false;
  if (!options_.exclusive) return Status::InvalidArgument("internal: snapshot store opened read-only");
  std::vector<Held> held;
  Catalog cat;
  SNAPSHOT_RETURN_IF_ERROR(LoadLoose(&held));
  SNAPSHOT_RETURN_IF_ERROR(ReadCatalog(held, &cat));
  std::set<uint64_t> loaded;
  auto load = [&](uint64_t b) { return loaded.insert(b).second ? LoadBundle(b, cat, &held) : Status::OK(); };
  std::map<uint64_t, std::set<uint64_t>> bundle_packs;
  for (uint64_t b : cat.bundles) {
    BundleReader* r;
    SNAPSHOT_RETURN_IF_ERROR(GetBundle(b, &r));
    if (!r->has_pack_list()) {
      SNAPSHOT_RETURN_IF_ERROR(load(b));
      continue;
    }
    std::vector<uint64_t> packs;
    Status s = r->PackList(&packs);
    if (!s.ok()) return Status::Corruption("snapshot bundle " + std::to_string(b) + " cannot be read (" + s.message() + ")");
    bundle_packs[b].insert(packs.begin(), packs.end());
  }
  for (uint64_t b : cat.copies) SNAPSHOT_RETURN_IF_ERROR(load(b));
  if (cat.newest_bundle != 0) SNAPSHOT_RETURN_IF_ERROR(load(cat.newest_bundle));
  AddBundlePacks(held, &bundle_packs);
  std::vector<uint64_t> pack_ids;
  SNAPSHOT_RETURN_IF_ERROR(ScanIds(nullptr, &pack_ids));
  CompactionPlan plan;
  PlanFolding(held, pack_ids, bundle_packs, cat.newest, /*relist=*/true, &plan);
  // Every manifest that names a merged pack is read: the merged pack keeps
  // exactly the pages they name.
  std::set<uint64_t> merged;
  for (const auto& g : plan.pack_groups) merged.insert(g.begin(), g.end());
  for (const auto& [b, packs] : bundle_packs) {
    bool names_merged = plan.fold_bundles.count(b) || plan.relist.count(b);
    for (uint64_t p : packs) names_merged = names_merged || merged.count(p);
    if (names_merged) SNAPSHOT_RETURN_IF_ERROR(load(b));
  }
  SortHeld(&held);
  std::map<uint64_t, std::vector<bool>> live;  // right for the merged packs only
  SNAPSHOT_RETURN_IF_ERROR(LivePages(held, pack_ids, &live));
  if (!held.empty() && held.back().m.info.id == cat.newest) PlanCopies(held.back(), &plan);
  if (plan.Empty() && cat.copies.empty()) return Status::OK();
  *did_work = true;
  return ApplyPlan(&held, live, cat.copies, plan);
}

Status Store::CountFiles(size_t* n) {
  std::vector<uint64_t> m, p, b;
  SNAPSHOT_RETURN_IF_ERROR(ScanIds(&m, &p));
  SNAPSHOT_RETURN_IF_ERROR(ScanBundleIds(&b));
  *n = m.size() + p.size() + b.size();
  return Status::OK();
}

bool Store::MayNeedCompaction(Env* env, const std::string& dir, size_t threshold) {
  if (threshold == 0) return false;
  size_t files = 0;
  for (const char* sub : {kSnapshotDirName, kPackDirName}) {
    std::vector<std::string> names;
    if (env->GetChildren(JoinPath(dir, sub), &names).ok()) files += names.size();
  }
  return files > threshold;
}

Status Store::CompactIfNeeded(bool* more) {
  *more = false;
  const size_t threshold = options_.compaction_file_threshold;
  size_t files = 0;
  if (threshold == 0) return Status::OK();
  SNAPSHOT_RETURN_IF_ERROR(CountFiles(&files));
  if (files <= threshold) return Status::OK();
  bool did_work = false;
  SNAPSHOT_RETURN_IF_ERROR(CompactRound(&did_work));
  SNAPSHOT_RETURN_IF_ERROR(CountFiles(&files));
  *more = did_work && files > threshold;
  return Status::OK();
}

// Each round that works removes a file, a loose manifest or a copy left
// by an interrupted round, so the rounds end.
Status Store::Compact() {
  for (;;) {
    bool did_work = false;
    SNAPSHOT_RETURN_IF_ERROR(CompactRound(&did_work));
    if (!did_work) return Status::OK();
  }
}

Status Store::Prune(int64_t keep_last, int64_t keep_ms, PruneResult* result) {
  if (!options_.exclusive) return Status::InvalidArgument("internal: snapshot store opened read-only");
  if (keep_last < 0 && keep_ms < 0) {
    return Status::InvalidArgument("snapshot_prune needs a rule: how many snapshots to keep, and/or for how many days");
  }
  return PruneExcept(
      [&](const std::vector<SnapshotInfo>& newest_first, int64_t now, std::vector<bool>* keep) {
        for (size_t rank = 0; rank < newest_first.size(); rank++) {  // rank 0: the newest
          (*keep)[rank] = rank == 0 || (keep_last >= 0 && int64_t(rank) < keep_last) ||
                          (keep_ms >= 0 && now - newest_first[rank].created_ms <= keep_ms);
        }
      },
      result);
}

Status Store::Prune(const RetentionPolicy& policy, PruneResult* result) {
  if (!options_.exclusive) return Status::InvalidArgument("internal: snapshot store opened read-only");
  return PruneExcept(
      [&](const std::vector<SnapshotInfo>& newest_first, int64_t now, std::vector<bool>* keep) {
        const std::vector<RetentionDecision> d = SelectRetained(newest_first, policy, now);
        for (size_t i = 0; i < d.size(); i++) (*keep)[i] = d[i].keep;
      },
      result);
}

Status Store::PruneExcept(const KeepSelector& select, PruneResult* result) {
  *result = PruneResult();
  uint64_t bytes_before = 0, bytes_after = 0;
  SNAPSHOT_RETURN_IF_ERROR(StoredBytes(&bytes_before));
  std::vector<Held> held;
  std::set<uint64_t> copies;
  Status loaded = LoadAll(&held, &copies);
  if (!loaded.ok()) return Status::Corruption("prune changed nothing: " + loaded.message());
  std::vector<uint64_t> ids, pack_ids, bundle_ids;
  SNAPSHOT_RETURN_IF_ERROR(ScanIds(&ids, &pack_ids));
  SNAPSHOT_RETURN_IF_ERROR(ScanBundleIds(&bundle_ids));
  // The file with the largest id is never deleted, so that no id is ever
  // allocated twice (see NextId): the newest snapshot is always kept (and
  // a bundle holding it is only replaced by one of a larger id), and a pack
  // holding the largest id stays until a larger id exists.
  uint64_t largest = 0;
  for (const auto* v : {&ids, &pack_ids, &bundle_ids}) largest = std::max(largest, v->empty() ? 0 : v->back());

  std::vector<SnapshotInfo> infos;  // newest first
  for (auto it = held.rbegin(); it != held.rend(); ++it) infos.push_back(it->m.info);
  std::vector<bool> keep(infos.size(), false);
  select(infos, options_.env->NowMillis(), &keep);
  if (!keep.empty()) keep[0] = true;  // the largest id (see above), whatever the selector says
  CompactionPlan plan;
  for (size_t i = 0; i < infos.size(); i++) {
    // An attached snapshot stays while it is read (store/pin.h); a later
    // prune deletes it if the rule still says so.
    bool pinned = false;
    if (!keep[i]) SNAPSHOT_RETURN_IF_ERROR(IsSnapshotPinned(options_.env, options_.dir, infos[i].id, &pinned));
    if (pinned) result->pinned.push_back(infos[i].id);
    if (!keep[i] && !pinned) plan.doomed.insert(infos[i].id);
  }
  // Loose manifests go first, as they always have; bundled ones go when
  // their bundle is rewritten below.
  for (const Held& h : held) {
    if (h.bundle == 0 && plan.doomed.count(h.m.info.id)) {
      SNAPSHOT_RETURN_IF_ERROR(options_.env->RemoveFile(ManifestPath(h.m.info.id)));
    }
  }
  SNAPSHOT_RETURN_IF_ERROR(options_.env->SyncDir(JoinPath(options_.dir, kSnapshotDirName)));
  result->deleted.assign(plan.doomed.begin(), plan.doomed.end());

  std::vector<Held> kept;
  for (Held& h : held) {
    if (plan.doomed.count(h.m.info.id)) {
      if (h.bundle != 0) copies.insert(h.bundle);  // rewritten without it
    } else {
      kept.push_back(std::move(h));
    }
  }
  std::map<uint64_t, std::vector<bool>> live;
  Status s = LivePages(kept, pack_ids, &live);
  if (!s.ok()) {
    return Status::Corruption("prune deleted snapshots " + IdList(result->deleted) + " but reclaimed no space: " +
                              s.message());
  }
  for (const auto& [pid, bits] : live) {
    const uint64_t n_live = static_cast<uint64_t>(std::count(bits.begin(), bits.end(), true));
    if (n_live == 0) {
      if (pid != largest) {
        plan.dead_packs.insert(pid);
      } else {
        plan.dead_largest = pid;
      }
    } else if (n_live * 4 < uint64_t(bits.size()) * 3) {
      // Over a quarter of the pack is dead: rewrite it. Below that, the
      // rewrite would cost more I/O than the space is worth.
      plan.pack_groups.push_back({pid});
    }
  }
  // A prune is also the moment to fold what has piled up.
  const size_t threshold = options_.compaction_file_threshold;
  if (threshold != 0 && ids.size() + pack_ids.size() + bundle_ids.size() > threshold) {
    std::map<uint64_t, std::set<uint64_t>> bundle_packs;
    AddBundlePacks(kept, &bundle_packs);
    PlanFolding(kept, pack_ids, bundle_packs, kept.empty() ? 0 : kept.back().m.info.id, /*relist=*/false, &plan);
  }
  if (!kept.empty()) PlanCopies(kept.back(), &plan);
  SNAPSHOT_RETURN_IF_ERROR(ApplyPlan(&kept, live, copies, plan));
  SNAPSHOT_RETURN_IF_ERROR(StoredBytes(&bytes_after));
  if (bytes_before > bytes_after) result->bytes_reclaimed = bytes_before - bytes_after;
  return Status::OK();
}

}  // namespace snapshot
