// Restore (snapshot_restore): every restore records the state it replaces as
// a pre-restore snapshot, and a crash or failed sync while it writes rolls
// back to exactly the state before it.

#include <memory>
#include <string>
#include <vector>

#include "store/pack.h"
#include "store/store.h"
#include "tests/shim_vfs.h"
#include "tests/sql/sql_test_util.h"

namespace snapshot_test {
namespace {

class SqlPreRestore : public SqlFixture, public ::testing::WithParamInterface<std::string> {};

TEST_P(SqlPreRestore, EveryRestoreRecordsTheStateItReplaces) {
  const bool wal = GetParam() == "WAL";
  Conn w(DbPath());  // the writer; in WAL mode its commits stay in the -wal file
  Ok(w, "PRAGMA journal_mode=" + GetParam());
  if (wal) Ok(w, "PRAGMA wal_autocheckpoint=0");
  Conn a(DbPath());  // restores

  Fill(w, "t", 800);
  const std::string d1 = Digest(w);
  EXPECT_EQ(1, Backup(a, "one"));
  Ok(w, "DELETE FROM t WHERE id % 2 = 0; CREATE TABLE more(x); INSERT INTO more VALUES (1)");
  const std::string d2 = Digest(w);
  EXPECT_EQ(2, Backup(a, "two"));
  Fill(w, "t", 300, 1000);
  Ok(w, "UPDATE more SET x = 2");
  const std::string d3 = Digest(w);
  const std::string image3 = Serialize(w);
  if (wal) {
    ASSERT_GT(FileSize(DbPath() + "-wal"), 0u);
  }

  // restore(1): records state 3 as snapshot 3.
  EXPECT_EQ(1, Restore(a, 1));
  EXPECT_EQ(d1, Digest(w));
  EXPECT_EQ("1:one,2:two,3:pre-restore", SnapshotIds(a));
  const std::string out3 = Path("pre3.db");
  EXPECT_EQ("3", RestoreTo(a, out3, 3));
  EXPECT_EQ("", ComparePages(ReadFile(out3), image3, 4096));
  {
    Conn r(out3, false);
    EXPECT_EQ(d3, Digest(r));
    EXPECT_EQ("ok", Integrity(r));
  }

  // Restoring the pre-restore snapshot undoes the restore (and is itself
  // recorded: snapshot 4 holds state 1).
  EXPECT_EQ(3, Restore(a, 3));
  EXPECT_EQ(d3, Digest(w));
  EXPECT_EQ("ok", Integrity(w));
  EXPECT_EQ("1:one,2:two,3:pre-restore,4:pre-restore", SnapshotIds(a));

  EXPECT_EQ(2, Restore(w, 2));  // from the writer connection itself
  EXPECT_EQ(d2, Digest(a));
  EXPECT_EQ(5, SnapshotCount(a));
  // The latest snapshot is the last pre-restore: a bare snapshot_restore()
  // undoes the last restore.
  EXPECT_EQ("5", Query(a, "SELECT snapshot_restore()"));
  EXPECT_EQ(d3, Digest(a));
  EXPECT_EQ(6, SnapshotCount(a));
  EXPECT_EQ(4, Restore(a, 4));
  EXPECT_EQ(d1, Digest(a));
  EXPECT_EQ("ok", Integrity(a));
  EXPECT_EQ("ok", Query(a, "SELECT snapshot_verify()"));
  EXPECT_EQ(7, SnapshotCount(a));
  // Recording a state the store already holds adds at most the header page.
  EXPECT_LE(QueryInt(a, "SELECT pages_new FROM snapshot_list WHERE id = 7"), 1);
}

INSTANTIATE_TEST_SUITE_P(SqlModes, SqlPreRestore, ::testing::Values("DELETE", "WAL"), ModeName);

// Crash safety of a restore: a VFS shim over the default VFS copies the
// database and its journal aside at the moment the restore syncs the
// database file (the state a power cut at that instant leaves on disk), or
// fails that sync. SQLite then has to roll the hot journal back to exactly
// the state before the restore.

struct CrashCase {
  std::string name;
  int snapshot_rows;  // rows of the snapshot restored
  int live_rows;      // rows of the live database it replaces
};

void PrintTo(const CrashCase& c, std::ostream* os) { *os << c.name; }

class SqlCrash : public SqlFixture, public ::testing::WithParamInterface<CrashCase> {
 protected:
  void TearDown() override { Shim().Reset(); }

