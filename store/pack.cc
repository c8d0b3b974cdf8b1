#include "store/pack.h"

// The buffer-less decompression functions (ZSTD_decompressBegin,
// ZSTD_nextSrcSizeToDecompress, ZSTD_decompressContinue) decode a frame one
// block at a time, so ReadFramePages can stop part way; libzstd exports them.
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "store/background.h"
#include "store/coding.h"
#include "store/format.h"

namespace snapshot {

// Compresses frames on worker threads and hands them back in submission
// order, so pack layout does not depend on thread timing.
class FrameCompressor {
 public:
  FrameCompressor(int level, int threads, std::function<bool()> busy_elsewhere, std::function<void()> between_blocks)
      : level_(level), busy_elsewhere_(std::move(busy_elsewhere)), between_blocks_(std::move(between_blocks)) {
    for (int i = 0; i < threads; i++) workers_.emplace_back([this] { WorkerLoop(); });
    max_in_flight_ = threads > 0 ? size_t(threads) * 2 : 1;
  }
  ~FrameCompressor() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    work_cv_.notify_all();
    for (auto& t : workers_) t.join();
  }

  // Frames worth keeping between Submit() and Next(): enough to keep every
  // worker busy; the caller drains before submitting more (bounds memory).
  size_t max_in_flight() const { return max_in_flight_; }

  void Submit(std::string raw) {
    auto job = std::make_unique<Job>();
    job->raw = std::move(raw);
    if (workers_.empty() || (busy_elsewhere_ && busy_elsewhere_())) {
      Compress(job.get(), &inline_ctx_);
      std::lock_guard<std::mutex> l(mu_);
      in_order_.push_back(std::move(job));
      return;
    }
    std::lock_guard<std::mutex> l(mu_);
    pending_.push_back(job.get());
    in_order_.push_back(std::move(job));
    work_cv_.notify_one();
  }

  // Takes the oldest frame if it is compressed (or, with wait, once it is).
  bool Next(bool wait, std::string* out, Status* status) {
    std::unique_lock<std::mutex> l(mu_);
    if (in_order_.empty()) return false;
    if (wait) done_cv_.wait(l, [&] { return in_order_.front()->done; });
    if (!in_order_.front()->done) return false;
    std::unique_ptr<Job> job = std::move(in_order_.front());
    in_order_.pop_front();
    *out = std::move(job->out);
    *status = job->status;
    return true;
  }

 private:
  struct Job {
    std::string raw, out;
    Status status;
    bool done = false;
  };
  struct Ctx {
    ZSTD_CCtx* cctx = nullptr;
    ~Ctx() { ZSTD_freeCCtx(cctx); }
  };

