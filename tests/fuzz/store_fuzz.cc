// Fuzz target: a whole store, one of whose files is the fuzz input.
//
// Input: a mode byte (kFixChecksums: recompute the replaced file's checksums
// after mutation), a byte choosing which file of the seed store (see
// MakeSmallStore: STORE, three manifests, three packs) the rest replaces.
// Then, as users would: list, verify and read every snapshot (shared lock);
// take a full snapshot and one built on the latest (exclusive); prune.
//
// What must hold besides "no crash, no hang, bounded memory":
//  - a snapshot that verifies reads back whole (verify proves the restore);
//  - a snapshot none of whose files was replaced verifies and reads back
//    exactly the pages it was taken of;
//  - no snapshot ever reads back a page other than the one stored for it: a
//    new snapshot reads back the pages given to it, or fails; and when the
//    damage is accidental (checksums not recomputed), it verifies;
//  - prune never harms a snapshot that verified before it.
#include <map>
#include <set>

#include "tests/fuzz/fuzz_util.h"

using namespace snapshot_fuzz;

namespace {

struct SeedFile {
  std::string rel;           // path inside the store
  std::string bytes;
  bool is_pack = false;
  uint64_t id = 0;
};

struct Seed {
  std::vector<SeedFile> files;
  std::map<uint64_t, std::set<uint64_t>> packs_of;  // snapshot id -> packs it needs
  std::map<uint64_t, int> version_of;                // snapshot id -> SeedPage version
};

const Seed& GetSeed() {
  static Seed seed = [] {
    Seed s;
    FixedEnv env;
    const std::string dir = ScratchDir() + "/template";
    RemoveTree(dir);
    Status st = MakeSmallStore(&env, dir);
    FUZZ_CHECK(st.ok(), "cannot make the seed store: %s", st.message().c_str());
    s.files.push_back({"STORE", ReadWholeFile(dir + "/STORE")});
    for (uint64_t id = 1; id <= 3; id++) {
      const std::string m = "snapshots/" + FileNameForId(id, ".snap");
      s.files.push_back({m, ReadWholeFile(dir + "/" + m), false, id});
      Manifest manifest;
      FUZZ_CHECK(Manifest::Decode(s.files.back().bytes, m, &manifest).ok(), "seed manifest");
      for (const Extent& e : manifest.extents) s.packs_of[id].insert(e.pack);
      s.version_of[id] = int(id - 1);
    }
    for (uint64_t id = 1; id <= 3; id++) {
      const std::string p = "packs/" + FileNameForId(id, ".pack");
      s.files.push_back({p, ReadWholeFile(dir + "/" + p), true, id});
      FUZZ_CHECK(!s.files.back().bytes.empty(), "seed pack %llu missing", (unsigned long long)id);
    }
    RemoveTree(dir);
    return s;
  }();
  return seed;
}

constexpr uint32_t kMaxPagesRead = 4096;

// Reads every page of snapshot `id` (up to kMaxPagesRead); OK with the
// pages, or the first error.
Status ReadImage(Store* store, uint64_t id, std::string* out) {
  std::unique_ptr<SnapshotImage> image;
  SNAPSHOT_RETURN_IF_ERROR(store->OpenImage(id, &image));
  out->clear();
  std::string page(image->info().page_size, '\0');
  for (uint32_t pgno = 1; pgno <= image->info().page_count && pgno <= kMaxPagesRead; pgno++) {
    SNAPSHOT_RETURN_IF_ERROR(image->ReadPage(pgno, reinterpret_cast<uint8_t*>(&page[0])));
    out->append(page);
  }
  return Status::OK();
}

std::string SeedImage(int version, uint32_t pages = kSeedPages) {
  std::string out;
  for (uint32_t pgno = 1; pgno <= pages; pgno++) out += version < 3 ? SeedPage(pgno, version) : SeedPage(pgno + 1, 2);
  return out;
}

// Takes a snapshot of SeedImage(3), every page given, on `base` if not null.
// Returns its id, or 0 when the store refused.
uint64_t TakeSnapshot(Store* store, const Manifest* base, bool accidental) {
  std::unique_ptr<SnapshotBuilder> b;
  if (!store->NewSnapshot(kSeedPageSize, kSeedPages, base, &b).ok()) return 0;
  const std::string image = SeedImage(3);
  for (uint32_t pgno = 1; pgno <= kSeedPages; pgno++) {
    if (!b->AddPage(pgno, reinterpret_cast<const uint8_t*>(image.data()) + (pgno - 1) * kSeedPageSize).ok()) return 0;
  }
  uint64_t id = 0;
  if (!b->Commit("fuzz", &id).ok()) return 0;
  std::string got;
  const Status read = ReadImage(store, id, &got);
  if (read.ok()) FUZZ_CHECK(got == image, "new snapshot %llu reads back other pages", (unsigned long long)id);
  // Built on nothing, a snapshot uses only frames that pass their checksum
  // and pages the checked index names: accidental damage cannot reach it.
  if (accidental && base == nullptr) {
    FUZZ_CHECK(read.ok(), "new full snapshot does not read back: %s", read.message().c_str());
    FUZZ_CHECK(store->Verify(id).ok(), "new full snapshot does not verify");
  }
  return id;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const Seed& seed = GetSeed();
  const bool accidental = !(data[0] & kFixChecksums);
  const size_t which = data[1] % seed.files.size();
  const SeedFile& replaced = seed.files[which];
  std::string bytes(reinterpret_cast<const char*>(data) + 2, size - 2);
  if (!accidental) {
    if (replaced.is_pack) {
      FixPackChecksums(&bytes);
    } else {
      FixTrailingChecksum(&bytes);
    }
  }

  const std::string dir = ScratchDir() + "/store";
  RemoveTree(dir);
  FUZZ_CHECK(mkdir(dir.c_str(), 0700) == 0 && mkdir((dir + "/packs").c_str(), 0700) == 0 &&
                 mkdir((dir + "/snapshots").c_str(), 0700) == 0,
             "mkdir %s", dir.c_str());
  for (size_t i = 0; i < seed.files.size(); i++) {
    FUZZ_CHECK(WriteFile(dir + "/" + seed.files[i].rel, i == which ? bytes : seed.files[i].bytes), "write");
  }
  // Snapshots none of whose files were replaced.
  std::set<uint64_t> untouched;
  for (const auto& [id, packs] : seed.packs_of) {
    const bool hit = which == 0 || (!replaced.is_pack && replaced.id == id) ||
                     (replaced.is_pack && packs.count(replaced.id));
    if (!hit) untouched.insert(id);
  }

  std::map<uint64_t, std::string> good;  // snapshots that verify -> their pages
  {
    StoreOptions o = SeedStoreOptions(Env::Default(), dir);
    std::unique_ptr<Store> store;
    if (Store::Open(o, &store).ok()) {
      std::vector<SnapshotInfo> list;
      FUZZ_CHECK(store->List(&list).ok(), "list");
      const bool all_ok = store->Verify(0).ok();
      for (const SnapshotInfo& info : list) {
        std::string pages;
        const Status verified = store->Verify(info.id);
        const Status read = ReadImage(store.get(), info.id, &pages);
        if (verified.ok()) {
          FUZZ_CHECK(read.ok(), "snapshot %llu verifies but does not read: %s", (unsigned long long)info.id,
                     read.message().c_str());
          good[info.id] = pages;
        } else {
          FUZZ_CHECK(!all_ok, "verify() passes but verify(%llu) fails", (unsigned long long)info.id);
        }
      }
      for (uint64_t id : untouched) {
        FUZZ_CHECK(good.count(id), "snapshot %llu does not depend on the damage but fails", (unsigned long long)id);
        FUZZ_CHECK(good[id] == SeedImage(seed.version_of.at(id)), "snapshot %llu reads other pages",
                   (unsigned long long)id);
      }
    } else {
      FUZZ_CHECK(which == 0, "only a damaged STORE may make the store unopenable");
    }
  }

  StoreOptions o = SeedStoreOptions(Env::Default(), dir);
  o.exclusive = true;
  std::unique_ptr<Store> store;
  if (!Store::Open(o, &store).ok()) return 0;
  const uint64_t full = TakeSnapshot(store.get(), nullptr, accidental);
  uint64_t latest;
  Manifest base;
  if (store->LatestId(&latest).ok() && store->ReadManifest(latest, &base).ok()) {
    TakeSnapshot(store.get(), &base, accidental);
  }
  if (full != 0) {
    std::string pages;
    if (store->Verify(full).ok() && ReadImage(store.get(), full, &pages).ok()) good[full] = pages;
  }
  // Whether or not prune finishes, what it did not delete must be intact.
  PruneResult pruned;
  store->Prune(2, -1, &pruned);
  for (uint64_t id : pruned.deleted) good.erase(id);
  for (const auto& [id, pages] : good) {
    std::string after;
    const Status read = ReadImage(store.get(), id, &after);
    FUZZ_CHECK(store->Verify(id).ok() && read.ok(), "prune damaged snapshot %llu", (unsigned long long)id);
    FUZZ_CHECK(after == pages, "prune changed snapshot %llu", (unsigned long long)id);
  }
  return 0;
}
