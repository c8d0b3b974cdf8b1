// Fuzz target: the manifest bundle reader (store/bundle.h).
//
// Input: a mode byte (kFixChecksums: recompute the frame checksums and the
// header-and-tables checksum after mutation), then the bytes of a bundle,
// opened as bundle kFuzzBundleId. Then, as the store reads one: the heads
// (each decoded as Store::List does), every record in order, then in
// reverse (each frame decoded again, as the reader's one-frame cache
// switches), each decoded as a manifest; and the pack list, when flagged.
//
// What must hold besides "no crash, no hang, bounded memory": an accepted
// bundle's records ascend and each is found by its id; heads fill frame 0
// and every record's head lies in it; a record reads as exactly its length.
#include "store/manifest.h"
#include "tests/fuzz/fuzz_util.h"

using namespace snapshot_fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & kFixChecksums) FixBundleChecksums(&bytes);
  const std::string path = ScratchDir() + "/" + FileNameForId(kFuzzBundleId, kBundleSuffix);
  FUZZ_CHECK(WriteFile(path, bytes), "cannot write %s", path.c_str());
  std::unique_ptr<BundleReader> r;
  if (!BundleReader::Open(Env::Default(), path, kFuzzBundleId, &r).ok()) return 0;

  const std::vector<BundleRecord>& records = r->records();
  for (size_t i = 0; i < records.size(); i++) {
    FUZZ_CHECK(i == 0 || records[i].snapshot_id > records[i - 1].snapshot_id, "record ids do not ascend");
    FUZZ_CHECK(r->Find(records[i].snapshot_id) == long(i), "record %zu not found by its id", i);
    FUZZ_CHECK(records[i].frame >= 1 && records[i].head_length <= records[i].length, "record %zu table", i);
  }
  std::string heads;
  if (r->Heads(&heads).ok()) {
    uint64_t end = 0;
    for (const BundleRecord& rec : records) {
      FUZZ_CHECK(rec.head_offset == end, "heads not back to back");
      end += rec.head_length;
    }
    FUZZ_CHECK(end == heads.size(), "heads (%zu bytes) do not fill frame 0 (%llu)", heads.size(), (unsigned long long)end);
    // As Store::List reads them.
    for (const BundleRecord& rec : records) {
      SnapshotInfo info;
      (void)Manifest::DecodeHead(heads.data() + rec.head_offset, rec.head_length, "fuzz.bundle", &info);
    }
  }
  std::vector<uint64_t> packs;
  if (r->has_pack_list() && r->PackList(&packs).ok()) {
    for (size_t i = 0; i < packs.size(); i++) {
      FUZZ_CHECK(packs[i] != 0 && (i == 0 || packs[i] > packs[i - 1]), "pack list entry %zu accepted out of order", i);
    }
  }
  for (int pass = 0; pass < 2; pass++) {
    for (size_t k = 0; k < records.size(); k++) {
      const size_t i = pass == 0 ? k : records.size() - 1 - k;
      std::string record;
      if (!r->Record(i, &record).ok()) continue;
      FUZZ_CHECK(record.size() == records[i].length, "record %zu read as %zu bytes, not %u", i, record.size(), records[i].length);
      Manifest m;
      (void)Manifest::Decode(record, "fuzz.bundle", &m);
    }
  }
  return 0;
}
