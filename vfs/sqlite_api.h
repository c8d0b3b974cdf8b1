// How every file of vfs/ and ext/ reaches SQLite: include this, never
// sqlite3.h or sqlite3ext.h directly. It lives in vfs/, the lowest layer that
// calls SQLite; ext/ sits above vfs/ and includes it from here too.
//
// The same sources build two ways, with the switch SQLite's own
// ext/misc/cksumvfs.c uses:
//
//   - as the loadable extension (the default): sqlite3ext.h turns every
//     sqlite3_* call into a call through the routine table the loader hands
//     to sqlite3_snapshot_init. The table, sqlite3_api, is defined once, by
//     SQLITE_EXTENSION_INIT1 in ext/snapshot_ext.cc; here it is only
//     declared (SQLITE_EXTENSION_INIT3). The library is snapshot_vfs.
//   - with SQLITE_CORE defined: the calls go straight to libsqlite3, for a
//     program linked with SQLite, such as the unit tests of tests/vfs/. The
//     library is snapshot_vfs_core (CMakeLists.txt).
#pragma once

#ifdef SQLITE_CORE
#include <sqlite3.h>
#else
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3
#endif
