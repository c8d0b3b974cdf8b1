// Concurrency and crash tests with real processes.
//
// Every test runs in both journal modes (DELETE and WAL). Writers, backup
// jobs and restores are separate processes made with fork() (using the SQLite
// C API) or exec() of the sqlite3 shell with the extension loaded; crashes
// are real: kill(pid, SIGKILL). Processes coordinate through an anonymous
// shared memory mapping created before fork.
//
// Rules the tests keep, because SQLite connections must not cross fork():
// the parent never has a connection open while it forks, or, when it must
// (restore under open connections), it forks every child before opening one
// (Children::Spawn checks /proc/self/fd for that). Nor does a process read a
// database file with its own descriptors while it has a connection open
// (closing any descriptor drops the process's POSIX locks on the file).
//
// Tests: ConcurrencyWriters (snapshots taken while 3 writers commit),
// ConcurrencyRestore (restore under writers' open connections),
// ConcurrencyKill (SIGKILL of a backup, of a writer mid-transaction, of a
// restore), ConcurrencyLockOrder (the database lock against the store lock).
//
// The data model lets every snapshot be checked for being exactly the
// database at one commit:
//   meta(counter, total_rows): counter += 1 per writer commit;
//                              total_rows == count(*) FROM item
//   item(id, writer, seq, payload, checksum): id = writer * 1e9 + seq and
//                              checksum = RowChecksum(id, writer, seq, payload)
//   wstate(writer, inserted, deleted, commits): per writer, its rows are
//                              exactly seq deleted+1 .. inserted, and
//                              sum(commits) == meta.counter
//   pad(id, b, t): bulk, so that captures and restores take a while.
#include <fcntl.h>
#include <link.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstring>
#include <functional>
#include <map>
#include <new>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "tests/process_util.h"
#include "tests/test_util.h"

namespace snapshot_test {
namespace {

// ---------------------------------------------------------------------------
// Processes, time, shared memory

bool FileExists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }
void CopyFile(const std::string& from, const std::string& to) {
  std::string data = ReadFile(from);
  std::ofstream(to, std::ios::binary | std::ios::trunc).write(data.data(), std::streamsize(data.size()));
}
// Files in the store named *.tmp: what a crash mid-write leaves behind.
int CountDebris(const std::string& store_dir) {
  int n = 0;
  for (const char* sub : {"/packs", "/snapshots", ""}) {
    std::string out;
    FILE* p = popen(("ls -1 '" + store_dir + sub + "' 2>/dev/null").c_str(), "r");
    if (p == nullptr) continue;
    char line[512];
    while (fgets(line, sizeof line, p)) {
      std::string s(line);
      while (!s.empty() && s.back() == '\n') s.pop_back();
      if (s.size() > 4 && s.compare(s.size() - 4, 4, ".tmp") == 0) n++;
    }
    pclose(p);
  }
  return n;
}

// ---------------------------------------------------------------------------
// The data model

std::string MakePayload(uint64_t seed, size_t len) {
  std::string s(len, ' ');
  uint64_t x = seed, r = 0;
  for (size_t i = 0; i < len; i++) {
    if (i % 8 == 0) r = SplitMix(&x);
    s[i] = char('a' + (r >> ((i % 8) * 8)) % 26);
  }
  return s;
}

// FNV-1a over the other columns of an item row.
int64_t RowChecksum(int64_t id, int64_t writer, int64_t seq, std::string_view payload) {
  Fnv1a h;
  h.Mix(&id, sizeof id);
  h.Mix(&writer, sizeof writer);
  h.Mix(&seq, sizeof seq);
  h.Mix(payload.data(), payload.size());
  return int64_t(h.value());
}

constexpr int64_t kIdStride = 1000000000;

// SQL function row_checksum(id, writer, seq, payload), for bulk updates.
void RowChecksumFunc(sqlite3_context* ctx, int, sqlite3_value** argv) {
  const char* p = reinterpret_cast<const char*>(sqlite3_value_text(argv[3]));
  const int n = sqlite3_value_bytes(argv[3]);
  sqlite3_result_int64(ctx, RowChecksum(sqlite3_value_int64(argv[0]), sqlite3_value_int64(argv[1]),
                                        sqlite3_value_int64(argv[2]), std::string_view(p ? p : "", size_t(n))));
}
void RegisterRowChecksum(sqlite3* db) {
  sqlite3_create_function(db, "row_checksum", 4, SQLITE_UTF8 | SQLITE_DETERMINISTIC, nullptr, RowChecksumFunc,
                          nullptr, nullptr);
}

uint64_t Mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h * 0x100000001b3ull;
}

struct DbState {
  int64_t counter = -1;
  int64_t rows = -1;
  uint64_t digest = 0;  // of every row of every table, in order
};

// Checks every invariant of the data model (and PRAGMA integrity_check),
// inside one read transaction. Returns "" or what is wrong.
std::string CheckState(sqlite3* db, DbState* out, bool integrity = true) {
  *out = DbState();
  std::string err;
  // Inside the caller's transaction, if it has one; else in one of its own.
  const bool own_txn = sqlite3_get_autocommit(db) != 0;
  if (own_txn && ExecRc(db, "BEGIN", &err) != SQLITE_OK) return "BEGIN: " + err;
  struct EndTxn {
    sqlite3* db;
    bool own;
    ~EndTxn() {
      if (own) ExecRc(db, "COMMIT");
    }
  } end{db, own_txn};
  if (integrity) {
    Stmt ic(db, "PRAGMA integrity_check");
    if (ic.Step() != SQLITE_ROW) return "integrity_check failed to run: " + ic.Error();
    if (ic.Text(0) != "ok") return "integrity_check: " + ic.Text(0);
  }
  uint64_t digest = 0;
  int64_t total_rows;
  {
    Stmt m(db, "SELECT counter, total_rows FROM meta WHERE id = 1");
    if (m.Step() != SQLITE_ROW) return "no meta row: " + m.Error();
    out->counter = m.Int(0);
    total_rows = m.Int(1);
    digest = Mix(Mix(digest, uint64_t(out->counter)), uint64_t(total_rows));
  }
  int64_t rows = 0;
  {
    Stmt s(db, "SELECT id, writer, seq, payload, checksum FROM item ORDER BY id");
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) {
      const int64_t id = s.Int(0), writer = s.Int(1), seq = s.Int(2), sum = s.Int(4);
      const std::string_view payload = s.View(3);
      if (id != writer * kIdStride + seq) return "item " + std::to_string(id) + " has writer/seq that do not match";
      if (RowChecksum(id, writer, seq, payload) != sum) return "item " + std::to_string(id) + " fails its checksum";
      digest = Mix(Mix(digest, uint64_t(id)), uint64_t(sum));
      rows++;
    }
    if (rc != SQLITE_DONE) return "reading item: " + s.Error();
  }
  if (rows != total_rows) {
    return "count(*) FROM item is " + std::to_string(rows) + " but meta.total_rows is " + std::to_string(total_rows);
  }
  out->rows = rows;
  int64_t commits = 0, covered = 0;
  {
    Stmt w(db,
           "SELECT w.writer, w.inserted, w.deleted, w.commits, "
           "(SELECT count(*) FROM item i WHERE i.writer = w.writer), "
           "(SELECT min(seq) FROM item i WHERE i.writer = w.writer), "
           "(SELECT max(seq) FROM item i WHERE i.writer = w.writer) FROM wstate w ORDER BY w.writer");
    int rc;
    while ((rc = w.Step()) == SQLITE_ROW) {
      const int64_t writer = w.Int(0), ins = w.Int(1), del = w.Int(2), n = w.Int(4);
      commits += w.Int(3);
      covered += n;
      digest = Mix(Mix(Mix(Mix(digest, uint64_t(writer)), uint64_t(ins)), uint64_t(del)), uint64_t(w.Int(3)));
      if (n != ins - del) {
        return "writer " + std::to_string(writer) + " has " + std::to_string(n) + " rows, wstate says " +
               std::to_string(ins - del);
      }
      if (n > 0 && (w.Int(5) != del + 1 || w.Int(6) != ins)) {
        return "writer " + std::to_string(writer) + " rows are not seq " + std::to_string(del + 1) + ".." +
               std::to_string(ins);
      }
    }
    if (rc != SQLITE_DONE) return "reading wstate: " + w.Error();
  }
  if (covered != rows) return "item rows of writers without a wstate row";
  if (commits != out->counter) {
    return "sum(wstate.commits) = " + std::to_string(commits) + " but meta.counter = " + std::to_string(out->counter);
  }
  {
    Stmt p(db, "SELECT id, b, t FROM pad ORDER BY id");
    int rc;
    std::hash<std::string_view> hs;
    while ((rc = p.Step()) == SQLITE_ROW) {
      digest = Mix(Mix(Mix(digest, uint64_t(p.Int(0))), hs(p.View(1))), hs(p.View(2)));
    }
    if (rc != SQLITE_DONE) return "reading pad: " + p.Error();
  }
  out->digest = digest;
  return "";
}