  // The database through the shim, in rollback mode: snapshot 1 holds
  // snapshot_rows rows, the live database live_rows others.
  sqlite3* OpenWithSnapshotAndOtherRows() {
    sqlite3* a = OpenThroughShim(DbPath());
    Ok(a, "PRAGMA journal_mode=DELETE");
    Fill(a, "t", GetParam().snapshot_rows, 500);
    EXPECT_EQ(1, Backup(a, "snapshot"));
    Ok(a, "DELETE FROM t");
    Fill(a, "t", GetParam().live_rows, 500);
    return a;
  }
};

// A crash while the restore is writing leaves a hot journal; whatever
// SQLite does with it must give back the state before the restore.
TEST_P(SqlCrash, CrashDuringRestoreRollsBackToTheStateBefore) {
  sqlite3* a = OpenWithSnapshotAndOtherRows();
  const std::string before = Digest(a);
  const int64_t pages_before = PageCount(a);

  Shim().crash_dir = Path("crash");
  EXPECT_EQ(1, Restore(a, 1));
  const int images = Shim().crash_images;
  Shim().crash_dir.clear();
  EXPECT_GE(images, 1) << "the restore never synced the database file";
  sqlite3_close_v2(a);

  for (int i = 1; i <= images; i++) {
    SCOPED_TRACE("crash at database sync #" + std::to_string(i));
    const std::string img = Path("crash/" + std::to_string(i) + "/app.db");
    ASSERT_TRUE(Exists(img + "-journal")) << "no hot journal at the sync";
    Conn r(img, /*load=*/false);  // SQLite rolls the hot journal back
    EXPECT_EQ("ok", Integrity(r));
    EXPECT_EQ(before, Digest(r));
    EXPECT_EQ(pages_before, PageCount(r));
  }
}

// The same point as a failed fsync instead of a crash: the restore fails,
// and the next reader rolls the database back.
TEST_P(SqlCrash, FailedDatabaseSyncRollsBackToTheStateBefore) {
  sqlite3* a = OpenWithSnapshotAndOtherRows();
  const std::string before = Digest(a);
  const int64_t pages_before = PageCount(a);

  Shim().fail_db_syncs = 1;
  const std::string r = Query(a, "SELECT snapshot_restore(1)");
  EXPECT_EQ(0, Shim().fail_db_syncs) << "the restore never synced the database file";
  Shim().fail_db_syncs = 0;
  EXPECT_TRUE(IsError(r)) << r;
  Conn b(DbPath(), /*load=*/false);
  EXPECT_EQ("ok", Integrity(b));
  EXPECT_EQ(before, Digest(b));
  EXPECT_EQ(pages_before, PageCount(b));
  EXPECT_EQ(before, Digest(a));
  EXPECT_EQ("ok", Integrity(a));
  sqlite3_close_v2(a);
}

// snapshot_restore_to writes pages in the order the packs hold them, not in
// page order. After a compaction a snapshot's pages come from several packs,
// laid out newest snapshot first, b-tree interior pages in frames of their
// own: every snapshot must still come back byte for byte.
class SqlRestoreTo : public SqlFixture {};

TEST_F(SqlRestoreTo, EverySnapshotOfACompactedStoreComesBackByteForByte) {
  Conn w(DbPath());
  Fill(w, "t", 6000);  // several 1 MiB frames in the full snapshot's pack
  std::vector<std::string> images{""};  // by snapshot id
  EXPECT_EQ(1, Backup(w, "full"));
  images.push_back(Serialize(w));
  for (int k = 1; k <= 8; k++) {
    Ok(w, "UPDATE t SET a = 'change " + std::to_string(k) + "' WHERE id % 97 = " + std::to_string(k));
    if (k == 5) Fill(w, "t", 300);  // and a snapshot that grows the file
    EXPECT_EQ(int64_t(images.size()), Backup(w));
    images.push_back(Serialize(w));
  }
  {
    snapshot::StoreOptions o;
    o.dir = StoreDir();
    o.db_name = "app.db";
    o.exclusive = true;
    std::unique_ptr<snapshot::Store> store;
    ASSERT_TRUE(snapshot::Store::Open(o, &store).ok());
    const size_t packs_before = FilesIn(StoreDir() + "/packs").size();
    ASSERT_TRUE(store->Compact().ok());
    ASSERT_LT(FilesIn(StoreDir() + "/packs").size(), packs_before) << "nothing was merged";
  }
  for (size_t id = 1; id < images.size(); id++) {
    const std::string out = Path("r" + std::to_string(id) + ".db");
    EXPECT_EQ(std::to_string(id), RestoreTo(w, out, int64_t(id)));
    EXPECT_EQ("", SameBytes(ReadFile(out), images[id])) << "snapshot " << id;
  }
}

// snapshot_restore reads the pages it writes in stored order too (through
// its own journal in rollback mode, gathered and copied by sqlite3_backup
// in WAL mode): after a compaction every snapshot comes back whole.
class SqlRestoreInPlace : public SqlFixture, public ::testing::WithParamInterface<std::string> {};

TEST_P(SqlRestoreInPlace, EverySnapshotOfACompactedStoreComesBack) {
  Conn w(DbPath());
  Ok(w, "PRAGMA journal_mode=" + GetParam());
  Fill(w, "t", 6000);
  std::vector<std::string> digests{""};  // by snapshot id
  EXPECT_EQ(1, Backup(w, "full"));
  digests.push_back(Digest(w));
  for (int k = 1; k <= 6; k++) {
    Ok(w, "UPDATE t SET a = 'change " + std::to_string(k) + "' WHERE id % 97 = " + std::to_string(k));
    if (k == 3) Fill(w, "t", 300);
    if (k == 5) Ok(w, "DELETE FROM t WHERE id > 5000");  // and one that shrinks the file
    EXPECT_EQ(int64_t(digests.size()), Backup(w));
    digests.push_back(Digest(w));
  }
  {
    snapshot::StoreOptions o;
    o.dir = StoreDir();
    o.db_name = "app.db";
    o.exclusive = true;
    std::unique_ptr<snapshot::Store> store;
    ASSERT_TRUE(snapshot::Store::Open(o, &store).ok());
    ASSERT_TRUE(store->Compact().ok());
  }
  Conn other(DbPath());  // sees each restore at its next transaction
  for (int64_t id : {3, 1, 7, 2, 6}) {
    EXPECT_EQ(id, Restore(w, id));
    EXPECT_EQ(digests[size_t(id)], Digest(w)) << "snapshot " << id;
    EXPECT_EQ(digests[size_t(id)], Digest(other)) << "snapshot " << id;
    EXPECT_EQ("ok", Integrity(other));
  }
}

INSTANTIATE_TEST_SUITE_P(SqlModes, SqlRestoreInPlace, ::testing::Values("DELETE", "WAL"), ModeName);

// A restore decodes a frame only up to the last page it needs from it, but
// checks the whole frame: damage after that page is still reported, and
// neither restore writes anything.
TEST_F(SqlRestoreTo, DamageAfterTheLastPageNeededFromAFrameIsReportedAndNothingWritten) {
  Conn a(DbPath());
  Ok(a, "PRAGMA journal_mode=DELETE");
  Fill(a, "t", 6000);
  EXPECT_EQ(1, Backup(a, "full"));
  Ok(a, "UPDATE t SET b = randomblob(200) WHERE id > 3000");  // the tail of a frame of pack 1 changes
  EXPECT_EQ(2, Backup(a));
  Ok(a, "UPDATE t SET a = 'live' WHERE id % 10 = 0");
  const std::string live = ReadFile(DbPath());

  // The frame of pack 1 that snapshot 2 reads least of: a partial decode
  // stops far from its end.
  snapshot::StoreOptions o;
  o.dir = StoreDir();
  o.db_name = "app.db";
  std::unique_ptr<snapshot::Store> store;
  ASSERT_TRUE(snapshot::Store::Open(o, &store).ok());
  std::unique_ptr<snapshot::SnapshotImage> image;
  ASSERT_TRUE(store->OpenImage(2, &image).ok());
  std::unique_ptr<snapshot::PackReader> pack;
  const uint8_t secret[snapshot::kHashSecretSize] = {};
  ASSERT_TRUE(snapshot::PackReader::Open(snapshot::Env::Default(), PackPath(StoreDir(), 1), 1, secret, &pack).ok());
  std::vector<int64_t> last_needed(pack->frames().size(), -1);
  for (const snapshot::Extent& e : image->manifest().extents) {
    if (e.pack != 1) continue;
    const uint32_t f = pack->FrameOf(e.first_index + e.page_count - 1);
    last_needed[f] = std::max<int64_t>(last_needed[f], e.first_index + e.page_count - 1 - pack->frames()[f].first_index);
  }
  int64_t victim = -1;
  for (size_t f = 0; f < last_needed.size(); f++) {
    if (last_needed[f] >= 0 && last_needed[f] + 64 < int64_t(pack->frames()[f].page_count)) victim = int64_t(f);
  }
  ASSERT_GE(victim, 0) << "no frame that snapshot 2 reads only the start of";
  const snapshot::FrameEntry frame = pack->frames()[size_t(victim)];
  image.reset();
  pack.reset();
  store.reset();
  FlipByte(PackPath(StoreDir(), 1), frame.offset + frame.compressed_size - 3);

  const std::string out = Path("r.db");
  const std::string t = RestoreTo(a, out, 2);
  EXPECT_TRUE(IsError(t)) << t;
  EXPECT_TRUE(Contains(t, "damaged")) << t;
  for (const std::string& name : FilesIn(dir_.path())) EXPECT_NE(0u, name.rfind("r.db", 0)) << "left " << name;
  ExpectRefused(a, "SELECT snapshot_restore(2)", {"damaged"}, StoreDir());
  EXPECT_TRUE(ReadFile(DbPath()) == live) << "a refused restore changed the database file";
  EXPECT_FALSE(Exists(DbPath() + "-journal"));
}

INSTANTIATE_TEST_SUITE_P(SqlRestoreShapes, SqlCrash,
                         ::testing::Values(CrashCase{"shrinks", 100, 3000}, CrashCase{"grows", 3000, 100},
                                           CrashCase{"same_size", 1000, 1000}),
                         [](const ::testing::TestParamInfo<CrashCase>& i) { return i.param.name; });

}  // namespace
}  // namespace snapshot_test
