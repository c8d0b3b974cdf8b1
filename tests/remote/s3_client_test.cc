// S3Client against a real S3-compatible server (OpenStack Swift with s3api,
// started by tools/object-store.sh): every request is a real HTTP request,
// signed by libcurl and checked by the server. Each test works under a
// prefix of its own and removes it afterwards.
//
//   eval "$(tools/object-store.sh start)"
//   build/tests/remote/remote_tests
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <random>
#include <thread>

#include "remote/s3_client.h"
#include "tests/remote/remote_test_util.h"
#include "tests/store/fault_env.h"
#include "tests/test_util.h"

namespace {

using snapshot::Env;
using snapshot::EnvWrapper;
using snapshot::ObjectInfo;
using snapshot::RandomAccessFile;
using snapshot::S3Client;
using snapshot::S3Options;
using snapshot::Status;
using snapshot_test::FindFileHolding;
using snapshot_test::ObjectStoreDataDir;
using snapshot_test::ReadFile;
using snapshot_test::TempDir;

constexpr uint64_t kMiB = 1 << 20;

std::string RandomBytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary).write(data.data(), static_cast<std::streamsize>(data.size()));
}

bool Exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

int ObjectStoreScript(const std::string& command) {
  return std::system((std::string(SNAPSHOT_OBJECT_STORE_SCRIPT) + " " + command + " >/dev/null").c_str());
}

// Calls `hook` once, during the read that covers byte `at` for the second
// time: the first pass over a file computes its checksums, the second sends
// it, so the hook runs in the middle of the upload.
class HookEnv : public EnvWrapper {
 public:
  HookEnv(uint64_t at, std::function<void()> hook) : EnvWrapper(Env::Default()), at_(at), hook_(std::move(hook)) {}

  Status NewRandomAccessFile(const std::string& path, std::unique_ptr<RandomAccessFile>* out) override {
    std::unique_ptr<RandomAccessFile> file;
    SNAPSHOT_RETURN_IF_ERROR(target()->NewRandomAccessFile(path, &file));
    out->reset(new File(this, std::move(file)));
    return Status::OK();
  }
  int covering_reads() const { return covering_reads_; }

 private:
  class File : public RandomAccessFile {
   public:
    File(HookEnv* env, std::unique_ptr<RandomAccessFile> target) : env_(env), target_(std::move(target)) {}
    Status Read(uint64_t offset, size_t n, void* out) const override {
      if (offset <= env_->at_ && env_->at_ < offset + n && ++env_->covering_reads_ == 2) env_->hook_();
      return target_->Read(offset, n, out);
    }
    uint64_t Size() const override { return target_->Size(); }

   private:
    HookEnv* env_;
    std::unique_ptr<RandomAccessFile> target_;
  };
  uint64_t at_;
  std::function<void()> hook_;
  mutable std::atomic<int> covering_reads_{0};
};

class S3ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* remote = std::getenv("SNAPSHOT_REMOTE");
    if (std::getenv("AWS_ENDPOINT_URL") == nullptr || remote == nullptr) {
      GTEST_SKIP() << "no object store: run eval \"$(tools/object-store.sh start)\" first "
                      "(it sets AWS_ENDPOINT_URL, the AWS_* credentials and SNAPSHOT_REMOTE)";
    }
    const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
    Status s = S3Options::FromEnvironment(std::string(remote) + "/remote-tests/" + test->name() + "-" +
                                              std::to_string(getpid()),
                                          &options_);
    ASSERT_TRUE(s.ok()) << s.message();
    options_.initial_backoff_ms = 50;
    S3Client probe(options_, Env::Default());
    s = probe.CheckBucket();
    if (s.message().find("cannot reach") != std::string::npos) {
      GTEST_SKIP() << "the object store is not running (" << s.message()
                   << "): run eval \"$(tools/object-store.sh start)\" first";
    }
    ASSERT_TRUE(s.ok()) << s.message();
    ready_ = true;
  }

  void TearDown() override {
    if (!ready_) return;
    S3Client s3(options_, Env::Default());
    std::vector<ObjectInfo> objects;
    if (!s3.List("", &objects).ok()) return;
    for (const ObjectInfo& o : objects) s3.Delete(o.key);
  }

  std::vector<std::string> Keys(S3Client& s3, const std::string& prefix = "") {
    std::vector<ObjectInfo> objects;
    Status s = s3.List(prefix, &objects);
    EXPECT_TRUE(s.ok()) << s.message();
    std::vector<std::string> keys;
    for (const ObjectInfo& o : objects) keys.push_back(o.key);
    return keys;
  }

  S3Options options_;
  TempDir dir_;
  bool ready_ = false;
};

