// Md5: the checksum S3 checks an upload against (Content-MD5) and reports
// back (ETag), computed incrementally with OpenSSL's implementation.
//
//   Md5 md5;
//   md5.Update(data, n);            // as many times as needed
//   std::string digest = md5.Finish();   // 16 raw bytes
//   Md5::Hex(digest), Md5::Base64(digest)
//
// MD5 is not a defence against an attacker here, only against damage in
// transit or at rest: it is what the S3 protocol checks, on every server.
#pragma once

#include <cstddef>
#include <string>

struct evp_md_ctx_st;

namespace snapshot {

class Md5 {
 public:
  Md5();
  ~Md5();
  Md5(const Md5&) = delete;
  Md5& operator=(const Md5&) = delete;

  void Update(const void* data, size_t n);
  std::string Finish();  // the 16-byte digest; then the object starts over

  static std::string Of(const std::string& data);
  static std::string Hex(const std::string& digest);
  static std::string Base64(const std::string& digest);

 private:
  evp_md_ctx_st* ctx_;
};

}  // namespace snapshot