  // The frame in steps, with between_blocks_ called between them.
  size_t CompressInSteps(ZSTD_CCtx* cctx, const std::string& raw, std::string* out) {
    constexpr size_t kStep = 128 << 10;
    ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters);
    size_t rc = ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level_);
    if (!ZSTD_isError(rc)) rc = ZSTD_CCtx_setPledgedSrcSize(cctx, raw.size());
    ZSTD_outBuffer o{&(*out)[0], out->size(), 0};
    for (size_t pos = 0; !ZSTD_isError(rc) && pos < raw.size();) {
      const size_t step = std::min(kStep, raw.size() - pos);
      const bool last = pos + step == raw.size();
      ZSTD_inBuffer in{raw.data() + pos, step, 0};
      do {
        rc = ZSTD_compressStream2(cctx, &o, &in, last ? ZSTD_e_end : ZSTD_e_continue);
      } while (!ZSTD_isError(rc) && (in.pos < in.size || (last && rc != 0)));
      pos += step;
      if (!last) between_blocks_();
    }
    return ZSTD_isError(rc) ? rc : o.pos;
  }

  void Compress(Job* job, Ctx* ctx) {
    if (ctx->cctx == nullptr) ctx->cctx = ZSTD_createCCtx();
    job->out.resize(ZSTD_compressBound(job->raw.size()));
    size_t n = ctx->cctx == nullptr ? 0
               : between_blocks_ ? CompressInSteps(ctx->cctx, job->raw, &job->out)
                                 : ZSTD_compressCCtx(ctx->cctx, &job->out[0], job->out.size(), job->raw.data(),
                                                     job->raw.size(), level_);
    if (ctx->cctx == nullptr || ZSTD_isError(n)) {
      job->status = Status::IOError(std::string("zstd compression failed: ") +
                                    (ctx->cctx ? ZSTD_getErrorName(n) : "out of memory"));
      n = 0;
    }
    job->out.resize(n);
    std::string().swap(job->raw);
    job->done = true;
  }

  void WorkerLoop() {
    LowerThisThreadToBackground();
    Ctx ctx;
    for (;;) {
      Job* job;
      {
        std::unique_lock<std::mutex> l(mu_);
        work_cv_.wait(l, [&] { return stop_ || !pending_.empty(); });
        if (pending_.empty()) return;
        job = pending_.front();
        pending_.pop_front();
      }
      Job local;  // compress outside the lock
      local.raw = std::move(job->raw);
      Compress(&local, &ctx);
      {
        std::lock_guard<std::mutex> l(mu_);
        job->out = std::move(local.out);
        job->status = local.status;
        job->done = true;
      }
      done_cv_.notify_all();
    }
  }

  const int level_;
  const std::function<bool()> busy_elsewhere_;
  const std::function<void()> between_blocks_;
  size_t max_in_flight_;
  Ctx inline_ctx_;
  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  std::deque<Job*> pending_;                     // not yet picked up by a worker
  std::deque<std::unique_ptr<Job>> in_order_;    // every job not yet taken by Next()
  std::vector<std::thread> workers_;
  bool stop_ = false;
};

PackWriter::~PackWriter() {
  if (!finished_) Abandon();
}

Status PackWriter::Create(Env* env, const std::string& dir, uint64_t id, uint32_t page_size, unsigned mode,
                          const CompressOptions& options, std::unique_ptr<PackWriter>* out) {
  std::unique_ptr<PackWriter> w(new PackWriter);
  w->env_ = env;
  w->id_ = id;
  w->page_size_ = page_size;
  w->pages_per_frame_ = PagesPerFrame(page_size, std::min(options.frame_bytes, kMaxFrameBytes));
  w->final_path_ = JoinPath(dir, FileNameForId(id, kPackSuffix));
  w->tmp_path_ = w->final_path_ + kTempSuffix;
  SNAPSHOT_RETURN_IF_ERROR(env->NewWritableFile(w->tmp_path_, mode, &w->file_));
  w->before_writeback_ = options.before_writeback;
  if (options.before_writeback) w->file_->SetWritebackGate(options.before_writeback);
  std::string header;
  ByteWriter hw(&header);
  hw.Bytes(kPackMagic, 8);
  hw.U32(kFormatVersion);
  hw.U32(page_size);
  hw.U64(id);
  hw.U64(Checksum64(header.data(), header.size()));
  Status s = w->file_->Append(header.data(), header.size());
  if (!s.ok()) return s;  // the destructor removes the temporary file
  w->offset_ = header.size();
  w->compressor_.reset(new FrameCompressor(options.level, options.threads, options.busy_elsewhere,
                                                options.between_blocks));
  w->in_order_.capacity = w->pages_per_frame_;
  w->grouped_.capacity = PagesPerFrame(page_size, std::min(options.frame_bytes, kGroupedFrameBytes));
  w->in_order_.data.reserve(size_t(w->pages_per_frame_) * page_size);
  *out = std::move(w);
  return Status::OK();
}

Status PackWriter::AddPage(const uint8_t* data, const PageHash& hash, PagePlacement placement) {
  FrameFill& fill = placement == PagePlacement::kGrouped ? grouped_ : in_order_;
  fill.data.append(reinterpret_cast<const char*>(data), page_size_);
  fill.slots.push_back(added_++);
  fill.hashes.push_back(hash);
  index_of_.push_back(UINT32_MAX);
  if (fill.slots.size() == fill.capacity) SNAPSHOT_RETURN_IF_ERROR(SubmitFrame(&fill));
  return WriteReadyFrames(/*wait=*/false, SIZE_MAX);
}

