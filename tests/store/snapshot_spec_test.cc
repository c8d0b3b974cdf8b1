// Naming a snapshot (store/snapshot_spec.h): ISO 8601 times as users write
// them, the UTC calendar under them, and the choice of the newest snapshot
// taken at or before a moment, in a real store on a fake clock.

#include <time.h>

#include <string>
#include <vector>

#include "store/snapshot_spec.h"
#include "store/timestamp.h"
#include "tests/store/store_test_util.h"

namespace store_test {
namespace {

using snapshot::CivilFromDays;
using snapshot::DaysFromCivil;
using snapshot::IsoWeekNumber;
using snapshot::ParseTimestamp;
using snapshot::ResolveSnapshot;
using snapshot::SnapshotSpec;

constexpr int64_t kDay = 86400000;

int64_t Ms(const std::string& text) {
  int64_t ms = 0;
  const Status s = ParseTimestamp(text, &ms);
  EXPECT_TRUE(s.ok()) << text << ": " << s.message();
  return ms;
}

// The C library's answer, from a broken-down UTC time (timegm is TZ-free).
int64_t Libc(int y, int mo, int d, int h, int mi, int s) {
  struct tm tm = {};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return int64_t(timegm(&tm)) * 1000;
}

TEST(Timestamp, CalendarAgreesWithTheCLibrary) {
  for (int64_t day = DaysFromCivil(1899, 12, 25); day < DaysFromCivil(2101, 1, 10); day++) {
    int64_t y;
    int m, d;
    CivilFromDays(day, &y, &m, &d);
    ASSERT_EQ(day, DaysFromCivil(y, m, d));
    time_t t = time_t(day * 86400);
    struct tm tm;
    gmtime_r(&t, &tm);
    ASSERT_EQ(tm.tm_year + 1900, y);
    ASSERT_EQ(tm.tm_mon + 1, m);
    ASSERT_EQ(tm.tm_mday, d);
    // ISO week: the same number for days strftime puts in the same %G-%V.
    char week[16], prev_week[16];
    strftime(week, sizeof week, "%G-%V", &tm);
    time_t p = t - 86400;
    struct tm ptm;
    gmtime_r(&p, &ptm);
    strftime(prev_week, sizeof prev_week, "%G-%V", &ptm);
    ASSERT_EQ(std::string(week) == prev_week, IsoWeekNumber(day * kDay) == IsoWeekNumber((day - 1) * kDay)) << week;
    ASSERT_EQ(IsoWeekNumber(day * kDay), IsoWeekNumber(day * kDay + kDay - 1));
  }
}

TEST(Timestamp, AcceptsTheIsoFormsUsersWrite) {
  const int64_t t = Libc(2026, 12, 5, 14, 59, 0);
  for (const char* text : {"2026-12-05 14:59:00", "2026-12-05 14:59", "2026-12-05T14:59:00Z", "2026-12-05t14:59z",
                           "2026-12-05T14:59:00.000Z", "2026-12-05T15:59:00+01:00", "2026-12-05T15:59+0100",
                           "2026-12-05T15:59+01", "2026-12-05T09:29:00-05:30", "2026-12-05 14:59:00+00:00"}) {
    EXPECT_EQ(t, Ms(text)) << text;
  }
  EXPECT_EQ(t + 500, Ms("2026-12-05 14:59:00.5"));
  EXPECT_EQ(t + 123, Ms("2026-12-05 14:59:00.123456789"));  // rounded down to the millisecond
  EXPECT_EQ(t + 120, Ms("2026-12-05 14:59:00,12"));
  EXPECT_EQ(Libc(2028, 2, 29, 0, 0, 0), Ms("2028-02-29 00:00"));
  EXPECT_EQ(Libc(1969, 12, 31, 23, 59, 59) + 999, Ms("1969-12-31T23:59:59.999Z"));
  EXPECT_EQ(Libc(2027, 1, 1, 0, 30, 0), Ms("2026-12-31T23:30:00-01:00"));  // the offset crosses the year
}

TEST(Timestamp, RefusesMalformedTimesSayingWhy) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"2026-13-01 00:00", "month 13"},
      {"2026-02-29 00:00", "day 29 does not exist in month 2"},
      {"2026-12-00 00:00", "day 0"},
      {"2026-12-05", "a time of day must follow"},
      {"2026-12-05 24:00", "hour 24"},
      {"2026-12-05 14:60", "minute 60"},
      {"2026-12-05 14:59:60", "second 60"},
      {"2026-12-05 14", "HH:MM"},
      {"2026-12-05 1:59", "HH:MM"},
      {"2026-12-05_14:59", "'T' or a space"},
      {"2026-12-05 14:59:00.", "1 to 9 digits"},
      {"2026-12-05 14:59:00.1234567890", "1 to 9 digits"},
      {"2026-12-05 14:59:00 +01:00", "unexpected ' +01:00'"},
      {"2026-12-05 14:59+1:00", "+hh:mm"},
      {"2026-12-05 14:59+24:00", "offset out of range"},
      {"2026-12-05 14:59Zulu", "unexpected 'ulu'"},
      {"26-12-05 14:59", "YYYY-MM-DD"},
  };
  for (const auto& [text, why] : cases) {
    int64_t ms;
    const Status s = ParseTimestamp(text, &ms);
    EXPECT_FALSE(s.ok()) << text;
    EXPECT_NE(std::string::npos, s.message().find(why)) << text << ": " << s.message();
    EXPECT_NE(std::string::npos, s.message().find("'" + text + "'")) << s.message();
  }
}

