// Client-side encryption of a remote copy: the sealed object format
// (remote/sealed_object.h), key files (remote/remote_key.h), and replication
// through EncryptedObjectStore (remote/encrypted_object_store.h), over a
// directory (no server) and against the real object store
// (tools/object-store.sh): the server never holds a byte of the store in the
// clear, a restore with the key is exact, and without it, with another key,
// or with an object altered or moved on the server, it is a clear error
// with nothing written. The last test does it through SQL, as users do.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "remote/dir_object_store.h"
#include "remote/encrypted_object_store.h"
#include "remote/remote_key.h"
#include "remote/remote_setting.h"
#include "remote/replicator.h"
#include "remote/s3_client.h"
#include "remote/sealed_object.h"
#include "tests/remote/remote_test_util.h"
#include "tests/store/store_test_util.h"

namespace {

using snapshot::DirObjectStore;
using snapshot::EncryptedObjectStore;
using snapshot::Env;
using snapshot::FetchSnapshot;
using snapshot::ObjectInfo;
using snapshot::ObjectStore;
using snapshot::OpenEncryptedRemote;
using snapshot::PushResult;
using snapshot::RemoteKey;
using snapshot::RemoteUse;
using snapshot::Replicator;
using snapshot::SnapshotSpec;
using snapshot::Status;
using store_test::Describe;
using store_test::Image;
using store_test::MakeImage;
using store_test::OpenOrDie;
using store_test::Options;
using store_test::ReadBytes;
using store_test::ReadsBack;
using store_test::Snap;
using store_test::TempDir;
using store_test::WriteBytes;
namespace fs = std::filesystem;

const char kKeyA[] = "8f2b1c9e0d7a6f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6";
const char kKeyB[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

std::string FromHex(const std::string& hex) {
  std::string bytes;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) bytes.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return bytes;
}

std::unique_ptr<RemoteKey> KeyOf(const char* hex) {
  const std::string bytes = FromHex(hex);
  return RemoteKey::FromBytes(reinterpret_cast<const unsigned char*>(bytes.data()), "test key");
}

std::string WriteKeyFile(const std::string& path, const std::string& contents, unsigned mode = 0600) {
  WriteBytes(path, contents);
  chmod(path.c_str(), mode);
  return path;
}

std::string RandomBytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

snapshot::ReadAtFn ReaderOf(const std::string& bytes) {
  return [&bytes](uint64_t offset, size_t n, void* out) {
    if (offset + n > bytes.size()) return Status::IOError("past the end");
    std::memcpy(out, bytes.data() + offset, n);
    return Status::OK();
  };
}

std::string SealOf(const RemoteKey& key, const std::string& name, const std::string& plain) {
  std::string sealed;
  Status s = snapshot::Seal(key, name, plain.size(), ReaderOf(plain), [&](const void* d, size_t n) {
    sealed.append(static_cast<const char*>(d), n);
    return Status::OK();
  });
  EXPECT_TRUE(s.ok()) << Describe(s);
  return sealed;
}

Status UnsealOf(const RemoteKey& key, const std::string& name, const std::string& sealed, std::string* plain) {
  plain->clear();
  return snapshot::Unseal(key, name, sealed.size(), ReaderOf(sealed), [&](const void* d, size_t n) {
    plain->append(static_cast<const char*>(d), n);
    return Status::OK();
  });
}

// Whether any file under `dir` (written since `since`) holds one of
// `needles` anywhere in its bytes.
bool AnyFileContains(const std::string& dir, const std::vector<std::string>& needles, std::string* where,
                     fs::file_time_type since = fs::file_time_type::min()) {
  for (const auto& e : fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied)) {
    if (!e.is_regular_file() || e.last_write_time() < since) continue;
    const std::string data = ReadBytes(e.path().string());
    for (const std::string& needle : needles) {
      const size_t at = data.find(needle);
      if (at != std::string::npos) {
        static const char kHex[] = "0123456789abcdef";
        std::string hex;
        for (unsigned char c : needle) hex += std::string{kHex[c >> 4], kHex[c & 15]};
        *where = e.path().string() + " (at byte " + std::to_string(at) + ": " + hex + ")";
        return true;
      }
    }
  }
  return false;
}

