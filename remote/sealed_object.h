// Sealed objects: how an encrypted remote stores a file's bytes
// (docs/FORMAT.md §13 is the byte-level description).
//
//   Status s = Seal(key, "packs/0000000007.pack", size, read_plain, append_sealed);
//   s = Unseal(key, "packs/0000000007.pack", sealed_size, read_sealed, append_plain);
//
// A sealed object is a 40-byte header and the file in chunks of 64 KiB,
// each encrypted and authenticated on its own with XChaCha20-Poly1305
// (libsodium's crypto_aead_xchacha20poly1305_ietf), so memory stays at one
// chunk whatever the file's size, and a range of the file can be read by
// reading only its chunks. Each chunk's associated data is the header, a
// last-chunk flag and the object's name: an object moved to another name,
// chunks reordered or dropped, or a file cut short all fail authentication.
//
// The nonce is not random: it is a keyed hash (BLAKE2b, under a subkey of
// its own) of the object's name and the whole file, as in SIV encryption.
// The same file under the same name therefore seals to the same bytes, so
// a push can tell from a listing's ETag that the remote already holds a
// manifest, with no record kept locally; and two different files never
// share a nonce. What it reveals is only that one name holds the same bytes
// as before, which the store's immutable names say anyway. The file is
// read twice (hash, then encrypt); a file that changes in between is
// refused rather than sealed under a nonce made for other bytes.
#pragma once

#include <sodium.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "remote/remote_key.h"
#include "store/env.h"
#include "store/status.h"

namespace snapshot {

constexpr size_t kSealedHeaderBytes = 40;
constexpr size_t kSealedChunkBytes = 64 << 10;  // plaintext per chunk
constexpr size_t kSealedTagBytes = 16;          // per chunk

// Reads `n` bytes at `offset` of the input into `out`.
using ReadAtFn = std::function<Status(uint64_t offset, size_t n, void* out)>;
// Appends `n` bytes to the output.
using AppendFn = std::function<Status(const void* data, size_t n)>;

// The size of a file of `plain_size` bytes once sealed.
uint64_t SealedSize(uint64_t plain_size);
// The inverse; false when no file seals to `sealed_size` bytes.
bool PlainSizeOf(uint64_t sealed_size, uint64_t* plain_size);
// Whether `header` (at least 8 bytes) starts as a sealed object does.
bool LooksSealed(const std::string& header);

// The sealed form of a file, made on the fly as it is read, so an upload
// needs no sealed copy on disk: each read seals the chunks it covers (the
// last one is kept, so reading in order seals each chunk once). Opening it
// reads the whole file once, for the nonce; the file must not change until
// the view is gone (a change is an error once the view has been read in
// order to the end).
class SealedView : public RandomAccessFile {
 public:
  // `read` gives the file's `plain_size` bytes; `key` must outlive the view.
  static Status Open(const RemoteKey& key, std::string name, uint64_t plain_size, ReadAtFn read,
                     std::unique_ptr<SealedView>* out);
  ~SealedView() override;

  Status Read(uint64_t offset, size_t n, void* out) const override;
  uint64_t Size() const override;

 private:
  explicit SealedView(const RemoteKey& key) : key_(key) {}
  Status SealChunk(uint64_t index) const;

  const RemoteKey& key_;
  std::string name_, header_, ad_middle_, ad_last_;
  uint64_t plain_size_ = 0, chunks_ = 0;
  ReadAtFn read_;
  unsigned char prefix_[16];
  // The chunk last sealed, and the hash of the chunks read in order so far.
  mutable std::vector<unsigned char> plain_, sealed_;
  mutable uint64_t cached_ = ~uint64_t(0), rehashed_ = 0;
  mutable crypto_generichash_state rehash_;
  mutable Status changed_;
};

// Seals the `plain_size` bytes `read` gives as object `name`.
Status Seal(const RemoteKey& key, const std::string& name, uint64_t plain_size, const ReadAtFn& read,
            const AppendFn& append);
// Checks and decrypts the sealed object `name` of `sealed_size` bytes,
// appending the plaintext chunk by chunk (a failure can follow appends:
// the caller discards the output). InvalidArgument when it is sealed with
// another key, Corruption when it is not sealed, cut short, damaged,
// altered or not the object stored under `name`, NotSupported for a newer
// format.
Status Unseal(const RemoteKey& key, const std::string& name, uint64_t sealed_size, const ReadAtFn& read,
              const AppendFn& append);

}  // namespace snapshot
