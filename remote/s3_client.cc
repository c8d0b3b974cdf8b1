// See s3_client.h. The file has three parts: the request/response plumbing
// around one libcurl handle (Perform, PerformOnce and the callbacks), the
// classification of failures into Status, and the S3 operations.
#include "remote/s3_client.h"

#include "remote/remote_setting.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "remote/md5.h"
#include "remote/s3_xml.h"

namespace snapshot {

namespace {

// Error bodies and listings are small; a server that sends more is not
// trusted with our memory.
constexpr size_t kMaxBodyBytes = 16 << 20;
constexpr size_t kIoBlock = 1 << 20;

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// RFC 3986 percent-encoding as Signature V4 wants it: everything but
// unreserved characters (and '/' in paths) as %XX with capital hex.
std::string UriEncode(const std::string& s, bool keep_slash) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

// A query string in Signature V4's canonical form (parameters sorted by
// name, names and values encoded, "name=" for an empty value), so it is the
// same whether or not libcurl canonicalizes it before signing.
std::string CanonicalQuery(std::vector<std::pair<std::string, std::string>> params) {
  std::sort(params.begin(), params.end());
  std::string out;
  for (const auto& [name, value] : params) {
    if (!out.empty()) out.push_back('&');
    out += UriEncode(name, false) + "=" + UriEncode(value, false);
  }
  return out;
}

std::string Unquote(const std::string& etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') return etag.substr(1, etag.size() - 2);
  return etag;
}

bool IsHexMd5(const std::string& s) {
  return s.size() == 32 && std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

Status S3Options::FromEnvironment(const std::string& url, S3Options* out) {
  S3Options o;
  SNAPSHOT_RETURN_IF_ERROR(CheckRemoteUrl(url));
  const std::string rest = url.substr(std::string("s3://").size());
  const size_t slash = rest.find('/');
  o.bucket = rest.substr(0, slash);
  o.prefix = slash == std::string::npos ? "" : rest.substr(slash + 1);
  while (!o.prefix.empty() && o.prefix.back() == '/') o.prefix.pop_back();
  auto env = [](const char* name) { const char* v = std::getenv(name); return std::string(v ? v : ""); };
  o.access_key = env("AWS_ACCESS_KEY_ID");
  o.secret_key = env("AWS_SECRET_ACCESS_KEY");
  o.session_token = env("AWS_SESSION_TOKEN");
  if (o.access_key.empty() || o.secret_key.empty()) {
    return Status::InvalidArgument("no credentials for " + url +
                                   ": set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment");
  }
  o.region = env("AWS_REGION");
  if (o.region.empty()) o.region = env("AWS_DEFAULT_REGION");
  if (o.region.empty()) o.region = "us-east-1";
  o.endpoint = env("AWS_ENDPOINT_URL");
  if (o.endpoint.empty()) o.endpoint = "https://s3." + o.region + ".amazonaws.com";
  while (!o.endpoint.empty() && o.endpoint.back() == '/') o.endpoint.pop_back();
  if (o.endpoint.compare(0, 7, "http://") != 0 && o.endpoint.compare(0, 8, "https://") != 0) {
    return Status::InvalidArgument("AWS_ENDPOINT_URL '" + o.endpoint + "' is not an http:// or https:// address");
  }
  *out = std::move(o);
  return Status::OK();
}

// ---------------------------------------------------------------------------
// One request and its answer.

struct S3Client::Request {
  std::string method = "GET";  // GET, HEAD, PUT, POST, DELETE
  std::string object;          // the full object name; empty for the bucket
  std::string query;           // canonical (CanonicalQuery)
  std::vector<std::string> headers;
  // The body: `body` in memory, or `length` bytes of `file` from `offset`.
  std::string body;
  RandomAccessFile* file = nullptr;
  uint64_t offset = 0;
  uint64_t length = 0;
  // Where a successful answer's body goes: `sink` if set (a download),
  // otherwise Response::body. `restart` runs before each attempt so a
  // retried download starts from an empty file.
  std::function<Status(const char*, size_t)> sink;
  std::function<Status()> restart;
  std::string what;  // "PUT s3://bucket/key", for messages
  // Stopped by SetCancel's callback; not the abort that cleans up after one.
  bool cancellable = true;
};

struct S3Client::Response {
  long status = 0;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  Status local;      // a failure of our own side (reading or writing a file)
  uint64_t sent = 0;  // bytes of the request body handed to libcurl

  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// A transfer's progress: non-zero stops it (CURLE_ABORTED_BY_CALLBACK).
static int OnProgress(void* store, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<ObjectStore*>(store)->Cancelled() ? 1 : 0;
}

class S3Client::Transfer {
 public:
  Transfer(const Request& request, Response* response) : request_(request), response_(response) {}

  static size_t OnHeader(char* data, size_t size, size_t n, void* self) {
    auto* t = static_cast<Transfer*>(self);
    std::string line(data, size * n);
    if (line.compare(0, 5, "HTTP/") == 0) {
      // A new status line (after "100 Continue" too): start over.
      t->response_->headers.clear();
      size_t sp = line.find(' ');
      t->response_->status = sp == std::string::npos ? 0 : std::strtol(line.c_str() + sp + 1, nullptr, 10);
      return size * n;
    }
    size_t colon = line.find(':');
    if (colon != std::string::npos) {
      t->response_->headers[Lower(Trim(line.substr(0, colon)))] = Trim(line.substr(colon + 1));
    }
    return size * n;
  }

  static size_t OnBody(char* data, size_t size, size_t n, void* self) {
    auto* t = static_cast<Transfer*>(self);
    size_t bytes = size * n;
    long status = t->response_->status;
    if (status >= 200 && status < 300 && t->request_.sink) {
      Status s = t->request_.sink(data, bytes);
      if (!s.ok()) {
        t->response_->local = s;
        return 0;  // libcurl stops with CURLE_WRITE_ERROR
      }
      return bytes;
    }
    if (t->response_->body.size() + bytes > kMaxBodyBytes) {
      t->response_->local = Status::IOError(t->request_.what + ": the answer is larger than " +
                                            std::to_string(kMaxBodyBytes >> 20) + " MiB");
      return 0;
    }
    t->response_->body.append(data, bytes);
    return bytes;
  }

  static size_t OnRead(char* buffer, size_t size, size_t n, void* self) {
    auto* t = static_cast<Transfer*>(self);
    const Request& r = t->request_;
    uint64_t left = r.length - t->position_;
    size_t bytes = static_cast<size_t>(std::min<uint64_t>(left, size * n));
    if (bytes == 0) return 0;
    if (r.file != nullptr) {
      Status s = r.file->Read(r.offset + t->position_, bytes, buffer);
      if (!s.ok()) {
        t->response_->local = s;
        return CURL_READFUNC_ABORT;
      }
    } else {
      std::memcpy(buffer, r.body.data() + t->position_, bytes);
    }
    t->position_ += bytes;
    t->response_->sent = t->position_;
    return bytes;
  }

  // libcurl rewinds the body when it must send it again on the same
  // attempt (a redirect, a refused "Expect: 100-continue").
  static int OnSeek(void* self, curl_off_t offset, int origin) {
    auto* t = static_cast<Transfer*>(self);
    if (origin != SEEK_SET || offset < 0 || static_cast<uint64_t>(offset) > t->request_.length) {
      return CURL_SEEKFUNC_CANTSEEK;
    }
    t->position_ = static_cast<uint64_t>(offset);
    return CURL_SEEKFUNC_OK;
  }

 private:
  const Request& request_;
  Response* response_;
  uint64_t position_ = 0;
};

S3Client::S3Client(S3Options options, Env* env) : options_(std::move(options)), env_(env) {
  GlobalInit();
  curl_ = curl_easy_init();
}

S3Client::~S3Client() {
  if (curl_ != nullptr) curl_easy_cleanup(static_cast<CURL*>(curl_));
}

std::string S3Client::ObjectName(const std::string& key) const {
  return options_.prefix.empty() ? key : options_.prefix + "/" + key;
}

std::string S3Client::Url(const std::string& object_name, const std::string& query) const {
  std::string url = options_.endpoint + "/" + UriEncode(options_.bucket, false);
  if (!object_name.empty()) url += "/" + UriEncode(object_name, true);
  if (!query.empty()) url += "?" + query;
  return url;
}

Status S3Client::Perform(Request& request, Response* response) {
  int backoff_ms = options_.initial_backoff_ms;
  static thread_local std::minstd_rand jitter(std::random_device{}());
  for (int attempt = 1;; attempt++) {
    if (Cancelled()) return Status::Interrupted(request.what + ": interrupted");
    bool retry = false;
    Status s = PerformOnce(request, response, &retry);
    if (!retry || attempt >= options_.max_attempts) {
      if (!s.ok() && retry) {
        return Status::IOError(s.message() + " (gave up after " + std::to_string(attempt) + " attempts)");
      }
      return s;
    }
    // Half to all of the backoff, so clients that failed together do not
    // come back together.
    int sleep_ms = backoff_ms / 2 + static_cast<int>(jitter() % static_cast<unsigned>(backoff_ms / 2 + 1));
    // In slices, so that a cancel is seen within 50 ms.
    for (int slept = 0; slept < sleep_ms && !Cancelled(); slept += 50) {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(50, sleep_ms - slept)));
    }
    backoff_ms = std::min(backoff_ms * 2, options_.max_backoff_ms);
  }
}

Status S3Client::PerformOnce(Request& request, Response* response, bool* retry) {
  *retry = false;
  *response = Response();
  if (curl_ == nullptr) return Status::IOError(request.what + ": libcurl could not start");
  if (request.restart) SNAPSHOT_RETURN_IF_ERROR(request.restart());
  CURL* h = static_cast<CURL*>(curl_);
  curl_easy_reset(h);
  Transfer transfer(request, response);
  char error[CURL_ERROR_SIZE] = {0};
  const std::string url = Url(request.object, request.query);
  const std::string sigv4 = "aws:amz:" + options_.region + ":s3";

  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4.c_str());
  // Separately, not as "user:password": tempauth's access keys hold a colon.
  curl_easy_setopt(h, CURLOPT_USERNAME, options_.access_key.c_str());
  curl_easy_setopt(h, CURLOPT_PASSWORD, options_.secret_key.c_str());
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout_ms));
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, static_cast<long>(std::max(1, options_.stall_timeout_ms / 1000)));
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &Transfer::OnHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &transfer);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &Transfer::OnBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &transfer);
  // libcurl calls this at least once a second, and often while bytes move.
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, request.cancellable ? 0L : 1L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &OnProgress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, static_cast<ObjectStore*>(this));

  struct curl_slist* headers = nullptr;
  // The body is protected by Content-MD5 instead of a SHA-256 in the
  // signature, which would need a pass over the file before each request.
  headers = curl_slist_append(headers, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
  if (!options_.session_token.empty()) {
    headers = curl_slist_append(headers, ("x-amz-security-token: " + options_.session_token).c_str());
  }
  for (const std::string& header : request.headers) headers = curl_slist_append(headers, header.c_str());

  if (request.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (request.method == "PUT" || request.method == "POST") {
    if (request.file == nullptr) request.length = request.body.size();
    if (request.method == "PUT") {
      curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(request.length));
    } else {
      curl_easy_setopt(h, CURLOPT_POST, 1L);
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.length));
      headers = curl_slist_append(headers, "Content-Type: application/xml");
    }
    curl_easy_setopt(h, CURLOPT_READFUNCTION, &Transfer::OnRead);
    curl_easy_setopt(h, CURLOPT_READDATA, &transfer);
    curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, &Transfer::OnSeek);
    curl_easy_setopt(h, CURLOPT_SEEKDATA, &transfer);
  } else if (request.method == "DELETE") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);

  CURLcode rc = curl_easy_perform(h);
  curl_slist_free_all(headers);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &response->status);

  if (!response->local.ok()) return response->local;  // our file failed, not the network
  if (rc == CURLE_ABORTED_BY_CALLBACK) return Status::Interrupted(request.what + ": interrupted");
  if (rc != CURLE_OK) {
    const std::string why = error[0] != '\0' ? error : curl_easy_strerror(rc);
    switch (rc) {
      case CURLE_UNSUPPORTED_PROTOCOL:
      case CURLE_URL_MALFORMAT:
      case CURLE_NOT_BUILT_IN:
        return Status::InvalidArgument(request.what + ": bad endpoint " + options_.endpoint + ": " + why);
      default:
        *retry = true;
        return Status::IOError(request.what + ": cannot reach the object store at " + options_.endpoint + ": " + why);
    }
  }
  long status = response->status;
  if (status >= 200 && status < 300) return Status::OK();

  std::string code, message;
  s3xml::ParseError(response->body, &code, &message);
  std::string detail = "HTTP " + std::to_string(status);
  if (!code.empty()) detail += " " + code;
  if (!message.empty()) detail += ": " + message;
  if (status >= 500 || status == 429 || status == 408 || code == "RequestTimeout" || code == "BadDigest" ||
      code == "SlowDown") {
    // BadDigest: the body changed on its way; sending it again is the cure.
    *retry = true;
    return Status::IOError(request.what + ": the object store at " + options_.endpoint + " answered " + detail);
  }
  if (status == 401 || status == 403) {
    return Status::IOError(request.what + ": the object store at " + options_.endpoint +
                           " refused the credentials (check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY" +
                           std::string(options_.session_token.empty() ? "" : ", AWS_SESSION_TOKEN") +
                           " and AWS_REGION): " + detail);
  }
  if (code == "NoSuchBucket") {
    return Status::NotFound(request.what + ": there is no bucket '" + options_.bucket + "' at " + options_.endpoint);
  }
  if (status == 404) return Status::NotFound(request.what + ": no such object (" + detail + ")");
  return Status::IOError(request.what + ": the object store at " + options_.endpoint + " answered " + detail);
}

