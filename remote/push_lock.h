// PushLock: one push of a store at a time, across threads and processes.
//
//   std::unique_ptr<PushLock> lock;
//   Status s = PushLock::Acquire(env, "app.db-snapshots", 0600, should_stop, &lock);
//   // ... list the store, upload, delete remotely ...
//   lock.reset();
//
// Why a lock of its own, apart from the store's: a push holds the store's
// shared lock only while it lists the files (so backups and automatic
// snapshots do not wait for the upload), yet two pushes of one store must
// not interleave. A push that listed an older state could otherwise upload
// a manifest after a newer push deleted the packs it names, or delete what
// the newer push just sent. Taken before the store's lock, never while
// holding it.
//
// <store>/REMOTE-LOCK, an empty file never replaced, locked with a POSIX
// record lock (fcntl F_SETLK) on byte 0. Such a lock belongs to the
// process, so a child forked meanwhile never inherits it (a flock would be
// shared with the child through the inherited descriptor and outlive the
// parent's push); and within the process a table of the stores being
// pushed excludes threads. A fork's child forgets that table and closes the
// lock files' descriptors it inherited (pthread_atfork).
//
// Waiting: the lock is tried every 20 ms until `should_stop` (may be empty)
// says stop (Interrupted) or `timeout_ms` passes (Busy; negative: no
// limit). A push may take minutes, and whoever waits for one (the SQL
// function, the background uploader) can be stopped instead.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "store/env.h"
#include "store/status.h"

namespace snapshot {

constexpr char kPushLockFileName[] = "REMOTE-LOCK";

class PushLock {
 public:
  static Status Acquire(Env* env, const std::string& store_dir, unsigned mode,
                        const std::function<bool()>& should_stop, int timeout_ms, std::unique_ptr<PushLock>* out);
  ~PushLock();
  PushLock(const PushLock&) = delete;
  PushLock& operator=(const PushLock&) = delete;

 private:
  PushLock(std::string key, int fd) : key_(std::move(key)), fd_(fd) {}
  std::string key_;  // the store directory, as the in-process table names it
  int fd_;
};

}  // namespace snapshot