Status PackWriter::EndFrame() {
  SNAPSHOT_RETURN_IF_ERROR(SubmitFrame(&in_order_));
  return WriteReadyFrames(/*wait=*/false, SIZE_MAX);
}

// Gives the frame's pages their indexes, next after every page submitted
// before, and hands the frame to the compressor.
Status PackWriter::SubmitFrame(FrameFill* fill) {
  if (fill->slots.empty()) return Status::OK();
  for (size_t i = 0; i < fill->slots.size(); i++) {
    index_of_[fill->slots[i]] = static_cast<uint32_t>(hashes_.size());
    hashes_.push_back(fill->hashes[i]);
  }
  submitted_pages_.push_back(static_cast<uint32_t>(fill->slots.size()));
  fill->slots.clear();
  fill->hashes.clear();
  std::string raw;
  raw.swap(fill->data);
  fill->data.reserve(size_t(fill->capacity) * page_size_);
  while (submitted_pages_.size() - frames_.size() > compressor_->max_in_flight()) {
    SNAPSHOT_RETURN_IF_ERROR(WriteReadyFrames(/*wait=*/true, /*limit=*/1));
  }
  compressor_->Submit(std::move(raw));
  return Status::OK();
}

Status PackWriter::WriteReadyFrames(bool wait, size_t limit) {
  std::string compressed;
  Status job_status;
  for (size_t n = 0; n < limit && frames_.size() < submitted_pages_.size() &&
                     compressor_->Next(wait, &compressed, &job_status);
       n++) {
    SNAPSHOT_RETURN_IF_ERROR(job_status);
    FrameEntry e;
    e.offset = offset_;
    e.compressed_size = static_cast<uint32_t>(compressed.size());
    e.page_count = submitted_pages_[frames_.size()];
    e.checksum = Checksum64(compressed.data(), compressed.size());
    e.first_index = frames_.empty() ? 0 : frames_.back().first_index + frames_.back().page_count;
    SNAPSHOT_RETURN_IF_ERROR(file_->Append(compressed.data(), compressed.size()));
    offset_ += compressed.size();
    frames_.push_back(e);
  }
  return Status::OK();
}

Status PackWriter::Finish(uint64_t* bytes) {
  SNAPSHOT_RETURN_IF_ERROR(SubmitFrame(&in_order_));
  SNAPSHOT_RETURN_IF_ERROR(SubmitFrame(&grouped_));
  for (uint32_t slot = 0; slot < added_ && !reordered_; slot++) reordered_ = index_of_[slot] != slot;
  SNAPSHOT_RETURN_IF_ERROR(WriteReadyFrames(/*wait=*/true, SIZE_MAX));
  std::string index;
  ByteWriter iw(&index);
  for (const FrameEntry& e : frames_) {
    iw.U64(e.offset);
    iw.U32(e.compressed_size);
    iw.U32(e.page_count);
    iw.U64(e.checksum);
  }
  for (const PageHash& h : hashes_) {
    iw.U64(h.lo);
    iw.U64(h.hi);
  }
  std::string footer;
  ByteWriter fw(&footer);
  fw.U64(offset_);
  fw.U32(static_cast<uint32_t>(frames_.size()));
  fw.U32(static_cast<uint32_t>(hashes_.size()));
  fw.U64(Checksum64(index.data(), index.size()));
  fw.U64(Checksum64(footer.data(), footer.size()));
  fw.Bytes(kPackEndMagic, 8);
  SNAPSHOT_RETURN_IF_ERROR(file_->Append(index.data(), index.size()));
  SNAPSHOT_RETURN_IF_ERROR(file_->Append(footer.data(), footer.size()));
  SNAPSHOT_RETURN_IF_ERROR(file_->Sync());
  SNAPSHOT_RETURN_IF_ERROR(file_->Close());
  SNAPSHOT_RETURN_IF_ERROR(env_->RenameFile(tmp_path_, final_path_));
  finished_ = true;
  *bytes = offset_ + index.size() + footer.size();
  if (before_writeback_) before_writeback_();
  return env_->SyncDir(DirName(final_path_));
}

