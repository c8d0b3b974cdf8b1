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

int WritebackPacer::TakeError() {
  const int rc = error_;
  error_ = SQLITE_OK;
  return rc;
}

int WritebackPacer::Finish() {
  if (unsynced_ > 0) Sync();
  return TakeError();
}

void WritebackPacer::Sync() {
  BeforeSync();
  const int rc = file_->pMethods->xSync(file_, SQLITE_SYNC_NORMAL);
  if (rc != SQLITE_OK && error_ == SQLITE_OK) error_ = rc;
}

}  // namespace snapshot
