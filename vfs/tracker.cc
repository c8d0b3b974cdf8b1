// The Tracker (vfs/tracker.h): one database's tracking file, mapped. Its
// parts, in the order they appear below:
//
//   opening and mapping   Open/Acquire/Release, the per-process registry of
//                         trackers, growing the mapping under SizeLock
//   the bitmap            Mark, TakeMarks, ReadMarks, ReturnMarks, CountMarks, and the
//                         `untrusted` flag
//   the WAL's evidence    the frame ring (RecordFrame, RingHolds), the
//                         verdict on a WAL generation (WalVerdict), and the
//                         end of a WAL (EndWal, RecordWalEnded)
//   writer hooks          what the snapshot VFS calls on each write, truncate
//                         and lock change of the database and its WAL
//   snapshot side         Evaluate, Reset, SetBase, UntouchedSinceReset: what
//                         a snapshot calls under the database's write lock
//
// Elsewhere: the file's layout is vfs/tracking_format.h, SQLite's formats
// vfs/sqlite_format.h, the boot id vfs/boot_id.cc, the lock that lets one
// snapshot at a time use the file vfs/snapshot_lock.cc, and the pages
// writers preserve for a copy-on-write snapshot vfs/cow.cc.
#include "vfs/tracker.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <new>

#include "store/coding.h"
#include "vfs/boot_id.h"
#include "vfs/cow.h"
#include "vfs/db_files.h"
#include "vfs/sqlite_format.h"

namespace snapshot {
namespace {

constexpr uint64_t kGrowStep = 1 << 20;
// A write later than this after the recorded mtime gets a later mtime (git's
// "racy clean" rule; file timestamps advance in clock ticks, not instantly).
constexpr int64_t kRacyNs = 100 * 1000 * 1000;

using ReadFn = Tracker::ReadFn;
using ReadResult = Tracker::ReadResult;

ReadFn ReaderOf(sqlite3_file* f) {
  return [f](uint64_t offset, void* out, size_t n) {
    const int rc = f->pMethods->xRead(f, out, int(n), sqlite3_int64(offset));
    return rc == SQLITE_OK                ? ReadResult::kOk
           : rc == SQLITE_IOERR_SHORT_READ ? ReadResult::kPastEnd
                                           : ReadResult::kFailed;
  };
}

// An OFD lock on byte 0 of the tracking file, held while its size changes:
// two processes growing it at once must not shrink it under each other's
// mapping. (Not flock: the snapshot lock is a flock on the same file.)
class SizeLock {
 public:
  explicit SizeLock(int fd) : fd_(fd) { Set(F_WRLCK); }
  ~SizeLock() { Set(F_UNLCK); }