// ---------------------------------------------------------------------------
// Operations.

Status S3Client::CheckBucket() {
  Request r;
  r.method = "HEAD";
  r.what = "HEAD s3://" + options_.bucket;
  Response response;
  Status s = Perform(r, &response);
  if (s.IsNotFound()) {
    return Status::NotFound("there is no bucket '" + options_.bucket + "' at " + options_.endpoint);
  }
  return s;
}

Status S3Client::Head(const std::string& key, ObjectInfo* info) {
  Request r;
  r.method = "HEAD";
  r.object = ObjectName(key);
  r.what = "HEAD s3://" + options_.bucket + "/" + r.object;
  Response response;
  SNAPSHOT_RETURN_IF_ERROR(Perform(r, &response));
  info->key = key;
  info->size = std::strtoull(response.Header("content-length").c_str(), nullptr, 10);
  return Status::OK();
}

Status S3Client::Delete(const std::string& key) {
  Request r;
  r.method = "DELETE";
  r.object = ObjectName(key);
  r.what = "DELETE s3://" + options_.bucket + "/" + r.object;
  Response response;
  Status s = Perform(r, &response);
  if (s.IsNotFound()) {
    // Deleting what is not there is done; a missing bucket is not.
    std::string code, message;
    s3xml::ParseError(response.body, &code, &message);
    if (code != "NoSuchBucket") return Status::OK();
  }
  return s;
}

