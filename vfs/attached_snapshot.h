// An attached snapshot: a stored snapshot opened in place as a read-only
// SQLite database, through the `snapshot` VFS.
//
//   ATTACH 'file:app.db?vfs=snapshot&snapshot=17&mode=ro' AS s17;
//   SELECT count(*) FROM s17.annotation WHERE project_id = 4;
//   sqlite3_open_v2("file:app.db?vfs=snapshot&snapshot=latest", &db,
//                   SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nullptr);
//
// The path is the live database's; URI parameters:
//   snapshot=S          which snapshot: an id, latest, or a moment such as
//                       2026-12-05T14:59:00Z (store/snapshot_spec.h; required:
//                       without it the open is an ordinary open of the live file)
//   snapshot_dir=D      the store (default: the store_dir resolver below)
//   snapshot_cache=M    MiB of decompressed frames kept (default 64, or
//                       $SNAPSHOT_ATTACH_CACHE_MB)
// The open must be read-only (mode=ro or SQLITE_OPEN_READONLY): otherwise it
// is refused, so a missing mode=ro never opens the live file instead.
//
// The file never touches the live database, its tracking files or the
// store's content: pages come from store/snapshot_reader.h, which pins the
// snapshot against prune for as long as the file is open. The file says it
// is immutable (SQLITE_IOCAP_IMMUTABLE), so SQLite takes no locks and looks
// for no journal or WAL beside it; a snapshot of a WAL database is served
// with the rollback-journal header (bytes 18 and 19 = 1), as restore does.
//
// SQLite reports a failed open only as "unable to open database: <uri>";
// the reason (no store, no such snapshot, a store of another database, not
// read-only) goes to sqlite3_log and to AttachedSnapshotError(). A page that
// fails its hash check is a read error (SQLITE_CORRUPT; SQLITE_IOERR_READ
// when the store cannot be read), whose reason names the snapshot and page.
#pragma once

#include <string>

#include "store/snapshot_reader.h"
#include "vfs/sqlite_api.h"

namespace snapshot {

struct AttachedSnapshotFile {
  sqlite3_file base;
  SnapshotReader* reader;  // owned
};

// Whether xOpen's arguments ask for a snapshot: a main database whose URI
// has a snapshot= parameter.
bool WantsSnapshot(const char* name, int flags);

// Opens the snapshot `name` asks for into `f` (at least
// sizeof(AttachedSnapshotFile) bytes). An SQLite result code; on failure
// f->pMethods is null and AttachedSnapshotError() says why.
int OpenAttachedSnapshot(const char* name, int flags, sqlite3_file* f, int* out_flags);

// Where the store of the database at `db_path` (absolute) is when the URI
// names none. The extension sets it (snapshot_config('dir'), $SNAPSHOT_DIR,
// <db>-snapshots: ext/attach.h); unset, it is <db>-snapshots.
using StoreDirResolver = std::string (*)(const std::string& db_path);
void SetStoreDirResolver(StoreDirResolver resolver);

// Why the last open of, or read from, a snapshot on this thread failed; ""
// after a successful open.
const char* AttachedSnapshotError();

}  // namespace snapshot
