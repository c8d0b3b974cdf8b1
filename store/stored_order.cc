#include "store/stored_order.h"

#include <algorithm>
#include <string>
#include <tuple>

#include "store/pack.h"

namespace snapshot {
namespace {

// The pieces of `extents` (sorted by page, tiling the image) that hold
// exactly `pages` (ascending): one extent per run of consecutive pages.
Status Restrict(const std::vector<Extent>& extents, const std::vector<uint32_t>& pages, std::vector<Extent>* out) {
  size_t k = 0;
  for (const Extent& e : extents) {
    const uint64_t end = uint64_t(e.first_pgno) + e.page_count;
    while (k < pages.size() && pages[k] >= e.first_pgno && pages[k] < end) {
      uint32_t n = 1;
      while (k + n < pages.size() && pages[k + n] == pages[k] + n && pages[k] + n < end) n++;
      out->push_back(Extent{pages[k], n, e.pack, e.first_index + (pages[k] - e.first_pgno)});
      k += n;
    }
    if (k == pages.size()) break;
    if (pages[k] < e.first_pgno) break;  // out of order, or in no extent
  }
  if (k != pages.size()) {
    return Status::InvalidArgument("internal: page " + std::to_string(pages[k]) +
                                   " is not in the snapshot, or the page list is out of order");
  }
  return Status::OK();
}

// The frames a stored-order read of `pages` (null: all) decodes, in order.
// For each: `on_frame(pack, f, active)` with the runs (pieces of extents,
// in stored order) that overlap frame f; runs of zeros (pack 0) go to
// `on_zeros` first.
Status Walk(SnapshotImage* image, const std::vector<uint32_t>* pages,
            const std::function<Status(const Extent&)>& on_zeros,
            const std::function<Status(const PackReader*, uint32_t, const std::vector<const Extent*>&)>& on_frame) {
  std::vector<Extent> runs;
  if (pages == nullptr) {
    runs = image->manifest().extents;
  } else {
    SNAPSHOT_RETURN_IF_ERROR(Restrict(image->manifest().extents, *pages, &runs));
  }
  std::stable_sort(runs.begin(), runs.end(), [](const Extent& a, const Extent& b) {
    return std::tie(a.pack, a.first_index) < std::tie(b.pack, b.first_index);
  });
  std::vector<const Extent*> active;  // the runs overlapping the current frame
  for (size_t i = 0; i < runs.size();) {
    if (runs[i].pack == 0) {
      SNAPSHOT_RETURN_IF_ERROR(on_zeros(runs[i++]));
      continue;
    }
    const PackReader* pack;
    SNAPSHOT_RETURN_IF_ERROR(image->GetPack(runs[i].pack, &pack));
    size_t end = i;  // this pack's runs are [i, end)
    while (end < runs.size() && runs[end].pack == runs[i].pack) {
      // Store::OpenImage checked the manifest's extents against the pack.
      if (uint64_t(runs[end].first_index) + runs[end].page_count > pack->page_count()) {
        return Status::Corruption("snapshot " + std::to_string(image->info().id) + " refers to pages that pack " +
                                  std::to_string(runs[i].pack) + " does not hold");
      }
      end++;
    }
    // One frame after another: the runs are sorted by where they start, so
    // a frame's runs are those that started before its end and have not
    // ended before its start.
    uint32_t f = 0;
    active.clear();
    for (size_t next = i; next < end || !active.empty();) {
      f = active.empty() ? pack->FrameOf(runs[next].first_index) : f + 1;
      const FrameEntry& frame = pack->frames()[f];
      const uint64_t frame_end = uint64_t(frame.first_index) + frame.page_count;
      while (next < end && runs[next].first_index < frame_end) active.push_back(&runs[next++]);
      SNAPSHOT_RETURN_IF_ERROR(on_frame(pack, f, active));
      active.erase(std::remove_if(active.begin(), active.end(),
                                  [&](const Extent* e) { return uint64_t(e->first_index) + e->page_count <= frame_end; }),
                   active.end());
    }
    i = end;
  }
  return Status::OK();
}

// The part of run `e` inside frame `frame`: [*from, *to) as pack indexes.
void Overlap(const Extent& e, const FrameEntry& frame, uint32_t* from, uint32_t* to) {
  *from = std::max(e.first_index, frame.first_index);
  *to = uint32_t(std::min<uint64_t>(uint64_t(e.first_index) + e.page_count, uint64_t(frame.first_index) + frame.page_count));
}

}  // namespace

Status ReadInStoredOrder(SnapshotImage* image, const std::vector<uint32_t>* pages, const PageRunSink& sink) {
  const uint32_t page_size = image->info().page_size;
  std::string frame_pages;  // one frame at a time, reused
  FrameScratch scratch;
  std::vector<uint32_t> slots;
  return Walk(
      image, pages, [&](const Extent& e) { return sink(e.first_pgno, e.page_count, nullptr); },
      [&](const PackReader* pack, uint32_t f, const std::vector<const Extent*>& active) {
        const FrameEntry& frame = pack->frames()[f];
        slots.clear();
        for (const Extent* e : active) {
          uint32_t from, to;
          Overlap(*e, frame, &from, &to);
          for (uint32_t x = from; x < to; x++) slots.push_back(x - frame.first_index);
        }
        // Runs overlap when a snapshot holds one content at two page numbers.
        std::sort(slots.begin(), slots.end());
        slots.erase(std::unique(slots.begin(), slots.end()), slots.end());
        SNAPSHOT_RETURN_IF_ERROR(pack->ReadFramePages(f, slots, &frame_pages, &scratch));
        const uint8_t* data = reinterpret_cast<const uint8_t*>(frame_pages.data());
        for (const Extent* e : active) {
          uint32_t from, to;
          Overlap(*e, frame, &from, &to);
          SNAPSHOT_RETURN_IF_ERROR(sink(e->first_pgno + (from - e->first_index), to - from,
                                        data + size_t(from - frame.first_index) * page_size));
        }
        return Status::OK();
      });
}

Status CheckStoredFrames(SnapshotImage* image, const std::vector<uint32_t>* pages) {
  return Walk(
      image, pages, [](const Extent&) { return Status::OK(); },
      [](const PackReader* pack, uint32_t f, const std::vector<const Extent*>&) { return pack->CheckFrame(f); });
}

}  // namespace snapshot