// Pieces of every file of the local store that a push sends: 32-byte windows from near the
// start, the middle and the end, each varied enough (16 distinct bytes or
// more: no run of zeros) to be found only where this store's bytes are
// (STORE's random secret and compressed pages). `magics`: also the files'
// magic numbers, which any unencrypted store has.
std::vector<std::string> PlaintextPieces(const std::string& store_dir, bool magics) {
  std::vector<std::string> pieces;
  if (magics) pieces = {"SQSNSTOR", "SQSNPACK", "SQSNSNAP"};
  for (const std::string& rel : store_test::FilesUnder(store_dir)) {
    // The snapshots' files, which go to the remote; not the local settings
    // and status beside them (which name the remote's URL).
    if (rel != "STORE" && rel.rfind("packs/", 0) != 0 && rel.rfind("snapshots/", 0) != 0) continue;
    const std::string data = ReadBytes(store_dir + "/" + rel);
    if (data.size() < 96) continue;
    for (size_t at : {size_t(40), data.size() / 2, data.size() - 48}) {
      const std::string window = data.substr(at, 32);
      if (std::set<char>(window.begin(), window.end()).size() >= 16) pieces.push_back(window);
    }
  }
  EXPECT_GE(pieces.size(), 4u) << "too little to search for";
  return pieces;
}

// ---------------------------------------------------------------------------
// The format

TEST(SealedObject, RoundTripsEverySizeAroundAChunk) {
  auto key = KeyOf(kKeyA);
  const size_t c = snapshot::kSealedChunkBytes;
  for (size_t n : {size_t(0), size_t(1), c - 1, c, c + 1, 2 * c, 3 * c + 5}) {
    const std::string plain = RandomBytes(n, unsigned(n));
    const std::string sealed = SealOf(*key, "packs/0000000001.pack", plain);
    EXPECT_EQ(snapshot::SealedSize(n), sealed.size()) << n;
    uint64_t back = 0;
    ASSERT_TRUE(snapshot::PlainSizeOf(sealed.size(), &back)) << n;
    EXPECT_EQ(n, back);
    std::string opened;
    Status s = UnsealOf(*key, "packs/0000000001.pack", sealed, &opened);
    ASSERT_TRUE(s.ok()) << n << ": " << Describe(s);
    EXPECT_TRUE(opened == plain) << n;
  }
  // The size map is a bijection onto the sizes sealing gives.
  for (uint64_t sealed = 0; sealed < 3 * (c + 16) + 200; sealed++) {
    uint64_t plain = 0;
    if (snapshot::PlainSizeOf(sealed, &plain)) {
      EXPECT_EQ(sealed, snapshot::SealedSize(plain));
    }
  }
  for (uint64_t plain = 0; plain < 3 * c + 100; plain += 97) {
    uint64_t back = 0;
    EXPECT_TRUE(snapshot::PlainSizeOf(snapshot::SealedSize(plain), &back) && back == plain) << plain;
  }
}

TEST(SealedObject, TheSameFileUnderTheSameNameSealsTheSameAndNothingShows) {
  auto a = KeyOf(kKeyA), b = KeyOf(kKeyB);
  const Image img = MakeImage(4096, 40, 1);
  std::string plain;
  for (const std::string& p : img.pages) plain += p;
  const std::string sealed = SealOf(*a, "snapshots/0000000002.snap", plain);
  EXPECT_EQ(sealed, SealOf(*a, "snapshots/0000000002.snap", plain)) << "a push compares by the sealed bytes' MD5";
  EXPECT_NE(sealed.substr(24), SealOf(*a, "snapshots/0000000003.snap", plain).substr(24)) << "another name";
  EXPECT_NE(sealed.substr(40), SealOf(*b, "snapshots/0000000002.snap", plain).substr(40)) << "another key";
  std::string changed = plain;
  changed[plain.size() - 1] ^= 1;
  EXPECT_NE(sealed.substr(16, 24), SealOf(*a, "snapshots/0000000002.snap", changed).substr(16, 24))
      << "a change anywhere makes another nonce";
  for (size_t at = 0; at + 16 <= plain.size(); at += 509) {
    ASSERT_EQ(std::string::npos, sealed.find(plain.substr(at, 16))) << "plaintext at " << at << " shows";
  }
}

