// Automatic snapshots (see the header for the design). Parts, in order:
//   AutoDb and the process-wide state   what the commit path and the thread share
//   the commit path                     OnCommit: a compare-and-swap
//   the background thread               ThreadMain, Serve, Attempt
//   fork                                the pthread_atfork handlers
//   the SQL side                        Set/Get/DescribeAutoSnapshots
#include "ext/auto_snapshot.h"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "ext/attach.h"
#include "ext/backup.h"
#include "ext/remote_functions.h"
#include "ext/tracked_capture.h"
#include "remote/uploader.h"
#include "store/retention.h"
#include "store/store.h"
#include "vfs/boot_id.h"
#include "vfs/snapshot_lock.h"
#include "vfs/snapshot_vfs.h"
#include "vfs/tracker.h"

namespace snapshot {
namespace {

constexpr int64_t kPollMs = 1000;       // the thread's longest sleep, and how stale a read setting may be
constexpr int64_t kBusyRetryMs = 200;   // another process is snapshotting: look again this soon
constexpr int kBusyTimeoutMs = 2000;    // the thread's snapshot waits this long for a lock

// The tracking file's auto_hint word: the state in the low two bits, a
// generation above them that every snapshot_auto() bumps.
constexpr uint64_t kHintUnknown = 0;  // a new tracking file: a process must look at the store
constexpr uint64_t kHintOff = 1;
constexpr uint64_t kHintOn = 2;
constexpr uint64_t kHintStateMask = 3;
uint64_t HintState(uint64_t hint) { return hint & kHintStateMask; }

// ---- AutoDb and the process-wide state -------------------------------------

// One database this process committed to. Never freed (the tracker's slot
// and the detached thread point at it; a process writes few databases).
struct AutoDb {
  explicit AutoDb(std::string path) : db_path(std::move(path)) {
    const char* env = std::getenv("SNAPSHOT_AUTO");
    env_pending.store(env != nullptr && env[0] != '\0');
  }
  const std::string db_path;

  // Written by the commit path, claimed by the thread: the MonotonicMs() of
  // the oldest commit no snapshot is known to hold (0: none), and of the
  // newest commit seen.
  std::atomic<int64_t> first_pending_ms{0};
  std::atomic<int64_t> last_commit_ms{0};
  // snapshot_auto() in this process: read the setting again now.
  std::atomic<bool> settings_stale{true};
  // SNAPSHOT_AUTO is set and not yet applied: the thread must run to apply it.
  std::atomic<bool> env_pending{false};

  // The thread's own (and the fork handler's, while the thread is parked).
  int64_t settings_read_ms = 0;
  bool settings_known = false;  // settings were read at least once
  AutoSettings settings;
  uint64_t hint_seen = kHintUnknown;  // the tracking file's auto_hint, as last seen
  std::string store_dir;
  std::string configured_dir;  // the last dir a connection of this process configured for it
  uint64_t store_tag = 0;      // of store_dir (0: not read yet)
  bool pages_seen = false;
  uint64_t pages_written = 0;  // the tracking file's count, as last seen
  int64_t retry_at_ms = 0;
  bool compaction_left = false;  // the last compaction round left the store needing another

