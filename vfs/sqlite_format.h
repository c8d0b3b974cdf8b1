// SQLite's own file formats, as far as this project reads or writes them,
// named once. Everything here is SQLite's, not ours: it is fixed by SQLite's
// "Database File Format" document (https://www.sqlite.org/fileformat2.html)
// and, for the -shm file, "WAL-mode File Format"
// (https://www.sqlite.org/walformat.html); each group below names its
// section. The readers (vfs/db_files.cc, the tracker's WAL checks, ext/'s
// restore and capture) and the writers (vfs/journal_commit.cc, restore's
// new page 1) share these names, as LevelDB's db/log_format.h is shared by
// its log reader and writer, so that a reader and a writer cannot disagree
// about where a field is.
//
// Integers in the database file, the rollback journal and the WAL are
// big-endian (store/coding.h's LoadU32BE/StoreU32BE); the wal-index in the
// -shm file is in the machine's byte order. Our own files are specified
// elsewhere: the store's in store/format.h and docs/FORMAT.md, the tracking
// file -snaptrack in vfs/tracking_format.h.
//
// Not here, on purpose: the lock-byte page (the page holding byte offset
// 2^30, which SQLite never reads or writes) is LockBytePage() in
// store/format.h, since the store leaves it out of every snapshot too; the
// valid page sizes are IsValidPageSize() there.
#pragma once

#include <cstddef>
#include <cstdint>