TEST(SealedObject, AnyChangeMoveOrOtherKeyIsRefused) {
  auto key = KeyOf(kKeyA);
  const size_t c = snapshot::kSealedChunkBytes, chunk_on_disk = c + snapshot::kSealedTagBytes;
  const std::string name = "packs/0000000007.pack";
  const std::string plain = RandomBytes(2 * c + 1000, 7);
  const std::string sealed = SealOf(*key, name, plain);
  std::string out;
  auto refused = [&](const std::string& bytes, const std::string& with_name, Status::Code code, const char* says) {
    Status s = UnsealOf(*key, with_name, bytes, &out);
    return s.code() == code && s.message().find(says) != std::string::npos
               ? ::testing::AssertionSuccess()
               : ::testing::AssertionFailure() << Describe(s);
  };
  const auto kCorrupt = Status::Code::kCorruption;
  for (size_t at : {size_t(24), size_t(39), size_t(40), size_t(40 + c), sealed.size() - 1}) {
    std::string damaged = sealed;
    damaged[at] ^= 0x20;
    EXPECT_TRUE(refused(damaged, name, kCorrupt, "fails authentication")) << "byte " << at;
  }
  std::string damaged = sealed;
  damaged[0] = 'X';
  EXPECT_TRUE(refused(damaged, name, kCorrupt, "is not encrypted"));
  damaged = sealed;
  damaged[8] = 9;
  EXPECT_TRUE(refused(damaged, name, Status::Code::kNotSupported, "newer format"));
  damaged = sealed;
  damaged[16] ^= 1;
  EXPECT_TRUE(refused(damaged, name, Status::Code::kInvalidArgument, "another key")) << "the key id";
  EXPECT_TRUE(refused(sealed.substr(0, sealed.size() - 1), name, kCorrupt, "fails authentication")) << "a byte less";
  EXPECT_TRUE(refused(sealed + "x", name, kCorrupt, "fails authentication")) << "a byte more";
  EXPECT_TRUE(refused(sealed.substr(0, 40 + 2 * chunk_on_disk + 10), name, kCorrupt, "cut short or has bytes added"))
      << "a last chunk too short to hold its tag";
  EXPECT_TRUE(refused(sealed.substr(0, 30), name, kCorrupt, "no whole header"));
  EXPECT_TRUE(refused(sealed.substr(0, 40 + 2 * chunk_on_disk), name, kCorrupt, "fails authentication"))
      << "cut at a chunk's end: the new last chunk was not sealed as the last";
  std::string swapped = sealed.substr(0, 40) + sealed.substr(40 + chunk_on_disk, chunk_on_disk) +
                        sealed.substr(40, chunk_on_disk) + sealed.substr(40 + 2 * chunk_on_disk);
  EXPECT_TRUE(refused(swapped, name, kCorrupt, "fails authentication")) << "chunks reordered";
  EXPECT_TRUE(refused(sealed, "packs/0000000008.pack", kCorrupt, "fails authentication")) << "moved to another name";
  Status s = UnsealOf(*KeyOf(kKeyB), name, sealed, &out);
  EXPECT_EQ(Status::Code::kInvalidArgument, s.code()) << Describe(s);
  EXPECT_NE(std::string::npos, s.message().find("another key")) << s.message();
  EXPECT_TRUE(UnsealOf(*key, name, sealed, &out).ok() && out == plain) << "the original still opens";
}

// An upload reads the sealed view of a file in whatever pieces its store
// uses (S3: the whole for the MD5, then part by part): any piece at any
// offset is the sealed bytes there.
TEST(SealedObject, AViewReadsTheSealedBytesAnywhereAndNoticesAFileThatChanged) {
  auto key = KeyOf(kKeyA);
  const size_t c = snapshot::kSealedChunkBytes;
  std::string plain = RandomBytes(3 * c + 123, 3);
  const std::string sealed = SealOf(*key, "packs/0000000003.pack", plain);
  std::unique_ptr<snapshot::SealedView> view;
  ASSERT_TRUE(snapshot::SealedView::Open(*key, "packs/0000000003.pack", plain.size(), ReaderOf(plain), &view).ok());
  ASSERT_EQ(sealed.size(), view->Size());
  std::mt19937 rng(5);
  for (int i = 0; i < 200; i++) {
    const uint64_t offset = rng() % sealed.size();
    const size_t n = size_t(std::min<uint64_t>(rng() % (2 * c), sealed.size() - offset));
    std::string got(n, '\0');
    ASSERT_TRUE(view->Read(offset, n, &got[0]).ok());
    ASSERT_TRUE(got == sealed.substr(offset, n)) << n << " bytes at " << offset;
  }
  EXPECT_FALSE(view->Read(sealed.size() - 1, 2, &plain[0]).ok()) << "past the end";

  // The file changes after the nonce was made from it: reading the view in
  // order to the end (as every upload does once) fails.
  ASSERT_TRUE(snapshot::SealedView::Open(*key, "packs/0000000003.pack", plain.size(), ReaderOf(plain), &view).ok());
  plain[2 * c] ^= 1;
  std::string all(sealed.size(), '\0');
  Status s = view->Read(0, all.size(), &all[0]);
  EXPECT_EQ(Status::Code::kIOError, s.code()) << Describe(s);
  EXPECT_NE(std::string::npos, s.message().find("changed while it was being encrypted")) << s.message();
  EXPECT_FALSE(view->Read(0, 10, &all[0]).ok()) << "and stays refused";
}

