// Tests of the snapshot store (store/*.h), independent of SQLite: pages in,
// pages out. Every test asserts something users rely on: that a snapshot
// reads back byte for byte, that unchanged pages are not stored twice, that a
// failure or crash at any step leaves every listed snapshot whole, that
// damage is reported (naming the snapshot) and never returned as data, and
// that pruning keeps exactly what the rules say.
#include <sched.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store/background.h"
#include "store/coding.h"
#include "store/env.h"
#include "store/format.h"
#include "store/hash.h"
#include "store/manifest.h"
#include "store/pack.h"
#include "store/page_index.h"
#include "store/status.h"
#include "store/store.h"
#include "tests/test_util.h"

namespace {

namespace fs = std::filesystem;
using snapshot::Env;
using snapshot::EnvWrapper;
using snapshot::Extent;
using snapshot::Manifest;
using snapshot::PageHash;
using snapshot::PageIndex;
using snapshot::PageRef;
using snapshot::PruneResult;
using snapshot::SnapshotBuilder;
using snapshot::SnapshotImage;
using snapshot::SnapshotInfo;
using snapshot::Status;
using snapshot::Store;
using snapshot::StoreOptions;
using snapshot::WritableFile;
using snapshot_test::TempDir;

// ---------------------------------------------------------------------------
// Helpers

const char* CodeName(Status::Code c) {
  switch (c) {
    case Status::Code::kOk: return "OK";
    case Status::Code::kNotFound: return "NotFound";
    case Status::Code::kCorruption: return "Corruption";
    case Status::Code::kInvalidArgument: return "InvalidArgument";
    case Status::Code::kIOError: return "IOError";
    case Status::Code::kBusy: return "Busy";
    case Status::Code::kNotSupported: return "NotSupported";
    case Status::Code::kInterrupted: return "Interrupted";
  }
  return "?";
}

std::string Describe(const Status& s) {
  return std::string(CodeName(s.code())) + (s.ok() ? "" : ": " + s.message());
}

#define ASSERT_OK(expr)                                                  \
  do {                                                                   \
    const ::snapshot::Status _st = (expr);                               \
    ASSERT_TRUE(_st.ok()) << #expr << " -> " << Describe(_st);           \
  } while (0)
#define EXPECT_OK(expr)                                                  \
  do {                                                                   \
    const ::snapshot::Status _st = (expr);                               \
    EXPECT_TRUE(_st.ok()) << #expr << " -> " << Describe(_st);           \
  } while (0)
#define EXPECT_CODE(want, expr)                                          \
  do {                                                                   \
    const ::snapshot::Status _st = (expr);                               \
    EXPECT_EQ(Status::Code::want, _st.code()) << #expr << " -> " << Describe(_st); \
  } while (0)

// Text-like page content, as a table of orders would hold: a small vocabulary
// and numbers, so it compresses, but distinct for each (key, version).
std::string TextPage(uint32_t page_size, uint32_t key, uint32_t version) {
  static const char* const kWords[] = {"alpha",   "invoice", "customer", "shipped", "pending", "berlin",
                                       "paris",   "widget",  "gadget",   "total",   "refund",  "note"};
  std::string p;
  p.reserve(page_size + 128);
  p += "page " + std::to_string(key) + " version " + std::to_string(version) + "\n";
  uint32_t x = key * 2654435761u + version * 40503u + 1;
  while (p.size() < page_size) {
    x = x * 1103515245u + 12345u;
    p += "INSERT INTO orders VALUES(" + std::to_string(x % 100000) + ",'" + kWords[(x >> 8) % 12] + "','" +
         kWords[(x >> 16) % 12] + "'," + std::to_string((x >> 4) % 50) + ");\n";
  }
  p.resize(page_size);
  return p;
}

// A database image: pages[i] is page i+1. An empty string is a page that is
// not given to the builder (the lock-byte page) and must read back as zeros.
struct Image {
  uint32_t page_size = 0;
  std::vector<std::string> pages;
};

Image MakeImage(uint32_t page_size, uint32_t n, uint32_t version) {
  Image img;
  img.page_size = page_size;
  for (uint32_t i = 0; i < n; i++) img.pages.push_back(TextPage(page_size, i + 1, version));
  return img;
}

size_t DistinctPages(const Image& img) {
  std::set<std::string> s;
  for (const auto& p : img.pages)
    if (!p.empty()) s.insert(p);
  return s.size();
}

StoreOptions Options(const std::string& dir, bool exclusive = true, Env* env = Env::Default()) {
  StoreOptions o;
  o.env = env;
  o.dir = dir;
  o.db_name = "app.db";
  o.create_if_missing = exclusive;
  o.create_store = exclusive;
  o.exclusive = exclusive;
  o.lock_timeout_ms = 2000;
  return o;
}

std::unique_ptr<Store> OpenOrDie(const StoreOptions& o) {
  std::unique_ptr<Store> s;
  Status st = Store::Open(o, &s);
  EXPECT_TRUE(st.ok()) << "open " << o.dir << ": " << Describe(st);
  return st.ok() ? std::move(s) : nullptr;
}

// Adds every page of img (or only `pgnos`, 1-based) and commits.
Status Snap(Store* store, const Image& img, const std::string& label, uint64_t* id, const Manifest* base = nullptr,
            const std::vector<uint32_t>* pgnos = nullptr) {
  std::unique_ptr<SnapshotBuilder> b;
  SNAPSHOT_RETURN_IF_ERROR(store->NewSnapshot(img.page_size, static_cast<uint32_t>(img.pages.size()), base, &b));
  if (pgnos != nullptr) {
    for (uint32_t p : *pgnos) {
      SNAPSHOT_RETURN_IF_ERROR(b->AddPage(p, reinterpret_cast<const uint8_t*>(img.pages[p - 1].data())));
    }
  } else {
    for (uint32_t i = 0; i < img.pages.size(); i++) {
      if (img.pages[i].empty()) continue;
      SNAPSHOT_RETURN_IF_ERROR(b->AddPage(i + 1, reinterpret_cast<const uint8_t*>(img.pages[i].data())));
    }
  }
  return b->Commit(label, id);
}

// Opens snapshot `id` and compares every page with `want`.
::testing::AssertionResult ReadsBack(Store* store, uint64_t id, const Image& want) {
  std::unique_ptr<SnapshotImage> image;
  Status s = store->OpenImage(id, &image);
  if (!s.ok()) return ::testing::AssertionFailure() << "OpenImage(" << id << "): " << Describe(s);
  if (image->info().page_size != want.page_size || image->info().page_count != want.pages.size()) {
    return ::testing::AssertionFailure() << "snapshot " << id << " has " << image->info().page_count << " pages of "
                                         << image->info().page_size << " bytes, want " << want.pages.size() << " of "
                                         << want.page_size;
  }
  std::string buf(want.page_size, '\x55');
  const std::string zeros(want.page_size, '\0');
  for (uint32_t i = 0; i < want.pages.size(); i++) {
    s = image->ReadPage(i + 1, reinterpret_cast<uint8_t*>(&buf[0]));
    if (!s.ok()) return ::testing::AssertionFailure() << "snapshot " << id << " page " << i + 1 << ": " << Describe(s);
    if (buf != (want.pages[i].empty() ? zeros : want.pages[i])) {
      return ::testing::AssertionFailure() << "snapshot " << id << " page " << i + 1 << " reads back different bytes";
    }
  }
  return ::testing::AssertionSuccess();
}

std::vector<uint64_t> ListIds(Store* store) {
  std::vector<SnapshotInfo> infos;
  Status s = store->List(&infos);
  EXPECT_TRUE(s.ok()) << Describe(s);
  std::vector<uint64_t> ids;
  for (const auto& i : infos) ids.push_back(i.id);
  return ids;
}

SnapshotInfo InfoOf(Store* store, uint64_t id) {
  std::vector<SnapshotInfo> infos;
  EXPECT_OK(store->List(&infos));
  for (const auto& i : infos)
    if (i.id == id) return i;
  ADD_FAILURE() << "snapshot " << id << " is not listed";
  return SnapshotInfo();
}

// Snapshot ids a Verify() message names ("snapshot 3 (...)").
std::set<uint64_t> NamedIds(const std::string& msg) {
  std::set<uint64_t> ids;
  const std::string word = "snapshot ";
  for (size_t at = msg.find(word); at != std::string::npos; at = msg.find(word, at + 1)) {
    size_t end = at + word.size();
    while (end < msg.size() && std::isdigit(static_cast<unsigned char>(msg[end]))) end++;
    if (end > at + word.size() && end + 1 < msg.size() && msg[end] == ' ' && msg[end + 1] == '(') {
      ids.insert(std::stoull(msg.substr(at + word.size(), end - at - word.size())));
    }
  }
  return ids;
}

std::string PackFile(const std::string& dir, uint64_t id) {
  return dir + "/packs/" + snapshot::FileNameForId(id, snapshot::kPackSuffix);
}
std::string ManifestFile(const std::string& dir, uint64_t id) {
  return dir + "/snapshots/" + snapshot::FileNameForId(id, snapshot::kManifestSuffix);
}

std::string ReadBytes(const std::string& path) { return snapshot_test::ReadFile(path); }
void WriteBytes(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
  ASSERT_TRUE(f.good()) << path;
}
uint64_t FileSize(const std::string& path) { return fs::file_size(path); }

void PutU32(std::string* s, size_t off, uint32_t v) {
  for (int i = 0; i < 4; i++) (*s)[off + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
void PutU64(std::string* s, size_t off, uint64_t v) {
  for (int i = 0; i < 8; i++) (*s)[off + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
uint32_t GetU32(const std::string& s, size_t off) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) v |= uint32_t(static_cast<uint8_t>(s[off + i])) << (8 * i);
  return v;
}
// STORE files and manifests end in a Checksum64 of everything before it.
void FixTrailingChecksum(std::string* s) {
  PutU64(s, s->size() - 8, snapshot::Checksum64(s->data(), s->size() - 8));
}

// Every file under dir (relative paths), optionally only those ending in suffix.
std::vector<std::string> FilesUnder(const std::string& dir, const std::string& suffix = "") {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    const std::string p = e.path().string();
    if (!e.is_regular_file()) continue;
    if (suffix.empty() || (p.size() >= suffix.size() && p.compare(p.size() - suffix.size(), suffix.size(), suffix) == 0)) {
      out.push_back(p.substr(dir.size() + 1));
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::set<uint64_t> PackIdsOnDisk(const std::string& dir) {
  std::set<uint64_t> ids;
  for (const auto& e : fs::directory_iterator(dir + "/packs")) {
    uint64_t id;
    if (snapshot::ParseFileId(e.path().filename().string(), snapshot::kPackSuffix, &id)) ids.insert(id);
  }
  return ids;
}

std::set<uint64_t> PacksReferenced(Store* store) {
  std::set<uint64_t> ids;
  for (uint64_t id : ListIds(store)) {
    Manifest m;
    EXPECT_OK(store->ReadManifest(id, &m));
    for (const Extent& e : m.extents)
      if (e.pack != 0) ids.insert(e.pack);
  }
  return ids;
}

// Number of pages of snapshot `id` stored in pack `pack`.
uint32_t PagesInPack(Store* store, uint64_t id, uint64_t pack) {
  Manifest m;
  EXPECT_OK(store->ReadManifest(id, &m));
  uint32_t n = 0;
  for (const Extent& e : m.extents)
    if (e.pack == pack) n += e.page_count;
  return n;
}

void CopyDir(const std::string& from, const std::string& to) {
  fs::copy(from, to, fs::copy_options::recursive);
}

// An Env whose clock the test sets.
class ClockEnv : public EnvWrapper {
 public:
  ClockEnv() : EnvWrapper(Env::Default()) {}
  int64_t NowMillis() override { return now; }
  int64_t now = 1700000000000;
};

// ---------------------------------------------------------------------------
// FaultEnv: fails the k-th file-system change (create, append, sync, close,
// rename, remove, fsync of a directory, mkdir) with ENOSPC. Sticky, it fails
// every later change too, as if the process had died at that point: nothing
// after it reaches the disk, not even clean-up.

class FaultEnv;

class FaultFile : public WritableFile {
 public:
  FaultFile(FaultEnv* env, std::string path, std::unique_ptr<WritableFile> target)
      : env_(env), path_(std::move(path)), target_(std::move(target)) {}
  Status Append(const void* data, size_t n) override;
  Status WriteAt(uint64_t offset, const void* data, size_t n) override;
  Status Sync() override;
  Status Close() override;

 private:
  FaultEnv* env_;
  std::string path_;
  std::unique_ptr<WritableFile> target_;
};

class FaultEnv : public EnvWrapper {
 public:
  FaultEnv() : EnvWrapper(Env::Default()) {}

  void Arm(int k, bool sticky) {
    std::lock_guard<std::mutex> l(mu_);
    fail_at_ = k;
    sticky_ = sticky;
    ops_ = 0;
    fired_ = false;
    first_fault_.clear();
  }
  // Fails only the first change whose description contains `what`.
  void ArmMatch(const std::string& what) {
    std::lock_guard<std::mutex> l(mu_);
    fail_at_ = 0;
    match_ = what;
    ops_ = 0;
    fired_ = false;
    first_fault_.clear();
  }
  void Disarm() {
    std::lock_guard<std::mutex> l(mu_);
    fail_at_ = 0;
    match_.clear();
  }
  int ops() const {
    std::lock_guard<std::mutex> l(mu_);
    return ops_;
  }
  bool fired() const {
    std::lock_guard<std::mutex> l(mu_);
    return fired_;
  }
  std::string first_fault() const {
    std::lock_guard<std::mutex> l(mu_);
    return first_fault_;
  }

  Status Check(const std::string& what) {
    std::lock_guard<std::mutex> l(mu_);
    ops_++;
    if (getenv("SNAPSHOT_TEST_FAULT_TRACE")) fprintf(stderr, "op %d: %s\n", ops_, what.c_str());
    const bool matched = !match_.empty() && !fired_ && what.find(match_) != std::string::npos;
    if (matched || (fail_at_ > 0 && (ops_ == fail_at_ || (sticky_ && ops_ > fail_at_)))) {
      if (!fired_) first_fault_ = "op " + std::to_string(ops_) + ": " + what;
      fired_ = true;
      return Status::IOError("injected fault: " + what + ": No space left on device");
    }
    return Status::OK();
  }

  Status NewWritableFile(const std::string& p, unsigned m, std::unique_ptr<WritableFile>* o) override {
    SNAPSHOT_RETURN_IF_ERROR(Check("create " + p));
    std::unique_ptr<WritableFile> f;
    SNAPSHOT_RETURN_IF_ERROR(target()->NewWritableFile(p, m, &f));
    o->reset(new FaultFile(this, p, std::move(f)));
    return Status::OK();
  }
  Status RenameFile(const std::string& f, const std::string& t) override {
    SNAPSHOT_RETURN_IF_ERROR(Check("rename " + f));
    return target()->RenameFile(f, t);
  }
  Status RenameNoReplace(const std::string& f, const std::string& t) override {
    SNAPSHOT_RETURN_IF_ERROR(Check("link " + f));
    return target()->RenameNoReplace(f, t);
  }
  Status RemoveFile(const std::string& p) override {
    SNAPSHOT_RETURN_IF_ERROR(Check("remove " + p));
    return target()->RemoveFile(p);
  }
  Status SyncDir(const std::string& d) override {
    SNAPSHOT_RETURN_IF_ERROR(Check("fsync dir " + d));
    return target()->SyncDir(d);
  }
  Status CreateDir(const std::string& d, unsigned m) override {
    SNAPSHOT_RETURN_IF_ERROR(Check("mkdir " + d));
    return target()->CreateDir(d, m);
  }

 private:
  mutable std::mutex mu_;
  int fail_at_ = 0;
  bool sticky_ = false;
  int ops_ = 0;
  bool fired_ = false;
  std::string match_;
  std::string first_fault_;
};

Status FaultFile::Append(const void* data, size_t n) {
  Status s = env_->Check("append " + path_);
  // Like a disk filling up: part of the data may land before the error.
  if (!s.ok()) {
    target_->Append(data, n / 2);
    return s;
  }
  return target_->Append(data, n);
}
Status FaultFile::WriteAt(uint64_t offset, const void* data, size_t n) {
  Status s = env_->Check("write " + path_);
  if (!s.ok()) {
    target_->WriteAt(offset, data, n / 2);
    return s;
  }
  return target_->WriteAt(offset, data, n);
}
Status FaultFile::Sync() {
  SNAPSHOT_RETURN_IF_ERROR(env_->Check("fsync " + path_));
  return target_->Sync();
}
Status FaultFile::Close() {
  Status s = env_->Check("close " + path_);
  Status c = target_->Close();  // the descriptor is released either way, as close(2) does
  return s.ok() ? c : s;
}

// ---------------------------------------------------------------------------
// 1. Round trip

class StoreRoundTrip : public ::testing::TestWithParam<uint32_t> {};

TEST_P(StoreRoundTrip, EveryPageReadsBackExactly) {
  const uint32_t page_size = GetParam();
  // About 2.5 MiB: several compression frames whatever the page size.
  const uint32_t n = (5u << 19) / page_size;
  Image img = MakeImage(page_size, n, 1);
  // Partly repeating: some pages are copies of others (e.g. empty leaves).
  for (uint32_t i = 10; i < n; i += 7) img.pages[i] = img.pages[3];
  TempDir tmp;
  const std::string dir = tmp / "db-snapshots";
  auto store = OpenOrDie(Options(dir));
  ASSERT_NE(store, nullptr);

  const int64_t t0 = Env::Default()->NowMillis();
  uint64_t id = 0;
  ASSERT_OK(Snap(store.get(), img, "nightly 2026-01-01", &id));
  const int64_t t1 = Env::Default()->NowMillis();
  EXPECT_GE(id, 1u);
  EXPECT_TRUE(ReadsBack(store.get(), id, img));

  std::vector<SnapshotInfo> infos;
  ASSERT_OK(store->List(&infos));
  ASSERT_EQ(1u, infos.size());
  const SnapshotInfo& info = infos[0];
  EXPECT_EQ(id, info.id);
  EXPECT_EQ("nightly 2026-01-01", info.label);
  EXPECT_EQ(page_size, info.page_size);
  EXPECT_EQ(n, info.page_count);
  EXPECT_EQ(uint64_t(page_size) * n, info.db_bytes());
  EXPECT_EQ(DistinctPages(img), info.pages_new);
  EXPECT_GE(info.created_ms, t0);
  EXPECT_LE(info.created_ms, t1);
  // bytes_new is what this snapshot added: its pack and its manifest.
  EXPECT_GT(info.bytes_new, 0u);
  EXPECT_EQ(FileSize(PackFile(dir, id)) + FileSize(ManifestFile(dir, id)), info.bytes_new);
  // Compressed: this text-like content shrinks well below half.
  EXPECT_LT(info.bytes_new, info.db_bytes() / 2);
  uint64_t stored = 0;
  ASSERT_OK(store->StoredBytes(&stored));
  EXPECT_EQ(info.bytes_new, stored);

  uint64_t latest = 0;
  ASSERT_OK(store->LatestId(&latest));
  EXPECT_EQ(id, latest);
  EXPECT_OK(store->Verify(0));
  EXPECT_OK(store->Verify(id));
  EXPECT_CODE(kNotFound, store->Verify(id + 100));
  Manifest m;
  EXPECT_CODE(kNotFound, store->ReadManifest(id + 100, &m));
  std::unique_ptr<SnapshotImage> none;
  EXPECT_CODE(kNotFound, store->OpenImage(id + 100, &none));

  // Byte-range reads across page boundaries, and past the end (zeros).
  std::string flat;
  for (const auto& p : img.pages) flat += p;
  std::unique_ptr<SnapshotImage> image;
  ASSERT_OK(store->OpenImage(id, &image));
  EXPECT_EQ(info.id, image->info().id);
  std::mt19937 rng(page_size);
  for (int i = 0; i < 50; i++) {
    const uint64_t off = rng() % flat.size();
    const size_t len = 1 + rng() % (3 * page_size);
    std::string got(len, '\x55');
    ASSERT_OK(image->Read(off, len, reinterpret_cast<uint8_t*>(&got[0])));
    std::string want = flat.substr(off, len);
    want.resize(len, '\0');
    ASSERT_EQ(want, got) << "Read(" << off << ", " << len << ")";
  }
  std::string buf(page_size, 'x');
  EXPECT_CODE(kInvalidArgument, image->ReadPage(0, reinterpret_cast<uint8_t*>(&buf[0])));
  EXPECT_CODE(kInvalidArgument, image->ReadPage(n + 1, reinterpret_cast<uint8_t*>(&buf[0])));
  image.reset();

  // It persists: a new, shared (reading) open of the store sees the same.
  store.reset();
  auto reader = OpenOrDie(Options(dir, /*exclusive=*/false));
  ASSERT_NE(reader, nullptr);
  EXPECT_TRUE(ReadsBack(reader.get(), id, img));
  std::vector<SnapshotInfo> again;
  ASSERT_OK(reader->List(&again));
  ASSERT_EQ(1u, again.size());
  EXPECT_EQ(info.created_ms, again[0].created_ms);
  EXPECT_EQ(info.bytes_new, again[0].bytes_new);
  EXPECT_EQ(info.pages_new, again[0].pages_new);
  // A reader may not write.
  std::unique_ptr<SnapshotBuilder> b;
  EXPECT_FALSE(reader->NewSnapshot(page_size, 1, nullptr, &b).ok());
  PruneResult pr;
  EXPECT_FALSE(reader->Prune(1, -1, &pr).ok());
  EXPECT_EQ(std::vector<uint64_t>{id}, ListIds(reader.get()));
}

INSTANTIATE_TEST_SUITE_P(StorePageSizes, StoreRoundTrip, ::testing::Values(512u, 4096u, 65536u));

TEST(StoreRoundTrip, TimestampsAreIsoUtcWithMilliseconds) {
  EXPECT_EQ("1970-01-01T00:00:00.000Z", snapshot::FormatTimestamp(0));
  EXPECT_EQ("2026-11-25T14:34:25.123Z", snapshot::FormatTimestamp(1795617265123));
}

TEST(StoreRoundTrip, LabelsAreValidated) {
  TempDir tmp;
  auto store = OpenOrDie(Options(tmp / "s"));
  ASSERT_NE(store, nullptr);
  Image img = MakeImage(4096, 3, 1);
  uint64_t id = 0;
  EXPECT_CODE(kInvalidArgument, Snap(store.get(), img, "bad/label", &id));
  EXPECT_CODE(kInvalidArgument, Snap(store.get(), img, "bad\nlabel", &id));
  EXPECT_CODE(kInvalidArgument, Snap(store.get(), img, std::string(snapshot::kMaxLabelBytes + 1, 'a'), &id));
  EXPECT_TRUE(ListIds(store.get()).empty());
  // Nothing is left behind by the refused snapshots.
  EXPECT_TRUE(FilesUnder(tmp / "s", ".pack").empty()) << FilesUnder(tmp / "s", ".pack")[0];
  EXPECT_TRUE(FilesUnder(tmp / "s", ".tmp").empty());
  ASSERT_OK(Snap(store.get(), img, std::string(snapshot::kMaxLabelBytes, 'a'), &id));
  EXPECT_EQ(std::string(snapshot::kMaxLabelBytes, 'a'), InfoOf(store.get(), id).label);
  ASSERT_OK(Snap(store.get(), img, "", &id));
  EXPECT_EQ("", InfoOf(store.get(), id).label);
}

TEST(StoreRoundTrip, BuilderRejectsBadInput) {
  TempDir tmp;
  auto store = OpenOrDie(Options(tmp / "s"));
  ASSERT_NE(store, nullptr);
  std::unique_ptr<SnapshotBuilder> b;
  for (uint32_t ps : {0u, 256u, 1000u, 4095u, 131072u}) {
    EXPECT_CODE(kInvalidArgument, store->NewSnapshot(ps, 10, nullptr, &b));
  }
  Image img = MakeImage(4096, 10, 1);
  ASSERT_OK(store->NewSnapshot(4096, 10, nullptr, &b));
  EXPECT_CODE(kInvalidArgument, b->AddPage(0, reinterpret_cast<const uint8_t*>(img.pages[0].data())));
  EXPECT_CODE(kInvalidArgument, b->AddPage(11, reinterpret_cast<const uint8_t*>(img.pages[0].data())));
  // Without a base every page must be given.
  for (uint32_t p = 1; p <= 10; p++) {
    if (p != 7) ASSERT_OK(b->AddPage(p, reinterpret_cast<const uint8_t*>(img.pages[p - 1].data())));
  }
  uint64_t id = 0;
  Status s = b->Commit("x", &id);
  EXPECT_EQ(Status::Code::kInvalidArgument, s.code()) << Describe(s);
  EXPECT_NE(std::string::npos, s.message().find("7")) << s.message();
  b.reset();
  EXPECT_TRUE(ListIds(store.get()).empty());
  EXPECT_TRUE(FilesUnder(tmp / "s", ".tmp").empty());
  // The abandoned pages are not used for deduplication later: a snapshot of
  // the same content stores every page and reads back.
  ASSERT_OK(Snap(store.get(), img, "x", &id));
  EXPECT_EQ(10u, InfoOf(store.get(), id).pages_new);
  EXPECT_TRUE(ReadsBack(store.get(), id, img));
  EXPECT_OK(store->Verify(0));
}

TEST(StoreRoundTrip, PageAddedTwiceKeepsLastContent) {
  TempDir tmp;
  auto store = OpenOrDie(Options(tmp / "s"));
  ASSERT_NE(store, nullptr);
  Image img = MakeImage(1024, 20, 1);
  std::unique_ptr<SnapshotBuilder> b;
  ASSERT_OK(store->NewSnapshot(1024, 20, nullptr, &b));
  const std::string first = TextPage(1024, 999, 9);
  ASSERT_OK(b->AddPage(5, reinterpret_cast<const uint8_t*>(first.data())));
  for (uint32_t i = 20; i >= 1; i--) ASSERT_OK(b->AddPage(i, reinterpret_cast<const uint8_t*>(img.pages[i - 1].data())));
  uint64_t id = 0;
  ASSERT_OK(b->Commit("", &id));
  EXPECT_TRUE(ReadsBack(store.get(), id, img));
}

// With a base (a tracked snapshot: only changed pages are added), a page is
// compared with the base's page of the same number, not with an index of the
// whole store, so the cost follows the pages added.
TEST(StoreRoundTrip, SnapshotWithBaseComparesWithTheBasePage) {
  TempDir tmp;
  Image img = MakeImage(4096, 50, 1);
  uint64_t first = 0, second = 0;
  {
    auto store = OpenOrDie(Options(tmp / "s"));
    ASSERT_NE(store, nullptr);
    ASSERT_OK(Snap(store.get(), img, "full", &first));
  }
  auto store = OpenOrDie(Options(tmp / "s"));  // a new opening: no index loaded
  ASSERT_NE(store, nullptr);
  Manifest base;
  ASSERT_OK(store->ReadManifest(first, &base));
  Image next = img;
  next.pages[9] = TextPage(4096, 777, 3);  // page 10 changed
  next.pages[19] = img.pages[29];          // page 20 now holds page 30's content
  std::vector<uint32_t> added = {5, 10, 20};  // page 5 written but unchanged
  ASSERT_OK(Snap(store.get(), next, "incremental", &second, &base, &added));
  EXPECT_EQ(2u, InfoOf(store.get(), second).pages_new) << "page 5 is the base's; pages 10 and 20 are stored";
  EXPECT_TRUE(ReadsBack(store.get(), second, next));
  EXPECT_TRUE(ReadsBack(store.get(), first, img));
  EXPECT_OK(store->Verify(0));
}

// Counts the bytes read from files under packs/.
class PackReadCountingEnv : public EnvWrapper {
 public:
  PackReadCountingEnv() : EnvWrapper(Env::Default()) {}
  Status NewRandomAccessFile(const std::string& p, std::unique_ptr<snapshot::RandomAccessFile>* o) override {
    SNAPSHOT_RETURN_IF_ERROR(target()->NewRandomAccessFile(p, o));
    if (p.find("/packs/") != std::string::npos) o->reset(new Counting(std::move(*o), &bytes));
    return Status::OK();
  }
  std::atomic<uint64_t> bytes{0};

 private:
  struct Counting : snapshot::RandomAccessFile {
    Counting(std::unique_ptr<snapshot::RandomAccessFile> f, std::atomic<uint64_t>* n) : f(std::move(f)), n(n) {}
    Status Read(uint64_t offset, size_t len, void* out) const override {
      *n += len;
      return f->Read(offset, len, out);
    }
    uint64_t Size() const override { return f->Size(); }
    std::unique_ptr<snapshot::RandomAccessFile> f;
    std::atomic<uint64_t>* n;
  };
};

// Comparing the pages a tracked snapshot adds with the base's reads their
// hashes only, not the base pack's whole index: the cost follows the pages
// added, not the database's size. A damaged hash entry makes
// the page be stored again, never kept by mistake.
TEST(StoreRoundTrip, ComparingWithTheBaseReadsOnlyThoseHashes) {
  TempDir tmp;
  Image img = MakeImage(4096, 3000, 1);  // a 48 KB page-hash index
  uint64_t first = 0, second = 0, third = 0;
  {
    auto store = OpenOrDie(Options(tmp / "s"));
    ASSERT_NE(store, nullptr);
    ASSERT_OK(Snap(store.get(), img, "full", &first));
  }
  PackReadCountingEnv env;
  {
    auto store = OpenOrDie(Options(tmp / "s", true, &env));
    ASSERT_NE(store, nullptr);
    Manifest base;
    ASSERT_OK(store->ReadManifest(first, &base));
    std::vector<uint32_t> added = {5, 6, 7};  // written, unchanged
    ASSERT_OK(Snap(store.get(), img, "incremental", &second, &base, &added));
    EXPECT_EQ(0u, InfoOf(store.get(), second).pages_new);
    EXPECT_LT(env.bytes.load(), 1000u) << "read the base pack's whole index to compare three pages";
  }
  // Damage page 6's hash in the pack's index: the page is stored again.
  std::vector<std::string> packs;
  for (const auto& e : fs::directory_iterator(fs::path(tmp / "s") / "packs")) packs.push_back(e.path().string());
  ASSERT_EQ(1u, packs.size());
  {
    auto store = OpenOrDie(Options(tmp / "s"));
    ASSERT_NE(store, nullptr);
    Manifest m;
    ASSERT_OK(store->ReadManifest(first, &m));
    uint64_t pack_pages = 0, index_of_page6 = UINT64_MAX;
    for (const Extent& e : m.extents) {
      if (e.first_pgno <= 6 && 6 < e.first_pgno + e.page_count) index_of_page6 = e.first_index + (6 - e.first_pgno);
      pack_pages = std::max<uint64_t>(pack_pages, uint64_t(e.first_index) + e.page_count);
    }
    ASSERT_NE(UINT64_MAX, index_of_page6);
    std::fstream f(packs[0], std::ios::in | std::ios::out | std::ios::binary);
    const auto size = fs::file_size(packs[0]);
    const uint64_t hash_of_page6 = size - snapshot::kPackFooterSize - (pack_pages - index_of_page6) * 16;
    f.seekg(std::streamoff(hash_of_page6));
    char c = 0;
    f.read(&c, 1);
    c = char(c ^ 0x5a);
    f.seekp(std::streamoff(hash_of_page6));
    f.write(&c, 1);
  }
  auto store = OpenOrDie(Options(tmp / "s"));
  ASSERT_NE(store, nullptr);
  Manifest base;
  ASSERT_OK(store->ReadManifest(first, &base));
  std::vector<uint32_t> added = {5, 6, 7};
  ASSERT_OK(Snap(store.get(), img, "after damage", &third, &base, &added));
  EXPECT_EQ(1u, InfoOf(store.get(), third).pages_new) << "page 6's stored hash no longer matches";
  EXPECT_FALSE(store->Verify(0).ok()) << "the damaged index is still reported";
}

TEST(StoreRoundTrip, StoresOfDifferentPageSizesCoexist) {
  TempDir tmp;
  auto store = OpenOrDie(Options(tmp / "s"));
  ASSERT_NE(store, nullptr);
  Image a = MakeImage(4096, 40, 1), b = MakeImage(1024, 100, 1), c = MakeImage(4096, 40, 1);
  uint64_t ia, ib, ic;
  ASSERT_OK(Snap(store.get(), a, "a", &ia));
  ASSERT_OK(Snap(store.get(), b, "b", &ib));
  // A base of another page size gives nothing: every page is needed.
  Manifest base;
  ASSERT_OK(store->ReadManifest(ib, &base));
  std::vector<uint32_t> some = {1, 2};
  EXPECT_CODE(kInvalidArgument, Snap(store.get(), c, "c", &ic, &base, &some));
  ASSERT_OK(Snap(store.get(), c, "c", &ic, &base));
  EXPECT_EQ(0u, InfoOf(store.get(), ic).pages_new);
  EXPECT_TRUE(ReadsBack(store.get(), ia, a));
  EXPECT_TRUE(ReadsBack(store.get(), ib, b));
  EXPECT_TRUE(ReadsBack(store.get(), ic, c));
  EXPECT_OK(store->Verify(0));
}

// ---------------------------------------------------------------------------
// 2. Incremental snapshots and deduplication

// The index behaves as a map from hash to reference, through growth, probe
// chains that wrap around the table's end, and equal low halves (a damaged
// or crafted store), checked against std::map.
TEST(StoreDedup, PageIndexAgreesWithAMap) {
  std::mt19937_64 rng(7);
  PageIndex index;
  std::map<std::pair<uint64_t, uint64_t>, std::pair<uint64_t, uint32_t>> model;
  auto check = [&](const PageHash& h) {
    const PageRef* got = index.Find(h);
    auto it = model.find({h.lo, h.hi});
    ASSERT_EQ(got != nullptr, it != model.end());
    if (got != nullptr) {
      EXPECT_EQ(got->pack, it->second.first);
      EXPECT_EQ(got->index, it->second.second);
    }
  };
  std::vector<PageHash> inserted;
  for (uint32_t i = 0; i < 20000; i++) {
    PageHash h;
    // A third share their low half with an earlier hash; some land in the
    // table's last slots, so their probes wrap.
    h.lo = i % 3 == 0 && !inserted.empty() ? inserted[rng() % inserted.size()].lo
                                          : (i % 7 == 0 ? ~uint64_t(0) - (rng() % 4) : rng());
    h.hi = rng() % 1000;  // a small range: some whole hashes come again
    const bool keep = i % 2 == 0;
    const PageRef ref{1 + rng() % 50, i};
    index.Insert(h, ref, keep);
    auto it = model.find({h.lo, h.hi});
    if (it == model.end()) {
      model[{h.lo, h.hi}] = {ref.pack, ref.index};
    } else if (!keep) {
      it->second = {ref.pack, ref.index};
    }
    inserted.push_back(h);
    if (i % 997 == 0) {
      ASSERT_EQ(index.size(), model.size());
    }
  }
  ASSERT_EQ(index.size(), model.size());
  for (const PageHash& h : inserted) check(h);
  for (int i = 0; i < 1000; i++) check(PageHash{rng(), rng()});  // absent
  index.Clear();
  EXPECT_EQ(index.size(), 0u);
  EXPECT_EQ(index.Find(inserted[0]), nullptr);
  index.Insert(inserted[0], PageRef{9, 9});
  ASSERT_NE(index.Find(inserted[0]), nullptr);
  EXPECT_EQ(index.Find(inserted[0])->pack, 9u);
}

TEST(StoreDedup, SecondSnapshotStoresOnlyChangedPages) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  auto store = OpenOrDie(Options(dir));
  ASSERT_NE(store, nullptr);
  const uint32_t n = 500;
  Image v1 = MakeImage(4096, n, 1);
  uint64_t id1 = 0, id2 = 0, id3 = 0;
  ASSERT_OK(Snap(store.get(), v1, "v1", &id1));
  uint64_t stored1 = 0;
  ASSERT_OK(store->StoredBytes(&stored1));

  // 2% of the pages change, scattered.
  Image v2 = v1;
  const std::vector<uint32_t> changed = {1, 3, 4, 100, 101, 102, 250, 333, 499, n};
  ASSERT_EQ(n / 50, changed.size());
  for (uint32_t p : changed) v2.pages[p - 1] = TextPage(4096, p, 2);
  ASSERT_OK(Snap(store.get(), v2, "v2", &id2));
  EXPECT_GT(id2, id1);

  const SnapshotInfo i1 = InfoOf(store.get(), id1), i2 = InfoOf(store.get(), id2);
  EXPECT_EQ(n, i1.pages_new);
  EXPECT_EQ(changed.size(), i2.pages_new);
  EXPECT_EQ(n, i2.page_count);
  // Unchanged pages are references into the first snapshot's pack.
  EXPECT_EQ(changed.size(), PagesInPack(store.get(), id2, id2));
  EXPECT_EQ(n - changed.size(), PagesInPack(store.get(), id2, id1));
  EXPECT_LT(i2.bytes_new * 10, i1.bytes_new);
  EXPECT_EQ(FileSize(PackFile(dir, id2)) + FileSize(ManifestFile(dir, id2)), i2.bytes_new);
  uint64_t stored2 = 0;
  ASSERT_OK(store->StoredBytes(&stored2));
  EXPECT_EQ(stored1 + i2.bytes_new, stored2);

  // Both read back: the older one still has the old pages.
  EXPECT_TRUE(ReadsBack(store.get(), id1, v1));
  EXPECT_TRUE(ReadsBack(store.get(), id2, v2));

  // Identical content adds no page and no pack, only its manifest.
  ASSERT_OK(Snap(store.get(), v2, "v3", &id3));
  const SnapshotInfo i3 = InfoOf(store.get(), id3);
  EXPECT_EQ(0u, i3.pages_new);
  EXPECT_FALSE(fs::exists(PackFile(dir, id3)));
  EXPECT_EQ(FileSize(ManifestFile(dir, id3)), i3.bytes_new);
  EXPECT_TRUE(ReadsBack(store.get(), id3, v2));

  // Pages going back to an older version come from the older pack.
  Image v4 = v2;
  for (uint32_t p : changed) v4.pages[p - 1] = v1.pages[p - 1];
  uint64_t id4 = 0;
  ASSERT_OK(Snap(store.get(), v4, "v4", &id4));
  EXPECT_EQ(0u, InfoOf(store.get(), id4).pages_new);
  EXPECT_TRUE(ReadsBack(store.get(), id4, v1));

  // A fresh Store object (dedup index rebuilt from the packs) dedups too.
  store.reset();
  store = OpenOrDie(Options(dir));
  ASSERT_NE(store, nullptr);
  uint64_t id5 = 0;
  ASSERT_OK(Snap(store.get(), v2, "v5", &id5));
  EXPECT_EQ(0u, InfoOf(store.get(), id5).pages_new);
  EXPECT_TRUE(ReadsBack(store.get(), id5, v2));
  EXPECT_OK(store->Verify(0));
}

TEST(StoreDedup, DuplicatePagesWithinOneSnapshotAreStoredOnce) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  auto store = OpenOrDie(Options(dir));
  ASSERT_NE(store, nullptr);
  Image img;
  img.page_size = 4096;
  std::vector<std::string> distinct;
  for (uint32_t k = 0; k < 7; k++) distinct.push_back(TextPage(4096, 1000 + k, 1));
  for (uint32_t i = 0; i < 300; i++) img.pages.push_back(distinct[(i * i + i / 3) % 7]);
  uint64_t id = 0;
  ASSERT_OK(Snap(store.get(), img, "dups", &id));
  EXPECT_EQ(7u, InfoOf(store.get(), id).pages_new);
  EXPECT_TRUE(ReadsBack(store.get(), id, img));
  EXPECT_LT(FileSize(PackFile(dir, id)), 7u * 4096);
  EXPECT_OK(store->Verify(id));
}

TEST(StoreDedup, BuilderWithBaseNeedsOnlyChangedPages) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  auto store = OpenOrDie(Options(dir));
  ASSERT_NE(store, nullptr);
  const uint32_t n = 300;
  Image v1 = MakeImage(4096, n, 1);
  uint64_t id1 = 0;
  ASSERT_OK(Snap(store.get(), v1, "full", &id1));
  Manifest base;
  ASSERT_OK(store->ReadManifest(id1, &base));
  EXPECT_EQ(id1, base.info.id);
  EXPECT_EQ(n, base.info.page_count);

  // Same size, 2% changed: only those are given.
  Image v2 = v1;
  std::vector<uint32_t> changed = {1, 2, 77, 150, 151, 299};
  for (uint32_t p : changed) v2.pages[p - 1] = TextPage(4096, p, 2);
  uint64_t id2 = 0;
  ASSERT_OK(Snap(store.get(), v2, "incr", &id2, &base, &changed));
  EXPECT_EQ(changed.size(), InfoOf(store.get(), id2).pages_new);
  EXPECT_TRUE(ReadsBack(store.get(), id2, v2));

  // The same content built from all pages is the same snapshot, page for page.
  uint64_t id2b = 0;
  ASSERT_OK(Snap(store.get(), v2, "full again", &id2b));
  EXPECT_EQ(0u, InfoOf(store.get(), id2b).pages_new);
  Manifest m2, m2b;
  ASSERT_OK(store->ReadManifest(id2, &m2));
  ASSERT_OK(store->ReadManifest(id2b, &m2b));
  for (uint32_t p = 1; p <= n; p++) {
    PageRef a, b;
    ASSERT_TRUE(m2.Lookup(p, &a));
    ASSERT_TRUE(m2b.Lookup(p, &b));
    EXPECT_TRUE(a.pack == b.pack && a.index == b.index) << "page " << p;
  }

  // Growing: the new pages must be given; the rest come from the base.
  Manifest base2;
  ASSERT_OK(store->ReadManifest(id2, &base2));
  Image v3 = v2;
  for (uint32_t p = n + 1; p <= n + 25; p++) v3.pages.push_back(TextPage(4096, p, 3));
  std::vector<uint32_t> grown;
  for (uint32_t p = n + 1; p <= n + 25; p++) grown.push_back(p);
  uint64_t id3 = 0;
  std::vector<uint32_t> too_few(grown.begin(), grown.end() - 1);
  EXPECT_CODE(kInvalidArgument, Snap(store.get(), v3, "grown", &id3, &base2, &too_few));
  ASSERT_OK(Snap(store.get(), v3, "grown", &id3, &base2, &grown));
  EXPECT_EQ(25u, InfoOf(store.get(), id3).pages_new);
  EXPECT_TRUE(ReadsBack(store.get(), id3, v3));

  // Shrinking: pages past the new end are dropped.
  Image v4 = v2;
  v4.pages.resize(120);
  std::vector<uint32_t> nothing;
  uint64_t id4 = 0;
  ASSERT_OK(Snap(store.get(), v4, "shrunk", &id4, &base2, &nothing));
  EXPECT_EQ(0u, InfoOf(store.get(), id4).pages_new);
  EXPECT_TRUE(ReadsBack(store.get(), id4, v4));

  EXPECT_TRUE(ReadsBack(store.get(), id1, v1));
  EXPECT_TRUE(ReadsBack(store.get(), id2, v2));
  EXPECT_OK(store->Verify(0));
}

// ---------------------------------------------------------------------------
// 3. Edge shapes: empty database, lock-byte page

TEST(StoreEdge, EmptySnapshot) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  auto store = OpenOrDie(Options(dir));
  ASSERT_NE(store, nullptr);
  uint64_t none = 0;
  EXPECT_CODE(kNotFound, store->LatestId(&none));
  EXPECT_OK(store->Verify(0));  // nothing to verify
  Image empty;
  empty.page_size = 4096;
  uint64_t id = 0;
  ASSERT_OK(Snap(store.get(), empty, "empty", &id));
  const SnapshotInfo info = InfoOf(store.get(), id);
  EXPECT_EQ(0u, info.page_count);
  EXPECT_EQ(4096u, info.page_size);
  EXPECT_EQ(0u, info.pages_new);
  EXPECT_EQ(FileSize(ManifestFile(dir, id)), info.bytes_new);
  EXPECT_FALSE(fs::exists(PackFile(dir, id)));
  EXPECT_OK(store->Verify(0));
  EXPECT_OK(store->Verify(id));
  uint64_t latest = 0;
  ASSERT_OK(store->LatestId(&latest));
  EXPECT_EQ(id, latest);
  std::unique_ptr<SnapshotImage> image;
  ASSERT_OK(store->OpenImage(id, &image));
  EXPECT_EQ(0u, image->info().page_count);
  std::string buf(4096, 'x');
  EXPECT_CODE(kInvalidArgument, image->ReadPage(1, reinterpret_cast<uint8_t*>(&buf[0])));
  ASSERT_OK(image->Read(0, 100, reinterpret_cast<uint8_t*>(&buf[0])));
  EXPECT_EQ(std::string(100, '\0'), buf.substr(0, 100));
  // An empty base: every page of the next snapshot is new.
  Manifest base;
  ASSERT_OK(store->ReadManifest(id, &base));
  Image img = MakeImage(4096, 5, 1);
  uint64_t id2 = 0;
  ASSERT_OK(Snap(store.get(), img, "", &id2, &base));
  EXPECT_TRUE(ReadsBack(store.get(), id2, img));
}

TEST(StoreEdge, LockBytePageReadsAsZeros) {
  // 65536-byte pages: the page holding byte 2^30 is page 16385.
  const uint32_t ps = 65536, lock_page = 16385, n = 16390;
  Image img;
  img.page_size = ps;
  const std::string common = TextPage(ps, 1, 1), other = TextPage(ps, 2, 1);
  img.pages.assign(n, common);
  for (uint32_t p : {1u, 2u, 16384u, 16386u, 16390u}) img.pages[p - 1] = TextPage(ps, p, 7);
  for (uint32_t p = 100; p < n; p += 1000) img.pages[p - 1] = other;
  img.pages[lock_page - 1].clear();  // not given; must read as zeros

  TempDir tmp;
  auto store = OpenOrDie(Options(tmp / "s"));
  ASSERT_NE(store, nullptr);
  uint64_t id = 0;
  ASSERT_OK(Snap(store.get(), img, "big", &id));
  const SnapshotInfo info = InfoOf(store.get(), id);
  EXPECT_EQ(n, info.page_count);
  EXPECT_EQ(7u, info.pages_new);
  EXPECT_GT(info.db_bytes(), 0x40000000ull);
  EXPECT_TRUE(ReadsBack(store.get(), id, img));

  std::unique_ptr<SnapshotImage> image;
  ASSERT_OK(store->OpenImage(id, &image));
  std::string buf(3 * ps, 'x');
  ASSERT_OK(image->Read(0x40000000ull - 10, 3 * ps, reinterpret_cast<uint8_t*>(&buf[0])));
  EXPECT_EQ(img.pages[lock_page - 2].substr(ps - 10), buf.substr(0, 10));
  EXPECT_EQ(std::string(ps, '\0'), buf.substr(10, ps));
  EXPECT_EQ(img.pages[lock_page], buf.substr(10 + ps, ps));
  image.reset();
  EXPECT_OK(store->Verify(id));

  // The lock-byte page is the only one that may be left out.
  std::unique_ptr<SnapshotBuilder> b;
  ASSERT_OK(store->NewSnapshot(ps, 3, nullptr, &b));
  ASSERT_OK(b->AddPage(1, reinterpret_cast<const uint8_t*>(common.data())));
  ASSERT_OK(b->AddPage(3, reinterpret_cast<const uint8_t*>(common.data())));
  uint64_t bad = 0;
  EXPECT_CODE(kInvalidArgument, b->Commit("", &bad));
  b.reset();

  // Incremental on top of it: the zero page is carried over.
  Manifest base;
  ASSERT_OK(store->ReadManifest(id, &base));
  Image v2 = img;
  v2.pages[n - 1] = TextPage(ps, n, 8);
  std::vector<uint32_t> changed = {n};
  uint64_t id2 = 0;
  ASSERT_OK(Snap(store.get(), v2, "incr", &id2, &base, &changed));
  EXPECT_EQ(1u, InfoOf(store.get(), id2).pages_new);
  EXPECT_TRUE(ReadsBack(store.get(), id2, v2));
}

// ---------------------------------------------------------------------------
// 4. Crash safety: a failure (or a crash) at every step of a snapshot, a
// prune, and the creation of a store.

// After a failed or interrupted operation on the store in `dir`: every
// snapshot in `must` is listed, verifies and reads back exactly; any other
// listed snapshot must be in `may` and read back as its content there.
void CheckSurvivors(const std::string& dir, const std::map<uint64_t, Image>& must,
                    const std::map<uint64_t, Image>& may, const std::string& context) {
  SCOPED_TRACE(context);
  auto reader = OpenOrDie(Options(dir, /*exclusive=*/false));
  ASSERT_NE(reader, nullptr);
  const std::vector<uint64_t> ids = ListIds(reader.get());
  for (const auto& [id, img] : must) {
    EXPECT_TRUE(std::count(ids.begin(), ids.end(), id)) << "snapshot " << id << " is no longer listed";
    EXPECT_TRUE(ReadsBack(reader.get(), id, img));
  }
  for (uint64_t id : ids) {
    if (must.count(id)) continue;
    auto it = may.find(id);
    if (it == may.end()) {
      ADD_FAILURE() << "snapshot " << id << " is listed, though the operation that wrote it failed";
      continue;
    }
    EXPECT_TRUE(ReadsBack(reader.get(), id, it->second));
  }
  Status v = reader->Verify(0);
  EXPECT_TRUE(v.ok()) << Describe(v);
}

// Reopening exclusive removes debris; the store then works normally.
void CheckRecovers(const std::string& dir, const Image& next, const std::string& context) {
  SCOPED_TRACE(context);
  auto store = OpenOrDie(Options(dir));
  ASSERT_NE(store, nullptr);
  const std::vector<std::string> debris = FilesUnder(dir, snapshot::kTempSuffix);
  EXPECT_TRUE(debris.empty()) << "left after reopening: " << debris[0];
  uint64_t id = 0;
  ASSERT_OK(Snap(store.get(), next, "after", &id));
  EXPECT_TRUE(ReadsBack(store.get(), id, next));
  // A prune that deletes nothing still removes any pack a failure orphaned.
  PruneResult pr;
  ASSERT_OK(store->Prune(1000, -1, &pr));
  EXPECT_TRUE(pr.deleted.empty());
  EXPECT_EQ(PacksReferenced(store.get()), PackIdsOnDisk(dir));
  EXPECT_TRUE(ReadsBack(store.get(), id, next));
  EXPECT_OK(store->Verify(0));
}

TEST(StoreCrash, SnapshotFailingAtEveryStep) {
  // c adds 2.3 MB of new pages: a pack of several frames.
  const uint32_t ps = 16384;
  Image a = MakeImage(ps, 150, 1);
  Image b = a;
  for (uint32_t p = 1; p <= 20; p++) b.pages[p - 1] = TextPage(ps, p, 2);
  Image c = b;  // 121 changed + 20 added pages, and one page back to its first version
  for (uint32_t p = 30; p <= 150; p++) c.pages[p - 1] = TextPage(ps, p, 3);
  for (uint32_t p = 151; p <= 170; p++) c.pages.push_back(TextPage(ps, p, 3));
  c.pages[4] = a.pages[4];

  TempDir tmp;
  const std::string golden = tmp / "golden";
  uint64_t id_a = 0, id_b = 0;
  {
    auto store = OpenOrDie(Options(golden));
    ASSERT_NE(store, nullptr);
    ASSERT_OK(Snap(store.get(), a, "a", &id_a));
    ASSERT_OK(Snap(store.get(), b, "b", &id_b));
  }
  const std::map<uint64_t, Image> before = {{id_a, a}, {id_b, b}};

  for (bool sticky : {false, true}) {
    int k = 1;
    for (;; k++) {
      ASSERT_LT(k, 500) << "the snapshot never succeeds";
      const std::string context = std::string(sticky ? "crash" : "single failure") + " at op " + std::to_string(k);
      SCOPED_TRACE(context);
      const std::string dir = tmp / ("work-" + std::to_string(sticky) + "-" + std::to_string(k));
      CopyDir(golden, dir);
      FaultEnv env;
      uint64_t id = 0;
      Status s;
      {
        auto store = OpenOrDie(Options(dir, true, &env));
        ASSERT_NE(store, nullptr);
        env.Arm(k, sticky);
        s = Snap(store.get(), c, "c", &id);
        // The store and builder go away with the fault still armed: after a
        // crash, no clean-up happens either.
      }
      env.Disarm();
      if (s.ok()) {
        EXPECT_FALSE(env.fired()) << "the snapshot succeeded although " << env.first_fault() << " failed";
        CheckSurvivors(dir, {{id_a, a}, {id_b, b}, {id, c}}, {}, context);
        break;
      }
      EXPECT_TRUE(env.fired()) << Describe(s);
      EXPECT_NE(std::string::npos, s.message().find("injected fault")) << "the error was not passed on: " << Describe(s);
      // A single failure is reported and leaves no snapshot; after a crash the
      // snapshot may exist, but only whole.
      std::map<uint64_t, Image> may;
      if (sticky) may[id_b + 1] = c;
      CheckSurvivors(dir, before, may, context + " (" + env.first_fault() + ")");
      CheckRecovers(dir, c, context);
      fs::remove_all(dir);
      if (HasFatalFailure()) return;
    }
    // Sanity: every step of the write was exercised (pack: create, header,
    // frames, index, footer, fsync, close, rename, dir fsync; then the same
    // for the manifest).
    EXPECT_GE(k, 17) << (sticky ? "crash" : "single failure");
  }
}

// The last step of a commit, the fsync of the snapshots directory, fails
// after the manifest has been renamed into place. Whatever Commit then
// reports, a snapshot that is listed must be whole: restoring "the latest"
// picks it.
TEST(StoreCrash, ManifestDirectorySyncFailureLeavesNoBrokenSnapshot) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  Image a = MakeImage(4096, 50, 1), b = a;
  for (uint32_t p = 1; p <= 10; p++) b.pages[p - 1] = TextPage(4096, p, 2);
  FaultEnv env;
  uint64_t ia = 0, ib = 0;
  Status s;
  {
    auto store = OpenOrDie(Options(dir, true, &env));
    ASSERT_NE(store, nullptr);
    ASSERT_OK(Snap(store.get(), a, "a", &ia));
    env.ArmMatch("fsync dir " + dir + "/snapshots");
    s = Snap(store.get(), b, "b", &ib);
    ASSERT_TRUE(env.fired());
    env.Disarm();
  }
  auto reader = OpenOrDie(Options(dir, false));
  ASSERT_NE(reader, nullptr);
  const std::vector<uint64_t> ids = ListIds(reader.get());
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(std::vector<uint64_t>{ia}, ids) << "the failed snapshot is listed";
  for (uint64_t id : ids) EXPECT_TRUE(ReadsBack(reader.get(), id, id == ia ? a : b));
  Status v = reader->Verify(0);
  EXPECT_TRUE(v.ok()) << Describe(v);
  uint64_t latest = 0;
  ASSERT_OK(reader->LatestId(&latest));
  EXPECT_TRUE(ReadsBack(reader.get(), latest, latest == ia ? a : b)) << "the latest snapshot cannot be restored";
  // The manifest was in place for a while, so its id is never allocated
  // again: no copy of it made meanwhile can pass for a later snapshot.
  reader.reset();
  auto store = OpenOrDie(Options(dir));
  ASSERT_NE(store, nullptr);
  uint64_t ic = 0;
  ASSERT_OK(Snap(store.get(), b, "c", &ic));
  EXPECT_GT(ic, ia + 1);
}

