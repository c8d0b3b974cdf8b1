// Pins: a snapshot that is being read (an attached snapshot) is kept by
// prune until its reader is done.
//
//   std::unique_ptr<FileLock> pin;
//   PinSnapshot(env, store_dir, id, &pin);   // under the store's shared lock
//   ... read the snapshot, with or without the store lock ...
//   pin.reset();                              // prune may delete it again
//
//   bool pinned;
//   IsSnapshotPinned(env, store_dir, id, &pinned);   // prune, exclusive lock
//
// A pin is a shared lock on byte `id` of the store's LOCK file (an OFD
// byte-range lock, Env::LockByteShared): no file is created or written, a
// reader needs no write access to the store, and a crashed reader's pin goes
// with its process. The store's own lock is flock(2) on the same file,
// independent of byte-range locks, so a reader that holds a pin for hours
// never holds up a backup. A reader pins while it holds the store's shared
// lock, so a prune (exclusive) either ran before and the reader sees the
// result, or runs after and sees the pin. Stores written before pins existed
// need nothing: the LOCK file is the same file.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "store/env.h"
#include "store/status.h"

namespace snapshot {

// Pins snapshot `id` of the store in `store_dir` until *pin is destroyed.
Status PinSnapshot(Env* env, const std::string& store_dir, uint64_t id, std::unique_ptr<FileLock>* pin);

// Whether any process holds a pin on snapshot `id`.
Status IsSnapshotPinned(Env* env, const std::string& store_dir, uint64_t id, bool* pinned);

}  // namespace snapshot
