// Little-endian encoding into a byte string and bounds-checked decoding out
// of one. Every parser of stored bytes reads through ByteReader, so a damaged
// or hostile store can make decoding fail, never read out of bounds.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

namespace snapshot {

class ByteWriter {
 public:
  explicit ByteWriter(std::string* out) : out_(out) {}
  void U8(uint8_t v) { out_->push_back(static_cast<char>(v)); }
  void U16(uint16_t v) { Fixed(v, 2); }
  void U32(uint32_t v) { Fixed(v, 4); }
  void U64(uint64_t v) { Fixed(v, 8); }
  void Bytes(const void* p, size_t n) { out_->append(static_cast<const char*>(p), n); }
  void String(const std::string& s) {  // u32 length, then the bytes
    U32(static_cast<uint32_t>(s.size()));
    Bytes(s.data(), s.size());
  }

 private:
  void Fixed(uint64_t v, int n) {
    for (int i = 0; i < n; i++) out_->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  std::string* out_;
};

class ByteReader {
 public:
  ByteReader(const void* data, size_t size) : p_(static_cast<const uint8_t*>(data)), left_(size) {}
  explicit ByteReader(const std::string& s) : ByteReader(s.data(), s.size()) {}

  // Each returns false, and leaves the reader failed, when bytes run out.
  bool U8(uint8_t* v) { return Fixed(v, 1); }
  bool U16(uint16_t* v) { return Fixed(v, 2); }
  bool U32(uint32_t* v) { return Fixed(v, 4); }
  bool U64(uint64_t* v) { return Fixed(v, 8); }
  bool Bytes(void* out, size_t n) {
    if (!Need(n)) return false;
    std::memcpy(out, p_, n);
    Skip(n);
    return true;
  }
  bool String(std::string* s, uint32_t max_len) {
    uint32_t n;
    if (!U32(&n) || n > max_len || !Need(n)) return Fail();
    s->assign(reinterpret_cast<const char*>(p_), n);
    Skip(n);
    return true;
  }
  size_t remaining() const { return left_; }
  bool failed() const { return failed_; }

 private:
  template <typename T>
  bool Fixed(T* v, int n) {
    if (!Need(static_cast<size_t>(n))) return false;
    uint64_t x = 0;
    for (int i = 0; i < n; i++) x |= static_cast<uint64_t>(p_[i]) << (8 * i);
    *v = static_cast<T>(x);
    Skip(static_cast<size_t>(n));
    return true;
  }
  bool Need(size_t n) { return (!failed_ && left_ >= n) || Fail(); }
  bool Fail() {
    failed_ = true;
    left_ = 0;
    return false;
  }
  void Skip(size_t n) {
    p_ += n;
    left_ -= n;
  }
  const uint8_t* p_;
  size_t left_;
  bool failed_ = false;
};

// SQLite's own files (database header, journal, WAL) are big-endian.
inline uint32_t LoadU32BE(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}
inline void StoreU32BE(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24);
  p[1] = uint8_t(v >> 16);
  p[2] = uint8_t(v >> 8);
  p[3] = uint8_t(v);
}

}  // namespace snapshot
