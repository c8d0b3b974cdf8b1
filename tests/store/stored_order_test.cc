// Reading a snapshot in stored order (store/stored_order.h), as the restores
// do: every page comes back exactly once and byte for byte, whichever packs
// and frames hold it; a frame decoded only up to the last page needed from
// it is still checked whole, so damage after that page is reported and no
// page of the frame is handed out.

#include <map>
#include <string>
#include <vector>

#include "store/pack.h"
#include "store/stored_order.h"
#include "tests/store/store_test_util.h"

namespace store_test {
namespace {

using snapshot::CheckStoredFrames;
using snapshot::ReadInStoredOrder;

// Snapshot `id` read in stored order (only `pages` if given): page number
// -> content, and how often each page was handed out.
Status ReadPages(Store* store, uint64_t id, const std::vector<uint32_t>* pages, std::map<uint32_t, std::string>* got,
                 std::map<uint32_t, int>* times) {
  std::unique_ptr<SnapshotImage> image;
  SNAPSHOT_RETURN_IF_ERROR(store->OpenImage(id, &image));
  const uint32_t page_size = image->info().page_size;
  return ReadInStoredOrder(image.get(), pages, [&](uint32_t first, uint32_t n, const uint8_t* data) {
    for (uint32_t i = 0; i < n; i++) {
      (*got)[first + i] = data == nullptr ? std::string(page_size, '\0')
                                          : std::string(reinterpret_cast<const char*>(data) + size_t(i) * page_size,
                                                        page_size);
      (*times)[first + i]++;
    }
    return Status::OK();
  });
}

class StoredOrder : public StoreInTempDir {};

TEST_F(StoredOrder, EverySnapshotOfACompactedStoreReadsBackByteForByte) {
  // A full snapshot of 3 frames, then small scattered changes, a page that
  // repeats another's content, and a snapshot that grows the image; merged
  // into a few packs, each snapshot's pages sit in frames shared with other
  // snapshots' pages.
  std::vector<Image> images{Image()};  // by id
  Image img = MakeImage(4096, 600, 1);
  uint64_t id;
  ASSERT_OK(Snap(store.get(), img, "full", &id));
  images.push_back(img);
  for (uint32_t k = 2; k <= 12; k++) {
    std::vector<uint32_t> changed;
    for (uint32_t p = k; p <= img.pages.size(); p += 37 + k) changed.push_back(p);
    if (k == 7) {
      for (uint32_t p = 601; p <= 700; p++) {
        img.pages.push_back(TextPage(4096, p, k));
        changed.push_back(p);
      }
    }
    for (uint32_t p : changed) img.pages[p - 1] = TextPage(4096, p, k);
    img.pages[k + 100] = img.pages[k];  // one content at two page numbers
    changed.push_back(k + 101);
    Manifest base;
    ASSERT_OK(store->ReadManifest(id, &base));
    ASSERT_OK(Snap(store.get(), img, "k", &id, &base, &changed));
    images.push_back(img);
  }
  ASSERT_OK(store->Compact());
  for (uint64_t sid = 1; sid < images.size(); sid++) {
    const Image& want = images[sid];
    std::map<uint32_t, std::string> got;
    std::map<uint32_t, int> times;
    ASSERT_OK(ReadPages(store.get(), sid, nullptr, &got, &times));
    ASSERT_EQ(want.pages.size(), got.size()) << "snapshot " << sid;
    for (uint32_t p = 1; p <= want.pages.size(); p++) {
      EXPECT_EQ(1, times[p]) << "snapshot " << sid << " page " << p;
      EXPECT_TRUE(got[p] == want.pages[p - 1]) << "snapshot " << sid << " page " << p << " differs";
    }
    // Some pages only, as the live restore asks for the pages that differ.
    std::vector<uint32_t> some;
    for (uint32_t p = uint32_t(sid); p <= want.pages.size(); p += 5 + uint32_t(sid % 3)) some.push_back(p);
    got.clear();
    times.clear();
    ASSERT_OK(ReadPages(store.get(), sid, &some, &got, &times));
    ASSERT_EQ(some.size(), got.size()) << "snapshot " << sid;
    for (uint32_t p : some) {
      EXPECT_EQ(1, times[p]) << "snapshot " << sid << " page " << p;
      EXPECT_TRUE(got[p] == want.pages[p - 1]) << "snapshot " << sid << " page " << p << " differs";
    }
  }
}

TEST_F(StoredOrder, DamageAfterTheLastPageNeededFromAFrameIsReported) {
  // Snapshot 2 takes only pages 257..299 from the full snapshot's second
  // frame (pages 257..512, 1 MiB of 4 KiB pages): its read decompresses
  // that frame only a little way. The frame is damaged near its end.
  Image v1 = MakeImage(4096, 600, 1);
  uint64_t id1, id2;
  ASSERT_OK(Snap(store.get(), v1, "full", &id1));
  Image v2 = v1;
  std::vector<uint32_t> changed;
  for (uint32_t p = 300; p <= 600; p++) {
    v2.pages[p - 1] = TextPage(4096, p, 2);
    changed.push_back(p);
  }
  Manifest base;
  ASSERT_OK(store->ReadManifest(id1, &base));
  ASSERT_OK(Snap(store.get(), v2, "tail", &id2, &base, &changed));

  std::unique_ptr<snapshot::PackReader> pack;
  const uint8_t secret[snapshot::kHashSecretSize] = {};
  ASSERT_OK(snapshot::PackReader::Open(Env::Default(), PackFile(dir, id1), id1, secret, &pack));
  ASSERT_EQ(3u, pack->frames().size());
  const snapshot::FrameEntry frame = pack->frames()[1];
  ASSERT_EQ(256u, frame.first_index);
  ASSERT_EQ(256u, frame.page_count);
  pack.reset();
  std::string bytes = ReadBytes(PackFile(dir, id1));
  bytes[frame.offset + frame.compressed_size - 3] ^= 0x40;
  WriteBytes(PackFile(dir, id1), bytes);
  Reopen();

  std::map<uint32_t, std::string> got;
  std::map<uint32_t, int> times;
  Status s = ReadPages(store.get(), id2, nullptr, &got, &times);
  EXPECT_EQ(Status::Code::kCorruption, s.code()) << Describe(s);
  EXPECT_NE(std::string::npos, s.message().find("frame 1")) << s.message();
  for (uint32_t p = 257; p <= 299; p++) EXPECT_EQ(0u, got.count(p)) << "page " << p << " of the damaged frame";
  std::unique_ptr<SnapshotImage> image;
  ASSERT_OK(store->OpenImage(id2, &image));
  EXPECT_EQ(Status::Code::kCorruption, CheckStoredFrames(image.get(), nullptr).code());
  // The frame is not needed for pages outside it.
  const std::vector<uint32_t> elsewhere{1, 2, 300, 600};
  EXPECT_OK(CheckStoredFrames(image.get(), &elsewhere));
  got.clear();
  EXPECT_OK(ReadPages(store.get(), id2, &elsewhere, &got, &times));
  EXPECT_EQ(4u, got.size());
}

}  // namespace
}  // namespace store_test
