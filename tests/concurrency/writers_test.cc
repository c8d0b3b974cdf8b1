// Snapshots taken while three writer processes commit: every snapshot is the
// database at exactly one commit.

#include "tests/concurrency/concurrency_util.h"

namespace snapshot_test {
namespace {

class ConcurrencyWriters : public WithWriters {};

TEST_P(ConcurrencyWriters, EverySnapshotIsOneCommitWhileThreeWritersRun) {
  const std::string mode = GetParam();
  // ~7 MB, so that a capture takes long enough to overlap many commits.
  ASSERT_NO_FATAL_FAILURE(StartWriters(300, 1800, 1800));
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
  // under ThreadSanitizer a WAL-mode backup, reading at background priority
  // beside three busy writers (each now with the automatic snapshots'
  // thread) on two cores, took 6.5 s, so it gets longer to collect them.
#if defined(__SANITIZE_THREAD__)
  const int64_t give_up_ms = 90000;
#else
  const int64_t give_up_ms = 30000;
#endif
  while (NowMs() - start < 3500 ||
         ((c->n_backups.load() < 6 || c->n_verifies.load() < 3) && NowMs() - start < give_up_ms)) {
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

}  // namespace
}  // namespace snapshot_test
