// Retention: which snapshots a tiered policy keeps, in the style of borg's
// and restic's prune. A pure function of the snapshots, the policy and the
// current time, so it is tested against any clock and any history.
//
//   RetentionPolicy p;
//   RetentionPolicy::Parse("within 1h, hourly 48, daily 30, weekly 12", &p);
//   std::vector<RetentionDecision> d = SelectRetained(infos, p, now_ms);
//   for (auto& x : d) if (!x.keep) ... delete x.id ...
//
// The text form (a comma-separated list of rules, any order):
//   within D     keep every snapshot taken less than D before now; D is a
//                whole number and a unit: s, min, h, d or w (90min, 36h, 2w)
//   last N       keep the N newest snapshots
//   minutely N   keep the newest snapshot of each of the N newest minutes
//   hourly N     ... hours        daily N    ... days
//   weekly N     ... ISO weeks (Monday to Sunday)
//   monthly N    ... months       yearly N   ... years
//   label L      the policy also governs snapshots labelled L (L is the rest
//                of the rule; 'label *' governs every label)
//
// Semantics are borg's (borg prune, 1.2 and later), with buckets in UTC:
//   - A bucket (a calendar minute, hour, ...) counts only if it holds a
//     snapshot: days without snapshots do not count.
//   - Rules apply in the order within, last, minutely, hourly, daily,
//     weekly, monthly, yearly. Each walks the snapshots newest first and
//     keeps the newest snapshot of each new bucket, until N are kept; a
//     bucket whose newest snapshot an earlier rule already kept is passed
//     over without counting (so 'within' and earlier tiers never use up a
//     later tier's count).
//   - When a rule runs out of snapshots before keeping N, it keeps the
//     oldest snapshot too, so that the oldest can age into the tier.
//   - 'last N' keeps exactly the N newest (borg's --keep-last counts
//     seconds; here two snapshots in one second are two).
// And, for what a database's store holds:
//   - The policy governs unlabelled snapshots and those labelled 'auto'
//     (automatic ones), plus the labels it names. A snapshot with another
//     label (pre-restore, pre-migrate, a user's own) is kept, and takes
//     no bucket from the governed ones.
//   - The snapshot with the largest id is always kept (the store never
//     deletes the file holding its largest id: docs/FORMAT.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "store/manifest.h"
#include "store/status.h"

namespace snapshot {

class RetentionPolicy {
 public:
  // The counted rules, in the order they apply.
  enum Tier { kLast, kMinutely, kHourly, kDaily, kWeekly, kMonthly, kYearly, kTierCount };
  static const char* TierName(Tier t);

  // Strict: an unknown rule, a missing or malformed number, a rule given
  // twice, or a policy that keeps nothing by any rule is InvalidArgument,
  // naming the offending text.
  static Status Parse(const std::string& text, RetentionPolicy* out);
  // The canonical text: Parse(ToString()) gives an equal policy, so a
  // policy can be stored as text and read back.
  std::string ToString() const;

  // Whether the policy decides the fate of snapshots labelled `label`.
  bool Governs(const std::string& label) const;

  int64_t within_ms = -1;               // < 0: unused
  int64_t count[kTierCount] = {-1, -1, -1, -1, -1, -1, -1};  // < 0: unused
  std::vector<std::string> labels;      // governed besides "" and "auto"
  bool all_labels = false;              // 'label *'

  bool operator==(const RetentionPolicy& o) const;
};

struct RetentionDecision {
  uint64_t id = 0;
  bool keep = false;
  // Why it is kept: "within 1h", "last #2", "daily #3", "monthly (oldest)",
  // "newest", "label 'pre-restore'"; empty when it is not kept.
  std::string reason;
};

// One decision for each snapshot of `snapshots` (any order), in that order.
std::vector<RetentionDecision> SelectRetained(const std::vector<SnapshotInfo>& snapshots,
                                              const RetentionPolicy& policy, int64_t now_ms);

}  // namespace snapshot
