// Helpers shared by the fuzz targets and by the program that writes their
// seed corpora (make_corpus.cc).
//
// A fuzz target sees store files whose checksums the fuzzer cannot forge, so
// most mutations stop at the first checksum. Each target therefore reads a
// mode byte first: with kFixChecksums set it recomputes the file's checksums
// after the mutation (FixPackChecksums, FixTrailingChecksum,
// FixBundleChecksums), so the fuzzer
// also reaches the structural checks and everything behind them.
//
// Seed stores are made with FixedEnv: a fixed hash secret and a fixed clock,
// so the same seed bytes mean the same thing in every run, and a target can
// rebuild the store its corpus came from (MakeSmallStore).
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "store/bundle.h"
#include "store/coding.h"
#include "store/env.h"
#include "store/format.h"
#include "store/hash.h"
#include "store/pack.h"
#include "store/store.h"

namespace snapshot_fuzz {

using namespace snapshot;

constexpr uint8_t kFixChecksums = 1;

// Aborts with a message: what a target does when an invariant fails, so that
// libFuzzer records the input as a crash.
#define FUZZ_CHECK(cond, ...)                                                   \
  do {                                                                          \
    if (!(cond)) {                                                              \
      std::fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                                        \
      std::fprintf(stderr, "\n");                                               \
      std::abort();                                                             \
    }                                                                           \
  } while (0)

// The default Env with a fixed secret and clock (deterministic stores).
class FixedEnv : public EnvWrapper {
 public:
  FixedEnv() : EnvWrapper(Env::Default()) {}
  int64_t NowMillis() override { return 1764900000000; }
  Status RandomBytes(void* out, size_t n) override {
    for (size_t i = 0; i < n; i++) static_cast<uint8_t*>(out)[i] = uint8_t(i * 37 + 11);
    return Status::OK();
  }
};

// The secret FixedEnv gives every store it creates.
inline const uint8_t* FixedSecret() {
  static uint8_t secret[kHashSecretSize];
  static bool made = [] {
    FixedEnv().RandomBytes(secret, sizeof secret);
    return true;
  }();
  (void)made;
  return secret;
}

inline void PutU64(std::string* s, size_t at, uint64_t v) {
  for (int i = 0; i < 8; i++) (*s)[at + i] = char((v >> (8 * i)) & 0xff);
}
inline uint64_t GetU64(const std::string& s, size_t at) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v |= uint64_t(uint8_t(s[at + i])) << (8 * i);
  return v;
}
inline uint32_t GetU32(const std::string& s, size_t at) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) v |= uint32_t(uint8_t(s[at + i])) << (8 * i);
  return v;
}

// Manifests and STORE: the last 8 bytes are the checksum of the rest.
inline void FixTrailingChecksum(std::string* s) {
  if (s->size() >= 16) PutU64(s, s->size() - 8, Checksum64(s->data(), s->size() - 8));
}

// Recomputes what of a pack's checksums its own (possibly mutated) layout
// locates: frame checksums, then the index, the footer and the header.
inline void FixPackChecksums(std::string* p) {
  const size_t size = p->size();
  if (size < kPackHeaderSize + kPackFooterSize) return;
  PutU64(p, 24, Checksum64(p->data(), 24));
  const size_t footer = size - kPackFooterSize;
  const uint64_t index_offset = GetU64(*p, footer);
  const uint64_t n_frames = GetU32(*p, footer + 8), n_pages = GetU32(*p, footer + 12);
  const uint64_t index_size = n_frames * kFrameEntrySize + n_pages * 16;
  if (index_offset <= footer && index_size <= footer - index_offset) {
    for (uint64_t f = 0; f < n_frames; f++) {
      const size_t e = size_t(index_offset + f * kFrameEntrySize);
      const uint64_t off = GetU64(*p, e);
      const uint64_t len = GetU32(*p, e + 8);
      if (off <= size && len <= size - off) PutU64(p, e + 16, Checksum64(p->data() + off, size_t(len)));
    }
    PutU64(p, footer + 16, Checksum64(p->data() + index_offset, size_t(index_size)));
  }
  PutU64(p, footer + 24, Checksum64(p->data() + footer, 24));
}

// The id bundle_fuzz opens its input as; its seeds are written with it.
constexpr uint64_t kFuzzBundleId = 3;