// ---------------------------------------------------------------------------
// Ids: a writer that takes its snapshot back (as a failed restore does with
// its pre-restore snapshot) never frees the snapshot's id, so an old copy of
// a file put back into the store (from a copy of the directory, say) is a
// copy of that same file, never one that passes for a later snapshot.

// The pages of `base` with pages [first, last] at `version`.
Image Changed(const Image& base, uint32_t first, uint32_t last, uint32_t version) {
  Image img = base;
  for (uint32_t p = first; p <= last; p++) img.pages[p - 1] = TextPage(base.page_size, p, version);
  return img;
}

TEST(StoreIds, TakenBackSnapshotsIdIsNeverAllocatedAgain) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  const Image a = MakeImage(4096, 40, 1), b = Changed(a, 1, 20, 2), c = Changed(a, 1, 20, 3);
  auto store = OpenOrDie(Options(dir));
  ASSERT_NE(store, nullptr);
  uint64_t ia = 0, ib = 0, ic = 0;
  ASSERT_OK(Snap(store.get(), a, "a", &ia));
  ASSERT_OK(Snap(store.get(), b, "pre-restore", &ib));
  const std::string old_pack = ReadBytes(PackFile(dir, ib));
  ASSERT_OK(store->Discard(ib));
  EXPECT_EQ(std::vector<uint64_t>{ia}, ListIds(store.get()));
  EXPECT_TRUE(fs::exists(PackFile(dir, ib))) << "the pack holding the largest id was deleted";
  ASSERT_OK(Snap(store.get(), c, "c", &ic));
  EXPECT_GT(ic, ib) << "the id of the snapshot taken back was allocated again";
  store.reset();

  // The taken-back snapshot's pack, copied before the discard, is put back.
  WriteBytes(PackFile(dir, ib), old_pack);
  auto reader = OpenOrDie(Options(dir, false));
  ASSERT_NE(reader, nullptr);
  EXPECT_EQ((std::vector<uint64_t>{ia, ic}), ListIds(reader.get()));
  EXPECT_OK(reader->Verify(0));
  EXPECT_TRUE(ReadsBack(reader.get(), ia, a));
  EXPECT_TRUE(ReadsBack(reader.get(), ic, c));
}

