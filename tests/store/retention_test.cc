// Retention tiers (store/retention.h) against a fake clock: which snapshots
// a policy keeps and why, the policy's text form, and Store::Prune applying
// a policy to a real store.

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "store/retention.h"
#include "store/timestamp.h"
#include "tests/store/store_test_util.h"

namespace {

using snapshot::DaysFromCivil;
using snapshot::RetentionDecision;
using snapshot::RetentionPolicy;
using snapshot::SelectRetained;
using snapshot::SnapshotInfo;
using snapshot::Status;
using namespace store_test;

constexpr int64_t kSecond = 1000, kMinute = 60 * kSecond, kHour = 60 * kMinute, kDay = 24 * kHour;

int64_t Date(int y, int m, int d, int hour = 0, int minute = 0) {
  return DaysFromCivil(y, m, d) * kDay + hour * kHour + minute * kMinute;
}

RetentionPolicy Policy(const std::string& text) {
  RetentionPolicy p;
  const Status s = RetentionPolicy::Parse(text, &p);
  EXPECT_TRUE(s.ok()) << text << ": " << s.message();
  return p;
}

// A history: snapshot i+1 taken at times[i], labelled labels[i] (default "auto").
std::vector<SnapshotInfo> History(const std::vector<int64_t>& times, const std::vector<std::string>& labels = {}) {
  std::vector<SnapshotInfo> out;
  for (size_t i = 0; i < times.size(); i++) {
    SnapshotInfo s;
    s.id = i + 1;
    s.created_ms = times[i];
    s.label = i < labels.size() ? labels[i] : "auto";
    out.push_back(s);
  }
  return out;
}

// id -> reason, for the kept ones.
std::map<uint64_t, std::string> Kept(const std::vector<SnapshotInfo>& h, const std::string& policy, int64_t now) {
  std::map<uint64_t, std::string> out;
  const std::vector<RetentionDecision> d = SelectRetained(h, Policy(policy), now);
  EXPECT_EQ(h.size(), d.size());
  for (size_t i = 0; i < d.size(); i++) {
    EXPECT_EQ(h[i].id, d[i].id);
    EXPECT_EQ(d[i].keep, !d[i].reason.empty()) << d[i].id;
    if (d[i].keep) out[d[i].id] = d[i].reason;
  }
  return out;
}

using Reasons = std::map<uint64_t, std::string>;

TEST(RetentionPolicyText, ParsesEveryRuleAndPrintsItBack) {
  const RetentionPolicy p =
      Policy(" within 1h, minutely 60,hourly 48, daily 30, weekly 12, monthly 12, yearly 3, last 10, label pre-migrate ");
  EXPECT_EQ(kHour, p.within_ms);
  EXPECT_EQ(10, p.count[RetentionPolicy::kLast]);
  EXPECT_EQ(60, p.count[RetentionPolicy::kMinutely]);
  EXPECT_EQ(48, p.count[RetentionPolicy::kHourly]);
  EXPECT_EQ(30, p.count[RetentionPolicy::kDaily]);
  EXPECT_EQ(12, p.count[RetentionPolicy::kWeekly]);
  EXPECT_EQ(12, p.count[RetentionPolicy::kMonthly]);
  EXPECT_EQ(3, p.count[RetentionPolicy::kYearly]);
  EXPECT_EQ(std::vector<std::string>{"pre-migrate"}, p.labels);
  EXPECT_EQ("within 1h, last 10, minutely 60, hourly 48, daily 30, weekly 12, monthly 12, yearly 3, label pre-migrate",
            p.ToString());
  EXPECT_TRUE(Policy(p.ToString()) == p);
  for (const char* text : {"within 90min", "within 36h, label *", "within 2w", "within 45s", "within 1 d", "last 1"}) {
    const RetentionPolicy q = Policy(text);
    EXPECT_TRUE(Policy(q.ToString()) == q) << text << " -> " << q.ToString();
  }
  EXPECT_EQ(90 * kMinute, Policy("within 90min").within_ms);
  EXPECT_EQ(14 * kDay, Policy("within 2w").within_ms);
  EXPECT_EQ("within 2w", Policy("within 336h").ToString());
}

TEST(RetentionPolicyText, RefusesWhatItCannotReadNamingTheToken) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "empty"},
      {"  ", "empty"},
      {"dayly 7", "unknown rule 'dayly 7'"},
      {"daily", "'daily' needs a count"},
      {"daily x", "'daily x' needs a count"},
      {"daily 0", "'daily 0' needs a count"},
      {"daily -1", "'daily -1' needs a count"},
      {"daily 1.5", "'daily 1.5' needs a count"},
      {"daily 99999999999", "needs a count"},
      {"daily 7, daily 8", "'daily' is given twice"},
      {"daily 7,", "empty rule"},
      {"daily 7,, hourly 2", "empty rule"},
      {"within 1m", "'m' could be minutes or months"},
      {"within 1", "the unit is missing"},
      {"within h", "whole number"},
      {"within 3 fortnights", "unknown unit 'fortnights'"},
      {"within 0h", "longer than 0"},
      {"within 1h, within 2h", "'within' is given twice"},
      {"label", "'label' needs the label"},
      {"label a/b", "label"},
      {"label x", "keeps nothing"},
      {"daily 7 hourly 3", "'daily 7 hourly 3' needs a count"},
      {"Daily 7", "unknown rule 'Daily 7'"},
  };
  for (const auto& [text, expected] : cases) {
    RetentionPolicy p;
    const Status s = RetentionPolicy::Parse(text, &p);
    EXPECT_FALSE(s.ok()) << text;
    EXPECT_NE(std::string::npos, s.message().find(expected)) << text << ": " << s.message();
  }
}