// Recomputes a bundle's checksums (store/bundle.h) as its own, possibly
// mutated, header locates them: each frame's, then the header-and-tables'.
inline void FixBundleChecksums(std::string* b) {
  const size_t size = b->size();
  if (size < kBundleHeaderSize + 8) return;
  const uint64_t n_records = GetU32(*b, 24), n_frames = GetU32(*b, 28);
  const uint64_t tables = kBundleFrameEntrySize * n_frames + kBundleRecordEntrySize * n_records;
  if (tables > size - kBundleHeaderSize - 8) return;
  for (uint64_t f = 0; f < n_frames; f++) {
    const size_t e = size_t(kBundleHeaderSize + f * kBundleFrameEntrySize);
    const uint64_t off = GetU64(*b, e);
    const uint64_t len = GetU32(*b, e + 8);
    if (off <= size && len <= size - off) PutU64(b, e + 16, Checksum64(b->data() + off, size_t(len)));
  }
  const size_t sum_at = size_t(kBundleHeaderSize + tables);
  PutU64(b, sum_at, Checksum64(b->data(), sum_at));
}

inline bool WriteFile(const std::string& path, const std::string& data) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return false;
  const bool ok = std::fwrite(data.data(), 1, data.size(), f) == data.size();
  return std::fclose(f) == 0 && ok;
}

inline std::string ReadWholeFile(const std::string& path) {
  std::string out;
  Env::Default()->ReadFileToString(path, &out);
  return out;
}

inline void RemoveTree(const std::string& dir) {
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

// A private scratch directory for this process, under $TMPDIR, removed when
// the process exits normally.
inline const std::string& ScratchDir() {
  // Never destroyed: the exit handler below still needs it.
  static const std::string* dir = [] {
    const char* base = std::getenv("TMPDIR");
    std::string t = std::string(base && *base ? base : "/tmp") + "/snapshot-fuzz-XXXXXX";
    std::vector<char> buf(t.begin(), t.end());
    buf.push_back('\0');
    if (mkdtemp(buf.data()) == nullptr) std::abort();
    auto* d = new std::string(buf.data());
    std::atexit([] { RemoveTree(ScratchDir()); });
    return d;
  }();
  return *dir;
}

// The pages of the small database the seed stores hold, in version v
// (0, 1, 2): version v+1 changes a few pages of version v, so later
// snapshots share most pages with earlier ones.
constexpr uint32_t kSeedPageSize = 512;
constexpr uint32_t kSeedPages = 24;
inline std::string SeedPage(uint32_t pgno, int version) {
  std::string page(kSeedPageSize, '\0');
  int v = 0;
  if (version >= 1 && (pgno == 3 || pgno == 4 || pgno == 17)) v = 1;
  if (version >= 2 && (pgno == 4 || pgno == 20 || pgno == 21)) v = 2;
  if (pgno == 9) return page;  // an all-zero page, stored like any other
  for (uint32_t i = 0; i < kSeedPageSize; i++) page[i] = char((pgno * 7 + i / 16 + v * 101) & 0xff);
  std::snprintf(&page[0], 40, "page %u version %d", pgno, v);
  return page;
}

inline StoreOptions SeedStoreOptions(Env* env, const std::string& dir) {
  StoreOptions o;
  o.env = env;
  o.dir = dir;
  o.db_name = "seed.db";
  o.compress.threads = 0;
  o.compress.frame_bytes = 4 * kSeedPageSize;  // several frames per pack
  o.lock_timeout_ms = 0;
  return o;
}

// Makes the seed store in `dir` (which must not exist): snapshots 1 (full),
// 2 (built on 1) and 3 (built on 2) of SeedPage versions 0, 1, 2, so packs 2
// and 3 hold only the changed pages.
inline Status MakeSmallStore(Env* env, const std::string& dir) {
  StoreOptions o = SeedStoreOptions(env, dir);
  o.create_if_missing = true;
  o.exclusive = true;
  std::unique_ptr<Store> store;
  SNAPSHOT_RETURN_IF_ERROR(Store::Open(o, &store));
  Manifest base;
  for (int v = 0; v < 3; v++) {
    std::unique_ptr<SnapshotBuilder> b;
    SNAPSHOT_RETURN_IF_ERROR(store->NewSnapshot(kSeedPageSize, kSeedPages, v ? &base : nullptr, &b));
    for (uint32_t pgno = 1; pgno <= kSeedPages; pgno++) {
      if (v > 0 && SeedPage(pgno, v) == SeedPage(pgno, v - 1)) continue;
      const std::string page = SeedPage(pgno, v);
      SNAPSHOT_RETURN_IF_ERROR(b->AddPage(pgno, reinterpret_cast<const uint8_t*>(page.data())));
    }
    uint64_t id;
    SNAPSHOT_RETURN_IF_ERROR(b->Commit("seed v" + std::to_string(v), &id));
    SNAPSHOT_RETURN_IF_ERROR(store->ReadManifest(id, &base));
  }
  return Status::OK();
}

}  // namespace snapshot_fuzz
