// Tracked capture (ext/tracked_capture.h describes the protocol). The parts
// of this file, in order:
//
//   the pin              Pin, PinState: steps 2 and 3 under the write lock;
//                        Abandon puts the marks back when a snapshot fails
//   reading the pages    PagesToRead, ReadPinnedPages: step 4, from the WAL
//                        frames or the database file, settled against the
//                        copy-on-write area
//   the background run   RunInBackground: step 4 on a thread of its own at
//                        background priority, cancelled by sqlite3_interrupt()
//   pacing for writers   CheckpointPaced, WriterCounter, WritersActive,
//                        AfterAWriteTransaction, OutsideWritersTransactions:
//                        when the snapshot's own work yields to the
//                        database's writers (bench/README.md has the reasons)
//   the job              StoreMayHoldBase, StoreHoldsBase, CanTrack,
//                        StorePinnedState and the entry points
//                        TakeTrackedSnapshot, DescribeTracking,
//                        DistrustTracking
//   TrackedLiveImage     steps 1-4 for a reader that is not a snapshot
//                        (snapshot_diff): marks read, not taken; no base
//                        recorded
#include "ext/tracked_capture.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "ext/capture.h"
#include "ext/progress.h"
#include "ext/sql_util.h"
#include "store/background.h"
#include "store/coding.h"
#include "store/format.h"
#include "vfs/boot_id.h"
#include "vfs/cow.h"
#include "vfs/db_files.h"
#include "vfs/paced_sync.h"
#include "vfs/snapshot_lock.h"
#include "vfs/snapshot_vfs.h"
#include "vfs/sqlite_format.h"
#include "vfs/tracker.h"