// borg's example shape: one snapshot every 6 h for 5 days. 'within' keeps
// the last day; daily counts only days whose newest snapshot it did not keep.
TEST(RetentionTiers, WithinDoesNotUseUpTheDailyCount) {
  std::vector<int64_t> times;
  for (int day = 0; day < 5; day++)
    for (int h = 0; h < 24; h += 6) times.push_back(Date(2026, 12, 1 + day, h));
  const auto h = History(times);  // ids 1..20; id 20 at Dec 5 18:00
  const int64_t now = Date(2026, 12, 5, 19);
  const Reasons want = {{17, "within 1d"}, {18, "within 1d"}, {19, "within 1d"}, {20, "within 1d"},
                        {16, "daily #1"},  {12, "daily #2"}};
  EXPECT_EQ(want, Kept(h, "within 1d, daily 2", now));
}

TEST(RetentionTiers, EachBucketKeepsItsNewestSnapshotAndEmptyBucketsDoNotCount) {
  // Days 1, 2 (three snapshots), 5, 9 of December: gaps do not count.
  const auto h = History({Date(2026, 12, 1, 10), Date(2026, 12, 2, 1), Date(2026, 12, 2, 12), Date(2026, 12, 2, 23),
                          Date(2026, 12, 5, 8), Date(2026, 12, 9, 7)});
  const int64_t now = Date(2026, 12, 20);
  EXPECT_EQ((Reasons{{6, "daily #1"}, {5, "daily #2"}, {4, "daily #3"}}), Kept(h, "daily 3", now));
  EXPECT_EQ((Reasons{{6, "hourly #1"}, {5, "hourly #2"}, {4, "hourly #3"}, {3, "hourly #4"}}),
            Kept(h, "hourly 4", now));
}

// borg 1.2: a rule that runs out of buckets keeps the oldest snapshot too,
// so that it can age into the tier.
TEST(RetentionTiers, ARuleShortOfItsCountKeepsTheOldest) {
  const auto h = History({Date(2026, 12, 1, 1), Date(2026, 12, 1, 2), Date(2026, 12, 1, 3)});
  EXPECT_EQ((Reasons{{3, "daily #1"}, {1, "daily (oldest)"}}), Kept(h, "daily 7", Date(2026, 12, 10)));
  // Met: no extra.
  EXPECT_EQ((Reasons{{3, "daily #1"}}), Kept(h, "daily 1", Date(2026, 12, 10)));
}

