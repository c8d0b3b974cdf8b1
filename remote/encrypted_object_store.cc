#include "remote/encrypted_object_store.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "remote/sealed_object.h"
#include "store/format.h"

namespace snapshot {
namespace {

// What the marker holds, sealed under its own name like any object.
const char kMarkerContents[] = "SQSNCRYPT 1\n";
constexpr uint64_t kMaxMarkerBytes = 4096;

ObjectInfo AsPlain(ObjectInfo info) {
  uint64_t plain = 0;
  info.size = PlainSizeOf(info.size, &plain) ? plain : kUnknownObjectSize;
  return info;
}

const char kInterrupted[] = "interrupted";

Status ReadAtOf(const std::string& bytes, uint64_t offset, size_t n, void* out) {
  if (offset > bytes.size() || n > bytes.size() - offset) return Status::IOError("read past the end of a buffer");
  std::memcpy(out, bytes.data() + offset, n);
  return Status::OK();
}

}  // namespace

EncryptedObjectStore::EncryptedObjectStore(std::unique_ptr<ObjectStore> inner, std::unique_ptr<RemoteKey> key,
                                           Env* env, std::string temp_dir)
    : inner_(std::move(inner)), key_(std::move(key)), env_(env), temp_dir_(std::move(temp_dir)) {
  if (temp_dir_.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    temp_dir_ = tmp && tmp[0] ? tmp : "/tmp";
  }
}

std::string EncryptedObjectStore::TempPath() const {
  uint64_t nonce = 0;
  env_->RandomBytes(&nonce, sizeof nonce);
  return JoinPath(temp_dir_, "snapshot-sealed-" + std::to_string(long(getpid())) + "-" + std::to_string(nonce) + ".tmp");
}

// The inner store reads a sealed view of the file, sealed as it reads
// (twice, for S3: the MD5 goes before the body), so no sealed copy is ever
// written locally.
Status EncryptedObjectStore::Upload(const std::string& key, uint64_t size, const ReadAtFn& read) {
  std::unique_ptr<SealedView> view;
  SNAPSHOT_RETURN_IF_ERROR(SealedView::Open(*key_, key, size, read, &view));
  return inner_->PutFrom(key, *view);
}

Status EncryptedObjectStore::Put(const std::string& key, const std::string& path) {
  std::unique_ptr<RandomAccessFile> in;
  SNAPSHOT_RETURN_IF_ERROR(env_->NewRandomAccessFile(path, &in));
  return PutFrom(key, *in);
}

Status EncryptedObjectStore::PutFrom(const std::string& key, RandomAccessFile& source) {
  // The store replaces files by rename, never in place, so an open file's
  // bytes do not change under the seal.
  return Upload(key, source.Size(), [&](uint64_t offset, size_t n, void* buf) {
    return Cancelled() ? Status::Interrupted(kInterrupted) : source.Read(offset, n, buf);
  });
}

Status EncryptedObjectStore::PutBytes(const std::string& key, const std::string& contents) {
  return Upload(key, contents.size(),
                [&](uint64_t offset, size_t n, void* buf) { return ReadAtOf(contents, offset, n, buf); });
}

Status EncryptedObjectStore::Get(const std::string& key, const std::string& path, unsigned mode) {
  const std::string sealed_path = path + ".sealed";
  SNAPSHOT_RETURN_IF_ERROR(inner_->Get(key, sealed_path, 0600));
  std::unique_ptr<RandomAccessFile> in;
  std::unique_ptr<WritableFile> out;
  bool created = false;
  Status s = env_->NewRandomAccessFile(sealed_path, &in);
  if (s.ok()) s = env_->NewWritableFile(path, mode, &out);
  if (s.ok()) {
    created = true;
    s = Unseal(
        *key_, key, in->Size(),
        [&](uint64_t offset, size_t n, void* buf) {
          return Cancelled() ? Status::Interrupted(kInterrupted) : in->Read(offset, n, buf);
        },
        [&](const void* data, size_t n) { return out->Append(data, n); });
  }
  if (s.ok()) s = out->Sync();
  if (out) {
    Status c = out->Close();
    if (s.ok()) s = c;
  }
  in.reset();
  env_->RemoveFile(sealed_path);
  if (!s.ok() && created) env_->RemoveFile(path);  // never a partial or unchecked file
  return s;
}

Status EncryptedObjectStore::GetBytes(const std::string& key, uint64_t limit, std::string* contents) {
  contents->clear();
  const std::string tmp = TempPath();
  SNAPSHOT_RETURN_IF_ERROR(inner_->Get(key, tmp, 0600));
  std::unique_ptr<RandomAccessFile> in;
  Status s = env_->NewRandomAccessFile(tmp, &in);
  if (s.ok() && in->Size() > SealedSize(limit)) s = Status::Corruption(key + " is larger than it can be");
  if (s.ok()) {
    s = Unseal(*key_, key, in->Size(), [&](uint64_t offset, size_t n, void* buf) { return in->Read(offset, n, buf); },
               [&](const void* data, size_t n) {
                 contents->append(static_cast<const char*>(data), n);
                 return Status::OK();
               });
  }
  in.reset();
  env_->RemoveFile(tmp);
  if (!s.ok()) contents->clear();
  return s;
}

Status EncryptedObjectStore::Head(const std::string& key, ObjectInfo* info) {
  SNAPSHOT_RETURN_IF_ERROR(inner_->Head(key, info));
  *info = AsPlain(*info);
  return Status::OK();
}

Status EncryptedObjectStore::List(const std::string& prefix, std::vector<ObjectInfo>* objects) {
  std::vector<ObjectInfo> sealed;
  SNAPSHOT_RETURN_IF_ERROR(inner_->List(prefix, &sealed));
  objects->clear();
  for (ObjectInfo& o : sealed) {
    if (o.key != kEncryptionMarkerKey) objects->push_back(AsPlain(std::move(o)));
  }
  return Status::OK();
}

Status EncryptedObjectStore::Delete(const std::string& key) { return inner_->Delete(key); }

void EncryptedObjectStore::SetCancel(std::function<bool()> should_stop) {
  inner_->SetCancel(should_stop);
  ObjectStore::SetCancel(std::move(should_stop));
}

std::string EncryptedObjectStore::StoredMd5(const std::string& key, const std::string& contents) {
  std::string sealed;
  Status s = Seal(
      *key_, key, contents.size(), [&](uint64_t offset, size_t n, void* buf) { return ReadAtOf(contents, offset, n, buf); },
      [&](const void* data, size_t n) {
        sealed.append(static_cast<const char*>(data), n);
        return Status::OK();
      });
  return s.ok() ? Md5::Hex(Md5::Of(sealed)) : std::string();  // "": matches no listing, so it is sent
}

namespace {

Status KeyMismatch(const std::string& remote_name, const std::string& key_file) {
  return Status::InvalidArgument(remote_name + " was encrypted with another key than the one in " + key_file +
                                 " (" + kRemoteKeyFileVariable + "); nothing was read or written");
}

// Whether the remote's STORE is sealed: a copy whose marker was deleted.
Status StoreLooksSealed(Env* env, ObjectStore* plain, bool* sealed) {
  const char* tmp = std::getenv("TMPDIR");
  uint64_t nonce = 0;
  env->RandomBytes(&nonce, sizeof nonce);
  const std::string path = JoinPath(tmp && tmp[0] ? tmp : "/tmp", "snapshot-store-peek-" + std::to_string(nonce));
  SNAPSHOT_RETURN_IF_ERROR(plain->Get(kStoreFileName, path, 0600));
  std::string head(8, '\0');
  std::unique_ptr<RandomAccessFile> f;
  Status s = env->NewRandomAccessFile(path, &f);
  if (s.ok()) s = f->Size() >= 8 ? f->Read(0, 8, &head[0]) : Status::OK();
  f.reset();
  env->RemoveFile(path);
  *sealed = s.ok() && LooksSealed(head);
  return s;
}

}  // namespace

Status OpenEncryptedRemote(Env* env, std::unique_ptr<ObjectStore> plain, const std::string& remote_name,
                       const std::string& key_file, RemoteUse use, std::unique_ptr<ObjectStore>* out) {
  ObjectInfo info;
  Status s = plain->Head(kEncryptionMarkerKey, &info);
  if (!s.ok() && !s.IsNotFound()) return s;
  const bool marked = s.ok();
  if (key_file.empty()) {
    if (marked) {
      return Status::InvalidArgument(remote_name + " is encrypted: set " + kRemoteKeyFileVariable +
                                     " to the file holding its key; nothing was read or written");
    }
    *out = std::move(plain);
    return Status::OK();
  }
  std::unique_ptr<RemoteKey> key;
  SNAPSHOT_RETURN_IF_ERROR(RemoteKey::Load(key_file, &key));
  std::unique_ptr<EncryptedObjectStore> encrypted(new EncryptedObjectStore(std::move(plain), std::move(key), env));
  if (marked) {
    std::string contents;
    s = encrypted->GetBytes(kEncryptionMarkerKey, kMaxMarkerBytes, &contents);
    if (s.code() == Status::Code::kInvalidArgument) return KeyMismatch(remote_name, key_file);
    if (!s.ok()) {
      return Status::Corruption(remote_name + "'s " + kEncryptionMarkerKey +
                                " object does not open with the key in " + key_file + ": " + s.message());
    }
    if (contents != kMarkerContents) {
      return Status::Corruption(remote_name + "'s " + kEncryptionMarkerKey + " object holds something else");
    }
  } else {
    s = encrypted->inner()->Head(kStoreFileName, &info);
    if (s.ok()) {
      bool sealed = false;
      SNAPSHOT_RETURN_IF_ERROR(StoreLooksSealed(env, encrypted->inner(), &sealed));
      if (sealed) {
        return Status::Corruption(remote_name + " is encrypted but its " + kEncryptionMarkerKey +
                                  " object is gone; nothing was read or written");
      }
      return Status::InvalidArgument(remote_name + " holds an unencrypted copy, and " + kRemoteKeyFileVariable +
                                     " names a key: unset it to use this copy, or push to a new location to "
                                     "start an encrypted one; nothing was read or written");
    }
    if (!s.IsNotFound()) return s;
    // A new remote: the marker goes first, so no object is ever there
    // without it saying how to read it.
    if (use == RemoteUse::kPush) SNAPSHOT_RETURN_IF_ERROR(encrypted->PutBytes(kEncryptionMarkerKey, kMarkerContents));
  }
  *out = std::move(encrypted);
  return Status::OK();
}

}  // namespace snapshot
