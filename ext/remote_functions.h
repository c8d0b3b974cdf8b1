// The SQL surface of remote copies (remote/replicator.h):
//
//   SELECT snapshot_remote('s3://backups/app');   -- set, for every process
//   SELECT snapshot_remote();                      -- read (NULL: none)
//   SELECT snapshot_remote(NULL);                  -- off
//   SELECT snapshot_push();                        -- files uploaded; OK = durable remotely
//   -- on a new machine, with an empty disk:
//   SELECT snapshot_restore_to('app.db', NULL, 's3://backups/app');
//   SELECT snapshot_verify(NULL, 's3://backups/app');   -- the remote copy, every byte
//
// Endpoint, region and credentials come only from the AWS_* environment
// variables (remote/s3_client.h), never from SQL or the store's files. The
// setting lives in the store (remote/remote_setting.h); $SNAPSHOT_REMOTE
// applies to a store that has none.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ext/connection.h"
#include "store/manifest.h"
#include "store/snapshot_spec.h"
#include "vfs/sqlite_api.h"

namespace snapshot {

// Registers snapshot_remote and snapshot_push (top-level SQL only, like
// every function with side effects). Returns an SQLite code.
int RegisterRemoteFunctions(sqlite3* db, ConnectionSettings* settings);

// Whether snapshot_restore_to's third argument names a remote rather than
// a schema.
bool IsRemoteLocation(const char* text);

// snapshot_restore_to(path, spec, 's3://...'): fetches what snapshot `spec`
// of the remote needs into a directory beside `path` (laid out as a store),
// writes the snapshot to the new file `path` through the local restore
// (every page checked against its hash), and removes the directory.
Status RestoreFromRemote(sqlite3* db, const ConnectionSettings& settings, const char* path, const SnapshotSpec& spec,
                         const std::string& url, uint64_t* restored_id);

// snapshot_verify(spec, 's3://...'): fetches snapshot `spec` (every
// snapshot and pack when null) of the remote into a temporary directory laid
// out as a store, checks every byte as snapshot_verify() does locally, and
// removes the directory. A damaged object fails its MD5 as it arrives.
Status VerifyRemote(const ConnectionSettings& settings, const SnapshotSpec* spec, const std::string& url);

// How far behind the remote copy is, for snapshot_status(): from the
// store's record of its last pushes (remote/remote_status.h) and the local
// snapshot list, without the network.
struct RemoteLag {
  std::string url;                  // "" when the store has no remote (the rest is then empty)
  int64_t pushed_ms = 0;            // when the last push that completed finished (0: none)
  uint64_t newest_remote_id = 0;    // the newest snapshot held remotely (0: none)
  int64_t newest_remote_created_ms = 0;
  uint64_t not_remote = 0;          // local snapshots not (known to be) remote yet
  int64_t oldest_not_remote_created_ms = 0;  // when the oldest of them was taken
  std::string error;                // the last push that failed, and when
  int64_t error_ms = 0;
  bool uploading = false;           // a background push of it is queued or running in this process
};
Status DescribeRemote(sqlite3* db, const char* schema, const ConnectionSettings& settings, RemoteLag* lag);

// For snapshot_list's location column: the snapshots the store's remote
// holds, as the last push recorded them. *known is false when the store has
// no remote, or has not recorded a push to the one it has now.
Status SnapshotLocations(const std::string& store_dir, std::vector<SnapshotInfo>* remote_snapshots, bool* known);

}  // namespace snapshot