// The same when publishing a manifest fails after it was in place, for a
// snapshot that stored no page: an empty pack keeps its id.
TEST(StoreIds, FailedCommitWithoutPackKeepsItsId) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  const Image a = MakeImage(4096, 20, 1);
  FaultEnv env;
  auto store = OpenOrDie(Options(dir, true, &env));
  ASSERT_NE(store, nullptr);
  uint64_t ia = 0, ib = 0, ic = 0;
  ASSERT_OK(Snap(store.get(), a, "a", &ia));
  env.ArmMatch("fsync dir " + dir + "/snapshots");
  EXPECT_FALSE(Snap(store.get(), a, "b", &ib).ok());
  ASSERT_TRUE(env.fired());
  env.Disarm();
  EXPECT_EQ(std::vector<uint64_t>{ia}, ListIds(store.get()));
  EXPECT_TRUE(fs::exists(PackFile(dir, ia + 1))) << "nothing keeps the id of the manifest taken back";
  ASSERT_OK(Snap(store.get(), a, "c", &ic));
  EXPECT_GT(ic, ia + 1);
  EXPECT_OK(store->Verify(0));
}

// A snapshot that stored no page has no pack to keep its id: taking it back
// leaves an empty pack in its place, which a later prune removes.
TEST(StoreIds, TakenBackSnapshotWithoutPackKeepsItsId) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  const Image a = MakeImage(4096, 40, 1), c = Changed(a, 5, 9, 3);
  auto store = OpenOrDie(Options(dir));
  ASSERT_NE(store, nullptr);
  uint64_t ia = 0, ib = 0, ic = 0;
  ASSERT_OK(Snap(store.get(), a, "a", &ia));
  ASSERT_OK(Snap(store.get(), a, "pre-restore", &ib));
  ASSERT_FALSE(fs::exists(PackFile(dir, ib))) << "a snapshot of unchanged pages stored some";
  const std::string old_manifest = ReadBytes(ManifestFile(dir, ib));
  ASSERT_OK(store->Discard(ib));
  EXPECT_EQ(std::vector<uint64_t>{ia}, ListIds(store.get()));
  EXPECT_TRUE(fs::exists(PackFile(dir, ib)));
  ASSERT_OK(Snap(store.get(), c, "c", &ic));
  EXPECT_GT(ic, ib) << "the id of the snapshot taken back was allocated again";
  EXPECT_OK(store->Verify(0));

  // Its manifest put back is that snapshot again, whole: not snapshot c.
  WriteBytes(ManifestFile(dir, ib), old_manifest);
  EXPECT_EQ((std::vector<uint64_t>{ia, ib, ic}), ListIds(store.get()));
  EXPECT_TRUE(ReadsBack(store.get(), ib, a));
  EXPECT_TRUE(ReadsBack(store.get(), ic, c));

  // The empty pack is an orphan like any other: gone at the next prune,
  // now that a larger id exists.
  PruneResult pr;
  ASSERT_OK(store->Prune(100, -1, &pr));
  EXPECT_FALSE(fs::exists(PackFile(dir, ib)));
  EXPECT_EQ(PacksReferenced(store.get()), PackIdsOnDisk(dir));
  EXPECT_TRUE(ReadsBack(store.get(), ic, c));
}