void PackWriter::Abandon() {
  compressor_.reset();
  if (file_) file_->Close();
  env_->RemoveFile(tmp_path_);
  finished_ = true;
}

static Status PackDamaged(const std::string& path, const std::string& why) {
  return Status::Corruption("pack " + path + " is damaged: " + why);
}

// The header and footer of pack `id` at `path`, checked: what both readers
// need before touching the index.
static Status ReadPackEnds(const RandomAccessFile& file, const std::string& path, uint64_t id, PackEnds* out) {
  auto bad = [&](const std::string& why) { return PackDamaged(path, why); };
  const uint64_t size = file.Size();
  if (size < kPackHeaderSize + kPackFooterSize) return bad("too short");

  uint8_t header[kPackHeaderSize];
  SNAPSHOT_RETURN_IF_ERROR(file.Read(0, sizeof header, header));
  ByteReader hr(header, sizeof header);
  char magic[8];
  uint32_t version;
  uint64_t header_id, header_sum;
  hr.Bytes(magic, 8);
  hr.U32(&version);
  hr.U32(&out->page_size);
  hr.U64(&header_id);
  hr.U64(&header_sum);
  if (std::string(magic, 8) != std::string(kPackMagic, 8)) return bad("bad magic number");
  if (Checksum64(header, 24) != header_sum) return bad("header checksum mismatch");
  if (version == 0) return bad("format version 0");
  if (version > kFormatVersion) {
    return Status::NotSupported("pack " + path + " has format version " + std::to_string(version) +
                                ", newer than this build reads; upgrade the extension");
  }
  if (header_id != id) return bad("it names itself pack " + std::to_string(header_id));
  if (!IsValidPageSize(out->page_size)) return bad("invalid page size");

  uint8_t footer[kPackFooterSize];
  SNAPSHOT_RETURN_IF_ERROR(file.Read(size - kPackFooterSize, sizeof footer, footer));
  ByteReader fr(footer, sizeof footer);
  uint64_t footer_sum;
  fr.U64(&out->index_offset);
  fr.U32(&out->n_frames);
  fr.U32(&out->n_pages);
  fr.U64(&out->index_sum);
  fr.U64(&footer_sum);
  fr.Bytes(magic, 8);
  if (std::string(magic, 8) != std::string(kPackEndMagic, 8)) return bad("bad footer magic number (incomplete pack?)");
  if (Checksum64(footer, 24) != footer_sum) return bad("footer checksum mismatch");
  out->index_size = uint64_t(out->n_frames) * kFrameEntrySize + uint64_t(out->n_pages) * 16;
  // Compared without sums that a hostile footer could make wrap around.
  if (out->index_size > size - kPackHeaderSize - kPackFooterSize ||
      out->index_offset != size - kPackFooterSize - out->index_size) {
    return bad("index does not fit the file");
  }
  return Status::OK();
}

