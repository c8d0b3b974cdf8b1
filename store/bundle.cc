#include "store/bundle.h"

#include <zstd.h>

#include <algorithm>

#include "store/coding.h"
#include "store/format.h"
#include "store/hash.h"

namespace snapshot {

// The first format version that has bundles.
constexpr uint32_t kFirstBundleVersion = 2;

BundleWriter::~BundleWriter() { ZSTD_freeCCtx(cctx_); }

Status BundleWriter::CompressFrame(const std::string& raw) {
  if (cctx_ == nullptr && (cctx_ = ZSTD_createCCtx()) == nullptr) return Status::IOError("zstd: out of memory");
  std::string out(ZSTD_compressBound(raw.size()), '\0');
  const size_t n = ZSTD_compressCCtx(cctx_, &out[0], out.size(), raw.data(), raw.size(), level_);
  if (ZSTD_isError(n)) return Status::IOError(std::string("zstd: ") + ZSTD_getErrorName(n));
  out.resize(n);
  out.shrink_to_fit();
  compressed_.push_back(std::move(out));
  raw_sizes_.push_back(static_cast<uint32_t>(raw.size()));
  return Status::OK();
}

Status BundleWriter::Add(uint64_t snapshot_id, const std::string& record, size_t n_extents) {
  // A manifest ends with the extent count, the extents and the checksum.
  const uint64_t tail = 4 + 20 * uint64_t(n_extents) + 8;
  if (record.size() < tail || record.size() > UINT32_MAX ||
      (!records_.empty() && snapshot_id <= records_.back().snapshot_id)) {
    return Status::InvalidArgument("internal: bundle record out of order or malformed");
  }
  if (records_.empty() || (!frame_.empty() && frame_.size() + record.size() > frame_bytes_)) {
    if (!records_.empty()) SNAPSHOT_RETURN_IF_ERROR(CompressFrame(frame_));
    frame_.clear();
    frame_.reserve(std::max(frame_bytes_, record.size()));
  }
  BundleRecord r;
  r.snapshot_id = snapshot_id;
  r.frame = static_cast<uint32_t>(compressed_.size() + 1);  // frame 0 holds the heads
  r.offset = static_cast<uint32_t>(frame_.size());
  r.length = static_cast<uint32_t>(record.size());
  r.head_length = static_cast<uint32_t>(record.size() - tail);
  r.head_offset = heads_.size();
  if (frame_.size() + record.size() > kMaxBundleFrameBytes || heads_.size() + r.head_length > kMaxBundleFrameBytes) {
    return Status::InvalidArgument("internal: bundle frame too large");
  }
  frame_ += record;
  heads_.append(record, 0, r.head_length);
  records_.push_back(r);
  // The extents' packs, read from the record itself: the list is exactly
  // what the bundle holds, whoever built the record.
  ByteReader extents(record.data() + r.head_length + 4, record.size() - r.head_length - 4);
  for (size_t i = 0; i < n_extents; i++) {
    uint32_t first_pgno = 0, page_count = 0, first_index = 0;
    uint64_t pack = 0;
    extents.U32(&first_pgno);
    extents.U32(&page_count);
    extents.U64(&pack);
    extents.U32(&first_index);
    if (pack != 0 && (packs_.empty() || packs_.back() != pack)) packs_.push_back(pack);
  }
  if (packs_.size() > 65536) {  // bounded memory, whatever the records hold
    std::sort(packs_.begin(), packs_.end());
    packs_.erase(std::unique(packs_.begin(), packs_.end()), packs_.end());
  }
  return Status::OK();
}

Status BundleWriter::Publish(Env* env, const std::string& path, uint64_t bundle_id, unsigned mode, uint64_t* bytes) {
  std::sort(packs_.begin(), packs_.end());
  packs_.erase(std::unique(packs_.begin(), packs_.end()), packs_.end());
  std::string pack_list;
  ByteWriter pl(&pack_list);
  for (uint64_t p : packs_) pl.U64(p);
  // Frames in file order: the heads, the records' frames, the pack list.
  if (!records_.empty()) SNAPSHOT_RETURN_IF_ERROR(CompressFrame(frame_));
  frame_.clear();
  frame_.shrink_to_fit();
  const size_t record_frames = compressed_.size();
  SNAPSHOT_RETURN_IF_ERROR(CompressFrame(heads_));
  SNAPSHOT_RETURN_IF_ERROR(CompressFrame(pack_list));
  const size_t n_frames = record_frames + 2;
  auto frame_at = [&](size_t f) -> size_t { return f == 0 ? record_frames : f <= record_frames ? f - 1 : f; };
  std::string data;
  ByteWriter w(&data);
  w.Bytes(kBundleMagic, 8);
  w.U32(kFormatVersion);
  w.U32(kBundlePackList);
  w.U64(bundle_id);
  w.U32(static_cast<uint32_t>(records_.size()));
  w.U32(static_cast<uint32_t>(n_frames));
  uint64_t offset = kBundleHeaderSize + kBundleFrameEntrySize * n_frames + kBundleRecordEntrySize * records_.size() + 8;
  for (size_t f = 0; f < n_frames; f++) {
    const std::string& c = compressed_[frame_at(f)];
    w.U64(offset);
    w.U32(static_cast<uint32_t>(c.size()));
    w.U32(raw_sizes_[frame_at(f)]);
    w.U64(Checksum64(c.data(), c.size()));
    offset += c.size();
  }
  for (const BundleRecord& r : records_) {
    w.U64(r.snapshot_id);
    w.U32(r.frame);
    w.U32(r.offset);
    w.U32(r.length);
    w.U32(r.head_length);
  }
  w.U64(Checksum64(data.data(), data.size()));
  data.reserve(offset);
  for (size_t f = 0; f < n_frames; f++) data += compressed_[frame_at(f)];
  *bytes = data.size();
  return WriteFileAtomically(env, path, data, mode);
}

Status BundleReader::Open(Env* env, const std::string& path, uint64_t id, std::unique_ptr<BundleReader>* out) {
  std::unique_ptr<BundleReader> r(new BundleReader);
  r->path_ = path;
  r->id_ = id;
  SNAPSHOT_RETURN_IF_ERROR(env->NewRandomAccessFile(path, &r->file_));
  auto bad = [&](const std::string& why) { return Status::Corruption("snapshot bundle " + path + " is damaged: " + why); };
  const uint64_t size = r->file_->Size();
  if (size < kBundleHeaderSize + 8) return bad("too small");
  std::string head(kBundleHeaderSize, '\0');
  SNAPSHOT_RETURN_IF_ERROR(r->file_->Read(0, head.size(), &head[0]));
  if (head.compare(0, 8, kBundleMagic) != 0) return bad("bad magic number");
  ByteReader h(head.data() + 8, head.size() - 8);
  uint32_t version = 0, flags = 0, n_records = 0, n_frames = 0;
  uint64_t stored_id = 0;
  h.U32(&version);
  h.U32(&flags);
  h.U64(&stored_id);
  h.U32(&n_records);
  h.U32(&n_frames);
  const uint64_t tables = kBundleFrameEntrySize * uint64_t(n_frames) + kBundleRecordEntrySize * uint64_t(n_records);
  if (tables > size - kBundleHeaderSize - 8) return bad("tables larger than the file");
  std::string data(size_t(kBundleHeaderSize + tables + 8), '\0');
  SNAPSHOT_RETURN_IF_ERROR(r->file_->Read(0, data.size(), &data[0]));
  uint64_t sum;
  ByteReader(data.data() + data.size() - 8, 8).U64(&sum);
  if (Checksum64(data.data(), data.size() - 8) != sum) return bad("checksum mismatch");
  if (version < kFirstBundleVersion) return bad("format version " + std::to_string(version));
  if (version > kFormatVersion) {
    return Status::NotSupported("snapshot bundle " + path + " has format version " + std::to_string(version) +
                                ", newer than this build reads (" + std::to_string(kFormatVersion) + "); upgrade the extension");
  }
  if (stored_id != id) return bad("names another id");
  if (n_frames == 0) return bad("no heads frame");
  r->has_pack_list_ = (flags & kBundlePackList) != 0;
  if (r->has_pack_list_ && n_frames < 2) return bad("no pack list frame");
  // Records never sit in the pack list's frame.
  const uint32_t record_frames = r->has_pack_list_ ? n_frames - 1 : n_frames;
  ByteReader t(data.data() + kBundleHeaderSize, tables);
  uint64_t next = data.size();
  r->frames_.resize(n_frames);
  for (Frame& f : r->frames_) {
    t.U64(&f.offset);
    t.U32(&f.compressed_size);
    t.U32(&f.size);
    t.U64(&f.checksum);
    if (f.offset != next || f.size > kMaxBundleFrameBytes) return bad("frame table");
    next += f.compressed_size;
  }
  if (next != size) return bad("frames do not end at the end of the file");
  r->records_.resize(n_records);
  uint64_t heads = 0;
  for (size_t i = 0; i < r->records_.size(); i++) {
    BundleRecord& rec = r->records_[i];
    t.U64(&rec.snapshot_id);
    t.U32(&rec.frame);
    t.U32(&rec.offset);
    t.U32(&rec.length);
    t.U32(&rec.head_length);
    rec.head_offset = heads;
    heads += rec.head_length;
    if (rec.snapshot_id == 0 || (i > 0 && rec.snapshot_id <= r->records_[i - 1].snapshot_id)) {
      return bad("snapshot ids do not ascend");
    }
    if (rec.frame == 0 || rec.frame >= record_frames || uint64_t(rec.offset) + rec.length > r->frames_[rec.frame].size ||
        rec.head_length > rec.length) {
      return bad("record table");
    }
  }
  if (heads != r->frames_[0].size) return bad("heads do not fill their frame");
  *out = std::move(r);
  return Status::OK();
}

long BundleReader::Find(uint64_t snapshot_id) const {
  auto it = std::lower_bound(records_.begin(), records_.end(), snapshot_id,
                             [](const BundleRecord& r, uint64_t id) { return r.snapshot_id < id; });
  return it != records_.end() && it->snapshot_id == snapshot_id ? long(it - records_.begin()) : -1;
}

Status BundleReader::ReadFrame(uint32_t f, std::string* out) const {
  const Frame& fr = frames_[f];
  std::string compressed(fr.compressed_size, '\0');
  if (!compressed.empty()) SNAPSHOT_RETURN_IF_ERROR(file_->Read(fr.offset, compressed.size(), &compressed[0]));
  auto bad = [&](const std::string& why) {
    return Status::Corruption("snapshot bundle " + path_ + " is damaged: frame " + std::to_string(f) + " " + why);
  };
  if (Checksum64(compressed.data(), compressed.size()) != fr.checksum) return bad("checksum mismatch");
  // Writers record the content size in the frame header (FORMAT.md §5.2):
  // checking it first keeps a damaged table's size (up to
  // kMaxBundleFrameBytes) from being allocated for a frame that cannot
  // fill it.
  if (ZSTD_getFrameContentSize(compressed.data(), compressed.size()) != fr.size) {
    return bad("does not decompress to its size");
  }
  out->assign(fr.size, '\0');
  const size_t n = ZSTD_decompress(out->empty() ? nullptr : &(*out)[0], out->size(), compressed.data(), compressed.size());
  if (ZSTD_isError(n) || n != fr.size) return bad("does not decompress to its size");
  return Status::OK();
}

Status BundleReader::Heads(std::string* heads) const { return ReadFrame(0, heads); }

Status BundleReader::PackList(std::vector<uint64_t>* packs) const {
  packs->clear();
  if (!has_pack_list_) return Status::InvalidArgument("internal: snapshot bundle " + path_ + " lists no packs");
  std::string raw;
  SNAPSHOT_RETURN_IF_ERROR(ReadFrame(uint32_t(frames_.size() - 1), &raw));
  if (raw.size() % 8 != 0) return Status::Corruption("snapshot bundle " + path_ + " is damaged: pack list size");
  ByteReader r(raw);
  packs->resize(raw.size() / 8);
  for (size_t i = 0; i < packs->size(); i++) {
    r.U64(&(*packs)[i]);
    if ((*packs)[i] == 0 || (i > 0 && (*packs)[i] <= (*packs)[i - 1])) {
      return Status::Corruption("snapshot bundle " + path_ + " is damaged: pack list out of order");
    }
  }
  return Status::OK();
}

Status BundleReader::Record(size_t i, std::string* bytes) {
  const BundleRecord& r = records_[i];
  if (cached_frame_ != r.frame) {
    cached_frame_ = 0;
    SNAPSHOT_RETURN_IF_ERROR(ReadFrame(r.frame, &cached_));
    cached_frame_ = r.frame;
  }
  bytes->assign(cached_, r.offset, r.length);
  return Status::OK();
}

}  // namespace snapshot
