// Helpers for the tests that use the object store tools/object-store.sh
// starts (OpenStack Swift with s3api, on loopback).
#pragma once

#include <dirent.h>

#include <cstdlib>
#include <string>

#include "tests/test_util.h"

namespace snapshot_test {

// Where the running object store keeps its objects' bytes.
inline std::string ObjectStoreDataDir() {
  const char* dir = std::getenv("SNAPSHOT_OBJECT_STORE_DIR");
  return std::string(dir ? dir : "/tmp/snapshot-object-store") + "/srv";
}

// The file under `dir` whose content is `data` (Swift keeps each object's
// bytes in a .data file of their own); "" if none.
inline std::string FindFileHolding(const std::string& dir, const std::string& data) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return "";
  std::string found;
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    const std::string path = dir + "/" + name;
    if (e->d_type == DT_DIR) {
      found = FindFileHolding(path, data);
    } else if (name.size() > 5 && name.compare(name.size() - 5, 5, ".data") == 0 && ReadFile(path) == data) {
      found = path;
    }
    if (!found.empty()) break;
  }
  closedir(d);
  return found;
}

}  // namespace snapshot_test