  // For snapshot_status(), under Mu().
  std::string error;  // this process's last error (kept also when the store cannot be written)
  int64_t error_ms = 0;
  uint64_t last_id = 0;
  int64_t last_ms = 0;
};

// Lock order: WorkMu, then Mu. The thread holds WorkMu for each pass over
// the databases (never while sleeping), so a fork, which takes both first,
// happens between passes.
std::mutex& WorkMu() {
  static auto* mu = new std::mutex;
  return *mu;
}
std::mutex& Mu() {
  static auto* mu = new std::mutex;
  return *mu;
}
std::vector<AutoDb*>& Dbs() {  // under Mu()
  static auto* dbs = new std::vector<AutoDb*>;
  return *dbs;
}
std::atomic<bool> g_thread_running{false};  // trivially destructible: safe at exit

std::vector<AutoDb*> CopyOfDbs() {
  std::lock_guard<std::mutex> l(Mu());
  return Dbs();
}

AutoDb* FindOrAdd(const std::string& db_path) {
  std::lock_guard<std::mutex> l(Mu());
  for (AutoDb* d : Dbs()) {
    if (d->db_path == db_path) return d;
  }
  Dbs().push_back(new AutoDb(db_path));
  return Dbs().back();
}

AutoDb* FindExisting(const std::string& db_path) {
  std::lock_guard<std::mutex> l(Mu());
  for (AutoDb* d : Dbs()) {
    if (d->db_path == db_path) return d;
  }
  return nullptr;
}

// Marks `d` as holding commits since `at_ms`, unless it holds older ones.
void NotePending(AutoDb* d, int64_t at_ms) {
  int64_t last = d->last_commit_ms.load();
  while (last < at_ms && !d->last_commit_ms.compare_exchange_weak(last, at_ms)) {
  }
  int64_t cur = d->first_pending_ms.load();
  while ((cur == 0 || cur > at_ms) && !d->first_pending_ms.compare_exchange_weak(cur, at_ms)) {
  }
}

// A snapshot holds every commit that ended before `held_ms`: the pending
// commits from `claimed` on are settled. Those seen at or after `held_ms`
// (or while this ran) stay pending, from `held_ms`: nothing later is known
// of when they ended.
void SettlePending(AutoDb* d, int64_t claimed, int64_t held_ms) {
  d->first_pending_ms.compare_exchange_strong(claimed, 0);
  // After the exchange: a commit whose own exchange found `claimed` stored
  // its time before, and is seen here.
  if (d->last_commit_ms.load() >= held_ms) NotePending(d, held_ms);
}

void StartThread();

// ---- the commit path -------------------------------------------------------

void OnCommit(Tracker* t) {
  try {
    auto* d = static_cast<AutoDb*>(t->observer_slot().load(std::memory_order_acquire));
    if (d == nullptr) {  // this tracker's first commit: once per database and process
      d = FindOrAdd(t->db_path());
      t->observer_slot().store(d, std::memory_order_release);
    }
    // After the write transaction ended: a snapshot pinned later holds it.
    const int64_t now = MonotonicMs();
    d->last_commit_ms.store(now);
    int64_t none = 0;
    d->first_pending_ms.compare_exchange_strong(none, now);
    // Off in every process's view: no thread. The hint is read before
    // g_thread_running, the reverse of a thread that stops (ThreadMain).
    if (HintState(t->AutoHint()) == kHintOff && !d->env_pending.load()) return;
    if (!g_thread_running.load()) StartThread();
  } catch (...) {  // std::bad_alloc, a thread that cannot start: the commit stands, unprotected
  }
}

// ---- the background thread -------------------------------------------------

std::string Describe(const Status& s) { return s.message(); }

StoreLocation LocationOf(const AutoDb& d) {
  StoreLocation loc;
  loc.db_path = d.db_path;
  loc.store_dir = d.store_dir;
  loc.default_dir = d.store_dir == d.db_path + "-snapshots";
  unsigned mode = 0600;
  if (Env::Default()->GetFileMode(d.db_path, &mode).ok()) loc.file_mode = mode & 0666u;
  return loc;
}

void RecordError(AutoDb* d, const std::string& message) {
  const int64_t now = Env::Default()->NowMillis();
  {
    std::lock_guard<std::mutex> l(Mu());
    d->error = message;
    d->error_ms = now;
  }
  AutoStatus st;
  const StoreLocation loc = LocationOf(*d);
  ReadAutoStatus(Env::Default(), loc.store_dir, &st);  // none yet: a fresh one
  st.error = message;
  st.error_ms = now;
  st.error_pid = getpid();
  WriteAutoStatus(Env::Default(), loc.store_dir, st, loc.file_mode);  // best effort: kept in this process too
}

void RecordSuccess(AutoDb* d, uint64_t id) {
  const int64_t now = Env::Default()->NowMillis();
  {
    std::lock_guard<std::mutex> l(Mu());
    d->last_id = id;
    d->last_ms = now;
  }
  AutoStatus st;
  const StoreLocation loc = LocationOf(*d);
  ReadAutoStatus(Env::Default(), loc.store_dir, &st);
  st.last_id = id;
  st.last_ms = now;
  st.last_pid = getpid();
  WriteAutoStatus(Env::Default(), loc.store_dir, st, loc.file_mode);
}

// Tells every process that writes the database that its setting changed:
// bumps the tracking file's hint generation (their threads read the setting
// again at once) and sets its state (a process with no thread starts one at
// its next commit when it reads "on"). Without a tracking file there is no
// one to tell: the process that makes one starts from "unknown" and looks.
void PublishAutoHint(const std::string& db_path, bool on) {
  Tracker* t = Tracker::AcquireExisting(db_path);
  if (t == nullptr) return;
  uint64_t cur = t->AutoHint();
  while (!t->CompareExchangeAutoHint(&cur, ((cur | kHintStateMask) + 1) | (on ? kHintOn : kHintOff))) {
  }
  Tracker::Release(t);
}

// Makes the hint say what this process read where it says too little: a
// new tracking file (unknown) learns on or off, and "off" while this
// process's store is on (another store of the same database was turned off)
// is set on again, since a thread that runs for nothing costs less than a
// commit left unprotected. Only from the hint the setting was read after:
// if it changed meanwhile, the setting is read again first.
void SyncHint(AutoDb* d) {
  const bool on = d->settings.interval_s > 0;
  const uint64_t state = HintState(d->hint_seen);
  if (on ? state == kHintOn : state != kHintUnknown) return;
  Tracker* t = Tracker::AcquireExisting(d->db_path);
  if (t == nullptr) {  // no tracking file: no other process to tell
    d->hint_seen = on ? kHintOn : kHintOff;
    return;
  }
  uint64_t expected = d->hint_seen;
  const uint64_t desired = (expected & ~kHintStateMask) | (on ? kHintOn : kHintOff);
  if (t->CompareExchangeAutoHint(&expected, desired)) {
    d->hint_seen = desired;
  } else {
    d->hint_seen = expected;
    d->settings_stale.store(true);
  }
  Tracker::Release(t);
}

// SNAPSHOT_AUTO=<seconds> in this process's environment sets the store's
// interval when the process first serves the database, as snapshot_auto()
// would (so a later snapshot_auto() from elsewhere holds until the process
// restarts).
void ApplyEnvSetting(AutoDb* d) {
  const char* env = std::getenv("SNAPSHOT_AUTO");
  if (env == nullptr || env[0] == '\0') return;
  char* end = nullptr;
  const long long seconds = std::strtoll(env, &end, 10);
  if (end == nullptr || *end != '\0' || seconds < 0 || seconds > kMaxAutoIntervalS) {
    return RecordError(d, std::string("SNAPSHOT_AUTO='") + env + "' is not a number of seconds; ignored");
  }
  AutoSettings a;
  const Status r = ReadAutoSettings(Env::Default(), d->store_dir, &a);
  if (r.ok() && a.interval_s == seconds) return;
  ConnectionSettings cs;
  cs.busy_timeout_ms = kBusyTimeoutMs;
  std::unique_ptr<Store> store;
  Status s = OpenStoreAt(LocationOf(*d), cs, StoreAccess::kCreate, &store);
  if (s.ok()) {
    if (!ReadAutoSettings(Env::Default(), d->store_dir, &a).ok()) a = AutoSettings();
    a.interval_s = seconds;
    s = WriteAutoSettings(Env::Default(), d->store_dir, a, LocationOf(*d).file_mode);
  }
  if (s.ok()) PublishAutoHint(d->db_path, seconds > 0);
  if (!s.ok()) RecordError(d, "SNAPSHOT_AUTO: " + Describe(s));
}

void RefreshSettings(AutoDb* d, int64_t now) {
  if (!d->settings_stale.exchange(false) && d->settings_known && now - d->settings_read_ms < kPollMs) return;
  d->settings_read_ms = now;
  // The store this process's snapshot_backup() would use. A connection that
  // configured a directory may have closed since (Django closes its
  // connection after each request): its directory still counts.
  std::string dir;
  bool default_dir = false;
  if (ConfiguredDirOf(d->db_path, &dir) && !dir.empty()) d->configured_dir = dir;
  dir = ChooseStoreDir(d->db_path, /*main=*/true, d->configured_dir, &default_dir);
  if (dir != d->store_dir) {
    d->store_dir = dir;
    d->store_tag = 0;
  }
  if (d->env_pending.load()) {
    ApplyEnvSetting(d);
    d->env_pending.store(false);
  }
  AutoSettings a;
  const Status s = ReadAutoSettings(Env::Default(), d->store_dir, &a);
  if (s.ok()) {
    d->settings = a;
  } else if (s.IsNotFound() && Env::Default()->IsDirectory(d->store_dir)) {
    d->settings = AutoSettings();  // never turned on
  } else if (!s.IsNotFound()) {
    RecordError(d, Describe(s));
  }
  // Else the setting could not be read, or the store vanished: the last
  // setting holds, so that the snapshots are still attempted and each
  // failure is reported (snapshot_status), not taken for "off".
  d->settings_known = true;
  SyncHint(d);
}

// What the newest snapshot of this process's store is known to hold, by
// the tracking file: *every_commit, if it has no marks, is trusted and is
// based on a published snapshot of this store (the marks of a commit are
// cleared only by a snapshot's pin, and the base is set only once that
// snapshot is published); else every commit that ended before
// *held_before_ms (0: nothing known). Either may be another process's
// snapshot, or a user's.
void NewestSnapshotHolds(AutoDb* d, bool* every_commit, int64_t* held_before_ms) {
  *every_commit = false;
  *held_before_ms = 0;
  if (d->store_tag == 0) {
    ConnectionSettings cs;
    cs.busy_timeout_ms = 0;
    std::unique_ptr<Store> store;
    if (!OpenStoreAt(LocationOf(*d), cs, StoreAccess::kRead, &store).ok()) return;
    d->store_tag = store->tag();
  }
  Tracker* t = Tracker::AcquireExisting(d->db_path);
  if (t == nullptr) return;
  const TrackHeader* h = t->header();
  *every_commit = __atomic_load_n(&h->untrusted, __ATOMIC_ACQUIRE) == kTrusted &&
                  __atomic_load_n(&h->base_id, __ATOMIC_ACQUIRE) != 0 &&
                  __atomic_load_n(&h->store_tag, __ATOMIC_ACQUIRE) == d->store_tag && t->CountMarks() == 0;
  *held_before_ms = t->HeldBeforeMs(d->store_tag);
  Tracker::Release(t);
}

// The snapshot itself: snapshot_backup()'s, on a connection of our own,
// for the commits that ended from `pending_since_ms` on.
Status TakeAutoSnapshot(AutoDb* d, int64_t pending_since_ms, uint64_t* id) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(d->db_path.c_str(), &db, SQLITE_OPEN_READWRITE, kSnapshotVfsName);
  Status s = rc == SQLITE_OK ? Status::OK() : Status::IOError(std::string("cannot open ") + d->db_path + ": " +
                                                              (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
  ConnectionSettings cs;
  cs.dir = d->store_dir;
  cs.busy_timeout_ms = kBusyTimeoutMs;
  cs.threads = 1;  // background work: leave the other cores to the writers
  // kWrite, not kCreate: a store that vanished is an error to report, not
  // one to start again in silence.
  UnlessHeld unless;
  unless.store_tag = d->store_tag;
  unless.pending_since_ms = pending_since_ms;
  if (s.ok()) s = TakeSnapshot(db, "main", cs, StoreAccess::kWrite, "auto", "auto", id, nullptr, &unless);
  if (s.ok() && !d->settings.policy.empty()) {
    RetentionPolicy policy;
    s = RetentionPolicy::Parse(d->settings.policy, &policy);
    std::unique_ptr<Store> store;
    if (s.ok()) s = OpenStoreAt(LocationOf(*d), cs, StoreAccess::kWrite, &store);
    PruneResult pruned;
    if (s.ok()) s = store->Prune(policy, &pruned);
    if (!s.ok()) s = Status::IOError("snapshot " + std::to_string(*id) + " taken, but pruning failed: " + s.message());
  }
  sqlite3_close(db);
  return s;
}

// Compaction, off every snapshot's path: one bounded round once this
// thread's snapshot is published (ext/backup.h), skipped while another
// process holds the store. Its error is reported like a snapshot's.
void CompactAfterAutoSnapshot(AutoDb* d, uint64_t id) {
  ConnectionSettings cs;
  cs.dir = d->store_dir;
  cs.threads = 1;
  bool more = false;
  const Status s = CompactAfterSnapshot(LocationOf(*d), cs, &more);
  d->compaction_left = s.ok() && more;
  if (!s.ok()) RecordError(d, "snapshot " + std::to_string(id) + " taken, but compaction failed: " + Describe(s));
}

// A tick with nothing to snapshot runs the round the last one said the
// store still needs (a round is bounded; a busy store skips it), so that a
// store that outgrew one round shrinks while writes pause, not only after
// the next snapshot. Its failure is left for that snapshot's round to
// report.
void CompactOnIdleTick(AutoDb* d) {
  if (!d->compaction_left) return;
  ConnectionSettings cs;
  cs.dir = d->store_dir;
  cs.threads = 1;
  bool more = false;
  d->compaction_left = CompactAfterSnapshot(LocationOf(*d), cs, &more).ok() && more;
}

// Returns when to look at `d` again.
int64_t Attempt(AutoDb* d, int64_t now) {
  const int64_t claimed = d->first_pending_ms.load();
  bool every_commit = false;
  int64_t held_before_ms = 0;
  NewestSnapshotHolds(d, &every_commit, &held_before_ms);
  if (every_commit) {  // each commit that ended before `now` left its marks
    SettlePending(d, claimed, now);
    return now + kPollMs;
  }
  if (held_before_ms > claimed) {
    // Pinned since the oldest pending commit (by another process, say):
    // the commits after the pin are due an interval after it, not before.
    // Without this, every writer process took its own snapshot each
    // interval (bench/README.md, "Continuous protection").
    SettlePending(d, claimed, held_before_ms);
    return now;  // Serve works out the new deadline
  }
  {
    std::unique_ptr<SnapshotLock> running;
    const Status s = SnapshotLock::Acquire(d->db_path, 0, &running);
    if (s.code() == Status::Code::kBusy) {
      d->retry_at_ms = now + kBusyRetryMs;
      return d->retry_at_ms;
    }
  }
  // Commits from now on may be after the pin: they need a later snapshot.
  int64_t expected = claimed;
  d->first_pending_ms.compare_exchange_strong(expected, 0);
  uint64_t id = 0;
  const Status s = TakeAutoSnapshot(d, claimed, &id);
  if (s.ok() || id != 0) RecordSuccess(d, id);
  if (s.ok()) {
    CompactAfterAutoSnapshot(d, id);
    PushInBackgroundIfRemote(d->store_dir);  // on the upload thread: the next snapshot is not delayed
    return now + kPollMs;
  }
  if (id == 0) NotePending(d, claimed);  // not taken: those commits are still unprotected
  if (s.code() == Status::Code::kBusy) {
    d->retry_at_ms = MonotonicMs() + kBusyRetryMs;
  } else {
    RecordError(d, Describe(s));
    d->retry_at_ms = MonotonicMs() + std::max<int64_t>(kPollMs, d->settings.interval_s * 1000);
  }
  return d->retry_at_ms;
}

// One database, one pass: returns when to look at it again.
int64_t Serve(AutoDb* d) {
  const int64_t now = MonotonicMs();
  // Pages another process wrote (or a connection of ours): a commit seen now.
  if (Tracker* t = Tracker::AcquireIfOpen(d->db_path)) {
    const uint64_t written = t->PagesWritten();
    if (d->pages_seen && written != d->pages_written) NotePending(d, now);
    d->pages_seen = true;
    d->pages_written = written;
    const uint64_t hint = t->AutoHint();
    if (hint != d->hint_seen) {  // snapshot_auto() somewhere: read the setting now
      d->hint_seen = hint;
      d->settings_stale.store(true);
    }
    Tracker::Release(t);
  }
  const int64_t pending = d->first_pending_ms.load();
  if (pending == 0 && d->settings_known && !d->settings_stale.load()) {
    if (d->settings.interval_s > 0) CompactOnIdleTick(d);
    return now + kPollMs;
  }
  RefreshSettings(d, now);
  if (pending == 0) return now + kPollMs;
  if (d->settings.interval_s <= 0) {  // off: those commits are not promised anything
    int64_t expected = pending;
    d->first_pending_ms.compare_exchange_strong(expected, 0);
    return now + kPollMs;
  }
  const int64_t due = std::max(pending + d->settings.interval_s * 1000, d->retry_at_ms);
  if (now < due) return std::min(due, now + kPollMs);
  return Attempt(d, now);
}

// Whether this process's thread still has work for `d`: automatic
// snapshots are on (in its store, or by the hint), or it has yet to learn.
bool NeedsThread(const AutoDb& d) {
  return d.env_pending.load() || !d.settings_known || d.settings.interval_s > 0 || HintState(d.hint_seen) != kHintOff;
}

// Ends the thread when no database needs it; false if one does after all.
// A commit from then on starts a new thread if the hint says on: OnCommit
// reads the hint, then g_thread_running; this clears g_thread_running, then
// reads the hints (and the databases added meanwhile), so that no commit
// sees a running thread that is about to end.
bool StopThread() {
  g_thread_running.store(false);
  bool needed = false;
  for (AutoDb* d : CopyOfDbs()) {
    if (d->env_pending.load()) needed = true;
    if (Tracker* t = Tracker::AcquireIfOpen(d->db_path)) {
      if (HintState(t->AutoHint()) != kHintOff) needed = true;
      Tracker::Release(t);
    }
  }
  if (!needed) return true;
  std::lock_guard<std::mutex> l(Mu());
  if (g_thread_running.load()) return true;  // a commit started another
  g_thread_running.store(true);
  return false;
}

void ThreadMain() {
  for (;;) {
    int64_t next = MonotonicMs() + kPollMs;
    bool needed = false;
    {
      std::lock_guard<std::mutex> work(WorkMu());
      for (AutoDb* d : CopyOfDbs()) {
        try {
          next = std::min(next, Serve(d));
          needed = needed || NeedsThread(*d);
        } catch (...) {  // std::bad_alloc: try again next pass
          needed = true;
        }
      }
    }
    if (!needed && StopThread()) return;
    const int64_t wait = std::max<int64_t>(next - MonotonicMs(), 10);
    std::this_thread::sleep_for(std::chrono::milliseconds(wait));
  }
}

void StartThread() {
  std::lock_guard<std::mutex> l(Mu());
  if (g_thread_running.load()) return;
  std::thread thread(ThreadMain);
  // Named before the commit goes on, so that an operator sees it in `top -H`
  // or `ps -T` (and a test finds it) from the start.
  pthread_setname_np(thread.native_handle(), kAutoThreadName);
  thread.detach();  // never joined: it must not keep the process alive
  g_thread_running.store(true, std::memory_order_release);
}

// ---- fork ------------------------------------------------------------------

void BeforeFork() {
  WorkMu().lock();  // the thread is between passes
  Mu().lock();
}
void AfterForkInParent() {
  Mu().unlock();
  WorkMu().unlock();
}
void AfterForkInChild() {
  // This thread locked both in BeforeFork: it may unlock them.
  Mu().unlock();
  WorkMu().unlock();
  g_thread_running.store(false);  // fork copied only the forking thread
  for (AutoDb* d : Dbs()) {
    d->first_pending_ms.store(0);  // the parent's commits: the parent protects them
    d->pages_seen = false;
    d->retry_at_ms = 0;
    d->settings_stale.store(true);
  }
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += char(c);
    }
  }
  return out + "\"";
}

std::string JsonTime(int64_t unix_ms) { return unix_ms == 0 ? "null" : JsonString(FormatTimestamp(unix_ms)); }

// The remote copy's lag (ext/remote_functions.h): null without a remote.
std::string DescribeRemoteJson(sqlite3* db, const char* schema, const ConnectionSettings& settings) {
  RemoteLag lag;
  const Status s = DescribeRemote(db, schema, settings, &lag);
  if (!s.ok()) return "{\"error\":" + JsonString(s.message()) + "}";
  if (lag.url.empty()) return "null";
  auto id = [](uint64_t v) { return v == 0 ? std::string("null") : std::to_string(v); };
  std::string out = "{\"url\":" + JsonString(lag.url);
  out += ",\"last_push_at\":" + JsonTime(lag.pushed_ms);
  out += ",\"newest_remote_id\":" + id(lag.newest_remote_id);
  out += ",\"newest_remote_created\":" + JsonTime(lag.newest_remote_created_ms);
  out += ",\"snapshots_not_remote\":" + std::to_string(lag.not_remote);
  out += ",\"oldest_not_remote_created\":" + JsonTime(lag.oldest_not_remote_created_ms);
  out += ",\"last_error\":" + (lag.error.empty() ? std::string("null") : JsonString(lag.error));
  out += ",\"last_error_at\":" + JsonTime(lag.error.empty() ? 0 : lag.error_ms);
  out += ",\"uploading\":" + std::string(lag.uploading ? "true" : "false") + "}";
  return out;
}

}  // namespace

