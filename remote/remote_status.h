// The store's record of its remote copy: which snapshots the remote holds
// as of the last push, when that push finished, and the last push that
// failed. Pushes write it (under the push lock, remote/push_lock.h);
// snapshot_list's location column and snapshot_status() read it, so that
// neither ever asks the network.
//
//   RemoteRecord r;
//   Status s = ReadRemoteRecord(env, "app.db-snapshots", &r);  // NotFound: never pushed
//   if (s.ok() && r.url == url) { ...r.snapshots are held remotely... }
//
// The record is a conservative view: a snapshot it lists is held remotely
// (whole: its manifest and every pack it names) unless someone changed the
// remote behind the store's back; a snapshot missing from it may already be
// there (a push that failed after uploading it records nothing new).
//
// REMOTE-STATUS is ASCII lines, `SQSNRSTATUS1`, then `key value` lines:
// url, pushed_ms, error_ms, error (the rest of the line), and one
// `snapshot <id> <created_ms> <commit_ms> <page_size> <page_count>
// <pages_new> <bytes_new> <label in hex>` per snapshot held remotely.
// Written whole and renamed into place (never a mix of two versions), not
// synced: a record lost to a power cut is written again by the next push,
// and until then the snapshots show as local only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "store/env.h"
#include "store/manifest.h"
#include "store/status.h"

namespace snapshot {

constexpr char kRemoteStatusFileName[] = "REMOTE-STATUS";

struct RemoteRecord {
  std::string url;                      // the remote it describes: another url's record says nothing
  int64_t pushed_ms = 0;                // when the last successful push finished (0: none yet)
  std::vector<SnapshotInfo> snapshots;  // held remotely as of then, by id
  std::string error;                    // the last push that failed ("" if none has)
  int64_t error_ms = 0;
};

// NotFound when the store has none.
Status ReadRemoteRecord(Env* env, const std::string& store_dir, RemoteRecord* out);
Status WriteRemoteRecord(Env* env, const std::string& store_dir, const RemoteRecord& record, unsigned mode);

// The mode new files of the store get: its STORE file's (0600 if unknown).
unsigned StoreFileMode(Env* env, const std::string& store_dir);

}  // namespace snapshot
