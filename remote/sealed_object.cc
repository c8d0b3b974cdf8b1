#include "remote/sealed_object.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "store/coding.h"

namespace snapshot {
namespace {

const char kSealedMagic[] = "SQSNSEAL";
constexpr uint32_t kSealedVersion = 1;
constexpr size_t kNoncePrefixBytes = 16;  // then the chunk's index, u64
constexpr uint64_t kSealedChunkOnDisk = kSealedChunkBytes + kSealedTagBytes;

static_assert(crypto_aead_xchacha20poly1305_ietf_ABYTES == kSealedTagBytes, "tag size");
static_assert(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES == kNoncePrefixBytes + 8, "nonce size");
static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == RemoteKey::kBytes, "key size");
static_assert(kSealedHeaderBytes == 8 + 4 + 4 + RemoteKey::kIdBytes + kNoncePrefixBytes, "header size");

uint64_t ChunkCount(uint64_t plain_size) {
  return std::max<uint64_t>(1, (plain_size + kSealedChunkBytes - 1) / kSealedChunkBytes);
}

// magic, version, chunk size, key id, nonce prefix.
std::string Header(const RemoteKey& key, const unsigned char* nonce_prefix) {
  std::string h;
  ByteWriter w(&h);
  w.Bytes(kSealedMagic, 8);
  w.U32(kSealedVersion);
  w.U32(uint32_t(kSealedChunkBytes));
  w.Bytes(key.id(), RemoteKey::kIdBytes);
  w.Bytes(nonce_prefix, kNoncePrefixBytes);
  return h;
}

void ChunkNonce(const unsigned char* prefix, uint64_t index, unsigned char nonce[24]) {
  std::memcpy(nonce, prefix, kNoncePrefixBytes);
  for (int i = 0; i < 8; i++) nonce[kNoncePrefixBytes + i] = static_cast<unsigned char>(index >> (8 * i));
}

// The header, whether this is the last chunk, and the object's name: what a
// chunk's tag vouches for besides its bytes.
std::string AssociatedData(const std::string& header, bool last, const std::string& name) {
  std::string ad = header;
  ad.push_back(last ? 1 : 0);
  ad += name;
  return ad;
}

// The nonce is keyed BLAKE2b of the name (its length first, so name and
// content cannot trade bytes) and then the whole file.
void StartNonceHash(const RemoteKey& key, const std::string& name, crypto_generichash_state* state) {
  crypto_generichash_init(state, key.nonce_key(), RemoteKey::kBytes, kNoncePrefixBytes);
  std::string length;
  ByteWriter(&length).U64(name.size());
  crypto_generichash_update(state, reinterpret_cast<const unsigned char*>(length.data()), length.size());
  crypto_generichash_update(state, reinterpret_cast<const unsigned char*>(name.data()), name.size());
}

Status NoncePrefixOf(const RemoteKey& key, const std::string& name, uint64_t plain_size, const ReadAtFn& read,
                     std::vector<unsigned char>& buffer, unsigned char prefix[kNoncePrefixBytes]) {
  crypto_generichash_state state;
  StartNonceHash(key, name, &state);
  for (uint64_t pos = 0; pos < plain_size;) {
    const size_t n = size_t(std::min<uint64_t>(kSealedChunkBytes, plain_size - pos));
    SNAPSHOT_RETURN_IF_ERROR(read(pos, n, buffer.data()));
    crypto_generichash_update(&state, buffer.data(), n);
    pos += n;
  }
  crypto_generichash_final(&state, prefix, kNoncePrefixBytes);
  return Status::OK();
}

}  // namespace

uint64_t SealedSize(uint64_t plain_size) {
  return kSealedHeaderBytes + plain_size + kSealedTagBytes * ChunkCount(plain_size);
}

bool PlainSizeOf(uint64_t sealed_size, uint64_t* plain_size) {
  if (sealed_size < kSealedHeaderBytes + kSealedTagBytes) return false;
  const uint64_t body = sealed_size - kSealedHeaderBytes;
  const uint64_t chunks = (body + kSealedChunkOnDisk - 1) / kSealedChunkOnDisk;
  const uint64_t plain = body - kSealedTagBytes * chunks;
  if (SealedSize(plain) != sealed_size) return false;  // a last chunk with a tag and no bytes after others
  *plain_size = plain;
  return true;
}

