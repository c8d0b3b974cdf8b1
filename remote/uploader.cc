#include "remote/uploader.h"

#include <curl/curl.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include "remote/md5.h"
#include "remote/remote_setting.h"
#include "remote/remote_status.h"
#include "remote/replicator.h"

namespace snapshot {
namespace {

constexpr int64_t kFirstRetryMs = 1000;
constexpr int64_t kMaxRetryMs = 5 * 60 * 1000;
// The push's wait for the store's shared lock: a backup holds it
// exclusively only while it publishes.
constexpr int kLockTimeoutMs = 2000;

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Job {
  std::string store_dir;
  int64_t due_ms = 0;    // steady clock
  int64_t backoff_ms = 0;  // 0: not a retry
};

// The process-wide state, under Mu(). Never destroyed: the thread and the
// exit handler use it while exit runs other destructors.
struct State {
  std::deque<Job> queue;
  bool running = false;       // a thread exists (or is about to)
  bool exiting = false;       // exit began: no retries, no new requests
  std::string current;        // the store being pushed ("" if none)
  bool again = false;         // a request for `current` came while it ran
  std::condition_variable* cv = new std::condition_variable;  // replaced in a fork's child
};
std::mutex& Mu() {
  static auto* mu = new std::mutex;
  return *mu;
}
State& St() {
  static auto* st = new State;
  return *st;
}
std::atomic<bool> g_cancel{false};  // stops the running push (exit)

// Records a failure that happened before a push could record it itself
// (no remote could be opened), so that snapshot_status() shows it.
void NoteError(const std::string& store_dir, const std::string& url, const std::string& message) {
  Env* env = Env::Default();
  RemoteRecord r;
  if (!ReadRemoteRecord(env, store_dir, &r).ok() || r.url != url) r = RemoteRecord();
  r.url = url;
  r.error = message;
  r.error_ms = env->NowMillis();
  WriteRemoteRecord(env, store_dir, r, StoreFileMode(env, store_dir));  // best effort
}

// One push; false if it should be tried again later.
bool PushOnce(const std::string& store_dir) {
  Env* env = Env::Default();
  std::string url;
  if (!EffectiveRemote(env, store_dir, &url).ok() || url.empty()) return true;  // turned off (or unreadable) since
  std::unique_ptr<ObjectStore> remote;
  Status s = OpenRemoteStore(url, /*for_push=*/true, &remote);
  if (!s.ok()) {
    NoteError(store_dir, url, s.message());
    return false;
  }
  remote->SetCancel([] { return g_cancel.load(std::memory_order_relaxed); });
  PushResult pushed;
  s = Replicator(env, store_dir, remote.get(), url, kLockTimeoutMs).Push(&pushed);  // records its outcome
  if (s.IsNotFound() && !env->FileExists(JoinPath(store_dir, "STORE"))) return true;  // no store: nothing to push
  return s.ok() || s.code() == Status::Code::kInterrupted;
}

void ThreadMain() {
  std::unique_lock<std::mutex> l(Mu());
  State& st = St();
  for (;;) {
    // The next job that is due; while none is, sleep until the first will be.
    auto due = st.queue.end();
    int64_t wake = 0;
    for (auto it = st.queue.begin(); it != st.queue.end(); ++it) {
      if (it->due_ms <= SteadyMs()) {
        due = it;
        break;
      }
      if (wake == 0 || it->due_ms < wake) wake = it->due_ms;
    }
    if (due == st.queue.end()) {
      if (st.queue.empty() || st.exiting) {
        st.queue.clear();  // at exit, retries are not waited for
        st.running = false;
        st.cv->notify_all();
        return;
      }
      st.cv->wait_for(l, std::chrono::milliseconds(std::max<int64_t>(wake - SteadyMs(), 1)));
      continue;
    }
    Job job = *due;
    st.queue.erase(due);
    st.current = job.store_dir;
    st.again = false;
    l.unlock();
    bool done = true;
    try {
      done = PushOnce(job.store_dir);
    } catch (...) {  // std::bad_alloc: try again later
      done = false;
    }
    l.lock();
    st.current.clear();
    const bool queued = std::any_of(st.queue.begin(), st.queue.end(),
                                    [&](const Job& j) { return j.store_dir == job.store_dir; });
    if (!queued && (st.again || !done) && !st.exiting) {
      Job next;
      next.store_dir = job.store_dir;
      if (!done) {
        next.backoff_ms = job.backoff_ms == 0 ? kFirstRetryMs : std::min(job.backoff_ms * 2, kMaxRetryMs);
        next.due_ms = SteadyMs() + next.backoff_ms;
      }
      if (st.again) next = Job{job.store_dir, 0, 0};  // a new snapshot: at once
      st.queue.push_back(next);
    }
    st.cv->notify_all();
  }
}

// At exit: the requested pushes get kExitGraceMs, then are stopped.
void OnExit() {
  std::unique_lock<std::mutex> l(Mu());
  State& st = St();
  st.exiting = true;
  st.cv->notify_all();
  auto stopped = [&] { return !st.running; };
  if (st.cv->wait_for(l, std::chrono::milliseconds(kExitGraceMs), stopped)) return;
  g_cancel.store(true);
  st.cv->wait_for(l, std::chrono::milliseconds(kExitStopMs), stopped);
}

void BeforeFork() { Mu().lock(); }
void AfterForkInParent() { Mu().unlock(); }
void AfterForkInChild() {
  State& st = St();
  st.queue.clear();  // the parent uploads its snapshots
  st.running = false;
  st.current.clear();
  st.again = false;
  // The parent's thread may have been waiting on it: a fresh one for the
  // child (the old one is left, never used).
  st.cv = new std::condition_variable;
  Mu().unlock();
}

void InstallOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    // libcurl and OpenSSL first: handlers registered later run earlier at
    // exit, so ours stops the thread before theirs clean up what it uses.
    curl_global_init(CURL_GLOBAL_DEFAULT);
    Md5::Of("");
    std::atexit(OnExit);
    pthread_atfork(BeforeFork, AfterForkInParent, AfterForkInChild);
  });
}

}  // namespace

void RequestBackgroundPush(const std::string& store_dir) {
  try {
    InstallOnce();
    std::lock_guard<std::mutex> l(Mu());
    State& st = St();
    if (st.exiting) return;
    if (st.current == store_dir) st.again = true;
    bool merged = false;
    for (Job& j : st.queue) {
      if (j.store_dir != store_dir) continue;
      j.due_ms = 0;  // a new snapshot: no need to wait out a retry's backoff
      j.backoff_ms = 0;
      merged = true;
    }
    if (!merged && st.current != store_dir) st.queue.push_back(Job{store_dir, 0, 0});
    st.cv->notify_all();
    if (st.running) return;
    std::thread thread(ThreadMain);
    pthread_setname_np(thread.native_handle(), kUploadThreadName);
    thread.detach();  // never joined: it must not keep the process alive (see OnExit)
    st.running = true;
  } catch (...) {  // std::bad_alloc, a thread that cannot start: the next push catches up
  }
}

void PushInBackgroundIfRemote(const std::string& store_dir) {
  std::string url;
  if (EffectiveRemote(Env::Default(), store_dir, &url).ok() && !url.empty()) RequestBackgroundPush(store_dir);
}

bool BackgroundPushPending(const std::string& store_dir) {
  std::lock_guard<std::mutex> l(Mu());
  const State& st = St();
  if (st.current == store_dir) return true;
  return std::any_of(st.queue.begin(), st.queue.end(), [&](const Job& j) { return j.store_dir == store_dir; });
}

}  // namespace snapshot
