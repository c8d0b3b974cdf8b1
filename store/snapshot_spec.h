// SnapshotSpec: how a user names a snapshot. Every function that takes a
// snapshot (restore, restore_to, verify, the attach URI's snapshot=) reads
// it through here, so that all of them accept the same forms:
//
//   42                          snapshot 42 (an id, as listed by snapshot_list)
//   latest                      the newest snapshot
//   2026-12-05 14:59:00         the state at that moment: the snapshot whose
//   2026-12-05T15:59:00+01:00   newest commit is the newest at or before it
//                               (ISO 8601, UTC unless an offset or Z is
//                               given; see store/timestamp.h)
//
//   SnapshotSpec spec;
//   SNAPSHOT_RETURN_IF_ERROR(SnapshotSpec::Parse(text, &spec));
//   uint64_t id;
//   SNAPSHOT_RETURN_IF_ERROR(ResolveSnapshot(store, spec, &id));
#pragma once

#include <cstdint>
#include <string>

#include "store/status.h"

namespace snapshot {

class Store;

struct SnapshotSpec {
  enum class Kind { kLatest, kId, kTime };
  Kind kind = Kind::kLatest;
  uint64_t id = 0;    // kId
  int64_t at_ms = 0;  // kTime: Unix milliseconds, UTC

  static SnapshotSpec Latest() { return SnapshotSpec(); }
  static SnapshotSpec Id(uint64_t id) {
    SnapshotSpec s;
    s.kind = Kind::kId;
    s.id = id;
    return s;
  }
  // Text as users write it (above). InvalidArgument, saying which forms are
  // accepted and, for a malformed time, what is wrong with it.
  static Status Parse(const std::string& text, SnapshotSpec* out);
};

// The id of the snapshot `spec` names in `store` (which must be open):
//   kId: that snapshot, NotFound if the store does not hold it;
//   kLatest: the newest, NotFound if the store holds none;
//   kTime: the one whose newest commit (SnapshotInfo::commit_ms; its creation
//     time if it did not record one) is the newest at or before spec.at_ms
//     (ties: the larger id): a snapshot taken after writes stopped holds the
//     state of the moments since its last commit. NotFound naming the first
//     snapshot's time if every snapshot is later.
// A damaged snapshot is never chosen for kLatest or kTime (Store::List).
Status ResolveSnapshot(Store* store, const SnapshotSpec& spec, uint64_t* id);

}  // namespace snapshot