// Creates the database: `items` rows of writer 0 and `pad_rows` rows of pad
// (half random, half compressible), in journal mode `mode`.
void CreateDb(const std::string& path, const std::string& mode, int items, int pad_rows, int pad_half_bytes) {
  std::string err;
  sqlite3* db = OpenConn(path, false, &err);
  ASSERT_NE(db, nullptr) << err;
  ASSERT_EQ("", Exec(db, "PRAGMA journal_mode=" + mode));
  ASSERT_EQ(mode, Query(db, "PRAGMA journal_mode"));
  ASSERT_EQ("", Exec(db,
                     "BEGIN;"
                     "CREATE TABLE meta(id INTEGER PRIMARY KEY CHECK (id = 1), counter INTEGER NOT NULL,"
                     "  total_rows INTEGER NOT NULL);"
                     "CREATE TABLE item(id INTEGER PRIMARY KEY, writer INTEGER NOT NULL, seq INTEGER NOT NULL,"
                     "  payload TEXT NOT NULL, checksum INTEGER NOT NULL);"
                     "CREATE INDEX item_writer_seq ON item(writer, seq);"
                     "CREATE TABLE wstate(writer INTEGER PRIMARY KEY, inserted INTEGER NOT NULL,"
                     "  deleted INTEGER NOT NULL, commits INTEGER NOT NULL);"
                     "CREATE TABLE pad(id INTEGER PRIMARY KEY, b BLOB, t TEXT);"));
  {
    Stmt m(db, "INSERT INTO meta VALUES(1, 0, ?1)");
    m.Bind(1, int64_t(items));
    ASSERT_EQ(SQLITE_DONE, m.Step()) << m.Error();
    Stmt w(db, "INSERT INTO wstate VALUES(0, ?1, 0, 0)");
    w.Bind(1, int64_t(items));
    ASSERT_EQ(SQLITE_DONE, w.Step()) << w.Error();
  }
  {
    Stmt ins(db, "INSERT INTO item VALUES(?1, 0, ?2, ?3, ?4)");
    for (int64_t seq = 1; seq <= items; seq++) {
      const std::string payload = MakePayload(uint64_t(seq), 100 + size_t(seq % 150));
      ins.Reset();
      ins.Bind(1, seq).Bind(2, seq).Bind(3, payload).Bind(4, RowChecksum(seq, 0, seq, payload));
      ASSERT_EQ(SQLITE_DONE, ins.Step()) << ins.Error();
    }
  }
  ASSERT_EQ("", Exec(db, Sql("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < %d) "
                             "INSERT INTO pad SELECT x, randomblob(%d), "
                             "substr(printf('%%.*c', %d, 'x') || x, 1, %d) FROM c",
                             pad_rows, pad_half_bytes, pad_half_bytes, pad_half_bytes)));
  ASSERT_EQ("", Exec(db, "COMMIT"));
  DbState st;
  ASSERT_EQ("", CheckState(db, &st));
  ASSERT_EQ(SQLITE_OK, sqlite3_close(db)) << "a statement was left unfinalized";
}

// One writer transaction: a new row, sometimes an update and a delete, the
// counters. SQLITE_OK when committed (*committed = the counter it set), a
// busy code to retry, or an error with *err.
int WriterTxn(sqlite3* db, int64_t w, uint64_t* rng, int64_t* committed, std::string* err) {
  int rc = ExecRc(db, "BEGIN IMMEDIATE", err);
  if (rc != SQLITE_OK) return rc;
  auto fail = [&](int code, const std::string& what) {
    *err = what;
    ExecRc(db, "ROLLBACK");
    return code == SQLITE_OK || code == SQLITE_ROW || code == SQLITE_DONE ? SQLITE_ERROR : code;
  };
  int64_t counter, total, inserted = 0, deleted = 0;
  {
    Stmt m(db, "SELECT counter, total_rows FROM meta WHERE id = 1");
    if ((rc = m.Step()) != SQLITE_ROW) return fail(rc, "meta: " + m.Error());
    counter = m.Int(0);
    total = m.Int(1);
  }
  {
    Stmt s(db, "SELECT inserted, deleted FROM wstate WHERE writer = ?1");
    s.Bind(1, w);
    rc = s.Step();
    if (rc == SQLITE_ROW) {
      inserted = s.Int(0);
      deleted = s.Int(1);
    } else if (rc == SQLITE_DONE) {
      Stmt i(db, "INSERT INTO wstate VALUES(?1, 0, 0, 0)");
      i.Bind(1, w);
      if ((rc = i.Step()) != SQLITE_DONE) return fail(rc, "wstate insert: " + i.Error());
    } else {
      return fail(rc, "wstate: " + s.Error());
    }
  }
  {
    const int64_t seq = inserted + 1, id = w * kIdStride + seq;
    const std::string payload = MakePayload(SplitMix(rng), 50 + size_t(SplitMix(rng) % 350));
    Stmt i(db, "INSERT INTO item VALUES(?1, ?2, ?3, ?4, ?5)");
    i.Bind(1, id).Bind(2, w).Bind(3, seq).Bind(4, payload).Bind(5, RowChecksum(id, w, seq, payload));
    if ((rc = i.Step()) != SQLITE_DONE) return fail(rc, "item insert: " + i.Error());
    inserted++;
    total++;
  }
  if (inserted - deleted > 1 && SplitMix(rng) % 3 == 0) {
    const int64_t target = deleted + 1 + int64_t(SplitMix(rng) % uint64_t(inserted - deleted));
    Stmt s(db, "SELECT id, seq FROM item WHERE writer = ?1 AND seq >= ?2 ORDER BY seq LIMIT 1");
    s.Bind(1, w).Bind(2, target);
    if ((rc = s.Step()) != SQLITE_ROW) return fail(rc, "item pick: " + s.Error());
    const int64_t id = s.Int(0), seq = s.Int(1);
    const std::string payload = MakePayload(SplitMix(rng), 50 + size_t(SplitMix(rng) % 350));
    Stmt u(db, "UPDATE item SET payload = ?2, checksum = ?3 WHERE id = ?1");
    u.Bind(1, id).Bind(2, payload).Bind(3, RowChecksum(id, w, seq, payload));
    if ((rc = u.Step()) != SQLITE_DONE) return fail(rc, "item update: " + u.Error());
  }
  if (inserted - deleted > 40 && SplitMix(rng) % 4 == 0) {
    Stmt d(db, "DELETE FROM item WHERE id = (SELECT id FROM item WHERE writer = ?1 ORDER BY seq LIMIT 1)");
    d.Bind(1, w);
    if ((rc = d.Step()) != SQLITE_DONE) return fail(rc, "item delete: " + d.Error());
    deleted++;
    total--;
  }
  {
    Stmt m(db, "UPDATE meta SET counter = ?1, total_rows = ?2 WHERE id = 1");
    m.Bind(1, counter + 1).Bind(2, total);
    if ((rc = m.Step()) != SQLITE_DONE) return fail(rc, "meta update: " + m.Error());
    Stmt s(db, "UPDATE wstate SET inserted = ?2, deleted = ?3, commits = commits + 1 WHERE writer = ?1");
    s.Bind(1, w).Bind(2, inserted).Bind(3, deleted);
    if ((rc = s.Step()) != SQLITE_DONE) return fail(rc, "wstate update: " + s.Error());
  }
  // COMMIT can be busy (rollback mode: readers hold SHARED); the
  // transaction stays open, so retry it.
  const int64_t deadline = NowMs() + 60000;
  while ((rc = ExecRc(db, "COMMIT", err)) != SQLITE_OK) {
    if (!IsBusy(rc) || NowMs() > deadline) return fail(rc, "COMMIT: " + *err);
    SleepMs(1);
  }
  *committed = counter + 1;
  return SQLITE_OK;
}

// ---------------------------------------------------------------------------
// Writer processes, steered through shared memory

enum Phase { kIdle = 0, kRun = 1, kPause = 2, kReport = 3, kStop = 4 };
constexpr int kWriters = 3;
constexpr int kMaxCommitTimes = 60000;
constexpr int kMaxBackups = 400;