TEST_F(S3ClientTest, PutGetListDeleteRoundTripByteExact) {
  S3Client s3(options_, Env::Default());
  const std::vector<std::pair<std::string, std::string>> files = {
      {"empty", ""},
      {"one", "x"},
      {"packs/000001.pack", RandomBytes(100000, 1)},
      {"packs/000002.pack", RandomBytes(3 * kMiB + 17, 2)},
      {"manifests/a name with spaces & marks", RandomBytes(777, 3)},
  };
  for (const auto& [key, data] : files) {
    WriteFile(dir_ / "in", data);
    Status s = s3.Put(key, dir_ / "in");
    ASSERT_TRUE(s.ok()) << key << ": " << s.message();
  }
  std::vector<ObjectInfo> listed;
  ASSERT_TRUE(s3.List("", &listed).ok());
  ASSERT_EQ(files.size(), listed.size());
  EXPECT_EQ((std::vector<std::string>{"empty", "manifests/a name with spaces & marks", "one", "packs/000001.pack",
                                      "packs/000002.pack"}),
            Keys(s3));
  EXPECT_EQ((std::vector<std::string>{"packs/000001.pack", "packs/000002.pack"}), Keys(s3, "packs/"));
  for (const auto& [key, data] : files) {
    ObjectInfo info;
    ASSERT_TRUE(s3.Head(key, &info).ok()) << key;
    EXPECT_EQ(data.size(), info.size) << key;
    Status s = s3.Get(key, dir_ / "out", 0600);
    ASSERT_TRUE(s.ok()) << key << ": " << s.message();
    EXPECT_TRUE(ReadFile(dir_ / "out") == data) << key << " came back different";
  }

  ASSERT_TRUE(s3.Delete("packs/000001.pack").ok());
  EXPECT_EQ((std::vector<std::string>{"packs/000002.pack"}), Keys(s3, "packs/"));
  ObjectInfo info;
  EXPECT_TRUE(s3.Head("packs/000001.pack", &info).IsNotFound());
  unlink((dir_ / "out").c_str());
  Status s = s3.Get("packs/000001.pack", dir_ / "out", 0600);
  EXPECT_TRUE(s.IsNotFound()) << s.message();
  EXPECT_FALSE(Exists(dir_ / "out")) << "a failed download left a file behind";
  EXPECT_TRUE(s3.Delete("packs/000001.pack").ok()) << "deleting what is gone is done";
}

TEST_F(S3ClientTest, ListFollowsContinuationTokens) {
  options_.list_page_size = 2;
  S3Client s3(options_, Env::Default());
  WriteFile(dir_ / "in", "data");
  std::vector<std::string> expected;
  for (int i = 0; i < 5; i++) {
    expected.push_back("a/" + std::to_string(i));
    ASSERT_TRUE(s3.Put(expected.back(), dir_ / "in").ok());
  }
  ASSERT_TRUE(s3.Put("b", dir_ / "in").ok());
  EXPECT_EQ(expected, Keys(s3, "a/"));
  expected.push_back("b");
  EXPECT_EQ(expected, Keys(s3));
}

