#include "store/snapshot_spec.h"

#include <vector>

#include "store/store.h"
#include "store/timestamp.h"

namespace snapshot {

Status SnapshotSpec::Parse(const std::string& text, SnapshotSpec* out) {
  if (text == "latest") {
    *out = Latest();
    return Status::OK();
  }
  const bool digits = !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
  if (digits) {
    // Up to 19 digits always fits; ids are at most INT64_MAX (SQLite integers).
    const uint64_t id = text.size() <= 19 ? std::stoull(text) : 0;
    if (id == 0 || id > uint64_t(INT64_MAX)) {
      return Status::InvalidArgument("a snapshot id is a positive integer (see SELECT id FROM snapshot_list)");
    }
    *out = Id(id);
    return Status::OK();
  }
  // Four digits and a '-' start a date: say what is wrong with it.
  const bool looks_like_date = text.size() >= 5 && text.find_first_not_of("0123456789") == 4 && text[4] == '-';
  SnapshotSpec s;
  s.kind = Kind::kTime;
  Status st = ParseTimestamp(text, &s.at_ms);
  if (st.ok()) {
    *out = s;
    return st;
  }
  if (looks_like_date) return st;
  return Status::InvalidArgument("'" + text +
                                 "' names no snapshot: give its id (a positive integer, see SELECT id FROM "
                                 "snapshot_list), 'latest', or a time such as '2026-12-05 14:59:00' (UTC unless "
                                 "followed by Z or +hh:mm)");
}

Status ResolveSnapshot(Store* store, const SnapshotSpec& spec, uint64_t* id) {
  switch (spec.kind) {
    case SnapshotSpec::Kind::kId: {
      Manifest m;
      SNAPSHOT_RETURN_IF_ERROR(store->ReadManifest(spec.id, &m));
      *id = spec.id;
      return Status::OK();
    }
    case SnapshotSpec::Kind::kLatest:
      return store->LatestId(id);
    case SnapshotSpec::Kind::kTime:
      break;
  }
  std::vector<SnapshotInfo> all;
  SNAPSHOT_RETURN_IF_ERROR(store->List(&all));
  if (all.empty()) return Status::NotFound("no snapshot has been taken yet");
  // A snapshot holds the state as of its newest commit, however long after
  // it was taken: the state at a moment is in the snapshot whose newest
  // commit is the newest at or before it. (Its commit time is at or after
  // that commit, so no snapshot chosen holds a later one.) Snapshots that
  // did not record it (format version 1) count from when they were taken.
  const SnapshotInfo* best = nullptr;
  const SnapshotInfo* first = &all.front();
  for (const SnapshotInfo& s : all) {
    // Ids follow creation, except when the clock was set back: compare times.
    if (s.state_ms() < first->state_ms()) first = &s;
    if (s.state_ms() > spec.at_ms) continue;
    if (best == nullptr || s.state_ms() > best->state_ms() ||
        (s.state_ms() == best->state_ms() && s.id > best->id)) {
      best = &s;
    }
  }
  if (best == nullptr) {
    std::string held;
    if (first->has_commit_time() && first->commit_ms != first->created_ms) {
      held = ", holding the state as of " + FormatTimestamp(first->commit_ms);
    }
    return Status::NotFound("no snapshot was taken at or before " + FormatTimestamp(spec.at_ms) +
                            "; the first is snapshot " + std::to_string(first->id) + ", taken " +
                            FormatTimestamp(first->created_ms) + held);
  }
  *id = best->id;
  return Status::OK();
}

}  // namespace snapshot
