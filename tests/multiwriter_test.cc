// Several writer processes and repeated snapshots at the same time, in both
// journal modes: every snapshot, restored into a new
// file, passes PRAGMA integrity_check and equals the database at one commit.
//
// Writers are processes (fork) that open the database through the snapshot
// VFS (file:<db>?vfs=snapshot), so that tracked, incremental and
// copy-on-write snapshots meet writers that mark pages, spill their cache
// (PRAGMA cache_size=10), split and merge b-tree pages, reuse the freelist,
// overflow pages, and move pages and truncate the file (auto_vacuum =
// INCREMENTAL with PRAGMA incremental_vacuum). Snapshots are taken all the
// while by a snapshot process, by the test's own process and by one of the
// writers, each through a connection on the snapshot VFS and through a plain
// one in turn.
//
// Data model, checked in every restored snapshot:
//   counter(id = 1, c, agg, n)  c += 1 in every transaction; agg and n are
//                               sum(rh(k, tag, v)) and count(*) of data
//   data(k, tag, v)             the rows; rh() is a 44-bit hash of a row's
//                               content, recomputed from the row at check time
//   ledger(c, agg, n, writer)   one row per commit: data's agg and n after the
//                               commit that set the counter to c
// A snapshot with counter c must have ledger rows 0..c exactly, ledger[c]
// must equal the checksum recomputed from its data rows, and every ledger row
// must equal the live database's (and what the writer that committed it
// recorded in shared memory): the snapshot is the database at commit c, and
// the history before it is that of the database.
//
// MULTIWRITER_SEED=<n> fixes the writers' random choices (the interleaving
// of processes is up to the scheduler); the seed used is printed.
#include <fcntl.h>
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
#include <vector>

#include "store/env.h"
#include "store/format.h"
#include "store/store.h"
#include "tests/process_util.h"
#include "tests/test_util.h"

