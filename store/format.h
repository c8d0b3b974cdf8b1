// On-disk constants shared by the store's files. docs/FORMAT.md is the spec;
// keep the two in step, and bump kFormatVersion for any change a reader of
// the old version could not parse.
#pragma once

#include <cstdint>
#include <string>

namespace snapshot {

// 2: manifests record the time of the commit their image holds
// (docs/FORMAT.md §11 lists what each version changed).
constexpr uint32_t kFormatVersion = 2;

constexpr char kStoreMagic[9] = "SQSNSTOR";
constexpr char kPackMagic[9] = "SQSNPACK";
constexpr char kPackEndMagic[9] = "SQSNPEND";
constexpr char kManifestMagic[9] = "SQSNSNAP";

constexpr char kStoreFileName[] = "STORE";
constexpr char kLockFileName[] = "LOCK";
constexpr char kProgressFileName[] = "PROGRESS";  // see ext/progress.h; removed as debris
constexpr char kPackDirName[] = "packs";
constexpr char kSnapshotDirName[] = "snapshots";
constexpr char kPackSuffix[] = ".pack";
constexpr char kManifestSuffix[] = ".snap";
constexpr char kTempSuffix[] = ".tmp";

constexpr uint32_t kMinPageSize = 512;
constexpr uint32_t kMaxPageSize = 65536;
inline bool IsValidPageSize(uint32_t n) {
  return n >= kMinPageSize && n <= kMaxPageSize && (n & (n - 1)) == 0;
}

// SQLite never reads or writes the page that holds byte offset 2^30 (its
// lock bytes live there): snapshots store no content for it, and it reads
// back as zeros.
constexpr uint64_t kLockByteOffset = 0x40000000;
inline uint32_t LockBytePage(uint32_t page_size) { return uint32_t(kLockByteOffset / page_size) + 1; }

// "0000000042.pack" for (42, ".pack"); ParseFileId undoes it.
std::string FileNameForId(uint64_t id, const char* suffix);
bool ParseFileId(const std::string& name, const char* suffix, uint64_t* id);

}  // namespace snapshot
