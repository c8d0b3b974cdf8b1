#include "vfs/db_files.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "store/coding.h"
#include "store/format.h"

namespace snapshot {
namespace {

constexpr size_t kWalHeaderSize = 32;
constexpr size_t kWalFrameHeaderSize = 24;
constexpr size_t kReadChunkBytes = 1 << 20;

uint32_t Get32LE(const uint8_t* p) { return uint32_t(p[3]) << 24 | uint32_t(p[2]) << 16 | uint32_t(p[1]) << 8 | p[0]; }

Status ReadAt(sqlite3_file* f, uint64_t offset, size_t n, void* out, bool allow_short) {
  int rc = f->pMethods->xRead(f, out, int(n), sqlite3_int64(offset));
  if (rc == SQLITE_OK || (allow_short && rc == SQLITE_IOERR_SHORT_READ)) return Status::OK();
  return Status::IOError(std::string("cannot read the database: ") + sqlite3_errstr(rc));
}

// WAL checksum (see SQLite's file format document, section 4.1): pairs of
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
  const uint32_t v = uint32_t(h[16]) << 8 | h[17];
  return v == 1 ? 65536 : v;
}

// Fills out->wal_pages from the frames of the last commit; sets page size
// and count when the WAL holds a commit.
Status ScanWal(sqlite3_file* wal, DbImageLayout* out, bool* has_commit) {
  *has_commit = false;
  sqlite3_int64 size = 0;
  if (wal->pMethods->xFileSize(wal, &size) != SQLITE_OK) return Status::IOError("cannot size the -wal file");
  if (uint64_t(size) < kWalHeaderSize) return Status::OK();
  uint8_t h[kWalHeaderSize];
  SNAPSHOT_RETURN_IF_ERROR(ReadAt(wal, 0, sizeof h, h, false));
  const uint32_t magic = LoadU32BE(h);
  if ((magic & 0xFFFFFFFE) != 0x377f0682) return Status::OK();  // not (yet) a WAL: no frames
  const bool big_endian = (magic & 1) != 0;
  const uint32_t page_size = LoadU32BE(h + 8);
  if (page_size < 512 || page_size > 65536 || (page_size & (page_size - 1)) != 0) return Status::OK();
  uint32_t s1 = 0, s2 = 0;
  WalChecksum(big_endian, h, 24, &s1, &s2);
  if (s1 != LoadU32BE(h + 24) || s2 != LoadU32BE(h + 28)) return Status::OK();  // a header never completed
  const uint32_t salt1 = LoadU32BE(h + 16), salt2 = LoadU32BE(h + 20);
  std::memcpy(out->wal_salt, h + 16, 8);

  std::unordered_map<uint32_t, uint64_t> pending;  // frames since the last commit
  std::vector<uint8_t> frame(kWalFrameHeaderSize + page_size);
  for (uint64_t off = kWalHeaderSize; off + frame.size() <= uint64_t(size); off += frame.size()) {
    SNAPSHOT_RETURN_IF_ERROR(ReadAt(wal, off, frame.size(), frame.data(), false));
    const uint8_t* fh = frame.data();
    const uint32_t pgno = LoadU32BE(fh), commit_pages = LoadU32BE(fh + 4);
    if (pgno == 0 || LoadU32BE(fh + 8) != salt1 || LoadU32BE(fh + 12) != salt2) break;
    WalChecksum(big_endian, fh, 8, &s1, &s2);
    WalChecksum(big_endian, fh + kWalFrameHeaderSize, page_size, &s1, &s2);
    if (s1 != LoadU32BE(fh + 16) || s2 != LoadU32BE(fh + 20)) break;
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

}  // namespace

Status ReadDbLayout(sqlite3_file* db, sqlite3_file* wal, DbImageLayout* out) {
  *out = DbImageLayout();
  sqlite3_int64 file_size = 0;
  if (db->pMethods->xFileSize(db, &file_size) != SQLITE_OK) return Status::IOError("cannot size the database file");
  uint8_t h[100];
  std::memset(h, 0, sizeof h);
  if (file_size > 0) SNAPSHOT_RETURN_IF_ERROR(ReadAt(db, 0, sizeof h, h, true));
  out->wal = h[18] == 2;
  if (wal != nullptr && out->wal) {
    bool has_commit = false;
    SNAPSHOT_RETURN_IF_ERROR(ScanWal(wal, out, &has_commit));
    if (has_commit) return Status::OK();
  }
  if (file_size == 0) {
    out->page_size = 4096;
    return Status::OK();
  }
  out->page_size = PageSizeFromHeader(h);
  if (out->page_size < 512 || out->page_size > 65536 || (out->page_size & (out->page_size - 1)) != 0) {
    return Status::Corruption("the database header has an invalid page size");
  }
  // SQLite trusts the in-header size only while the change counter matches
  // the version-valid-for number; otherwise the file size decides.
  const uint32_t header_pages = LoadU32BE(h + 28);
  if (header_pages != 0 && std::memcmp(h + 24, h + 92, 4) == 0) {
    out->page_count = header_pages;
  } else {
    out->page_count = uint32_t((uint64_t(file_size) + out->page_size - 1) / out->page_size);
  }
  return Status::OK();
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