TEST(RetentionTiers, WeeksAreIsoWeeksAcrossTheNewYearAndMonthsAreCalendarMonths) {
  // Mon 2026-12-28, Thu 2026-12-31 and Sun 2027-01-03 are one ISO week
  // (2026-W53); Mon 2027-01-04 starts the next. Sunday 2026-12-27 23:59 is
  // the week before.
  const auto h = History({Date(2026, 12, 27, 23, 59), Date(2026, 12, 28, 0), Date(2026, 12, 31, 12),
                          Date(2027, 1, 3, 23, 59), Date(2027, 1, 4, 0)});
  const int64_t now = Date(2027, 2, 1);
  EXPECT_EQ((Reasons{{5, "weekly #1"}, {4, "weekly #2"}, {1, "weekly #3"}}), Kept(h, "weekly 3", now));
  EXPECT_EQ((Reasons{{5, "monthly #1"}, {3, "monthly #2"}}), Kept(h, "monthly 2", now));
  EXPECT_EQ((Reasons{{5, "yearly #1"}, {3, "yearly #2"}, {1, "yearly (oldest)"}}), Kept(h, "yearly 5", now));
}

TEST(RetentionTiers, LastKeepsExactlyTheNewestEvenWithinOneSecond) {
  const int64_t t = Date(2026, 12, 5, 12);
  const auto h = History({t, t + 100, t + 200, t + 300});
  EXPECT_EQ((Reasons{{4, "last #1"}, {3, "last #2"}}), Kept(h, "last 2", t + kDay));
}

// A snapshot every 10 s for three days under a typical continuous policy:
// every tier takes the buckets the tiers before it left.
TEST(RetentionTiers, ContinuousHistoryThinsOutTierByTier) {
  const int64_t t0 = Date(2026, 11, 30);
  std::vector<int64_t> times;
  for (int64_t t = t0; t < t0 + 3 * kDay; t += 10 * kSecond) times.push_back(t);
  const auto h = History(times);
  const int64_t now = t0 + 3 * kDay;  // 10 s after the newest
  const Reasons kept = Kept(h, "within 1h, minutely 60, hourly 24, daily 30", now);
  std::map<std::string, int> by_rule;
  for (const auto& [id, why] : kept) {
    const int64_t at = times[id - 1];
    const std::string rule = why.substr(0, why.find_first_of(" #("));
    by_rule[why.find("oldest") != std::string::npos ? rule + " (oldest)" : rule]++;
    if (rule == "within") {
      EXPECT_LT(now - at, kHour) << id;
    }
    // Every other keeper is the newest snapshot (the :50 one) of its minute.
    if (rule != "within" && why.find("oldest") == std::string::npos) {
      EXPECT_EQ(50 * kSecond, at % kMinute) << why;
    }
    if (rule == "minutely") {
      EXPECT_GE(at, now - 2 * kHour) << why;
    }
    if (rule == "hourly") {
      EXPECT_EQ(kHour - 10 * kSecond, at % kHour) << why;
    }
  }
  // within: the 359 snapshots less than an hour old. minutely: the 60
  // minutes before them (the minute straddling the hour is passed over: its
  // newest is within). hourly: 24 hours, passing over the two hours whose
  // newest the finer tiers kept, back to Dec 1 22:00. daily: Dec 2 and Dec 1
  // are passed over (their newest is kept), Nov 30 is daily #1; short of
  // 30, the oldest.
  const std::map<std::string, int> want = {
      {"within", 359}, {"minutely", 60}, {"hourly", 24}, {"daily", 1}, {"daily (oldest)", 1}};
  EXPECT_EQ(want, by_rule);
  EXPECT_EQ("daily #1", kept.at(kDay / (10 * kSecond))  /* Nov 30, 23:59:50 */);
  EXPECT_EQ("daily (oldest)", kept.at(1));
}