struct WriterSlot {
  std::atomic<int64_t> commits;
  std::atomic<int64_t> busy_retries;
  std::atomic<int64_t> max_latency_us;
  std::atomic<int> acked_gen;
  std::atomic<int64_t> seen_counter;
  std::atomic<uint64_t> seen_digest;
  std::atomic<int> failed;
  char msg[512];
  int64_t n_times;  // read by the parent only after the writer exited
  int64_t times[kMaxCommitTimes];
};

struct BackupRecord {
  int64_t id, t0, t1, c0, c1;
};

struct Control {
  std::atomic<int> phase;
  std::atomic<int> gen;  // bumped with each phase change; writers ack it
  WriterSlot writer[kWriters];
  std::atomic<int> n_backups;
  BackupRecord backups[kMaxBackups];
  std::atomic<int> backup_failed;
  char backup_msg[512];
  // store reader (test 1)
  std::atomic<int> n_verifies;
  std::atomic<int> reader_failed;
  char reader_msg[512];
};

void SetPhase(Control* c, Phase p) {
  c->phase.store(p);
  c->gen.fetch_add(1);
}

// Waits until every writer has acknowledged the current phase.
bool WaitAcks(Control* c, int timeout_ms) {
  const int gen = c->gen.load();
  const int64_t deadline = NowMs() + timeout_ms;
  for (;;) {
    bool all = true;
    for (int w = 0; w < kWriters; w++) {
      all = all && (c->writer[w].acked_gen.load() == gen || c->writer[w].failed.load());
    }
    if (all) return true;
    if (NowMs() > deadline) return false;
    SleepMs(1);
  }
}

int WriterMain(const std::string& path, bool wal, int w, Control* c) {
  WriterSlot& me = c->writer[w];
  auto die = [&](const std::string& m) {
    return ReportChildFailure(me.msg, me.failed, "writer " + std::to_string(w) + ": " + m);
  };
  std::string err;
  sqlite3* db = OpenConn(path, false, &err);
  if (db == nullptr) return die(err);
  // synchronous=OFF in rollback mode: no fsync per commit, so writers hold
  // the lock briefly (process crashes do not need fsync; nothing here
  // simulates power loss).
  ExecRc(db, std::string("PRAGMA busy_timeout=5000; PRAGMA synchronous=") + (wal ? "NORMAL" : "OFF"));
  uint64_t rng = 0x1234567ull * uint64_t(w + 1) + uint64_t(getpid());
  const int64_t w_id = w + 1;  // writer 0 is the initial data
  int last_gen = -1;
  for (;;) {
    const int gen = c->gen.load();
    const int phase = c->phase.load();
    if (phase == kStop) break;
    if (phase == kReport && gen != last_gen) {
      // A fresh query on this long-open connection, then every invariant.
      int64_t seen;
      if (!QueryI64(db, "SELECT counter FROM meta WHERE id = 1", &seen, &err)) return die("report: " + err);
      me.seen_counter.store(seen);
      DbState st;
      const std::string bad = CheckState(db, &st);
      if (!bad.empty()) return die("report: connection sees a broken database: " + bad);
      me.seen_digest.store(st.digest);
    }
    if (gen != last_gen) {
      me.acked_gen.store(gen);
      last_gen = gen;
    }
    if (phase != kRun) {
      SleepMs(1);
      continue;
    }
    const int64_t t0 = NowNs();
    int64_t committed = 0;
    for (;;) {
      int rc = WriterTxn(db, w_id, &rng, &committed, &err);
      if (rc == SQLITE_OK) break;
      if (!IsBusy(rc)) return die("transaction failed: " + err);
      me.busy_retries.fetch_add(1);
      if (NowNs() - t0 > 60000000000ll) return die("busy for 60 s: " + err);
      SleepMs(1);
    }
    const int64_t t1 = NowNs();
    const int64_t lat = (t1 - t0) / 1000;
    if (lat > me.max_latency_us.load()) me.max_latency_us.store(lat);
    if (me.n_times < kMaxCommitTimes) me.times[me.n_times++] = t1;
    me.commits.fetch_add(1);
    // Think time. Without it the writer that just committed takes the lock
    // again at once and starves writers asleep in SQLite's busy handler.
    SleepMs(0.2 + double(SplitMix(&rng) % 1000) / 1000.0);
  }
  if (sqlite3_close(db) != SQLITE_OK) return die("close failed");
  return 0;
}

// ---------------------------------------------------------------------------
// Snapshot helpers (parent side)

struct SnapRow {
  int64_t id, page_size, page_count, db_bytes;
  std::string label;
};

std::vector<SnapRow> ListSnapshots(sqlite3* db, std::string* err = nullptr) {
  std::vector<SnapRow> out;
  Stmt s(db, "SELECT id, label, page_size, page_count, db_bytes FROM snapshot_list ORDER BY id");
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out.push_back(SnapRow{s.Int(0), s.Int(2), s.Int(3), s.Int(4), s.Text(1)});
  if (rc != SQLITE_DONE && err) *err = s.Error();
  return out;
}

// restore_to snapshot `id` into the new file `out_path`, then checks it.
// Returns "" or the problem; *st is the restored database's state.
std::string RestoreToAndCheck(sqlite3* db, int64_t id, const std::string& out_path, DbState* st,
                              int64_t expect_bytes = -1) {
  const std::string r = Query(db, Sql("SELECT snapshot_restore_to(%Q, %lld)", out_path.c_str(), (long long)id));
  if (r != std::to_string(id)) return "snapshot_restore_to(" + std::to_string(id) + ") = " + r;
  if (expect_bytes >= 0 && FileSize(out_path) != expect_bytes) {
    return "restored file has " + std::to_string(FileSize(out_path)) + " bytes, snapshot_list says " +
           std::to_string(expect_bytes);
  }
  std::string err;
  sqlite3* rdb = OpenConn(out_path, false, &err);
  if (rdb == nullptr) return err;
  std::string bad = CheckState(rdb, st);
  sqlite3_close(rdb);
  if (!bad.empty()) return "snapshot " + std::to_string(id) + ": " + bad;
  return "";
}

std::string ModeName(const ::testing::TestParamInfo<std::string>& info) { return info.param; }

// ===========================================================================
// 1. Writers during backup

class ConcurrencyWriters : public ::testing::TestWithParam<std::string> {};

