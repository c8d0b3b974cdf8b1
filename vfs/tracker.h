// The tracking file, <db>-snaptrack: which pages of a database changed since
// its last snapshot, and the evidence needed to trust that record. Its
// layout is vfs/tracking_format.h.
//
// Every process that opens the database through the `snapshot` VFS maps the
// file MAP_SHARED (like SQLite's -shm), so what one process writes every other
// sees at once, and what is written survives the process being killed (the
// kernel holds the page).
//
// Writers (vfs/snapshot_vfs.cc) call the On* hooks before passing a write
// on: the page's bit is set first, so a write that reaches the file is never
// unmarked. They also keep the evidence a snapshot checks before it trusts
// the bits (docs/VFS.md, section 3): the change counter they last wrote
// (rollback mode), the salts and highest frame of the WAL they write (WAL
// mode), and an `untrusted` flag they raise when they see that someone else
// wrote. A snapshot (ext/tracked_capture.cc) takes the bits under the
// database's write lock, so the set it takes is exactly "changed since the
// base snapshot, up to this commit".
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <functional>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "store/status.h"
#include "vfs/sqlite_api.h"
#include "vfs/tracking_format.h"

namespace snapshot {

constexpr char kCowSuffix[] = "-snapcow";

const char* UntrustedReasonText(uint32_t reason);

class CowArea;

// One database's tracking file, shared by all connections of this process.
class Tracker {
 public:
  // A read of the -wal file for the checks below. kPastEnd (a short read)
  // is the end of the WAL; kFailed is an error, which the checks never take
  // for the end: frames they could not read may be someone else's.
  enum class ReadResult { kOk, kPastEnd, kFailed };
  using ReadFn = std::function<ReadResult(uint64_t offset, void* out, size_t n)>;
  // Opens (creating it, with the database's permission bits) and maps the
  // tracking file of the database at db_path; nullptr if it cannot.
  static Tracker* Acquire(const std::string& db_path);
  // The same, only if the file exists already (never creates one).
  static Tracker* AcquireExisting(const std::string& db_path);
  static Tracker* Find(const std::string& db_path);  // an acquired one, or nullptr
  // A new reference (to Release) to one this process has open, or nullptr:
  // never opens the file.
  static Tracker* AcquireIfOpen(const std::string& db_path);
  static void Release(Tracker* t);
  // The database at db_path was deleted: removes its tracking and
  // copy-on-write files, unless this process still has the tracker open (a
  // connection open on the deleted file; its snapshots lock the tracking
  // file by path). Another process that has them mapped keeps its mapping;
  // a database made later at the path starts with no base.
  static void RemoveSideFiles(const std::string& db_path) noexcept;

  const std::string& db_path() const { return db_path_; }
  // Mapped once, apart from the bitmap, so it never moves.
  TrackHeader* header() const { return header_; }

  // ---- writer hooks (the snapshot VFS) -------------------------------------
  // A write to the database file; `real` is the underlying file. A write
  // whose content does not change the database (a WAL checkpoint) is not
  // marked, but still preserved for a running copy-on-write snapshot.
  // `counter_in_file`: the change counter the writer read (or wrote) under
  // the lock it holds, or null for unknown (it is then read from `real`).
  // Returns SQLITE_OK, or SQLITE_IOERR_WRITE when a read the check needs
  // failed: the record is then distrusted and the write must fail, not go
  // on, so that SQLite sees the I/O error it would see without this VFS.
  int OnDbWrite(sqlite3_file* real, const void* data, int amount, int64_t offset, bool content_changes,
                const uint32_t* counter_in_file);
  void OnDbTruncate(sqlite3_file* real, int64_t size);
  // A write to the -wal file. Returns as OnDbWrite does.
  int OnWalWrite(sqlite3_file* real_wal, const void* data, int amount, int64_t offset);
  // A connection of this process took (`taken`; `wal_index`: its mapped
  // wal-index header, or null) or released the WAL write lock: a write
  // transaction begins or ends.
  void OnWalWriteLock(bool taken, const volatile void* wal_index);
  // Rollback mode: a connection's lock on the database file went from
  // `from` to `to`. RESERVED or more is a write transaction.
  void OnDbLockChange(int from, int to);
  // The WAL is about to be truncated to `size`, or deleted (the file at
  // wal_path, about to be unlinked).
  void OnWalTruncate(sqlite3_file* real_wal, int64_t size);
  // `vfs`: the VFS below the snapshot VFS, to read the WAL with.
  void OnWalDelete(sqlite3_vfs* vfs, const char* wal_path);
  void SetUntrusted(uint32_t reason);

