// The tracking file <db>-snaptrack: our format, not SQLite's. vfs/tracker.h
// is the code that reads and writes it; this header is only its layout, so
// that tests (which cannot include headers that use the loadable-extension
// API) and tools read the same names. It includes nothing of SQLite's.
//
// Every process that opens the database through the `snapshot` VFS maps the
// file MAP_SHARED (like SQLite's -shm), so what one process writes every
// other sees at once. Layout, native byte order (the file never leaves the
// machine):
//
//   offset 0      TrackHeader (below), padded to kTrackHeaderSize bytes
//   kTrackHeaderSize    the WAL frame ring: for frame i, entry
//                       i % kFrameRingSize holds i and the checksum a
//                       tracked writer wrote in its header
//   kTrackBitmapOffset  the bitmap: bit k of byte b is page 8b + k + 1; the
//                       file grows as pages beyond it are marked
//
// Any change a reader of the old layout would misread needs a new
// kTrackMagic/kTrackVersion: a tracking file of another format is started
// over (every page is read once), never misread.
#pragma once

#include <cstddef>
#include <cstdint>

namespace snapshot {

constexpr char kTrackSuffix[] = "-snaptrack";
constexpr char kTrackMagic[9] = "SQSNTRK1";
constexpr uint32_t kTrackVersion = 1;
constexpr uint64_t kTrackHeaderSize = 4096;
constexpr uint32_t kFrameRingSize = 65536;  // a 256 MiB WAL of 4 KiB pages; a longer one is not trusted
struct FrameRecord {
  uint32_t frame;  // 0: empty
  uint32_t unused;
  uint8_t checksum[8];  // the frame header's checksum (vfs/sqlite_format.h)
};
constexpr uint64_t kTrackBitmapOffset = kTrackHeaderSize + kFrameRingSize * sizeof(FrameRecord);

// Why the bits cannot be trusted (TrackHeader::untrusted); 0 means trusted.
enum UntrustedReason : uint32_t {
  kTrusted = 0,
  kForeignCommit = 1,     // the change counter moved without a tracked writer
  kForeignWal = 2,        // WAL frames or a WAL generation no tracked writer wrote
  kOddWrite = 3,          // a write that is not one whole page of the known size
  kRestored = 4,          // snapshot_restore rewrote the database
  kMarkFailed = 5,        // a bit could not be set (the file could not grow)
  kNoBase = 6,            // no snapshot has used the bits yet, or one did not finish
  kOtherFile = 7,         // the database file was replaced
  kRebooted = 8,          // the machine restarted since the bits were reset
  kPageSizeChanged = 9,
  kOtherStore = 10,       // the base snapshot is not in this store (or was pruned)
  kNewFormat = 11,        // a tracking file of another format
  kIoError = 12,          // the VFS could not read what it checks (an I/O error)
};

enum WalState : uint32_t {
  kWalUnknown = 0,
  kWalLive = 1,   // wal_salt and wal_commit describe the current -wal
  kWalEnded = 2,  // a tracked connection ended the WAL (deleted or truncated it)
};

struct TrackHeader {
  char magic[8];
  uint32_t version;
  uint32_t page_size;        // the database's page size when the bits were reset
  uint64_t dev, ino;         // the database file the bits are about
  uint8_t boot_id[16];       // bits not yet written back are lost on a crash of the machine
  uint64_t store_tag;        // Store::tag() of the store holding base_id
  uint64_t base_id;          // the bits are "changed since snapshot base_id"; 0: no base
  uint32_t base_page_count;  // that snapshot's page count
  uint32_t untrusted;        // an UntrustedReason; set by writers, cleared by a reset
  uint32_t change_counter;   // file change counter last written to page 1 by a tracked writer
  uint8_t wal_salt[8];       // salts of the WAL generation tracked writers write
  uint32_t wal_commit;       // last commit frame of that generation known to be tracked
  uint32_t wal_state;        // a WalState
  int64_t ended_mtime_ns;    // the database file's mtime and size when the WAL ended,
  int64_t ended_size;        // and whether a later write could share that mtime
  uint32_t ended_racy;
  uint32_t cow_generation;   // nonzero while a copy-on-write snapshot reads (vfs/cow.h)
  uint32_t cow_broken;       // a generation for which a writer could not preserve a page
  uint32_t cow_last_generation;  // the last generation handed out (each is new)
  uint64_t pages_written;    // by tracked writers, ever: a hint that they are active
  uint64_t writes_ended;     // write transactions tracked writers ended, ever: a
                             // snapshot starts its own disk writes right after one
  uint64_t writes_begun;     // ... and began: while the two differ, one is running
  uint64_t auto_hint;        // automatic snapshots' hint to every process (ext/auto_snapshot.h):
                             // whether they are on, and a generation snapshot_auto() bumps; 0
                             // (a new file, or one an older version wrote): unknown
  int64_t held_before_ms;    // MonotonicMs() on boot boot_id when snapshot base_id was pinned:
                             // every write transaction that ended before it is in that
                             // snapshot (ext/auto_snapshot.cc); 0: unknown
};
static_assert(sizeof(TrackHeader) <= kTrackHeaderSize, "header fits its block");
// The layout is the format: these fields must stay where version 1 put them.
static_assert(offsetof(TrackHeader, boot_id) == 32 && offsetof(TrackHeader, cow_last_generation) == 124 &&
                  offsetof(TrackHeader, writes_ended) == 136 && offsetof(TrackHeader, writes_begun) == 144 &&
                  offsetof(TrackHeader, auto_hint) == 152 &&
                  offsetof(TrackHeader, held_before_ms) == 160,
              "a new layout needs a new kTrackVersion");

}  // namespace snapshot
