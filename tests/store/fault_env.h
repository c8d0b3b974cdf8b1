// FaultEnv: an Env that fails the k-th file-system change of the store
// (create, append, sync, close, rename, remove, fsync of a directory, mkdir)
// with ENOSPC. Sticky, it fails every later change too, as if the process had
// died at that point: nothing after it reaches the disk, not even clean-up.
//
//   FaultEnv env;
//   env.Arm(k, /*sticky=*/true);
//   Status s = Store::Open(Options(dir, true, &env), &store);  // ... work
//   env.Disarm();
//   if (!env.fired()) break;  // k is past the last change: every step was tried
#pragma once

#include <stdio.h>
#include <stdlib.h>

#include <memory>
#include <mutex>
#include <string>

#include "store/env.h"
#include "store/status.h"

namespace store_test {

using snapshot::Env;
using snapshot::EnvWrapper;
using snapshot::Status;
using snapshot::WritableFile;
class FaultEnv;

class FaultFile : public WritableFile {
 public:
  FaultFile(FaultEnv* env, std::string path, std::unique_ptr<WritableFile> target)
      : env_(env), path_(std::move(path)), target_(std::move(target)) {}
  Status Append(const void* data, size_t n) override;
  Status WriteAt(uint64_t offset, const void* data, size_t n) override;
  Status Sync() override;
  Status Close() override;

 private:
  FaultEnv* env_;
  std::string path_;
  std::unique_ptr<WritableFile> target_;
};

class FaultEnv : public EnvWrapper {
 public:
  FaultEnv() : EnvWrapper(Env::Default()) {}

  void Arm(int k, bool sticky) {
    std::lock_guard<std::mutex> l(mu_);
    fail_at_ = k;
    sticky_ = sticky;
    ops_ = 0;
    fired_ = false;
    first_fault_.clear();
  }
  // Fails only the first change whose description contains `what`.
  void ArmMatch(const std::string& what) {
    std::lock_guard<std::mutex> l(mu_);
    fail_at_ = 0;
    match_ = what;
    ops_ = 0;
    fired_ = false;
    first_fault_.clear();
  }
  void Disarm() {
    std::lock_guard<std::mutex> l(mu_);
    fail_at_ = 0;
    match_.clear();
  }
  int ops() const {
    std::lock_guard<std::mutex> l(mu_);
    return ops_;
  }
  bool fired() const {
    std::lock_guard<std::mutex> l(mu_);
    return fired_;
  }
  std::string first_fault() const {
    std::lock_guard<std::mutex> l(mu_);
    return first_fault_;
  }

  Status Check(const std::string& what) {
    std::lock_guard<std::mutex> l(mu_);
    ops_++;
    if (getenv("SNAPSHOT_TEST_FAULT_TRACE")) fprintf(stderr, "op %d: %s\n", ops_, what.c_str());
    const bool matched = !match_.empty() && !fired_ && what.find(match_) != std::string::npos;
    if (matched || (fail_at_ > 0 && (ops_ == fail_at_ || (sticky_ && ops_ > fail_at_)))) {
      if (!fired_) first_fault_ = "op " + std::to_string(ops_) + ": " + what;
      fired_ = true;
      return Status::IOError("injected fault: " + what + ": No space left on device");
    }
    return Status::OK();
  }

  Status NewWritableFile(const std::string& p, unsigned m, std::unique_ptr<WritableFile>* o) override {
    SNAPSHOT_RETURN_IF_ERROR(Check("create " + p));
    std::unique_ptr<WritableFile> f;
    SNAPSHOT_RETURN_IF_ERROR(target()->NewWritableFile(p, m, &f));
    o->reset(new FaultFile(this, p, std::move(f)));
    return Status::OK();
  }
  Status RenameFile(const std::string& f, const std::string& t) override {
    SNAPSHOT_RETURN_IF_ERROR(Check("rename " + f));
    return target()->RenameFile(f, t);
  }
  Status RenameNoReplace(const std::string& f, const std::string& t) override {
    SNAPSHOT_RETURN_IF_ERROR(Check("link " + f));
    return target()->RenameNoReplace(f, t);
  }
  Status RemoveFile(const std::string& p) override {
    SNAPSHOT_RETURN_IF_ERROR(Check("remove " + p));
    return target()->RemoveFile(p);
  }
  Status SyncDir(const std::string& d) override {
    SNAPSHOT_RETURN_IF_ERROR(Check("fsync dir " + d));
    return target()->SyncDir(d);
  }
  Status CreateDir(const std::string& d, unsigned m) override {
    SNAPSHOT_RETURN_IF_ERROR(Check("mkdir " + d));
    return target()->CreateDir(d, m);
  }

 private:
  mutable std::mutex mu_;
  int fail_at_ = 0;
  bool sticky_ = false;
  int ops_ = 0;
  bool fired_ = false;
  std::string match_;
  std::string first_fault_;
};

inline Status FaultFile::Append(const void* data, size_t n) {
  Status s = env_->Check("append " + path_);
  // Like a disk filling up: part of the data may land before the error.
  if (!s.ok()) {
    target_->Append(data, n / 2);
    return s;
  }
  return target_->Append(data, n);
}
inline Status FaultFile::WriteAt(uint64_t offset, const void* data, size_t n) {
  Status s = env_->Check("write " + path_);
  if (!s.ok()) {
    target_->WriteAt(offset, data, n / 2);
    return s;
  }
  return target_->WriteAt(offset, data, n);
}
inline Status FaultFile::Sync() {
  SNAPSHOT_RETURN_IF_ERROR(env_->Check("fsync " + path_));
  return target_->Sync();
}
inline Status FaultFile::Close() {
  Status s = env_->Check("close " + path_);
  Status c = target_->Close();  // the descriptor is released either way, as close(2) does
  return s.ok() ? c : s;
}

}  // namespace store_test