namespace snapshot_test {
namespace {

// ---------------------------------------------------------------------------
// Processes, time, shared memory (as in concurrency_test.cc)

// Incompressible bytes, a function of the seed.
std::string Payload(uint64_t seed, size_t len) {
  std::string s(len, '\0');
  uint64_t x = seed, r = 0;
  for (size_t i = 0; i < len; i++) {
    if (i % 8 == 0) r = SplitMix(&x);
    s[i] = char(r >> ((i % 8) * 8));
  }
  return s;
}

// The row hash: 44 bits, so that the sum over every row (at most kKeySpace)
// cannot overflow SQLite's 64-bit sum().
int64_t RowHash(int64_t k, int64_t tag, const void* v, size_t n) {
  Fnv1a h;
  h.Mix(&k, sizeof k);
  h.Mix(&tag, sizeof tag);
  h.Mix(v, n);
  uint64_t x = h.value();
  return int64_t(SplitMix(&x) & ((uint64_t(1) << 44) - 1));
}
int64_t RowHash(int64_t k, int64_t tag, const std::string& v) { return RowHash(k, tag, v.data(), v.size()); }

// rh(k, tag, v) in SQL.
void RowHashFunc(sqlite3_context* ctx, int, sqlite3_value** argv) {
  const void* p = sqlite3_value_blob(argv[2]);
  const int n = sqlite3_value_bytes(argv[2]);
  sqlite3_result_int64(ctx, RowHash(sqlite3_value_int64(argv[0]), sqlite3_value_int64(argv[1]), p ? p : "",
                                    size_t(n)));
}
void RegisterRowHash(sqlite3* db) {
  sqlite3_create_function(db, "rh", 3, SQLITE_UTF8 | SQLITE_DETERMINISTIC, nullptr, RowHashFunc, nullptr, nullptr);
}

// Loads the extension into this process (which registers the snapshot VFS
// and, for every later connection, the functions).
bool LoadExtensionOnce(std::string* err) {
  sqlite3* db = nullptr;
  sqlite3_open(":memory:", &db);
  sqlite3_enable_load_extension(db, 1);
  char* e = nullptr;
  const int rc = sqlite3_load_extension(db, SNAPSHOT_EXTENSION_PATH, "sqlite3_snapshot_init", &e);
  if (rc != SQLITE_OK) *err = std::string("load extension: ") + (e ? e : "?");
  sqlite3_free(e);
  sqlite3_close(db);
  return rc == SQLITE_OK;
}

// A connection to `path`, through the snapshot VFS or the default one; the
// extension must already be loaded in this process.
sqlite3* Open(const std::string& path, bool vfs, std::string* err) {
  sqlite3* db = nullptr;
  const std::string name = vfs ? "file:" + path + "?vfs=snapshot" : path;
  const int rc =
      sqlite3_open_v2(name.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | (vfs ? SQLITE_OPEN_URI : 0),
                      nullptr);
  if (rc != SQLITE_OK) {
    *err = "open " + name + ": " + sqlite3_errstr(rc);
    sqlite3_close(db);
    return nullptr;
  }
  RegisterRowHash(db);
  ExecRc(db, "PRAGMA busy_timeout=10000");
  return db;
}

// ---------------------------------------------------------------------------
// Shared state

constexpr int kWriters = 3;
constexpr int kKilledWriter = 1;    // cache_size=10: it dies with a spilled cache
constexpr int kSnapshotWriter = 2;  // also takes snapshots through its own connection
constexpr int64_t kKeySpace = 40000;
constexpr int kMaxCommits = 1 << 17;
constexpr int kMaxSnaps = 1024;
constexpr int kMinRunMs = 3000, kMaxRunMs = 15000;
constexpr int kWantSnaps = 20;

enum Source { kInitial, kParentVfs, kParentPlain, kChildVfs, kChildPlain, kWriterVfs, kFinal, kSources };
const char* const kSourceName[kSources] = {"initial",       "parent-vfs", "parent-plain", "snapper-vfs",
                                           "snapper-plain", "writer-vfs", "final"};

struct CommitRecord {
  std::atomic<int> writer;  // 1 + writer index once recorded
  std::atomic<int64_t> agg, n;
};

struct SnapRecord {
  std::atomic<int> ready;
  int64_t id, c0, c1;  // the counter before and after the snapshot_backup call
  int64_t t0, t1;      // when the call began and returned (NowNs)
  int source;
  char tracking[160];  // snapshot_tracking() just before: the path it was to take
};

struct WriterSlot {
  std::atomic<int64_t> commits, large_commits, vacuums, busy_retries, snapshots;
  std::atomic<int> failed, in_large;
  char msg[512];
};

struct Control {
  std::atomic<int> phase;  // 0 wait, 1 run, 2 stop
  std::atomic<int> kill_armed;
  WriterSlot writer[kWriters];
  std::atomic<int> snapper_failed;
  char snapper_msg[512];
  std::atomic<int> n_snaps;
  SnapRecord snaps[kMaxSnaps];
  CommitRecord commits[kMaxCommits];
};

// One snapshot_backup() through `db`, recorded with the counter values
// around it. Returns "" or the error. Three processes take snapshots here, and
// one waits for another's for as long as its busy_timeout (10 s); under
// ThreadSanitizer a snapshot beside the writers can take longer than that, so
// the busy error users are told to retry on is retried, for up to two minutes.
std::string TakeSnapshot(sqlite3* db, int source, Control* c) {
  std::string err;
  int64_t c0, c1, id = 0;
  const std::string tracking = Query(db, "SELECT snapshot_tracking()");
  int64_t t0 = 0;
  const int64_t give_up = NowMs() + 120000;
  for (;;) {
    if (!QueryI64(db, "SELECT c FROM counter", &c0, &err)) return err;
    t0 = NowNs();
    Stmt backup(db, Sql("SELECT snapshot_backup(%Q)", kSourceName[source]));
    const int rc = backup.Step();
    if (rc == SQLITE_ROW) {
      id = backup.Int(0);
      break;
    }
    if (!IsBusy(rc) || NowMs() > give_up) return "snapshot_backup: " + backup.Error();
    SleepMs(50);
  }
  const int64_t t1 = NowNs();
  if (!QueryI64(db, "SELECT c FROM counter", &c1, &err)) return err;
  const int i = c->n_snaps.fetch_add(1);
  if (i < kMaxSnaps) {
    SnapRecord& r = c->snaps[i];
    r.id = id;
    r.c0 = c0;
    r.c1 = c1;
    r.t0 = t0;
    r.t1 = t1;
    r.source = source;
    SetMsg(r.tracking, sizeof r.tracking, tracking);
    r.ready.store(1);
  }
  return "";
}

// ---------------------------------------------------------------------------
// Writers

// One transaction of writer w. SQLITE_OK when committed, a busy code to
// retry (after ROLLBACK), or an error with *err.
int WriterTxn(sqlite3* db, int w, bool large, bool announce_large, uint64_t* rng, Control* c, std::string* err) {
  int rc = ExecRc(db, "BEGIN IMMEDIATE", err);
  if (rc != SQLITE_OK) return rc;
  auto fail = [&](int code, const std::string& what) {
    *err = what;
    ExecRc(db, "ROLLBACK");
    return code == SQLITE_OK || code == SQLITE_ROW || code == SQLITE_DONE ? SQLITE_ERROR : code;
  };
  int64_t counter, agg, n;
  {
    Stmt s(db, "SELECT c, agg, n FROM counter WHERE id = 1");
    if ((rc = s.Step()) != SQLITE_ROW) return fail(rc, "counter: " + s.Error());
    counter = s.Int(0);
    agg = s.Int(1);
    n = s.Int(2);
  }
  Stmt get(db, "SELECT rh(k, tag, v) FROM data WHERE k = ?1");
  Stmt put(db, "INSERT OR REPLACE INTO data(k, tag, v) VALUES(?1, ?2, ?3)");
  Stmt next(db, "SELECT k, rh(k, tag, v) FROM data WHERE k >= ?1 ORDER BY k LIMIT 1");
  Stmt upd(db, "UPDATE data SET tag = ?2, v = ?3 WHERE k = ?1");
  Stmt range(db, "SELECT coalesce(sum(rh(k, tag, v)), 0), count(*) FROM data WHERE k BETWEEN ?1 AND ?2");
  Stmt del(db, "DELETE FROM data WHERE k BETWEEN ?1 AND ?2");
  const int ops = large ? 150 + int(SplitMix(rng) % 250) : 1 + int(SplitMix(rng) % 6);
  auto new_value = [&](int64_t* tag, std::string* v) {
    *tag = int64_t(SplitMix(rng) % 97);
    // Mostly small rows; some span overflow pages.
    const size_t len = SplitMix(rng) % 30 == 0 ? 2000 + size_t(SplitMix(rng) % 7000) : 20 + size_t(SplitMix(rng) % 700);
    *v = Payload(SplitMix(rng), len);
  };
  for (int i = 0; i < ops; i++) {
    if (announce_large && i == ops / 2) c->writer[w].in_large.store(1);
    // Keep the table around 5000 rows: inserts when below, deletes above.
    const int p_insert = n < 3000 ? 70 : n > 7000 ? 15 : 45;
    const int op = int(SplitMix(rng) % 100);
    if (op < p_insert) {
      const int64_t k = 1 + int64_t(SplitMix(rng) % kKeySpace);
      int64_t tag;
      std::string v;
      new_value(&tag, &v);
      get.Reset();
      get.Bind(1, k);
      rc = get.Step();
      if (rc == SQLITE_ROW) {
        agg -= get.Int(0);
        n--;
      } else if (rc != SQLITE_DONE) {
        return fail(rc, "get: " + get.Error());
      }
      put.Reset();
      put.Bind(1, k).Bind(2, tag).BindBlob(3, v);
      if ((rc = put.Step()) != SQLITE_DONE) return fail(rc, "insert: " + put.Error());
      agg += RowHash(k, tag, v);
      n++;
    } else if (op < p_insert + 30) {
      next.Reset();
      next.Bind(1, 1 + int64_t(SplitMix(rng) % kKeySpace));
      rc = next.Step();
      if (rc == SQLITE_DONE) continue;
      if (rc != SQLITE_ROW) return fail(rc, "next: " + next.Error());
      const int64_t k = next.Int(0), old = next.Int(1);
      int64_t tag;
      std::string v;
      new_value(&tag, &v);
      upd.Reset();
      upd.Bind(1, k).Bind(2, tag).BindBlob(3, v);
      if ((rc = upd.Step()) != SQLITE_DONE) return fail(rc, "update: " + upd.Error());
      agg += RowHash(k, tag, v) - old;
    } else {
      // A range: in large transactions wide enough to empty whole pages.
      const int64_t a = 1 + int64_t(SplitMix(rng) % kKeySpace);
      const int64_t b = a + int64_t(SplitMix(rng) % (large ? 1500 : 40));
      range.Reset();
      range.Bind(1, a).Bind(2, b);
      if ((rc = range.Step()) != SQLITE_ROW) return fail(rc, "range: " + range.Error());
      const int64_t sum = range.Int(0), cnt = range.Int(1);
      del.Reset();
      del.Bind(1, a).Bind(2, b);
      if ((rc = del.Step()) != SQLITE_DONE) return fail(rc, "delete: " + del.Error());
      if (sqlite3_changes(db) != cnt) return fail(SQLITE_ERROR, "delete removed an unexpected number of rows");
      agg -= sum;
      n -= cnt;
    }
  }
  // Now and then give free pages back: pages move, the file shrinks.
  const bool vacuum = SplitMix(rng) % 10 == 0;
  if (vacuum && (rc = ExecRc(db, Sql("PRAGMA incremental_vacuum(%d)", 1 + int(SplitMix(rng) % 64)), err)) != SQLITE_OK) {
    return fail(rc, *err);
  }
  {
    Stmt u(db, "UPDATE counter SET c = ?1, agg = ?2, n = ?3 WHERE id = 1");
    u.Bind(1, counter + 1).Bind(2, agg).Bind(3, n);
    if ((rc = u.Step()) != SQLITE_DONE) return fail(rc, "counter: " + u.Error());
    Stmt l(db, "INSERT INTO ledger(c, agg, n, writer) VALUES(?1, ?2, ?3, ?4)");
    l.Bind(1, counter + 1).Bind(2, agg).Bind(3, n).Bind(4, w + 1);
    if ((rc = l.Step()) != SQLITE_DONE) return fail(rc, "ledger: " + l.Error());
  }
  // COMMIT can be busy in rollback mode (a snapshot holds SHARED); the
  // transaction stays open, so retry it.
  const int64_t deadline = NowMs() + 60000;
  while ((rc = ExecRc(db, "COMMIT", err)) != SQLITE_OK) {
    if (!IsBusy(rc) || NowMs() > deadline) return fail(rc, "COMMIT: " + *err);
    SleepMs(1);
  }
  if (counter + 1 < kMaxCommits) {
    CommitRecord& r = c->commits[counter + 1];
    r.agg.store(agg);
    r.n.store(n);
    r.writer.store(w + 1);
  }
  WriterSlot& me = c->writer[w];
  me.commits.fetch_add(1);
  if (large) me.large_commits.fetch_add(1);
  if (vacuum) me.vacuums.fetch_add(1);
  return SQLITE_OK;
}

int WriterMain(const std::string& path, bool wal, int w, uint64_t seed, Control* c) {
  WriterSlot& me = c->writer[w];
  auto die = [&](const std::string& m) {
    return ReportChildFailure(me.msg, me.failed, "writer " + std::to_string(w) + ": " + m);
  };
  std::string err;
  if (!LoadExtensionOnce(&err)) return die(err);
  sqlite3* db = Open(path, /*vfs=*/true, &err);
  if (db == nullptr) return die(err);
  // synchronous=OFF in rollback mode: writers hold the lock briefly (process
  // crashes need no fsync). Odd writers spill their cache in large
  // transactions; in WAL mode one checkpoints often.
  ExecRc(db, std::string("PRAGMA synchronous=") + (wal ? "NORMAL" : "OFF"));
  if (w % 2 == 1) ExecRc(db, "PRAGMA cache_size=10");
  if (wal && w == 2) ExecRc(db, "PRAGMA wal_autocheckpoint=50");
  uint64_t rng = seed * 0x2545f4914f6cdd1dull + uint64_t(w + 1) * 0x9e3779b97f4a7c15ull;
  while (c->phase.load() == 0) SleepMs(1);
  int64_t txns = 0;
  while (c->phase.load() == 1) {
    const bool announce = w == kKilledWriter && c->kill_armed.load() != 0;
    const bool large = announce || SplitMix(&rng) % 12 == 0;
    const uint64_t saved = rng;
    const int64_t t0 = NowMs();
    for (;;) {
      const int rc = WriterTxn(db, w, large, announce, &rng, c, &err);
      if (rc == SQLITE_OK) break;
      if (!IsBusy(rc)) return die("transaction failed: " + err);
      if (NowMs() - t0 > 60000) return die("busy for 60 s: " + err);
      me.busy_retries.fetch_add(1);
      rng = saved;  // the same transaction again
      SleepMs(1);
    }
    txns++;
    if (w == kSnapshotWriter && txns % 80 == 0) {
      const std::string e = TakeSnapshot(db, kWriterVfs, c);
      if (!e.empty()) return die("snapshot: " + e);
      me.snapshots.fetch_add(1);
    }
    // Think time, so that the writer that just committed does not starve
    // the others asleep in SQLite's busy handler.
    SleepMs(0.2 + double(SplitMix(&rng) % 1000) / 1000.0);
  }
  if (sqlite3_close(db) != SQLITE_OK) return die("close failed");
  return 0;
}

// ---------------------------------------------------------------------------
// Checking a database

struct LedgerRow {
  int64_t agg, n, writer;
};

struct DbCheck {
  int64_t counter = -1, agg = 0, n = 0;
  std::vector<LedgerRow> ledger;  // index = counter value
};

// integrity_check, the counter row against the rows, the ledger against the
// counter. Returns "" or what is wrong.
std::string CheckDb(sqlite3* db, DbCheck* out) {
  std::string err;
  if (ExecRc(db, "BEGIN", &err) != SQLITE_OK) return err;
  struct End {
    sqlite3* db;
    ~End() { ExecRc(db, "COMMIT"); }
  } end{db};
  {
    Stmt ic(db, "PRAGMA integrity_check");
    if (ic.Step() != SQLITE_ROW) return "integrity_check failed to run: " + ic.Error();
    std::string all = ic.Text(0);
    if (all != "ok") {
      for (int i = 0; i < 8 && ic.Step() == SQLITE_ROW; i++) all += "; " + ic.Text(0);
      return "integrity_check: " + all;
    }
  }
  {
    Stmt s(db, "SELECT c, agg, n FROM counter WHERE id = 1");
    if (s.Step() != SQLITE_ROW) return "no counter row: " + s.Error();
    out->counter = s.Int(0);
    out->agg = s.Int(1);
    out->n = s.Int(2);
  }
  const std::string at = " (counter " + std::to_string(out->counter) + ")";
  {
    Stmt s(db, "SELECT coalesce(sum(rh(k, tag, v)), 0), count(*) FROM data");
    if (s.Step() != SQLITE_ROW) return "summing data: " + s.Error();
    if (s.Int(0) != out->agg || s.Int(1) != out->n) {
      return "data has checksum " + std::to_string(s.Int(0)) + " over " + std::to_string(s.Int(1)) +
             " rows, the counter row says " + std::to_string(out->agg) + " over " + std::to_string(out->n) + at;
    }
  }
  {
    Stmt s(db, "SELECT c, agg, n, writer FROM ledger ORDER BY c");
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) {
      if (s.Int(0) != int64_t(out->ledger.size())) {
        return "ledger row " + std::to_string(s.Int(0)) + " follows row " + std::to_string(out->ledger.size() - 1) + at;
      }
      out->ledger.push_back(LedgerRow{s.Int(1), s.Int(2), s.Int(3)});
    }
    if (rc != SQLITE_DONE) return "reading ledger: " + s.Error();
  }
  if (int64_t(out->ledger.size()) != out->counter + 1) {
    return "ledger has rows 0.." + std::to_string(int64_t(out->ledger.size()) - 1) + at;
  }
  const LedgerRow& last = out->ledger.back();
  if (last.agg != out->agg || last.n != out->n) {
    return "the ledger's checksum for this counter is " + std::to_string(last.agg) + " over " +
           std::to_string(last.n) + " rows, the data's " + std::to_string(out->agg) + " over " +
           std::to_string(out->n) + at;
  }
  return "";
}

// Creates the database through the snapshot VFS: ~5000 rows, counter 0.
void CreateDb(const std::string& path, const std::string& mode, uint64_t seed) {
  std::string err;
  sqlite3* db = Open(path, /*vfs=*/true, &err);
  ASSERT_NE(db, nullptr) << err;
  ASSERT_EQ("", Exec(db, "PRAGMA auto_vacuum=INCREMENTAL; PRAGMA journal_mode=" + mode));
  ASSERT_EQ(mode == "WAL" ? "wal" : "delete", Query(db, "PRAGMA journal_mode"));
  ASSERT_EQ("", Exec(db,
                     "BEGIN;"
                     "CREATE TABLE counter(id INTEGER PRIMARY KEY CHECK (id = 1), c INTEGER NOT NULL,"
                     "  agg INTEGER NOT NULL, n INTEGER NOT NULL);"
                     "CREATE TABLE data(k INTEGER PRIMARY KEY, tag INTEGER NOT NULL, v BLOB NOT NULL);"
                     "CREATE INDEX data_tag ON data(tag);"
                     "CREATE TABLE ledger(c INTEGER PRIMARY KEY, agg INTEGER NOT NULL, n INTEGER NOT NULL,"
                     "  writer INTEGER NOT NULL);"));
  uint64_t rng = seed;
  int64_t agg = 0, n = 0;
  {
    Stmt ins(db, "INSERT INTO data(k, tag, v) VALUES(?1, ?2, ?3)");
    for (int64_t k = 1; k <= kKeySpace; k += 8) {
      const int64_t tag = int64_t(SplitMix(&rng) % 97);
      const std::string v = Payload(SplitMix(&rng), 20 + size_t(SplitMix(&rng) % 700));
      ins.Reset();
      ins.Bind(1, k).Bind(2, tag).BindBlob(3, v);
      ASSERT_EQ(SQLITE_DONE, ins.Step()) << ins.Error();
      agg += RowHash(k, tag, v);
      n++;
    }
  }
  ASSERT_EQ("", Exec(db, Sql("INSERT INTO counter VALUES(1, 0, %lld, %lld);"
                             "INSERT INTO ledger VALUES(0, %lld, %lld, 0); COMMIT",
                             (long long)agg, (long long)n, (long long)agg, (long long)n)));
  DbCheck check;
  ASSERT_EQ("", CheckDb(db, &check));
  ASSERT_EQ(SQLITE_OK, sqlite3_close(db)) << "a statement was left unfinalized";
}

uint64_t TestSeed() {
  const char* s = getenv("MULTIWRITER_SEED");
  if (s && *s) return std::strtoull(s, nullptr, 10);
  return uint64_t(time(nullptr)) ^ (uint64_t(getpid()) << 20);
}

// ---------------------------------------------------------------------------
// The test

struct Param {
  std::string mode;  // DELETE or WAL
  bool kill_writer;
};

void PrintTo(const Param& p, std::ostream* os) { *os << p.mode << (p.kill_writer ? ", a writer killed" : ""); }

class MultiWriter : public ::testing::TestWithParam<Param> {};

TEST_P(MultiWriter, EverySnapshotIsTheDatabaseAtOneCommit) {
  const std::string mode = GetParam().mode;
  const bool kill_writer = GetParam().kill_writer;
  const uint64_t seed = TestSeed();
  std::printf("[%s%s] MULTIWRITER_SEED=%llu\n", mode.c_str(), kill_writer ? " kill" : "", (unsigned long long)seed);
  RecordProperty("seed", std::to_string(seed));
  TempDir dir;
  const std::string path = dir / "live.db";
  std::string err;
  ASSERT_TRUE(LoadExtensionOnce(&err)) << err;
  ASSERT_NO_FATAL_FAILURE(CreateDb(path, mode, seed));
  const int64_t t_start = NowMs();
  Shared<Control> c;
  {
    // The first snapshot starts the store, before the others race (two
    // processes starting a store at once is MultiWriterStoreStart's case).
    sqlite3* db = Open(path, /*vfs=*/true, &err);
    ASSERT_NE(db, nullptr) << err;
    ASSERT_EQ("", TakeSnapshot(db, kInitial, &*c));
    ASSERT_EQ(SQLITE_OK, sqlite3_close(db));
  }

  // Every child is forked before this process opens a connection again.
  Children kids;
  std::vector<pid_t> writers;
  for (int w = 0; w < kWriters; w++) {
    writers.push_back(kids.Spawn([&, w] { return WriterMain(path, mode == "WAL", w, seed, &*c); }));
  }
  // The snapshot process: through a VFS connection and a plain one in turn.
  const pid_t snapper = kids.Spawn([&]() -> int {
    auto die = [&](const std::string& m) { return ReportChildFailure(c->snapper_msg, c->snapper_failed, m); };
    std::string e;
    if (!LoadExtensionOnce(&e)) return die(e);
    sqlite3* vdb = Open(path, true, &e);
    if (vdb == nullptr) return die(e);
    sqlite3* pdb = Open(path, false, &e);
    if (pdb == nullptr) return die(e);
    while (c->phase.load() == 0) SleepMs(1);
    for (int i = 0; c->phase.load() == 1; i++) {
      const bool via_vfs = i % 2 == 0;
      e = TakeSnapshot(via_vfs ? vdb : pdb, via_vfs ? kChildVfs : kChildPlain, &*c);
      if (!e.empty()) return die(std::string(kSourceName[via_vfs ? kChildVfs : kChildPlain]) + ": " + e);
      SleepMs(80 + i % 5 * 20);
    }
    if (sqlite3_close(vdb) != SQLITE_OK || sqlite3_close(pdb) != SQLITE_OK) return die("close failed");
    return 0;
  });

  sqlite3* vdb = Open(path, true, &err);
  ASSERT_NE(vdb, nullptr) << err;
  sqlite3* pdb = Open(path, false, &err);
  ASSERT_NE(pdb, nullptr) << err;
  struct Closer {
    sqlite3* a;
    sqlite3* b;
    ~Closer() {
      sqlite3_close(a);
      sqlite3_close(b);
    }
  } closer{vdb, pdb};

  auto failed = [&] {
    for (int w = 0; w < kWriters; w++) {
      if (c->writer[w].failed.load()) return true;
    }
    return c->snapper_failed.load() != 0;
  };
  c->phase.store(1);
  const int64_t t_run = NowMs();
  bool killed = false;
  int64_t commits_at_kill = 0, killed_at = 0;
  for (int i = 0;; i++) {
    const int64_t elapsed = NowMs() - t_run;
    if (failed()) break;
    if (kill_writer && !killed && elapsed > kMinRunMs * 2 / 5) {
      // Kill the writer in the middle of a large transaction (cache spilled
      // to the file or the WAL, in rollback mode behind a hot journal).
      c->kill_armed.store(1);
      const int64_t deadline = NowMs() + 10000;
      while (!c->writer[kKilledWriter].in_large.load() && !failed() && NowMs() < deadline) SleepMs(0.05);
      ASSERT_TRUE(c->writer[kKilledWriter].in_large.load()) << "the writer to kill never began a large transaction";
      ASSERT_EQ(128 + SIGKILL, kids.Kill(writers[kKilledWriter]));
      killed = true;
      killed_at = NowNs();
      commits_at_kill = c->writer[kKilledWriter].commits.load();
      std::printf("[%s kill] writer %d killed mid-transaction after %lld commits; %s\n", mode.c_str(), kKilledWriter,
                  (long long)commits_at_kill,
                  FileSize(path + "-journal") > 0 ? "a hot journal is left" : "no journal file left");
    }
    const Source src = i % 2 == 0 ? kParentVfs : kParentPlain;
    const std::string e = TakeSnapshot(src == kParentVfs ? vdb : pdb, src, &*c);
    ASSERT_EQ("", e) << kSourceName[src];
    bool enough = elapsed >= kMinRunMs && c->n_snaps.load() >= kWantSnaps && (!kill_writer || killed);
    for (int w = 0; w < kWriters; w++) {
      if (!(kill_writer && w == kKilledWriter)) enough = enough && c->writer[w].commits.load() >= 30;
    }
    if (enough || elapsed > kMaxRunMs) break;
    SleepMs(100 + i % 4 * 20);
  }
  c->phase.store(2);
  for (int w = 0; w < kWriters; w++) {
    if (kill_writer && w == kKilledWriter) continue;
    EXPECT_EQ(0, kids.Wait(writers[w])) << c->writer[w].msg;
  }
  EXPECT_EQ(0, kids.Wait(snapper)) << c->snapper_msg;
  for (int w = 0; w < kWriters; w++) ASSERT_EQ(0, c->writer[w].failed.load()) << c->writer[w].msg;
  ASSERT_EQ(0, c->snapper_failed.load()) << c->snapper_msg;
  const int64_t run_ms = NowMs() - t_run;

  // One more snapshot, of the final state, through the VFS.
  ASSERT_EQ("", TakeSnapshot(vdb, kFinal, &*c));

  DbCheck live;
  ASSERT_EQ("", CheckDb(vdb, &live)) << "the live database";
  int64_t total_commits = 0;
  for (int w = 0; w < kWriters; w++) {
    const WriterSlot& s = c->writer[w];
    total_commits += s.commits.load();
    std::printf("[%s%s] writer %d: %lld commits (%lld large, %lld with incremental_vacuum), %lld busy retries, "
                "%lld snapshots\n",
                mode.c_str(), kill_writer ? " kill" : "", w, (long long)s.commits.load(),
                (long long)s.large_commits.load(), (long long)s.vacuums.load(), (long long)s.busy_retries.load(),
                (long long)s.snapshots.load());
  }
  // A killed writer may have committed without counting it.
  EXPECT_GE(live.counter, total_commits);
  EXPECT_LE(live.counter, total_commits + (kill_writer ? 1 : 0));
  // What each writer recorded after its commit is the live ledger.
  for (int64_t i = 1; i <= live.counter && i < kMaxCommits; i++) {
    const CommitRecord& r = c->commits[i];
    const LedgerRow& l = live.ledger[size_t(i)];
    if (r.writer.load() == 0) {
      EXPECT_TRUE(kill_writer && l.writer == kKilledWriter + 1) << "commit " << i << " was not recorded";
      continue;
    }
    EXPECT_EQ(r.writer.load(), l.writer) << "commit " << i;
    EXPECT_EQ(r.agg.load(), l.agg) << "commit " << i;
    EXPECT_EQ(r.n.load(), l.n) << "commit " << i;
  }
  EXPECT_EQ("ok", Query(vdb, "SELECT snapshot_verify()"));

  // Every snapshot, restored into a new file, is the database at one commit.
  std::map<int64_t, const SnapRecord*> by_id;
  const int n_snaps = std::min(c->n_snaps.load(), kMaxSnaps);
  for (int i = 0; i < n_snaps; i++) {
    ASSERT_EQ(1, c->snaps[i].ready.load());
    ASSERT_TRUE(by_id.emplace(c->snaps[i].id, &c->snaps[i]).second) << "snapshot id " << c->snaps[i].id << " twice";
  }
  struct Listed {
    int64_t id, db_bytes;
  };
  std::vector<Listed> list;
  {
    Stmt s(vdb, "SELECT id, db_bytes FROM snapshot_list ORDER BY id");
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) list.push_back(Listed{s.Int(0), s.Int(1)});
    ASSERT_EQ(SQLITE_DONE, rc) << s.Error();
  }
  ASSERT_EQ(size_t(n_snaps), list.size()) << "snapshot_list does not hold every snapshot taken";
  int64_t bytes_checked = 0;
  int by_source[kSources] = {};
  struct Checked {
    int64_t id, counter;
    const SnapRecord* r;
  };
  std::vector<Checked> checked;  // in id order
  for (const Listed& s : list) {
    SCOPED_TRACE("snapshot " + std::to_string(s.id));
    auto rec = by_id.find(s.id);
    ASSERT_NE(rec, by_id.end()) << "snapshot_list has a snapshot nobody took";
    const SnapRecord& r = *rec->second;
    by_source[r.source]++;
    const std::string out = dir / ("snap-" + std::to_string(s.id) + ".db");
    ASSERT_EQ(std::to_string(s.id), Query(vdb, Sql("SELECT snapshot_restore_to(%Q, %lld)", out.c_str(), (long long)s.id)));
    EXPECT_EQ(s.db_bytes, FileSize(out)) << "the restored file is not the size snapshot_list gives";
    bytes_checked += FileSize(out);
    sqlite3* rdb = Open(out, false, &err);
    ASSERT_NE(rdb, nullptr) << err;
    DbCheck snap;
    const std::string bad = CheckDb(rdb, &snap);
    sqlite3_close(rdb);
    ASSERT_EQ("", bad) << "taken by " << kSourceName[r.source] << " between counters " << r.c0 << " and " << r.c1;
    // Its history is the database's history up to its commit.
    ASSERT_LE(snap.counter, live.counter);
    for (size_t i = 0; i < snap.ledger.size(); i++) {
      const LedgerRow& a = snap.ledger[i];
      const LedgerRow& b = live.ledger[i];
      ASSERT_TRUE(a.agg == b.agg && a.n == b.n && a.writer == b.writer)
          << "ledger row " << i << " of the snapshot (counter " << snap.counter
          << ") differs from the live database's: the snapshot is not a state the database was in";
    }
    EXPECT_LE(r.c0, snap.counter) << "older than the database when " << kSourceName[r.source] << " began the backup";
    EXPECT_GE(r.c1, snap.counter) << "newer than the database after " << kSourceName[r.source] << "'s backup";
    checked.push_back(Checked{s.id, snap.counter, &r});
    unlink(out.c_str());
  }
  ASSERT_FALSE(checked.empty());
  EXPECT_EQ(live.counter, checked.back().counter) << "the final snapshot is not the final state";
  EXPECT_GE(checked.size(), size_t(10)) << "too few snapshots to mean anything";
  std::set<int64_t> distinct;
  for (const Checked& x : checked) distinct.insert(x.counter);
  EXPECT_GE(distinct.size(), size_t(5)) << "the snapshots saw too few distinct commits";
  if (kill_writer) {
    int after_kill = 0;
    for (const Checked& x : checked) after_kill += x.r->t0 > killed_at && x.r->source != kFinal;
    EXPECT_GE(after_kill, 3) << "too few snapshots were taken while writers went on after the kill";
  }

