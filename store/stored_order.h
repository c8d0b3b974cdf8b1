// Reading a snapshot's pages in the order its packs store them, each frame
// decoded once, and only as far as the last page wanted from it.
//
//   std::unique_ptr<SnapshotImage> image;           // Store::OpenImage
//   Status s = ReadInStoredOrder(image.get(), nullptr,  // or &pages: some, ascending
//       [&](uint32_t first_pgno, uint32_t n, const uint8_t* data) {
//         // pages first_pgno .. first_pgno + n - 1, one after another in
//         // `data` (null: they are all zeros); each page arrives once
//         return Status::OK();  // an error stops the read and is returned
//       });
//
// Why: a snapshot taken many snapshots after a full one has its pages spread
// over many packs, in frames shared with older versions of other pages.
// Read in page order, a frame is decoded as often as the page order comes
// back to it (or every frame is held at once); in stored order each is
// decoded once, into one reused buffer. And since a frame's pages can only
// be decompressed from its start, decoding stops after the last page wanted
// from it (PackReader::ReadFramePages): the rest of the frame is skipped.
//
// Every page handed out passed its hash check, and every frame read passed
// its checksum (the whole compressed frame, even when decoding stops part
// way): damaged data is reported (Corruption naming the pack and frame) and
// never handed out. Pages come in runs of consecutive page numbers, as the
// packs hold them; the order of the runs is the packs', not the pages'.
//
// CheckStoredFrames reads and checksums, without decompressing, every frame
// such a read would decode: a cheap check that the bytes are as written,
// for callers that must refuse a damaged snapshot before they write
// anything and read it afterwards (the live restore, ext/restore.cc).
//
// Memory: one frame (1 MiB by default) and a list of the runs. The image's
// store need not be locked: the image's packs are already open (store
// files are never changed in place). Not thread-safe (one image, one user).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "store/status.h"
#include "store/store.h"

namespace snapshot {

// Gets n consecutive pages from first_pgno, page_size bytes each, in `data`
// (null: zeros). `data` is valid only during the call.
using PageRunSink = std::function<Status(uint32_t first_pgno, uint32_t n, const uint8_t* data)>;

// Hands every page of `image` (pages == null), or the pages numbered in
// `*pages` (ascending, no repeats, each in 1..page_count), to `sink`.
Status ReadInStoredOrder(SnapshotImage* image, const std::vector<uint32_t>* pages, const PageRunSink& sink);

// Checks the checksum of every frame that ReadInStoredOrder(image, pages)
// would decode. Corruption names the first damaged one.
Status CheckStoredFrames(SnapshotImage* image, const std::vector<uint32_t>* pages);

}  // namespace snapshot