TEST_P(ConcurrencyWriters, EverySnapshotIsOneCommitWhileThreeWritersRun) {
  const std::string mode = GetParam();
  TempDir dir;
  const std::string path = dir / "live.db";
  // ~7 MB, so that a capture takes long enough to overlap many commits.
  ASSERT_NO_FATAL_FAILURE(CreateDb(path, mode, 300, 1800, 1800));
  Shared<Control> c;
  Children kids(path);
  std::vector<pid_t> writers;
  for (int w = 0; w < kWriters; w++) writers.push_back(kids.Spawn([&, w] { return WriterMain(path, mode == "wal", w, &*c); }));
  // The backup job: a fourth process, as cron would run it.
  const pid_t backup = kids.Spawn([&]() -> int {
    auto die = [&](const std::string& m) { return ReportChildFailure(c->backup_msg, c->backup_failed, m); };
    std::string err;
    sqlite3* db = OpenConn(path, true, &err);
    if (db == nullptr) return die(err);
    if (Query(db, "SELECT snapshot_config('busy_timeout', 20000)") != "20000") return die("snapshot_config");
    ExecRc(db, "PRAGMA busy_timeout=20000");
    while (c->phase.load() == kIdle) SleepMs(1);
    int64_t last = -1;
    while (c->phase.load() == kRun) {
      int64_t c0, c1, id;
      if (!QueryI64(db, "SELECT counter FROM meta", &c0, &err)) return die(err);
      if (c0 <= last) {  // no commit since the last snapshot ended: wait for one
        SleepMs(1);
        continue;
      }
      const int64_t t0 = NowNs();
      if (!QueryI64(db, "SELECT snapshot_backup('cron')", &id, &err)) return die(err);
      const int64_t t1 = NowNs();
      if (!QueryI64(db, "SELECT counter FROM meta", &c1, &err)) return die(err);
      last = c1;
      const int n = c->n_backups.load();
      if (n < kMaxBackups) {
        c->backups[n] = BackupRecord{id, t0, t1, c0, c1};
        c->n_backups.store(n + 1);
      }
      SleepMs(25);
    }
    sqlite3_close(db);
    return 0;
  });
  // A fifth process reads the store meanwhile (shared store lock against
  // the backups' exclusive one): the store must always verify, and the
  // latest snapshot restore whole, with ids only growing. (It does not read
  // snapshot_list: see ConcurrencyLockOrder for why that can deadlock.)
  const pid_t store_reader = kids.Spawn([&]() -> int {
    auto die = [&](const std::string& m) { return ReportChildFailure(c->reader_msg, c->reader_failed, m); };
    std::string err;
    sqlite3* db = OpenConn(path, true, &err);
    if (db == nullptr) return die(err);
    Query(db, "SELECT snapshot_config('busy_timeout', 20000)");
    ExecRc(db, "PRAGMA busy_timeout=20000");
    int64_t last_id = 0;
    for (int n = 0; c->phase.load() != kStop; n++) {
      SleepMs(40);
      // The store exists from the first backup's start; its first snapshot
      // is listed only once that backup commits.
      if (!FileExists(path + "-snapshots/STORE") ||
          Query(db, "SELECT count(*) FROM snapshot_list") == "0") {
        continue;
      }
      const std::string v = Query(db, "SELECT snapshot_verify()");
      if (v != "ok") return die("snapshot_verify() during backups: " + v);
      const std::string out = dir / ("reader-" + std::to_string(n) + ".db");
      int64_t id = 0;
      if (!QueryI64(db, Sql("SELECT snapshot_restore_to(%Q)", out.c_str()), &id, &err)) return die(err);
      if (id < last_id) return die("the latest snapshot went back from " + std::to_string(last_id));
      last_id = id;
      sqlite3* rdb = OpenConn(out, false, &err);
      if (rdb == nullptr) return die(err);
      DbState st;
      const std::string bad = CheckState(rdb, &st);
      sqlite3_close(rdb);
      unlink(out.c_str());
      if (!bad.empty()) return die("latest snapshot " + std::to_string(id) + ", read during backups: " + bad);
      c->n_verifies.fetch_add(1);
    }
    sqlite3_close(db);
    return 0;
  });
  SetPhase(&*c, kRun);
  const int64_t start = NowMs();
  // At least 3.5 s, and enough backups and store reads to mean something:
  // under ThreadSanitizer a backup, reading at background priority beside
  // three busy writers on two cores, can take most of a second.
  while (NowMs() - start < 3500 || ((c->n_backups.load() < 6 || c->n_verifies.load() < 3) && NowMs() - start < 30000)) {
    SleepMs(50);
  }
  SetPhase(&*c, kStop);
  for (pid_t p : writers) EXPECT_EQ(0, kids.Wait(p)) << "writer failed";
  EXPECT_EQ(0, kids.Wait(backup)) << c->backup_msg;
  EXPECT_EQ(0, kids.Wait(store_reader)) << c->reader_msg;
  EXPECT_GE(c->n_verifies.load(), 3) << "the store reader barely ran";
  const int64_t elapsed = NowMs() - start;
  for (int w = 0; w < kWriters; w++) ASSERT_EQ(0, c->writer[w].failed.load()) << c->writer[w].msg;
  ASSERT_EQ(0, c->backup_failed.load()) << c->backup_msg;

  // Writers made progress.
  int64_t total_commits = 0;
  for (int w = 0; w < kWriters; w++) {
    const WriterSlot& s = c->writer[w];
    EXPECT_GE(s.commits.load(), 20) << "writer " << w << " barely ran";
    total_commits += s.commits.load();
    std::printf("[%s] writer %d: %lld commits, %lld busy retries, max latency %.1f ms\n", mode.c_str(), w,
                (long long)s.commits.load(), (long long)s.busy_retries.load(), s.max_latency_us.load() / 1000.0);
  }
  const int nb = c->n_backups.load();
  std::printf("[%s] %d backups in %lld ms, %lld commits, %d concurrent verify+restore_to\n", mode.c_str(), nb,
              (long long)elapsed, (long long)total_commits, c->n_verifies.load());
  ASSERT_GE(nb, 5) << "too few backups to mean anything";

  std::string err;
  sqlite3* db = OpenConn(path, true, &err);
  ASSERT_NE(db, nullptr) << err;
  DbState live;
  ASSERT_EQ("", CheckState(db, &live));
  EXPECT_EQ(total_commits, live.counter) << "a commit a writer saw succeed is missing from the database";
  EXPECT_EQ("ok", Query(db, "SELECT snapshot_verify()"));

  // Each snapshot is the database at one commit made during its backup call,
  // and later snapshots are of later commits.
  const std::vector<SnapRow> list = ListSnapshots(db);
  ASSERT_EQ(size_t(nb), list.size());
  int64_t prev_counter = -1, prev_id = 0;
  int64_t mid_capture_commits = 0;
  for (int i = 0; i < nb; i++) {
    const BackupRecord& b = c->backups[i];
    ASSERT_EQ(list[size_t(i)].id, b.id);
    ASSERT_GT(b.id, prev_id);
    DbState st;
    ASSERT_EQ("", RestoreToAndCheck(db, b.id, dir / ("snap-" + std::to_string(b.id) + ".db"), &st,
                                    list[size_t(i)].db_bytes));
    EXPECT_LE(b.c0, st.counter) << "snapshot " << b.id << " is older than the database when the backup began";
    EXPECT_GE(b.c1, st.counter) << "snapshot " << b.id << " is newer than the database after the backup";
    EXPECT_GT(st.counter, prev_counter) << "snapshot " << b.id << " does not follow the one before";
    mid_capture_commits += b.c1 - st.counter;
    prev_counter = st.counter;
    prev_id = b.id;
  }
  sqlite3_close(db);

  // How long were writers held up during each backup? The longest stretch
  // without any commit inside [t0, t1], as a fraction of the backup's time.
  std::vector<int64_t> times;
  for (int w = 0; w < kWriters; w++) {
    times.insert(times.end(), c->writer[w].times, c->writer[w].times + c->writer[w].n_times);
  }
  std::sort(times.begin(), times.end());
  std::vector<double> ratios;
  int with_commits = 0;
  double total_backup_ms = 0;
  for (int i = 0; i < nb; i++) {
    const BackupRecord& b = c->backups[i];
    auto lo = std::upper_bound(times.begin(), times.end(), b.t0);
    auto hi = std::lower_bound(times.begin(), times.end(), b.t1);
    int64_t prev = b.t0, gap = 0;
    for (auto it = lo; it != hi; ++it) {
      gap = std::max(gap, *it - prev);
      prev = *it;
    }
    gap = std::max(gap, b.t1 - prev);
    if (hi - lo > 0) with_commits++;
    ratios.push_back(double(gap) / double(b.t1 - b.t0));
    total_backup_ms += (b.t1 - b.t0) / 1e6;
  }
  std::sort(ratios.begin(), ratios.end());
  const double median = ratios[ratios.size() / 2];
  std::printf(
      "[%s] backups: mean %.1f ms; commits inside the backup call for %d of %d; longest commit-free stretch / backup "
      "time: median %.2f, max %.2f; commits after the snapshot point but before the call returned: %lld\n",
      mode.c_str(), total_backup_ms / nb, with_commits, nb, median, ratios.back(), (long long)mid_capture_commits);
  if (mode == "wal") {
    // Readers never block writers in WAL mode: a backup must not stop them.
    EXPECT_GE(with_commits * 10, nb * 8) << "WAL writers did not commit during most backups";
    EXPECT_LT(median, 0.6) << "WAL writers were held up for most of each backup";
  }
}

INSTANTIATE_TEST_SUITE_P(Concurrency, ConcurrencyWriters, ::testing::Values("delete", "wal"), ModeName);

// ===========================================================================
// 2. Restore while other processes keep connections open (and write)

class ConcurrencyRestore : public ::testing::TestWithParam<std::string> {};