TEST_F(S3ClientTest, LargeFileGoesUpInPartsAndComesBackByteExact) {
  options_.multipart_threshold = 5 * kMiB;
  options_.part_size = 5 * kMiB;  // S3's smallest part
  S3Client s3(options_, Env::Default());
  const std::string data = RandomBytes(12 * kMiB + 123, 4);  // three parts, the last short
  WriteFile(dir_ / "in", data);
  Status s = s3.Put("big", dir_ / "in");
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(std::vector<std::string>{"big"}, Keys(s3)) << "parts must not be listed as objects";
  ObjectInfo info;
  ASSERT_TRUE(s3.Head("big", &info).ok());
  EXPECT_EQ(data.size(), info.size);
  s = s3.Get("big", dir_ / "out", 0600);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_TRUE(ReadFile(dir_ / "out") == data);
}

TEST_F(S3ClientTest, WrongOrMissingCredentialsSaySoAndStoreNothing) {
  WriteFile(dir_ / "in", RandomBytes(1000, 5));
  S3Options wrong = options_;
  wrong.secret_key += "-wrong";
  S3Client bad_secret(wrong, Env::Default());
  Status s = bad_secret.Put("x", dir_ / "in");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(std::string::npos, s.message().find("refused the credentials")) << s.message();
  EXPECT_NE(std::string::npos, s.message().find("AWS_SECRET_ACCESS_KEY")) << s.message();

  wrong = options_;
  wrong.access_key = "nobody:nobody";
  S3Client bad_key(wrong, Env::Default());
  s = bad_key.Put("x", dir_ / "in");
  EXPECT_NE(std::string::npos, s.message().find("refused the credentials")) << s.message();

  S3Client s3(options_, Env::Default());
  EXPECT_TRUE(Keys(s3).empty()) << "a refused upload left an object";

  // Without the variables there is no client at all, and the error names them.
  const std::string saved = std::getenv("AWS_SECRET_ACCESS_KEY");
  unsetenv("AWS_SECRET_ACCESS_KEY");
  S3Options none;
  s = S3Options::FromEnvironment(std::getenv("SNAPSHOT_REMOTE"), &none);
  setenv("AWS_SECRET_ACCESS_KEY", saved.c_str(), 1);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(std::string::npos, s.message().find("AWS_SECRET_ACCESS_KEY")) << s.message();
}

TEST_F(S3ClientTest, UnknownBucketAndUnreachableServerAreNamed) {
  WriteFile(dir_ / "in", "data");
  S3Options other = options_;
  other.bucket = "no-such-bucket-for-snapshot-tests";
  S3Client missing(other, Env::Default());
  Status s = missing.CheckBucket();
  EXPECT_TRUE(s.IsNotFound()) << s.message();
  EXPECT_NE(std::string::npos, s.message().find("no bucket 'no-such-bucket-for-snapshot-tests'")) << s.message();
  s = missing.Put("x", dir_ / "in");
  EXPECT_TRUE(s.IsNotFound()) << s.message();
  EXPECT_NE(std::string::npos, s.message().find("no bucket")) << s.message();

  // A port nothing listens on: bound, then closed.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(0, bind(fd, reinterpret_cast<sockaddr*>(&addr), len));
  ASSERT_EQ(0, getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len));
  close(fd);
  other = options_;
  other.endpoint = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  other.max_attempts = 2;
  S3Client down(other, Env::Default());
  s = down.Put("x", dir_ / "in");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(std::string::npos, s.message().find("cannot reach the object store at " + other.endpoint))
      << s.message();
  EXPECT_NE(std::string::npos, s.message().find("gave up after 2 attempts")) << s.message();
}

