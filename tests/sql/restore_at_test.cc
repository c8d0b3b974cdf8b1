// Naming a snapshot by a moment through SQL: snapshot_restore('2026-12-05
// 14:59:00'), snapshot_restore_to(path, moment), snapshot_verify(moment) and
// snapshot_id(moment) take the snapshot holding the state at that moment (the
// newest whose last commit, `committed` in snapshot_list, is at or before it), on a
// real database and store; malformed moments and moments before the first
// snapshot change nothing. And snapshot_prune(policy): the retention tiers
// through SQL, the old forms beside them.

#include <chrono>
#include <thread>

#include "store/store.h"
#include "store/timestamp.h"
#include "tests/sql/sql_test_util.h"

namespace snapshot_test {
namespace {

class SqlRestoreAt : public SqlFixture {
 protected:
  // Two snapshots of different content, then a third state, live only.
  void SetUp() override {
    SqlFixture::SetUp();
    db_.reset(new Conn(DbPath()));
    Fill(*db_, "t", 200);
    ASSERT_EQ(1, Backup(*db_, "first"));
    first_ = Digest(*db_);
    // Distinct milliseconds, so that a moment can fall between the two
    // commits (file times, which date them, move a scheduler tick at a time).
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    Ok(*db_, "UPDATE t SET a = 'second' WHERE id % 3 = 0");
    ASSERT_EQ(2, Backup(*db_, "second"));
    second_ = Digest(*db_);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    Ok(*db_, "DELETE FROM t WHERE id > 50");
    live_ = Digest(*db_);
    // The moments each snapshot's state began: its commit.
    at1_ = TimeOf(1, "committed");
    at2_ = TimeOf(2, "committed");
    ASSERT_LT(at1_, at2_);
  }

  int64_t TimeOf(int id, const std::string& column) {
    int64_t ms = 0;
    const std::string t = Query(*db_, "SELECT " + column + " FROM snapshot_list WHERE id = " + std::to_string(id));
    EXPECT_TRUE(snapshot::ParseTimestamp(t, &ms).ok()) << column << ": " << t;
    return ms;
  }
  // `ms` as users may write it: UTC with a space, or with an offset.
  static std::string Utc(int64_t ms) {
    std::string t = snapshot::FormatTimestamp(ms);  // 2026-12-05T14:59:00.123Z
    t[10] = ' ';
    t.pop_back();
    return t;
  }
  static std::string PlusTwoHours(int64_t ms) {
    std::string t = snapshot::FormatTimestamp(ms + 2 * 3600 * 1000);
    t.pop_back();
    return t + "+02:00";
  }

