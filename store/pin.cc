#include "store/pin.h"

#include "store/format.h"

namespace snapshot {

Status PinSnapshot(Env* env, const std::string& store_dir, uint64_t id, std::unique_ptr<FileLock>* pin) {
  // A pin is only ever asked shared, and prune only tests: it cannot be Busy.
  return env->LockByteShared(JoinPath(store_dir, kLockFileName), id, pin);
}

Status IsSnapshotPinned(Env* env, const std::string& store_dir, uint64_t id, bool* pinned) {
  Status s = env->IsByteLocked(JoinPath(store_dir, kLockFileName), id, pinned);
  if (s.code() == Status::Code::kNotSupported) {
    *pinned = false;  // no reader can have pinned it either
    return Status::OK();
  }
  return s;
}

}  // namespace snapshot