bool LooksSealed(const std::string& header) { return header.compare(0, 8, kSealedMagic, 8) == 0; }

Status SealedView::Open(const RemoteKey& key, std::string name, uint64_t plain_size, ReadAtFn read,
                        std::unique_ptr<SealedView>* out) {
  std::unique_ptr<SealedView> v(new SealedView(key));
  v->name_ = std::move(name);
  v->plain_size_ = plain_size;
  v->read_ = std::move(read);
  v->chunks_ = ChunkCount(plain_size);
  v->plain_.resize(kSealedChunkBytes);
  v->sealed_.resize(kSealedChunkOnDisk);
  SNAPSHOT_RETURN_IF_ERROR(NoncePrefixOf(key, v->name_, plain_size, v->read_, v->plain_, v->prefix_));
  v->header_ = Header(key, v->prefix_);
  v->ad_middle_ = AssociatedData(v->header_, false, v->name_);
  v->ad_last_ = AssociatedData(v->header_, true, v->name_);
  StartNonceHash(key, v->name_, &v->rehash_);
  *out = std::move(v);
  return Status::OK();
}

SealedView::~SealedView() { sodium_memzero(plain_.data(), plain_.size()); }

uint64_t SealedView::Size() const { return SealedSize(plain_size_); }

Status SealedView::SealChunk(uint64_t i) const {
  if (cached_ == i) return Status::OK();
  const uint64_t pos = i * kSealedChunkBytes;
  const size_t n = size_t(std::min<uint64_t>(kSealedChunkBytes, plain_size_ - pos));
  if (n > 0) SNAPSHOT_RETURN_IF_ERROR(read_(pos, n, plain_.data()));
  // Chunks read in order are hashed again: a file that changed since the
  // nonce was made from it must not be sealed under that nonce. (Every
  // store reads what it uploads in order at least once.)
  if (i == rehashed_) {
    crypto_generichash_update(&rehash_, plain_.data(), n);
    if (++rehashed_ == chunks_) {
      unsigned char check[kNoncePrefixBytes];
      crypto_generichash_final(&rehash_, check, sizeof check);
      if (sodium_memcmp(check, prefix_, sizeof check) != 0) {
        changed_ = Status::IOError(name_ + " changed while it was being encrypted; nothing was sent");
        return changed_;
      }
    }
  }
  unsigned char nonce[24];
  ChunkNonce(prefix_, i, nonce);
  const std::string& ad = i + 1 == chunks_ ? ad_last_ : ad_middle_;
  unsigned long long sealed_n = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(sealed_.data(), &sealed_n, plain_.data(), n,
                                             reinterpret_cast<const unsigned char*>(ad.data()), ad.size(), nullptr,
                                             nonce, key_.object_key());
  cached_ = i;
  return Status::OK();
}

Status SealedView::Read(uint64_t offset, size_t n, void* out) const {
  if (!changed_.ok()) return changed_;
  if (offset > Size() || n > Size() - offset) return Status::Corruption("read past the end of sealed " + name_);
  auto* dst = static_cast<unsigned char*>(out);
  while (n > 0) {
    size_t take;
    if (offset < kSealedHeaderBytes) {
      take = std::min<size_t>(n, size_t(kSealedHeaderBytes - offset));
      std::memcpy(dst, header_.data() + offset, take);
    } else {
      const uint64_t i = (offset - kSealedHeaderBytes) / kSealedChunkOnDisk;
      const size_t within = size_t((offset - kSealedHeaderBytes) % kSealedChunkOnDisk);
      SNAPSHOT_RETURN_IF_ERROR(SealChunk(i));
      const size_t chunk_bytes = size_t(std::min<uint64_t>(kSealedChunkBytes, plain_size_ - i * kSealedChunkBytes)) +
                                 kSealedTagBytes;
      take = std::min(n, chunk_bytes - within);
      std::memcpy(dst, sealed_.data() + within, take);
    }
    dst += take;
    offset += take;
    n -= take;
  }
  return Status::OK();
}