Status PackReader::Open(Env* env, const std::string& path, uint64_t id, const uint8_t* secret,
                        std::unique_ptr<PackReader>* out) {
  std::unique_ptr<PackReader> r(new PackReader);
  r->env_ = env;
  r->path_ = path;
  r->id_ = id;
  r->secret_ = secret;
  SNAPSHOT_RETURN_IF_ERROR(env->NewRandomAccessFile(path, &r->file_));
  auto bad = [&](const std::string& why) { return PackDamaged(path, why); };
  PackEnds& ends = r->ends_;
  SNAPSHOT_RETURN_IF_ERROR(ReadPackEnds(*r->file_, path, id, &ends));
  r->page_size_ = ends.page_size;
  r->page_count_ = ends.n_pages;

  // The frame table is kept; the hash table only passes through a small
  // buffer on its way into the index checksum.
  std::string table(size_t(ends.n_frames) * kFrameEntrySize, '\0');
  if (!table.empty()) SNAPSHOT_RETURN_IF_ERROR(r->file_->Read(ends.index_offset, table.size(), &table[0]));
  Checksum64Stream sum;
  sum.Update(table.data(), table.size());
  {
    constexpr uint64_t kChunk = 64 << 10;
    std::unique_ptr<char[]> chunk(new char[kChunk]);
    for (uint64_t at = ends.index_offset + table.size(); at < ends.index_offset + ends.index_size;) {
      const size_t n = size_t(std::min(kChunk, ends.index_offset + ends.index_size - at));
      SNAPSHOT_RETURN_IF_ERROR(r->file_->Read(at, n, chunk.get()));
      sum.Update(chunk.get(), n);
      at += n;
    }
  }
  if (sum.Digest() != ends.index_sum) return bad("index checksum mismatch");

  ByteReader ir(table);
  r->frames_.resize(ends.n_frames);
  uint64_t expect_offset = kPackHeaderSize;
  uint64_t first_index = 0;  // 64 bits: a hostile table must not wrap it
  for (FrameEntry& e : r->frames_) {
    ir.U64(&e.offset);
    ir.U32(&e.compressed_size);
    ir.U32(&e.page_count);
    ir.U64(&e.checksum);
    if (e.offset != expect_offset || e.page_count == 0 || e.page_count > PagesPerFrame(r->page_size_, kMaxFrameBytes)) {
      return bad("frame table is inconsistent");
    }
    if (first_index + e.page_count > ends.n_pages) return bad("frame table is inconsistent");
    e.first_index = uint32_t(first_index);
    first_index += e.page_count;
    expect_offset += e.compressed_size;
  }
  if (expect_offset != ends.index_offset || first_index != ends.n_pages) return bad("frame table is inconsistent");
  *out = std::move(r);
  return Status::OK();
}

Status PackReader::LoadHashes() {
  if (hashes_loaded()) return Status::OK();
  std::string index(ends_.index_size, '\0');
  if (!index.empty()) SNAPSHOT_RETURN_IF_ERROR(file_->Read(ends_.index_offset, index.size(), &index[0]));
  if (Checksum64(index.data(), index.size()) != ends_.index_sum) return PackDamaged(path_, "index checksum mismatch");
  ByteReader ir(index.data() + frames_.size() * kFrameEntrySize, index.size() - frames_.size() * kFrameEntrySize);
  std::vector<PageHash> hashes(page_count_);
  for (PageHash& h : hashes) {
    ir.U64(&h.lo);
    ir.U64(&h.hi);
  }
  hashes_.swap(hashes);
  return Status::OK();
}

Status PackHashPeek::Open(Env* env, const std::string& path, uint64_t id, std::unique_ptr<PackHashPeek>* out) {
  std::unique_ptr<PackHashPeek> p(new PackHashPeek);
  SNAPSHOT_RETURN_IF_ERROR(env->NewRandomAccessFile(path, &p->file_));
  SNAPSHOT_RETURN_IF_ERROR(ReadPackEnds(*p->file_, path, id, &p->ends_));
  *out = std::move(p);
  return Status::OK();
}

Status PackHashPeek::Hash(uint32_t index, PageHash* out) {
  if (index >= ends_.n_pages) return Status::InvalidArgument("internal: page index outside the pack");
  uint8_t entry[16];
  const uint64_t at = ends_.index_offset + uint64_t(ends_.n_frames) * kFrameEntrySize + uint64_t(index) * 16;
  SNAPSHOT_RETURN_IF_ERROR(file_->Read(at, sizeof entry, entry));
  reads_++;
  ByteReader r(entry, sizeof entry);
  r.U64(&out->lo);
  r.U64(&out->hi);
  return Status::OK();
}