 private:
  void Set(short type) {
    struct flock fl;
    std::memset(&fl, 0, sizeof fl);
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_len = 1;
    while (fcntl(fd_, F_OFD_SETLKW, &fl) != 0 && errno == EINTR) {
    }
  }
  int fd_;
};

bool HeaderIsCurrent(const TrackHeader* h) {
  return std::memcmp(h->magic, kTrackMagic, 8) == 0 && h->version == kTrackVersion;
}

int64_t MtimeNs(const struct stat& st) { return int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec; }

std::mutex& RegistryMutex() {
  static auto* mu = new std::mutex;
  return *mu;
}
std::map<std::string, std::pair<Tracker*, int>>& Registry() {
  static auto* r = new std::map<std::string, std::pair<Tracker*, int>>;
  return *r;
}

std::atomic<Tracker::CommitObserver>& Observer() {
  static std::atomic<Tracker::CommitObserver> fn{nullptr};  // trivially destructible: safe at exit
  return fn;
}

}  // namespace

void Tracker::SetCommitObserver(CommitObserver fn) { Observer().store(fn, std::memory_order_release); }

void Tracker::NotifyCommit() {
  if (!changed_since_end_.exchange(false, std::memory_order_relaxed)) return;
  if (CommitObserver fn = Observer().load(std::memory_order_acquire)) fn(this);
}

const char* UntrustedReasonText(uint32_t reason) {
  switch (reason) {
    case kTrusted: return "trusted";
    case kForeignCommit: return "the database was changed by a connection that does not use the snapshot VFS";
    case kForeignWal: return "the WAL was written or ended by a connection that does not use the snapshot VFS";
    case kOddWrite: return "a write that was not one whole page (the page size changed?)";
    case kRestored: return "the database was restored from a snapshot";
    case kMarkFailed: return "a changed page could not be recorded";
    case kNoBase: return "no snapshot has used the change record yet";
    case kOtherFile: return "the database file was replaced";
    case kRebooted: return "the machine restarted since the last snapshot";
    case kPageSizeChanged: return "the page size changed";
    case kOtherStore: return "the change record is relative to a snapshot this store does not hold";
    case kNewFormat: return "the change record is of another format";
    case kIoError: return "the change record could not be checked (an I/O error)";
  }
  return "unknown";
}

// ---- opening and mapping ----------------------------------------------------

Tracker::~Tracker() {
  if (base_ != nullptr) munmap(base_, mapped_);
  if (header_ != nullptr) munmap(header_, kTrackBitmapOffset);
  close(fd_);
}

Tracker* Tracker::Open(const std::string& db_path, bool create) {
  const std::string path = db_path + kTrackSuffix;
  struct stat db_st;
  const mode_t mode = stat(db_path.c_str(), &db_st) == 0 ? (db_st.st_mode & 0666) : 0600;
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), mode);
  if (fd < 0) return nullptr;
  {
    SizeLock l(fd);
    struct stat st;
    TrackHeader h;
    std::memset(&h, 0, sizeof h);
    if (fstat(fd, &st) != 0) {
      close(fd);
      return nullptr;
    }
    if (uint64_t(st.st_size) >= sizeof h && pread(fd, &h, sizeof h, 0) != ssize_t(sizeof h)) std::memset(&h, 0, sizeof h);
    if (uint64_t(st.st_size) < kTrackBitmapOffset || !HeaderIsCurrent(&h)) {
      // New, or of another format: start over with no base, so the next
      // snapshot hashes every page (and resets the file).
      // A new file reads as zeros already (and stays sparse); an old one is
      // cleared over its header and ring.
      const size_t fresh_size = st.st_size == 0 ? sizeof h : kTrackBitmapOffset;
      std::unique_ptr<char[]> fresh(new (std::nothrow) char[fresh_size]());
      if (fresh == nullptr) {
        close(fd);
        return nullptr;
      }
      std::memset(&h, 0, sizeof h);
      std::memcpy(h.magic, kTrackMagic, 8);
      h.version = kTrackVersion;
      std::memcpy(fresh.get(), &h, sizeof h);
      if (uint64_t(st.st_size) < kTrackBitmapOffset + kGrowStep && ftruncate(fd, off_t(kTrackBitmapOffset + kGrowStep)) != 0) {
        close(fd);
        return nullptr;
      }
      if (pwrite(fd, fresh.get(), fresh_size, 0) != ssize_t(fresh_size)) {
        close(fd);
        return nullptr;
      }
    }
  }
  void* header = mmap(nullptr, kTrackBitmapOffset, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (header == MAP_FAILED) {
    close(fd);
    return nullptr;
  }
  Tracker* t = nullptr;
  try {
    t = new Tracker(db_path, fd);
  } catch (...) {  // std::bad_alloc: the caller sees it; nothing is leaked
    munmap(header, kTrackBitmapOffset);
    close(fd);
    throw;
  }
  t->header_ = static_cast<TrackHeader*>(header);
  return t;
}

Tracker* Tracker::Acquire(const std::string& db_path) { return AcquireImpl(db_path, /*create=*/true); }

Tracker* Tracker::AcquireExisting(const std::string& db_path) { return AcquireImpl(db_path, /*create=*/false); }

Tracker* Tracker::AcquireImpl(const std::string& db_path, bool create) {
  std::lock_guard<std::mutex> l(RegistryMutex());
  auto& reg = Registry();
  auto it = reg.find(db_path);
  if (it != reg.end()) {
    it->second.second++;
    return it->second.first;
  }
  Tracker* t = Open(db_path, create);
  if (t == nullptr) return nullptr;
  try {
    reg[db_path] = {t, 1};
  } catch (...) {  // std::bad_alloc: the caller sees it; the tracker is not leaked
    delete t;
    throw;
  }
  return t;
}

Tracker* Tracker::Find(const std::string& db_path) {
  std::lock_guard<std::mutex> l(RegistryMutex());
  auto it = Registry().find(db_path);
  return it == Registry().end() ? nullptr : it->second.first;
}

Tracker* Tracker::AcquireIfOpen(const std::string& db_path) {
  std::lock_guard<std::mutex> l(RegistryMutex());
  auto it = Registry().find(db_path);
  if (it == Registry().end()) return nullptr;
  it->second.second++;
  return it->second.first;
}

