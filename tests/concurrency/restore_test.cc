// Restore while other processes keep connections open (and write): they see
// the restored database.

#include "tests/concurrency/concurrency_util.h"

namespace snapshot_test {
namespace {

class ConcurrencyRestore : public WithWriters {};

TEST_P(ConcurrencyRestore, WritersWithOpenConnectionsSeeTheRestoredDatabase) {
  const std::string mode = GetParam();
  ASSERT_NO_FATAL_FAILURE(StartWriters(300, 400, 1500));
  // Every child is forked: only now may the parent open connections.
  std::string err;
  sqlite3* db = OpenConn(path, true, &err);
  ASSERT_NE(db, nullptr) << err;
  CloseAtExit closer(db);
  ASSERT_EQ("20000", Query(db, "SELECT snapshot_config('busy_timeout', 20000)"));
  ASSERT_EQ("", Exec(db, "PRAGMA busy_timeout=20000"));
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
  ASSERT_TRUE(WaitAcks(&*c, 30000)) << WriterFailures(*c);
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
  ASSERT_EQ("", WriterFailures(*c));
  EXPECT_GT(total_commits(), commits_after_a) << "writers stopped committing after a restore";

  // (b) The deterministic part: writers pause with their connections open.
  SetPhase(&*c, kPause);
  ASSERT_TRUE(WaitAcks(&*c, 30000)) << WriterFailures(*c);
  ASSERT_EQ("", WriterFailures(*c));
  DbState paused;
  ASSERT_EQ("", CheckState(db, &paused));
  // Writers committed on top of the database that restore (a) put back.
  EXPECT_GT(paused.counter, st1.counter);

  // Another connection holds a read transaction across the restore.
  sqlite3* reader = OpenConn(path, false, &err);
  ASSERT_NE(reader, nullptr) << err;
  CloseAtExit closer2(reader);
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
  ASSERT_TRUE(WaitAcks(&*c, 30000)) << WriterFailures(*c);
  ASSERT_EQ("", WriterFailures(*c));
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
  ASSERT_TRUE(WaitAcks(&*c, 30000)) << WriterFailures(*c);
  ASSERT_EQ("", WriterFailures(*c));
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
  for (pid_t p : writers) EXPECT_EQ(0, kids.Wait(p)) << WriterFailures(*c);
}

INSTANTIATE_TEST_SUITE_P(Concurrency, ConcurrencyRestore, ::testing::Values("delete", "wal"), ModeName);

}  // namespace
}  // namespace snapshot_test