TEST_P(ConcurrencyRestore, WritersWithOpenConnectionsSeeTheRestoredDatabase) {
  const std::string mode = GetParam();
  TempDir dir;
  const std::string path = dir / "live.db";
  ASSERT_NO_FATAL_FAILURE(CreateDb(path, mode, 300, 400, 1500));
  Shared<Control> c;
  Children kids(path);
  std::vector<pid_t> writers;
  for (int w = 0; w < kWriters; w++) writers.push_back(kids.Spawn([&, w] { return WriterMain(path, mode == "wal", w, &*c); }));
  // Every child is forked: only now may the parent open connections.
  std::string err;
  sqlite3* db = OpenConn(path, true, &err);
  ASSERT_NE(db, nullptr) << err;
  struct Closer {
    sqlite3* db;
    ~Closer() { sqlite3_close(db); }
  } closer{db};
  ASSERT_EQ("20000", Query(db, "SELECT snapshot_config('busy_timeout', 20000)"));
  ASSERT_EQ("", Exec(db, "PRAGMA busy_timeout=20000"));
  auto writer_failures = [&] {
    std::string m;
    for (int w = 0; w < kWriters; w++) {
      if (c->writer[w].failed.load()) m += std::string(c->writer[w].msg) + "\n";
    }
    return m;
  };
  auto total_commits = [&] {
    int64_t n = 0;
    for (int w = 0; w < kWriters; w++) n += c->writer[w].commits.load();
    return n;
  };
  auto latest = [&](const std::string& label) {
    std::vector<SnapRow> l = ListSnapshots(db);
    return !l.empty() && l.back().label == label ? l.back().id : int64_t(-1);
  };

  SetPhase(&*c, kRun);
  ASSERT_TRUE(WaitAcks(&*c, 30000)) << writer_failures();
  SleepMs(400);
  int64_t s1 = 0;
  ASSERT_TRUE(QueryI64(db, "SELECT snapshot_backup('s1')", &s1, &err)) << err;
  DbState st1;
  ASSERT_EQ("", RestoreToAndCheck(db, s1, dir / "s1.db", &st1));
  ASSERT_GT(st1.counter, 0) << "writers had not committed anything";
  SleepMs(300);

  // (a) Restore while the writers keep committing: it must get through, and
  // the state it records first ('pre-restore') must be one whole commit.
  int64_t restored = 0;
  const int64_t ta = NowMs();
  ASSERT_TRUE(QueryI64(db, Sql("SELECT snapshot_restore(%lld)", (long long)s1), &restored, &err)) << err;
  EXPECT_EQ(s1, restored);
  const int64_t restore_a_ms = NowMs() - ta;
  const int64_t commits_after_a = total_commits();
  const int64_t pre_a = latest("pre-restore");
  ASSERT_GT(pre_a, s1) << "no pre-restore snapshot recorded";
  DbState st_pre_a;
  ASSERT_EQ("", RestoreToAndCheck(db, pre_a, dir / "pre-a.db", &st_pre_a));
  EXPECT_GE(st_pre_a.counter, st1.counter);
  SleepMs(400);
  ASSERT_EQ("", writer_failures());
  EXPECT_GT(total_commits(), commits_after_a) << "writers stopped committing after a restore";

  // (b) The deterministic part: writers pause with their connections open.
  SetPhase(&*c, kPause);
  ASSERT_TRUE(WaitAcks(&*c, 30000)) << writer_failures();
  ASSERT_EQ("", writer_failures());
  DbState paused;
  ASSERT_EQ("", CheckState(db, &paused));
  // Writers committed on top of the database that restore (a) put back.
  EXPECT_GT(paused.counter, st1.counter);

  // Another connection holds a read transaction across the restore.
  sqlite3* reader = OpenConn(path, false, &err);
  ASSERT_NE(reader, nullptr) << err;
  struct Closer2 {
    sqlite3* db;
    ~Closer2() { sqlite3_close(db); }
  } closer2{reader};
  ASSERT_EQ("", Exec(reader, "BEGIN"));
  ASSERT_EQ(std::to_string(paused.counter), Query(reader, "SELECT counter FROM meta"));
  if (mode == "delete") {
    // Rollback mode: the reader's SHARED lock keeps the restore out; it
    // must give up cleanly after its timeout and change nothing.
    ASSERT_EQ("300", Query(db, "SELECT snapshot_config('busy_timeout', 300)"));
    ASSERT_EQ("", Exec(db, "PRAGMA busy_timeout=300"));
    const std::string r = Query(db, Sql("SELECT snapshot_restore(%lld)", (long long)s1));
    EXPECT_EQ(0u, r.rfind("ERROR", 0)) << "restore succeeded under a reader's SHARED lock: " << r;
    ASSERT_EQ("", Exec(reader, "COMMIT"));
    DbState unchanged;
    ASSERT_EQ("", CheckState(db, &unchanged));
    EXPECT_EQ(paused.digest, unchanged.digest) << "a failed restore changed the database";
    ASSERT_EQ("20000", Query(db, "SELECT snapshot_config('busy_timeout', 20000)"));
    ASSERT_EQ("", Exec(db, "PRAGMA busy_timeout=20000"));
  }
  const int64_t tb = NowMs();
  ASSERT_TRUE(QueryI64(db, Sql("SELECT snapshot_restore(%lld)", (long long)s1), &restored, &err)) << err;
  EXPECT_EQ(s1, restored);
  const int64_t restore_b_ms = NowMs() - tb;
  if (mode == "wal") {
    // WAL mode: the reader's snapshot is undisturbed until it ends.
    DbState old_view;
    ASSERT_EQ("", CheckState(reader, &old_view, /*integrity=*/false));
    EXPECT_EQ(paused.digest, old_view.digest) << "an open read transaction saw the restore happen";
    ASSERT_EQ("", Exec(reader, "COMMIT"));
    EXPECT_EQ(std::to_string(st1.counter), Query(reader, "SELECT counter FROM meta"));
  }
  const int64_t pre_b = latest("pre-restore");
  ASSERT_GT(pre_b, pre_a);
  DbState st_pre_b;
  ASSERT_EQ("", RestoreToAndCheck(db, pre_b, dir / "pre-b.db", &st_pre_b));
  EXPECT_EQ(paused.counter, st_pre_b.counter);
  EXPECT_EQ(paused.digest, st_pre_b.digest) << "pre-restore snapshot is not the database the restore replaced";
  DbState live;
  ASSERT_EQ("", CheckState(db, &live));
  EXPECT_EQ(st1.counter, live.counter);
  EXPECT_EQ(st1.digest, live.digest) << "the live database is not snapshot " << s1;

  // Each writer, on the connection it kept open, now sees the restored data.
  SetPhase(&*c, kReport);
  ASSERT_TRUE(WaitAcks(&*c, 30000)) << writer_failures();
  ASSERT_EQ("", writer_failures());
  int64_t base[kWriters];
  for (int w = 0; w < kWriters; w++) {
    EXPECT_EQ(st1.counter, c->writer[w].seen_counter.load()) << "writer " << w << " sees a stale counter";
    EXPECT_EQ(st1.digest, c->writer[w].seen_digest.load()) << "writer " << w << " sees stale rows";
    base[w] = c->writer[w].commits.load();
  }

  // They resume and every commit they make lands on the restored database.
  SetPhase(&*c, kRun);
  SleepMs(500);
  SetPhase(&*c, kPause);
  ASSERT_TRUE(WaitAcks(&*c, 30000)) << writer_failures();
  ASSERT_EQ("", writer_failures());
  int64_t delta = 0;
  for (int w = 0; w < kWriters; w++) {
    const int64_t d = c->writer[w].commits.load() - base[w];
    EXPECT_GE(d, 5) << "writer " << w << " could not commit after the restore";
    delta += d;
  }
  DbState final_state;
  ASSERT_EQ("", CheckState(db, &final_state));
  EXPECT_EQ(st1.counter + delta, final_state.counter) << "commits after the restore were lost or misplaced";
  EXPECT_EQ("ok", Query(db, "SELECT snapshot_verify()"));
  std::printf("[%s] restore under writers %lld ms, with writers paused %lld ms; %lld commits after the restore\n",
              mode.c_str(), (long long)restore_a_ms, (long long)restore_b_ms, (long long)delta);
  SetPhase(&*c, kStop);
  for (pid_t p : writers) EXPECT_EQ(0, kids.Wait(p)) << writer_failures();
}

INSTANTIATE_TEST_SUITE_P(Concurrency, ConcurrencyRestore, ::testing::Values("delete", "wal"), ModeName);

// ===========================================================================
// 3-5. Crashes: kill -9 of a backup, of a writer, of a restore

class ConcurrencyKill : public ::testing::TestWithParam<std::string> {};

struct KillShm {
  std::atomic<int> stage;
  std::atomic<int> done;
  std::atomic<int> failed;
  char msg[512];
};

int ChildFail(KillShm* k, const std::string& m) { return ReportChildFailure(k->msg, k->failed, m); }