void InstallAutoSnapshots() {
  static std::once_flag once;
  std::call_once(once, [] {
    pthread_atfork(BeforeFork, AfterForkInParent, AfterForkInChild);
    Tracker::SetCommitObserver(OnCommit);
  });
}

// ---- the SQL side ------------------------------------------------------------

Status SetAutoSnapshots(sqlite3* db, const char* schema, const ConnectionSettings& settings, int64_t seconds,
                        const std::string* policy) {
  std::unique_ptr<Store> store;
  StoreLocation loc;
  SNAPSHOT_RETURN_IF_ERROR(OpenStore(db, schema, settings, StoreAccess::kCreate, &store, &loc));
  AutoSettings a;
  const Status r = ReadAutoSettings(Env::Default(), loc.store_dir, &a);
  if (!r.ok() && !r.IsNotFound()) return r;
  a.interval_s = seconds;
  if (policy != nullptr) a.policy = *policy;
  SNAPSHOT_RETURN_IF_ERROR(WriteAutoSettings(Env::Default(), loc.store_dir, a, loc.file_mode));
  PublishAutoHint(loc.db_path, seconds > 0);
  // This process's thread reads it at once, not up to a second later.
  if (AutoDb* d = FindExisting(loc.db_path)) d->settings_stale.store(true);
  return Status::OK();
}