uint32_t PackReader::FrameOf(uint32_t index) const {
  auto it = std::upper_bound(frames_.begin(), frames_.end(), index,
                             [](uint32_t i, const FrameEntry& e) { return i < e.first_index; });
  return static_cast<uint32_t>((it - frames_.begin()) - 1);
}

// Entries first .. first + n - 1 of the page hash table, as stored.
Status PackReader::ReadHashEntries(uint32_t first, uint32_t n, std::string* out) const {
  out->resize(size_t(n) * 16);
  const uint64_t at = ends_.index_offset + uint64_t(frames_.size()) * kFrameEntrySize + uint64_t(first) * 16;
  return n == 0 ? Status::OK() : file_->Read(at, out->size(), &(*out)[0]);
}

Status PackReader::FrameHashes(uint32_t f, std::vector<PageHash>* out) const {
  const FrameEntry& e = frames_[f];
  out->resize(e.page_count);
  if (hashes_loaded()) {
    std::copy(hashes_.begin() + e.first_index, hashes_.begin() + e.first_index + e.page_count, out->begin());
    return Status::OK();
  }
  std::string entries;
  SNAPSHOT_RETURN_IF_ERROR(ReadHashEntries(e.first_index, e.page_count, &entries));
  ByteReader r(entries);
  for (PageHash& h : *out) {
    r.U64(&h.lo);
    r.U64(&h.hi);
  }
  return Status::OK();
}

Status PackReader::ReadCompressed(uint32_t f, std::string* compressed) const {
  const FrameEntry& e = frames_[f];
  compressed->resize(e.compressed_size);
  if (e.compressed_size > 0) SNAPSHOT_RETURN_IF_ERROR(file_->Read(e.offset, e.compressed_size, &(*compressed)[0]));
  if (Checksum64(compressed->data(), compressed->size()) != e.checksum) {
    return Status::Corruption("pack " + path_ + " is damaged: frame " + std::to_string(f) + " checksum mismatch");
  }
  return Status::OK();
}

Status PackReader::CheckFrame(uint32_t f) const {
  std::string compressed;
  return ReadCompressed(f, &compressed);
}

FrameScratch::~FrameScratch() { ZSTD_freeDCtx(dctx_); }

// Reads frame f, checks its whole checksum, and decompresses it into
// *pages at least as far as byte `need` (the whole frame: exactly).
Status PackReader::Decode(uint32_t f, size_t need, std::string* pages, FrameScratch* s, size_t* decoded) const {
  const FrameEntry& e = frames_[f];
  auto bad = [&](const std::string& why) {
    return Status::Corruption("pack " + path_ + " is damaged: frame " + std::to_string(f) + " " + why);
  };
  if (s->dctx_ == nullptr && (s->dctx_ = ZSTD_createDCtx()) == nullptr) {
    return Status::IOError("zstd decompression failed: out of memory");
  }
  // The whole frame's checksum, even when not all of it is decompressed: a
  // damaged frame is reported wherever the damage lies.
  SNAPSHOT_RETURN_IF_ERROR(ReadCompressed(f, &s->compressed_));
  const size_t raw_size = size_t(e.page_count) * page_size_;
  if (pages->size() != raw_size) pages->resize(raw_size);
  char* const out = &(*pages)[0];
  if (need == raw_size) {
    const size_t n = ZSTD_decompressDCtx(s->dctx_, out, raw_size, s->compressed_.data(), s->compressed_.size());
    if (ZSTD_isError(n)) return bad(std::string("does not decompress: ") + ZSTD_getErrorName(n));
    if (n != raw_size) return bad("decompresses to the wrong size");
    if (decoded != nullptr) *decoded = raw_size;
    return Status::OK();
  }
  // Block by block into one contiguous buffer (a block may refer back to
  // any byte before it), until byte `need` is there.
  size_t rc = ZSTD_decompressBegin(s->dctx_);
  size_t in = 0, done = 0;
  while (!ZSTD_isError(rc) && done < need) {
    const size_t next = ZSTD_nextSrcSizeToDecompress(s->dctx_);
    if (next == 0) break;  // the frame ended
    if (next > s->compressed_.size() - in) return bad("is cut short");
    rc = ZSTD_decompressContinue(s->dctx_, out + done, raw_size - done, s->compressed_.data() + in, next);
    if (!ZSTD_isError(rc)) done += rc;
    in += next;
  }
  if (ZSTD_isError(rc)) return bad(std::string("does not decompress: ") + ZSTD_getErrorName(rc));
  if (done < need) return bad("decompresses to the wrong size");
  if (decoded != nullptr) *decoded = done;
  return Status::OK();
}