TEST(SnapshotSpecText, IdLatestOrTime) {
  SnapshotSpec s;
  ASSERT_OK(SnapshotSpec::Parse("42", &s));
  EXPECT_EQ(SnapshotSpec::Kind::kId, s.kind);
  EXPECT_EQ(42u, s.id);
  ASSERT_OK(SnapshotSpec::Parse("9223372036854775807", &s));
  EXPECT_EQ(uint64_t(INT64_MAX), s.id);
  ASSERT_OK(SnapshotSpec::Parse("latest", &s));
  EXPECT_EQ(SnapshotSpec::Kind::kLatest, s.kind);
  ASSERT_OK(SnapshotSpec::Parse("2026-12-05T14:59:00Z", &s));
  EXPECT_EQ(SnapshotSpec::Kind::kTime, s.kind);
  EXPECT_EQ(Libc(2026, 12, 5, 14, 59, 0), s.at_ms);
  for (const char* bad : {"0", "9223372036854775808", "99999999999999999999"}) {
    EXPECT_NE(std::string::npos, SnapshotSpec::Parse(bad, &s).message().find("positive integer")) << bad;
  }
  for (const char* bad : {"", "abc", "-1", "Latest", "yesterday", "12/05/2026"}) {
    const Status st = SnapshotSpec::Parse(bad, &s);
    EXPECT_NE(std::string::npos, st.message().find("names no snapshot")) << bad << ": " << st.message();
  }
  // A date-like text is a time: the message says what is wrong with it.
  EXPECT_NE(std::string::npos, SnapshotSpec::Parse("2026-12-32 10:00", &s).message().find("day 32"));
}

// Snapshots at 10:00, 11:00 and 12:00 of 2026-12-05 (UTC), on a fake clock.
class SnapshotAtTime : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = OpenOrDie(Options(tmp_ / "s", true, &clock_));
    for (int i = 0; i < 3; i++) {
      clock_.now = Libc(2026, 12, 5, 10 + i, 0, 0);
      uint64_t id;
      ASSERT_OK(Snap(store_.get(), MakeImage(4096, 4, i + 1), "auto", &id));
      ids_.push_back(id);
    }
  }
  Status At(const std::string& text, uint64_t* id) {
    SnapshotSpec spec;
    SNAPSHOT_RETURN_IF_ERROR(SnapshotSpec::Parse(text, &spec));
    return ResolveSnapshot(store_.get(), spec, id);
  }
  uint64_t AtOrDie(const std::string& text) {
    uint64_t id = 0;
    const Status s = At(text, &id);
    EXPECT_TRUE(s.ok()) << text << ": " << s.message();
    return id;
  }

  TempDir tmp_;
  ClockEnv clock_;
  std::unique_ptr<Store> store_;
  std::vector<uint64_t> ids_;
};

TEST_F(SnapshotAtTime, TheNewestTakenAtOrBeforeTheMoment) {
  EXPECT_EQ(ids_[0], AtOrDie("2026-12-05 10:00"));  // at: inclusive
  EXPECT_EQ(ids_[0], AtOrDie("2026-12-05 10:59:59.999"));
  EXPECT_EQ(ids_[1], AtOrDie("2026-12-05 11:00"));
  EXPECT_EQ(ids_[1], AtOrDie("2026-12-05T12:30:00+01:00"));  // 11:30 UTC
  EXPECT_EQ(ids_[2], AtOrDie("2026-12-05T12:00:00.001Z"));
  EXPECT_EQ(ids_[2], AtOrDie("2030-01-01 00:00"));  // the future: the latest
  EXPECT_EQ(ids_[2], AtOrDie("latest"));
  EXPECT_EQ(ids_[1], AtOrDie(std::to_string(ids_[1])));
}