  // ---- commit observer (automatic snapshots, ext/auto_snapshot.h) ----------
  // Called on the committing thread each time a write transaction of this
  // process that changed pages ends (a commit, or a rollback after a cache
  // spill: both changed the file). It runs inside SQLite's commit, so it
  // must be cheap: no I/O, no lock. Process-wide; null (the default) for
  // none. `fn` must live as long as the process.
  using CommitObserver = void (*)(Tracker* t);
  static void SetCommitObserver(CommitObserver fn);
  // A word the observer may keep its per-database state in (null until it
  // stores one), so that it finds that state without a lookup.
  std::atomic<void*>& observer_slot() { return observer_slot_; }
  // A word of the mapped header the observer's owner keeps a hint in that
  // every process sees (TrackHeader::auto_hint): reading it is a load from
  // memory, cheap enough for every commit.
  uint64_t AutoHint() const { return __atomic_load_n(&header()->auto_hint, __ATOMIC_SEQ_CST); }
  bool CompareExchangeAutoHint(uint64_t* expected, uint64_t desired) {
    return __atomic_compare_exchange_n(&header()->auto_hint, expected, desired, false, __ATOMIC_SEQ_CST,
                                       __ATOMIC_SEQ_CST);
  }

  // ---- snapshot side (under the snapshot lock and the database write lock) --
  // Whether the bits hold every page changed since snapshot base_id:
  // kTrusted, or an UntrustedReason. `wal` is the -wal file (WAL mode; null
  // only in rollback mode, else the record cannot be checked).
  uint32_t Evaluate(sqlite3_file* db, sqlite3_file* wal, uint32_t page_size);
  // Starts a new tracking period at the database's current state: records
  // its identity and the evidence writers keep, and clears `untrusted`.
  // (The caller has set base_id to 0 before taking the marks, until SetBase
  // names the snapshot of this state.)
  // `wal_commit_frame`: the WAL's last valid commit frame (0: none).
  Status Reset(sqlite3_file* db, sqlite3_file* wal, uint32_t page_size, uint32_t wal_commit_frame);
  // Names the snapshot the bits are "changed since" (0: none), and when it
  // was pinned: `held_before_ms` is MonotonicMs() taken under the database's
  // write lock, so that every write transaction that ended before it is in
  // that snapshot (0: unknown).
  void SetBase(uint64_t store_tag, uint64_t base_id, uint32_t base_page_count, int64_t held_before_ms);
  // Announces (generation != 0) or ends (0) a copy-on-write snapshot.
  void SetCowGeneration(uint32_t generation);
  // Atomically takes every set bit (they read as clear afterwards) into
  // *pages, sorted.
  Status TakeMarks(std::vector<uint32_t>* pages);
  // Maps the whole file and brings the bitmap's pages into this process, so
  // that TakeMarks, which runs under the database's write lock, meets no
  // page fault (faulting a large bitmap in lengthened that lock, which
  // writers wait for: bench/README.md, "The pin, and the snapshot's last
  // 40 ms").
  void PrepareToTakeMarks();
  // The set bits into *pages, sorted, leaving them set: for a reader of the
  // changes that is not a snapshot (snapshot_diff's live side). The caller
  // holds the snapshot lock, so no snapshot takes them meanwhile.
  Status ReadMarks(std::vector<uint32_t>* pages);
  // Sets the bits of `pages` again (a snapshot that used them failed).
  void ReturnMarks(const std::vector<uint32_t>& pages);
  uint64_t CountMarks();
  // Pages tracked writers have written, ever (wraps): while it moves, the
  // database's writers are active (a snapshot then leaves them the cores).
  uint64_t PagesWritten() const { return __atomic_load_n(&header()->pages_written, __ATOMIC_RELAXED); }
  // Write transactions tracked writers ended: their commit's syncs (and, in
  // rollback mode, the journal's deletion) are done. A snapshot writing its
  // pack issues each chunk right after one, so that the chunk is not queued
  // in front of the next commit's I/O.
  uint64_t WritesEnded() const { return __atomic_load_n(&header()->writes_ended, __ATOMIC_RELAXED); }
  // ... and began. While more have begun than ended, a snapshot pauses its
  // compressing.
  uint64_t WritesBegun() const { return __atomic_load_n(&header()->writes_begun, __ATOMIC_RELAXED); }
  // The base snapshot's held_before_ms (SetBase) if it is a published
  // snapshot of the store tagged `store_tag`, pinned in this boot of the
  // machine; else 0. Any process's snapshot counts: a write transaction that
  // ended before this MonotonicMs() needs no other.
  int64_t HeldBeforeMs(uint64_t store_tag) const;
  // After a copy-on-write read (rollback mode): whether every write since
  // Reset went through the VFS and preserved what the snapshot needed.
  bool UntouchedSinceReset(sqlite3_file* db, uint32_t cow_generation);

