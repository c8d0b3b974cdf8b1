// EncryptedObjectStore: client-side encryption of a remote copy, as a layer
// over any ObjectStore, so the server never sees a page, a manifest or even
// the database's name in the clear (restic and borg do the same).
//
//   std::unique_ptr<ObjectStore> remote;
//   Status s = OpenEncryptedRemote(Env::Default(), std::make_unique<S3Client>(options, Env::Default()),
//                              "s3://backups/app", RemoteKeyFileSetting(), RemoteUse::kPush, &remote);
//   Replicator(Env::Default(), store_dir, remote.get(), "s3://backups/app").Push(&pushed);
//
// OpenEncryptedRemote is the one way replication opens a remote. It decides
// from the key setting and the remote's `ENCRYPTION` marker object:
//
//   key file set | remote holds          | result
//   -------------|-----------------------|-------------------------------------
//   no           | no marker             | the remote itself, unencrypted
//   no           | the marker            | error: the remote is encrypted, name the key file
//   yes          | the marker            | encrypted, once the marker decrypts with the key
//                |                       | (another key: an error saying so)
//   yes          | nothing (new remote)  | a push writes the marker first, then encrypted
//   yes          | an unencrypted STORE  | error: the remote is not encrypted
//
// Each case is decided before anything is read into or written to the
// store or a restore's target.
//
// The layer itself (remote/sealed_object.h gives the format): Put hands
// the inner store a sealed view of the local file (SealedView: chunks
// sealed as the upload reads them, no copy on disk); Get downloads into
// `<path>.sealed` and unseals into `path`, checking every chunk before it
// writes it. Memory stays at a 64 KiB chunk or two either way. Head and List report the files' own (plaintext)
// sizes, which a sealed object's size gives exactly, so replication's
// comparisons by name and size work unchanged; a listed MD5 is the sealed
// bytes', which StoredMd5 computes for a local file because sealing is
// deterministic. An object that cannot be a sealed one is listed with size
// kUnknownObjectSize, which no local file has. The marker is not listed.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "remote/object_store.h"
#include "remote/remote_key.h"
#include "remote/sealed_object.h"
#include "store/env.h"

namespace snapshot {

// The object whose presence says a remote is encrypted, and whose
// authenticated contents say with which key.
constexpr char kEncryptionMarkerKey[] = "ENCRYPTION";
constexpr uint64_t kUnknownObjectSize = ~uint64_t(0);

class EncryptedObjectStore : public ObjectStore {
 public:
  // `temp_dir`: where GetBytes downloads a sealed object to; "" is
  // $TMPDIR, or /tmp. `env` must outlive the store.
  EncryptedObjectStore(std::unique_ptr<ObjectStore> inner, std::unique_ptr<RemoteKey> key, Env* env,
                       std::string temp_dir = "");

  Status Put(const std::string& key, const std::string& path) override;
  Status PutFrom(const std::string& key, RandomAccessFile& source) override;
  Status Get(const std::string& key, const std::string& path, unsigned mode) override;
  Status Head(const std::string& key, ObjectInfo* info) override;
  Status List(const std::string& prefix, std::vector<ObjectInfo>* objects) override;
  Status Delete(const std::string& key) override;
  std::string StoredMd5(const std::string& key, const std::string& contents) override;
  // Forwarded to the inner store; sealing and unsealing poll it too.
  void SetCancel(std::function<bool()> should_stop) override;

  // Seals `contents` and stores them as `key`; reads them back, at most
  // `limit` bytes.
  Status PutBytes(const std::string& key, const std::string& contents);
  Status GetBytes(const std::string& key, uint64_t limit, std::string* contents);

  ObjectStore* inner() const { return inner_.get(); }
  const RemoteKey& key() const { return *key_; }

 private:
  std::string TempPath() const;
  Status Upload(const std::string& key, uint64_t size, const ReadAtFn& read);

  std::unique_ptr<ObjectStore> inner_;
  std::unique_ptr<RemoteKey> key_;
  Env* env_;
  std::string temp_dir_;
};

enum class RemoteUse {
  kRead,  // restore, verify: never writes to the remote
  kPush,  // may write the marker to a remote that holds nothing yet
};

// The remote `plain` (named `remote_name` in errors) as replication must
// use it, given the key file `key_file` ("" none: RemoteKeyFileSetting()
// is the user's setting), as the table above says.
Status OpenEncryptedRemote(Env* env, std::unique_ptr<ObjectStore> plain, const std::string& remote_name,
                       const std::string& key_file, RemoteUse use, std::unique_ptr<ObjectStore>* out);

}  // namespace snapshot
