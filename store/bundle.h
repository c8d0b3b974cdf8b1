// Bundle: many snapshots' manifests in one compressed file.
//
// A store that takes a snapshot every few seconds would otherwise hold one
// manifest file per snapshot: 17,000 files a day. Compaction
// (store/compaction.cc) folds manifests into bundles:
// snapshots/NNNNNNNNNN.bundle. Each record of a bundle is one manifest's
// bytes exactly as Manifest::Encode wrote them (its own checksum included),
// so a bundled snapshot reads as the same manifest it was, needs no other
// snapshot to be read (no chain of deltas), and fields added to manifests
// need nothing here. Manifests of consecutive snapshots share most of their
// extents, so zstd over a run of them makes a bundle a small fraction of the
// files it replaces.
//
// Frame 0 holds every record's *head* (its bytes before the extent table:
// id, times, label, sizes), so that listing snapshots decompresses only the
// heads; records themselves are grouped into frames of about 4 MiB, so that
// reading one snapshot decompresses at most one such frame. A last frame
// lists the packs the records name (flag kBundlePackList), so that a
// compaction merging packs reads only the bundles that name them; bundles
// written before it have none and are read whole.
//
//   BundleWriter w;
//   for (each manifest m, ids ascending) w.Add(m.info.id, m.Encode(), m.extents.size());
//   w.Publish(env, path, bundle_id, mode, &bytes);     // durable, atomic
//
//   std::unique_ptr<BundleReader> r;
//   BundleReader::Open(env, path, bundle_id, &r);     // checks the tables
//   r->Heads(&heads);  r->Record(r->Find(id), &bytes); // then Manifest::Decode
//
// docs/FORMAT.md §5.2 specifies the file.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "store/env.h"
#include "store/status.h"

struct ZSTD_CCtx_s;

namespace snapshot {

constexpr char kBundleMagic[9] = "SQSNBNDL";
constexpr char kBundleSuffix[] = ".bundle";
constexpr size_t kBundleHeaderSize = 32;
constexpr size_t kBundleFrameEntrySize = 24;
constexpr size_t kBundleRecordEntrySize = 24;
// The largest frame a reader decompresses (bounds memory on a damaged table).
constexpr uint32_t kMaxBundleFrameBytes = 64u << 20;
// Header flag: the last frame is the list of packs the records name (u64
// ids, ascending), and no record is in it. Readers that ignore the flag
// read every record correctly (docs/FORMAT.md section 5.2).
constexpr uint32_t kBundlePackList = 1;

struct BundleRecord {
  uint64_t snapshot_id = 0;
  uint32_t frame = 0;        // >= 1: frame 0 holds the heads
  uint32_t offset = 0;       // in the decompressed frame
  uint32_t length = 0;       // the whole manifest
  uint32_t head_length = 0;  // its bytes before the extent count
  uint64_t head_offset = 0;  // derived: in frame 0
};

// Compresses each frame of records as soon as it is full, so that a bundle
// of hundreds of MiB of manifests (a large database's, folded by
// compaction) is held compressed, not raw, until Publish.
class BundleWriter {
 public:
  // `level`: zstd level; `frame_bytes`: records per frame, in bytes.
  explicit BundleWriter(int level = 3, size_t frame_bytes = 4 << 20) : level_(level), frame_bytes_(frame_bytes) {}
  ~BundleWriter();
  BundleWriter(const BundleWriter&) = delete;
  BundleWriter& operator=(const BundleWriter&) = delete;
  // `record` is a whole manifest as Manifest::Encode wrote it, with
  // `n_extents` extents; ids must ascend.
  Status Add(uint64_t snapshot_id, const std::string& record, size_t n_extents);
  size_t records() const { return records_.size(); }
  // Writes <path>.tmp, fsyncs, renames into place, fsyncs the directory.
  Status Publish(Env* env, const std::string& path, uint64_t bundle_id, unsigned mode, uint64_t* bytes);

 private:
  int level_;
  size_t frame_bytes_;
  std::vector<BundleRecord> records_;
  std::string heads_;
  // Compresses `raw` into compressed_ (one more frame, of raw.size() bytes).
  Status CompressFrame(const std::string& raw);
  std::string frame_;                    // the frame being filled, uncompressed
  std::vector<std::string> compressed_;  // frames 1.. before it, compressed
  std::vector<uint32_t> raw_sizes_;      // and their uncompressed sizes
  ZSTD_CCtx_s* cctx_ = nullptr;          // created on first use
  std::vector<uint64_t> packs_;          // named by the records, sorted at Publish
};

class BundleReader {
 public:
  // Reads and checks the header and tables (not the frames).
  static Status Open(Env* env, const std::string& path, uint64_t id, std::unique_ptr<BundleReader>* out);
  uint64_t id() const { return id_; }
  uint64_t file_size() const { return file_->Size(); }
  const std::vector<BundleRecord>& records() const { return records_; }
  // Index of the record of `snapshot_id`, or -1.
  long Find(uint64_t snapshot_id) const;
  // Every record's head, back to back in record order: record i's is
  // records()[i].head_length bytes at records()[i].head_offset.
  Status Heads(std::string* heads) const;
  // Record i's bytes (a whole manifest). Keeps the last frame decoded, so
  // that reading records in order decompresses each frame once.
  Status Record(size_t i, std::string* bytes);
  // Whether the bundle lists the packs its records name; if so, PackList
  // reads them (ascending): every pack any record's extents name.
  bool has_pack_list() const { return has_pack_list_; }
  Status PackList(std::vector<uint64_t>* packs) const;

 private:
  struct Frame {
    uint64_t offset = 0;
    uint32_t compressed_size = 0;
    uint32_t size = 0;
    uint64_t checksum = 0;
  };
  BundleReader() = default;
  Status ReadFrame(uint32_t f, std::string* out) const;
  std::string path_;
  uint64_t id_ = 0;
  std::unique_ptr<RandomAccessFile> file_;
  std::vector<Frame> frames_;
  std::vector<BundleRecord> records_;
  uint32_t cached_frame_ = 0;  // 0: none
  std::string cached_;
  bool has_pack_list_ = false;
};

}  // namespace snapshot