 private:
  Tracker(std::string db_path, int fd) : db_path_(std::move(db_path)), fd_(fd) {}
  ~Tracker();
  static Tracker* Open(const std::string& db_path, bool create);
  static Tracker* AcquireImpl(const std::string& db_path, bool create);
  void Mark(uint32_t pgno);
  Status CollectMarks(bool take, std::vector<uint32_t>* pages);
  void CountWriteTransaction(bool begins) {
    __atomic_fetch_add(begins ? &header()->writes_begun : &header()->writes_ended, 1, __ATOMIC_RELAXED);
    if (!begins && changed_since_end_.load(std::memory_order_relaxed)) NotifyCommit();
  }
  void NotifyCommit();
  bool Grow(uint64_t need);
  bool MapWholeFile();
  uint32_t page_size() const { return __atomic_load_n(&header()->page_size, __ATOMIC_RELAXED); }
  void PreserveForSnapshot(sqlite3_file* real, uint32_t generation, uint32_t first, uint32_t last);
  FrameRecord* ring() const { return reinterpret_cast<FrameRecord*>(reinterpret_cast<uint8_t*>(header_) + kTrackHeaderSize); }
  // Whether every committed frame of the WAL's current generation is one a
  // tracked writer wrote: kTrusted, kForeignWal, or kIoError if the WAL
  // could not be read; *valid: it has a header. Frames up to wal_commit
  // are known to be (each tracked transaction checked the frame before its
  // first); this checks wal_commit itself and every frame after it, by the
  // checksums in the ring.
  uint32_t WalVerdict(const ReadFn& read_wal, bool* valid);
  // Whether a frame's header (given, or read from disk) is the one the ring
  // recorded for it; RecordFrame records it.
  bool RingHolds(uint32_t frame, const uint8_t* frame_header) const;
  void RecordFrame(uint32_t frame, const uint8_t* frame_header);
  // kTrusted if frame `frame` on disk is the one the ring recorded, else
  // kForeignWal (or kIoError).
  uint32_t FrameVerdict(const ReadFn& read_wal, uint64_t stride, uint32_t frame);
  // Calls fn(frame, header) for frames `first`, first+1, ... while they carry
  // the recorded salts; returns the first verdict of fn that is not
  // kTrusted, kIoError if a frame header could not be read, else kTrusted.
  uint32_t ForEachFrame(const ReadFn& read_wal, uint64_t stride, uint32_t first,
                        const std::function<uint32_t(uint32_t, const uint8_t*)>& fn);
  // The WAL generation about to end or be replaced must be one tracked
  // writers wrote: else `untrusted`.
  // Distrusts the record unless the WAL about to end is one tracked writers
  // wrote; returns the verdict.
  uint32_t CheckWalEnding(const ReadFn& read_wal);
  void EndWal(const ReadFn& read_wal);
  // Records the database file's mtime and size as the WAL ends; false if
  // the file could not be stat'ed (the ending then reads as racy).
  bool RecordWalEnded();
  bool DbUnchangedSinceWalEnded();

  std::string db_path_;
  int fd_;
  TrackHeader* header_ = nullptr;
  std::shared_mutex map_mu_;  // guards base_ and mapped_ against Grow
  uint8_t* base_ = nullptr;
  uint64_t mapped_ = 0;
  std::mutex cow_mu_;
  std::shared_ptr<CowArea> cow_;  // the generation writers preserve pages for
  // First WAL frame the current write transaction of this process wrote (0:
  // none yet). Only one connection holds the WAL write lock at a time.
  std::atomic<uint32_t> txn_first_frame_{0};
  // What the wal-index said when the write lock was taken: its last frame
  // and that frame's checksum (as the frame's header stores it). Lets a
  // transaction's first frame check the frame before it without a read.
  uint32_t txn_base_frame_ = 0;
  uint8_t txn_base_checksum_[8] = {};
  bool txn_base_known_ = false;
  // A connection of this process marked a page since a write transaction
  // last ended (the commit observer's cue).
  std::atomic<bool> changed_since_end_{false};
  std::atomic<void*> observer_slot_{nullptr};
};

}  // namespace snapshot