TEST_P(ConcurrencyKill, KillDuringBackupLeavesEverySnapshotWhole) {
  const std::string mode = GetParam();
  TempDir dir;
  const std::string path = dir / "live.db";
  const std::string store = path + "-snapshots";
  // ~24 MB: half random bytes, half compressible text.
  ASSERT_NO_FATAL_FAILURE(CreateDb(path, mode, 200, 12000, 900));
  std::printf("[%s] database: %lld bytes\n", mode.c_str(), (long long)FileSize(path));
  Shared<KillShm> k;
  const int delays_ms[] = {0, 10, 25, 45, 70, 100, 140, 180, 240, 300};
  std::set<int64_t> seen;
  std::map<int, int> stages;  // where the child was when killed
  int debris_runs = 0, listed_from_killed = 0;
  for (int run = 0; run < 10; run++) {
    SCOPED_TRACE("run " + std::to_string(run) + ", kill after " + std::to_string(delays_ms[run]) + " ms");
    k->stage.store(0);
    k->done.store(0);
    Children kids(path);
    const std::string label = "loop-" + std::to_string(run);
    const pid_t child = kids.Spawn([&]() -> int {
      std::string err;
      sqlite3* db = OpenConn(path, true, &err);
      if (db == nullptr) return ChildFail(&*k, err);
      ExecRc(db, "PRAGMA busy_timeout=10000");
      if (Query(db, "SELECT snapshot_config('busy_timeout', 10000)") != "10000") return ChildFail(&*k, "config");
      for (int i = 0;; i++) {
        k->stage.store(1);
        int64_t id;
        if (!QueryI64(db, Sql("SELECT snapshot_backup(%Q)", label.c_str()), &id, &err)) return ChildFail(&*k, err);
        k->done.fetch_add(1);
        k->stage.store(2);
        if (ExecRc(db, Sql("UPDATE pad SET b = randomblob(900) WHERE id %% 8 = %d", i % 8), &err) != SQLITE_OK) {
          return ChildFail(&*k, err);
        }
      }
    });
    SleepMs(delays_ms[run]);
    const int status = kids.Kill(child);
    ASSERT_EQ(0, k->failed.load()) << k->msg;
    ASSERT_EQ(128 + SIGKILL, status);
    stages[k->stage.load()]++;
    if (CountDebris(store) > 0) debris_runs++;

    // Only now, with no other process left, does the parent open the files.
    std::string err;
    sqlite3* db = OpenConn(path, true, &err);
    ASSERT_NE(db, nullptr) << err;
    struct Closer {
      sqlite3* db;
      ~Closer() { sqlite3_close(db); }
    } closer{db};
    if (FileExists(store + "/STORE")) {
      EXPECT_EQ("ok", Query(db, "SELECT snapshot_verify()"));
    }
    const std::vector<SnapRow> list = ListSnapshots(db, &err);
    ASSERT_EQ("", err);
    std::set<int64_t> now;
    int from_this_run = 0;
    for (const SnapRow& r : list) {
      now.insert(r.id);
      if (r.label == label) from_this_run++;
      if (seen.count(r.id)) continue;
      // A snapshot listed for the first time: it must be whole.
      DbState st;
      const std::string out = dir / ("check-" + std::to_string(r.id) + ".db");
      ASSERT_EQ("", RestoreToAndCheck(db, r.id, out, &st, r.db_bytes));
      EXPECT_EQ(r.page_size * r.page_count, r.db_bytes);
      unlink(out.c_str());
    }
    for (int64_t id : seen) EXPECT_TRUE(now.count(id)) << "snapshot " << id << " disappeared";
    // Every backup the child finished is listed; at most one more (killed
    // between publishing and counting it).
    EXPECT_GE(from_this_run, k->done.load());
    EXPECT_LE(from_this_run, k->done.load() + 1);
    listed_from_killed += from_this_run - k->done.load();

    // A following backup works and is exactly the live database.
    int64_t after = 0;
    ASSERT_TRUE(QueryI64(db, "SELECT snapshot_backup('after-kill')", &after, &err)) << err;
    const std::string out = dir / ("after-" + std::to_string(after) + ".db");
    ASSERT_EQ(std::to_string(after), Query(db, Sql("SELECT snapshot_restore_to(%Q, %lld)", out.c_str(), (long long)after)));
    DbState live;
    EXPECT_EQ("", CheckState(db, &live));
    for (const SnapRow& r : ListSnapshots(db)) seen.insert(r.id);
    if (mode == "wal") {
      ASSERT_EQ("0", Query(db, "PRAGMA wal_checkpoint(TRUNCATE)"));
    }
    ASSERT_EQ(SQLITE_OK, sqlite3_close(db));
    closer.db = nullptr;
    // The file alone (WAL checkpointed) now holds the whole database.
    EXPECT_EQ("", ComparePages(ReadFile(path), ReadFile(out), 4096));
    unlink(out.c_str());
  }
  EXPECT_GE(stages[1], 1) << "no kill landed inside snapshot_backup: the test did not test that";
  std::printf("[%s] killed while: opening %d, in snapshot_backup %d, updating %d; runs leaving *.tmp debris: %d; "
              "snapshots published but not yet reported when killed: %d; snapshots checked: %zu\n",
              mode.c_str(), stages[0], stages[1], stages[2], debris_runs, listed_from_killed, seen.size());
}

TEST_P(ConcurrencyKill, WriterKilledMidTransactionIsNotInTheNextSnapshot) {
  const std::string mode = GetParam();
  TempDir dir;
  const std::string templ = dir / "template.db";
  ASSERT_NO_FATAL_FAILURE(CreateDb(templ, mode, 20000, 1, 100));  // ~4 MB of items
  Shared<KillShm> k;
  struct Run {
    int kill_after;  // statements done; 0: at a time, mid-statement
    bool via_restore;
  };
  const Run runs[] = {{1, false}, {10, false}, {5, true}, {10, true}, {0, false}, {0, true}};
  int run_no = 0;
  for (const Run& run : runs) {
    SCOPED_TRACE("run " + std::to_string(run_no) + ": kill after " + std::to_string(run.kill_after) +
                 " statements, then " + (run.via_restore ? "snapshot_restore" : "snapshot_backup"));
    const std::string path = dir / ("run" + std::to_string(run_no++) + ".db");
    CopyFile(templ, path);
    std::string err;
    DbState x, y;
    int64_t id_x = 0;
    {
      sqlite3* db = OpenConn(path, true, &err);
      ASSERT_NE(db, nullptr) << err;
      ASSERT_TRUE(QueryI64(db, "SELECT snapshot_backup('x')", &id_x, &err)) << err;
      ASSERT_EQ("", CheckState(db, &x));
      ASSERT_EQ("", Exec(db, "BEGIN IMMEDIATE; UPDATE meta SET counter = counter + 1;"
                             "UPDATE wstate SET commits = commits + 1 WHERE writer = 0; COMMIT"));
      ASSERT_EQ("", CheckState(db, &y));
      ASSERT_EQ(0, sqlite3_close(db));
    }
    const std::string before = ReadFile(path);
    const int64_t wal_before = std::max<int64_t>(0, FileSize(path + "-wal"));
    k->stage.store(0);
    k->failed.store(0);
    Children kids(path);
    // The writer: one big transaction that never commits. With a 10-page
    // cache, its changes spill into the database file (rollback mode) or
    // the -wal file long before the end.
    const pid_t writer = kids.Spawn([&]() -> int {
      std::string e;
      sqlite3* db = OpenConn(path, false, &e);
      if (db == nullptr) return ChildFail(&*k, e);
      RegisterRowChecksum(db);
      if (ExecRc(db, "PRAGMA cache_size=10; BEGIN IMMEDIATE; UPDATE meta SET counter = counter + 1000", &e)) {
        return ChildFail(&*k, e);
      }
      for (int i = 0; i < 10; i++) {
        if (ExecRc(db, Sql("UPDATE item SET payload = payload || '#', "
                           "checksum = row_checksum(id, writer, seq, payload || '#') WHERE id %% 10 = %d", i), &e)) {
          return ChildFail(&*k, e);
        }
        k->stage.store(i + 1);
      }
      for (;;) SleepMs(100);  // killed before COMMIT
    });
    const int64_t deadline = NowMs() + 60000;
    const int want = run.kill_after == 0 ? 1 : run.kill_after;
    while (k->stage.load() < want && !k->failed.load() && NowMs() < deadline) SleepMs(0.2);
    ASSERT_EQ(0, k->failed.load()) << k->msg;
    ASSERT_GE(k->stage.load(), want);
    if (run.kill_after == 0) SleepMs(3);
    ASSERT_EQ(128 + SIGKILL, kids.Kill(writer));
    // The crash is real: uncommitted changes are on disk.
    if (mode == "delete") {
      EXPECT_GT(FileSize(path + "-journal"), 0) << "no hot journal left";
      if (run.kill_after > 0) {
        EXPECT_NE(before, ReadFile(path)) << "the cache never spilled into the database file";
      }
    } else {
      EXPECT_GT(FileSize(path + "-wal"), wal_before) << "no uncommitted frames in the -wal file";
    }

    if (!run.via_restore) {
      // A cron job's backup, from the sqlite3 shell, is the first to open
      // the database after the crash.
      int status = 0;
      const std::string out = RunShell(&kids, path, "SELECT snapshot_backup('after-writer-crash');", &status);
      ASSERT_EQ(0, status) << out;
      const int64_t id = std::strtoll(out.c_str(), nullptr, 10);
      ASSERT_GT(id, id_x) << out;
      sqlite3* db = OpenConn(path, true, &err);
      ASSERT_NE(db, nullptr) << err;
      DbState st;
      EXPECT_EQ("", RestoreToAndCheck(db, id, path + ".after.db", &st));
      EXPECT_EQ(y.counter, st.counter) << "the snapshot holds the killed writer's uncommitted transaction";
      EXPECT_EQ(y.digest, st.digest) << "the snapshot is not the last committed state";
      DbState live;
      EXPECT_EQ("", CheckState(db, &live));
      EXPECT_EQ(y.digest, live.digest);
      EXPECT_EQ("ok", Query(db, "SELECT snapshot_verify()"));
      sqlite3_close(db);
    } else {
      // A restore is the first to open it: the state it records first
      // ('pre-restore') must be the last committed state, too.
      const pid_t restorer = kids.Spawn([&]() -> int {
        std::string e;
        sqlite3* db = OpenConn(path, true, &e);
        if (db == nullptr) return ChildFail(&*k, e);
        int64_t r;
        if (!QueryI64(db, Sql("SELECT snapshot_restore(%lld)", (long long)id_x), &r, &e)) return ChildFail(&*k, e);
        return r == id_x ? 0 : ChildFail(&*k, "snapshot_restore returned " + std::to_string(r));
      });
      ASSERT_EQ(0, kids.Wait(restorer)) << k->msg;
      sqlite3* db = OpenConn(path, true, &err);
      ASSERT_NE(db, nullptr) << err;
      const std::vector<SnapRow> list = ListSnapshots(db);
      ASSERT_FALSE(list.empty());
      ASSERT_EQ("pre-restore", list.back().label);
      DbState st;
      EXPECT_EQ("", RestoreToAndCheck(db, list.back().id, path + ".pre.db", &st));
      EXPECT_EQ(y.counter, st.counter) << "pre-restore snapshot holds the killed writer's uncommitted transaction";
      EXPECT_EQ(y.digest, st.digest) << "pre-restore snapshot is not the last committed state";
      DbState live;
      EXPECT_EQ("", CheckState(db, &live));
      EXPECT_EQ(x.digest, live.digest) << "the database is not the restored snapshot";
      EXPECT_EQ("ok", Query(db, "SELECT snapshot_verify()"));
      sqlite3_close(db);
    }
  }
}

