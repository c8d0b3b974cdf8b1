#include "vfs/db_files.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "store/coding.h"
#include "store/format.h"
#include "store/manifest.h"
#include "vfs/sqlite_format.h"

namespace snapshot {
namespace {

constexpr size_t kReadChunkBytes = 1 << 20;

uint32_t Get32LE(const uint8_t* p) { return uint32_t(p[3]) << 24 | uint32_t(p[2]) << 16 | uint32_t(p[1]) << 8 | p[0]; }

Status ReadAt(sqlite3_file* f, uint64_t offset, size_t n, void* out, bool allow_short) {
  int rc = f->pMethods->xRead(f, out, int(n), sqlite3_int64(offset));
  if (rc == SQLITE_OK || (allow_short && rc == SQLITE_IOERR_SHORT_READ)) return Status::OK();
  return Status::IOError(std::string("cannot read the database: ") + sqlite3_errstr(rc));
}

// WAL checksum (SQLite's file format document, section 4.1): pairs of
// 32-bit words, in the byte order the WAL header's magic number names.
void WalChecksum(bool big_endian, const uint8_t* p, size_t n, uint32_t* s1, uint32_t* s2) {
  for (size_t i = 0; i + 8 <= n; i += 8) {
    const uint32_t x0 = big_endian ? LoadU32BE(p + i) : Get32LE(p + i);
    const uint32_t x1 = big_endian ? LoadU32BE(p + i + 4) : Get32LE(p + i + 4);
    *s1 += x0 + *s2;
    *s2 += x1 + *s1;
  }
}

uint32_t PageSizeFromHeader(const uint8_t* h) {
  const uint32_t v = uint32_t(h[kDbHeaderPageSizeOffset]) << 8 | h[kDbHeaderPageSizeOffset + 1];
  return v == 1 ? kMaxPageSize : v;
}

// Fills out->wal_pages from the frames of the last commit (at most frame
// `max_frame`); sets page size and count when the WAL holds a commit.
Status ScanWal(sqlite3_file* wal, uint32_t max_frame, DbImageLayout* out, bool* has_commit) {
  *has_commit = false;
  sqlite3_int64 size = 0;
  if (wal->pMethods->xFileSize(wal, &size) != SQLITE_OK) return Status::IOError("cannot size the -wal file");
  if (uint64_t(size) < kWalHeaderSize) return Status::OK();
  uint8_t h[kWalHeaderSize];
  SNAPSHOT_RETURN_IF_ERROR(ReadAt(wal, 0, sizeof h, h, false));
  const uint32_t magic = LoadU32BE(h + kWalHeaderMagicOffset);
  if (!IsWalMagic(magic)) return Status::OK();  // not (yet) a WAL: no frames
  const bool big_endian = (magic & kWalMagicByteOrderBit) != 0;
  const uint32_t page_size = LoadU32BE(h + kWalHeaderPageSizeOffset);
  if (!IsValidPageSize(page_size)) return Status::OK();
  uint32_t s1 = 0, s2 = 0;
  WalChecksum(big_endian, h, kWalHeaderChecksummedSize, &s1, &s2);
  if (s1 != LoadU32BE(h + kWalHeaderChecksumOffset) || s2 != LoadU32BE(h + kWalHeaderChecksumOffset + 4)) {
    return Status::OK();  // a header never completed
  }
  const uint32_t salt1 = LoadU32BE(h + kWalHeaderSaltOffset), salt2 = LoadU32BE(h + kWalHeaderSaltOffset + 4);
  std::memcpy(out->wal_salt, h + kWalHeaderSaltOffset, kWalSaltSize);

  std::unordered_map<uint32_t, uint64_t> pending;  // frames since the last commit
  std::vector<uint8_t> frame(kWalFrameHeaderSize + page_size);
  const uint64_t end = std::min(uint64_t(size), kWalHeaderSize + uint64_t(max_frame) * frame.size());
  for (uint64_t off = kWalHeaderSize; off + frame.size() <= end; off += frame.size()) {
    SNAPSHOT_RETURN_IF_ERROR(ReadAt(wal, off, frame.size(), frame.data(), false));
    const uint8_t* fh = frame.data();
    const uint32_t pgno = LoadU32BE(fh + kWalFramePageNumberOffset);
    const uint32_t commit_pages = LoadU32BE(fh + kWalFrameCommitSizeOffset);
    if (pgno == 0 || LoadU32BE(fh + kWalFrameSaltOffset) != salt1 || LoadU32BE(fh + kWalFrameSaltOffset + 4) != salt2) {
      break;
    }
    WalChecksum(big_endian, fh, kWalFrameChecksummedSize, &s1, &s2);
    WalChecksum(big_endian, fh + kWalFrameHeaderSize, page_size, &s1, &s2);
    if (s1 != LoadU32BE(fh + kWalFrameChecksumOffset) || s2 != LoadU32BE(fh + kWalFrameChecksumOffset + 4)) break;
    pending[pgno] = off + kWalFrameHeaderSize;
    if (commit_pages != 0) {
      out->wal_commit_frame = uint32_t((off - kWalHeaderSize) / frame.size() + 1);
      for (const auto& [p, o] : pending) out->wal_pages[p] = o;
      pending.clear();
      out->page_size = page_size;
      out->page_count = commit_pages;
      *has_commit = true;
    }
  }
  return Status::OK();
}

// The layout of the database file alone (no WAL content), from its header.
Status ReadDbFileLayout(sqlite3_int64 file_size, const uint8_t* h, DbImageLayout* out) {
  if (file_size == 0) {
    out->page_size = 4096;
    return Status::OK();
  }
  out->page_size = PageSizeFromHeader(h);
  if (!IsValidPageSize(out->page_size)) {
    return Status::Corruption("the database header has an invalid page size");
  }
  // SQLite trusts the in-header size only while the change counter matches
  // the version-valid-for number; otherwise the file size decides.
  const uint32_t header_pages = LoadU32BE(h + kDbHeaderPageCountOffset);
  if (header_pages != 0 &&
      LoadU32BE(h + kDbHeaderChangeCounterOffset) == LoadU32BE(h + kDbHeaderVersionValidForOffset)) {
    out->page_count = header_pages;
  } else {
    out->page_count = uint32_t((uint64_t(file_size) + out->page_size - 1) / out->page_size);
  }
  return Status::OK();
}

Status ReadDbHeader(sqlite3_file* db, sqlite3_int64* file_size, uint8_t* h) {
  if (db->pMethods->xFileSize(db, file_size) != SQLITE_OK) return Status::IOError("cannot size the database file");
  std::memset(h, 0, kDbHeaderSize);
  if (*file_size > 0) SNAPSHOT_RETURN_IF_ERROR(ReadAt(db, 0, kDbHeaderSize, h, true));
  return Status::OK();
}

// Region 0 of the database's wal-index, if this connection has it mapped.
const volatile void* MappedWalIndex(sqlite3_file* db) {
  if (db->pMethods->iVersion < 2 || db->pMethods->xShmMap == nullptr) return nullptr;
  void volatile* region = nullptr;
  if (db->pMethods->xShmMap(db, 0, kWalIndexRegionSize, 0, &region) != SQLITE_OK) return nullptr;
  return region;
}

}  // namespace

Status ReadDbLayout(sqlite3_file* db, sqlite3_file* wal, DbImageLayout* out) {
  *out = DbImageLayout();
  sqlite3_int64 file_size = 0;
  uint8_t h[kDbHeaderSize];
  SNAPSHOT_RETURN_IF_ERROR(ReadDbHeader(db, &file_size, h));
  out->wal = h[kDbHeaderWriteVersionOffset] == kFileFormatWal;
  if (wal != nullptr && out->wal) {
    bool has_commit = false;
    SNAPSHOT_RETURN_IF_ERROR(ScanWal(wal, UINT32_MAX, out, &has_commit));
    if (has_commit) return Status::OK();
  }
  return ReadDbFileLayout(file_size, h, out);
}

Status ReadDbLayoutForPin(sqlite3_file* db, sqlite3_file* wal, DbImageLayout* out, bool* frames_pending) {
  *frames_pending = false;
  *out = DbImageLayout();
  sqlite3_int64 file_size = 0;
  uint8_t h[kDbHeaderSize];
  SNAPSHOT_RETURN_IF_ERROR(ReadDbHeader(db, &file_size, h));
  out->wal = h[kDbHeaderWriteVersionOffset] == kFileFormatWal;
  if (!out->wal || wal == nullptr) return ReadDbFileLayout(file_size, h, out);
  // (Only now: mapping the wal-index of a rollback-mode database would
  // create its -shm file.)
  WalIndexHeader index;
  const volatile void* region = MappedWalIndex(db);
  if (region == nullptr || !ReadWalIndexHeader(region, &index)) return ReadDbLayout(db, wal, out);
  if (index.max_frame == 0) return ReadDbFileLayout(file_size, h, out);
  out->page_size = index.page_size;
  out->page_count = index.page_count;
  out->wal_commit_frame = index.max_frame;
  std::memcpy(out->wal_salt, index.salt, kWalSaltSize);
  *frames_pending = true;
  return Status::OK();
}

Status MapWalFrames(sqlite3_file* wal, DbImageLayout* layout) {
  // Whether the WAL still holds the pinned generation: restarting it
  // rewrites its header before any frame. A header that cannot be read is
  // an error, not a restart: taken for one, the snapshot would be the
  // database file without the WAL's commits.
  auto same_generation = [&](bool* same) {
    uint8_t h[kWalHeaderSize];
    // (A WAL truncated to nothing reads as zeros: not the generation.)
    SNAPSHOT_RETURN_IF_ERROR(ReadAt(wal, 0, sizeof h, h, /*allow_short=*/true));
    *same = std::memcmp(h + kWalHeaderSaltOffset, layout->wal_salt, kWalSaltSize) == 0;
    return Status::OK();
  };
  bool same = false;
  SNAPSHOT_RETURN_IF_ERROR(same_generation(&same));
  if (!same) return Status::OK();  // checkpointed whole: the database file holds it all
  DbImageLayout scanned;
  bool has_commit = false;
  SNAPSHOT_RETURN_IF_ERROR(ScanWal(wal, layout->wal_commit_frame, &scanned, &has_commit));
  if (has_commit && scanned.wal_commit_frame == layout->wal_commit_frame &&
      std::memcmp(scanned.wal_salt, layout->wal_salt, kWalSaltSize) == 0 && scanned.page_size == layout->page_size) {
    layout->wal_pages = std::move(scanned.wal_pages);
    return Status::OK();
  }
  SNAPSHOT_RETURN_IF_ERROR(same_generation(&same));
  if (!same) return Status::OK();  // restarted while it was read
  return Status::Corruption("the -wal file does not hold the commit its wal-index names");
}

int64_t LastCommitWriteTime(const char* db_filename, bool wal_mode) {
  if (db_filename == nullptr || db_filename[0] == '\0') return kUnknownCommitTime;
  struct stat st;
  const char* wal = wal_mode ? sqlite3_filename_wal(db_filename) : nullptr;
  const bool from_wal = wal != nullptr && stat(wal, &st) == 0 && uint64_t(st.st_size) > kWalHeaderSize;
  if (!from_wal && stat(db_filename, &st) != 0) return kUnknownCommitTime;
  return int64_t(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
}

bool ReadWalIndexHeader(const volatile void* region0, WalIndexHeader* out) {
  // Two copies (SQLite writes the second, then the first); the fields are
  // in native byte order, the salts as the WAL header has them.
  constexpr size_t kCopy = kWalIndexHeaderCopySize;
  const volatile uint8_t* p = static_cast<const volatile uint8_t*>(region0);
  uint8_t copies[2 * kCopy];
  for (size_t i = 0; i < sizeof copies; i++) copies[i] = p[i];
  if (std::memcmp(copies, copies + kCopy, kCopy) != 0 || copies[kWalIndexIsInitOffset] != 1) return false;
  auto u32 = [&](size_t at) {
    uint32_t v;
    std::memcpy(&v, copies + at, 4);
    return v;
  };
  uint16_t page_size_code;
  std::memcpy(&page_size_code, copies + kWalIndexPageSizeOffset, sizeof page_size_code);
  out->page_size = WalIndexPageSize(page_size_code);
  out->max_frame = u32(kWalIndexMaxFrameOffset);
  out->page_count = u32(kWalIndexPageCountOffset);
  StoreU32BE(out->last_checksum, u32(kWalIndexFrameChecksumOffset));
  StoreU32BE(out->last_checksum + 4, u32(kWalIndexFrameChecksumOffset + 4));
  std::memcpy(out->salt, copies + kWalIndexSaltOffset, kWalSaltSize);
  return out->page_size >= kMinPageSize && (out->page_size & (out->page_size - 1)) == 0;
}

Status ReadDbPages(sqlite3_file* db, sqlite3_file* wal, const DbImageLayout& layout,
                   const std::function<Status(uint32_t, const uint8_t*)>& fn) {
  const uint32_t page_size = layout.page_size;
  const uint32_t lock_page = LockBytePage(page_size);
  const uint32_t chunk = std::max<uint32_t>(1, uint32_t(kReadChunkBytes / page_size));
  std::vector<uint8_t> buf(size_t(chunk) * page_size);
  for (uint32_t first = 1; first <= layout.page_count; first += chunk) {
    const uint32_t n = std::min(chunk, layout.page_count - first + 1);
    SNAPSHOT_RETURN_IF_ERROR(ReadAt(db, uint64_t(first - 1) * page_size, size_t(n) * page_size, buf.data(), true));
    for (uint32_t i = 0; i < n; i++) {
      const uint32_t pgno = first + i;
      if (pgno == lock_page) continue;
      uint8_t* page = buf.data() + size_t(i) * page_size;
      if (!layout.wal_pages.empty()) {
        auto it = layout.wal_pages.find(pgno);
        if (it != layout.wal_pages.end()) SNAPSHOT_RETURN_IF_ERROR(ReadAt(wal, it->second, page_size, page, false));
      }
      SNAPSHOT_RETURN_IF_ERROR(fn(pgno, page));
    }
  }
  return Status::OK();
}

}  // namespace snapshot