TEST(RetentionLabels, LabelledSnapshotsAreKeptAndTakeNoBucketUnlessNamed) {
  const auto h = History({Date(2026, 12, 1, 9), Date(2026, 12, 2, 9), Date(2026, 12, 2, 10), Date(2026, 12, 2, 11),
                          Date(2026, 12, 2, 12)},
                         {"auto", "nightly", "", "pre-restore", "auto"});
  const int64_t now = Date(2026, 12, 9);
  // The newest governed snapshot of Dec 2 is 5 (auto); 4 (pre-restore) and
  // 2 (the user's 'nightly') are kept for their labels.
  EXPECT_EQ((Reasons{{5, "daily #1"}, {1, "daily #2"}, {4, "label 'pre-restore'"}, {2, "label 'nightly'"}}),
            Kept(h, "daily 2", now));
  // Named, pre-restore is governed like the others: no longer kept for its
  // label, and not the newest of its day.
  EXPECT_EQ((Reasons{{5, "daily #1"}, {1, "daily #2"}, {2, "label 'nightly'"}}),
            Kept(h, "daily 2, label pre-restore", now));
  EXPECT_EQ((Reasons{{5, "last #1"}}), Kept(h, "last 1, label *", now));
  // An unlabelled snapshot (snapshot_backup() without a label) is governed.
  EXPECT_EQ((Reasons{{5, "last #1"}, {4, "label 'pre-restore'"}, {2, "label 'nightly'"}}), Kept(h, "last 1", now));
}

TEST(RetentionNewest, TheLargestIdIsAlwaysKept) {
  // The clock went back: id 3 is the largest, its time the oldest.
  const auto h = History({Date(2026, 12, 5), Date(2026, 12, 6), Date(2026, 12, 1)});
  EXPECT_EQ((Reasons{{2, "last #1"}, {3, "newest"}}), Kept(h, "last 1", Date(2026, 12, 7)));
  EXPECT_EQ((Reasons{{3, "newest"}}), Kept(h, "within 1h", Date(2027, 1, 1)));
  EXPECT_TRUE(SelectRetained({}, Policy("last 1"), 0).empty());
}

TEST(RetentionWithin, IsMeasuredBackFromNow) {
  const int64_t now = Date(2026, 12, 5, 12);
  const auto h = History({now - 2 * kHour, now - kHour, now - kHour + 1, now});
  EXPECT_EQ((Reasons{{3, "within 1h"}, {4, "within 1h"}}), Kept(h, "within 1h", now));
  // Later, fewer are within, but the largest id stays.
  EXPECT_EQ((Reasons{{4, "newest"}}), Kept(h, "within 1h", now + kDay));
}

// Store::Prune with a policy: a snapshot every 6 h for 4 days, in a real
// store on a fake clock. What the policy keeps stays whole; the space of the
// rest is reclaimed; labelled snapshots stay.
TEST(StorePrunePolicy, KeepsWhatThePolicySelectsAndReclaimsTheRest) {
  TempDir tmp;
  ClockEnv clock;
  auto store = OpenOrDie(Options(tmp / "s", true, &clock));
  ASSERT_NE(nullptr, store);
  std::vector<Image> images;
  for (int i = 0; i < 16; i++) {
    clock.now = Date(2026, 12, 1 + i / 4, (i % 4) * 6);
    images.push_back(MakeImage(4096, 8, i + 1));
    uint64_t id;
    ASSERT_OK(Snap(store.get(), images.back(), i == 5 ? "pre-migrate" : "auto", &id));
    ASSERT_EQ(uint64_t(i + 1), id);
  }
  clock.now = Date(2026, 12, 4, 19);
  RetentionPolicy policy;
  ASSERT_OK(RetentionPolicy::Parse("within 12h, daily 2", &policy));
  PruneResult pr;
  ASSERT_OK(store->Prune(policy, &pr));
  // within 12h: 15 (Dec 4 12:00) and 16 (18:00); daily: Dec 4 is passed
  // over, Dec 3 -> 12, Dec 2 -> 8; 6 is kept for its label.
  const std::vector<uint64_t> kept = {6, 8, 12, 15, 16};
  EXPECT_EQ(kept, ListIds(store.get()));
  EXPECT_EQ(16u - kept.size(), pr.deleted.size());
  EXPECT_GT(pr.bytes_reclaimed, 0u);
  for (uint64_t id : kept) EXPECT_TRUE(ReadsBack(store.get(), id, images[id - 1]));
  EXPECT_OK(store->Verify(0));
  // The same policy again changes nothing.
  ASSERT_OK(store->Prune(policy, &pr));
  EXPECT_TRUE(pr.deleted.empty());
}

}  // namespace