// Checks the hashes of frame f's pages at `slots` (ascending; null: the
// first n pages) in `pages`.
Status PackReader::CheckHashes(uint32_t f, const uint32_t* slots, size_t n, const std::string& pages,
                               FrameScratch* s) const {
  const FrameEntry& e = frames_[f];
  auto slot = [&](size_t i) { return slots != nullptr ? slots[i] : uint32_t(i); };
  const uint32_t first = slot(0), last = slot(n - 1);
  if (!hashes_loaded()) SNAPSHOT_RETURN_IF_ERROR(ReadHashEntries(e.first_index + first, last - first + 1, &s->hashes_));
  for (size_t i = 0; i < n; i++) {
    const uint8_t* page = reinterpret_cast<const uint8_t*>(pages.data()) + size_t(slot(i)) * page_size_;
    PageHash stored;
    if (hashes_loaded()) {
      stored = hashes_[e.first_index + slot(i)];
    } else {
      ByteReader r(s->hashes_.data() + size_t(slot(i) - first) * 16, 16);
      r.U64(&stored.lo);
      r.U64(&stored.hi);
    }
    if (HashPage(secret_, page, page_size_) != stored) {
      return Status::Corruption("pack " + path_ + " is damaged: frame " + std::to_string(f) +
                                " holds a page that fails its hash");
    }
  }
  return Status::OK();
}

Status PackReader::ReadFrame(uint32_t f, std::string* pages, FrameScratch* scratch) const {
  FrameScratch local;
  FrameScratch* s = scratch != nullptr ? scratch : &local;
  const uint32_t count = frames_[f].page_count;
  SNAPSHOT_RETURN_IF_ERROR(Decode(f, size_t(count) * page_size_, pages, s));
  return CheckHashes(f, nullptr, count, *pages, s);
}

Status PackReader::ReadFramePages(uint32_t f, const std::vector<uint32_t>& slots, std::string* pages,
                                  FrameScratch* scratch) const {
  if (slots.empty()) return Status::OK();
  if (slots.back() >= frames_[f].page_count || !std::is_sorted(slots.begin(), slots.end())) {
    return Status::InvalidArgument("internal: pages outside the frame, or out of order");
  }
  FrameScratch local;
  FrameScratch* s = scratch != nullptr ? scratch : &local;
  SNAPSHOT_RETURN_IF_ERROR(Decode(f, size_t(slots.back() + 1) * page_size_, pages, s));
  return CheckHashes(f, slots.data(), slots.size(), *pages, s);
}

Status PackReader::ReadFramePrefix(uint32_t f, uint32_t slot, std::string* pages, FrameScratch* scratch) const {
  const uint32_t count = frames_[f].page_count;
  if (slot >= count) return Status::InvalidArgument("internal: page outside the frame");
  FrameScratch local;
  FrameScratch* s = scratch != nullptr ? scratch : &local;
  size_t decoded = 0;
  SNAPSHOT_RETURN_IF_ERROR(Decode(f, size_t(slot + 1) * page_size_, pages, s, &decoded));
  // zstd blocks need not end on a page boundary: keep the whole pages.
  const uint32_t whole = uint32_t(std::min<size_t>(decoded / page_size_, count));
  pages->resize(size_t(whole) * page_size_);
  return CheckHashes(f, nullptr, whole, *pages, s);
}

}  // namespace snapshot