  // Order. A snapshot whose backup call began after another's had returned
  // is of the same or a later commit (so the successive snapshots of one
  // process never go back), whichever process took them.
  for (const Checked& a : checked) {
    for (const Checked& b : checked) {
      if (a.r->t1 < b.r->t0) {
        EXPECT_GE(b.counter, a.counter) << "snapshot " << b.id << " (" << kSourceName[b.r->source] << ", counter "
                                        << b.counter << ") was begun after snapshot " << a.id << " ("
                                        << kSourceName[a.r->source] << ", counter " << a.counter
                                        << ") had returned, yet is of an older commit";
      }
    }
  }
  // By id. A tracked snapshot (ext/tracked_capture.h) holds the tracking
  // file's snapshot lock from its pin to its commit, so tracked snapshots are
  // numbered in commit order. One that falls back to a plain read
  // transaction pins first and gets its id from the store lock afterwards:
  // in rollback mode its SHARED lock keeps writers out until then, but in
  // WAL mode writers go on committing, and of two backups polling for the
  // store lock the one that pinned the later commit may win, so that the
  // highest id (what snapshot_restore() restores by default) is not the
  // latest state. Seen before tracked snapshots existed; counted and shown
  // in WAL mode, a failure in rollback mode.
  int inversions = 0;
  for (size_t i = 1; i < checked.size(); i++) {
    const Checked& a = checked[i - 1];
    const Checked& b = checked[i];
    if (b.counter >= a.counter) continue;
    inversions++;
    const std::string what = "snapshot " + std::to_string(b.id) + " (" + kSourceName[b.r->source] + ", counter " +
                             std::to_string(b.counter) + ") is of an older commit than snapshot " +
                             std::to_string(a.id) + " (" + kSourceName[a.r->source] + ", counter " +
                             std::to_string(a.counter) + ")";
    if (mode == "WAL") {
      std::printf("[%s%s] ids out of commit order: %s; the calls overlapped\n", mode.c_str(),
                  kill_writer ? " kill" : "", what.c_str());
    } else {
      ADD_FAILURE() << what << ": in rollback mode ids follow commits";
    }
  }
  // Which capture path the snapshots were to take: what snapshot_tracking()
  // said just before each (other snapshots may have run in between).
  std::map<std::string, std::vector<std::string>> paths;
  for (const Checked& x : checked) {
    std::string t = x.r->tracking;
    if (t.rfind("tracked:", 0) == 0) t = "tracked";
    paths[t].push_back(std::to_string(x.id) + " " + kSourceName[x.r->source]);
  }
  for (const auto& p : paths) {
    std::string which;
    for (size_t i = 0; i < p.second.size() && i < 6; i++) which += (i ? ", " : "") + p.second[i];
    std::printf("[%s%s] %3zu snapshots after snapshot_tracking() said %s (%s%s)\n", mode.c_str(), kill_writer ? " kill" : "", p.second.size(),
                p.first.c_str(), which.c_str(), p.second.size() > 6 ? ", ..." : "");
  }
  std::string sources;
  for (int s = 0; s < kSources; s++) sources += std::string(s ? ", " : "") + kSourceName[s] + " " + std::to_string(by_source[s]);
  std::printf("[%s%s] %zu snapshots (%s) of %zu distinct commits out of %lld in %lld ms, %d numbered out of "
              "commit order; %lld MB restored and checked; whole test %lld ms\n",
              mode.c_str(), kill_writer ? " kill" : "", checked.size(), sources.c_str(), distinct.size(),
              (long long)live.counter, (long long)run_ms, inversions, (long long)(bytes_checked >> 20),
              (long long)(NowMs() - t_start));
}