TEST(StoreCrash, PruneFailingAtEveryStep) {
  const uint32_t ps = 4096;
  // s1: 128 pages; s2: pages 1..64 changed; s3: 1..32 changed again;
  // s4: 100..128 changed. Pruning to the last two deletes s1 and s2 and
  // leaves packs 1 and 2 half dead, so both are compacted.
  Image s1 = MakeImage(ps, 128, 1), s2 = s1, s3, s4;
  for (uint32_t p = 1; p <= 64; p++) s2.pages[p - 1] = TextPage(ps, p, 2);
  s3 = s2;
  for (uint32_t p = 1; p <= 32; p++) s3.pages[p - 1] = TextPage(ps, p, 3);
  s4 = s3;
  for (uint32_t p = 100; p <= 128; p++) s4.pages[p - 1] = TextPage(ps, p, 4);
  Image next = s4;
  next.pages[0] = TextPage(ps, 1, 5);

  TempDir tmp;
  const std::string golden = tmp / "golden";
  uint64_t ids[4];
  uint64_t golden_bytes = 0;
  {
    auto store = OpenOrDie(Options(golden));
    ASSERT_NE(store, nullptr);
    const Image* imgs[4] = {&s1, &s2, &s3, &s4};
    for (int i = 0; i < 4; i++) ASSERT_OK(Snap(store.get(), *imgs[i], "s", &ids[i]));
    ASSERT_OK(store->StoredBytes(&golden_bytes));
  }
  const std::map<uint64_t, Image> kept = {{ids[2], s3}, {ids[3], s4}};
  const std::map<uint64_t, Image> doomed = {{ids[0], s1}, {ids[1], s2}};

  for (bool sticky : {false, true}) {
    int k = 1;
    for (;; k++) {
      ASSERT_LT(k, 500) << "the prune never succeeds";
      const std::string context = std::string(sticky ? "crash" : "single failure") + " at op " + std::to_string(k);
      SCOPED_TRACE(context);
      const std::string dir = tmp / ("work-" + std::to_string(sticky) + "-" + std::to_string(k));
      CopyDir(golden, dir);
      FaultEnv env;
      PruneResult pr;
      Status s;
      {
        auto store = OpenOrDie(Options(dir, true, &env));
        ASSERT_NE(store, nullptr);
        env.Arm(k, sticky);
        s = store->Prune(2, -1, &pr);
      }
      env.Disarm();
      if (s.ok()) {
        EXPECT_FALSE(env.fired()) << "the prune succeeded although " << env.first_fault() << " failed";
        EXPECT_EQ((std::vector<uint64_t>{ids[0], ids[1]}), pr.deleted);
        CheckSurvivors(dir, kept, {}, context);
        auto reader = OpenOrDie(Options(dir, false));
        ASSERT_NE(reader, nullptr);
        EXPECT_FALSE(PackIdsOnDisk(dir).count(ids[0])) << "pack 1 was not compacted";
        EXPECT_FALSE(PackIdsOnDisk(dir).count(ids[1])) << "pack 2 was not compacted";
        EXPECT_EQ(PacksReferenced(reader.get()), PackIdsOnDisk(dir));
        break;
      }
      EXPECT_TRUE(env.fired()) << Describe(s);
      EXPECT_NE(std::string::npos, s.message().find("injected fault")) << Describe(s);
      // Kept snapshots are whole; deleted ones may or may not be gone yet.
      CheckSurvivors(dir, kept, doomed, context + " (" + env.first_fault() + ")");
      {
        // Pruning again finishes the job.
        auto store = OpenOrDie(Options(dir));
        ASSERT_NE(store, nullptr);
        EXPECT_TRUE(FilesUnder(dir, snapshot::kTempSuffix).empty());
        ASSERT_OK(store->Prune(2, -1, &pr));
        EXPECT_EQ((std::vector<uint64_t>{ids[2], ids[3]}), ListIds(store.get()));
        EXPECT_EQ(PacksReferenced(store.get()), PackIdsOnDisk(dir));
        uint64_t bytes = 0;
        ASSERT_OK(store->StoredBytes(&bytes));
        EXPECT_LT(bytes, golden_bytes);
      }
      CheckSurvivors(dir, kept, {}, context + " then pruned again");
      CheckRecovers(dir, next, context);
      fs::remove_all(dir);
      if (HasFatalFailure()) return;
    }
    EXPECT_GE(k, 30) << (sticky ? "crash" : "single failure");
  }
}