TEST_P(ConcurrencyKill, KillDuringRestoreLeavesOldOrNewDatabase) {
  const std::string mode = GetParam();
  TempDir dir;
  const std::string path = dir / "live.db";
  ASSERT_NO_FATAL_FAILURE(CreateDb(path, mode, 2000, 12000, 900));  // ~24 MB
  std::string err;
  DbState a, b;
  int64_t id_a = 0, id_b = 0, restore_ms = 0;
  {
    sqlite3* db = OpenConn(path, true, &err);
    ASSERT_NE(db, nullptr) << err;
    RegisterRowChecksum(db);
    ASSERT_EQ("", CheckState(db, &a));
    ASSERT_TRUE(QueryI64(db, "SELECT snapshot_backup('A')", &id_a, &err)) << err;
    // State B differs on nearly every page and is ~4 MB larger: restores
    // alternate between growing and truncating the file.
    ASSERT_EQ("", Exec(db, "BEGIN; UPDATE pad SET b = randomblob(900);"
                           "INSERT INTO pad SELECT id + 100000, randomblob(900), t FROM pad WHERE id <= 2000;"
                           "UPDATE item SET payload = upper(payload), checksum = row_checksum(id, writer, seq, upper(payload));"
                           "UPDATE meta SET counter = counter + 1; UPDATE wstate SET commits = commits + 1; COMMIT"));
    ASSERT_EQ("", CheckState(db, &b));
    ASSERT_NE(a.digest, b.digest);
    ASSERT_GT(FileSize(path), int64_t(26000000));
    ASSERT_TRUE(QueryI64(db, "SELECT snapshot_backup('B')", &id_b, &err)) << err;
    // How long does a restore take? Kill times are spread over it.
    const int64_t t0 = NowMs();
    int64_t r = 0;
    ASSERT_TRUE(QueryI64(db, Sql("SELECT snapshot_restore(%lld)", (long long)id_a), &r, &err)) << err;
    restore_ms = NowMs() - t0;
    DbState now;
    ASSERT_EQ("", CheckState(db, &now));
    ASSERT_EQ(a.digest, now.digest);
    ASSERT_EQ(0, sqlite3_close(db));
  }
  std::printf("[%s] database %lld bytes; an uninterrupted restore takes %lld ms\n", mode.c_str(),
              (long long)FileSize(path), (long long)restore_ms);
  Shared<KillShm> k;
  const double fractions[] = {0.0, 0.1, 0.2, 0.3, 0.45, 0.6, 0.75, 0.9, 1.05, 1.4};
  DbState live = a;
  int64_t max_id = 0;
  int old_outcomes = 0, new_outcomes = 0, mid_write = 0;
  {
    sqlite3* db = OpenConn(path, true, &err);
    ASSERT_NE(db, nullptr) << err;
    max_id = ListSnapshots(db).back().id;
    sqlite3_close(db);
  }
  auto kill_restore_at = [&](double f) {
    SCOPED_TRACE("kill at " + std::to_string(f) + " of a restore");
    const bool to_b = live.digest == a.digest;
    const DbState& target = to_b ? b : a;
    const int64_t target_id = to_b ? id_b : id_a;
    const int64_t wal_before = std::max<int64_t>(0, FileSize(path + "-wal"));
    k->stage.store(0);
    Children kids(path);
    const pid_t child = kids.Spawn([&]() -> int {
      std::string e;
      sqlite3* db = OpenConn(path, true, &e);
      if (db == nullptr) return ChildFail(&*k, e);
      Query(db, "SELECT snapshot_config('busy_timeout', 10000)");
      k->stage.store(1);
      int64_t r;
      if (!QueryI64(db, Sql("SELECT snapshot_restore(%lld)", (long long)target_id), &r, &e)) return ChildFail(&*k, e);
      k->stage.store(2);
      for (;;) SleepMs(100);
    });
    const int64_t deadline = NowMs() + 30000;
    while (k->stage.load() < 1 && !k->failed.load() && NowMs() < deadline) SleepMs(0.1);
    SleepMs(f * double(restore_ms));
    ASSERT_EQ(128 + SIGKILL, kids.Kill(child));
    ASSERT_EQ(0, k->failed.load()) << k->msg;
    const bool finished = k->stage.load() == 2;
    const bool hot_journal = FileSize(path + "-journal") > 0;
    const bool wal_grew = FileSize(path + "-wal") > wal_before;

    sqlite3* db = OpenConn(path, true, &err);
    ASSERT_NE(db, nullptr) << err;
    struct Closer {
      sqlite3* db;
      ~Closer() { sqlite3_close(db); }
    } closer{db};
    DbState now;
    ASSERT_EQ("", CheckState(db, &now)) << "the database is damaged after a restore was killed";
    ASSERT_TRUE(now.digest == live.digest || now.digest == target.digest)
        << "the database is neither the old nor the restored content (counter " << now.counter << ")";
    if (finished) {
      EXPECT_EQ(target.digest, now.digest) << "a restore that returned was undone";
    }
    if (now.digest == live.digest) {
      old_outcomes++;
      if (hot_journal || wal_grew) mid_write++;
    } else {
      new_outcomes++;
    }
    EXPECT_EQ("ok", Query(db, "SELECT snapshot_verify()"));
    // A restore killed after recording the old state leaves that record
    // whole; nothing else is new in the store.
    const std::vector<SnapRow> list = ListSnapshots(db);
    int fresh = 0;
    for (const SnapRow& r : list) {
      if (r.id <= max_id) continue;
      fresh++;
      EXPECT_EQ("pre-restore", r.label);
      DbState st;
      const std::string out = dir / ("pre-" + std::to_string(r.id) + ".db");
      EXPECT_EQ("", RestoreToAndCheck(db, r.id, out, &st, r.db_bytes));
      EXPECT_EQ(live.digest, st.digest) << "pre-restore snapshot " << r.id << " is not the state it replaced";
      unlink(out.c_str());
    }
    EXPECT_LE(fresh, 1);
    if (!list.empty()) max_id = list.back().id;
    live = now;
  };
  for (double f : fractions) {
    kill_restore_at(f);
    if (HasFatalFailure()) return;
  }
  // The point is a kill while the restore writes: if timing kept every
  // kill out of that stretch, aim at its middle again.
  for (int extra = 0; mid_write == 0 && extra < 8; extra++) {
    kill_restore_at(0.5 + 0.07 * extra);
    if (HasFatalFailure()) return;
  }
  EXPECT_GE(mid_write, 1) << "no kill landed while the restore was writing: the test did not test that";
  std::printf("[%s] killed restores: %d left the old database (%d of them mid-write: hot journal / uncommitted "
              "WAL frames), %d the restored one\n",
              mode.c_str(), old_outcomes, mid_write, new_outcomes);
}