INSTANTIATE_TEST_SUITE_P(Modes, MultiWriter,
                         ::testing::Values(Param{"DELETE", false}, Param{"WAL", false}, Param{"DELETE", true},
                                           Param{"WAL", true}),
                         [](const ::testing::TestParamInfo<Param>& i) {
                           return i.param.mode + (i.param.kill_writer ? "_KillWriter" : "");
                         });

// ---------------------------------------------------------------------------
// Two processes taking a database's first snapshot at the same time: each
// must succeed, whichever starts the store. The main test above has its
// first snapshot taken alone for that reason.
//
// Store::Init looks, then acts, before it holds the store's lock: a process
// that found no directory and then found that another process had just made
// it answered "snapshot store ... is not a directory"; one that found no
// STORE file and then listed the directory after another process started
// the store there answered "the directory ... is not empty and holds no
// snapshot store". Seen once each in runs of this file (four processes, at
// the first snapshot). The tests put the other process's action exactly in
// that window, through the store's Env.

// Runs `other` (what another process does) once, right after Store::Open
// first looked at `path` with IsDirectory or FileExists.
class RacingEnv : public snapshot::EnvWrapper {
 public:
  RacingEnv(std::string path, std::function<void()> other)
      : EnvWrapper(snapshot::Env::Default()), path_(std::move(path)), other_(std::move(other)) {}
  bool IsDirectory(const std::string& p) override {
    const bool r = target()->IsDirectory(p);
    Race(p);
    return r;
  }
  bool FileExists(const std::string& p) override {
    const bool r = target()->FileExists(p);
    Race(p);
    return r;
  }