void Tracker::Release(Tracker* t) {
  std::lock_guard<std::mutex> l(RegistryMutex());
  for (auto it = Registry().begin(); it != Registry().end(); ++it) {
    if (it->second.first == t && --it->second.second == 0) {
      delete t;
      Registry().erase(it);
      return;
    }
  }
}

void Tracker::RemoveSideFiles(const std::string& db_path) noexcept {
  try {
    // Under the registry's lock, so no connection of this process creates
    // the file again meanwhile.
    std::lock_guard<std::mutex> l(RegistryMutex());
    if (Registry().count(db_path) != 0) return;
    unlink((db_path + kTrackSuffix).c_str());
    unlink((db_path + kCowSuffix).c_str());
  } catch (...) {  // std::bad_alloc: the files stay, as they would have
  }
}

bool Tracker::Grow(uint64_t need) {
  std::unique_lock<std::shared_mutex> l(map_mu_);
  if (need <= mapped_) return true;
  struct stat st;
  uint64_t size;
  {
    SizeLock size_lock(fd_);
    if (fstat(fd_, &st) != 0) return false;
    size = uint64_t(st.st_size);
    if (size < need) {
      size = (need + kGrowStep - 1) / kGrowStep * kGrowStep;
      if (ftruncate(fd_, off_t(size)) != 0) return false;
    }
  }
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
  if (p == MAP_FAILED) return false;
  if (base_ != nullptr) munmap(base_, mapped_);
  base_ = static_cast<uint8_t*>(p);
  mapped_ = size;
  return true;
}

// ---- the bitmap ---------------------------------------------------------------

void Tracker::Mark(uint32_t pgno) {
  if (pgno == 0) return;
  __atomic_fetch_add(&header()->pages_written, 1, __ATOMIC_RELAXED);
  if (!changed_since_end_.load(std::memory_order_relaxed)) changed_since_end_.store(true, std::memory_order_relaxed);
  const uint64_t byte = kTrackBitmapOffset + (uint64_t(pgno) - 1) / 8;
  const uint8_t bit = uint8_t(1u << ((pgno - 1) % 8));
  for (;;) {
    {
      std::shared_lock<std::shared_mutex> l(map_mu_);
      if (byte < mapped_) {
        __atomic_fetch_or(base_ + byte, bit, __ATOMIC_SEQ_CST);
        return;
      }
    }
    if (!Grow(byte + 1)) {
      SetUntrusted(kMarkFailed);
      return;
    }
  }
}

bool Tracker::MapWholeFile() {
  struct stat st;
  return fstat(fd_, &st) == 0 && Grow(uint64_t(st.st_size));
}

void Tracker::PrepareToTakeMarks() {
  if (!MapWholeFile()) return;
  std::shared_lock<std::shared_mutex> l(map_mu_);
  // One read per page faults it in; an atomic load is not optimized away.
  for (uint64_t off = kTrackBitmapOffset; off < mapped_; off += 4096) {
    (void)__atomic_load_n(base_ + off, __ATOMIC_RELAXED);
  }
}

Status Tracker::TakeMarks(std::vector<uint32_t>* pages) { return CollectMarks(/*take=*/true, pages); }

Status Tracker::ReadMarks(std::vector<uint32_t>* pages) { return CollectMarks(/*take=*/false, pages); }

Status Tracker::CollectMarks(bool take, std::vector<uint32_t>* pages) {
  pages->clear();
  if (!MapWholeFile()) return Status::IOError("cannot map the tracking file");
  std::shared_lock<std::shared_mutex> l(map_mu_);
  for (uint64_t off = kTrackBitmapOffset; off + 8 <= mapped_; off += 8) {
    uint64_t* word = reinterpret_cast<uint64_t*>(base_ + off);
    if (__atomic_load_n(word, __ATOMIC_RELAXED) == 0) continue;
    const uint64_t bits =
        take ? __atomic_exchange_n(word, uint64_t(0), __ATOMIC_SEQ_CST) : __atomic_load_n(word, __ATOMIC_SEQ_CST);
    const uint8_t* bytes = reinterpret_cast<const uint8_t*>(&bits);
    for (int b = 0; b < 8; b++) {
      for (int k = 0; k < 8; k++) {
        if (bytes[b] >> k & 1) pages->push_back(uint32_t(8 * (off - kTrackBitmapOffset + b) + k + 1));
      }
    }
  }
  return Status::OK();
}

void Tracker::ReturnMarks(const std::vector<uint32_t>& pages) {
  for (uint32_t p : pages) Mark(p);
}

