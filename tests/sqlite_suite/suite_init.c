/*
** suite_init.c: makes the `snapshot` VFS the default in a SQLite test
** program (testfixture, mptester, speedtest1) without editing SQLite's tests.
**
** run.sh compiles SQLite with -DSQLITE_EXTRA_INIT=snapshot_suite_init and links
** this file in. sqlite3_initialize() then calls snapshot_suite_init() each time
** it initializes the library: at the first call, and again after every
** sqlite3_shutdown() (which the tests do often, and after which SQLite makes
** "unix" the default again). When the environment says so, it loads our
** extension, whose entry point registers the VFS and, with
** SNAPSHOT_DEFAULT_VFS=1, makes it the default:
**
**   SNAPSHOT_SUITE_EXT=/path/to/snapshot.so   load this extension
**   SNAPSHOT_DEFAULT_VFS=1                     (read by the extension)
**
** Without SNAPSHOT_SUITE_EXT it does nothing, so the same binaries give the
** default-VFS run. Environment variables pass to the child processes the tests
** start (crash simulation, multi-client tests), so they use the VFS too.
**
** SQLite sets its "initialized" flag before calling this function, so the
** sqlite3_open_v2() and sqlite3_load_extension() below do not recurse. A
** failure is fatal (a run that silently fell back to "unix" would report the
** default VFS's results as ours), except out-of-memory: the malloc tests
** inject it into sqlite3_initialize() on purpose and expect SQLITE_NOMEM.
*/
#include <stdio.h>
#include <stdlib.h>
#include "sqlite3.h"

int snapshot_suite_init(const char *unused){
  const char *ext = getenv("SNAPSHOT_SUITE_EXT");
  sqlite3 *db = 0;
  char *err = 0;
  int rc;
  (void)unused;
  if( ext==0 || ext[0]==0 ) return SQLITE_OK;
  rc = sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE, 0);
  if( rc==SQLITE_OK ) rc = sqlite3_enable_load_extension(db, 1);
  if( rc==SQLITE_OK ) rc = sqlite3_load_extension(db, ext, 0, &err);
  if( rc==SQLITE_NOMEM ){
    sqlite3_close(db);
    sqlite3_free(err);
    return rc;
  }
  if( rc!=SQLITE_OK ){
    fprintf(stderr, "snapshot_suite_init: cannot load %s: %s\n", ext,
            err ? err : sqlite3_errstr(rc));
    abort();
  }
  sqlite3_close(db);
  return SQLITE_OK;
}