namespace snapshot {
namespace {

constexpr uint32_t kRunPages = 256;  // pages read from the database file at once

// The state a snapshot pinned under the write lock (steps 2 and 3).
struct Pin {
  DbImageLayout layout;
  uint32_t verdict = kNoBase;  // Tracker::Evaluate's, before the marks were taken
  uint64_t old_tag = 0, old_base = 0;
  uint32_t old_base_pages = 0;
  int64_t old_held_before_ms = 0;
  int64_t locked_ms = 0;  // MonotonicMs() under the write lock: commits that ended before are pinned
  std::vector<uint32_t> marks;
  std::unique_ptr<CowArea> cow;  // rollback mode
  std::string cow_path;
  Statement read;                // WAL mode: R's read transaction
  int64_t commit_ms = kUnknownCommitTime;  // when the pinned commit was written
};

// Ends the copy-on-write, if any: writers stop preserving pages.
void EndCow(Tracker* t, Pin* pin) {
  if (pin->cow == nullptr) return;
  t->SetCowGeneration(0);
  pin->cow->FreeSlots();
  pin->cow.reset();
  unlink(pin->cow_path.c_str());
}

// A snapshot that took the marks did not finish: put them back and make the
// old base current again, so the next snapshot still sees every change.
// (Untrusted marks are not worth keeping: base_id stays 0, the next snapshot
// reads every page.)
void Abandon(Tracker* t, Pin* pin) {
  pin->read.Finalize();
  EndCow(t, pin);
  if (pin->verdict == kTrusted) {
    t->ReturnMarks(pin->marks);
    t->SetBase(pin->old_tag, pin->old_base, pin->old_base_pages, pin->old_held_before_ms);
  }
}

// The pages a snapshot reads: with trusted marks, the marked ones and any
// beyond the base snapshot's end; otherwise all of them.
std::vector<uint32_t> PagesToRead(const Pin& pin, bool tracked) {
  const uint32_t count = pin.layout.page_count;
  const uint32_t lock_page = LockBytePage(pin.layout.page_size);
  const uint32_t from_base = tracked ? std::min(pin.old_base_pages, count) : 0;
  std::vector<uint32_t> out;
  for (uint32_t p : pin.marks) {
    if (p <= from_base && p != lock_page) out.push_back(p);
  }
  for (uint32_t p = from_base + 1; p <= count; p++) {
    if (p != lock_page) out.push_back(p);
  }
  return out;
}

Status PinState(sqlite3* w, sqlite3* r, Tracker* t, bool force_full, int timeout_ms, unsigned mode, Pin* pin) {
  int rc = RetryWhileBusy(timeout_ms, [&] { return sqlite3_exec(w, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr); });
  if ((rc & 0xff) == SQLITE_READONLY || (rc & 0xff) == SQLITE_CANTOPEN) return Status::NotSupported("read-only");
  if (rc != SQLITE_OK) return SqliteStatus(w, rc, "cannot lock the database to pin a snapshot");
  pin->locked_ms = MonotonicMs();
  Status s;
  sqlite3_file* file = FilePointer(w, "main", SQLITE_FCNTL_FILE_POINTER);
  sqlite3_file* journal = FilePointer(w, "main", SQLITE_FCNTL_JOURNAL_POINTER);
  if (file == nullptr) s = Status::IOError("cannot reach the database file");
  bool frames_pending = false;
  if (s.ok()) s = ReadDbLayoutForPin(file, journal, &pin->layout, &frames_pending);
  // Under the write lock no commit can move the files' times: this is the
  // pinned commit's own.
  if (s.ok()) pin->commit_ms = LastCommitWriteTime(sqlite3_db_filename(w, "main"), pin->layout.wal);
  bool marks_taken = false;
  if (s.ok()) {
    sqlite3_file* wal = pin->layout.wal ? journal : nullptr;
    TrackHeader* h = t->header();
    pin->verdict = force_full ? uint32_t(kNoBase) : t->Evaluate(file, wal, pin->layout.page_size);
    pin->old_tag = h->store_tag;
    pin->old_base = h->base_id;
    pin->old_base_pages = h->base_page_count;
    pin->old_held_before_ms = h->held_before_ms;
    // No base before the marks are taken: if this process dies between the
    // two, the next snapshot must not trust a record missing those marks.
    t->SetBase(0, 0, 0, 0);
    s = t->TakeMarks(&pin->marks);
    marks_taken = s.ok();
    if (s.ok()) s = t->Reset(file, wal, pin->layout.page_size, pin->layout.wal_commit_frame);
    if (s.ok() && !pin->layout.wal) {
      const bool tracked = pin->verdict == kTrusted;
      const uint32_t generation = h->cow_last_generation + 1 == 0 ? 1 : h->cow_last_generation + 1;
      h->cow_last_generation = generation;
      pin->cow_path = t->db_path() + kCowSuffix;
      // Untracked, every page is needed: the area says so without a list
      // (building one for a large database lengthened this lock, which
      // writers wait for: bench/README.md, "The pin, and the snapshot's
      // last 40 ms").
      const std::vector<uint32_t> needed = tracked ? PagesToRead(*pin, true) : std::vector<uint32_t>();
      s = CowArea::Create(pin->cow_path, generation, pin->layout.page_size, pin->layout.page_count,
                          tracked ? &needed : nullptr, mode, &pin->cow);
      if (s.ok()) t->SetCowGeneration(generation);
    } else if (s.ok()) {
      s = PinReadTransaction(r, "main", timeout_ms, &pin->read);
    }
  }
  sqlite3_exec(w, "ROLLBACK", nullptr, nullptr, nullptr);
  // The WAL's frames are found after the lock is let go: the walk takes
  // time in proportion to the WAL, and writers wait for none of it.
  if (s.ok() && frames_pending) s = MapWalFrames(journal, &pin->layout);
  if (!s.ok() && marks_taken) Abandon(t, pin);
  return s;
}

// Reads `pages` (sorted) at the pinned state into `add`: from the WAL
// frames of the pinned commit or the database file (WAL mode), or from the
// database file unless a writer preserved the page first (rollback mode).
// `before_run` is called before each run of pages is read (and hashed, and
// compressed): a tracked snapshot waits there while a writer is inside a
// write transaction, as its compressing does between steps.
Status ReadPinnedPages(sqlite3_file* file, sqlite3_file* wal, Pin* pin, const std::vector<uint32_t>& pages,
                       const std::function<void()>& before_run, const std::atomic<bool>* cancel,
                       const std::function<Status(uint32_t pgno, const uint8_t* page)>& add) {
  const DbImageLayout& layout = pin->layout;
  const uint32_t ps = layout.page_size;
  std::vector<uint8_t> run(size_t(kRunPages) * ps), frame_data(ps);
  uint8_t frame_header[kWalFrameHeaderSize];
  for (size_t i = 0; i < pages.size();) {
    // A run of consecutive pages, read with one call.
    size_t n = 1;
    while (i + n < pages.size() && n < kRunPages && pages[i + n] == pages[i] + n) n++;
    const uint32_t first = pages[i];
    before_run();
    int rc = file->pMethods->xRead(file, run.data(), int(n * ps), sqlite3_int64(first - 1) * ps);
    if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ) return Status::IOError("cannot read the database file");
    for (size_t k = 0; k < n; k++) {
      const uint32_t pgno = first + uint32_t(k);
      uint8_t* page = run.data() + k * ps;
      auto it = wal != nullptr ? layout.wal_pages.find(pgno) : layout.wal_pages.end();
      if (it != layout.wal_pages.end()) {
        // The frame's data, then its header: if the header still belongs to
        // the pinned generation, the data read before it did too. If the WAL
        // was restarted since, the pinned state is all in the database file.
        if (wal->pMethods->xRead(wal, frame_data.data(), int(ps), sqlite3_int64(it->second)) == SQLITE_OK &&
            wal->pMethods->xRead(wal, frame_header, sizeof frame_header,
                                 sqlite3_int64(it->second - kWalFrameHeaderSize)) == SQLITE_OK &&
            LoadU32BE(frame_header + kWalFramePageNumberOffset) == pgno &&
            std::memcmp(frame_header + kWalFrameSaltOffset, layout.wal_salt, kWalSaltSize) == 0) {
          std::memcpy(page, frame_data.data(), ps);
        }
      }
      if (pin->cow != nullptr) SNAPSHOT_RETURN_IF_ERROR(pin->cow->Settle(pgno, page));
      if (cancel->load(std::memory_order_relaxed)) return Status::Interrupted("interrupted; nothing was changed");
      SNAPSHOT_RETURN_IF_ERROR(add(pgno, page));
    }
    i += n;
  }
  return Status::OK();
}

// Runs `work` on a thread of its own at background priority, so that the
// database's writers get the CPU and the disk first (the calling thread
// cannot be lowered and set back without privileges). The calling thread,
// which holds its connection's mutex, watches for sqlite3_interrupt()
// meanwhile and raises the cancel flag.
Status RunInBackground(InterruptCheck* interrupt, const std::function<Status(const std::atomic<bool>*)>& work) {
  std::atomic<bool> cancel{false};
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  Status result;
  std::thread reader([&] {
    LowerThisThreadToBackground();
    Status s;
    try {
      s = work(&cancel);
    } catch (const std::bad_alloc&) {  // an exception leaving the thread would end the process
      s = Status::IOError("out of memory; nothing was changed");
    } catch (const std::exception& e) {
      s = Status::IOError(std::string(e.what()) + "; nothing was changed");
    }
    std::lock_guard<std::mutex> l(mu);
    result = s;
    done = true;
    cv.notify_one();
  });
  {
    std::unique_lock<std::mutex> l(mu);
    while (!cv.wait_for(l, std::chrono::milliseconds(20), [&] { return done; })) {
      if (!interrupt->Poll(1).ok()) cancel = true;
    }
  }
  reader.join();
  return result;
}

// In WAL mode the pin kept checkpoints from passing it, so the WAL has grown
// by every commit made while the snapshot read. The first writer to commit
// after the pin is released would copy all of that back into the database
// file (and fsync it) inside its own commit: a stall as long as the snapshot
// was long. Checkpointing here, at once (on the background thread), takes
// that off the writers: a writer's automatic checkpoint finds the checkpoint
// lock taken and returns at once. PASSIVE: it never waits for or blocks a
// writer. Failure costs nothing (the writers checkpoint as before). What it
// copies goes to the disk 256 KiB at a time, each after a writer's commit
// ends (vfs/paced_sync.h), whether or not SQLite syncs the file at its end:
// if a writer committed meanwhile it does not, and that writer's next
// checkpoint would otherwise flush it all inside its commit.
void CheckpointPaced(sqlite3* w, std::function<void()> between_commits) {
  SnapshotWritebackGate gate = {[](void* f) { (*static_cast<std::function<void()>*>(f))(); }, &between_commits};
  sqlite3_file_control(w, "main", kPaceWritebackFcntl, &gate);
  sqlite3_wal_checkpoint_v2(w, "main", SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  sqlite3_file_control(w, "main", kPaceWritebackFcntl, nullptr);  // writes back what the checkpoint left
}

// One of the counters tracked writers bump in the tracking header, and when
// it was last seen to move.
class WriterCounter {
 public:
  using Clock = std::chrono::steady_clock;
  explicit WriterCounter(std::function<uint64_t()> read)
      : read_(std::move(read)), seen_(read_()), moved_(Clock::now() - std::chrono::hours(1)) {}
  // Reads the counter at `now`; true if it moved since the last look.
  bool Look(Clock::time_point now) {
    const uint64_t value = read_();
    if (value == seen_) return false;
    seen_ = value;
    moved_ = now;
    return true;
  }
  bool MovedWithin(Clock::duration d, Clock::time_point now) const { return now - moved_ < d; }

 private:
  std::function<uint64_t()> read_;
  uint64_t seen_;
  Clock::time_point moved_;
};

// CompressOptions::busy_elsewhere for a tracked snapshot: whether the
// database's tracked writers wrote a page in the last quarter second. Asked
// by the reading thread before each 1 MiB frame (a few milliseconds apart).
std::function<bool()> WritersActive(const Tracker* t) {
  auto pages = std::make_shared<WriterCounter>([t] { return t->PagesWritten(); });
  return [pages] {
    const auto now = WriterCounter::Clock::now();
    pages->Look(now);
    return pages->MovedWithin(std::chrono::milliseconds(250), now);
  };
}

// CompressOptions::before_writeback for a tracked snapshot. While tracked
// writers are committing (one ended a write transaction in the last
// 100 ms), waits until the next one ends, at most 10 ms, so that the pack's
// next chunk reaches the disk between two commits instead of queueing in
// front of one's fsyncs (bench/README.md, "Commit latency"). With no
// writers, no wait.
std::function<void()> AfterAWriteTransaction(const Tracker* t) {
  auto ended = std::make_shared<WriterCounter>([t] { return t->WritesEnded(); });
  return [ended] {
    auto now = WriterCounter::Clock::now();
    ended->Look(now);
    if (!ended->MovedWithin(std::chrono::milliseconds(100), now)) return;  // writers quiet
    const auto deadline = now + std::chrono::milliseconds(10);
    while (!ended->Look(now) && now < deadline) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      now = WriterCounter::Clock::now();
    }
  };
}

// CompressOptions::between_blocks for a tracked snapshot, and what its
// reading thread calls before each run of pages: while a tracked writer is
// inside a write transaction (more begun than ended), waits, at most 5 ms a
// call. Even one compressing thread at SCHED_IDLE slowed a rollback-mode
// writer's commits (bench/README.md). A count that stays unequal for 50 ms
// (a writer that died mid-transaction, or a long one) is not waited for.
// Called from the compressing threads, hence the mutex.
std::function<void()> OutsideWritersTransactions(const Tracker* t) {
  using Clock = std::chrono::steady_clock;
  struct State {
    std::mutex mu;
    uint64_t begun = 0, ended = 0;
    Clock::time_point since;
  };
  auto state = std::make_shared<State>();
  return [t, state] {
    const Clock::time_point start = Clock::now();
    for (Clock::time_point now = start; now - start < std::chrono::milliseconds(5); now = Clock::now()) {
      const uint64_t ended = t->WritesEnded(), begun = t->WritesBegun();
      if (begun == ended) return;
      {
        std::lock_guard<std::mutex> l(state->mu);
        if (begun != state->begun || ended != state->ended) {
          state->begun = begun;
          state->ended = ended;
          state->since = now;
        } else if (now - state->since > std::chrono::milliseconds(50)) {
          return;  // stale, or a long transaction: do not wait for it
        }
      }
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  };
}

// Whether the store may hold the snapshot the tracking record is relative
// to. Asked before the pin, holding no lock of the database, so that a
// snapshot into a store without it (a new or emptied store) pins once,
// whole, instead of pinning the marks and then again. (The pin decides as
// before; this only spares it the second try. Unsure means yes.)
bool StoreMayHoldBase(const StoreLocation& where, const ConnectionSettings& settings, const Tracker* t) {
  const uint64_t tag = t->header()->store_tag, base_id = t->header()->base_id;
  if (base_id == 0) return true;  // nothing to look for: the pin reads every page anyway
  std::unique_ptr<Store> store;
  const Status s = OpenStoreAt(where, settings, StoreAccess::kRead, &store);
  if (s.IsNotFound()) return false;
  Manifest base;
  return !s.ok() || (store->tag() == tag && !store->ReadManifest(base_id, &base).IsNotFound());
}

// Whether `store` holds, as recorded, the snapshot the pinned marks are
// relative to (into *base): only then are the marks the changes since it.
bool StoreHoldsBase(Store* store, const Pin& pin, Manifest* base) {
  return store->tag() == pin.old_tag && store->ReadManifest(pin.old_base, base).ok() &&
         base->info.page_size == pin.layout.page_size && base->info.page_count == pin.old_base_pages;
}

bool CanTrack(sqlite3* db, const char* schema, const char* filename) {
  if (filename == nullptr || filename[0] == '\0') return false;
  sqlite3_vfs* vfs = nullptr;
  sqlite3_file_control(db, schema, SQLITE_FCNTL_VFS_POINTER, &vfs);
  sqlite3_vfs* ours = sqlite3_vfs_find(kSnapshotVfsName);
  if (vfs == nullptr || ours == nullptr || (vfs != ours && vfs != ours->pAppData)) return false;  // other locks
  std::string locking_mode;
  const std::string q = "PRAGMA \"" + QuoteIdentifier(schema) + "\".locking_mode";
  return QueryText(db, q, &locking_mode).ok() && sqlite3_stricmp(locking_mode.c_str(), "normal") == 0;
}

// What StorePinnedState works with.
struct SnapshotJob {
  const StoreLocation& where;
  const ConnectionSettings& settings;
  StoreAccess access;
  const char* operation;
  const std::string& label;
  bool first_attempt;
  sqlite3* w;  // the connection that pinned (and checkpoints, in WAL mode)
  sqlite3* r;  // WAL mode: its read transaction holds the pinned commit
  Tracker* t;
  Pin* pin;
};

// Everything after the pin: opens the store, reads the pinned pages into a
// new snapshot, lets go of the pin and commits the snapshot. Sets
// *pin_again, storing nothing, when the marks are relative to a snapshot
// this store does not have and the copy-on-write area covers only them.
Status StorePinnedState(const SnapshotJob& job, const std::atomic<bool>* cancel, bool* pin_again, uint64_t* id) {
  Tracker* t = job.t;
  Pin* pin = job.pin;
  std::unique_ptr<Store> store;
  Status s = OpenStoreAt(job.where, job.settings, job.access, &store, [t](CompressOptions* o) {
    o->busy_elsewhere = WritersActive(t);
    o->before_writeback = AfterAWriteTransaction(t);
    o->between_blocks = OutsideWritersTransactions(t);
  });
  if (!s.ok()) {
    Abandon(t, pin);
    return s;
  }
  Manifest base;
  const bool tracked = pin->verdict == kTrusted && StoreHoldsBase(store.get(), *pin, &base);
  if (!tracked && pin->verdict == kTrusted && pin->cow != nullptr && job.first_attempt) {
    Abandon(t, pin);
    *pin_again = true;
    return Status::OK();
  }
  ProgressFile progress(store->dir(), job.operation, job.where.file_mode);
  std::unique_ptr<SnapshotBuilder> builder;
  s = store->NewSnapshot(pin->layout.page_size, pin->layout.page_count, tracked ? &base : nullptr, &builder);
  if (s.ok()) {
    builder->SetCommitTime(pin->commit_ms);
    sqlite3_file* file = FilePointer(job.w, "main", SQLITE_FCNTL_FILE_POINTER);
    sqlite3_file* wal = pin->layout.wal ? FilePointer(job.r, "main", SQLITE_FCNTL_JOURNAL_POINTER) : nullptr;
    // Reading and hashing 1 MiB beside a writer's transaction slowed its
    // commits too (bench/README.md, "The reading thread waits out writers'
    // transactions too").
    const std::vector<uint32_t> pages = PagesToRead(*pin, tracked);
    size_t done = 0;
    s = ReadPinnedPages(file, wal, pin, pages, OutsideWritersTransactions(t), cancel,
                        [&](uint32_t pgno, const uint8_t* page) {
                          SNAPSHOT_RETURN_IF_ERROR(builder->AddPage(pgno, page));
                          progress.Update(++done, pages.size());
                          return Status::OK();
                        });
    if (s.ok() && pin->cow != nullptr && !t->UntouchedSinceReset(file, pin->cow->generation())) {
      // A writer that bypassed the VFS changed pages without preserving
      // them: what was read may mix two states.
      s = Status::NotSupported("a connection without the snapshot VFS wrote while the snapshot read");
    }
  }
  pin->read.Finalize();
  EndCow(t, pin);
  if (pin->layout.wal) CheckpointPaced(job.w, AfterAWriteTransaction(t));
  if (s.ok()) s = builder->Commit(job.label, id);
  if (!s.ok()) {
    builder.reset();
    Abandon(t, pin);
    return s;
  }
  t->SetBase(store->tag(), *id, pin->layout.page_count, pin->locked_ms);
  return Status::OK();
}

}  // namespace

Status TakeTrackedSnapshot(sqlite3* db, const char* schema, const ConnectionSettings& settings, StoreAccess access,
                           const char* operation, const std::string& label, uint64_t* id,
                           const UnlessHeld* unless) {
  const char* filename = sqlite3_db_filename(db, schema);
  if (!CanTrack(db, schema, filename)) return Status::NotSupported("cannot track this database");
  if (sqlite3_txn_state(db, schema) != SQLITE_TXN_NONE) {
    // Inside a read transaction the snapshot is what that transaction sees.
    return Status::NotSupported("inside a transaction");
  }
  InterruptCheck interrupt(db);  // before anything slow: an interrupt stops even preparing
  StoreLocation where;
  SNAPSHOT_RETURN_IF_ERROR(LocateStore(db, schema, settings, &where));
  PrivateConnection w, r;  // through the snapshot VFS
  const int flags = SQLITE_OPEN_READWRITE, timeout = settings.busy_timeout_ms;
  if (w.Open(filename, flags, kSnapshotVfsName, timeout) != SQLITE_OK ||
      r.Open(filename, flags, kSnapshotVfsName, timeout) != SQLITE_OK) {
    return Status::NotSupported("cannot open the database again");
  }
  Tracker* t = Tracker::Find(sqlite3_db_filename(w.db(), "main"));  // W holds it open
  if (t == nullptr) return Status::NotSupported("cannot open the tracking file");
  std::unique_ptr<SnapshotLock> lock;
  SNAPSHOT_RETURN_IF_ERROR(SnapshotLock::Acquire(t->db_path(), settings.busy_timeout_ms, &lock));
  if (unless != nullptr && t->HeldBeforeMs(unless->store_tag) > unless->pending_since_ms) {
    return Status::Busy("a snapshot taken meanwhile holds those commits");
  }
  // Before the pin, whatever takes time and needs no lock: writers wait for
  // every microsecond of the pin.
  CowArea::RemoveAbandoned(t->db_path() + kCowSuffix);
  t->PrepareToTakeMarks();
  const bool base_may_be_in_store = StoreMayHoldBase(where, settings, t);

  for (int attempt = 0;; attempt++) {
    Pin pin;
    // On this thread, at the caller's priority: writers wait for the pin.
    SNAPSHOT_RETURN_IF_ERROR(PinState(w.db(), r.db(), t, attempt > 0 || !base_may_be_in_store,
                                      settings.busy_timeout_ms, where.file_mode, &pin));
    // The rest at background priority, down to freeing the store's page
    // index: at the caller's priority that delayed writers' commits
    // (bench/README.md, "The pin, and the snapshot's last 40 ms").
    SnapshotJob job{where, settings, access, operation, label, attempt == 0, w.db(), r.db(), t, &pin};
    bool pin_again = false;
    Status s = RunInBackground(&interrupt, [&](const std::atomic<bool>* cancel) {
      return StorePinnedState(job, cancel, &pin_again, id);
    });
    if (!pin_again) return s;
  }
}

Status DescribeTracking(sqlite3* db, const char* schema, const ConnectionSettings& settings, std::string* out) {
  const char* filename = sqlite3_db_filename(db, schema);
  if (!CanTrack(db, schema, filename)) {
    *out = "untracked: this database cannot be tracked (in memory, temporary, another VFS, or exclusive locking mode)";
    return Status::OK();
  }
  Tracker* t = Tracker::AcquireExisting(filename);
  if (t == nullptr) {
    *out = "untracked: no snapshot has been taken through the snapshot VFS yet";
    return Status::OK();
  }
  sqlite3_file* file = FilePointer(db, schema, SQLITE_FCNTL_FILE_POINTER);
  sqlite3_file* journal = FilePointer(db, schema, SQLITE_FCNTL_JOURNAL_POINTER);
  DbImageLayout layout;
  Status s = file != nullptr ? ReadDbLayout(file, journal, &layout) : Status::IOError("cannot reach the database file");
  uint32_t verdict = kNoBase;
  uint64_t base_id = 0, tag = 0, marked = 0;
  if (s.ok()) {
    verdict = t->Evaluate(file, layout.wal ? journal : nullptr, layout.page_size);
    base_id = t->header()->base_id;
    tag = t->header()->store_tag;
    marked = t->CountMarks();
  }
  Tracker::Release(t);
  SNAPSHOT_RETURN_IF_ERROR(s);
  if (verdict == kTrusted) {
    std::unique_ptr<Store> store;
    Manifest base;
    if (!OpenStore(db, schema, settings, StoreAccess::kRead, &store).ok() || store->tag() != tag ||
        !store->ReadManifest(base_id, &base).ok()) {
      verdict = kOtherStore;
    }
  }
  if (verdict != kTrusted) {
    *out = std::string("untracked: ") + UntrustedReasonText(verdict);
  } else {
    *out = "tracked: " + std::to_string(marked) + " pages changed since snapshot " + std::to_string(base_id);
  }
  return Status::OK();
}

// ---- TrackedLiveImage -----------------------------------------------------------

namespace {

// A tracker reference, released with the image.
struct TrackerRef {
  Tracker* t = nullptr;
  ~TrackerRef() {
    if (t != nullptr) Tracker::Release(t);
  }
};

}  // namespace

struct TrackedLiveImage::State {
  TrackerRef tracker;
  std::unique_ptr<SnapshotLock> lock;
  PrivateConnection w, r;  // WAL mode: the pin's, through the snapshot VFS
  snapshot::Pin pin;       // marks read, not taken; no copy-on-write area
  sqlite3_file* file = nullptr;  // the database file, to read at the pinned state
  sqlite3_file* wal = nullptr;   // WAL mode: the -wal file
  std::vector<uint32_t> pages;
};

TrackedLiveImage::TrackedLiveImage(std::unique_ptr<State> state) : state_(std::move(state)) {}
TrackedLiveImage::~TrackedLiveImage() = default;
uint32_t TrackedLiveImage::page_size() const { return state_->pin.layout.page_size; }
uint32_t TrackedLiveImage::page_count() const { return state_->pin.layout.page_count; }
const std::vector<uint32_t>& TrackedLiveImage::pages() const { return state_->pages; }

Status TrackedLiveImage::Pin(sqlite3* db, const char* schema, sqlite3* reader, const char* reader_schema,
                             const ConnectionSettings& settings, std::unique_ptr<TrackedLiveImage>* out) {
  const char* filename = sqlite3_db_filename(db, schema);
  if (!CanTrack(db, schema, filename)) return Status::NotSupported("this database cannot be tracked");
  if (sqlite3_txn_state(reader, reader_schema) != SQLITE_TXN_READ) {
    return Status::NotSupported("the reader holds no read transaction, or a write one");
  }
  std::unique_ptr<State> st(new State);
  st->tracker.t = Tracker::AcquireExisting(filename);
  Tracker* t = st->tracker.t;
  if (t == nullptr) return Status::NotSupported("no snapshot has been taken through the snapshot VFS yet");
  // Not waited for: the caller holds a read lock of the database, and a
  // snapshot holding this lock may be waiting for the write lock behind a
  // writer that waits for that read lock (the lock order is this lock
  // first). While a snapshot runs its marks are not relative to any base
  // anyway.
  if (!SnapshotLock::Acquire(t->db_path(), /*timeout_ms=*/0, &st->lock).ok()) {
    return Status::NotSupported("a snapshot is being taken");
  }
  snapshot::Pin& pin = st->pin;
  st->file = FilePointer(reader, reader_schema, SQLITE_FCNTL_FILE_POINTER);
  if (st->file == nullptr) return Status::IOError("cannot reach the database file");
  SNAPSHOT_RETURN_IF_ERROR(ReadDbLayout(st->file, nullptr, &pin.layout));
  if (!pin.layout.wal) {
    // The reader's SHARED lock keeps every writer, tracked or not, from
    // writing the file: the file, the marks and the evidence are still.
    pin.verdict = t->Evaluate(st->file, nullptr, pin.layout.page_size);
    if (pin.verdict == kTrusted) SNAPSHOT_RETURN_IF_ERROR(t->ReadMarks(&pin.marks));
  } else {
    if (!sqlite3_get_autocommit(db)) return Status::NotSupported("inside a transaction");
    const int flags = SQLITE_OPEN_READWRITE, timeout = settings.busy_timeout_ms;
    if (st->w.Open(filename, flags, kSnapshotVfsName, timeout) != SQLITE_OK ||
        st->r.Open(filename, flags, kSnapshotVfsName, timeout) != SQLITE_OK) {
      return Status::NotSupported("cannot open the database again");
    }
    // A tracked snapshot's pin, taking nothing: under the write lock no
    // frame is appended, so R's read transaction holds the newest commit,
    // the one the wal-index names, and every page committed is marked.
    sqlite3* w = st->w.db();
    int rc = RetryWhileBusy(timeout, [&] { return sqlite3_exec(w, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr); });
    if (rc != SQLITE_OK) return SqliteStatus(w, rc, "cannot lock the database to pin its state");
    sqlite3_file* file = FilePointer(w, "main", SQLITE_FCNTL_FILE_POINTER);
    sqlite3_file* journal = FilePointer(w, "main", SQLITE_FCNTL_JOURNAL_POINTER);
    bool frames_pending = false;
    Status s = file != nullptr ? ReadDbLayoutForPin(file, journal, &pin.layout, &frames_pending)
                               : Status::IOError("cannot reach the database file");
    if (s.ok()) pin.verdict = t->Evaluate(file, pin.layout.wal ? journal : nullptr, pin.layout.page_size);
    if (s.ok() && pin.verdict == kTrusted) s = t->ReadMarks(&pin.marks);
    if (s.ok() && pin.verdict == kTrusted) s = PinReadTransaction(st->r.db(), "main", timeout, &pin.read);
    sqlite3_exec(w, "ROLLBACK", nullptr, nullptr, nullptr);
    if (s.ok() && pin.verdict == kTrusted && frames_pending) s = MapWalFrames(journal, &pin.layout);
    SNAPSHOT_RETURN_IF_ERROR(s);
    st->file = file;
    st->wal = pin.layout.wal ? FilePointer(st->r.db(), "main", SQLITE_FCNTL_JOURNAL_POINTER) : nullptr;
  }
  if (pin.verdict != kTrusted) return Status::NotSupported(UntrustedReasonText(pin.verdict));
  const TrackHeader* h = t->header();
  pin.old_tag = h->store_tag;
  pin.old_base = h->base_id;
  pin.old_base_pages = h->base_page_count;
  st->pages = PagesToRead(pin, /*tracked=*/true);
  // Page 1 always: it names the schema the diff maps the b-trees from.
  if (pin.layout.page_count > 0 && (st->pages.empty() || st->pages.front() != 1)) st->pages.insert(st->pages.begin(), 1);
  out->reset(new TrackedLiveImage(std::move(st)));
  return Status::OK();
}

Status TrackedLiveImage::OpenBase(Store* store, std::unique_ptr<SnapshotImage>* base) const {
  Manifest manifest;
  if (!StoreHoldsBase(store, state_->pin, &manifest)) {
    return Status::NotSupported(UntrustedReasonText(kOtherStore));
  }
  return store->OpenImage(state_->pin.old_base, base);
}

Status TrackedLiveImage::ReadPages(const std::function<Status(uint32_t pgno, const uint8_t* page)>& add) {
  const std::atomic<bool> never{false};  // `add` stops the reading instead
  return ReadPinnedPages(state_->file, state_->wal, &state_->pin, state_->pages, [] {}, &never, add);
}

void DistrustTracking(const std::string& db_path, uint32_t reason) {
  Tracker* t = Tracker::AcquireExisting(db_path);
  if (t == nullptr) return;
  t->SetUntrusted(reason);
  Tracker::Release(t);
}

}  // namespace snapshot