  std::unique_ptr<Conn> db_;
  std::string first_, second_, live_;
  int64_t at1_ = 0, at2_ = 0;
};

TEST_F(SqlRestoreAt, AMomentBetweenTwoSnapshotsRestoresTheEarlier) {
  const std::string between = Utc(at2_ - 1);
  EXPECT_EQ("1", Query(*db_, "SELECT snapshot_id('" + between + "')"));
  EXPECT_EQ("1", Query(*db_, "SELECT snapshot_restore('" + between + "')"));
  EXPECT_EQ(first_, Digest(*db_));
  EXPECT_EQ("ok", Integrity(*db_));
  // The state it replaced is a pre-restore snapshot, as with an id.
  EXPECT_EQ("1:first,2:second,3:pre-restore", SnapshotIds(*db_));
  EXPECT_EQ("3", RestoreTo(*db_, Path("pre.db"), 3));
  {
    Conn pre(Path("pre.db"), false);
    EXPECT_EQ(live_, Digest(pre));
  }
  // At a snapshot's own time: that snapshot (at or before is inclusive).
  EXPECT_EQ("2", Query(*db_, "SELECT snapshot_restore('" + Utc(at2_) + "')"));
  EXPECT_EQ(second_, Digest(*db_));
}

TEST_F(SqlRestoreAt, RestoreToAndVerifyTakeMomentsWithOffsets) {
  const std::string out = Path("at.db");
  EXPECT_EQ("1", QueryArgs(*db_, "SELECT snapshot_restore_to(?, ?)", {Arg::Text(out), Arg::Text(PlusTwoHours(at1_))}));
  {
    Conn r(out, false);
    EXPECT_EQ(first_, Digest(r));
  }
  EXPECT_EQ(live_, Digest(*db_));  // restore_to leaves the database alone
  EXPECT_EQ("ok", Query(*db_, "SELECT snapshot_verify('" + PlusTwoHours(at2_) + "')"));
  EXPECT_EQ("2", Query(*db_, "SELECT snapshot_id('2999-01-01T00:00:00Z')"));  // the future: the latest
  EXPECT_EQ("2", Query(*db_, "SELECT snapshot_id('latest')"));
  EXPECT_EQ("2", Query(*db_, "SELECT snapshot_id()"));
  EXPECT_EQ("1", Query(*db_, "SELECT snapshot_id('1')"));
  // Ids keep working, as integers and as numeric text.
  EXPECT_EQ("2", Query(*db_, "SELECT snapshot_restore('2')"));
  EXPECT_EQ(second_, Digest(*db_));
}

TEST_F(SqlRestoreAt, MalformedOrTooEarlyMomentsChangeNothing) {
  const int64_t created1 = TimeOf(1, "created");
  const std::string held = created1 == at1_ ? "" : ", holding the state as of " + snapshot::FormatTimestamp(at1_);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {Utc(at1_ - 1), "no snapshot was taken at or before " + snapshot::FormatTimestamp(at1_ - 1) +
                          "; the first is snapshot 1, taken " + snapshot::FormatTimestamp(created1) + held},
      {"2026-13-01 00:00", "month 13 does not exist"},
      {"2026-12-05 14:59 +01:00", "unexpected ' +01:00'"},
      {"2026-12-05", "a time of day must follow"},
      {"yesterday", "names no snapshot"},
      {"", "positive integer"},
  };
  for (const auto& [moment, why] : cases) {
    SCOPED_TRACE(moment);
    ExpectRefused(*db_, "SELECT snapshot_restore('" + moment + "')", {"snapshot_restore", why}, StoreDir());
    ExpectRefused(*db_, "SELECT snapshot_restore_to('" + Path("x.db") + "', '" + moment + "')",
                  {"snapshot_restore_to", why}, StoreDir());
    ExpectRefused(*db_, "SELECT snapshot_verify('" + moment + "')", {"snapshot_verify", why}, StoreDir());
    ExpectRefused(*db_, "SELECT snapshot_id('" + moment + "')", {"snapshot_id", why}, StoreDir());
  }
  EXPECT_EQ(live_, Digest(*db_));
  EXPECT_EQ("1:first,2:second", SnapshotIds(*db_));
  EXPECT_FALSE(Exists(Path("x.db")));
}

class SqlPrunePolicy : public SqlFixture {};

TEST_F(SqlPrunePolicy, KeepsWhatThePolicySaysAndLabelledSnapshotsUnlessNamed) {
  Conn a(DbPath());
  Fill(a, "t", 100);
  for (const char* label : {"auto", "", "pre-migrate", "auto", "auto", "pre-restore", "auto"}) {
    Ok(a, "UPDATE t SET a = hex(randomblob(8)) WHERE id % 7 = 0");
    Backup(a, label);
  }
  ASSERT_EQ("1:auto,2:,3:pre-migrate,4:auto,5:auto,6:pre-restore,7:auto", SnapshotIds(a));
  const std::string newest = Digest(a);
  EXPECT_EQ("3", Query(a, "SELECT snapshot_prune('last 2')"));
  EXPECT_EQ("3:pre-migrate,5:auto,6:pre-restore,7:auto", SnapshotIds(a));
  EXPECT_EQ("1", Query(a, "SELECT snapshot_prune('last 2, label pre-migrate', 'main')"));
  EXPECT_EQ("5:auto,6:pre-restore,7:auto", SnapshotIds(a));
  EXPECT_EQ("2", Query(a, "SELECT snapshot_prune('last 1, label *')"));
  EXPECT_EQ("7:auto", SnapshotIds(a));
  EXPECT_EQ("ok", Query(a, "SELECT snapshot_verify()"));
  Ok(a, "DELETE FROM t");
  EXPECT_EQ(7, Restore(a, 7));
  EXPECT_EQ(newest, Digest(a));
}

TEST_F(SqlPrunePolicy, RefusesAMalformedPolicyNamingTheRule) {
  Conn a(DbPath());
  Fill(a, "t", 10);
  Backup(a);
  Backup(a);
  ExpectRefused(a, "SELECT snapshot_prune('dayly 7')", {"unknown rule 'dayly 7'", "keep_last"}, StoreDir());
  ExpectRefused(a, "SELECT snapshot_prune('daily 7, daily 8')", {"'daily' is given twice"}, StoreDir());
  ExpectRefused(a, "SELECT snapshot_prune('within 1m')", {"'min' for minutes"}, StoreDir());
  ExpectRefused(a, "SELECT snapshot_prune('daily 7', 1, 'main')", {"snapshot_prune(policy [, schema])"}, StoreDir());
  ExpectRefused(a, "SELECT snapshot_prune('daily 7', 'nosuch')", {"no such database schema"}, StoreDir());
  // Numeric text is keep_last, as before policies existed.
  EXPECT_EQ("1", Query(a, "SELECT snapshot_prune('1')"));
  EXPECT_EQ(1, SnapshotCount(a));
}

}  // namespace
}  // namespace snapshot_test
