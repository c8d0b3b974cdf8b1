// Helpers shared by the store's tests (tests/store/*_test.cc): page images
// to snapshot, a store in a temporary directory, Status assertions, and the
// store's files read and patched byte by byte. Independent of SQLite.
//
//   TempDir tmp;
//   auto store = OpenOrDie(Options(tmp / "s"));
//   Image img = MakeImage(4096, 10, /*version=*/1);
//   uint64_t id;
//   ASSERT_OK(Snap(store.get(), img, "label", &id));
//   EXPECT_TRUE(ReadsBack(store.get(), id, img));
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "store/coding.h"
#include "store/env.h"
#include "store/format.h"
#include "store/hash.h"
#include "store/manifest.h"
#include "store/page_index.h"
#include "store/snapshot_reader.h"
#include "store/status.h"
#include "store/store.h"
#include "tests/test_util.h"

namespace store_test {

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

inline const char* CodeName(Status::Code c) {
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

inline std::string Describe(const Status& s) {
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
inline std::string TextPage(uint32_t page_size, uint32_t key, uint32_t version) {
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

inline Image MakeImage(uint32_t page_size, uint32_t n, uint32_t version) {
  Image img;
  img.page_size = page_size;
  for (uint32_t i = 0; i < n; i++) img.pages.push_back(TextPage(page_size, i + 1, version));
  return img;
}

inline size_t DistinctPages(const Image& img) {
  std::set<std::string> s;
  for (const auto& p : img.pages)
    if (!p.empty()) s.insert(p);
  return s.size();
}

inline StoreOptions Options(const std::string& dir, bool exclusive = true, Env* env = Env::Default()) {
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

inline std::unique_ptr<Store> OpenOrDie(const StoreOptions& o) {
  std::unique_ptr<Store> s;
  Status st = Store::Open(o, &s);
  EXPECT_TRUE(st.ok()) << "open " << o.dir << ": " << Describe(st);
  return st.ok() ? std::move(s) : nullptr;
}

// Adds every page of img (or only `pgnos`, 1-based) and commits.
inline Status Snap(Store* store, const Image& img, const std::string& label, uint64_t* id,
                   const Manifest* base = nullptr, const std::vector<uint32_t>* pgnos = nullptr) {
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
inline ::testing::AssertionResult ReadsBack(Store* store, uint64_t id, const Image& want) {
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

// A test with a store of its own in a temporary directory, opened as
// Options() opens it (the start of most store tests):
//   class StorePruneCompaction : public StoreInTempDir {};
//   TEST_F(StorePruneCompaction, X) { ASSERT_OK(Snap(store.get(), img, "a", &id)); }
class StoreInTempDir : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(Reopen()); }

  // A fresh Store object on the same directory (its in-memory state
  // rebuilt from the files), the old one closed first.
  void Reopen(bool exclusive = true) {
    store.reset();
    store = OpenOrDie(Options(dir, exclusive));
    ASSERT_NE(store, nullptr);
  }

  TempDir tmp;
  const std::string dir = tmp / "s";
  std::unique_ptr<Store> store;
};

// Options of a SnapshotReader of snapshot `id` (0: the latest) of the
// store in `dir`, made for database "app.db" as Options() makes them.
inline snapshot::SnapshotReaderOptions ReaderOptions(const std::string& dir, uint64_t id) {
  snapshot::SnapshotReaderOptions o;
  o.store_dir = dir;
  o.db_name = "app.db";
  o.snapshot = id == 0 ? snapshot::SnapshotSpec::Latest() : snapshot::SnapshotSpec::Id(id);
  o.lock_timeout_ms = 2000;
  return o;
}

inline ::testing::AssertionResult ReaderReadsBack(snapshot::SnapshotReader* r, const Image& want) {
  std::string buf(want.page_size, '\0');
  for (uint32_t i = 0; i < want.pages.size(); i++) {
    Status s = r->ReadPage(i + 1, reinterpret_cast<uint8_t*>(&buf[0]));
    if (!s.ok()) return ::testing::AssertionFailure() << "page " << i + 1 << ": " << Describe(s);
    if (buf != want.pages[i]) return ::testing::AssertionFailure() << "page " << i + 1 << " differs";
  }
  return ::testing::AssertionSuccess();
}

inline std::vector<uint64_t> ListIds(Store* store) {
  std::vector<SnapshotInfo> infos;
  Status s = store->List(&infos);
  EXPECT_TRUE(s.ok()) << Describe(s);
  std::vector<uint64_t> ids;
  for (const auto& i : infos) ids.push_back(i.id);
  return ids;
}

inline SnapshotInfo InfoOf(Store* store, uint64_t id) {
  std::vector<SnapshotInfo> infos;
  EXPECT_OK(store->List(&infos));
  for (const auto& i : infos)
    if (i.id == id) return i;
  ADD_FAILURE() << "snapshot " << id << " is not listed";
  return SnapshotInfo();
}

// Snapshot ids a Verify() message names ("snapshot 3 (...)").
inline std::set<uint64_t> NamedIds(const std::string& msg) {
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

inline std::string PackFile(const std::string& dir, uint64_t id) {
  return dir + "/packs/" + snapshot::FileNameForId(id, snapshot::kPackSuffix);
}
inline std::string ManifestFile(const std::string& dir, uint64_t id) {
  return dir + "/snapshots/" + snapshot::FileNameForId(id, snapshot::kManifestSuffix);
}

inline std::string ReadBytes(const std::string& path) { return snapshot_test::ReadFile(path); }
inline void WriteBytes(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
  ASSERT_TRUE(f.good()) << path;
}
inline uint64_t FileSize(const std::string& path) { return fs::file_size(path); }

inline void PutU32(std::string* s, size_t off, uint32_t v) {
  for (int i = 0; i < 4; i++) (*s)[off + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
inline void PutU64(std::string* s, size_t off, uint64_t v) {
  for (int i = 0; i < 8; i++) (*s)[off + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
inline uint32_t GetU32(const std::string& s, size_t off) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) v |= uint32_t(static_cast<uint8_t>(s[off + i])) << (8 * i);
  return v;
}
// The hash key of the store in `dir`, read from its STORE file
// (docs/FORMAT.md §3), to compute page hashes as the store does.
inline std::string StoreSecret(const std::string& dir) {
  const std::string sf = ReadBytes(dir + "/STORE");
  const uint32_t name_len = GetU32(sf, 24);
  return sf.substr(28 + name_len, snapshot::kHashSecretSize);
}
// STORE files and manifests end in a Checksum64 of everything before it.
inline void FixTrailingChecksum(std::string* s) {
  PutU64(s, s->size() - 8, snapshot::Checksum64(s->data(), s->size() - 8));
}

// Every file under dir (relative paths), optionally only those ending in suffix.
inline std::vector<std::string> FilesUnder(const std::string& dir, const std::string& suffix = "") {
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

inline std::set<uint64_t> PackIdsOnDisk(const std::string& dir) {
  std::set<uint64_t> ids;
  for (const auto& e : fs::directory_iterator(dir + "/packs")) {
    uint64_t id;
    if (snapshot::ParseFileId(e.path().filename().string(), snapshot::kPackSuffix, &id)) ids.insert(id);
  }
  return ids;
}

inline std::set<uint64_t> PacksReferenced(Store* store) {
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
inline uint32_t PagesInPack(Store* store, uint64_t id, uint64_t pack) {
  Manifest m;
  EXPECT_OK(store->ReadManifest(id, &m));
  uint32_t n = 0;
  for (const Extent& e : m.extents)
    if (e.pack == pack) n += e.page_count;
  return n;
}

inline void CopyDir(const std::string& from, const std::string& to) {
  fs::copy(from, to, fs::copy_options::recursive);
}

// An Env whose clock the test sets.
class ClockEnv : public EnvWrapper {
 public:
  ClockEnv() : EnvWrapper(Env::Default()) {}
  int64_t NowMillis() override { return now; }
  int64_t now = 1700000000000;
};

}  // namespace store_test
