// Pack: the compressed pages one snapshot added to the store.
//
// A pack is written once, by one snapshot (or by a prune that compacts older
// packs), and never modified. Pages are grouped into zstd frames of about
// 1 MiB: big enough to compress nearly as well as the whole file (see
// docs/FORMAT.md for the measurements), small enough that reading one page
// decompresses little. An index at the end gives each frame's offset and
// checksum and each page's keyed hash; a footer locates the index.
//
// PackWriter compresses frames on worker threads while the caller keeps
// reading the database, and publishes the pack atomically on Finish().
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "store/env.h"
#include "store/hash.h"
#include "store/status.h"

struct ZSTD_DCtx_s;  // zstd.h

namespace snapshot {

constexpr size_t kPackHeaderSize = 32;
constexpr size_t kPackFooterSize = 40;
constexpr size_t kFrameEntrySize = 24;
// The largest frame a reader accepts (bounds memory on a damaged index).
constexpr size_t kMaxFrameBytes = 16 << 20;

inline uint32_t PagesPerFrame(uint32_t page_size, size_t frame_bytes) {
  return page_size >= frame_bytes ? 1 : static_cast<uint32_t>(frame_bytes / page_size);
}

struct FrameEntry {
  uint64_t offset = 0;
  uint32_t compressed_size = 0;
  uint32_t page_count = 0;
  uint64_t checksum = 0;  // Checksum64 of the compressed bytes
  uint32_t first_index = 0;  // derived: sum of page_count of earlier frames
};

struct CompressOptions {
  // Level 2 on 1 MiB frames beats level 3 on 256 KiB frames in both size and
  // speed on real pages (bench/zstd_layout; numbers in docs/FORMAT.md).
  int level = 2;    // zstd level
  int threads = 2;  // compression threads; 0 compresses on the caller's thread
  size_t frame_bytes = 1 << 20;  // uncompressed bytes per frame
  // Asked before each frame is handed to a worker; while it returns true the
  // frame is compressed on the caller's thread instead, so that the pack
  // keeps one core busy, not threads + 1. A snapshot sets it to "the
  // database's writers are active": they need the other cores more
  // (store/background.h). Unset: always use the workers.
  std::function<bool()> busy_elsewhere;
  // The pack file's write-back gate (WritableFile::SetWritebackGate), and
  // the store's before every other sync of a snapshot's publication (its
  // directory, its manifest). A snapshot waits in it for a writer's commit
  // to finish, so that its next chunk or sync goes to the disk between two
  // commits instead of in front of one.
  std::function<void()> before_writeback;
  // Called between 128 KiB steps of compressing a frame, on the compressing
  // thread (several may call it at once); it may wait. A snapshot waits
  // while one of the database's writers is inside a transaction. When set,
  // frames are compressed with zstd's streaming API (same format).
  std::function<void()> between_blocks;
};

// Where a pack writer puts a page. Grouped pages share frames with each
// other only, in frames of kGroupedFrameBytes: the pages every lookup reads
// first (b-tree interior pages, IsTreeInteriorPage) then sit in a few small
// frames, cheap to decompress and to keep cached, instead of one in every
// 1 MiB frame of the database (bench/README.md, "Attached snapshots").
enum class PagePlacement { kInOrder, kGrouped };
constexpr size_t kGroupedFrameBytes = 64 << 10;

// Whether an SQLite database page is a b-tree interior page (its b-tree
// header, at offset 100 on page 1 and 0 elsewhere, starts with 0x02 or
// 0x05). Only a layout hint: a wrong answer (an overflow or freelist page
// that happens to start so) costs speed, never correctness.
inline bool IsTreeInteriorPage(const uint8_t* page, uint32_t page_size, uint32_t pgno) {
  const size_t at = pgno == 1 ? 100 : 0;
  return page_size > at && (page[at] == 0x02 || page[at] == 0x05);
}

class FrameCompressor;

class PackWriter {
 public:
  ~PackWriter();
  // Starts <dir>/<id>.pack.tmp; nothing is visible until Finish().
  static Status Create(Env* env, const std::string& dir, uint64_t id, uint32_t page_size,
                       unsigned mode, const CompressOptions& options, std::unique_ptr<PackWriter>* out);