INSTANTIATE_TEST_SUITE_P(Concurrency, ConcurrencyKill, ::testing::Values("delete", "wal"), ModeName);

// ===========================================================================
// Lock order between the database and the snapshot store.
//
// snapshot_list (like any statement reading a table) holds the database's
// SHARED lock, or WAL read lock, while it waits for the store's shared lock.
// snapshot_backup and snapshot_restore take the store's exclusive lock first
// and wait for the database afterwards. In rollback-journal mode that is a
// lock-order inversion: each waits for the other until a timeout.

class ConcurrencyLockOrder : public ::testing::TestWithParam<std::string> {};

struct LockShm {
  std::atomic<int> step;
  std::atomic<int> list_done, other_done;
  std::atomic<int64_t> list_ms, other_ms;
  char list_result[512];
  char other_result[512];
  std::atomic<int> commit_rc;
};

// A process with an open read transaction lists the snapshots while a
// restore waits for that transaction to end.
TEST_P(ConcurrencyLockOrder, ListingInAReadTransactionWhileARestoreWaits) {
  const std::string mode = GetParam();
  TempDir dir;
  const std::string path = dir / "live.db";
  ASSERT_NO_FATAL_FAILURE(CreateDb(path, mode, 50, 10, 100));
  int64_t id = 0;
  {
    std::string err;
    sqlite3* db = OpenConn(path, true, &err);
    ASSERT_NE(db, nullptr) << err;
    ASSERT_TRUE(QueryI64(db, "SELECT snapshot_backup('base')", &id, &err)) << err;
    ASSERT_EQ(SQLITE_OK, sqlite3_close(db));
  }
  Shared<LockShm> k;
  Children kids(path);
  const pid_t reader = kids.Spawn([&]() -> int {
    std::string e;
    sqlite3* db = OpenConn(path, true, &e);
    if (db == nullptr) return 2;
    ExecRc(db, "PRAGMA busy_timeout=4000");
    Query(db, "SELECT snapshot_config('busy_timeout', 4000)");
    Query(db, "BEGIN");
    Query(db, "SELECT counter FROM meta");  // the read transaction
    k->step.store(1);
    while (k->step.load() < 2) SleepMs(1);
    const int64_t t0 = NowMs();
    SetMsg(k->list_result, sizeof k->list_result, Query(db, "SELECT count(*) FROM snapshot_list"));
    k->list_ms.store(NowMs() - t0);
    Query(db, "COMMIT");
    k->list_done.store(1);
    sqlite3_close(db);
    return 0;
  });
  while (k->step.load() < 1) SleepMs(1);
  const pid_t restorer = kids.Spawn([&]() -> int {
    std::string e;
    sqlite3* db = OpenConn(path, true, &e);
    if (db == nullptr) return 2;
    ExecRc(db, "PRAGMA busy_timeout=8000");
    Query(db, "SELECT snapshot_config('busy_timeout', 8000)");
    const int64_t t0 = NowMs();
    SetMsg(k->other_result, sizeof k->other_result, Query(db, Sql("SELECT snapshot_restore(%lld)", (long long)id)));
    k->other_ms.store(NowMs() - t0);
    k->other_done.store(1);
    sqlite3_close(db);
    return 0;
  });
  SleepMs(400);  // the restore is now waiting (rollback mode) or done (WAL)
  k->step.store(2);
  EXPECT_EQ(0, kids.Wait(reader));
  EXPECT_EQ(0, kids.Wait(restorer));
  std::printf("[%s] snapshot_list in the read transaction: '%s' after %lld ms; snapshot_restore: '%s' after %lld ms\n",
              mode.c_str(), k->list_result, (long long)k->list_ms.load(), k->other_result,
              (long long)k->other_ms.load());
  // Listing needs nothing the restore must change: it should answer at
  // once, and the restore go ahead when the reader's transaction ends.
  EXPECT_GE(std::atoi(k->list_result), 1)
      << k->list_result << "\nsnapshot_list waited for the store lock that the restore held while the restore waited for this "
         "reader's database lock (lock-order inversion)";
  EXPECT_LT(k->list_ms.load(), 2000);
  EXPECT_EQ(std::to_string(id), std::string(k->other_result));
}

// A writer waits (PENDING) for a reader; a backup waits behind the writer;
// the reader then lists the snapshots.
TEST_P(ConcurrencyLockOrder, ListingWhileABackupWaitsBehindAWriter) {
  const std::string mode = GetParam();
  TempDir dir;
  const std::string path = dir / "live.db";
  ASSERT_NO_FATAL_FAILURE(CreateDb(path, mode, 50, 10, 100));
  {
    std::string err;
    sqlite3* db = OpenConn(path, true, &err);
    ASSERT_NE(db, nullptr) << err;
    int64_t id;
    ASSERT_TRUE(QueryI64(db, "SELECT snapshot_backup('base')", &id, &err)) << err;
    ASSERT_EQ(SQLITE_OK, sqlite3_close(db));
  }
  Shared<LockShm> k;
  Children kids(path);
  const pid_t reader = kids.Spawn([&]() -> int {
    std::string e;
    sqlite3* db = OpenConn(path, true, &e);
    if (db == nullptr) return 2;
    ExecRc(db, "PRAGMA busy_timeout=4000");
    Query(db, "SELECT snapshot_config('busy_timeout', 4000)");
    Query(db, "BEGIN");
    Query(db, "SELECT counter FROM meta");
    k->step.store(1);
    while (k->step.load() < 3) SleepMs(1);
    const int64_t t0 = NowMs();
    SetMsg(k->list_result, sizeof k->list_result, Query(db, "SELECT count(*) FROM snapshot_list"));
    k->list_ms.store(NowMs() - t0);
    Query(db, "COMMIT");
    sqlite3_close(db);
    return 0;
  });
  while (k->step.load() < 1) SleepMs(1);
  const pid_t writer = kids.Spawn([&]() -> int {
    std::string e;
    sqlite3* db = OpenConn(path, false, &e);
    if (db == nullptr) return 2;
    ExecRc(db, "PRAGMA busy_timeout=8000");
    ExecRc(db, "BEGIN IMMEDIATE; UPDATE meta SET counter = counter + 1;"
               "UPDATE wstate SET commits = commits + 1 WHERE writer = 0");
    k->step.store(2);
    k->commit_rc.store(ExecRc(db, "COMMIT"));  // rollback mode: PENDING, waits for the reader
    sqlite3_close(db);
    return 0;
  });
  while (k->step.load() < 2) SleepMs(1);
  SleepMs(200);
  const pid_t backup = kids.Spawn([&]() -> int {
    std::string e;
    sqlite3* db = OpenConn(path, true, &e);
    if (db == nullptr) return 2;
    ExecRc(db, "PRAGMA busy_timeout=8000");
    Query(db, "SELECT snapshot_config('busy_timeout', 8000)");
    const int64_t t0 = NowMs();
    SetMsg(k->other_result, sizeof k->other_result, Query(db, "SELECT snapshot_backup('behind-writer')"));
    k->other_ms.store(NowMs() - t0);
    sqlite3_close(db);
    return 0;
  });
  SleepMs(400);
  k->step.store(3);
  EXPECT_EQ(0, kids.Wait(reader));
  EXPECT_EQ(0, kids.Wait(writer));
  EXPECT_EQ(0, kids.Wait(backup));
  std::printf("[%s] snapshot_list: '%s' after %lld ms; snapshot_backup: '%s' after %lld ms; writer COMMIT rc %d\n",
              mode.c_str(), k->list_result, (long long)k->list_ms.load(), k->other_result,
              (long long)k->other_ms.load(), k->commit_rc.load());
  EXPECT_GE(std::atoi(k->list_result), 1)
      << k->list_result << "\nsnapshot_list waited for the store lock held by a backup that waited for the database "
         "(lock-order inversion: reader -> backup -> writer -> reader)";
  EXPECT_LT(k->list_ms.load(), 2000);
  EXPECT_EQ(SQLITE_OK, k->commit_rc.load());
  EXPECT_EQ(0u, std::string(k->other_result).rfind("2", 0)) << "backup: " << k->other_result;
}

INSTANTIATE_TEST_SUITE_P(Concurrency, ConcurrencyLockOrder, ::testing::Values("delete", "wal"), ModeName);

}  // namespace
}  // namespace snapshot_test
