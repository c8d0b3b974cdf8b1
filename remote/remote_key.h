// RemoteKey: the secret that encrypts a store's copy on object storage
// (remote/encrypted_object_store.h), read from a key file.
//
//   std::unique_ptr<RemoteKey> key;
//   Status s = RemoteKey::Load("/etc/snapshot/app.key", &key);
//
// Make a key file once, keep a copy somewhere safe (without it the remote
// copy cannot be read by anyone, us included):
//
//   (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > app.key)
//
// The file holds 32 bytes, as 64 hex digits (a trailing newline is
// allowed) or raw. It is refused when anyone but its owner may read or
// write it, so the key is never silently exposed. Only the file's *name*
// is a setting ($SNAPSHOT_REMOTE_KEY_FILE): the key itself never appears in
// SQL, in the store's files or in the environment.
//
// The key is not used directly: three subkeys are derived from it
// (libsodium's crypto_kdf, context "SQSNOBJ1"): 1 encrypts objects, 2 makes
// their nonces, 3 gives the key's public id, which sealed objects carry so
// that "another key" is told apart from "damaged". The memory holding them
// is wiped when the RemoteKey goes.
#pragma once

#include <memory>
#include <string>

#include "store/status.h"

namespace snapshot {

constexpr char kRemoteKeyFileVariable[] = "SNAPSHOT_REMOTE_KEY_FILE";

class RemoteKey {
 public:
  static constexpr size_t kBytes = 32;
  static constexpr size_t kIdBytes = 8;

  // InvalidArgument (naming `path` and what to do) when the file is
  // missing, unreadable, readable by others than its owner, or not a key.
  static Status Load(const std::string& path, std::unique_ptr<RemoteKey>* out);
  // From the 32 key bytes themselves (tests, tools).
  static std::unique_ptr<RemoteKey> FromBytes(const unsigned char key[kBytes], std::string source);

  ~RemoteKey();
  RemoteKey(const RemoteKey&) = delete;
  RemoteKey& operator=(const RemoteKey&) = delete;

  const unsigned char* object_key() const { return object_key_; }  // the AEAD's key
  const unsigned char* nonce_key() const { return nonce_key_; }    // keys the nonce's hash
  const unsigned char* id() const { return id_; }                  // kIdBytes, public
  // Where the key came from (its file), for errors.
  const std::string& source() const { return source_; }

 private:
  RemoteKey() = default;

  unsigned char object_key_[kBytes];
  unsigned char nonce_key_[kBytes];
  unsigned char id_[kIdBytes];
  std::string source_;
};

// The key file the environment names ($SNAPSHOT_REMOTE_KEY_FILE), "" when
// none: the remote is then used unencrypted.
std::string RemoteKeyFileSetting();

}  // namespace snapshot