TEST(StoreCrash, CreatingStoreFailingAtEveryStep) {
  TempDir tmp;
  Image img = MakeImage(4096, 10, 1);
  for (bool sticky : {false, true}) {
    for (int k = 1;; k++) {
      ASSERT_LT(k, 100);
      SCOPED_TRACE(std::string(sticky ? "crash" : "single failure") + " at op " + std::to_string(k));
      const std::string dir = tmp / ("s-" + std::to_string(sticky) + "-" + std::to_string(k));
      FaultEnv env;
      env.Arm(k, sticky);
      std::unique_ptr<Store> store;
      Status s = Store::Open(Options(dir, true, &env), &store);
      store.reset();
      env.Disarm();
      if (s.ok()) {
        EXPECT_FALSE(env.fired()) << env.first_fault();
        break;
      }
      EXPECT_TRUE(env.fired()) << Describe(s);
      // Whatever was left, the next open makes a working store of it.
      store = OpenOrDie(Options(dir));
      ASSERT_NE(store, nullptr);
      uint64_t id = 0;
      ASSERT_OK(Snap(store.get(), img, "", &id));
      EXPECT_TRUE(ReadsBack(store.get(), id, img));
      EXPECT_TRUE(FilesUnder(dir, snapshot::kTempSuffix).empty());
      store.reset();
      auto reader = OpenOrDie(Options(dir, false));
      ASSERT_NE(reader, nullptr);
      EXPECT_TRUE(ReadsBack(reader.get(), id, img));
    }
  }
}

// ---------------------------------------------------------------------------
// 5. Damage is detected, never returned as data, never a crash

class StoreDamage : public ::testing::Test {
 protected:
  // s1: 48 pages of 4096; s2: s1 with 3 pages changed; s3:
  // unrelated content (its own pack only).
  void SetUp() override {
    dir_ = tmp_ / "s";
    v1_ = MakeImage(4096, 48, 1);
    v2_ = v1_;
    for (uint32_t p : {5u, 6u, 40u}) v2_.pages[p - 1] = TextPage(4096, p, 2);
    v3_ = MakeImage(4096, 30, 3);
    for (auto& p : v3_.pages) p[100] = 'Z';
    auto store = OpenOrDie(Options(dir_));
    ASSERT_NE(store, nullptr);
    ASSERT_OK(Snap(store.get(), v1_, "v1", &id1_));
    ASSERT_OK(Snap(store.get(), v2_, "v2", &id2_));
    ASSERT_OK(Snap(store.get(), v3_, "v3", &id3_));
    ASSERT_EQ(0u, PagesInPack(store.get(), id3_, id1_));
  }

  const Image& ImageOf(uint64_t id) const { return id == id1_ ? v1_ : id == id2_ ? v2_ : v3_; }

  // Reads every page of snapshot `id`: each page either reads back exactly or
  // fails with Corruption; returns whether any failed.
  bool ReadAllExpectingDamage(Store* store, uint64_t id, const std::string& where) {
    const Image& want = ImageOf(id);
    std::unique_ptr<SnapshotImage> image;
    Status s = store->OpenImage(id, &image);
    if (!s.ok()) {
      EXPECT_EQ(Status::Code::kCorruption, s.code()) << where << ": " << Describe(s);
      return true;
    }
    bool damaged = false;
    std::string buf(want.page_size, '\0');
    for (uint32_t p = 1; p <= want.pages.size(); p++) {
      s = image->ReadPage(p, reinterpret_cast<uint8_t*>(&buf[0]));
      if (!s.ok()) {
        EXPECT_EQ(Status::Code::kCorruption, s.code()) << where << " page " << p << ": " << Describe(s);
        damaged = true;
      } else {
        EXPECT_EQ(want.pages[p - 1], buf) << where << ": page " << p << " read back wrong bytes without an error";
      }
    }
    return damaged;
  }

  // With one file damaged: Verify() names exactly the snapshots in `must`
  // (plus possibly those in `may`), those are unreadable, the others whole.
  void CheckDamage(const std::set<uint64_t>& must, const std::set<uint64_t>& may, bool listed,
                   const std::string& where) {
    auto store = OpenOrDie(Options(dir_, false));
    ASSERT_NE(store, nullptr) << where;
    Status v = store->Verify(0);
    ASSERT_EQ(Status::Code::kCorruption, v.code()) << where << ": " << Describe(v);
    const std::set<uint64_t> named = NamedIds(v.message());
    for (uint64_t id : must) EXPECT_TRUE(named.count(id)) << where << ": " << v.message();
    for (uint64_t id : named) EXPECT_TRUE(must.count(id) || may.count(id)) << where << ": " << v.message();
    const std::vector<uint64_t> ids = ListIds(store.get());
    for (uint64_t id : {id1_, id2_, id3_}) {
      const bool is_listed = std::count(ids.begin(), ids.end(), id) > 0;
      if (must.count(id)) {
        EXPECT_EQ(listed, is_listed) << where << ": snapshot " << id;
        EXPECT_EQ(Status::Code::kCorruption, store->Verify(id).code()) << where;
        EXPECT_TRUE(ReadAllExpectingDamage(store.get(), id, where)) << where << ": snapshot " << id << " read back whole";
      } else if (may.count(id)) {
        EXPECT_TRUE(is_listed) << where;
        Status vs = store->Verify(id);
        EXPECT_TRUE(vs.ok() || vs.IsCorruption()) << where << ": " << Describe(vs);
        EXPECT_EQ(!vs.ok(), ReadAllExpectingDamage(store.get(), id, where)) << where;
      } else {
        EXPECT_TRUE(is_listed) << where << ": snapshot " << id;
        EXPECT_OK(store->Verify(id));
        EXPECT_TRUE(ReadsBack(store.get(), id, ImageOf(id))) << where;
      }
    }
    uint64_t latest = 0;
    ASSERT_OK(store->LatestId(&latest));
    EXPECT_EQ(listed || !must.count(id3_) ? id3_ : id2_, latest) << where;
  }

  TempDir tmp_;
  std::string dir_;
  Image v1_, v2_, v3_;
  uint64_t id1_ = 0, id2_ = 0, id3_ = 0;
};

// Every byte of the first `head` and last `tail` bytes, every 13th byte of
// the `index` bytes before the tail, and every 97th byte elsewhere.
std::vector<size_t> DamagePositions(size_t size, size_t head, size_t index, size_t tail) {
  std::vector<size_t> pos;
  for (size_t i = 0; i < size; i++) {
    if (i < head || i + tail >= size || (i + tail + index >= size && i % 13 == 0) || i % 97 == 0) pos.push_back(i);
  }
  return pos;
}

TEST_F(StoreDamage, FlippedByteInPack) {
  const std::string path = PackFile(dir_, id1_);
  const std::string good = ReadBytes(path);
  // Header, frames, frame table, page hashes, footer.
  const size_t index_bytes = 2 * snapshot::kFrameEntrySize + 48 * 16;
  for (size_t pos : DamagePositions(good.size(), snapshot::kPackHeaderSize, index_bytes, snapshot::kPackFooterSize)) {
    std::string bad = good;
    bad[pos] ^= static_cast<char>(1u << (pos % 8));
    WriteBytes(path, bad);
    CheckDamage({id1_}, {id2_}, true, "pack byte " + std::to_string(pos) + " of " + std::to_string(good.size()));
    if (HasFatalFailure()) return;
  }
  WriteBytes(path, good);
  auto store = OpenOrDie(Options(dir_, false));
  ASSERT_NE(store, nullptr);
  EXPECT_OK(store->Verify(0));
}

TEST_F(StoreDamage, TruncatedOrMissingPack) {
  const std::string path = PackFile(dir_, id1_);
  const std::string good = ReadBytes(path);
  for (size_t len : {size_t(0), size_t(1), size_t(31), size_t(32), size_t(72), good.size() / 2,
                     good.size() - snapshot::kPackFooterSize, good.size() - 1}) {
    WriteBytes(path, good.substr(0, len));
    CheckDamage({id1_, id2_}, {}, true, "pack truncated to " + std::to_string(len));
    if (HasFatalFailure()) return;
  }
  WriteBytes(path, good + "trailing");
  CheckDamage({id1_, id2_}, {}, true, "pack with trailing bytes");
  fs::remove(path);
  CheckDamage({id1_, id2_}, {}, true, "pack removed");
}

