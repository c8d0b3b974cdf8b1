// Status: the result of every store operation (after LevelDB's Status).
//
// A Status is either ok() or carries a code and a message written for the
// person who will read it in an SQL error: it says what failed and, where it
// helps, what to do about it. The SQL layer turns codes into SQLite result
// codes; nothing else inspects messages.
#pragma once

#include <string>
#include <utility>

namespace snapshot {

class Status {
 public:
  enum class Code {
    kOk = 0,
    kNotFound,         // no such snapshot, no store yet
    kCorruption,       // stored bytes fail a checksum or do not parse
    kInvalidArgument,  // bad input from SQL
    kIOError,          // the operating system said no (incl. disk full)
    kBusy,             // a lock could not be had in time
    kNotSupported,     // e.g. a store written by a newer format version
    kInterrupted,      // the caller asked us to stop
  };

  Status() = default;
  static Status OK() { return Status(); }
  static Status NotFound(std::string m) { return Status(Code::kNotFound, std::move(m)); }
  static Status Corruption(std::string m) { return Status(Code::kCorruption, std::move(m)); }
  static Status InvalidArgument(std::string m) { return Status(Code::kInvalidArgument, std::move(m)); }
  static Status IOError(std::string m) { return Status(Code::kIOError, std::move(m)); }
  static Status Busy(std::string m) { return Status(Code::kBusy, std::move(m)); }
  static Status NotSupported(std::string m) { return Status(Code::kNotSupported, std::move(m)); }
  static Status Interrupted(std::string m) { return Status(Code::kInterrupted, std::move(m)); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsCorruption() const { return code_ == Code::kCorruption; }
  const std::string& message() const { return message_; }

 private:
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

// Returns from the enclosing function when `expr` is not ok.
#define SNAPSHOT_RETURN_IF_ERROR(expr)    \
  do {                                    \
    ::snapshot::Status _s = (expr);       \
    if (!_s.ok()) return _s;              \
  } while (0)

}  // namespace snapshot