TEST_F(SnapshotAtTime, BeforeTheFirstSnapshotSaysWhenTheFirstWas) {
  uint64_t id = 0;
  const Status s = At("2026-12-05 09:59:59.999", &id);
  EXPECT_TRUE(s.IsNotFound()) << Describe(s);
  EXPECT_NE(std::string::npos, s.message().find("no snapshot was taken at or before 2026-12-05T09:59:59.999Z"))
      << s.message();
  EXPECT_NE(std::string::npos, s.message().find("the first is snapshot " + std::to_string(ids_[0]) +
                                                ", taken 2026-12-05T10:00:00.000Z"))
      << s.message();
  EXPECT_TRUE(At("999", &id).IsNotFound());
}

TEST_F(SnapshotAtTime, ADeletedSnapshotIsNeverChosen) {
  PruneResult pr;
  ASSERT_OK(store_->Prune(1, -1, &pr));  // only 12:00 stays
  uint64_t id;
  EXPECT_TRUE(At("2026-12-05 11:30", &id).IsNotFound());
  EXPECT_EQ(ids_[2], AtOrDie("2026-12-05 12:30"));
}

// A full snapshot of `img` recording that its newest commit was made at
// `commit_ms`.
Status SnapCommittedAt(Store* store, const Image& img, int64_t commit_ms, uint64_t* id) {
  std::unique_ptr<SnapshotBuilder> b;
  SNAPSHOT_RETURN_IF_ERROR(store->NewSnapshot(img.page_size, uint32_t(img.pages.size()), nullptr, &b));
  for (uint32_t p = 0; p < img.pages.size(); p++) {
    SNAPSHOT_RETURN_IF_ERROR(b->AddPage(p + 1, reinterpret_cast<const uint8_t*>(img.pages[p].data())));
  }
  b->SetCommitTime(commit_ms);
  return b->Commit("", id);
}

// A snapshot taken at 13:00 of a database last written at 12:10 holds the
// state of every moment from 12:10 on: a moment between takes it, not the
// 12:00 one. Before 12:10, the 12:00 one; the message names both times.
TEST_F(SnapshotAtTime, AMomentMatchesTheCommitASnapshotHolds) {
  clock_.now = Libc(2026, 12, 5, 13, 0, 0);
  const Image img = MakeImage(4096, 4, 9);
  uint64_t late;
  ASSERT_OK(SnapCommittedAt(store_.get(), img, Libc(2026, 12, 5, 12, 10, 0), &late));
  EXPECT_EQ(Libc(2026, 12, 5, 12, 10, 0), InfoOf(store_.get(), late).commit_ms);
  EXPECT_EQ(ids_[2], AtOrDie("2026-12-05 12:09:59.999"));
  EXPECT_EQ(late, AtOrDie("2026-12-05 12:10"));
  EXPECT_EQ(late, AtOrDie("2026-12-05 12:59"));
  // A commit time after the snapshot's own is recorded as its own.
  clock_.now = Libc(2026, 12, 5, 14, 0, 0);
  uint64_t clamped;
  ASSERT_OK(SnapCommittedAt(store_.get(), img, Libc(2026, 12, 5, 15, 0, 0), &clamped));
  EXPECT_EQ(clock_.now, InfoOf(store_.get(), clamped).commit_ms);
}

TEST(SnapshotAtTimeMessage, BeforeTheFirstStateNamesItsCommit) {
  TempDir tmp;
  ClockEnv clock;
  std::unique_ptr<Store> store = OpenOrDie(Options(tmp / "s", true, &clock));
  clock.now = Libc(2026, 12, 5, 13, 0, 0);
  uint64_t id;
  ASSERT_OK(SnapCommittedAt(store.get(), MakeImage(4096, 2, 1), Libc(2026, 12, 5, 12, 10, 0), &id));
  SnapshotSpec spec;
  ASSERT_OK(SnapshotSpec::Parse("2026-12-05 12:00", &spec));
  const Status s = ResolveSnapshot(store.get(), spec, &id);
  EXPECT_TRUE(s.IsNotFound()) << Describe(s);
  EXPECT_NE(std::string::npos, s.message().find("taken 2026-12-05T13:00:00.000Z, holding the state as of "
                                                "2026-12-05T12:10:00.000Z"))
      << s.message();
}

}  // namespace
}  // namespace store_test