namespace snapshot {

// ---- The database header: page 1's first 100 bytes (fileformat2, 1.3) -----
constexpr size_t kDbHeaderSize = 100;
// "SQLite format 3" and its terminating NUL.
constexpr char kDbHeaderMagic[] = "SQLite format 3";
constexpr size_t kDbHeaderMagicSize = 16;
// 2 bytes: the page size, or 1 for 65536 (1.3.2).
constexpr size_t kDbHeaderPageSizeOffset = 16;
// 1 byte each: 1 is rollback-journal mode ("legacy"), 2 is WAL mode (1.3.3).
constexpr size_t kDbHeaderWriteVersionOffset = 18;
constexpr size_t kDbHeaderReadVersionOffset = 19;
constexpr uint8_t kFileFormatRollback = 1;
constexpr uint8_t kFileFormatWal = 2;
// 4 bytes: the file change counter, bumped by every commit in rollback mode
// (not in WAL mode) (1.3.8).
constexpr size_t kDbHeaderChangeCounterOffset = 24;
// 4 bytes: the in-header database size in pages, trusted only while the
// version-valid-for number equals the change counter (1.3.9).
constexpr size_t kDbHeaderPageCountOffset = 28;
// 4 bytes: the first freelist trunk page (1.3.10).
constexpr size_t kDbHeaderFreelistTrunkOffset = 32;
// 4 bytes: the schema cookie, bumped by every schema change (1.3.11).
constexpr size_t kDbHeaderSchemaCookieOffset = 40;
// 4 bytes: the change counter the in-header size and the SQLite version
// below were last written with (1.3.17).
constexpr size_t kDbHeaderVersionValidForOffset = 92;
// 4 bytes: SQLITE_VERSION_NUMBER of the library that last wrote the file
// (1.3.18).
constexpr size_t kDbHeaderSqliteVersionOffset = 96;

// ---- The rollback journal, <db>-journal (fileformat2, 3) ----------------------
// A header padded to a sector, then one record per saved page: its page
// number (4 bytes), its original content, and a checksum (4 bytes).
constexpr uint8_t kJournalMagic[8] = {0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7};
constexpr size_t kJournalMagicOffset = 0;
constexpr size_t kJournalRecordCountOffset = 8;     // records in this segment
constexpr size_t kJournalNonceOffset = 12;          // seeds each record's checksum
constexpr size_t kJournalInitialPagesOffset = 16;   // the database's size before the transaction
constexpr size_t kJournalSectorSizeOffset = 20;     // the header's padded size
constexpr size_t kJournalPageSizeOffset = 24;
constexpr size_t kJournalRecordPageNumberSize = 4;
constexpr size_t kJournalRecordChecksumSize = 4;
constexpr size_t kJournalRecordOverhead = kJournalRecordPageNumberSize + kJournalRecordChecksumSize;
// A record's checksum is the nonce plus every 200th byte of the page, from
// the end (the pager's pager_cksum()).
constexpr uint32_t kJournalChecksumStride = 200;
// The sector size the pager pads the header to: the file's, clamped to
// this range, or the default when the file is powersafe-overwrite or
// reports less than the minimum (the pager's setSectorSize()).
constexpr uint32_t kJournalMinSectorSize = 32;
constexpr uint32_t kJournalMaxSectorSize = 65536;
constexpr uint32_t kJournalDefaultSectorSize = 512;

// ---- The WAL, <db>-wal (fileformat2, 4.1) ------------------------------------------
// A 32-byte header, then frames: a 24-byte frame header and one page each.
constexpr size_t kWalHeaderSize = 32;
// 4 bytes: the magic; its low bit says which byte order the checksums use
// (1: big-endian).
constexpr size_t kWalHeaderMagicOffset = 0;
constexpr uint32_t kWalMagic = 0x377f0682;
constexpr uint32_t kWalMagicByteOrderBit = 1;
constexpr size_t kWalHeaderPageSizeOffset = 8;
// 8 bytes: salt-1 and salt-2, new for each generation of the WAL; a frame
// belongs to the generation whose salts it carries.
constexpr size_t kWalHeaderSaltOffset = 16;
// 8 bytes: the checksum of the header's first 24 bytes.
constexpr size_t kWalHeaderChecksumOffset = 24;
constexpr size_t kWalHeaderChecksummedSize = kWalHeaderChecksumOffset;

constexpr size_t kWalFrameHeaderSize = 24;
constexpr size_t kWalFramePageNumberOffset = 0;
// 4 bytes: for a commit frame, the database's size in pages after the
// commit; 0 for every other frame.
constexpr size_t kWalFrameCommitSizeOffset = 4;
constexpr size_t kWalFrameSaltOffset = 8;
// 8 bytes: the cumulative checksum through this frame.
constexpr size_t kWalFrameChecksumOffset = 16;
// The frame header's part the checksum covers, before the page itself.
constexpr size_t kWalFrameChecksummedSize = kWalFrameSaltOffset;
constexpr size_t kWalSaltSize = 8;
constexpr size_t kWalChecksumSize = 8;

inline bool IsWalMagic(uint32_t magic) { return (magic & ~kWalMagicByteOrderBit) == kWalMagic; }
// Where frame `frame` (1-based) starts in a WAL of `page_size` pages.
inline uint64_t WalFrameOffset(uint32_t frame, uint32_t page_size) {
  return kWalHeaderSize + uint64_t(frame - 1) * (kWalFrameHeaderSize + page_size);
}

// ---- The wal-index header, at the start of the -shm file (walformat, 2.1) ----
// Region 0 as xShmMap hands it out; the header is two copies of one
// 48-byte struct (SQLite writes the second, then the first), in the
// machine's byte order except for the salts, copied from the WAL header.
constexpr size_t kWalIndexRegionSize = 32 * 1024;
constexpr size_t kWalIndexHeaderCopySize = 48;
constexpr size_t kWalIndexIsInitOffset = 12;        // 1 byte: 1 once initialised
constexpr size_t kWalIndexPageSizeOffset = 14;      // 2 bytes: see WalIndexPageSize
constexpr size_t kWalIndexMaxFrameOffset = 16;      // last frame of the last commit
constexpr size_t kWalIndexPageCountOffset = 20;     // database size at that commit
constexpr size_t kWalIndexFrameChecksumOffset = 24; // 8 bytes: of frame max_frame
constexpr size_t kWalIndexSaltOffset = 32;          // 8 bytes
// The page size field holds (page_size & 0xff00) | (page_size >> 16), so
// that 65536 fits in 16 bits.
inline uint32_t WalIndexPageSize(uint16_t field) { return (field & 0xfe00) + (uint32_t(field & 1) << 16); }

}  // namespace snapshot
