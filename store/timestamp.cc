#include "store/timestamp.h"

#include <cstddef>

namespace snapshot {

// Howard Hinnant's days_from_civil: eras of 400 years, each 146097 days,
// with the year starting in March so that the leap day comes last.
int64_t DaysFromCivil(int64_t year, int month, int day) {
  year -= month <= 2;
  const int64_t era = FloorDiv(year, 400);
  const int64_t yoe = year - era * 400;                                   // [0, 399]
  const int64_t doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;  // [0, 365]
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;              // [0, 146096]
  return era * 146097 + doe - 719468;
}

void CivilFromDays(int64_t days, int64_t* year, int* month, int* day) {
  days += 719468;
  const int64_t era = FloorDiv(days, 146097);
  const int64_t doe = days - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  *day = int(doy - (153 * mp + 2) / 5 + 1);
  *month = int(mp < 10 ? mp + 3 : mp - 9);
  *year = yoe + era * 400 + (*month <= 2);
}

namespace {

bool IsLeap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int64_t y, int m) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

// Reads exactly `n` digits at *pos.
bool Digits(const std::string& s, size_t* pos, size_t n, int64_t* out) {
  if (*pos + n > s.size()) return false;
  int64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    const char c = s[*pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *pos += n;
  *out = v;
  return true;
}

bool Expect(const std::string& s, size_t* pos, char c) {
  if (*pos >= s.size() || s[*pos] != c) return false;
  ++*pos;
  return true;
}

}  // namespace

Status ParseTimestamp(const std::string& text, int64_t* unix_ms) {
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("'" + text + "' is not a time: " + why +
                                   " (write YYYY-MM-DD HH:MM[:SS[.fff]], UTC unless followed by Z or +hh:mm)");
  };
  size_t pos = 0;
  int64_t year, month, day, hour, minute, second = 0, ms = 0;
  if (!Digits(text, &pos, 4, &year) || !Expect(text, &pos, '-') || !Digits(text, &pos, 2, &month) ||
      !Expect(text, &pos, '-') || !Digits(text, &pos, 2, &day)) {
    return bad("the date must be YYYY-MM-DD");
  }
  if (month < 1 || month > 12) return bad("month " + std::to_string(month) + " does not exist");
  if (day < 1 || day > DaysInMonth(year, int(month))) {
    return bad("day " + std::to_string(day) + " does not exist in month " + std::to_string(month));
  }
  if (pos >= text.size()) return bad("a time of day must follow the date");
  if (text[pos] != 'T' && text[pos] != 't' && text[pos] != ' ') return bad("the date must be followed by 'T' or a space");
  pos++;
  if (!Digits(text, &pos, 2, &hour) || !Expect(text, &pos, ':') || !Digits(text, &pos, 2, &minute)) {
    return bad("the time of day must be HH:MM");
  }
  if (Expect(text, &pos, ':')) {
    if (!Digits(text, &pos, 2, &second)) return bad("seconds must be two digits");
    if (Expect(text, &pos, '.') || Expect(text, &pos, ',')) {
      size_t n = 0;
      int64_t scale = 100;
      while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
        ms += (text[pos] - '0') * scale;
        scale /= 10;
        pos++;
        n++;
      }
      if (n == 0 || n > 9) return bad("a fraction of a second has 1 to 9 digits");
    }
  }
  if (hour > 23) return bad("hour " + std::to_string(hour) + " does not exist");
  if (minute > 59) return bad("minute " + std::to_string(minute) + " does not exist");
  if (second > 59) return bad("second " + std::to_string(second) + " does not exist");
  int64_t offset_minutes = 0;
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    pos++;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    const int sign = text[pos] == '-' ? -1 : 1;
    pos++;
    int64_t oh = 0, om = 0;
    if (!Digits(text, &pos, 2, &oh)) return bad("an offset must be +hh:mm");
    if (pos < text.size()) {  // +hh:mm or +hhmm
      Expect(text, &pos, ':');
      if (!Digits(text, &pos, 2, &om)) return bad("an offset must be +hh:mm");
    }
    if (oh > 23 || om > 59) return bad("offset out of range");
    offset_minutes = sign * (oh * 60 + om);
  }
  if (pos != text.size()) return bad("unexpected '" + text.substr(pos) + "' at the end");
  const int64_t days = DaysFromCivil(year, int(month), int(day));
  *unix_ms = (((days * 24 + hour) * 60 + minute - offset_minutes) * 60 + second) * 1000 + ms;
  return Status::OK();
}

}  // namespace snapshot
