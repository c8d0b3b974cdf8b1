// DirObjectStore: an ObjectStore kept in a local directory, through an Env.
//
//   DirObjectStore objects("/mnt/elsewhere/app-store-copy", Env::Default());
//   Status s = objects.Put("packs/000001.pack", local_path);
//
// It gives replication a remote whose every file-system step a test Env can
// fail (tests/store/fault_env.h), the way the local store's tests do, with
// no server; it could also serve as a remote on another disk (SQL accepts
// only s3:// URLs today). Like an object store it shows whole objects only: a Put writes a
// temporary file under `.uploads/`, syncs it and renames it into place, so
// a failure at any step leaves the old object or none, never part of one.
// Keys are relative paths; '/' in a key makes subdirectories.
#pragma once

#include <string>
#include <vector>

#include "remote/object_store.h"
#include "store/env.h"

namespace snapshot {

class DirObjectStore : public ObjectStore {
 public:
  // `env` must outlive the object store; `root` is created on first Put.
  DirObjectStore(std::string root, Env* env) : root_(std::move(root)), env_(env) {}

  Status Put(const std::string& key, const std::string& path) override;
  Status PutFrom(const std::string& key, RandomAccessFile& source) override;
  Status Get(const std::string& key, const std::string& path, unsigned mode) override;
  Status Head(const std::string& key, ObjectInfo* info) override;
  Status List(const std::string& prefix, std::vector<ObjectInfo>* objects) override;
  Status Delete(const std::string& key) override;

 private:
  Status CheckKey(const std::string& key) const;
  Status CopyFile(RandomAccessFile& in, const std::string& to, unsigned mode, bool* created);
  Status ListDir(const std::string& dir, const std::string& key_prefix, std::vector<ObjectInfo>* objects);

  std::string root_;
  Env* env_;
};

}  // namespace snapshot