 private:
  void Race(const std::string& p) {
    if (p != path_ || !other_) return;
    std::function<void()> o = std::move(other_);
    other_ = nullptr;
    o();
  }
  std::string path_;
  std::function<void()> other_;
};

// What snapshot_backup() asks for when it starts the default store.
snapshot::StoreOptions FirstBackupOptions(const std::string& dir, snapshot::Env* env) {
  snapshot::StoreOptions o;
  o.env = env;
  o.dir = dir;
  o.db_name = "app.db";
  o.create_if_missing = true;
  o.exclusive = true;
  o.lock_timeout_ms = 5000;
  return o;
}

TEST(MultiWriterStoreStart, DirectoryMadeByAnotherProcessMeanwhile) {
  TempDir tmp;
  const std::string dir = tmp / "app.db-snapshots";
  RacingEnv env(dir, [&] { ASSERT_TRUE(snapshot::Env::Default()->CreateDir(dir, 0700).ok()); });
  std::unique_ptr<snapshot::Store> store;
  const snapshot::Status s = snapshot::Store::Open(FirstBackupOptions(dir, &env), &store);
  EXPECT_TRUE(s.ok()) << s.message();
}

TEST(MultiWriterStoreStart, StoreStartedByAnotherProcessMeanwhile) {
  TempDir tmp;
  const std::string dir = tmp / "app.db-snapshots";
  ASSERT_TRUE(snapshot::Env::Default()->CreateDir(dir, 0700).ok());
  RacingEnv env(snapshot::JoinPath(dir, snapshot::kStoreFileName), [&] {
    std::unique_ptr<snapshot::Store> other;  // starts the store, then lets go of its lock
    const snapshot::Status s = snapshot::Store::Open(FirstBackupOptions(dir, snapshot::Env::Default()), &other);
    ASSERT_TRUE(s.ok()) << s.message();
  });
  std::unique_ptr<snapshot::Store> store;
  const snapshot::Status s = snapshot::Store::Open(FirstBackupOptions(dir, &env), &store);
  EXPECT_TRUE(s.ok()) << s.message();
}

}  // namespace
}  // namespace snapshot_test
