// S3Client: an ObjectStore on any S3-compatible server, through libcurl.
//
//   S3Options options;
//   Status s = S3Options::FromEnvironment("s3://bucket/prefix", &options);
//   S3Client s3(options, Env::Default());
//   s = s3.Put("packs/000001.pack", "/path/to/store/packs/000001.pack");
//
// libcurl does the HTTP and signs every request itself (AWS Signature V4,
// CURLOPT_AWS_SIGV4); this file only says which requests to make. Requests
// use path-style addresses (endpoint/bucket/key), which every S3-compatible
// server accepts.
//
// Integrity, end to end: every upload is sent with Content-MD5 (the server
// refuses a body that does not match it), records the whole file's MD5 in
// the object's metadata (x-amz-meta-md5), and is followed by a HEAD that
// compares the stored size, ETag and MD5 with the local file's. A download
// hashes the bytes as they arrive and refuses (Corruption) an object whose
// MD5 differs from the one it was stored with.
//
// Memory stays bounded: files are streamed in and out through the Env in
// blocks; files of `multipart_threshold` bytes or more are uploaded in
// parts of `part_size` bytes (S3's multipart upload), so a failure costs
// one part, not the file. A failed multipart upload is aborted, so no part
// of it becomes visible; when even the abort cannot reach the server, its
// parts stay in the server's pending uploads, which lists never show.
//
// Failures: network errors (cannot connect, reset, timeout) and 5xx answers
// are retried up to `max_attempts` times with exponential backoff; then the
// error names the endpoint and what happened. Wrong credentials, an unknown
// bucket and a missing object each give an error that says so.
//
// One S3Client serves one thread at a time (it keeps one libcurl handle so
// connections are reused); make one per thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "remote/object_store.h"
#include "store/env.h"

namespace snapshot {

struct S3Options {
  std::string endpoint;  // http(s)://host[:port], no trailing slash
  std::string region;
  std::string access_key;
  std::string secret_key;
  std::string session_token;  // empty unless temporary credentials
  std::string bucket;
  std::string prefix;  // "" or "a/b" (no leading or trailing slash)

  uint64_t multipart_threshold = 64ull << 20;
  uint64_t part_size = 16ull << 20;  // S3 requires at least 5 MiB per part
  int list_page_size = 1000;         // keys per ListObjectsV2 request
  int max_attempts = 6;              // per request, the first included
  int initial_backoff_ms = 100;      // doubled after each failed attempt
  int max_backoff_ms = 5000;
  int connect_timeout_ms = 5000;
  // A transfer slower than 1 byte/s for this long is abandoned (and
  // retried); large objects may take as long as they need otherwise.
  int stall_timeout_ms = 30000;

  // Fills endpoint, region and credentials from AWS_ENDPOINT_URL,
  // AWS_REGION (or AWS_DEFAULT_REGION), AWS_ACCESS_KEY_ID,
  // AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, and bucket and prefix from
  // `url` (s3://bucket[/prefix]). Without AWS_ENDPOINT_URL the endpoint is
  // AWS's for the region. InvalidArgument naming what is missing or wrong.
  static Status FromEnvironment(const std::string& url, S3Options* out);
};

class S3Client : public ObjectStore {
 public:
  // `env` reads and writes the local files; it must outlive the client.
  S3Client(S3Options options, Env* env);
  ~S3Client() override;
  S3Client(const S3Client&) = delete;
  S3Client& operator=(const S3Client&) = delete;

  Status Put(const std::string& key, const std::string& path) override;
  Status PutFrom(const std::string& key, RandomAccessFile& source) override;
  Status Get(const std::string& key, const std::string& path, unsigned mode) override;
  Status Head(const std::string& key, ObjectInfo* info) override;
  Status List(const std::string& prefix, std::vector<ObjectInfo>* objects) override;
  Status Delete(const std::string& key) override;

  // Whether the bucket exists and the credentials may use it.
  Status CheckBucket();

  const S3Options& options() const { return options_; }

 private:
  struct Request;
  struct Response;
  class Transfer;

  Status Perform(Request& request, Response* response);
  Status PerformOnce(Request& request, Response* response, bool* retry);
  Status PutSingle(const std::string& key, RandomAccessFile& file, uint64_t size, const std::string& md5);
  Status PutMultipart(const std::string& key, RandomAccessFile& file, uint64_t size,
                      const std::string& md5, const std::vector<std::string>& part_md5s);
  Status VerifyStored(const std::string& key, uint64_t size, const std::string& md5, const std::string& etag);
  std::string ObjectName(const std::string& key) const;
  std::string Url(const std::string& object_name, const std::string& query) const;

  S3Options options_;
  Env* env_;
  void* curl_;  // CURL*, reused so connections stay open between requests
};

}  // namespace snapshot
