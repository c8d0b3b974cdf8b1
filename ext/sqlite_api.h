// Every file of the extension reaches SQLite through the routines table the
// loader hands to sqlite3_snapshot_init (sqlite3ext.h); include this, not
// sqlite3.h.
#pragma once

#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3
