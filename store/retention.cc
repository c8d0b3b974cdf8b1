#include "store/retention.h"

#include <algorithm>
#include <cctype>

#include "store/timestamp.h"

namespace snapshot {
namespace {

constexpr const char* kTierNames[] = {"last", "minutely", "hourly", "daily", "weekly", "monthly", "yearly"};
constexpr char kRuleList[] = "within, last, minutely, hourly, daily, weekly, monthly, yearly, label";
constexpr int64_t kMaxCount = 1000000000;

struct Unit {
  const char* name;
  int64_t ms;
};
// Largest first, so that ToString picks the largest unit that divides.
constexpr Unit kUnits[] = {{"w", 7 * 86400000LL}, {"d", 86400000LL}, {"h", 3600000LL}, {"min", 60000LL}, {"s", 1000LL}};

std::string Trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) b++;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) e--;
  return s.substr(b, e - b);
}

bool AllDigits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

Status ParseCount(const std::string& rule, const std::string& arg, int64_t* out) {
  if (!AllDigits(arg) || arg.size() > 10 || std::stoll(arg) < 1 || std::stoll(arg) > kMaxCount) {
    return Status::InvalidArgument("'" + rule + "' needs a count from 1 to " + std::to_string(kMaxCount) +
                                   " (e.g. '" + rule.substr(0, rule.find(' ')) + " 7')");
  }
  *out = std::stoll(arg);
  return Status::OK();
}

Status ParseDuration(const std::string& rule, const std::string& arg, int64_t* out) {
  size_t digits = 0;
  while (digits < arg.size() && arg[digits] >= '0' && arg[digits] <= '9') digits++;
  const std::string unit = Trim(arg.substr(digits));
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("'" + rule + "': " + why + " (a span is a whole number and a unit: s, min, h, d or w, e.g. 'within 36h')");
  };
  if (digits == 0 || digits > 9) return bad("the span must start with a whole number");
  if (unit == "m") return bad("'m' could be minutes or months: write 'min' for minutes");
  for (const Unit& u : kUnits) {
    if (unit == u.name) {
      *out = std::stoll(arg.substr(0, digits)) * u.ms;
      if (*out <= 0) return bad("the span must be longer than 0");
      return Status::OK();
    }
  }
  return bad(unit.empty() ? "the unit is missing" : "unknown unit '" + unit + "'");
}

std::string DurationText(int64_t ms) {
  for (const Unit& u : kUnits) {
    if (ms % u.ms == 0) return std::to_string(ms / u.ms) + u.name;
  }
  return std::to_string(ms / 1000) + "s";  // Parse only makes whole seconds
}

int64_t Bucket(RetentionPolicy::Tier t, int64_t ms) {
  int64_t y;
  int m, d;
  switch (t) {
    case RetentionPolicy::kMinutely: return FloorDiv(ms, 60000);
    case RetentionPolicy::kHourly: return FloorDiv(ms, 3600000);
    case RetentionPolicy::kDaily: return FloorDiv(ms, 86400000);
    case RetentionPolicy::kWeekly: return IsoWeekNumber(ms);
    case RetentionPolicy::kMonthly: CivilFromDays(FloorDiv(ms, 86400000), &y, &m, &d); return y * 12 + (m - 1);
    case RetentionPolicy::kYearly: CivilFromDays(FloorDiv(ms, 86400000), &y, &m, &d); return y;
    default: return 0;  // kLast is bucketed by position, not by time
  }
}

}  // namespace

const char* RetentionPolicy::TierName(Tier t) { return kTierNames[t]; }

bool RetentionPolicy::operator==(const RetentionPolicy& o) const {
  return within_ms == o.within_ms && std::equal(count, count + kTierCount, o.count) && labels == o.labels &&
         all_labels == o.all_labels;
}

bool RetentionPolicy::Governs(const std::string& label) const {
  return label.empty() || label == "auto" || all_labels ||
         std::find(labels.begin(), labels.end(), label) != labels.end();
}