Status Seal(const RemoteKey& key, const std::string& name, uint64_t plain_size, const ReadAtFn& read,
            const AppendFn& append) {
  std::unique_ptr<SealedView> view;
  SNAPSHOT_RETURN_IF_ERROR(SealedView::Open(key, name, plain_size, read, &view));
  std::vector<unsigned char> block(kSealedChunkOnDisk);
  for (uint64_t pos = 0; pos < view->Size();) {
    const size_t n = size_t(std::min<uint64_t>(block.size(), view->Size() - pos));
    SNAPSHOT_RETURN_IF_ERROR(view->Read(pos, n, block.data()));
    SNAPSHOT_RETURN_IF_ERROR(append(block.data(), n));
    pos += n;
  }
  return Status::OK();
}

Status Unseal(const RemoteKey& key, const std::string& name, uint64_t sealed_size, const ReadAtFn& read,
              const AppendFn& append) {
  if (sealed_size < 8) return Status::Corruption(name + " is not encrypted (it is too short to be)");
  std::string header(std::min<uint64_t>(sealed_size, kSealedHeaderBytes), '\0');
  SNAPSHOT_RETURN_IF_ERROR(read(0, header.size(), &header[0]));
  if (!LooksSealed(header)) {
    return Status::Corruption(name + " is not encrypted: it was stored without a key, or replaced");
  }
  uint64_t plain_size = 0;
  if (header.size() < kSealedHeaderBytes) return Status::Corruption(name + " is cut short (no whole header)");
  ByteReader r(header);
  char magic[8];
  uint32_t version = 0, chunk_bytes = 0;
  unsigned char id[RemoteKey::kIdBytes], prefix[kNoncePrefixBytes];
  r.Bytes(magic, 8);
  r.U32(&version);
  r.U32(&chunk_bytes);
  r.Bytes(id, sizeof id);
  r.Bytes(prefix, sizeof prefix);
  if (version == 0) return Status::Corruption(name + " has encryption format version 0");
  if (version > kSealedVersion) {
    return Status::NotSupported(name + " is encrypted in a newer format (version " + std::to_string(version) +
                                "); use a newer snapshot extension");
  }
  if (chunk_bytes != kSealedChunkBytes) {
    return Status::Corruption(name + " names a chunk size of " + std::to_string(chunk_bytes) + " bytes, not " +
                              std::to_string(kSealedChunkBytes));
  }
  if (sodium_memcmp(id, key.id(), sizeof id) != 0) {
    return Status::InvalidArgument(name + " was encrypted with another key than the one in " + key.source());
  }
  if (!PlainSizeOf(sealed_size, &plain_size)) {
    return Status::Corruption(name + " is cut short or has bytes added (" + std::to_string(sealed_size) +
                              " bytes is no encrypted object's size)");
  }
  std::vector<unsigned char> plain(kSealedChunkBytes), sealed(kSealedChunkOnDisk);
  const uint64_t chunks = ChunkCount(plain_size);
  const std::string ad_middle = AssociatedData(header, false, name), ad_last = AssociatedData(header, true, name);
  for (uint64_t i = 0; i < chunks; i++) {
    const uint64_t pos = i * kSealedChunkBytes;
    const size_t n = size_t(std::min<uint64_t>(kSealedChunkBytes, plain_size - pos));
    SNAPSHOT_RETURN_IF_ERROR(read(kSealedHeaderBytes + i * kSealedChunkOnDisk, n + kSealedTagBytes, sealed.data()));
    unsigned char nonce[24];
    ChunkNonce(prefix, i, nonce);
    const std::string& ad = i + 1 == chunks ? ad_last : ad_middle;
    unsigned long long plain_n = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain.data(), &plain_n, nullptr, sealed.data(),
                                                   n + kSealedTagBytes,
                                                   reinterpret_cast<const unsigned char*>(ad.data()), ad.size(),
                                                   nonce, key.object_key()) != 0) {
      return Status::Corruption(name + " fails authentication at byte " + std::to_string(pos) +
                                ": it was damaged, altered, or is another object stored under this name");
    }
    SNAPSHOT_RETURN_IF_ERROR(append(plain.data(), size_t(plain_n)));
  }
  sodium_memzero(plain.data(), plain.size());
  return Status::OK();
}

}  // namespace snapshot
