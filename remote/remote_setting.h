// The store's remote setting: where copies of its files are kept
// (s3://bucket/prefix), set by snapshot_remote() and read by every process
// that pushes. No SQLite and no network here.
//
//   WriteRemoteSetting(env, "app.db-snapshots", "s3://backups/app", 0600);
//   std::string url;
//   Status s = ReadRemoteSetting(env, "app.db-snapshots", &url);
//   // NotFound: never set (then $SNAPSHOT_REMOTE applies); url "": turned off
//
// Why in the store, like AUTO (store/auto_settings.h): the setting must
// reach every process that writes the database and outlive them, and the
// store is where they already look. It names a location only: endpoint,
// region and credentials come from the AWS_* environment variables, never
// from a file or an SQL argument, so the store's files hold no secret.
//
// REMOTE is ASCII lines: `SQSNREMOTE1`, then `url <s3://...>` unless turned
// off. Written whole to REMOTE.tmp, fsynced, renamed (WriteFileAtomically).
#pragma once

#include <memory>
#include <string>

#include "remote/object_store.h"
#include "store/env.h"
#include "store/status.h"

namespace snapshot {

constexpr char kRemoteFileName[] = "REMOTE";
constexpr char kRemoteEnvironmentVariable[] = "SNAPSHOT_REMOTE";

// OK when `url` is s3://bucket[/prefix] with a bucket name S3 could hold;
// otherwise InvalidArgument saying the form expected.
Status CheckRemoteUrl(const std::string& url);

// NotFound when the store has no REMOTE file; url "" when it says "off".
Status ReadRemoteSetting(Env* env, const std::string& store_dir, std::string* url);
// url "" writes "off" (which overrides $SNAPSHOT_REMOTE).
Status WriteRemoteSetting(Env* env, const std::string& store_dir, const std::string& url, unsigned mode);

// The remote in effect: REMOTE if the store has one, else $SNAPSHOT_REMOTE;
// "" when neither names one.
Status EffectiveRemote(Env* env, const std::string& store_dir, std::string* url);

// The object store at `url` (s3://bucket/prefix), with endpoint, region and
// credentials from the AWS_* environment (remote/s3_client.h): the one way
// every caller (the SQL functions, the background uploader) opens a
// remote. `for_push`: the caller will write to it, not only read. With
// $SNAPSHOT_REMOTE_KEY_FILE set, or an encrypted remote, the store is an
// EncryptedObjectStore over the S3 client, or the error that says why it
// cannot be (remote/encrypted_object_store.h).
Status OpenRemoteStore(const std::string& url, bool for_push, std::unique_ptr<ObjectStore>* out);

}  // namespace snapshot
