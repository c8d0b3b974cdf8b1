// The copy-on-write area, <db>-snapcow: lets a snapshot read a database in
// rollback-journal mode without holding a lock that stops writers.
//
// The snapshot pins the database's state under the write lock, lists the
// pages it needs here, and lets go of the lock. From then on a writer
// (through the snapshot VFS) about to overwrite a needed page first copies
// the page's current content, which is still the pinned content, into a
// slot of this file, then publishes the slot in the page's state. The
// snapshot reads each page from the database file and then retires it
// (needed -> done): if that fails, a writer preserved the page first, and
// the slot holds the pinned content instead. SQLite lets one writer at a
// time change the database file, so a page is preserved at most once.
// Layout, native byte order:
//
//   offset 0      CowHeader (unlisted_needed: what state 0 means)
//   offset 4096   uint32 state[page_count]: 0 unlisted (needed if the
//                 header says every unlisted page is, as in a full
//                 snapshot, else not); 1 needed; 2 done; 3 + k preserved
//                 in slot k
//   slots_offset  slot k: page_size bytes at slots_offset + k * page_size
//
// A new file reads as zeros, so a full snapshot's pin writes no state: the
// pin holds the write lock, and writers wait for every microsecond of it.
//
// The file is never fsynced: it matters only while its snapshot runs, and a
// crash ends that snapshot. Each snapshot creates a new file under a
// temporary name and renames it into place; writers map the file of the
// generation the tracking header announces (vfs/tracker.h).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "store/status.h"
#include "vfs/sqlite_api.h"

namespace snapshot {

class CowArea {
 public:
  ~CowArea();
  // Removes any `<path>.tmp-<pid>`: a snapshot that died between creating
  // and publishing its area left it. The caller holds the database's
  // snapshot lock (one snapshot at a time), and not its write lock (this
  // lists a directory).
  static void RemoveAbandoned(const std::string& path);
  // Creates the area of a snapshot of page_count pages needing `needed`
  // (page numbers), or every page when null (a full snapshot; SQLite never
  // writes the lock-byte page, so listing it costs nothing).
  static Status Create(const std::string& path, uint32_t generation, uint32_t page_size, uint32_t page_count,
                       const std::vector<uint32_t>* needed, mode_t mode, std::unique_ptr<CowArea>* out);
  // Maps the area at `path` if it is of `generation` (writers); else null.
  static std::unique_ptr<CowArea> Map(const std::string& path, uint32_t generation);

  uint32_t generation() const { return generation_; }
  uint32_t page_count() const { return page_count_; }

  // Writer: called before page pgno of `db` is overwritten. Copies it into
  // a slot if the snapshot still needs it.
  Status Preserve(sqlite3_file* db, uint32_t pgno);

  // Snapshot: `page` holds pgno's content as just read from the database
  // file. Retires the page and replaces `page` with the preserved copy when a
  // writer got there first.
  Status Settle(uint32_t pgno, uint8_t* page);

  // Snapshot, once it has read every page: frees the preserved copies.
  // Writers keep the file open and mapped until the next snapshot; without
  // this its slots would stay allocated that long, and be written back to
  // the disk for nothing. (The states stay: writers may still look at them.
  // A copy a writer finishes after this only extends the file again.)
  void FreeSlots();

 private:
  CowArea(int fd, uint32_t generation, uint32_t page_size, uint32_t page_count, bool unlisted_needed, void* map,
          size_t map_size);
  uint32_t* state(uint32_t pgno) const;
  bool needed(uint32_t state) const;
  uint64_t slot_offset(uint64_t slot) const;

  int fd_;
  uint32_t generation_, page_size_, page_count_;
  bool unlisted_needed_;
  void* map_;
  size_t map_size_;
};

}  // namespace snapshot