  // Appends a page (page_size bytes) whose keyed hash is `hash`. Its slot
  // is page_count() before the call; its index in the pack is the slot when
  // every page is kInOrder, else IndexOf(slot) once the pack is finished.
  Status AddPage(const uint8_t* data, const PageHash& hash, PagePlacement placement = PagePlacement::kInOrder);
  uint32_t page_count() const { return added_; }
  // Ends the in-order frame being filled, short if need be: the next page
  // starts a frame. Compaction ends the newest snapshot's pages so, so that
  // no frame its restore reads also holds pages it does not need.
  Status EndFrame();
  uint64_t id() const { return id_; }
  // After Finish: whether any page's index differs from its slot.
  bool reordered() const { return reordered_; }
  // After Finish: the index of the page added in slot `slot`, and the whole
  // map (slot -> index).
  uint32_t IndexOf(uint32_t slot) const { return index_of_[slot]; }
  const std::vector<uint32_t>& index_of() const { return index_of_; }

  // Writes the index and footer, fsyncs, renames into place and fsyncs the
  // directory. On return the pack is durable; *bytes is its size.
  Status Finish(uint64_t* bytes);
  // Removes the temporary file (also done by the destructor if unfinished).
  void Abandon();

 private:
  PackWriter() = default;
  // Pages gathered for one frame.
  struct FrameFill {
    std::string data;
    std::vector<uint32_t> slots;
    std::vector<PageHash> hashes;
    uint32_t capacity = 0;  // pages
  };
  Status SubmitFrame(FrameFill* fill);
  // Writes up to `limit` compressed frames, in order; with wait, blocks for them.
  Status WriteReadyFrames(bool wait, size_t limit);

  Env* env_ = nullptr;
  std::string final_path_, tmp_path_;
  uint64_t id_ = 0;
  uint32_t page_size_ = 0;
  uint32_t pages_per_frame_ = 0;
  std::unique_ptr<WritableFile> file_;
  std::function<void()> before_writeback_;  // CompressOptions'; also before the directory's sync
  std::unique_ptr<FrameCompressor> compressor_;
  FrameFill in_order_, grouped_;  // the frames being filled
  uint32_t added_ = 0;
  bool reordered_ = false;
  std::vector<uint32_t> index_of_;  // slot -> index, set when its frame is submitted
  std::vector<uint32_t> submitted_pages_;  // page count of each submitted frame, in order
  uint64_t offset_ = 0;
  std::vector<FrameEntry> frames_;
  std::vector<PageHash> hashes_;  // of the submitted pages, in index order
  bool finished_ = false;
};

// A pack's header and footer, checked (both readers below start there).
struct PackEnds {
  uint32_t page_size = 0;
  uint32_t n_frames = 0;
  uint32_t n_pages = 0;
  uint64_t index_offset = 0;
  uint64_t index_size = 0;
  uint64_t index_sum = 0;
};

// Page hashes read one at a time from a pack's index, without loading or
// checking the whole index (4.2 MB for a 1 GiB database). A tracked
// snapshot compares each page it adds with the base's page of the same
// number; through PackReader that cost grew with the database, not with the
// pages changed (bench/README.md, "Snapshot time against database size").
// A hash read this way is unchecked. It is only ever compared for equality
// with a page's freshly computed keyed hash, so damage can only make that
// page be stored again, never make a changed page look unchanged.
class PackHashPeek {
 public:
  static Status Open(Env* env, const std::string& path, uint64_t id, std::unique_ptr<PackHashPeek>* out);
  uint32_t page_size() const { return ends_.page_size; }
  uint32_t page_count() const { return ends_.n_pages; }
  Status Hash(uint32_t index, PageHash* out);
  uint64_t reads() const { return reads_; }  // hashes read so far

 private:
  PackHashPeek() = default;
  std::unique_ptr<RandomAccessFile> file_;
  PackEnds ends_;
  uint64_t reads_ = 0;
};

// What decoding a frame needs besides its output: the compressed bytes, the
// frame's page hashes and zstd's decompression context. Kept from one
// ReadFrame to the next (one per thread), it lets steady-state decoding
// allocate and zero-fill nothing: fresh buffers cost a page fault per 4 KiB
// touched, which is most of a frame's decoding time (bench/README.md,
// "Attached snapshots").
class FrameScratch {
 public:
  FrameScratch() = default;
  ~FrameScratch();
  FrameScratch(const FrameScratch&) = delete;
  FrameScratch& operator=(const FrameScratch&) = delete;