// ---------------------------------------------------------------------------
// Key files

TEST(RemoteKey, LoadsHexOrRawAndRefusesFilesOthersCanRead) {
  TempDir tmp;
  std::unique_ptr<RemoteKey> key;
  Status s = RemoteKey::Load(WriteKeyFile(tmp / "hex", std::string(kKeyA) + "\n"), &key);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(0, std::memcmp(key->id(), KeyOf(kKeyA)->id(), RemoteKey::kIdBytes));
  ASSERT_TRUE(RemoteKey::Load(WriteKeyFile(tmp / "raw", FromHex(kKeyA)), &key).ok());
  EXPECT_EQ(0, std::memcmp(key->id(), KeyOf(kKeyA)->id(), RemoteKey::kIdBytes)) << "the same key, raw";

  for (unsigned mode : {0640u, 0604u, 0660u}) {
    s = RemoteKey::Load(WriteKeyFile(tmp / "open", kKeyA, mode), &key);
    EXPECT_EQ(Status::Code::kInvalidArgument, s.code()) << std::oct << mode;
    EXPECT_NE(std::string::npos, s.message().find("chmod 600 " + tmp / "open")) << s.message();
  }
  s = RemoteKey::Load(tmp / "missing", &key);
  EXPECT_EQ(Status::Code::kInvalidArgument, s.code());
  EXPECT_NE(std::string::npos, s.message().find("SNAPSHOT_REMOTE_KEY_FILE " + tmp / "missing")) << s.message();
  for (const std::string& bad : {std::string("hunter2\n"), std::string(kKeyA).substr(2), std::string(kKeyA) + "00",
                                 std::string(kKeyA).substr(0, 32)}) {
    s = RemoteKey::Load(WriteKeyFile(tmp / "bad", bad), &key);
    EXPECT_NE(std::string::npos, s.message().find("holds no key")) << bad << ": " << s.message();
  }
}

// ---------------------------------------------------------------------------
// Replication over a directory: no server

class EncryptedDirRemote : public ::testing::Test {
 protected:
  void SetUp() override {
    key_a_ = WriteKeyFile(tmp_ / "a.key", std::string(kKeyA) + "\n");
    key_b_ = WriteKeyFile(tmp_ / "b.key", kKeyB);
    auto store = OpenOrDie(Options(local_));
    ASSERT_TRUE(Snap(store.get(), first_, "a", &id1_).ok());
    ASSERT_TRUE(Snap(store.get(), second_, "b", &id2_).ok());
  }

  Status Open(const std::string& key_file, RemoteUse use, std::unique_ptr<ObjectStore>* out) {
    return OpenEncryptedRemote(Env::Default(), std::unique_ptr<ObjectStore>(new DirObjectStore(root_, Env::Default())),
                               "the remote", key_file, use, out);
  }

  Status Push(const std::string& key_file, PushResult* pushed) {
    std::unique_ptr<ObjectStore> remote;
    SNAPSHOT_RETURN_IF_ERROR(Open(key_file, RemoteUse::kPush, &remote));
    return Replicator(Env::Default(), local_, remote.get(), "the remote").Push(pushed);
  }

  Status Fetch(const std::string& key_file, uint64_t id) {
    std::unique_ptr<ObjectStore> remote;
    SNAPSHOT_RETURN_IF_ERROR(Open(key_file, RemoteUse::kRead, &remote));
    uint64_t got = 0;
    return FetchSnapshot(Env::Default(), remote.get(), "the remote", cache_, SnapshotSpec::Id(id), &got, nullptr);
  }