TEST_F(StoreDamage, FlippedByteInManifest) {
  for (uint64_t id : {id2_, id3_}) {
    const std::string path = ManifestFile(dir_, id);
    const std::string good = ReadBytes(path);
    for (size_t pos = 0; pos < good.size(); pos++) {
      std::string bad = good;
      bad[pos] ^= static_cast<char>(1u << (pos % 8));
      WriteBytes(path, bad);
      CheckDamage({id}, {}, false, "manifest " + std::to_string(id) + " byte " + std::to_string(pos));
      if (HasFatalFailure()) return;
      // Reading it directly says why.
      auto store = OpenOrDie(Options(dir_, false));
      Manifest m;
      EXPECT_CODE(kCorruption, store->ReadManifest(id, &m));
    }
    WriteBytes(path, good);
  }
}

TEST_F(StoreDamage, TruncatedManifest) {
  const std::string path = ManifestFile(dir_, id2_);
  const std::string good = ReadBytes(path);
  for (size_t len = 0; len < good.size(); len++) {
    WriteBytes(path, good.substr(0, len));
    CheckDamage({id2_}, {}, false, "manifest truncated to " + std::to_string(len));
    if (HasFatalFailure()) return;
  }
  WriteBytes(path, good + std::string(20, '\0'));
  CheckDamage({id2_}, {}, false, "manifest with trailing bytes");
}

TEST_F(StoreDamage, DamagedStoreFileIsRefused) {
  const std::string path = dir_ + "/STORE";
  const std::string good = ReadBytes(path);
  auto check = [&](const std::string& bad, const std::string& where) {
    WriteBytes(path, bad);
    for (bool exclusive : {false, true}) {
      std::unique_ptr<Store> store;
      StoreOptions o = Options(dir_, exclusive);
      o.lock_timeout_ms = 100;
      Status s = Store::Open(o, &store);
      EXPECT_TRUE(s.code() == Status::Code::kCorruption || s.code() == Status::Code::kInvalidArgument)
          << where << (exclusive ? " (exclusive)" : "") << ": " << Describe(s);
      EXPECT_NE(std::string::npos, s.message().find(dir_)) << where << ": the message does not name the store: " << s.message();
      // The damaged file is left as it is, for the operator.
      EXPECT_EQ(bad, ReadBytes(path)) << where;
    }
  };
  for (size_t pos = 0; pos < good.size(); pos++) {
    if (pos >= 8 && pos < 12) continue;  // the version field: see StoreFileVersionDamage below
    std::string bad = good;
    bad[pos] ^= static_cast<char>(1u << (pos % 8));
    check(bad, "STORE byte " + std::to_string(pos));
  }
  for (size_t len = 0; len < good.size(); len++) check(good.substr(0, len), "STORE truncated to " + std::to_string(len));
  check(good + "x", "STORE with a trailing byte");
  WriteBytes(path, good);
  auto store = OpenOrDie(Options(dir_, false));
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(ReadsBack(store.get(), id2_, v2_));
}

// A bit flipped in the STORE file's version field is damage, like any other
// byte: the checksum says so. It must not be reported as "written by a newer
// version; upgrade the extension", which sends the operator the wrong way.
TEST_F(StoreDamage, StoreFileVersionDamageIsCorruptionNotNewerVersion) {
  const std::string path = dir_ + "/STORE";
  const std::string good = ReadBytes(path);
  for (size_t pos = 8; pos < 12; pos++) {
    for (int bit = 0; bit < 8; bit++) {
      std::string bad = good;
      bad[pos] ^= static_cast<char>(1u << bit);
      WriteBytes(path, bad);
      std::unique_ptr<Store> store;
      Status s = Store::Open(Options(dir_, false), &store);
      EXPECT_EQ(Status::Code::kCorruption, s.code()) << "STORE byte " << pos << " bit " << bit << ": " << Describe(s);
    }
  }
  WriteBytes(path, good);
}

TEST_F(StoreDamage, GarbageFilesWithValidNamesAreHarmless) {
  std::mt19937 rng(42);
  auto garbage = [&](size_t n, const char* magic) {
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    if (magic != nullptr) s.replace(0, std::min<size_t>(8, n), magic, std::min<size_t>(8, n));
    return s;
  };
  const uint64_t gid = 50;
  for (size_t n : {0, 1, 7, 8, 15, 16, 31, 32, 71, 72, 73, 100, 200, 4096, 70000}) {
    for (const char* magic : {static_cast<const char*>(nullptr), snapshot::kPackMagic, snapshot::kManifestMagic}) {
      const std::string where = "garbage of " + std::to_string(n) + " bytes" + (magic ? std::string(" after ") + magic : "");
      SCOPED_TRACE(where);
      std::string pack = garbage(n, magic);
      if (n >= 48) pack.replace(n - 8, 8, snapshot::kPackEndMagic, 8);
      WriteBytes(PackFile(dir_, gid), pack);
      WriteBytes(ManifestFile(dir_, gid + 1), garbage(n, magic));
      {
        auto store = OpenOrDie(Options(dir_, false));
        ASSERT_NE(store, nullptr);
        EXPECT_EQ((std::vector<uint64_t>{id1_, id2_, id3_}), ListIds(store.get()));
        Status v = store->Verify(0);
        EXPECT_EQ(Status::Code::kCorruption, v.code()) << Describe(v);
        EXPECT_EQ(std::set<uint64_t>{gid + 1}, NamedIds(v.message())) << v.message();
        std::unique_ptr<SnapshotImage> image;
        EXPECT_FALSE(store->OpenImage(gid + 1, &image).ok());
        for (uint64_t id : {id1_, id2_, id3_}) EXPECT_TRUE(ReadsBack(store.get(), id, ImageOf(id)));
      }
      {
        // Writing around the garbage works too.
        auto store = OpenOrDie(Options(dir_));
        ASSERT_NE(store, nullptr);
        uint64_t id = 0;
        ASSERT_OK(Snap(store.get(), v2_, "", &id));
        EXPECT_GT(id, gid + 1);
        EXPECT_TRUE(ReadsBack(store.get(), id, v2_));
        // Prune may refuse to work around an unreadable snapshot, but must not
        // lose anything.
        PruneResult pr;
        Status ps = store->Prune(1000, -1, &pr);
        EXPECT_TRUE(ps.ok() || ps.IsCorruption()) << Describe(ps);
        EXPECT_TRUE(pr.deleted.empty());
        for (uint64_t i : {id1_, id2_, id3_, id}) EXPECT_TRUE(ReadsBack(store.get(), i, ImageOf(i == id ? id2_ : i)));
        fs::remove(ManifestFile(dir_, id));
      }
      if (HasFatalFailure()) return;
    }
  }
}

// ---------------------------------------------------------------------------
// Hostile files: well-formed checksums (they are not keyed, anyone can compute
// them) around inconsistent content. Still Corruption, never garbage or a crash.

struct RawFrame {
  std::string compressed;
  uint32_t page_count = 0;
};

std::string Compress(const std::string& raw) {
  std::string out(ZSTD_compressBound(raw.size()), '\0');
  size_t n = ZSTD_compress(&out[0], out.size(), raw.data(), raw.size(), 1);
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(n);
  return out;
}

// A pack laid out as store/pack.h describes, with all checksums right.
std::string BuildPack(uint64_t id, uint32_t page_size, const std::vector<RawFrame>& frames,
                      const std::vector<PageHash>& hashes, uint64_t index_offset_override = 0,
                      uint32_t n_pages_override = 0) {
  std::string out;
  snapshot::ByteWriter w(&out);
  w.Bytes(snapshot::kPackMagic, 8);
  w.U32(snapshot::kFormatVersion);
  w.U32(page_size);
  w.U64(id);
  w.U64(snapshot::Checksum64(out.data(), out.size()));
  std::string index;
  snapshot::ByteWriter iw(&index);
  for (const RawFrame& f : frames) {
    iw.U64(out.size());
    iw.U32(static_cast<uint32_t>(f.compressed.size()));
    iw.U32(f.page_count);
    iw.U64(snapshot::Checksum64(f.compressed.data(), f.compressed.size()));
    out += f.compressed;
  }
  for (const PageHash& h : hashes) {
    iw.U64(h.lo);
    iw.U64(h.hi);
  }
  const uint64_t index_offset = index_offset_override ? index_offset_override : out.size();
  out += index;
  std::string footer;
  snapshot::ByteWriter fw(&footer);
  fw.U64(index_offset);
  fw.U32(static_cast<uint32_t>(frames.size()));
  fw.U32(n_pages_override ? n_pages_override : static_cast<uint32_t>(hashes.size()));
  fw.U64(snapshot::Checksum64(index.data(), index.size()));
  fw.U64(snapshot::Checksum64(footer.data(), footer.size()));
  fw.Bytes(snapshot::kPackEndMagic, 8);
  return out + footer;
}

class StoreHostile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_ / "s";
    img_ = MakeImage(ps_, 8, 1);
    auto store = OpenOrDie(Options(dir_));
    ASSERT_NE(store, nullptr);
    ASSERT_OK(Snap(store.get(), img_, "good", &good_id_));
    // The store's hash key, to compute page hashes the way the store does.
    const std::string sf = ReadBytes(dir_ + "/STORE");
    const uint32_t name_len = GetU32(sf, 24);
    secret_.assign(sf.begin() + 28 + name_len, sf.begin() + 28 + name_len + snapshot::kHashSecretSize);
  }
  PageHash Hash(const std::string& page) const {
    return snapshot::HashPage(reinterpret_cast<const uint8_t*>(secret_.data()), page.data(), page.size());
  }
  // A manifest for snapshot `id` mapping page i+1 to (pack, first_index + i).
  void WriteManifest(uint64_t id, uint64_t pack, uint32_t first_index, uint32_t pages, uint32_t page_size = 0) {
    Manifest m;
    m.info.id = id;
    m.info.created_ms = 1700000000000;
    m.info.page_size = page_size ? page_size : ps_;
    std::vector<PageRef> refs;
    for (uint32_t i = 0; i < pages; i++) refs.push_back(PageRef{pack, first_index + i});
    m.SetPageMap(refs);
    WriteBytes(ManifestFile(dir_, id), m.Encode());
  }
  // The hostile snapshot `id` is listed (it parses), is named by Verify, and
  // none of its pages reads back as anything but Corruption or the truth.
  void CheckHostile(uint64_t id, const std::string& what, bool valid = false) {
    SCOPED_TRACE(what);
    auto store = OpenOrDie(Options(dir_, false));
    ASSERT_NE(store, nullptr);
    EXPECT_EQ((std::vector<uint64_t>{good_id_, id}), ListIds(store.get()));
    Status v = store->Verify(0);
    if (valid) {
      EXPECT_OK(v);
    } else {
      EXPECT_EQ(Status::Code::kCorruption, v.code()) << Describe(v);
      EXPECT_EQ(std::set<uint64_t>{id}, NamedIds(v.message())) << v.message();
    }
    std::unique_ptr<SnapshotImage> image;
    Status s = store->OpenImage(id, &image);
    bool failed = !s.ok();
    if (!s.ok()) {
      EXPECT_EQ(Status::Code::kCorruption, s.code()) << Describe(s);
    }
    for (uint32_t p = 1; s.ok() && p <= image->info().page_count; p++) {
      std::string buf(image->info().page_size, '\0');
      Status r = image->ReadPage(p, reinterpret_cast<uint8_t*>(&buf[0]));
      if (!r.ok()) {
        EXPECT_EQ(Status::Code::kCorruption, r.code()) << "page " << p << ": " << Describe(r);
        failed = true;
      } else {
        EXPECT_EQ(img_.pages[p - 1], buf) << "page " << p << " is garbage";
      }
    }
    EXPECT_EQ(!valid, failed);
    EXPECT_TRUE(ReadsBack(store.get(), good_id_, img_));
  }
  std::vector<PageHash> Hashes() const {
    std::vector<PageHash> h;
    for (const auto& p : img_.pages) h.push_back(Hash(p));
    return h;
  }
  std::string Raw(uint32_t from, uint32_t n) const {
    std::string r;
    for (uint32_t i = from; i < from + n; i++) r += img_.pages[i];
    return r;
  }

  TempDir tmp_;
  std::string dir_;
  const uint32_t ps_ = 65536;  // the packs built here hold one page per frame
  Image img_;
  uint64_t good_id_ = 0;
  std::string secret_;
};

TEST_F(StoreHostile, WellFormedPackBuiltByTheTestReadsBack) {
  // Sanity check of BuildPack: with honest content it is a valid pack.
  std::vector<RawFrame> frames;
  for (uint32_t i = 0; i < 8; i++) frames.push_back({Compress(img_.pages[i]), 1});
  WriteBytes(PackFile(dir_, 5), BuildPack(5, ps_, frames, Hashes()));
  WriteManifest(6, 5, 0, 8);
  CheckHostile(6, "honest pack", /*valid=*/true);
}

TEST_F(StoreHostile, InconsistentPacksAreCorruption) {
  struct Case {
    std::string what;
    std::vector<RawFrame> frames;
    std::vector<PageHash> hashes;
  };
  std::vector<Case> cases;
  auto honest = [&] {
    Case c;
    for (uint32_t i = 0; i < 8; i++) c.frames.push_back({Compress(img_.pages[i]), 1});
    c.hashes = Hashes();
    return c;
  };
  {
    Case c = honest();
    c.what = "a page hash that does not match its page";
    c.hashes[3].lo ^= 1;
    cases.push_back(c);
  }
  {
    Case c = honest();
    c.what = "hashes of other pages (content swapped)";
    std::swap(c.frames[2], c.frames[3]);
    cases.push_back(c);
  }
  {
    Case c = honest();
    c.what = "a frame that decompresses to less than a page";
    c.frames[4].compressed = Compress(img_.pages[4].substr(0, ps_ / 2));
    cases.push_back(c);
  }
  {
    Case c = honest();
    c.what = "a frame that decompresses to more than its pages";
    c.frames[4].compressed = Compress(Raw(4, 2));
    cases.push_back(c);
  }
  {
    Case c = honest();
    c.what = "a frame that is not zstd";
    c.frames[1].compressed = img_.pages[1].substr(0, 1000);
    cases.push_back(c);
  }
  {
    Case c = honest();
    c.what = "an empty frame";
    c.frames[1].compressed.clear();
    cases.push_back(c);
  }
  {
    // 6.5 GB of pages in one frame: a reader must not try to allocate that.
    Case c = honest();
    c.what = "a frame claiming 100000 pages";
    c.frames = {{Compress(Raw(0, 8)), 100000}};
    c.hashes.resize(100000);
    cases.push_back(c);
  }
  uint64_t id = 10;
  for (const Case& c : cases) {
    WriteBytes(PackFile(dir_, id), BuildPack(id, ps_, c.frames, c.hashes));
    WriteManifest(id + 1, id, 0, 8);
    CheckHostile(id + 1, c.what);
    fs::remove(ManifestFile(dir_, id + 1));
    fs::remove(PackFile(dir_, id));
    id += 2;
  }
}