Status GetAutoSnapshots(sqlite3* db, const char* schema, const ConnectionSettings& settings, AutoSettings* out) {
  StoreLocation loc;
  SNAPSHOT_RETURN_IF_ERROR(LocateStore(db, schema, settings, &loc));
  *out = AutoSettings();
  const Status s = ReadAutoSettings(Env::Default(), loc.store_dir, out);
  return s.IsNotFound() ? Status::OK() : s;
}

Status DescribeAutoSnapshots(sqlite3* db, const char* schema, const ConnectionSettings& settings, std::string* json) {
  StoreLocation loc;
  SNAPSHOT_RETURN_IF_ERROR(LocateStore(db, schema, settings, &loc));
  AutoSettings a;
  Status s = ReadAutoSettings(Env::Default(), loc.store_dir, &a);
  std::string settings_error;
  if (!s.ok() && !s.IsNotFound()) settings_error = s.message();
  AutoStatus st;
  ReadAutoStatus(Env::Default(), loc.store_dir, &st);  // none: nothing happened yet
  // This process's own view: its last error may be one it could not write
  // into the store (a store that vanished).
  std::string local_error;
  int64_t local_error_ms = 0, pending_ms = 0;
  bool serving = false;
  if (AutoDb* d = FindExisting(loc.db_path)) {
    std::lock_guard<std::mutex> l(Mu());
    serving = true;
    local_error = d->error;
    local_error_ms = d->error_ms;
    const int64_t pending = d->first_pending_ms.load();
    if (pending != 0) pending_ms = Env::Default()->NowMillis() - (MonotonicMs() - pending);
  }
  if (st.error_ms < local_error_ms) {
    st.error = local_error;
    st.error_ms = local_error_ms;
    st.error_pid = getpid();
  }
  if (!settings_error.empty()) {
    st.error = settings_error;
    st.error_ms = Env::Default()->NowMillis();
    st.error_pid = getpid();
  }
  std::string tracking;
  s = DescribeTracking(db, schema, settings, &tracking);
  if (!s.ok()) tracking = "unknown: " + s.message();
  std::string out = "{";
  out += "\"database\":" + JsonString(loc.db_path);
  out += ",\"store\":" + JsonString(loc.store_dir);
  out += ",\"interval_s\":" + std::to_string(a.interval_s);
  out += ",\"policy\":" + (a.policy.empty() ? std::string("null") : JsonString(a.policy));
  out += ",\"last_auto_id\":" + (st.last_id == 0 ? std::string("null") : std::to_string(st.last_id));
  out += ",\"last_auto_at\":" + JsonTime(st.last_ms);
  out += ",\"last_auto_pid\":" + (st.last_pid == 0 ? std::string("null") : std::to_string(st.last_pid));
  out += ",\"last_error\":" + (st.error.empty() ? std::string("null") : JsonString(st.error));
  out += ",\"last_error_at\":" + JsonTime(st.error.empty() ? 0 : st.error_ms);
  out += ",\"last_error_pid\":" + (st.error.empty() ? std::string("null") : std::to_string(st.error_pid));
  out += ",\"this_process\":{\"pid\":" + std::to_string(long(getpid()));
  out += ",\"serving\":" + std::string(serving && g_thread_running.load() ? "true" : "false");
  out += ",\"unprotected_since\":" + JsonTime(pending_ms) + "}";
  out += ",\"tracking\":" + JsonString(tracking);
  out += ",\"remote\":" + DescribeRemoteJson(db, schema, settings);
  out += "}";
  *json = out;
  return Status::OK();
}

}  // namespace snapshot