  TempDir tmp_;
  const std::string local_ = tmp_ / "local", root_ = tmp_ / "remote", cache_ = tmp_ / "cache";
  std::string key_a_, key_b_;
  const Image first_ = MakeImage(4096, 60, 1), second_ = MakeImage(4096, 60, 2);
  uint64_t id1_ = 0, id2_ = 0;
};

TEST_F(EncryptedDirRemote, PushHidesEverythingAndOnlyTheKeyFetchesIt) {
  PushResult pushed;
  Status s = Push(key_a_, &pushed);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(5u, pushed.files_uploaded) << "STORE, two packs, two manifests";
  EXPECT_TRUE(Env::Default()->FileExists(root_ + "/ENCRYPTION"));
  std::string where;
  EXPECT_FALSE(AnyFileContains(root_, PlaintextPieces(local_, true), &where)) << where << " holds plaintext";

  ASSERT_TRUE((s = Fetch(key_a_, id1_)).ok()) << Describe(s);
  {
    auto cache = OpenOrDie(Options(cache_, /*exclusive=*/false));
    EXPECT_TRUE(ReadsBack(cache.get(), id1_, first_));
  }
  snapshot::RemoveFetchedStore(Env::Default(), cache_);

  s = Fetch("", id2_);
  EXPECT_EQ(Status::Code::kInvalidArgument, s.code()) << Describe(s);
  EXPECT_NE(std::string::npos, s.message().find("is encrypted: set SNAPSHOT_REMOTE_KEY_FILE")) << s.message();
  s = Fetch(key_b_, id2_);
  EXPECT_EQ(Status::Code::kInvalidArgument, s.code()) << Describe(s);
  EXPECT_NE(std::string::npos, s.message().find("encrypted with another key than the one in " + key_b_)) << s.message();
  EXPECT_FALSE(Env::Default()->FileExists(cache_)) << "nothing written";
  s = Push("", &pushed);
  EXPECT_NE(std::string::npos, s.message().find("is encrypted")) << "a push without the key: " << s.message();
  s = Push(key_b_, &pushed);
  EXPECT_NE(std::string::npos, s.message().find("another key")) << "a push with another key: " << s.message();
}

TEST_F(EncryptedDirRemote, AnObjectAlteredOrMovedOnTheRemoteIsRefused) {
  PushResult pushed;
  ASSERT_TRUE(Push(key_a_, &pushed).ok());
  const std::string pack1 = "packs/" + snapshot::FileNameForId(id1_, ".pack");
  const std::string pack2 = "packs/" + snapshot::FileNameForId(id2_, ".pack");
  const std::string good = ReadBytes(root_ + "/" + pack2);

  std::string damaged = good;
  damaged[damaged.size() / 2] ^= 1;
  WriteBytes(root_ + "/" + pack2, damaged);
  Status s = Fetch(key_a_, id2_);
  EXPECT_TRUE(s.IsCorruption()) << Describe(s);
  EXPECT_NE(std::string::npos, s.message().find(pack2 + " fails authentication")) << s.message();
  EXPECT_FALSE(Env::Default()->FileExists(cache_)) << "nothing written";

  // Snapshot 2's pack replaced by snapshot 1's (a valid object of the
  // same key, under another name).
  WriteBytes(root_ + "/" + pack2, ReadBytes(root_ + "/" + pack1));
  s = Fetch(key_a_, id2_);
  EXPECT_TRUE(s.IsCorruption()) << Describe(s);
  EXPECT_NE(std::string::npos, s.message().find(pack2 + " fails authentication")) << s.message();
  EXPECT_FALSE(Env::Default()->FileExists(cache_));

  WriteBytes(root_ + "/" + pack2, good);
  s = Fetch(key_a_, id2_);
  EXPECT_TRUE(s.ok()) << "the original back: " << Describe(s);
}