TEST_F(StoreHostile, ManifestsThatDoNotFitTheirPackAreCorruption) {
  std::vector<RawFrame> frames;
  for (uint32_t i = 0; i < 8; i++) frames.push_back({Compress(img_.pages[i]), 1});
  WriteBytes(PackFile(dir_, 5), BuildPack(5, ps_, frames, Hashes()));
  WriteManifest(6, 5, 1, 8);  // one page past the end
  CheckHostile(6, "pages past the end of the pack");
  WriteManifest(6, 5, 0xfffffff0u, 8);
  CheckHostile(6, "indexes far past the end of the pack");
  WriteManifest(6, 5, 0, 8, 4096);
  CheckHostile(6, "another page size than the pack's");
  WriteManifest(6, 77, 0, 8);
  CheckHostile(6, "a pack that does not exist");
  WriteBytes(PackFile(dir_, 7), BuildPack(5, ps_, frames, Hashes()));  // names itself pack 5
  WriteManifest(6, 7, 0, 8);
  CheckHostile(6, "a pack holding another pack's content");
}

// The footer's index offset is a u64 from the file: offset + index size +
// footer size must not wrap around to the file size. Such a pack must be
// refused as damaged without trying to read (or allocate) its "index".
TEST_F(StoreHostile, PackWithWrappingIndexOffsetIsCorruption) {
  std::vector<RawFrame> frames;
  for (uint32_t i = 0; i < 8; i++) frames.push_back({Compress(img_.pages[i]), 1});
  std::string honest = BuildPack(5, ps_, frames, Hashes());
  const uint32_t n_pages = 1u << 22;  // claims a 64 MiB index
  const uint64_t index_size = uint64_t(8) * snapshot::kFrameEntrySize + uint64_t(n_pages) * 16;
  const uint64_t wrapped = uint64_t(honest.size()) - snapshot::kPackFooterSize - index_size;  // mod 2^64
  WriteBytes(PackFile(dir_, 5), BuildPack(5, ps_, frames, Hashes(), wrapped, n_pages));
  WriteManifest(6, 5, 0, 8);
  CheckHostile(6, "index offset that wraps around");
}

// Prune rewrites packs that are mostly dead. A manifest that parses but
// refers past the end of such a pack must not make it index out of bounds
// (under AddressSanitizer: a heap-buffer-overflow in Store::CompactPack).
TEST_F(StoreHostile, PruneSurvivesManifestReferringPastItsPack) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  // Pack of good_id_ holds 8 pages; this manifest keeps 4 of them live (so
  // half the pack is dead and it is compacted) and refers to 4 more past it.
  WriteManifest(20, good_id_, 4, 8);
  EXPECT_EXIT(
      {
        auto store = OpenOrDie(Options(dir_));
        PruneResult pr;
        Status s = store ? store->Prune(1, -1, &pr) : Status::IOError("open");
        // Snapshot 20 is the newest valid one: kept; snapshot 1 is deleted.
        std::_Exit(s.ok() || s.IsCorruption() ? 0 : 3);
      },
      ::testing::ExitedWithCode(0), "");
}

// ---------------------------------------------------------------------------
// 6. Prune

class StorePrune : public ::testing::Test {
 protected:
  // Five snapshots of unrelated content (each its own pack), one a second
  // apart, at t = 1000 .. 5000 s.
  void SetUp() override {
    dir_ = tmp_ / "s";
    StoreOptions o = Options(dir_, true, &clock_);
    store_ = OpenOrDie(o);
    ASSERT_NE(store_, nullptr);
    for (uint32_t i = 0; i < 5; i++) {
      clock_.now = 1000000 + 1000 * i;
      images_.push_back(MakeImage(4096, 20 + i, 10 + i));
      uint64_t id = 0;
      ASSERT_OK(Snap(store_.get(), images_.back(), "s" + std::to_string(i), &id));
      ids_.push_back(id);
      bytes_[id] = InfoOf(store_.get(), id).bytes_new;
    }
    clock_.now = 1000000 + 10000;  // "now": the newest is 6 s old
  }

  // Prunes and checks that exactly `keep` (indexes into ids_) remain, each
  // whole, and that every byte of the others is reclaimed.
  void PruneAndCheck(int64_t keep_last, int64_t keep_ms, const std::vector<int>& keep) {
    SCOPED_TRACE("keep_last=" + std::to_string(keep_last) + " keep_ms=" + std::to_string(keep_ms));
    const std::vector<uint64_t> before_ids = ListIds(store_.get());
    uint64_t before = 0, after = 0;
    ASSERT_OK(store_->StoredBytes(&before));
    PruneResult pr;
    ASSERT_OK(store_->Prune(keep_last, keep_ms, &pr));
    std::vector<uint64_t> want_ids, want_deleted;
    uint64_t want_reclaimed = 0;
    for (int i : keep) want_ids.push_back(ids_[i]);
    for (uint64_t id : before_ids) {
      if (!std::count(want_ids.begin(), want_ids.end(), id)) {
        want_deleted.push_back(id);
        want_reclaimed += bytes_[id];
      }
    }
    EXPECT_EQ(want_ids, ListIds(store_.get()));
    EXPECT_EQ(want_deleted, pr.deleted);
    EXPECT_EQ(want_reclaimed, pr.bytes_reclaimed);
    ASSERT_OK(store_->StoredBytes(&after));
    EXPECT_EQ(before - want_reclaimed, after);
    for (int i : keep) EXPECT_TRUE(ReadsBack(store_.get(), ids_[i], images_[i]));
    for (uint64_t id : want_deleted) EXPECT_FALSE(fs::exists(PackFile(dir_, id)));
    EXPECT_OK(store_->Verify(0));
  }

  TempDir tmp_;
  std::string dir_;
  ClockEnv clock_;
  std::unique_ptr<Store> store_;
  std::vector<Image> images_;
  std::vector<uint64_t> ids_;
  std::map<uint64_t, uint64_t> bytes_;
};

TEST_F(StorePrune, NeedsARule) {
  PruneResult pr;
  EXPECT_CODE(kInvalidArgument, store_->Prune(-1, -1, &pr));
  EXPECT_EQ(ids_, ListIds(store_.get()));
}

TEST_F(StorePrune, KeepLast) { PruneAndCheck(2, -1, {3, 4}); }
TEST_F(StorePrune, KeepLastMoreThanThereAre) { PruneAndCheck(10, -1, {0, 1, 2, 3, 4}); }
TEST_F(StorePrune, KeepLastZeroStillKeepsNewest) { PruneAndCheck(0, -1, {4}); }
TEST_F(StorePrune, KeepNewerThan) {
  // Ages are 10, 9, 8, 7, 6 s.
  PruneAndCheck(-1, 8500, {2, 3, 4});
}
TEST_F(StorePrune, KeepNewerThanNoneStillKeepsNewest) { PruneAndCheck(-1, 1000, {4}); }
TEST_F(StorePrune, RulesAreAUnion) {
  PruneAndCheck(1, 7500, {3, 4});
  PruneAndCheck(1, 6500, {4});
}
TEST_F(StorePrune, UnionTheOtherWay) { PruneAndCheck(3, 6500, {2, 3, 4}); }

TEST_F(StorePrune, RepeatedPruneIsStable) {
  PruneAndCheck(3, -1, {2, 3, 4});
  PruneAndCheck(3, -1, {2, 3, 4});
  PruneResult pr;
  ASSERT_OK(store_->Prune(3, -1, &pr));
  EXPECT_TRUE(pr.deleted.empty());
  EXPECT_EQ(0u, pr.bytes_reclaimed);
}

// A commit that fails after its pack is in place (or a snapshot taken back)
// leaves a pack no snapshot refers to. A prune removes it (and counts it as
// reclaimed), but only once a larger id exists: the file holding the
// largest id is never deleted, so that the id is never allocated again.
TEST_F(StorePrune, RemovesOrphanedPacksOnceALargerIdExists) {
  const uint64_t orphan = ids_.back() + 1;
  std::unique_ptr<snapshot::PackWriter> w;
  ASSERT_OK(snapshot::PackWriter::Create(Env::Default(), dir_ + "/packs", orphan, 4096, 0600,
                                         snapshot::CompressOptions(), &w));
  for (uint32_t i = 0; i < 70; i++) {
    const std::string page = TextPage(4096, i, 1234);
    ASSERT_OK(w->AddPage(reinterpret_cast<const uint8_t*>(page.data()), PageHash{i, 2}));
  }
  uint64_t n = 0;
  ASSERT_OK(w->Finish(&n));
  EXPECT_EQ(n, FileSize(PackFile(dir_, orphan)));
  PruneResult pr;
  ASSERT_OK(store_->Prune(100, -1, &pr));
  EXPECT_TRUE(pr.deleted.empty());
  EXPECT_EQ(0u, pr.bytes_reclaimed);
  EXPECT_TRUE(fs::exists(PackFile(dir_, orphan))) << "prune deleted the pack holding the largest id";

  const Image next = MakeImage(4096, 10, 99);
  uint64_t id = 0;
  ASSERT_OK(Snap(store_.get(), next, "next", &id));
  EXPECT_GT(id, orphan);
  ASSERT_OK(store_->Prune(100, -1, &pr));
  EXPECT_TRUE(pr.deleted.empty());
  EXPECT_EQ(n, pr.bytes_reclaimed);
  EXPECT_FALSE(fs::exists(PackFile(dir_, orphan)));
  for (size_t i = 0; i < ids_.size(); i++) EXPECT_TRUE(ReadsBack(store_.get(), ids_[i], images_[i]));
  EXPECT_TRUE(ReadsBack(store_.get(), id, next));
  ids_.push_back(id);
  EXPECT_EQ(ids_, ListIds(store_.get()));
}

// Compaction: a pack more than a quarter dead is rewritten with only its live
// pages; one at most a quarter dead is left alone.
TEST(StorePruneCompaction, RewritesPacksMoreThanAQuarterDead) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  auto store = OpenOrDie(Options(dir));
  ASSERT_NE(store, nullptr);
  const uint32_t ps = 4096;
  // Snapshot A: 100 pages in pack A. Snapshot B: 25 of them changed (pack A
  // will be exactly 1/4 dead). Snapshot C: unrelated 100 pages (pack C).
  // Snapshot D: C with 26 pages changed (pack C will be 26% dead).
  Image a = MakeImage(ps, 100, 1), b = a, c = MakeImage(ps, 100, 50), d = c;
  for (uint32_t p = 1; p <= 25; p++) b.pages[p * 4 - 1] = TextPage(ps, p * 4, 2);
  for (uint32_t p = 1; p <= 26; p++) d.pages[p * 3 - 1] = TextPage(ps, p * 3, 51);
  uint64_t ia, ib, ic, id;
  ASSERT_OK(Snap(store.get(), a, "a", &ia));
  ASSERT_OK(Snap(store.get(), b, "b", &ib));
  ASSERT_OK(Snap(store.get(), c, "c", &ic));
  ASSERT_OK(Snap(store.get(), d, "d", &id));
  ASSERT_EQ(26u, InfoOf(store.get(), id).pages_new);
  // Drop A and C by hand-picked rules: keep_last 3 keeps B, C, D; so first
  // delete A only, then C.
  uint64_t before = 0, after = 0;
  ASSERT_OK(store->StoredBytes(&before));
  const uint64_t pack_c_size = FileSize(PackFile(dir, ic));
  PruneResult pr;
  ASSERT_OK(store->Prune(3, -1, &pr));
  EXPECT_EQ(std::vector<uint64_t>{ia}, pr.deleted);
  // Pack A is exactly 1/4 dead: left as it is.
  EXPECT_TRUE(fs::exists(PackFile(dir, ia)));
  EXPECT_TRUE(ReadsBack(store.get(), ib, b));

  ASSERT_OK(store->Prune(1, -1, &pr));
  EXPECT_EQ((std::vector<uint64_t>{ib, ic}), pr.deleted);
  EXPECT_FALSE(fs::exists(PackFile(dir, ia)));  // wholly dead: removed
  EXPECT_FALSE(fs::exists(PackFile(dir, ic)));  // 26% dead: rewritten
  EXPECT_EQ(std::vector<uint64_t>{id}, ListIds(store.get()));
  EXPECT_TRUE(ReadsBack(store.get(), id, d));
  EXPECT_OK(store->Verify(0));
  const std::set<uint64_t> packs = PackIdsOnDisk(dir);
  EXPECT_EQ(PacksReferenced(store.get()), packs);
  EXPECT_EQ(2u, packs.size());  // pack D and the compacted copy of pack C
  ASSERT_OK(store->StoredBytes(&after));
  EXPECT_LT(after, before);
  EXPECT_GT(pr.bytes_reclaimed, 0u);
  uint64_t compacted = 0;
  for (uint64_t p : packs)
    if (p != id) compacted = p;
  EXPECT_GT(compacted, id);
  EXPECT_LT(FileSize(PackFile(dir, compacted)), pack_c_size * 80 / 100);
  EXPECT_EQ(74u, PagesInPack(store.get(), id, compacted));

  // A fresh reader, and dedup against the compacted pack.
  store.reset();
  store = OpenOrDie(Options(dir));
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(ReadsBack(store.get(), id, d));
  uint64_t ie = 0;
  ASSERT_OK(Snap(store.get(), d, "e", &ie));
  EXPECT_EQ(0u, InfoOf(store.get(), ie).pages_new);
  EXPECT_TRUE(ReadsBack(store.get(), ie, d));
  EXPECT_OK(store->Verify(0));
}

// A snapshot this build cannot read (written by a newer version, or a read
// that failed) is not deleted by prune; neither may the packs it needs be.
TEST(StorePruneCompaction, NeverDeletesPacksOfSnapshotsItCannotRead) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  auto store = OpenOrDie(Options(dir));
  ASSERT_NE(store, nullptr);
  Image a = MakeImage(4096, 40, 1), b = MakeImage(4096, 40, 2);
  uint64_t ia, ib;
  ASSERT_OK(Snap(store.get(), a, "a", &ia));
  ASSERT_OK(Snap(store.get(), b, "b", &ib));
  const std::string path = ManifestFile(dir, ib);
  const std::string v1 = ReadBytes(path);
  std::string v2 = v1;
  PutU32(&v2, 8, snapshot::kFormatVersion + 1);
  FixTrailingChecksum(&v2);
  WriteBytes(path, v2);
  store.reset();
  store = OpenOrDie(Options(dir));
  ASSERT_NE(store, nullptr);
  PruneResult pr;
  Status ps = store->Prune(10, -1, &pr);  // may refuse; may not lose snapshot b
  EXPECT_TRUE(ps.ok() || ps.IsCorruption() || ps.code() == Status::Code::kNotSupported) << Describe(ps);
  EXPECT_TRUE(pr.deleted.empty());
  EXPECT_TRUE(fs::exists(path));
  EXPECT_TRUE(fs::exists(PackFile(dir, ib))) << "prune deleted the pack of snapshot " << ib
                                             << ", which it could not read";
  // The newer version reading it finds it whole.
  WriteBytes(path, v1);
  store.reset();
  store = OpenOrDie(Options(dir, false));
  ASSERT_NE(store, nullptr);
  EXPECT_OK(store->Verify(ib));
  EXPECT_TRUE(ReadsBack(store.get(), ib, b));
  EXPECT_TRUE(ReadsBack(store.get(), ia, a));
}

