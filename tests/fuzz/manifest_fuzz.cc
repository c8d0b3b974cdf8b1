// Fuzz target: the manifest parser.
//
// Input: a mode byte (kFixChecksums: recompute the trailing checksum after
// mutation), then the bytes of a manifest. Manifest::Decode must accept or
// refuse it; an accepted manifest must tile pages 1..page_count, look pages
// up consistently, and survive an Encode/Decode round trip unchanged.
#include "store/manifest.h"
#include "tests/fuzz/fuzz_util.h"

using namespace snapshot_fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & kFixChecksums) FixTrailingChecksum(&bytes);
  Manifest m;
  if (!Manifest::Decode(bytes, "fuzz.snap", &m).ok()) return 0;

  FUZZ_CHECK(m.info.label.size() <= kMaxLabelBytes, "label of %zu bytes", m.info.label.size());
  uint64_t next = 1;
  for (const Extent& e : m.extents) {
    FUZZ_CHECK(e.first_pgno == next && e.page_count > 0, "extents do not tile");
    next += e.page_count;
    // The first and last page of every extent, and one past it.
    for (uint32_t pgno : {e.first_pgno, uint32_t(e.first_pgno + (e.page_count - 1))}) {
      PageRef ref;
      FUZZ_CHECK(m.Lookup(pgno, &ref), "page %u not found", pgno);
      FUZZ_CHECK(ref.pack == e.pack, "page %u found in the wrong pack", pgno);
      if (e.pack != 0) FUZZ_CHECK(ref.index == e.first_index + (pgno - e.first_pgno), "page %u wrong index", pgno);
    }
  }
  FUZZ_CHECK(next == uint64_t(m.info.page_count) + 1, "extents do not cover the page count");
  PageRef ref;
  FUZZ_CHECK(!m.Lookup(0, &ref), "page 0 found");
  if (m.info.page_count < UINT32_MAX) FUZZ_CHECK(!m.Lookup(m.info.page_count + 1, &ref), "page past the end found");

  Manifest again;
  const Status s = Manifest::Decode(m.Encode(), "fuzz.snap", &again);
  FUZZ_CHECK(s.ok(), "re-encoded manifest does not decode: %s", s.message().c_str());
  FUZZ_CHECK(again.info.id == m.info.id && again.info.page_count == m.info.page_count &&
                 again.info.label == m.info.label && again.extents.size() == m.extents.size(),
             "round trip changed the manifest");
  return 0;
}