TEST_F(EncryptedDirRemote, AKeyForAnUnencryptedRemoteIsRefusedAndTheMarkerIsNeeded) {
  PushResult pushed;
  ASSERT_TRUE(Push("", &pushed).ok());
  EXPECT_FALSE(Env::Default()->FileExists(root_ + "/ENCRYPTION")) << "no key: a plain copy";
  std::string where;
  EXPECT_TRUE(AnyFileContains(root_, PlaintextPieces(local_, false), &where)) << "the check above can fail";
  for (RemoteUse use : {RemoteUse::kPush, RemoteUse::kRead}) {
    std::unique_ptr<ObjectStore> remote;
    Status s = Open(key_a_, use, &remote);
    EXPECT_EQ(Status::Code::kInvalidArgument, s.code()) << Describe(s);
    EXPECT_NE(std::string::npos, s.message().find("holds an unencrypted copy")) << s.message();
  }
  EXPECT_FALSE(Env::Default()->FileExists(root_ + "/ENCRYPTION")) << "nothing written";

  TempDir other;
  const std::string encrypted_root = other / "remote";
  fs::rename(root_, other / "plain");
  ASSERT_TRUE(Push(key_a_, &pushed).ok());
  fs::rename(root_, encrypted_root);
  ASSERT_EQ(0, std::remove((encrypted_root + "/ENCRYPTION").c_str()));
  std::unique_ptr<ObjectStore> remote;
  Status s = OpenEncryptedRemote(Env::Default(), std::unique_ptr<ObjectStore>(new DirObjectStore(encrypted_root, Env::Default())),
                                 "the remote", key_a_, RemoteUse::kRead, &remote);
  EXPECT_TRUE(s.IsCorruption()) << Describe(s);
  EXPECT_NE(std::string::npos, s.message().find("is encrypted but its ENCRYPTION object is gone")) << s.message();
}

// ---------------------------------------------------------------------------
// Against the real object store

class EncryptedS3Remote : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* remote = std::getenv("SNAPSHOT_REMOTE");
    if (std::getenv("AWS_ENDPOINT_URL") == nullptr || remote == nullptr) {
      GTEST_SKIP() << "no object store: run eval \"$(tools/object-store.sh start)\" first";
    }
    url_ = std::string(remote) + "/encryption-tests/" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name() + "-" + std::to_string(getpid());
    ASSERT_TRUE(snapshot::S3Options::FromEnvironment(url_, &options_).ok());
    Status s = snapshot::S3Client(options_, Env::Default()).CheckBucket();
    if (s.message().find("cannot reach") != std::string::npos) {
      GTEST_SKIP() << "the object store is not running: run eval \"$(tools/object-store.sh start)\" first";
    }
    ASSERT_TRUE(s.ok()) << s.message();
    ready_ = true;
    key_a_ = WriteKeyFile(tmp_ / "a.key", std::string(kKeyA) + "\n");
    key_b_ = WriteKeyFile(tmp_ / "b.key", kKeyB);
    auto store = OpenOrDie(Options(local_));
    ASSERT_TRUE(Snap(store.get(), first_, "a", &id1_).ok());
    ASSERT_TRUE(Snap(store.get(), second_, "b", &id2_).ok());
  }

  void TearDown() override {
    if (!ready_) return;
    snapshot::S3Client s3(options_, Env::Default());
    std::vector<ObjectInfo> objects;
    s3.List("", &objects);
    for (const ObjectInfo& o : objects) s3.Delete(o.key);
  }

  Status Open(const std::string& key_file, RemoteUse use, std::unique_ptr<ObjectStore>* out) {
    return OpenEncryptedRemote(Env::Default(),
                               std::unique_ptr<ObjectStore>(new snapshot::S3Client(options_, Env::Default())), url_,
                               key_file, use, out);
  }

  Status Push(const std::string& key_file, PushResult* pushed) {
    std::unique_ptr<ObjectStore> remote;
    SNAPSHOT_RETURN_IF_ERROR(Open(key_file, RemoteUse::kPush, &remote));
    return Replicator(Env::Default(), local_, remote.get(), url_).Push(pushed);
  }

  Status Fetch(const std::string& key_file, uint64_t id) {
    std::unique_ptr<ObjectStore> remote;
    SNAPSHOT_RETURN_IF_ERROR(Open(key_file, RemoteUse::kRead, &remote));
    uint64_t got = 0;
    return FetchSnapshot(Env::Default(), remote.get(), url_, cache_, SnapshotSpec::Id(id), &got, nullptr);
  }

  TempDir tmp_;
  const std::string local_ = tmp_ / "local", cache_ = tmp_ / "cache";
  std::string url_, key_a_, key_b_;
  snapshot::S3Options options_;
  bool ready_ = false;
  const Image first_ = MakeImage(4096, 60, 1), second_ = MakeImage(4096, 60, 2);
  uint64_t id1_ = 0, id2_ = 0;
};