// ---------------------------------------------------------------------------
// 7. Store identity and versions

TEST(StoreIdentity, BelongsToOneDatabase) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  { ASSERT_NE(OpenOrDie(Options(dir)), nullptr); }
  for (bool exclusive : {false, true}) {
    StoreOptions o = Options(dir, exclusive);
    o.db_name = "other.db";
    std::unique_ptr<Store> store;
    Status s = Store::Open(o, &store);
    EXPECT_EQ(Status::Code::kInvalidArgument, s.code()) << Describe(s);
    EXPECT_NE(std::string::npos, s.message().find("app.db")) << s.message();
    EXPECT_NE(std::string::npos, s.message().find("other.db")) << s.message();
  }
  EXPECT_NE(OpenOrDie(Options(dir, false)), nullptr);
}

TEST(StoreIdentity, NewerStoreFormatIsNotSupported) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  {
    auto store = OpenOrDie(Options(dir));
    ASSERT_NE(store, nullptr);
    uint64_t id;
    ASSERT_OK(Snap(store.get(), MakeImage(4096, 3, 1), "", &id));
  }
  std::string data = ReadBytes(dir + "/STORE");
  ASSERT_EQ(snapshot::kFormatVersion, GetU32(data, 8));
  PutU32(&data, 8, snapshot::kFormatVersion + 1);
  FixTrailingChecksum(&data);
  WriteBytes(dir + "/STORE", data);
  for (bool exclusive : {false, true}) {
    std::unique_ptr<Store> store;
    Status s = Store::Open(Options(dir, exclusive), &store);
    EXPECT_EQ(Status::Code::kNotSupported, s.code()) << Describe(s);
    EXPECT_EQ(data, ReadBytes(dir + "/STORE"));
  }
}

TEST(StoreIdentity, NewerManifestFormatIsNotSupported) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  auto store = OpenOrDie(Options(dir));
  ASSERT_NE(store, nullptr);
  Image img = MakeImage(4096, 3, 1);
  uint64_t i1, i2;
  ASSERT_OK(Snap(store.get(), img, "", &i1));
  ASSERT_OK(Snap(store.get(), img, "", &i2));
  std::string data = ReadBytes(ManifestFile(dir, i2));
  ASSERT_EQ(snapshot::kFormatVersion, GetU32(data, 8));
  PutU32(&data, 8, snapshot::kFormatVersion + 1);
  FixTrailingChecksum(&data);
  WriteBytes(ManifestFile(dir, i2), data);
  Manifest m;
  EXPECT_CODE(kNotSupported, store->ReadManifest(i2, &m));
  std::unique_ptr<SnapshotImage> image;
  EXPECT_CODE(kNotSupported, store->OpenImage(i2, &image));
  // Not listed, so never picked as the latest by this build.
  EXPECT_EQ(std::vector<uint64_t>{i1}, ListIds(store.get()));
  uint64_t latest = 0;
  ASSERT_OK(store->LatestId(&latest));
  EXPECT_EQ(i1, latest);
  // New snapshots do not reuse its id.
  uint64_t i3;
  ASSERT_OK(Snap(store.get(), img, "", &i3));
  EXPECT_GT(i3, i2);
  EXPECT_EQ(data, ReadBytes(ManifestFile(dir, i2)));
}

TEST(StoreIdentity, MissingDirectory) {
  TempDir tmp;
  for (bool exclusive : {false, true}) {
    StoreOptions o = Options(tmp / "nope", exclusive);
    o.create_if_missing = false;
    std::unique_ptr<Store> store;
    EXPECT_CODE(kNotFound, Store::Open(o, &store));
    EXPECT_FALSE(fs::exists(tmp / "nope"));
  }
  // A directory with no store in it yet: readers find nothing.
  fs::create_directory(tmp / "empty");
  std::unique_ptr<Store> store;
  EXPECT_CODE(kNotFound, Store::Open(Options(tmp / "empty", false), &store));
  // Parent missing too: create_if_missing creates only the last level.
  StoreOptions o = Options(tmp / "a/b/c");
  EXPECT_FALSE(Store::Open(o, &store).ok());
}

TEST(StoreIdentity, NewStoreOnlyWhereAsked) {
  TempDir tmp;
  // Exclusive, but not asked to create a store: an empty directory stays empty.
  fs::create_directory(tmp / "empty");
  StoreOptions o = Options(tmp / "empty");
  o.create_store = false;
  o.create_if_missing = false;
  std::unique_ptr<Store> store;
  EXPECT_CODE(kNotFound, Store::Open(o, &store));
  EXPECT_TRUE(fs::is_empty(tmp / "empty"));
  // Somebody else's directory is never made into a store, nor cleaned up.
  fs::create_directory(tmp / "theirs");
  WriteBytes(tmp / "theirs/notes.txt.tmp", "mine");
  WriteBytes(tmp / "theirs/x.pack.tmp", "mine too");
  EXPECT_CODE(kInvalidArgument, Store::Open(Options(tmp / "theirs"), &store));
  EXPECT_EQ((std::vector<std::string>{"notes.txt.tmp", "x.pack.tmp"}), FilesUnder(tmp / "theirs"));
}

TEST(StoreIdentity, StoreDirThatIsAFile) {
  TempDir tmp;
  WriteBytes(tmp / "file", "not a directory");
  for (bool exclusive : {false, true}) {
    std::unique_ptr<Store> store;
    EXPECT_CODE(kInvalidArgument, Store::Open(Options(tmp / "file", exclusive), &store));
  }
  EXPECT_EQ("not a directory", ReadBytes(tmp / "file"));
}

TEST(StoreIdentity, DirectoryThatIsNotAStore) {
  TempDir tmp;
  fs::create_directory(tmp / "d");
  WriteBytes(tmp / "d/STORE", "hello, this is some other program's file");
  std::unique_ptr<Store> store;
  Status s = Store::Open(Options(tmp / "d"), &store);
  EXPECT_EQ(Status::Code::kInvalidArgument, s.code()) << Describe(s);
  EXPECT_EQ("hello, this is some other program's file", ReadBytes(tmp / "d/STORE"));
}

// ---------------------------------------------------------------------------
// 8. File modes

class UmaskGuard {
 public:
  explicit UmaskGuard(mode_t m) : old_(::umask(m)) {}
  ~UmaskGuard() { ::umask(old_); }

 private:
  mode_t old_;
};

unsigned ModeOf(const std::string& path) {
  struct stat st;
  EXPECT_EQ(0, ::stat(path.c_str(), &st)) << path;
  return static_cast<unsigned>(st.st_mode) & 07777u;
}

TEST(StoreFileModes, ExactlyAsRequestedRegardlessOfUmask) {
  struct Case {
    mode_t umask;
    unsigned file_mode, dir_mode;
  };
  for (const Case& c : {Case{022, 0640, 0750}, Case{077, 0640, 0750}, Case{0, 0600, 0700}, Case{022, 0660, 0770},
                        Case{027, 0644, 0755}}) {
    SCOPED_TRACE("umask " + std::to_string(c.umask) + " mode " + std::to_string(c.file_mode));
    UmaskGuard guard(c.umask);
    TempDir tmp;
    const std::string dir = tmp / "s";
    StoreOptions o = Options(dir);
    o.file_mode = c.file_mode;
    {
      auto store = OpenOrDie(o);
      ASSERT_NE(store, nullptr);
      Image a = MakeImage(4096, 64, 1), b = a;
      for (uint32_t p = 1; p <= 40; p++) b.pages[p - 1] = TextPage(4096, p, 2);
      uint64_t ia, ib;
      ASSERT_OK(Snap(store.get(), a, "a", &ia));
      ASSERT_OK(Snap(store.get(), b, "b", &ib));
      PruneResult pr;
      ASSERT_OK(store->Prune(1, -1, &pr));  // compacts: new pack, rewritten manifest
      ASSERT_EQ(1u, pr.deleted.size());
    }
    for (const std::string& d : {dir, dir + "/packs", dir + "/snapshots"}) {
      EXPECT_EQ(c.dir_mode, ModeOf(d)) << d;
    }
    size_t files = 0;
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
      if (!e.is_regular_file()) continue;
      files++;
      EXPECT_EQ(c.file_mode, ModeOf(e.path().string())) << e.path().string();
    }
    EXPECT_GE(files, 5u);  // STORE, LOCK, packs, manifests
  }
}

// ---------------------------------------------------------------------------
// 9. Locks

TEST(StoreLocks, ExclusiveExcludesEveryoneElse) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  auto writer = OpenOrDie(Options(dir));
  ASSERT_NE(writer, nullptr);
  uint64_t id;
  ASSERT_OK(Snap(writer.get(), MakeImage(4096, 3, 1), "", &id));
  for (bool exclusive : {true, false}) {
    StoreOptions o = Options(dir, exclusive);
    o.lock_timeout_ms = 50;
    std::unique_ptr<Store> other;
    const auto t0 = std::chrono::steady_clock::now();
    Status s = Store::Open(o, &other);
    const auto waited = std::chrono::steady_clock::now() - t0;
    EXPECT_EQ(Status::Code::kBusy, s.code()) << Describe(s);
    EXPECT_GE(waited, std::chrono::milliseconds(45));
    EXPECT_LT(waited, std::chrono::seconds(5));
  }
  writer.reset();
  auto r1 = OpenOrDie(Options(dir, false));
  auto r2 = OpenOrDie(Options(dir, false));  // readers share
  ASSERT_NE(r1, nullptr);
  ASSERT_NE(r2, nullptr);
  StoreOptions o = Options(dir);
  o.lock_timeout_ms = 50;
  std::unique_ptr<Store> w;
  EXPECT_CODE(kBusy, Store::Open(o, &w));  // a reader excludes a writer
  r1.reset();
  r2.reset();
  EXPECT_OK(Store::Open(o, &w));
}

TEST(StoreLocks, WaiterGetsTheLockWhenReleased) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  auto writer = OpenOrDie(Options(dir));
  ASSERT_NE(writer, nullptr);
  std::atomic<bool> got{false};
  Status result;
  std::thread t([&] {
    StoreOptions o = Options(dir);
    o.lock_timeout_ms = 10000;
    std::unique_ptr<Store> s;
    result = Store::Open(o, &s);
    got = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  EXPECT_FALSE(got.load());
  writer.reset();
  t.join();
  EXPECT_TRUE(result.ok()) << Describe(result);
}

// Takes a snapshot of `img` into a new store at `dir` whose pack hooks
// `hooks` sets, and checks that it reads back.
void SnapWithPackHooks(const std::string& dir, const Image& img,
                       const std::function<void(snapshot::CompressOptions*)>& hooks) {
  StoreOptions o = Options(dir);
  hooks(&o.compress);
  auto store = OpenOrDie(o);
  ASSERT_NE(store, nullptr);
  uint64_t id = 0;
  ASSERT_OK(Snap(store.get(), img, "", &id));
  EXPECT_TRUE(ReadsBack(store.get(), id, img));
}

// While busy_elsewhere() says the application needs the cores, frames are
// compressed on the caller's thread; the pack is the same either way.
TEST(Background, BusyElsewhereIsAskedForEveryFrameAndChangesNothingStored) {
  const Image img = MakeImage(4096, 1280, 1);  // 5 frames of 1 MiB
  TempDir tmp;
  for (int mode = 0; mode < 3; mode++) {  // never, always, every other frame
    SCOPED_TRACE("mode " + std::to_string(mode));
    int asked = 0;
    SnapWithPackHooks(tmp / ("s" + std::to_string(mode)), img, [&](snapshot::CompressOptions* c) {
      c->busy_elsewhere = [&] {
        asked++;
        return mode == 1 || (mode == 2 && asked % 2 == 0);
      };
    });
    EXPECT_GE(asked, 5);
  }
}

// The pack file asks before_writeback before each 256 KiB chunk it writes
// back (store/env_posix.cc); a snapshot waits there for a gap between the
// database's commits.
TEST(Background, BeforeWritebackIsAskedForEveryChunk) {
  Image img;  // pages that do not compress: the pack is about their size
  img.page_size = 4096;
  std::mt19937 rng(7);
  for (int i = 0; i < 1024; i++) {
    std::string p(4096, '\0');
    for (char& c : p) c = char(rng());
    img.pages.push_back(p);
  }
  TempDir tmp;
  int asked = 0;
  SnapWithPackHooks(tmp / "s", img, [&](snapshot::CompressOptions* c) { c->before_writeback = [&] { asked++; }; });
  EXPECT_GE(asked, 15);  // 4 MiB in 256 KiB chunks
}

// With between_blocks set, frames are compressed in 128 KiB steps with the
// hook called between them (a snapshot pauses there while a writer is in a
// transaction); the pack reads back the same.
TEST(Background, BetweenBlocksIsCalledWithinEveryFrame) {
  const Image img = MakeImage(4096, 1280, 1);  // 5 frames of 1 MiB
  TempDir tmp;
  std::atomic<int> calls{0};
  SnapWithPackHooks(tmp / "s", img, [&](snapshot::CompressOptions* c) { c->between_blocks = [&] { calls++; }; });
  EXPECT_EQ(5 * 7, calls.load());  // 8 steps a frame, 7 gaps
}

// A snapshot's threads yield the CPU and the disk to the database's writers
// (store/background.h); the caller's own thread is left alone.
TEST(Background, LowersOnlyTheCallingThread) {
  int policy = -1, io_class = -1;
  std::thread t([&] {
    snapshot::LowerThisThreadToBackground();
    policy = sched_getscheduler(0);
    const long prio = syscall(SYS_ioprio_get, 1, 0);  // IOPRIO_WHO_PROCESS, this thread
    io_class = prio < 0 ? -1 : int(prio >> 13);
  });
  t.join();
  EXPECT_EQ(SCHED_IDLE, policy);
  EXPECT_EQ(3, io_class);  // IOPRIO_CLASS_IDLE
  EXPECT_EQ(SCHED_OTHER, sched_getscheduler(0));
}

}  // namespace