Status RetentionPolicy::Parse(const std::string& text, RetentionPolicy* out) {
  RetentionPolicy p;
  bool keeps = false;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    const std::string rule = Trim(text.substr(start, comma - start));
    start = comma + 1;
    if (rule.empty()) {
      return Status::InvalidArgument(text.find_first_not_of(" \t\n,") == std::string::npos
                                         ? "the policy is empty (rules: " + std::string(kRuleList) + ")"
                                         : "an empty rule between commas in '" + text + "'");
    }
    size_t sp = 0;
    while (sp < rule.size() && !std::isspace(static_cast<unsigned char>(rule[sp]))) sp++;
    const std::string name = rule.substr(0, sp), arg = Trim(rule.substr(sp));
    if (name == "within") {
      if (p.within_ms >= 0) return Status::InvalidArgument("'within' is given twice");
      SNAPSHOT_RETURN_IF_ERROR(ParseDuration(rule, arg, &p.within_ms));
      keeps = true;
      continue;
    }
    if (name == "label") {
      if (arg.empty()) return Status::InvalidArgument("'label' needs the label it governs (or * for every label)");
      if (arg == "*") {
        p.all_labels = true;
        continue;
      }
      SNAPSHOT_RETURN_IF_ERROR(ValidateLabel(arg));
      if (std::find(p.labels.begin(), p.labels.end(), arg) != p.labels.end()) {
        return Status::InvalidArgument("'" + rule + "' is given twice");
      }
      p.labels.push_back(arg);
      continue;
    }
    const auto tier = std::find(std::begin(kTierNames), std::end(kTierNames), name);
    if (tier == std::end(kTierNames)) {
      return Status::InvalidArgument("unknown rule '" + rule + "' (rules: " + kRuleList + ")");
    }
    int64_t& n = p.count[tier - std::begin(kTierNames)];
    if (n >= 0) return Status::InvalidArgument("'" + name + "' is given twice");
    SNAPSHOT_RETURN_IF_ERROR(ParseCount(rule, arg, &n));
    keeps = true;
  }
  if (!keeps) {
    return Status::InvalidArgument("the policy keeps nothing by time or count: add a rule (" + std::string(kRuleList) +
                                   ")");
  }
  *out = std::move(p);
  return Status::OK();
}

std::string RetentionPolicy::ToString() const {
  std::string out;
  auto add = [&](const std::string& rule) { out += (out.empty() ? "" : ", ") + rule; };
  if (within_ms >= 0) add("within " + DurationText(within_ms));
  for (int t = 0; t < kTierCount; t++) {
    if (count[t] >= 0) add(std::string(kTierNames[t]) + " " + std::to_string(count[t]));
  }
  if (all_labels) add("label *");
  for (const std::string& l : labels) add("label " + l);
  return out;
}

std::vector<RetentionDecision> SelectRetained(const std::vector<SnapshotInfo>& snapshots,
                                              const RetentionPolicy& policy, int64_t now_ms) {
  std::vector<RetentionDecision> out(snapshots.size());
  auto keep = [&](size_t i, const std::string& reason) {
    out[i].keep = true;
    out[i].reason = reason;
  };
  std::vector<size_t> governed;  // newest first
  size_t largest = 0;
  for (size_t i = 0; i < snapshots.size(); i++) {
    out[i].id = snapshots[i].id;
    if (snapshots[i].id > snapshots[largest].id) largest = i;
    if (policy.Governs(snapshots[i].label)) {
      governed.push_back(i);
    } else {
      keep(i, "label '" + snapshots[i].label + "'");
    }
  }
  std::sort(governed.begin(), governed.end(), [&](size_t a, size_t b) {
    const SnapshotInfo &x = snapshots[a], &y = snapshots[b];
    return x.created_ms != y.created_ms ? x.created_ms > y.created_ms : x.id > y.id;
  });

  if (policy.within_ms >= 0) {
    for (size_t i : governed) {
      if (now_ms - snapshots[i].created_ms < policy.within_ms) keep(i, "within " + DurationText(policy.within_ms));
    }
  }
  for (int t = 0; t < RetentionPolicy::kTierCount; t++) {
    const int64_t wanted = policy.count[t];
    if (wanted <= 0 || governed.empty()) continue;
    const auto tier = RetentionPolicy::Tier(t);
    int64_t kept = 0, last_bucket = 0;
    for (size_t rank = 0; rank < governed.size() && kept < wanted; rank++) {
      const size_t i = governed[rank];
      const int64_t bucket = tier == RetentionPolicy::kLast ? int64_t(rank) : Bucket(tier, snapshots[i].created_ms);
      if (rank > 0 && bucket == last_bucket) continue;  // an older snapshot of the same bucket
      last_bucket = bucket;
      // A bucket whose newest snapshot is kept already is passed over.
      if (!out[i].keep) keep(i, std::string(RetentionPolicy::TierName(tier)) + " #" + std::to_string(++kept));
    }
    // Too few buckets: the oldest snapshot stays, to age into this tier.
    if (kept < wanted && !out[governed.back()].keep) {
      keep(governed.back(), std::string(RetentionPolicy::TierName(tier)) + " (oldest)");
    }
  }
  if (!snapshots.empty() && !out[largest].keep) keep(largest, "newest");
  return out;
}

}  // namespace snapshot
