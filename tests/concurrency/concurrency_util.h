// Helpers shared by the concurrency and crash tests with real processes
// (tests/concurrency/*_test.cc): the data model, writer processes steered
// through shared memory, and the parent's checks of snapshots.
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
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstring>
#include <fstream>
#include <functional>
#include <new>
#include <string_view>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/process_util.h"
#include "tests/test_util.h"

namespace snapshot_test {

// ---------------------------------------------------------------------------
// Processes, time, shared memory

inline bool FileExists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }
inline void CopyFile(const std::string& from, const std::string& to) {
  std::string data = ReadFile(from);
  std::ofstream(to, std::ios::binary | std::ios::trunc).write(data.data(), std::streamsize(data.size()));
}
// Files in the store named *.tmp: what a crash mid-write leaves behind.
inline int CountDebris(const std::string& store_dir) {
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

inline std::string MakePayload(uint64_t seed, size_t len) {
  std::string s(len, ' ');
  uint64_t x = seed, r = 0;
  for (size_t i = 0; i < len; i++) {
    if (i % 8 == 0) r = SplitMix(&x);
    s[i] = char('a' + (r >> ((i % 8) * 8)) % 26);
  }
  return s;
}

// FNV-1a over the other columns of an item row.
inline int64_t RowChecksum(int64_t id, int64_t writer, int64_t seq, std::string_view payload) {
  Fnv1a h;
  h.Mix(&id, sizeof id);
  h.Mix(&writer, sizeof writer);
  h.Mix(&seq, sizeof seq);
  h.Mix(payload.data(), payload.size());
  return int64_t(h.value());
}

constexpr int64_t kIdStride = 1000000000;

// SQL function row_checksum(id, writer, seq, payload), for bulk updates.
inline void RowChecksumFunc(sqlite3_context* ctx, int, sqlite3_value** argv) {
  const char* p = reinterpret_cast<const char*>(sqlite3_value_text(argv[3]));
  const int n = sqlite3_value_bytes(argv[3]);
  sqlite3_result_int64(ctx, RowChecksum(sqlite3_value_int64(argv[0]), sqlite3_value_int64(argv[1]),
                                        sqlite3_value_int64(argv[2]), std::string_view(p ? p : "", size_t(n))));
}
inline void RegisterRowChecksum(sqlite3* db) {
  sqlite3_create_function(db, "row_checksum", 4, SQLITE_UTF8 | SQLITE_DETERMINISTIC, nullptr, RowChecksumFunc,
                          nullptr, nullptr);
}

inline uint64_t Mix(uint64_t h, uint64_t v) {
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
inline std::string CheckState(sqlite3* db, DbState* out, bool integrity = true) {
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
inline void CreateDb(const std::string& path, const std::string& mode, int items, int pad_rows, int pad_half_bytes) {
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
inline int WriterTxn(sqlite3* db, int64_t w, uint64_t* rng, int64_t* committed, std::string* err) {
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

inline void SetPhase(Control* c, Phase p) {
  c->phase.store(p);
  c->gen.fetch_add(1);
}

// Waits until every writer has acknowledged the current phase.
inline bool WaitAcks(Control* c, int timeout_ms) {
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

inline int WriterMain(const std::string& path, bool wal, int w, Control* c) {
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

// Starts the kWriters writer processes on `path`, steered through `c`.
inline std::vector<pid_t> SpawnWriters(Children* kids, const std::string& path, const std::string& mode,
                                       Control* c) {
  std::vector<pid_t> writers;
  for (int w = 0; w < kWriters; w++) writers.push_back(kids->Spawn([=] { return WriterMain(path, mode == "wal", w, c); }));
  return writers;
}

// The writers' tests (one journal mode a parameter): a database of their
// own at `path` with the writer processes running on it, steered through
// `c`; children still running when the test ends are killed.
//   ASSERT_NO_FATAL_FAILURE(StartWriters(300, 400, 1500));
class WithWriters : public ::testing::TestWithParam<std::string> {
 protected:
  // CreateDb(path, GetParam(), ...), then SpawnWriters.
  void StartWriters(int items, int pad_rows, int pad_half_bytes) {
    ASSERT_NO_FATAL_FAILURE(CreateDb(path, GetParam(), items, pad_rows, pad_half_bytes));
    writers = SpawnWriters(&kids, path, GetParam(), &*c);
  }

  TempDir dir;
  const std::string path = dir / "live.db";
  Shared<Control> c;
  Children kids{path};
  std::vector<pid_t> writers;
};

// What the writers that failed reported, a line each ("" when none did).
inline std::string WriterFailures(const Control& c) {
  std::string m;
  for (int w = 0; w < kWriters; w++) {
    if (c.writer[w].failed.load()) m += std::string(c.writer[w].msg) + "\n";
  }
  return m;
}

// ---------------------------------------------------------------------------
// Snapshot helpers (parent side)

struct SnapRow {
  int64_t id, page_size, page_count, db_bytes;
  std::string label;
};

inline std::vector<SnapRow> ListSnapshots(sqlite3* db, std::string* err = nullptr) {
  std::vector<SnapRow> out;
  Stmt s(db, "SELECT id, label, page_size, page_count, db_bytes FROM snapshot_list ORDER BY id");
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out.push_back(SnapRow{s.Int(0), s.Int(2), s.Int(3), s.Int(4), s.Text(1)});
  if (rc != SQLITE_DONE && err) *err = s.Error();
  return out;
}

// restore_to snapshot `id` into the new file `out_path`, then checks it.
// Returns "" or the problem; *st is the restored database's state.
inline std::string RestoreToAndCheck(sqlite3* db, int64_t id, const std::string& out_path, DbState* st,
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

inline std::string ModeName(const ::testing::TestParamInfo<std::string>& info) { return info.param; }

}  // namespace snapshot_test