uint64_t Tracker::CountMarks() {
  if (!MapWholeFile()) return 0;
  std::shared_lock<std::shared_mutex> l(map_mu_);
  uint64_t n = 0;
  for (uint64_t off = kTrackBitmapOffset; off + 8 <= mapped_; off += 8) {
    n += uint64_t(__builtin_popcountll(__atomic_load_n(reinterpret_cast<uint64_t*>(base_ + off), __ATOMIC_RELAXED)));
  }
  return n;
}

void Tracker::SetUntrusted(uint32_t reason) {
  uint32_t expected = kTrusted;
  __atomic_compare_exchange_n(&header()->untrusted, &expected, reason, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

// ---- the WAL's evidence -----------------------------------------------------------

bool Tracker::RingHolds(uint32_t frame, const uint8_t* frame_header) const {
  const FrameRecord& r = ring()[frame % kFrameRingSize];
  return r.frame == frame && std::memcmp(frame_header + kWalFrameSaltOffset, header()->wal_salt, kWalSaltSize) == 0 &&
         std::memcmp(r.checksum, frame_header + kWalFrameChecksumOffset, kWalChecksumSize) == 0;
}

void Tracker::RecordFrame(uint32_t frame, const uint8_t* frame_header) {
  FrameRecord& r = ring()[frame % kFrameRingSize];
  r.frame = frame;
  std::memcpy(r.checksum, frame_header + kWalFrameChecksumOffset, kWalChecksumSize);
}

uint32_t Tracker::FrameVerdict(const ReadFn& read, uint64_t stride, uint32_t frame) {
  uint8_t fh[kWalFrameHeaderSize];
  switch (read(kWalHeaderSize + (frame - 1) * stride, fh, sizeof fh)) {
    case ReadResult::kOk: return RingHolds(frame, fh) ? kTrusted : kForeignWal;
    case ReadResult::kPastEnd: return kForeignWal;  // a frame we recorded is gone
    case ReadResult::kFailed: break;
  }
  return kIoError;
}

uint32_t Tracker::ForEachFrame(const ReadFn& read, uint64_t stride, uint32_t first,
                               const std::function<uint32_t(uint32_t, const uint8_t*)>& fn) {
  for (uint32_t j = first;; j++) {
    uint8_t fh[kWalFrameHeaderSize];
    const ReadResult r = read(kWalHeaderSize + (j - 1) * stride, fh, sizeof fh);
    if (r == ReadResult::kFailed) return kIoError;
    if (r == ReadResult::kPastEnd) return kTrusted;
    if (LoadU32BE(fh + kWalFramePageNumberOffset) == 0 ||
        std::memcmp(fh + kWalFrameSaltOffset, header()->wal_salt, kWalSaltSize) != 0) {
      return kTrusted;
    }
    const uint32_t verdict = fn(j, fh);
    if (verdict != kTrusted) return verdict;
  }
}

uint32_t Tracker::WalVerdict(const ReadFn& read, bool* valid) {
  uint8_t h[kWalHeaderSize];
  *valid = false;
  const ReadResult r = read(0, h, sizeof h);
  if (r == ReadResult::kFailed) return kIoError;
  *valid = r == ReadResult::kOk && IsWalMagic(LoadU32BE(h + kWalHeaderMagicOffset));
  if (!*valid) return kTrusted;
  TrackHeader* th = header();
  if (std::memcmp(h + kWalHeaderSaltOffset, th->wal_salt, kWalSaltSize) != 0) return kForeignWal;
  const uint64_t stride = kWalFrameHeaderSize + LoadU32BE(h + kWalHeaderPageSizeOffset);
  const uint32_t commit = th->wal_commit;
  if (commit > 0) {
    const uint32_t verdict = FrameVerdict(read, stride, commit);
    if (verdict != kTrusted) return verdict;
  }
  // After it: a tracked transaction's uncommitted frames, or someone else's.
  return ForEachFrame(read, stride, commit + 1,
                      [this](uint32_t j, const uint8_t* fh) { return RingHolds(j, fh) ? kTrusted : kForeignWal; });
}

bool Tracker::RecordWalEnded() {
  TrackHeader* h = header();
  struct stat st;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  const bool ok = stat(db_path_.c_str(), &st) == 0;
  if (!ok) {
    h->ended_racy = 1;
  } else {
    h->ended_mtime_ns = MtimeNs(st);
    h->ended_size = int64_t(st.st_size);
    h->ended_racy = int64_t(now.tv_sec) * 1000000000 + now.tv_nsec - h->ended_mtime_ns < kRacyNs;
  }
  h->wal_state = kWalEnded;
  return ok;
}

bool Tracker::DbUnchangedSinceWalEnded() {
  const TrackHeader* h = header();
  struct stat st;
  return h->ended_racy == 0 && stat(db_path_.c_str(), &st) == 0 && MtimeNs(st) == h->ended_mtime_ns &&
         int64_t(st.st_size) == h->ended_size;
}

// ---- writer hooks -------------------------------------------------------------------

int Tracker::OnDbWrite(sqlite3_file* real, const void* data, int amount, int64_t offset, bool content_changes,
                       const uint32_t* counter_in_file) {
  if (amount <= 0) return SQLITE_OK;
  TrackHeader* h = header();
  const uint32_t ps = page_size();
  if (ps != 0 && uint32_t(amount) != ps) SetUntrusted(kOddWrite);
  const uint32_t pgno = uint32_t(uint64_t(offset) / uint64_t(amount) + 1);
  if (content_changes) Mark(pgno);
  if (offset == 0 && amount >= int(kDbHeaderSize)) {
    const uint8_t* page = static_cast<const uint8_t*>(data);
    if (page[kDbHeaderWriteVersionOffset] == kFileFormatRollback) {
      // Rollback mode: every commit writes the next change counter here. The
      // one in the file must be the one a tracked writer left, or someone
      // else committed in between. The writer usually read it under the lock
      // it holds (`counter_in_file`); if not, it is read here. (A file too
      // short to hold one, a database being created, has none: the VFS below
      // zero-fills a short read.)
      uint8_t now[4] = {};
      int rc = SQLITE_OK;
      if (counter_in_file != nullptr) {
        StoreU32BE(now, *counter_in_file);
      } else {
        rc = real->pMethods->xRead(real, now, sizeof now, kDbHeaderChangeCounterOffset);
      }
      if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ) {
        // A counter that cannot be read cannot be checked. The write fails as
        // if it had failed itself: SQLite rolls the commit back, and an I/O
        // error injected here reaches SQLite as it would without this VFS.
        SetUntrusted(kIoError);
        return SQLITE_IOERR_WRITE;
      }
      if (LoadU32BE(now) != __atomic_load_n(&h->change_counter, __ATOMIC_RELAXED)) SetUntrusted(kForeignCommit);
    }
    __atomic_store_n(&h->change_counter, LoadU32BE(page + kDbHeaderChangeCounterOffset), __ATOMIC_RELAXED);
  }
  const uint32_t generation = __atomic_load_n(&h->cow_generation, __ATOMIC_ACQUIRE);
  if (generation != 0) PreserveForSnapshot(real, generation, pgno, pgno);
  return SQLITE_OK;
}

void Tracker::OnDbTruncate(sqlite3_file* real, int64_t size) {
  const uint32_t generation = __atomic_load_n(&header()->cow_generation, __ATOMIC_ACQUIRE);
  const uint32_t ps = page_size();
  if (generation == 0 || ps == 0) return;
  // Pages cut off are pages overwritten as far as the snapshot is concerned.
  PreserveForSnapshot(real, generation, uint32_t((uint64_t(size) + ps - 1) / ps + 1), UINT32_MAX);
}

void Tracker::PreserveForSnapshot(sqlite3_file* real, uint32_t generation, uint32_t first, uint32_t last) {
  TrackHeader* h = header();
  std::shared_ptr<CowArea> cow;
  {
    std::lock_guard<std::mutex> l(cow_mu_);
    if (cow_ == nullptr || cow_->generation() != generation) {
      cow_ = CowArea::Map(db_path_ + kCowSuffix, generation);
    }
    cow = cow_;
  }
  bool ok = cow != nullptr;
  for (uint32_t p = first; ok && p <= last && p <= cow->page_count(); p++) ok = cow->Preserve(real, p).ok();
  if (!ok && __atomic_load_n(&h->cow_generation, __ATOMIC_ACQUIRE) == generation) {
    // The snapshot cannot rely on this write having left its page alone; it
    // notices this and starts again.
    __atomic_store_n(&h->cow_broken, generation, __ATOMIC_SEQ_CST);
  }
}

int Tracker::OnWalWrite(sqlite3_file* real_wal, const void* data, int amount, int64_t offset) {
  TrackHeader* h = header();
  const uint8_t* d = static_cast<const uint8_t*>(data);
  if (offset == 0 && amount == int(kWalHeaderSize)) {
    // A new WAL generation. The one it replaces must have been written by
    // tracked writers only; its frames are about to be overwritten.
    if (h->wal_state == kWalLive) {
      // A WAL header that cannot be read fails the write (as a frame header
      // that cannot be read does, below), before anything is recorded.
      if (CheckWalEnding(ReaderOf(real_wal)) == kIoError) return SQLITE_IOERR_WRITE;
    } else if (h->wal_state == kWalEnded && !DbUnchangedSinceWalEnded()) {
      SetUntrusted(kForeignWal);
    }
    std::memcpy(h->wal_salt, d + kWalHeaderSaltOffset, kWalSaltSize);
    h->wal_commit = 0;
    h->wal_state = kWalLive;
    return SQLITE_OK;
  }
  if (amount != int(kWalFrameHeaderSize) || offset < int64_t(kWalHeaderSize)) return SQLITE_OK;
  Mark(LoadU32BE(d + kWalFramePageNumberOffset));  // a frame header: it names the page that follows
  const uint32_t ps = page_size();
  if (ps == 0) return SQLITE_OK;
  const uint64_t stride = kWalFrameHeaderSize + ps;
  const uint32_t frame = uint32_t((uint64_t(offset) - kWalHeaderSize) / stride + 1);
  // The first frame of a write transaction follows frames someone else may
  // have written: the frame before it must be one a tracked writer wrote.
  // (Within the transaction this process holds the WAL write lock.)
  uint32_t first = 0;
  const bool starts = txn_first_frame_.compare_exchange_strong(first, frame, std::memory_order_relaxed);
  if (starts && frame > 1) {
    const FrameRecord& before = ring()[(frame - 1) % kFrameRingSize];
    const uint32_t verdict =
        txn_base_known_ && txn_base_frame_ == frame - 1
            ? (before.frame == frame - 1 && std::memcmp(before.checksum, txn_base_checksum_, 8) == 0 ? kTrusted
                                                                                                    : kForeignWal)
            : FrameVerdict(ReaderOf(real_wal), stride, frame - 1);
    if (verdict != kTrusted) SetUntrusted(verdict);
    if (verdict == kIoError) {
      // The write fails as if it had failed itself (see OnDbWrite); SQLite
      // rolls the transaction back. Its next first frame is checked again.
      txn_first_frame_.store(0, std::memory_order_relaxed);
      return SQLITE_IOERR_WRITE;
    }
  }
  // Salt and checksum left zero: SQLite rewrote an earlier frame of this
  // transaction and will write this header again, complete, at commit.
  static const uint8_t kPending[kWalSaltSize + kWalChecksumSize] = {};
  static_assert(kWalFrameChecksumOffset == kWalFrameSaltOffset + kWalSaltSize, "salt, then checksum");
  if (std::memcmp(d + kWalFrameSaltOffset, kPending, sizeof kPending) == 0) return SQLITE_OK;
  if (h->wal_state != kWalLive || std::memcmp(d + kWalFrameSaltOffset, h->wal_salt, kWalSaltSize) != 0) {
    SetUntrusted(kForeignWal);
  }
  RecordFrame(frame, d);
  if (LoadU32BE(d + kWalFrameCommitSizeOffset) != 0) h->wal_commit = frame;  // a commit frame
  return SQLITE_OK;
}

void Tracker::OnWalWriteLock(bool taken, const volatile void* wal_index) {
  CountWriteTransaction(taken);
  txn_first_frame_.store(0, std::memory_order_relaxed);
  txn_base_known_ = false;
  // Nobody changes the wal-index header while the lock is held.
  WalIndexHeader index;
  if (!taken || wal_index == nullptr || !ReadWalIndexHeader(wal_index, &index)) return;
  txn_base_frame_ = index.max_frame;
  std::memcpy(txn_base_checksum_, index.last_checksum, 8);
  txn_base_known_ = true;
}

void Tracker::OnDbLockChange(int from, int to) {
  const bool was_writing = from >= SQLITE_LOCK_RESERVED, writes = to >= SQLITE_LOCK_RESERVED;
  if (was_writing != writes) CountWriteTransaction(writes);
}

void Tracker::OnWalTruncate(sqlite3_file* real_wal, int64_t size) {
  // Truncated to a size limit, the header stays: the next generation's
  // header write checks this one.
  if (size <= 0) EndWal(ReaderOf(real_wal));
}

void Tracker::OnWalDelete(sqlite3_vfs* vfs, const char* wal_path) {
  // Read through the VFS below, like every other read of the tracker: fault
  // injection below SQLite reaches it too.
  std::unique_ptr<char[]> mem(new char[size_t(vfs->szOsFile)]());
  sqlite3_file* f = reinterpret_cast<sqlite3_file*>(mem.get());
  int out_flags = 0;
  const int rc = vfs->xOpen(vfs, wal_path, f, SQLITE_OPEN_READONLY | SQLITE_OPEN_WAL, &out_flags);
  const bool opened = rc == SQLITE_OK && f->pMethods != nullptr;
  // A WAL already gone reads as empty (someone else ended it); one that
  // cannot be opened is an error, never the end of the WAL.
  int exists = 1;
  if (!opened && vfs->xAccess(vfs, wal_path, SQLITE_ACCESS_EXISTS, &exists) != SQLITE_OK) exists = 1;
  const ReadFn read_wal = opened ? ReaderOf(f) : [exists](uint64_t, void*, size_t) {
    return exists ? ReadResult::kFailed : ReadResult::kPastEnd;
  };
  EndWal(read_wal);
  if (f->pMethods != nullptr) f->pMethods->xClose(f);
}

uint32_t Tracker::CheckWalEnding(const ReadFn& read_wal) {
  bool valid = false;
  uint32_t verdict = WalVerdict(read_wal, &valid);
  if (verdict == kTrusted && !valid) verdict = kForeignWal;
  if (verdict != kTrusted) SetUntrusted(verdict);
  return verdict;
}

void Tracker::EndWal(const ReadFn& read_wal) {
  if (header()->wal_state == kWalLive) CheckWalEnding(read_wal);
  if (!RecordWalEnded()) SetUntrusted(kIoError);
}

// ---- snapshot side --------------------------------------------------------------------

uint32_t Tracker::Evaluate(sqlite3_file* db, sqlite3_file* wal, uint32_t page_size) {
  TrackHeader* h = header();
  if (!HeaderIsCurrent(h)) return kNewFormat;
  if (h->base_id == 0) return kNoBase;
  if (h->page_size != page_size) return kPageSizeChanged;
  struct stat st;
  if (stat(db_path_.c_str(), &st) != 0) return errno == ENOENT ? kOtherFile : kIoError;
  if (uint64_t(st.st_dev) != h->dev || uint64_t(st.st_ino) != h->ino) return kOtherFile;
  uint8_t boot[kBootIdSize];
  static_assert(sizeof boot == sizeof h->boot_id, "a boot id fills the header's field");
  CurrentBootId(boot);
  if (std::memcmp(boot, h->boot_id, sizeof boot) != 0) return kRebooted;
  const uint32_t untrusted = __atomic_load_n(&h->untrusted, __ATOMIC_SEQ_CST);
  if (untrusted != kTrusted) return untrusted;
  uint8_t dbh[kDbHeaderSize] = {};
  if (db->pMethods->xRead(db, dbh, sizeof dbh, 0) != SQLITE_OK) return kIoError;
  if (dbh[kDbHeaderWriteVersionOffset] != kFileFormatWal) {
    return LoadU32BE(dbh + kDbHeaderChangeCounterOffset) == h->change_counter ? kTrusted : kForeignCommit;
  }
  // A WAL-mode database whose WAL the caller has not opened: its commits
  // do not move the change counter, so nothing here can vouch for them.
  if (wal == nullptr) return kIoError;
  bool valid = false;
  if (h->wal_state == kWalLive) {
    const uint32_t verdict = WalVerdict(ReaderOf(wal), &valid);
    return verdict != kTrusted ? verdict : valid ? kTrusted : kForeignWal;
  }
  if (h->wal_state == kWalEnded) {
    // Only to learn whether a generation began since.
    if (WalVerdict(ReaderOf(wal), &valid) == kIoError) return kIoError;
    return !valid && DbUnchangedSinceWalEnded() ? kTrusted : kForeignWal;
  }
  return kNoBase;
}

Status Tracker::Reset(sqlite3_file* db, sqlite3_file* wal, uint32_t page_size, uint32_t wal_commit_frame) {
  TrackHeader* h = header();
  // A Reset that fails part-way leaves evidence half recorded: whatever base
  // the caller keeps or restores must not be trusted with it.
  auto fail = [this](const char* what) {
    SetUntrusted(kIoError);
    return Status::IOError(what);
  };
  struct stat st;
  if (stat(db_path_.c_str(), &st) != 0) return fail("cannot stat the database file");
  uint8_t dbh[kDbHeaderSize] = {};
  const int rc = db->pMethods->xRead(db, dbh, sizeof dbh, 0);
  if (rc != SQLITE_OK && (rc != SQLITE_IOERR_SHORT_READ || st.st_size >= off_t(kDbHeaderSize))) {
    return fail("cannot read the database header");
  }
  h->page_size = page_size;
  h->dev = uint64_t(st.st_dev);
  h->ino = uint64_t(st.st_ino);
  CurrentBootId(h->boot_id);
  h->change_counter = LoadU32BE(dbh + kDbHeaderChangeCounterOffset);
  h->cow_broken = 0;
  uint8_t wh[kWalHeaderSize];
  ReadFn read = wal != nullptr ? ReaderOf(wal) : ReadFn();
  const ReadResult wal_read =
      wal != nullptr && dbh[kDbHeaderWriteVersionOffset] == kFileFormatWal ? read(0, wh, sizeof wh) : ReadResult::kPastEnd;
  if (wal_read == ReadResult::kFailed) return fail("cannot read the -wal file");
  if (wal_read == ReadResult::kOk && IsWalMagic(LoadU32BE(wh + kWalHeaderMagicOffset))) {
    // The frames now in the WAL are part of the state this snapshot reads:
    // record them as known. Only the commit frame and those after it are
    // ever checked against the ring again (WalVerdict, and the frame
    // before the next transaction's first).
    std::memcpy(h->wal_salt, wh + kWalHeaderSaltOffset, kWalSaltSize);
    const uint64_t stride = kWalFrameHeaderSize + LoadU32BE(wh + kWalHeaderPageSizeOffset);
    const uint32_t recorded = ForEachFrame(read, stride, std::max<uint32_t>(wal_commit_frame, 1),
                                           [this](uint32_t j, const uint8_t* fh) {
                                             RecordFrame(j, fh);
                                             return uint32_t(kTrusted);
                                           });
    if (recorded != kTrusted) return fail("cannot read the -wal file");
    h->wal_commit = wal_commit_frame;
    h->wal_state = kWalLive;
  } else if (!RecordWalEnded()) {
    return fail("cannot stat the database file");
  }
  __atomic_store_n(&h->untrusted, uint32_t(kTrusted), __ATOMIC_SEQ_CST);
  return Status::OK();
}

bool Tracker::UntouchedSinceReset(sqlite3_file* db, uint32_t cow_generation) {
  TrackHeader* h = header();
  if (__atomic_load_n(&h->cow_broken, __ATOMIC_SEQ_CST) == cow_generation) return false;
  if (__atomic_load_n(&h->untrusted, __ATOMIC_SEQ_CST) != kTrusted) return false;
  uint8_t counter[4];
  // A commit without the VFS moved the counter past the last tracked one.
  return db->pMethods->xRead(db, counter, sizeof counter, kDbHeaderChangeCounterOffset) == SQLITE_OK &&
         LoadU32BE(counter) == __atomic_load_n(&h->change_counter, __ATOMIC_SEQ_CST);
}

void Tracker::SetBase(uint64_t store_tag, uint64_t base_id, uint32_t base_page_count, int64_t held_before_ms) {
  TrackHeader* h = header();
  // In the order HeldBeforeMs reads them back: a time it reads belongs to
  // the tag before it (the pin cleared both before the marks were taken).
  __atomic_store_n(&h->store_tag, store_tag, __ATOMIC_SEQ_CST);
  h->base_page_count = base_page_count;
  __atomic_store_n(&h->held_before_ms, held_before_ms, __ATOMIC_SEQ_CST);
  __atomic_store_n(&h->base_id, base_id, __ATOMIC_SEQ_CST);
}

int64_t Tracker::HeldBeforeMs(uint64_t store_tag) const {
  const TrackHeader* h = header();
  const int64_t held = __atomic_load_n(&h->held_before_ms, __ATOMIC_SEQ_CST);
  if (held <= 0 || __atomic_load_n(&h->base_id, __ATOMIC_SEQ_CST) == 0 ||
      __atomic_load_n(&h->store_tag, __ATOMIC_SEQ_CST) != store_tag) {
    return 0;
  }
  // The pin that recorded it also recorded its boot (Reset); a machine whose
  // boot cannot be told apart from another's gives no clock to compare.
  uint8_t boot[kBootIdSize], none[kBootIdSize] = {};
  CurrentBootId(boot);
  if (std::memcmp(boot, none, sizeof boot) == 0 || std::memcmp(boot, h->boot_id, sizeof boot) != 0) return 0;
  // A snapshot published since `held` was read was pinned later: it holds
  // all that one did, so the time read is still true.
  return held;
}

void Tracker::SetCowGeneration(uint32_t generation) {
  __atomic_store_n(&header()->cow_generation, generation, __ATOMIC_SEQ_CST);
}

}  // namespace snapshot
