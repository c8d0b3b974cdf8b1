// Small RAII and error helpers over the SQLite C API, for the extension.
#pragma once

#include "vfs/sqlite_api.h"

#include <cstdint>
#include <string>

#include "store/snapshot_spec.h"
#include "store/status.h"
#include "vfs/boot_id.h"  // MonotonicMs

namespace snapshot {

// The result code of a failed call: SQLITE_BUSY when a lock could not be had
// in time (the caller may retry, as with SQLite's own), SQLITE_INTERRUPT, else
// SQLITE_ERROR. Every function and table of the extension answers through it.
inline int SqliteCodeOf(const Status& s) {
  if (s.code() == Status::Code::kBusy) return SQLITE_BUSY;
  if (s.code() == Status::Code::kInterrupted) return SQLITE_INTERRUPT;
  return SQLITE_ERROR;
}

// A function's error: "<function>: <message>", with SqliteCodeOf's code.
void ResultStatus(sqlite3_context* ctx, const char* function, const Status& s);

// Optional argument i as text; nullptr when absent or NULL.
const char* TextArg(int argc, sqlite3_value** argv, int i);
// A snapshot argument: an integer id, or text naming a snapshot (an id,
// 'latest' or a moment: store/snapshot_spec.h); the latest when `v` is null
// (absent) or SQL NULL. `what` names it in the error ("the snapshot").
Status SnapshotArg(sqlite3_value* v, const char* what, SnapshotSpec* spec);
// Optional argument i as SnapshotArg.
inline Status SpecArg(int argc, sqlite3_value** argv, int i, SnapshotSpec* spec) {
  return SnapshotArg(i < argc ? argv[i] : nullptr, "the snapshot", spec);
}
// Optional schema argument i; "main" when absent or NULL.
const char* SchemaArg(int argc, sqlite3_value** argv, int i);

class Statement {
 public:
  Statement() = default;
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  sqlite3_stmt** out() { return &stmt_; }
  void Finalize() {
    sqlite3_finalize(stmt_);
    stmt_ = nullptr;
  }
  sqlite3_stmt* get() const { return stmt_; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

// Tells whether sqlite3_interrupt() (Ctrl-C in the shell) was called on the
// connection while a long SQL function runs. SQLite 3.40 has no
// sqlite3_is_interrupted(); a statement that reads no table answers
// SQLITE_INTERRUPT instead, and ending it never ends a transaction.
class InterruptCheck {
 public:
  explicit InterruptCheck(sqlite3* db) {
    // Preparing fails too once the connection is interrupted.
    interrupted_ = sqlite3_prepare_v2(db, "SELECT 1", -1, stmt_.out(), nullptr) == SQLITE_INTERRUPT;
  }
  // Interrupted status when the connection was interrupted; checks every
  // `every`-th call only: a step is cheap, but the loops that poll read one
  // page per call.
  Status Poll(unsigned every = 256) {
    if (interrupted_) return Status::Interrupted("interrupted; nothing was changed");
    if (++calls_ % every != 0 || stmt_.get() == nullptr) return Status::OK();
    const int rc = sqlite3_step(stmt_.get());
    sqlite3_reset(stmt_.get());
    if (rc == SQLITE_INTERRUPT) return Status::Interrupted("interrupted; nothing was changed");
    return Status::OK();
  }

 private:
  Statement stmt_;
  unsigned calls_ = 0;
  bool interrupted_ = false;
};

// An SQLite failure as a Status, keeping the connection's message.
Status SqliteStatus(sqlite3* db, int rc, const std::string& context);

// Runs a one-value query (e.g. a PRAGMA) on db; schema is quoted into %w.
Status QueryInt(sqlite3* db, const std::string& sql, int64_t* out);
Status QueryText(sqlite3* db, const std::string& sql, std::string* out);

// The sqlite3_file behind `schema` (op: SQLITE_FCNTL_FILE_POINTER or
// SQLITE_FCNTL_JOURNAL_POINTER); nullptr when there is none open.
sqlite3_file* FilePointer(sqlite3* db, const char* schema, int op);

// "%w"-quotes an identifier for use inside double quotes.
std::string QuoteIdentifier(const char* name);

// Waiting for a database lock. A writer that commits back to back leaves
// the lock free only in short gaps between its commits, and a try succeeds
// only inside one; SQLite's own busy handler sleeps up to 100 ms between
// tries, so it can miss every gap for seconds. These try about every
// quarter millisecond (at a random phase) until the timeout.
//
// The busy handler of the extension's private connections; `timeout_ms`
// travels in the handler's argument.
int PollingBusyHandler(void* timeout_ms, int count);
inline void SetPollingBusyTimeout(sqlite3* db, int timeout_ms) {
  sqlite3_busy_handler(db, PollingBusyHandler, reinterpret_cast<void*>(intptr_t(timeout_ms)));
}
// Sleeps once between two tries (150-350 microseconds).
void SleepBetweenLockTries();

// A connection the extension opens for itself, closed with the object. It
// waits for locks with PollingBusyHandler.
class PrivateConnection {
 public:
  PrivateConnection() = default;
  ~PrivateConnection() { sqlite3_close_v2(db_); }
  PrivateConnection(const PrivateConnection&) = delete;
  PrivateConnection& operator=(const PrivateConnection&) = delete;
  int Open(const char* filename, int flags, const char* vfs, int busy_timeout_ms) {
    const int rc = sqlite3_open_v2(filename, &db_, flags, vfs);
    if (rc == SQLITE_OK) SetPollingBusyTimeout(db_, busy_timeout_ms);
    return rc;
  }
  sqlite3* db() const { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

// Calls `attempt` until it stops answering SQLITE_BUSY/SQLITE_LOCKED or
// timeout_ms passes; returns its last code. For a connection whose busy
// handler is not the extension's to set (the caller's), and for what no
// busy handler covers (sqlite3_backup_step's BUSY and LOCKED).
template <typename F>
int RetryWhileBusy(int timeout_ms, F attempt) {
  const int64_t deadline = MonotonicMs() + timeout_ms;
  for (;;) {
    int rc = attempt();
    if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED) return rc;
    if (MonotonicMs() >= deadline) return rc;
    SleepBetweenLockTries();
  }
}

}  // namespace snapshot
