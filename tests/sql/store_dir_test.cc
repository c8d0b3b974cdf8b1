// Choosing the store directory (beside the database, SNAPSHOT_DIR,
// snapshot_config('dir')) and its files' permissions.

#include "tests/sql/sql_test_util.h"

namespace snapshot_test {
namespace {

class SqlStoreDir : public SqlFixture {};

TEST_F(SqlStoreDir, DefaultDirIsBesideTheDatabase) {
  Conn a(DbPath());
  Fill(a, "t", 10);
  const std::string db_file = Query(a, "SELECT file FROM pragma_database_list WHERE name = 'main'");
  EXPECT_EQ(db_file + "-snapshots", Query(a, "SELECT snapshot_dir()"));
  EXPECT_EQ(db_file + "-snapshots", Query(a, "SELECT snapshot_dir('main')"));
  EXPECT_FALSE(Exists(StoreDir()));
  EXPECT_EQ(0, SnapshotCount(a));
  EXPECT_FALSE(Exists(StoreDir())) << "listing created the store";
  EXPECT_EQ(1, Backup(a));
  EXPECT_TRUE(Exists(StoreDir() + "/STORE"));
  EXPECT_EQ(1u, FilesIn(StoreDir() + "/snapshots").size());
  EXPECT_EQ(1u, FilesIn(StoreDir() + "/packs").size());
}

TEST_F(SqlStoreDir, EnvironmentAndConfigChooseTheStore) {
  const std::string env_dir = Path("env-store");
  const std::string cfg_dir = Path("cfg-store");
  ASSERT_TRUE(fs::create_directory(env_dir));
  ASSERT_TRUE(fs::create_directory(cfg_dir));
  const std::string aux = Path("aux.db");
  Conn a(DbPath());
  Fill(a, "t", 50);
  {
    ScopedEnv env("SNAPSHOT_DIR", env_dir.c_str());
    EXPECT_EQ(env_dir, Query(a, "SELECT snapshot_dir()"));
    EXPECT_EQ(1, Backup(a, "to env"));
    EXPECT_TRUE(Exists(env_dir + "/STORE"));
    EXPECT_FALSE(Exists(StoreDir()));

    // Other schemas ignore SNAPSHOT_DIR.
    Ok(a, "ATTACH '" + aux + "' AS aux; CREATE TABLE aux.x(v); INSERT INTO aux.x VALUES (1)");
    const std::string aux_file = Query(a, "SELECT file FROM pragma_database_list WHERE name = 'aux'");
    EXPECT_EQ(aux_file + "-snapshots", Query(a, "SELECT snapshot_dir('aux')"));
    EXPECT_EQ("1", Query(a, "SELECT snapshot_backup('aux one', 'aux')"));
    EXPECT_TRUE(Exists(aux + "-snapshots/STORE"));
    EXPECT_EQ(1, SnapshotCount(a, "aux"));
    EXPECT_EQ("aux one", Query(a, "SELECT label FROM snapshot_list('aux')"));
    EXPECT_EQ("aux one", Query(a, "SELECT label FROM snapshot_list WHERE schema = 'aux'"));

    // snapshot_config('dir') beats the environment, for this connection only.
    EXPECT_EQ(cfg_dir, Query(a, "SELECT snapshot_config('dir', '" + cfg_dir + "')"));
    EXPECT_EQ(cfg_dir, Query(a, "SELECT snapshot_dir()"));
    EXPECT_EQ(0, SnapshotCount(a));
    EXPECT_EQ(1, Backup(a, "to cfg"));
    EXPECT_EQ("to cfg", Query(a, "SELECT label FROM snapshot_list"));
    EXPECT_TRUE(Exists(cfg_dir + "/STORE"));
    // ... and not for schema aux.
    EXPECT_EQ(aux_file + "-snapshots", Query(a, "SELECT snapshot_dir('aux')"));
    Conn b(DbPath());
    EXPECT_EQ(env_dir, Query(b, "SELECT snapshot_dir()"));
    EXPECT_EQ("to env", Query(b, "SELECT label FROM snapshot_list"));

    // Restores come from the chosen store.
    Ok(a, "DELETE FROM t; DELETE FROM aux.x");
    EXPECT_EQ(1, Restore(a, 1));
    EXPECT_EQ(50, QueryInt(a, "SELECT count(*) FROM t"));
    EXPECT_EQ("2", Query(a, "SELECT max(id) FROM snapshot_list"));  // pre-restore in cfg_dir
    EXPECT_EQ("1", Query(a, "SELECT snapshot_restore(1, 'aux')"));
    EXPECT_EQ("1", Query(a, "SELECT v FROM aux.x"));
    EXPECT_EQ("ok", Query(a, "SELECT snapshot_verify(NULL, 'aux')"));
    EXPECT_EQ("1", Query(a, "SELECT snapshot_restore_to('" + Path("aux-copy.db") + "', 1, 'aux')"));
    EXPECT_EQ("1", Query(a, "SELECT snapshot_prune(1, NULL, 'aux')"));  // snapshot 1; its pre-restore stays
    EXPECT_EQ("2:pre-restore", Query(a, "SELECT id || ':' || label FROM snapshot_list('aux')"));

    // Unsetting the setting goes back to the environment.
    EXPECT_EQ("NULL", Query(a, "SELECT snapshot_config('dir', NULL)"));
    EXPECT_EQ(env_dir, Query(a, "SELECT snapshot_dir()"));
    EXPECT_EQ("1", Query(b, "SELECT count(*) FROM snapshot_list"));
  }
  // Without either, the default.
  EXPECT_EQ(Query(a, "SELECT file FROM pragma_database_list WHERE name = 'main'") + "-snapshots",
            Query(a, "SELECT snapshot_dir()"));
  EXPECT_FALSE(Exists(StoreDir()));
}

// A chosen directory that already holds other files is never taken over
// (SNAPSHOT_DIR=/tmp must not become a store, nor clean anybody's *.tmp).
TEST_F(SqlStoreDir, DirectoryWithOtherFilesIsNotTakenOver) {
  const std::string busy = Path("busy");
  ASSERT_TRUE(fs::create_directory(busy));
  WriteFile(busy + "/notes.txt", "mine");
  WriteFile(busy + "/work.tmp", "also mine");
  Conn a(DbPath());
  Fill(a, "t", 20);
  {
    ScopedEnv env("SNAPSHOT_DIR", busy.c_str());
    ExpectRefused(a, "SELECT snapshot_backup()", {busy, "not empty"}, busy);
  }
  Ok(a, "SELECT snapshot_config('dir', '" + busy + "')");
  ExpectRefused(a, "SELECT snapshot_backup()", {"not empty"}, busy);
  ExpectRefused(a, "SELECT snapshot_prune(1)", {}, busy);
  ExpectRefused(a, "SELECT snapshot_restore()", {}, busy);
  EXPECT_EQ(std::vector<std::string>({"notes.txt", "work.tmp"}), FilesIn(busy));
  // The default location taken by a plain file.
  Ok(a, "SELECT snapshot_config('dir', NULL)");
  WriteFile(StoreDir(), "a file where the store would go");
  ExpectRefused(a, "SELECT snapshot_backup()", {"not a directory"}, StoreDir());
  EXPECT_EQ("a file where the store would go", ReadFile(StoreDir()));
}

// One SNAPSHOT_DIR for two databases (a copied cron line): the second is
// refused rather than mixed into the first one's store.
TEST_F(SqlStoreDir, SharedEnvironmentDirServesOneDatabase) {
  const std::string shared = Path("shared");
  ASSERT_TRUE(fs::create_directory(shared));
  ScopedEnv env("SNAPSHOT_DIR", shared.c_str());
  Conn a(DbPath());
  Fill(a, "t", 20);
  EXPECT_EQ(1, Backup(a));
  Conn b(Path("other.db"));
  Fill(b, "u", 20);
  ExpectRefused(b, "SELECT snapshot_backup()", {"belongs to database 'app.db'"}, shared);
  ExpectRefused(b, "SELECT snapshot_restore(1)", {"belongs to database 'app.db'"}, shared);
  EXPECT_EQ(20, QueryInt(b, "SELECT count(*) FROM u"));
  EXPECT_EQ(1, SnapshotCount(a));
}

TEST_F(SqlStoreDir, StoreFilesGetTheDatabaseFileMode) {
  const mode_t old_umask = umask(022);
  for (unsigned mode : {0640u, 0600u}) {
    SCOPED_TRACE(mode);
    const std::string db = Path("m" + std::to_string(mode) + ".db");
    Conn a(db);
    Fill(a, "t", 300);
    ASSERT_EQ(0, chmod(db.c_str(), mode));
    EXPECT_EQ(1, Backup(a));
    Ok(a, "DELETE FROM t WHERE id > 100");
    EXPECT_EQ(1, Restore(a, 1));  // adds a pre-restore snapshot and pack
    EXPECT_EQ(1, Prune(a, 1));  // snapshot 1 goes, pre-restore 2 stays
    const std::string store = db + "-snapshots";
    int files = 0;
    for (auto it = fs::recursive_directory_iterator(store); it != fs::recursive_directory_iterator(); ++it) {
      const std::string p = it->path().string();
      const unsigned m = FileMode(p);
      if (it->is_directory()) {
        EXPECT_EQ(0u, m & 0022u) << p << " is writable by others: " << std::oct << m;
        EXPECT_EQ(0u, m & 0007u & ~((mode & 0007u) | ((mode & 0004u) >> 2))) << p << ": " << std::oct << m;
      } else {
        files++;
        EXPECT_EQ(mode, m) << p << ": " << std::oct << m;
      }
    }
    EXPECT_GE(files, 4);  // STORE, LOCK, a pack, a manifest
    EXPECT_EQ(mode, FileMode(store) & 0666u) << std::oct << FileMode(store);
    const std::string out = Path("copy" + std::to_string(mode) + ".db");
    EXPECT_EQ("2", RestoreTo(a, out, 2));
    EXPECT_EQ(mode, FileMode(out)) << std::oct << FileMode(out);
  }
  umask(old_umask);
}

}  // namespace
}  // namespace snapshot_test
