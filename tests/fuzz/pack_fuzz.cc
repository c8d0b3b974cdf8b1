// Fuzz target: one pack file, through both of its readers.
//
// Input: a mode byte (kFixChecksums: recompute the pack's checksums after
// mutation), then the bytes of packs/0000000001.pack. PackReader::Open must
// accept or refuse it; an accepted pack must read back, frame by frame, only
// pages that pass their hash (or refuse the frame), and PackHashPeek must
// agree with PackReader's index on every page it reads.
#include "tests/fuzz/fuzz_util.h"

using namespace snapshot_fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string pack(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & kFixChecksums) FixPackChecksums(&pack);
  const std::string path = ScratchDir() + "/0000000001.pack";
  FUZZ_CHECK(WriteFile(path, pack), "cannot write %s", path.c_str());
  Env* env = Env::Default();

  std::unique_ptr<PackReader> reader;
  const Status open = PackReader::Open(env, path, 1, FixedSecret(), &reader);
  std::unique_ptr<PackHashPeek> peek;
  const Status peek_open = PackHashPeek::Open(env, path, 1, &peek);
  // The peek checks less (not the index checksum), never more.
  if (open.ok()) FUZZ_CHECK(peek_open.ok(), "PackReader accepts what PackHashPeek refuses: %s", peek_open.message().c_str());
  if (peek_open.ok()) {
    for (uint32_t i = 0; i < peek->page_count() && i < 4096; i++) {
      PageHash h;
      FUZZ_CHECK(peek->Hash(i, &h).ok(), "peek of page %u failed", i);
      if (open.ok()) {
        std::vector<PageHash> frame_hashes;
        const uint32_t f = reader->FrameOf(i);
        FUZZ_CHECK(reader->FrameHashes(f, &frame_hashes).ok(), "frame %u's hashes do not read", f);
        FUZZ_CHECK(h == frame_hashes[i - reader->frames()[f].first_index], "peek and index disagree on page %u", i);
      }
    }
    PageHash h;
    FUZZ_CHECK(!peek->Hash(peek->page_count(), &h).ok(), "peek past the end succeeded");
  }
  if (!open.ok()) return 0;

  FUZZ_CHECK(reader->page_size() >= 512 && reader->page_size() <= 65536, "page size %u", reader->page_size());
  const auto& frames = reader->frames();
  std::string pages;
  FrameScratch scratch;
  // Twice: with each frame's hashes read when it is decoded, then with the
  // whole hash table loaded; both must refuse what fails its hash.
  for (int loaded = 0; loaded < 2; loaded++) {
    if (loaded) FUZZ_CHECK(reader->LoadHashes().ok(), "an opened pack's hash table does not load");
    for (uint32_t f = 0; f < frames.size(); f++) {
      const FrameEntry& e = frames[f];
      FUZZ_CHECK(uint64_t(e.page_count) * reader->page_size() <= kMaxFrameBytes, "frame %u too big", f);
      for (uint32_t i = 0; i < e.page_count; i++) FUZZ_CHECK(reader->FrameOf(e.first_index + i) == f, "FrameOf");
      const Status checked = reader->CheckFrame(f);
      const Status read = reader->ReadFrame(f, &pages, &scratch);
      std::vector<PageHash> hashes;
      FUZZ_CHECK(reader->FrameHashes(f, &hashes).ok(), "frame %u's hashes do not read", f);
      if (loaded) {
        for (uint32_t i = 0; i < e.page_count; i++) FUZZ_CHECK(hashes[i] == reader->hash(e.first_index + i), "hashes");
      }
      if (read.ok()) {
        FUZZ_CHECK(checked.ok(), "a frame that reads fails its checksum");
        FUZZ_CHECK(pages.size() == size_t(e.page_count) * reader->page_size(), "frame %u has the wrong size", f);
        for (uint32_t i = 0; i < e.page_count; i++) {
          const uint8_t* page = reinterpret_cast<const uint8_t*>(pages.data()) + size_t(i) * reader->page_size();
          FUZZ_CHECK(HashPage(FixedSecret(), page, reader->page_size()) == hashes[i],
                     "frame %u returned page %u that fails its hash", f, i);
        }
      }
      // Only as far as its first page (an attached snapshot's point query):
      // never more than the frame, never a page that fails its hash, and
      // no success where the whole frame's checksum fails.
      if (e.page_count > 0) {
        std::string prefix;
        const Status part = reader->ReadFramePrefix(f, 0, &prefix, &scratch);
        if (part.ok()) {
          FUZZ_CHECK(checked.ok(), "a frame read in part fails its checksum");
          FUZZ_CHECK(prefix.size() >= reader->page_size() && prefix.size() % reader->page_size() == 0 &&
                         prefix.size() <= size_t(e.page_count) * reader->page_size(),
                     "frame %u's prefix has a wrong size", f);
          for (size_t i = 0; i < prefix.size() / reader->page_size(); i++) {
            const uint8_t* page = reinterpret_cast<const uint8_t*>(prefix.data()) + i * reader->page_size();
            FUZZ_CHECK(HashPage(FixedSecret(), page, reader->page_size()) == hashes[i],
                       "frame %u's prefix holds page %zu that fails its hash", f, i);
          }
        }
      }
    }
  }
  return 0;
}
