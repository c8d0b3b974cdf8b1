// TokenRegistry: hands an in-process object to a VFS through a file name.
//
// The internal VFSes (snapshot_image, snapshot_capture) are opened by name
// like any SQLite database. The name is an unguessable token looked up here,
// never a pointer: a user who opens one of these VFSes by hand, with any name,
// gets SQLITE_CANTOPEN, not a crash.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <random>
#include <string>

namespace snapshot {

template <typename T>
class TokenRegistry {
 public:
  std::string Add(T* object) {
    std::lock_guard<std::mutex> l(mu_);
    std::string token = "snapshot-" + std::to_string(++counter_) + "-" + std::to_string(rng_());
    map_[token] = object;
    return token;
  }
  void Remove(const std::string& token) {
    std::lock_guard<std::mutex> l(mu_);
    map_.erase(token);
  }
  T* Find(const char* token) {
    if (token == nullptr) return nullptr;
    std::lock_guard<std::mutex> l(mu_);
    auto it = map_.find(token);
    return it == map_.end() ? nullptr : it->second;
  }

 private:
  std::mutex mu_;
  std::map<std::string, T*> map_;
  uint64_t counter_ = 0;
  std::mt19937_64 rng_{std::random_device{}()};
};

// Registers on construction, unregisters on destruction.
template <typename T>
class ScopedToken {
 public:
  ScopedToken(TokenRegistry<T>* registry, T* object) : registry_(registry), token_(registry->Add(object)) {}
  ~ScopedToken() { registry_->Remove(token_); }
  const std::string& token() const { return token_; }

 private:
  TokenRegistry<T>* registry_;
  std::string token_;
};

}  // namespace snapshot
