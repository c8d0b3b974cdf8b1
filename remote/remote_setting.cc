#include "remote/remote_setting.h"

#include <cstdlib>
#include <memory>

#include "remote/encrypted_object_store.h"
#include "remote/s3_client.h"

namespace snapshot {
namespace {

constexpr char kMagic[] = "SQSNREMOTE1";
constexpr uint64_t kMaxFileBytes = 64 * 1024;

}  // namespace

Status CheckRemoteUrl(const std::string& url) {
  const std::string scheme = "s3://";
  const std::string form = "remote location '" + url + "' is not of the form s3://bucket/prefix";
  if (url.compare(0, scheme.size(), scheme) != 0 || url.size() > 1024) return Status::InvalidArgument(form);
  const std::string rest = url.substr(scheme.size());
  const std::string bucket = rest.substr(0, rest.find('/'));
  if (bucket.empty() || bucket.find_first_of("?#%\\ ") != std::string::npos) return Status::InvalidArgument(form);
  for (char c : url) {
    // One line of a file, and part of every request's address.
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return Status::InvalidArgument(form);
  }
  if (rest.size() > bucket.size() + 1 && rest[bucket.size() + 1] == '/') return Status::InvalidArgument(form);
  return Status::OK();
}

Status ReadRemoteSetting(Env* env, const std::string& store_dir, std::string* url) {
  const std::string path = JoinPath(store_dir, kRemoteFileName);
  std::string text;
  SNAPSHOT_RETURN_IF_ERROR(ReadSmallFile(env, path, kMaxFileBytes, &text));
  const std::string first = std::string(kMagic) + "\n";
  if (text.compare(0, first.size(), first) != 0) return Status::Corruption(path + " is not a REMOTE file");
  url->clear();
  for (size_t pos = first.size(); pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(pos, end - pos);
    if (line.compare(0, 4, "url ") == 0) *url = line.substr(4);  // other keys: a newer writer's
    pos = end + 1;
  }
  if (!url->empty() && !CheckRemoteUrl(*url).ok()) return Status::Corruption(path + " names no valid location");
  return Status::OK();
}

Status WriteRemoteSetting(Env* env, const std::string& store_dir, const std::string& url, unsigned mode) {
  if (!url.empty()) SNAPSHOT_RETURN_IF_ERROR(CheckRemoteUrl(url));
  std::string text = std::string(kMagic) + "\n";
  if (!url.empty()) text += "url " + url + "\n";
  return WriteFileAtomically(env, JoinPath(store_dir, kRemoteFileName), text, mode);
}

Status EffectiveRemote(Env* env, const std::string& store_dir, std::string* url) {
  Status s = ReadRemoteSetting(env, store_dir, url);
  if (!s.IsNotFound()) return s;
  const char* from_env = std::getenv(kRemoteEnvironmentVariable);
  *url = from_env ? from_env : "";
  if (!url->empty() && !CheckRemoteUrl(*url).ok()) {
    return Status::InvalidArgument(std::string(kRemoteEnvironmentVariable) + ": " + CheckRemoteUrl(*url).message());
  }
  return Status::OK();
}

Status OpenRemoteStore(const std::string& url, bool for_push, std::unique_ptr<ObjectStore>* out) {
  S3Options options;
  SNAPSHOT_RETURN_IF_ERROR(S3Options::FromEnvironment(url, &options));
  // Encrypted or not, as the key setting and the remote's marker say; every
  // caller gets the same answer, or one error before anything is written.
  std::unique_ptr<ObjectStore> plain(new S3Client(options, Env::Default()));
  return OpenEncryptedRemote(Env::Default(), std::move(plain), url, RemoteKeyFileSetting(),
                             for_push ? RemoteUse::kPush : RemoteUse::kRead, out);
}

}  // namespace snapshot
