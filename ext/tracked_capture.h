// Tracked capture: snapshots that read only the pages the snapshot VFS saw
// change (vfs/tracker.h), and that never make writers wait while they read
// (vfs/cow.h in rollback mode; a pinned WAL read mark in WAL mode).
// docs/VFS.md explains the protocol; in short:
//
//   1. Take the tracking file's snapshot lock: one tracked snapshot at a time.
//   2. On a private connection W through the snapshot VFS, BEGIN IMMEDIATE:
//      no writer is inside a transaction now, so the committed state is
//      still, and every page a committed transaction wrote is marked.
//   3. Under W: check the evidence that no one wrote without the VFS; take
//      the marks (they read as clear afterwards); reset the evidence; and
//      pin the state: in WAL mode a read transaction on a second private
//      connection R; in rollback mode a copy-on-write area listing the pages
//      the snapshot needs. ROLLBACK W: writers go on.
//   4. Read the marked pages (every page, when the marks cannot be trusted or
//      there is no base snapshot in this store) at the pinned state, and
//      take the rest from the base snapshot.
//   5. Commit the snapshot, then record it as the new base. On any failure
//      the marks are put back, so no change is ever forgotten.
#pragma once

#include "vfs/sqlite_api.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ext/connection.h"
#include "store/status.h"
#include "store/store.h"

namespace snapshot {

// An automatic snapshot is for the commits that ended from
// `pending_since_ms` (MonotonicMs) on. If, once it holds the snapshot lock,
// a snapshot of the store tagged `store_tag` pinned after that time is
// published (Tracker::HeldBeforeMs), none is taken: Busy. Checked under the
// lock, so that of several processes due at once only the first takes one.
struct UnlessHeld {
  uint64_t store_tag = 0;
  int64_t pending_since_ms = 0;
};

// Takes a snapshot of `schema` of `db` as above into its store. NotSupported
// when this database cannot be captured this way (an in-memory or temporary
// database, another VFS, exclusive locking mode, a read-only file, or a
// writer that bypassed the VFS while a rollback-mode snapshot read): the
// caller then captures under a plain read transaction instead. `unless`:
// see UnlessHeld above.
Status TakeTrackedSnapshot(sqlite3* db, const char* schema, const ConnectionSettings& settings, StoreAccess access,
                           const char* operation, const std::string& label, uint64_t* id,
                           const UnlessHeld* unless = nullptr);

// What the next snapshot of `schema` would read: "tracked: N pages changed
// since snapshot B" or "untracked: <why every page will be read>".
Status DescribeTracking(sqlite3* db, const char* schema, const ConnectionSettings& settings, std::string* out);

// The live database as a reader that is not a snapshot sees it through the
// tracking (snapshot_diff's live side): the tracked base snapshot, with the
// pages marked since it (and page 1, and any past the base's end) read from
// the live files at one committed state. The marks are read, not taken, and
// the tracking is left as it was; the snapshot lock is held meanwhile, so
// no snapshot takes the marks or records a new base.
//
//   std::unique_ptr<TrackedLiveImage> live;
//   std::unique_ptr<SnapshotImage> base;
//   if (TrackedLiveImage::Pin(db, schema, reader, reader_schema, settings, &live).ok() &&
//       live->OpenBase(store, &base).ok()) {
//     live->ReadPages([](uint32_t pgno, const uint8_t* page) { ...; return Status::OK(); });
//   }  // any other page is base's
//
// The state read: in rollback mode the one `reader`'s read transaction on
// `reader_schema` (the caller's) holds still (SHARED: no writer changes the
// file); in WAL mode the newest commit, held by a read transaction of its
// own begun under a moment's write lock (a tracked snapshot's pin), so that
// the WAL frames of that commit are known. NotSupported, with the reason,
// when the marks cannot be trusted as a tracked snapshot would not trust
// them (DescribeTracking says which), or the state cannot be pinned so: a
// snapshot is running, `reader` is inside a write transaction, or in WAL
// mode `db` is inside a transaction (its state may be older than the newest).
// The caller then reads every page.
class TrackedLiveImage {
 public:
  ~TrackedLiveImage();
  static Status Pin(sqlite3* db, const char* schema, sqlite3* reader, const char* reader_schema,
                    const ConnectionSettings& settings, std::unique_ptr<TrackedLiveImage>* out);
  uint32_t page_size() const;
  uint32_t page_count() const;
  // What ReadPages reads, ascending.
  const std::vector<uint32_t>& pages() const;
  // The snapshot the marks are relative to; NotSupported if `store` does not
  // hold it as recorded (another store, pruned).
  Status OpenBase(Store* store, std::unique_ptr<SnapshotImage>* base) const;
  // Calls add(pgno, page) for each of pages(), in order, at the pinned
  // state. An error of `add` stops the reading.
  Status ReadPages(const std::function<Status(uint32_t pgno, const uint8_t* page)>& add);

 private:
  struct State;
  explicit TrackedLiveImage(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// Tells the tracking of the database at db_path (if any) that its file was
// rewritten outside the VFS's view (snapshot_restore), so the next snapshot
// reads every page.
void DistrustTracking(const std::string& db_path, uint32_t reason);

}  // namespace snapshot
