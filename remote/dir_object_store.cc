#include "remote/dir_object_store.h"

#include <algorithm>
#include <memory>

namespace snapshot {

namespace {

constexpr size_t kCopyBlock = 1 << 20;
const char kUploads[] = ".uploads";

}  // namespace

// Keys name files below the root and nothing else: no empty, "." or ".."
// component, no leading '/', and not the temporary directory.
Status DirObjectStore::CheckKey(const std::string& key) const {
  size_t start = 0;
  while (true) {
    size_t slash = key.find('/', start);
    const std::string part = key.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (part.empty() || part == "." || part == ".." || (start == 0 && part == kUploads)) {
      return Status::InvalidArgument("object key '" + key + "' is not a relative path of plain names");
    }
    if (slash == std::string::npos) return Status::OK();
    start = slash + 1;
  }
}

Status DirObjectStore::CopyFile(RandomAccessFile& source, const std::string& to, unsigned mode, bool* created) {
  *created = false;
  RandomAccessFile* const in = &source;
  std::unique_ptr<WritableFile> out;
  SNAPSHOT_RETURN_IF_ERROR(env_->NewWritableFile(to, mode, &out));
  *created = true;
  std::string block;
  Status s;
  for (uint64_t pos = 0; pos < in->Size() && s.ok();) {
    if (Cancelled()) return Status::Interrupted("interrupted");
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kCopyBlock, in->Size() - pos));
    block.resize(n);
    s = in->Read(pos, n, &block[0]);
    if (s.ok()) s = out->Append(block.data(), n);
    pos += n;
  }
  if (s.ok()) s = out->Sync();
  Status c = out->Close();
  return s.ok() ? c : s;
}

Status DirObjectStore::Put(const std::string& key, const std::string& path) {
  if (Cancelled()) return Status::Interrupted("interrupted");
  SNAPSHOT_RETURN_IF_ERROR(CheckKey(key));
  std::unique_ptr<RandomAccessFile> in;
  SNAPSHOT_RETURN_IF_ERROR(env_->NewRandomAccessFile(path, &in));
  return PutFrom(key, *in);
}

Status DirObjectStore::PutFrom(const std::string& key, RandomAccessFile& source) {
  if (Cancelled()) return Status::Interrupted("interrupted");
  SNAPSHOT_RETURN_IF_ERROR(CheckKey(key));
  const std::string target = JoinPath(root_, key);
  // Every directory from the root down to the object's, and the uploads'.
  std::vector<std::string> dirs = {root_, JoinPath(root_, kUploads)};
  for (size_t slash = key.find('/'); slash != std::string::npos; slash = key.find('/', slash + 1)) {
    dirs.push_back(JoinPath(root_, key.substr(0, slash)));
  }
  for (const std::string& dir : dirs) {
    if (!env_->IsDirectory(dir)) SNAPSHOT_RETURN_IF_ERROR(env_->CreateDir(dir, 0755));
  }
  uint64_t nonce = 0;
  SNAPSHOT_RETURN_IF_ERROR(env_->RandomBytes(&nonce, sizeof nonce));
  const std::string tmp = JoinPath(JoinPath(root_, kUploads), std::to_string(nonce));
  bool created;
  Status s = CopyFile(source, tmp, 0644, &created);
  if (s.ok()) s = env_->RenameFile(tmp, target);
  if (!s.ok()) {
    if (created) env_->RemoveFile(tmp);
    return s;
  }
  return env_->SyncDir(DirName(target));
}

Status DirObjectStore::Get(const std::string& key, const std::string& path, unsigned mode) {
  if (Cancelled()) return Status::Interrupted("interrupted");
  SNAPSHOT_RETURN_IF_ERROR(CheckKey(key));
  const std::string source = JoinPath(root_, key);
  if (!env_->FileExists(source) || env_->IsDirectory(source)) {
    return Status::NotFound("no object '" + key + "' in " + root_);
  }
  std::unique_ptr<RandomAccessFile> in;
  SNAPSHOT_RETURN_IF_ERROR(env_->NewRandomAccessFile(source, &in));
  bool created;
  Status s = CopyFile(*in, path, mode, &created);
  if (!s.ok() && created) env_->RemoveFile(path);  // never a partial copy
  return s;
}

Status DirObjectStore::Head(const std::string& key, ObjectInfo* info) {
  SNAPSHOT_RETURN_IF_ERROR(CheckKey(key));
  const std::string path = JoinPath(root_, key);
  if (!env_->FileExists(path) || env_->IsDirectory(path)) {
    return Status::NotFound("no object '" + key + "' in " + root_);
  }
  info->key = key;
  return env_->GetFileSize(path, &info->size);
}

Status DirObjectStore::ListDir(const std::string& dir, const std::string& key_prefix,
                               std::vector<ObjectInfo>* objects) {
  std::vector<std::string> names;
  SNAPSHOT_RETURN_IF_ERROR(env_->GetChildren(dir, &names));
  for (const std::string& name : names) {
    if (name == "." || name == ".." || (key_prefix.empty() && name == kUploads)) continue;
    const std::string path = JoinPath(dir, name);
    if (env_->IsDirectory(path)) {
      SNAPSHOT_RETURN_IF_ERROR(ListDir(path, key_prefix + name + "/", objects));
    } else {
      ObjectInfo info{key_prefix + name, 0, ""};
      SNAPSHOT_RETURN_IF_ERROR(env_->GetFileSize(path, &info.size));
      objects->push_back(std::move(info));
    }
  }
  return Status::OK();
}

Status DirObjectStore::List(const std::string& prefix, std::vector<ObjectInfo>* objects) {
  objects->clear();
  if (Cancelled()) return Status::Interrupted("interrupted");
  if (!env_->IsDirectory(root_)) return Status::OK();  // nothing stored yet
  std::vector<ObjectInfo> all;
  SNAPSHOT_RETURN_IF_ERROR(ListDir(root_, "", &all));
  for (ObjectInfo& o : all) {
    if (o.key.compare(0, prefix.size(), prefix) == 0) objects->push_back(std::move(o));
  }
  std::sort(objects->begin(), objects->end(), [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
  return Status::OK();
}

Status DirObjectStore::Delete(const std::string& key) {
  if (Cancelled()) return Status::Interrupted("interrupted");
  SNAPSHOT_RETURN_IF_ERROR(CheckKey(key));
  const std::string path = JoinPath(root_, key);
  if (!env_->FileExists(path)) return Status::OK();
  SNAPSHOT_RETURN_IF_ERROR(env_->RemoveFile(path));
  return env_->SyncDir(DirName(path));
}

}  // namespace snapshot
