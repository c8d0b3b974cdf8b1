#include "vfs/paced_sync.h"

namespace snapshot {
namespace {
constexpr uint64_t kBatchBytes = 256 << 10;  // as the pack's chunks (store/env_posix.cc)
}  // namespace

void WritebackPacer::Wrote(uint64_t n) {
  unsynced_ += n;
  if (unsynced_ >= kBatchBytes) Sync();
}

void WritebackPacer::BeforeSync() {
  if (gate_.fn != nullptr) gate_.fn(gate_.arg);
  unsynced_ = 0;
}

void WritebackPacer::Finish() {
  if (unsynced_ > 0) Sync();
}

void WritebackPacer::Sync() {
  BeforeSync();
  // A failure here only leaves more for the connection's own sync.
  file_->pMethods->xSync(file_, SQLITE_SYNC_NORMAL);
}

}  // namespace snapshot
