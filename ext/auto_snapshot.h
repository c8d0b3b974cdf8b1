// Automatic snapshots: a tracked incremental snapshot a few seconds after
// each commit, taken by the processes that write the database, with nothing
// running beside them.
//
//   sqlite> SELECT snapshot_auto(10);                    -- on, every 10 s; persistent
//   sqlite> SELECT snapshot_auto(10, 'within 1h, hourly 48, daily 30');  -- and prune so
//   sqlite> SELECT snapshot_status();                    -- what it did last (JSON)
//   sqlite> SELECT snapshot_auto(0);                     -- off
//
// The promise: while at least one process that writes the database through
// the `snapshot` VFS runs, every commit is inside a snapshot labelled `auto`
// within interval + 1 s of being committed, the last commits before writes
// stop included. No writes, no snapshots.
//
// How, in four parts:
//
// 1. The setting lives in the store (store/auto_settings.h: <store>/AUTO),
//    found the way every function finds the store. Any process reads it;
//    snapshot_auto() writes it under the store's exclusive lock. It also
//    sets a hint in the tracking file's header (TrackHeader::auto_hint),
//    which every process writing through the VFS has mapped: on or off,
//    and a generation it bumps. A new tracking file's hint is "unknown";
//    the first thread to read AUTO writes it.
//
// 2. The commit path only notes the time. The VFS's tracker calls an
//    observer when a write transaction of this process that changed pages
//    ends (vfs/tracker.h, SetCommitObserver); the observer stores the
//    time (MonotonicMs) in the database's "newest commit" word and does one
//    compare-and-swap on its "oldest unprotected commit" word, found
//    through the tracker's observer slot, and reads the hint from the
//    mapped header. No I/O, no lock: a commit is never delayed, and a
//    snapshot never runs on the committing thread and its errors never
//    reach the application's transaction. Only the first commit of a
//    database in a process takes a mutex, to find that word, and a commit
//    that reads a hint other than "off" while this process has no thread
//    starts one.
//
// 3. One background thread per process serves every database this process
//    committed to, and only while automatic snapshots are on (or the hint
//    is unknown): a process where they are off runs no thread and reads no
//    file for them. The thread ends when every database's hint and setting
//    say off. It reads the setting again when the hint changes (and once a
//    second while commits wait). It wakes at least once a second; a
//    database with an unprotected commit gets a snapshot at that commit's
//    time + interval. It
//    also watches the tracking file's count of pages written: pages written
//    by another process (say, one that was killed mid-snapshot) count as a
//    commit it saw now, so a surviving writer protects them. The snapshot is
//    snapshot_backup's (ext/backup.h: there is one way to take one), on a
//    connection of the thread's own, reading only the pages that changed.
//
// 4. One snapshot an interval, whichever process takes it. Every
//    snapshot's pin records, under the database's write lock, the time
//    before which every write transaction that ended is in it
//    (TrackHeader::held_before_ms, published with the snapshot; one clock
//    for every process of a boot). When a commit is due, the thread first
//    asks whether the newest snapshot already holds it: the tracking
//    file's marks are empty (trusted, based on a published snapshot of
//    this store), or the commit ended before the newest pin. In the second
//    case the commits after that pin are due an interval after it, so all
//    the writers' threads aim at the same moment, and of them only the
//    first to take the snapshot lock (vfs/snapshot_lock.h) snapshots: the
//    others, finding it busy, look again 200 ms later, or, getting it,
//    find under it that a snapshot pinned since holds their commits
//    (UnlessHeld, ext/tracked_capture.h) and take none. Pins are thus at
//    least an interval apart, whatever the number of writer processes.
//
// Errors (a full disk, a store that vanished) are kept in <store>/AUTO-STATUS
// and in this process, shown by snapshot_status(), and retried an interval
// later; a setting that cannot be read (or a store that vanished) keeps the
// last one read, so the failures go on being reported, not taken for "off".
// A busy store is retried 200 ms later.
//
// Fork (gunicorn, uWSGI preforking): a fork waits until the thread is
// between passes (pthread_atfork), so a child never holds a half-owned lock;
// the child has no thread (fork copies only the forking thread) and forgets
// the parent's unprotected commits (the parent protects them); its first
// commit starts its own thread if the hint is not "off". Exit: the thread is detached and uses only
// objects that are never destroyed; a snapshot in flight at exit is never
// listed (the store publishes by an atomic rename).
#pragma once

#include <cstdint>
#include <string>

#include "ext/connection.h"
#include "store/auto_settings.h"
#include "store/status.h"
#include "vfs/sqlite_api.h"

namespace snapshot {

// The longest interval snapshot_auto() and SNAPSHOT_AUTO accept: a week.
constexpr int64_t kMaxAutoIntervalS = 7 * 24 * 3600;

// The name of the automatic snapshots' thread (`top -H`, `ps -T`, and
// /proc/<pid>/task/<tid>/comm).
constexpr char kAutoThreadName[] = "snapshot-auto";

// Installs the commit observer and the fork handlers; once per process,
// idempotent.
void InstallAutoSnapshots();

// snapshot_auto(seconds [, policy]): writes the store's setting (starting
// the store if it has none yet, as a backup would). `policy` null: the
// policy already set stays; empty: none. The policy must already be valid
// (RetentionPolicy::Parse).
Status SetAutoSnapshots(sqlite3* db, const char* schema, const ConnectionSettings& settings, int64_t seconds,
                        const std::string* policy);
// The setting (interval 0 when never set or there is no store).
Status GetAutoSnapshots(sqlite3* db, const char* schema, const ConnectionSettings& settings, AutoSettings* out);

// snapshot_status(): a JSON object an operator reads (and a script parses
// with json_extract): the setting, the last automatic snapshot and the last
// error of any process, this process's view, and snapshot_tracking().
Status DescribeAutoSnapshots(sqlite3* db, const char* schema, const ConnectionSettings& settings, std::string* json);

}  // namespace snapshot
