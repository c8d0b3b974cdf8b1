// Commits page writes to a rollback-journal database exactly as SQLite's
// pager does, so that SQLite itself can undo a half-done commit.
//
// The caller holds the database's EXCLUSIVE lock (restore takes it through
// sqlite3_backup). Then:
//   1. the original content of every page to be overwritten or cut off by
//      a truncation goes into
//      <db>-journal (header, then records of page number, data, checksum:
//      SQLite's file format, section 4) and the journal is synced; the
//      VFS syncs the directory too, since the journal is new;
//   2. the new pages are written and the database file synced;
//   3. deleting the journal is the commit point.
// A crash before 3 leaves a hot journal: the next connection to open the
// database (any process, with or without this extension) rolls it back. A
// failure here does the same: the journal is left for SQLite to roll back.
//
// All I/O goes through the connection's own VFS, so shims see every write.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "store/status.h"
#include "vfs/sqlite_api.h"

namespace snapshot {

struct JournalCommit {
  sqlite3_vfs* vfs = nullptr;
  const char* journal_name = nullptr;  // sqlite3_filename_journal()
  sqlite3_file* db = nullptr;
  uint32_t page_size = 0;
  uint32_t old_page_count = 0;
  uint32_t new_page_count = 0;
  // Pages to write, ascending, each in 1..new_page_count (never the
  // lock-byte page).
  std::vector<uint32_t> pages;
  // Writes n pages from first_pgno (page_size bytes each, one after another
  // in `data`) into the database; refuses a page not in `pages` or written
  // before.
  using PageWriter = std::function<Status(uint32_t first_pgno, uint32_t n, const uint8_t* data)>;
  // Produces the new content: calls `write` for every page in `pages`,
  // once each, in any order (a restore writes them in the order its store
  // holds them). Called once the journal is durable.
  std::function<Status(const PageWriter& write)> write_pages;
};

Status CommitThroughJournal(const JournalCommit& commit);

}  // namespace snapshot