 private:
  friend class PackReader;
  ZSTD_DCtx_s* dctx_ = nullptr;  // created on first use
  std::string compressed_;
  std::string hashes_;  // entries of the page hash table, as stored
};

// Reads pages back from a pack. Open checks the header, the footer and the
// whole index (its checksum, streamed through a small buffer) but keeps only
// the frame table: a page's hash is read from the file when its frame is
// decoded, so opening costs little more than the frame table's size (24
// bytes per MiB of pages), not the 16 bytes per page of the hash table. The
// hashes read later are the bytes the checksum covered (a pack is never
// changed in place), and damage since can only make a page fail its hash.
// Callers that look up many hashes (deduplication, compaction) load the
// whole table with LoadHashes().
class PackReader {
 public:
  // Opens and checks header, footer and index. `secret` is the store's hash
  // key, used to re-check every page read.
  static Status Open(Env* env, const std::string& path, uint64_t id, const uint8_t* secret,
                     std::unique_ptr<PackReader>* out);

  uint64_t id() const { return id_; }
  uint32_t page_size() const { return page_size_; }
  uint32_t page_count() const { return page_count_; }
  uint64_t file_size() const { return file_->Size(); }
  const std::vector<FrameEntry>& frames() const { return frames_; }
  uint32_t FrameOf(uint32_t index) const;

  // Reads the whole page hash table into memory, checking the index's
  // checksum again, so that hash() may be called. Not thread-safe.
  Status LoadHashes();
  bool hashes_loaded() const { return hashes_.size() == page_count_; }
  // Page `index`'s hash; only after LoadHashes().
  const PageHash& hash(uint32_t index) const { return hashes_[index]; }
  // The hashes of frame `f`'s pages, from memory after LoadHashes(), else
  // from the file. Thread-safe.
  Status FrameHashes(uint32_t f, std::vector<PageHash>* out) const;

  // Reads frame `f`, checks its checksum, decompresses it into *pages and
  // checks every page against its hash. *pages's storage is reused when it
  // already has the frame's size (as every full frame of a pack has), and
  // `scratch` (optional) is reused from call to call: with both, decoding
  // allocates nothing. Thread-safe (one scratch per thread).
  Status ReadFrame(uint32_t f, std::string* pages, FrameScratch* scratch = nullptr) const;
  // Reads only the pages at positions `slots` (ascending, within the frame)
  // of frame `f`: checks the checksum of the whole compressed frame, but
  // decompresses only as far as the last of `slots` and checks only those
  // pages' hashes. Each page is left at its place in *pages (slot *
  // page_size); the other bytes there are not checked and must not be used.
  // A reader that needs a few pages of a frame, such as a restore of a
  // snapshot whose pages share frames with older versions, skips the rest.
  // Thread-safe (one scratch per thread).
  Status ReadFramePages(uint32_t f, const std::vector<uint32_t>& slots, std::string* pages,
                        FrameScratch* scratch = nullptr) const;
  // Reads frame `f` only as far as page `slot`: checks the checksum of the
  // whole compressed frame, decompresses up to the end of the zstd block
  // that holds the page (a block holds at most 128 KiB), checks the hash of
  // every whole page decompressed; *pages is left holding exactly those, a
  // prefix of the frame at least slot + 1 pages long. A point query on an
  // attached snapshot needs one page of a leaf frame: it decodes on average
  // half the frame, and a page near the frame's start costs one block.
  // Thread-safe (one scratch per thread).
  Status ReadFramePrefix(uint32_t f, uint32_t slot, std::string* pages, FrameScratch* scratch = nullptr) const;
  // Reads frame `f`'s compressed bytes and checks their checksum only: a
  // frame that passes decompresses to the pages its index hashed.
  Status CheckFrame(uint32_t f) const;

 private:
  PackReader() = default;
  Status ReadCompressed(uint32_t f, std::string* compressed) const;
  // Decompresses frame f into *pages (resized to the whole frame) until at
  // least `need` bytes are there; *decoded (optional): how many are.
  Status Decode(uint32_t f, size_t need, std::string* pages, FrameScratch* s, size_t* decoded = nullptr) const;
  Status CheckHashes(uint32_t f, const uint32_t* slots, size_t n, const std::string& pages, FrameScratch* s) const;
  Status ReadHashEntries(uint32_t first, uint32_t n, std::string* out) const;
  Env* env_ = nullptr;
  std::string path_;
  uint64_t id_ = 0;
  uint32_t page_size_ = 0;
  uint32_t page_count_ = 0;
  PackEnds ends_;
  const uint8_t* secret_ = nullptr;
  std::unique_ptr<RandomAccessFile> file_;
  std::vector<FrameEntry> frames_;
  std::vector<PageHash> hashes_;  // empty until LoadHashes()
};

}  // namespace snapshot
