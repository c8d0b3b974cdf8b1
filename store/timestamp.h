// Timestamp: UTC calendar arithmetic and ISO 8601 parsing, without the C
// library's time zone state (so results never depend on TZ or on locale).
//
// A snapshot's time is Unix milliseconds (SnapshotInfo::created_ms). Users
// name moments as text: ParseTimestamp turns that text into the same scale.
//
//   int64_t ms;
//   ParseTimestamp("2026-12-05 14:59:00", &ms);        // UTC
//   ParseTimestamp("2026-12-05T15:59:00+01:00", &ms);  // the same moment
//
// Retention sorts snapshots into calendar buckets (minute, hour, day, ISO
// week, month, year) by the functions below, all in UTC.
#pragma once

#include <cstdint>
#include <string>

#include "store/status.h"

namespace snapshot {

// Days since 1970-01-01 of a proleptic Gregorian date (month 1-12).
int64_t DaysFromCivil(int64_t year, int month, int day);
// The date of a day number: the inverse of DaysFromCivil.
void CivilFromDays(int64_t days, int64_t* year, int* month, int* day);

// Floor division: -1 ms is in the day before 1970-01-01, not in it.
inline int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// The ISO week (Monday to Sunday) holding Unix time `ms`, as a week number
// counted from the week of 1970-01-01. Weeks that straddle a new year are
// one week, as in ISO 8601's week-numbering year.
inline int64_t IsoWeekNumber(int64_t ms) {
  // 1970-01-01 was a Thursday: adding 3 days makes weeks start on Monday.
  return FloorDiv(FloorDiv(ms, 86400000) + 3, 7);
}

// Parses an ISO 8601 date and time: YYYY-MM-DD, then 'T', 't' or one space,
// then HH:MM, optionally :SS and a fraction of 1 to 9 digits, then
// optionally 'Z'/'z' or an offset +hh:mm, +hhmm or +hh (or with '-').
// Without an offset the time is UTC. Fractions finer than a millisecond
// are dropped (rounded down), so "at or before" comparisons stay exact.
// InvalidArgument, naming what is wrong, for anything else.
Status ParseTimestamp(const std::string& text, int64_t* unix_ms);

}  // namespace snapshot