TEST_F(EncryptedS3Remote, TheServerHoldsNoPlaintextASecondPushSendsNothingAndOnlyTheKeyRestores) {
  // Only the server's files written from now on are searched, for bytes
  // only this store has: the server holds every other test's objects too.
  const auto before = fs::file_time_type::clock::now() - std::chrono::seconds(2);
  PushResult pushed;
  Status s = Push(key_a_, &pushed);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(5u, pushed.files_uploaded);
  std::string where;
  EXPECT_FALSE(AnyFileContains(snapshot_test::ObjectStoreDataDir(), PlaintextPieces(local_, false), &where, before))
      << where << " on the server holds plaintext of this store";

  ASSERT_TRUE((s = Push(key_a_, &pushed)).ok()) << Describe(s);
  EXPECT_EQ(0u, pushed.files_uploaded) << "packs by name and size, manifests by the sealed bytes' MD5";

  s = Fetch("", id2_);
  EXPECT_NE(std::string::npos, s.message().find("is encrypted: set SNAPSHOT_REMOTE_KEY_FILE")) << Describe(s);
  s = Fetch(key_b_, id2_);
  EXPECT_NE(std::string::npos, s.message().find("another key")) << Describe(s);
  EXPECT_FALSE(Env::Default()->FileExists(cache_)) << "nothing written";

  ASSERT_TRUE((s = Fetch(key_a_, id2_)).ok()) << Describe(s);
  auto cache = OpenOrDie(Options(cache_, /*exclusive=*/false));
  EXPECT_TRUE(ReadsBack(cache.get(), id2_, second_));
  EXPECT_TRUE(cache->Verify(id2_).ok());

  // The search above finds plaintext when there is some: STORE uploaded as
  // it is.
  ASSERT_TRUE(snapshot::S3Client(options_, Env::Default()).Put("plain-STORE", local_ + "/STORE").ok());
  EXPECT_TRUE(AnyFileContains(snapshot_test::ObjectStoreDataDir(), PlaintextPieces(local_, false), &where, before));
}

// A file large enough for a multipart upload goes up sealed part by part
// (each part's MD5 is of the sealed bytes, as the server checks them) and
// comes back whole.
TEST_F(EncryptedS3Remote, ALargeFileGoesUpSealedInPartsAndComesBack) {
  snapshot::S3Options small_parts = options_;
  small_parts.multipart_threshold = 5u << 20;
  small_parts.part_size = 5u << 20;
  EncryptedObjectStore remote(std::unique_ptr<ObjectStore>(new snapshot::S3Client(small_parts, Env::Default())),
                              KeyOf(kKeyA), Env::Default());
  const std::string plain = RandomBytes((11u << 20) + 77, 11);
  WriteBytes(tmp_ / "big", plain);
  Status s = remote.Put("packs/0000000009.pack", tmp_ / "big");
  ASSERT_TRUE(s.ok()) << Describe(s);
  ObjectInfo info;
  ASSERT_TRUE(remote.Head("packs/0000000009.pack", &info).ok());
  EXPECT_EQ(plain.size(), info.size) << "the file's own size";
  ASSERT_TRUE(remote.inner()->Head("packs/0000000009.pack", &info).ok());
  EXPECT_EQ(snapshot::SealedSize(plain.size()), info.size) << "the server holds the sealed bytes";
  s = remote.Get("packs/0000000009.pack", tmp_ / "back", 0600);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_TRUE(ReadBytes(tmp_ / "back") == plain);
  EXPECT_FALSE(Env::Default()->FileExists(tmp_ / "back.sealed")) << "the download's sealed copy is removed";
}

TEST_F(EncryptedS3Remote, AnObjectMovedOnTheServerIsRefused) {
  PushResult pushed;
  ASSERT_TRUE(Push(key_a_, &pushed).ok());
  // Snapshot 1's pack uploaded again as snapshot 2's, in its sealed form:
  // the server's own checks pass, the name does not.
  snapshot::S3Client s3(options_, Env::Default());
  const std::string pack1 = "packs/" + snapshot::FileNameForId(id1_, ".pack");
  const std::string pack2 = "packs/" + snapshot::FileNameForId(id2_, ".pack");
  ASSERT_TRUE(s3.Get(pack1, tmp_ / "sealed1", 0600).ok());
  ASSERT_TRUE(s3.Put(pack2, tmp_ / "sealed1").ok());
  Status s = Fetch(key_a_, id2_);
  EXPECT_TRUE(s.IsCorruption()) << Describe(s);
  EXPECT_NE(std::string::npos, s.message().find(pack2 + " fails authentication")) << s.message();
  EXPECT_FALSE(Env::Default()->FileExists(cache_)) << "nothing written";
}

