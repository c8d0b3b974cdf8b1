// ObjectStore: a flat namespace of immutable objects that hold copies of the
// store's files somewhere else (S3 today: remote/s3_client.h).
//
// It is the layer replication is written against. Objects are named by keys
// relative to the store's remote location (s3://bucket/prefix); their bytes
// move between objects and local files through an Env (store/env.h), so a
// test Env that fails the n-th read or write proves replication's handling
// of local faults the way it proves the local store's, and an object store
// over a second directory could stand in for a remote.
//
// Every call either completes or returns an error that says what failed:
// an upload that returns OK is stored completely and its checksum was
// compared with the server's; a download that returns OK wrote exactly the
// object's bytes, checked; on failure neither leaves a partial result
// behind (an object that is not listed, a local file that is removed).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "remote/md5.h"
#include "store/env.h"
#include "store/status.h"

namespace snapshot {

struct ObjectInfo {
  std::string key;   // relative to the store's location
  uint64_t size = 0;
  // The bytes' MD5 in lowercase hex, when the listing says it (S3's ETag of
  // an object uploaded in one part); "" when unknown.
  std::string md5;
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  // Uploads the local file `path` as object `key`, replacing any object of
  // that name.
  virtual Status Put(const std::string& key, const std::string& path) = 0;
  // The same for the bytes `source` reads: a file, or a view of one made
  // on the fly (an encrypted store seals a file chunk by chunk as it is
  // read, with no copy on disk). A store may read `source` more than once.
  virtual Status PutFrom(const std::string& key, RandomAccessFile& source) = 0;
  // Downloads object `key` into the local file `path` (created with
  // permission bits `mode`, replaced if it exists). NotFound if no such
  // object; Corruption if its bytes do not match the checksum it was
  // stored with.
  virtual Status Get(const std::string& key, const std::string& path, unsigned mode) = 0;
  // The object's size; NotFound if there is no such object.
  virtual Status Head(const std::string& key, ObjectInfo* info) = 0;
  // Every object whose key starts with `prefix`, in key order.
  virtual Status List(const std::string& prefix, std::vector<ObjectInfo>* objects) = 0;
  // Removes object `key`; OK if there was none.
  virtual Status Delete(const std::string& key) = 0;
  // The MD5 a listing gives (ObjectInfo::md5) for object `key` once a file
  // holding `contents` is Put as it: the contents' own MD5, unless the store
  // transforms what it uploads (an encrypted one seals it, deterministically:
  // remote/encrypted_object_store.h).
  virtual std::string StoredMd5(const std::string& key, const std::string& contents) {
    (void)key;
    return Md5::Hex(Md5::Of(contents));
  }

  // From now on, every call polls `should_stop` (during transfers at least
  // once a second, and between requests) and, once it answers true, stops
  // and returns Interrupted, leaving nothing partial behind as on any other
  // failure. A wrapper forwards it to the store it wraps.
  virtual void SetCancel(std::function<bool()> should_stop) { should_stop_ = std::move(should_stop); }
  bool Cancelled() const { return should_stop_ && should_stop_(); }

 protected:
  std::function<bool()> should_stop_;
};

}  // namespace snapshot