Status S3Client::List(const std::string& prefix, std::vector<ObjectInfo>* objects) {
  objects->clear();
  const std::string base = options_.prefix.empty() ? "" : options_.prefix + "/";
  std::string token;
  for (;;) {
    std::vector<std::pair<std::string, std::string>> params = {
        {"list-type", "2"}, {"max-keys", std::to_string(options_.list_page_size)}, {"prefix", base + prefix}};
    if (!token.empty()) params.emplace_back("continuation-token", token);
    Request r;
    r.query = CanonicalQuery(params);
    r.what = "LIST s3://" + options_.bucket + "/" + base + prefix;
    Response response;
    SNAPSHOT_RETURN_IF_ERROR(Perform(r, &response));
    s3xml::ListPage page;
    std::string error;
    if (!s3xml::ParseListObjectsV2(response.body, &page, &error)) {
      return Status::IOError(r.what + ": the object store's answer is not a listing: " + error);
    }
    for (const s3xml::ListedObject& o : page.objects) {
      if (o.key.compare(0, base.size(), base) != 0) continue;  // outside our prefix: not ours
      const std::string etag = Lower(o.etag);
      objects->push_back(ObjectInfo{o.key.substr(base.size()), o.size, IsHexMd5(etag) ? etag : ""});
    }
    if (!page.truncated) break;
    if (page.next_token == token) {
      return Status::IOError(r.what + ": the object store repeats the same continuation token");
    }
    token = page.next_token;
  }
  std::sort(objects->begin(), objects->end(), [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
  return Status::OK();
}

Status S3Client::Get(const std::string& key, const std::string& path, unsigned mode) {
  Request r;
  r.object = ObjectName(key);
  r.what = "GET s3://" + options_.bucket + "/" + r.object;
  std::unique_ptr<WritableFile> out;
  bool created = false;  // only a file this call made is removed on failure
  Md5 md5;
  r.restart = [&]() -> Status {
    out.reset();
    md5.Finish();
    Status s = env_->NewWritableFile(path, mode, &out);
    created = created || s.ok();
    return s;
  };
  r.sink = [&](const char* data, size_t n) -> Status {
    md5.Update(data, n);
    return out->Append(data, n);
  };
  Response response;
  Status s = Perform(r, &response);
  if (s.ok()) {
    // Objects this client stored carry their MD5; others are checked by
    // an ETag that is a plain MD5 (not a multipart one, "...-N").
    std::string expected = response.Header("x-amz-meta-md5");
    if (expected.empty() && IsHexMd5(Unquote(response.Header("etag")))) expected = Unquote(response.Header("etag"));
    const std::string actual = Md5::Hex(md5.Finish());
    if (!expected.empty() && Lower(expected) != actual) {
      s = Status::Corruption(r.what + ": the object's content does not match its checksum (MD5 " + actual +
                             ", stored with " + expected + "): the copy on the object store is damaged");
    }
  }
  if (s.ok()) s = out->Sync();
  if (s.ok()) s = out->Close();
  if (!s.ok() && created) {
    out.reset();
    env_->RemoveFile(path);  // a partial or damaged download is never left behind
  }
  return s;
}

Status S3Client::Put(const std::string& key, const std::string& path) {
  std::unique_ptr<RandomAccessFile> file;
  SNAPSHOT_RETURN_IF_ERROR(env_->NewRandomAccessFile(path, &file));
  return PutFrom(key, *file);
}

Status S3Client::PutFrom(const std::string& key, RandomAccessFile& source) {
  RandomAccessFile* const file = &source;
  const uint64_t size = file->Size();
  const bool multipart = size >= options_.multipart_threshold && size > options_.part_size;

  // One pass over the file for the checksums the requests carry: the
  // whole file's, and each part's for a multipart upload.
  Md5 whole;
  std::vector<std::string> part_md5s;
  {
    Md5 part;
    std::string block;
    uint64_t part_left = options_.part_size;
    for (uint64_t pos = 0; pos < size;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>({kIoBlock, size - pos, multipart ? part_left : kIoBlock}));
      block.resize(n);
      SNAPSHOT_RETURN_IF_ERROR(file->Read(pos, n, &block[0]));
      whole.Update(block.data(), n);
      pos += n;
      if (multipart) {
        part.Update(block.data(), n);
        part_left -= n;
        if (part_left == 0 || pos == size) {
          part_md5s.push_back(part.Finish());
          part_left = options_.part_size;
        }
      }
    }
  }
  const std::string md5 = whole.Finish();

  std::string etag;
  Status s;
  if (!multipart) {
    s = PutSingle(key, *file, size, md5);
    etag = Md5::Hex(md5);
  } else {
    // What S3 reports for a multipart object: the MD5 of the parts' MD5s,
    // then "-" and the number of parts.
    std::string joined;
    for (const std::string& p : part_md5s) joined += p;
    etag = Md5::Hex(Md5::Of(joined)) + "-" + std::to_string(part_md5s.size());
    s = PutMultipart(key, *file, size, md5, part_md5s);
  }
  if (s.ok()) s = VerifyStored(key, size, md5, etag);
  // Never leave a wrong copy listed: a later push, matching by name and
  // size, would take it for the file.
  if (s.IsCorruption()) Delete(key);
  return s;
}

Status S3Client::PutSingle(const std::string& key, RandomAccessFile& file, uint64_t size, const std::string& md5) {
  Request r;
  r.method = "PUT";
  r.object = ObjectName(key);
  r.what = "PUT s3://" + options_.bucket + "/" + r.object;
  r.file = &file;
  r.length = size;
  r.headers = {"Content-MD5: " + Md5::Base64(md5), "x-amz-meta-md5: " + Md5::Hex(md5)};
  Response response;
  SNAPSHOT_RETURN_IF_ERROR(Perform(r, &response));
  if (Lower(Unquote(response.Header("etag"))) != Md5::Hex(md5)) {
    return Status::Corruption(r.what + ": the object store stored different bytes than were sent (ETag " +
                              response.Header("etag") + ", sent MD5 " + Md5::Hex(md5) + ")");
  }
  return Status::OK();
}

Status S3Client::PutMultipart(const std::string& key, RandomAccessFile& file, uint64_t size,
                              const std::string& md5, const std::vector<std::string>& part_md5s) {
  const std::string object = ObjectName(key);
  const std::string where = "s3://" + options_.bucket + "/" + object;
  Response response;

  Request start;
  start.method = "POST";
  start.object = object;
  start.query = CanonicalQuery({{"uploads", ""}});
  start.headers = {"x-amz-meta-md5: " + Md5::Hex(md5)};
  start.what = "multipart upload of " + where;
  SNAPSHOT_RETURN_IF_ERROR(Perform(start, &response));
  std::string upload_id;
  if (!s3xml::FindElement(response.body, 0, response.body.size(), "UploadId", &upload_id) || upload_id.empty()) {
    return Status::IOError(start.what + ": the object store's answer has no UploadId");
  }

  const size_t parts = part_md5s.size();
  std::string complete = "<CompleteMultipartUpload>";
  Status s;
  for (size_t i = 0; i < parts && s.ok(); i++) {
    const std::string& part_md5 = part_md5s[i];
    Request put;
    put.method = "PUT";
    put.object = object;
    put.query = CanonicalQuery({{"partNumber", std::to_string(i + 1)}, {"uploadId", upload_id}});
    put.what = "PUT part " + std::to_string(i + 1) + " of " + where;
    put.file = &file;
    put.offset = i * options_.part_size;
    put.length = std::min<uint64_t>(options_.part_size, size - put.offset);
    put.headers = {"Content-MD5: " + Md5::Base64(part_md5)};
    s = Perform(put, &response);
    if (s.ok() && Lower(Unquote(response.Header("etag"))) != Md5::Hex(part_md5)) {
      s = Status::Corruption(put.what + ": the object store stored different bytes than were sent (ETag " +
                             response.Header("etag") + ", sent MD5 " + Md5::Hex(part_md5) + ")");
    }
    complete += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>\"" + Md5::Hex(part_md5) +
                "\"</ETag></Part>";
  }
  complete += "</CompleteMultipartUpload>";
  if (s.ok()) {
    Request finish;
    finish.method = "POST";
    finish.object = object;
    finish.query = CanonicalQuery({{"uploadId", upload_id}});
    finish.body = complete;
    finish.what = "completing the multipart upload of " + where;
    s = Perform(finish, &response);
    // S3 may report a failure to complete in a 200 answer's body.
    std::string code, message;
    if (s.ok() && response.body.find("<Error>") != std::string::npos) {
      s3xml::ParseError(response.body, &code, &message);
      s = Status::IOError(finish.what + ": the object store answered " + code + ": " + message);
    }
  }
  if (!s.ok()) {
    // Best effort: a pending upload is invisible to lists and reads, and
    // aborting it frees its parts.
    Request abort;
    abort.method = "DELETE";
    abort.object = object;
    abort.query = CanonicalQuery({{"uploadId", upload_id}});
    abort.what = "aborting the multipart upload of " + where;
    abort.cancellable = false;
    Response ignored;
    bool retry;
    PerformOnce(abort, &ignored, &retry);
  }
  return s;
}

Status S3Client::VerifyStored(const std::string& key, uint64_t size, const std::string& md5, const std::string& etag) {
  Request r;
  r.method = "HEAD";
  r.object = ObjectName(key);
  r.what = "checking s3://" + options_.bucket + "/" + r.object + " after its upload";
  Response response;
  SNAPSHOT_RETURN_IF_ERROR(Perform(r, &response));
  const std::string stored_size = response.Header("content-length");
  const std::string stored_md5 = Lower(response.Header("x-amz-meta-md5"));
  const std::string stored_etag = Lower(Unquote(response.Header("etag")));
  if (stored_size != std::to_string(size) || stored_md5 != Md5::Hex(md5) || stored_etag != etag) {
    return Status::Corruption(r.what + ": the object store holds something else than was sent (size " + stored_size +
                              " for " + std::to_string(size) + ", MD5 " + stored_md5 + " for " + Md5::Hex(md5) +
                              ", ETag " + stored_etag + " for " + etag + ")");
  }
  return Status::OK();
}

}  // namespace snapshot