// ---------------------------------------------------------------------------
// Through SQL, as users call it: the key file named in the environment

class EncryptedSqlRemote : public EncryptedS3Remote {
 protected:
  void SetUp() override {
    EncryptedS3Remote::SetUp();
    if (!ready_) return;
    db_ = snapshot_test::OpenDb(tmp_ / "app.db");
    // Random rows: zstd keeps them as they are, so their bytes are in the
    // pack in the clear, where the server must not see them.
    ASSERT_EQ("", snapshot_test::Exec(db_, "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);"
                                           "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) "
                                           "INSERT INTO t(v) SELECT randomblob(600) FROM n;"));
  }
  void TearDown() override {
    if (db_) sqlite3_close(db_);
    EncryptedS3Remote::TearDown();
  }

  std::string RestoreOnMachineB(const std::string& name) {
    sqlite3* b = snapshot_test::OpenDb(":memory:");
    const std::string r = snapshot_test::Query(b, "SELECT snapshot_restore_to('" + machine_b_ / name + "', NULL, '" + url_ + "')");
    sqlite3_close(b);
    return r;
  }

  bool MachineBIsEmpty() { return fs::is_empty(machine_b_.path()); }

  sqlite3* db_ = nullptr;
  TempDir machine_b_;
};

TEST_F(EncryptedSqlRemote, PushAndRestoreWithTheKeyFileAndAClearErrorWithout) {
  snapshot_test::ScopedEnv key(snapshot::kRemoteKeyFileVariable, key_a_.c_str());
  // No remote until the snapshot is taken: a backup with one starts a
  // background push, and this test counts what its own push sends.
  snapshot_test::ScopedEnv no_default(snapshot::kRemoteEnvironmentVariable, nullptr);
  const auto before = fs::file_time_type::clock::now() - std::chrono::seconds(2);
  ASSERT_EQ("1", snapshot_test::Query(db_, "SELECT snapshot_backup()"));
  ASSERT_EQ(url_, snapshot_test::Query(db_, "SELECT snapshot_remote('" + url_ + "')"));
  EXPECT_EQ("3", snapshot_test::Query(db_, "SELECT snapshot_push()")) << "STORE, the pack, the manifest";
  EXPECT_EQ("0", snapshot_test::Query(db_, "SELECT snapshot_push()")) << "a second push sends nothing";

  std::vector<std::string> rows;
  for (int id : {7, 1000, 1999}) {
    rows.push_back(FromHex(snapshot_test::Query(db_, "SELECT hex(substr(v, 1, 32)) FROM t WHERE id = " + std::to_string(id))));
    ASSERT_EQ(32u, rows.back().size());
  }
  std::string where;
  const std::string store_dir = tmp_ / "app.db-snapshots";
  ASSERT_TRUE(AnyFileContains(store_dir, rows, &where)) << "the rows are in the local pack in the clear";
  EXPECT_FALSE(AnyFileContains(snapshot_test::ObjectStoreDataDir(), rows, &where, before))
      << where << " on the server holds rows of the database";

  {
    snapshot_test::ScopedEnv no_key(snapshot::kRemoteKeyFileVariable, nullptr);
    const std::string r = RestoreOnMachineB("app.db");
    EXPECT_NE(std::string::npos, r.find("is encrypted: set SNAPSHOT_REMOTE_KEY_FILE")) << r;
    EXPECT_TRUE(MachineBIsEmpty()) << "nothing written";
  }
  {
    snapshot_test::ScopedEnv other(snapshot::kRemoteKeyFileVariable, key_b_.c_str());
    const std::string r = RestoreOnMachineB("app.db");
    EXPECT_NE(std::string::npos, r.find("encrypted with another key than the one in " + key_b_)) << r;
    EXPECT_TRUE(MachineBIsEmpty()) << "nothing written";
  }
  EXPECT_EQ("1", RestoreOnMachineB("app.db"));
  EXPECT_TRUE(ReadBytes(machine_b_ / "app.db") == ReadBytes(tmp_ / "app.db")) << "byte for byte";
  EXPECT_EQ("ok", snapshot_test::Query(db_, "SELECT snapshot_verify(NULL, '" + url_ + "')"));
}

}  // namespace
