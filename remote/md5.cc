#include "remote/md5.h"

#include <openssl/evp.h>

#include <cstdlib>

namespace snapshot {

Md5::Md5() : ctx_(EVP_MD_CTX_new()) {
  // Only out of memory makes these fail; there is no sensible way on.
  if (ctx_ == nullptr || EVP_DigestInit_ex(ctx_, EVP_md5(), nullptr) != 1) std::abort();
}

Md5::~Md5() { EVP_MD_CTX_free(ctx_); }

void Md5::Update(const void* data, size_t n) { EVP_DigestUpdate(ctx_, data, n); }

std::string Md5::Finish() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_, digest, &len);
  EVP_DigestInit_ex(ctx_, EVP_md5(), nullptr);
  return std::string(reinterpret_cast<char*>(digest), len);
}

std::string Md5::Of(const std::string& data) {
  Md5 md5;
  md5.Update(data.data(), data.size());
  return md5.Finish();
}

std::string Md5::Hex(const std::string& digest) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : digest) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::string Md5::Base64(const std::string& digest) {
  std::string out(4 * ((digest.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(&out[0]),
                          reinterpret_cast<const unsigned char*>(digest.data()), static_cast<int>(digest.size()));
  out.resize(n);
  return out;
}

}  // namespace snapshot
