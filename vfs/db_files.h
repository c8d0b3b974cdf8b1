// Reading a database's committed image straight from its files, as SQLite
// would after a crash: the database file, overlaid in WAL mode with every
// frame of the -wal file up to and including its last commit frame.
//
// The caller must keep the image still while reading: in rollback-journal
// mode by holding a lock that stops writers (SHARED or more); in WAL mode by
// holding the WAL write lock, so no frame is appended and the WAL is not
// restarted (for MapWalFrames, a read transaction at the pinned commit). (A
// concurrent checkpoint only copies frames into the database file; every
// page it touches is read from the WAL here anyway.)
#pragma once

#include <cstdint>
#include <functional>
#include <unordered_map>

#include "store/status.h"
#include "vfs/sqlite_api.h"

namespace snapshot {

struct DbImageLayout {
  uint32_t page_size = 0;
  uint32_t page_count = 0;
  bool wal = false;
  uint8_t wal_salt[8] = {};  // of the WAL generation the frames below belong to
  uint32_t wal_commit_frame = 0;  // the WAL's last valid commit frame (0: none)
  // Page number -> file offset of its page data in the WAL (its newest
  // frame up to the last commit frame).
  std::unordered_map<uint32_t, uint64_t> wal_pages;
};

// Works out page size, page count and (with `wal` non-null) which pages come
// from the WAL.
Status ReadDbLayout(sqlite3_file* db, sqlite3_file* wal, DbImageLayout* out);

// The same in two steps, so that the WAL write lock is held for a moment
// rather than for a walk of the whole WAL. Under the write lock,
// ReadDbLayoutForPin reads the database header and, in WAL mode, the last
// commit as SQLite's wal-index names it, reading no frame (*frames_pending).
// Once a read transaction holds that commit and the lock is let go,
// MapWalFrames finds its frames: the WAL cannot be restarted under that
// reader, unless the whole WAL was already checkpointed, in which case the
// database file alone holds the state and no frame is mapped. Without a
// wal-index to read, ReadDbLayoutForPin is ReadDbLayout.
Status ReadDbLayoutForPin(sqlite3_file* db, sqlite3_file* wal, DbImageLayout* out, bool* frames_pending);
Status MapWalFrames(sqlite3_file* wal, DbImageLayout* layout);

// SQLite's wal-index header (https://www.sqlite.org/walformat.html, 2.1),
// as the connection holding the WAL write lock sees it.
struct WalIndexHeader {
  uint32_t max_frame = 0;       // last frame of the last commit (0: none)
  uint32_t page_count = 0;      // the database's size at that commit
  uint32_t page_size = 0;
  uint8_t salt[8] = {};         // as in the WAL header
  uint8_t last_checksum[8] = {};  // of frame max_frame, as its header stores it
};
// `region0`: region 0 of the -shm mapping. False unless both copies of the
// header agree and it is initialised.
bool ReadWalIndexHeader(const volatile void* region0, WalIndexHeader* out);

// When the newest commit in the database's files was written, from the file
// system's modification times (Unix ms), or kUnknownCommitTime (a database
// without a file). In WAL mode the -wal file's while it holds frames: every
// commit is written there, and a checkpoint, which writes the database
// file, dates that file after the commit; else (rollback mode, or a WAL
// emptied or never written) the database file's. `db_filename` is what
// sqlite3_db_filename returns. Every writer, through any VFS, moves these
// times, so the result is at or after the newest commit; it is that
// commit's time, to the file system's resolution, when no writer could
// write meanwhile (the caller holds the write lock, or in rollback mode a
// read lock), and later otherwise. Costs a stat() or two.
int64_t LastCommitWriteTime(const char* db_filename, bool wal_mode);

// Calls fn(pgno, page) for pages 1..page_count in order, skipping the
// lock-byte page.
Status ReadDbPages(sqlite3_file* db, sqlite3_file* wal, const DbImageLayout& layout,
                   const std::function<Status(uint32_t, const uint8_t*)>& fn);

}  // namespace snapshot
