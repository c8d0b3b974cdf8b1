// Background uploads: after a snapshot, its store is pushed to its remote
// (remote/replicator.h) on a thread of this process, so that the snapshot
// neither waits for the network nor fails with it.
//
//   RequestBackgroundPush("app.db-snapshots");   // returns at once, never fails
//   ...
//   BackgroundPushPending("app.db-snapshots");   // queued or running here
//
// snapshot_backup() and the automatic snapshots' thread request one after
// each snapshot when the store has a remote (REMOTE, or $SNAPSHOT_REMOTE).
// The outcome goes only to the store's record of its remote copy
// (remote/remote_status.h), which snapshot_status() shows: no error reaches
// the application.
//
// One thread per process, named snapshot-push (`top -H`, `ps -T`), started
// by the first request and ended when it has nothing left to do. Requests
// for a store already waiting are merged; one made while that store is
// being pushed queues one more push, since the running one may have listed
// the store before the new snapshot. A failed push (the server down, the
// network gone) is tried again after 1 s, then 2 s, 4 s... up to 5 minutes
// between tries, for as long as the process runs; each try starts from
// what the remote holds, so nothing is sent twice and a push cut off half
// way leaves only whole objects nothing names yet (uploads are in order:
// docs/DESIGN.md §11).
//
// Exit: an atexit handler lets the pushes already requested run for up to
// kExitGraceMs (most incremental pushes finish well within it), then stops
// the one running (ObjectStore::SetCancel) and waits at most kExitStopMs
// more for the thread to stop, so exit never hangs long and never races the
// libraries' own exit handlers. What exit cut off is uploaded by the next
// push: a cron job that must know its snapshot is off the machine calls
// snapshot_push() after snapshot_backup(); it waits for the background push
// and reports an error as SQL.
//
// Fork: a fork waits only while the thread changes its queue (never during
// an upload). The child has no thread and forgets the parent's queue: the
// parent uploads its snapshots. Record locks are not inherited
// (remote/push_lock.h), so the child never holds the push half way; it
// keeps copies of the descriptors the upload had open (the file being
// sent, the server connection) until it exits, and never uses them.
#pragma once

#include <cstdint>
#include <string>

namespace snapshot {

constexpr char kUploadThreadName[] = "snapshot-push";
constexpr int64_t kExitGraceMs = 10000;
constexpr int64_t kExitStopMs = 5000;

void RequestBackgroundPush(const std::string& store_dir);

// What a snapshot's taker calls once it is published: a background push if
// the store has a remote (its REMOTE setting, or $SNAPSHOT_REMOTE). Reads
// one small file; never fails and never waits for the network.
void PushInBackgroundIfRemote(const std::string& store_dir);

// Whether a background push of `store_dir` is queued or running in this
// process.
bool BackgroundPushPending(const std::string& store_dir);

}  // namespace snapshot