// The store's fault-injecting Env reaches the client's local side: each
// change a download makes to the local disk (create, every append, fsync,
// close) failing in turn gives an error and leaves no file behind.
TEST_F(S3ClientTest, LocalWriteFaultsDuringDownloadLeaveNoFile) {
  const std::string data = RandomBytes(300000, 8);
  WriteFile(dir_ / "in", data);
  ASSERT_TRUE(S3Client(options_, Env::Default()).Put("pack", dir_ / "in").ok());

  store_test::FaultEnv faults;
  S3Client s3(options_, &faults);
  int k = 1;
  for (;; k++) {
    faults.Arm(k, /*sticky=*/false);
    Status s = s3.Get("pack", dir_ / "out", 0600);
    faults.Disarm();
    if (!faults.fired()) {  // k is past the download's last change
      ASSERT_TRUE(s.ok()) << s.message();
      EXPECT_TRUE(ReadFile(dir_ / "out") == data);
      break;
    }
    EXPECT_FALSE(s.ok()) << "fault " << faults.first_fault() << " was not reported";
    EXPECT_NE(std::string::npos, s.message().find("injected fault")) << s.message();
    EXPECT_FALSE(Exists(dir_ / "out")) << "left a file after " << faults.first_fault();
  }
  EXPECT_GT(k, 4) << "the download made fewer changes than create, append, fsync, close";
}

TEST_F(S3ClientTest, DamagedObjectIsRefusedByItsChecksum) {
  S3Client s3(options_, Env::Default());
  const std::string data = RandomBytes(200000, 6);
  WriteFile(dir_ / "in", data);
  ASSERT_TRUE(s3.Put("pack", dir_ / "in").ok());

  // Damage the stored copy on the server's disk: same size, one bit.
  const std::string root = ObjectStoreDataDir();
  const std::string stored = FindFileHolding(root, data);
  ASSERT_FALSE(stored.empty()) << "no file under " << root << " holds the object";
  std::string damaged = data;
  damaged[123456] ^= 1;
  WriteFile(stored, damaged);

  Status s = s3.Get("pack", dir_ / "out", 0600);
  EXPECT_TRUE(s.IsCorruption()) << s.message();
  EXPECT_NE(std::string::npos, s.message().find("damaged")) << s.message();
  EXPECT_FALSE(Exists(dir_ / "out")) << "a damaged download was left behind";
}

TEST_F(S3ClientTest, ServerStoppedMidUploadThenRestarted) {
  options_.multipart_threshold = 5 * kMiB;
  options_.part_size = 5 * kMiB;
  const std::string data = RandomBytes(11 * kMiB, 7);
  WriteFile(dir_ / "in", data);

  // The server (its proxy, the S3 endpoint) dies while the second part is
  // on its way, and stays down: the upload fails after its retries, with an
  // error that says why.
  options_.max_attempts = 3;
  HookEnv killing(6 * kMiB, [] { ASSERT_EQ(0, ObjectStoreScript("kill proxy")); });
  Status s = S3Client(options_, &killing).Put("interrupted", dir_ / "in");
  ASSERT_EQ(2, killing.covering_reads()) << "the server was not stopped during the upload";
  EXPECT_FALSE(s.ok());
  EXPECT_NE(std::string::npos, s.message().find("cannot reach the object store")) << s.message();

  // The server comes back while an upload is retrying: it completes.
  options_.max_attempts = 100;
  options_.max_backoff_ms = 500;
  int restarted = -1;
  std::thread restart([&] { restarted = ObjectStoreScript("start"); });
  s = S3Client(options_, Env::Default()).Put("resumed", dir_ / "in");
  restart.join();
  ASSERT_EQ(0, restarted);
  ASSERT_TRUE(s.ok()) << s.message();

  S3Client s3(options_, Env::Default());
  EXPECT_EQ(std::vector<std::string>{"resumed"}, Keys(s3)) << "the interrupted upload must not be visible";
  ObjectInfo info;
  EXPECT_TRUE(s3.Head("interrupted", &info).IsNotFound());
  s = s3.Get("resumed", dir_ / "out", 0600);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_TRUE(ReadFile(dir_ / "out") == data);
}

}  // namespace
