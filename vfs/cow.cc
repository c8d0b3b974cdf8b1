#include "vfs/cow.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "store/env.h"
#include "store/format.h"

namespace snapshot {
namespace {

constexpr char kCowMagic[9] = "SQSNCOW2";
constexpr uint64_t kStatesOffset = 4096;
// A page's state. kUnlisted is what a new file holds, so that an area whose
// every page is needed (a full snapshot) costs no write at the pin: its
// header says what kUnlisted means.
constexpr uint32_t kUnlisted = 0, kNeeded = 1, kDone = 2, kFirstSlot = 3;
// "<path>.tmp-<pid>": an area being created, before it is renamed into place.
constexpr char kTempInfix[] = ".tmp-";

struct CowHeader {
  char magic[8];
  uint32_t generation;
  uint32_t page_size;
  uint32_t page_count;
  uint32_t unlisted_needed;  // 1: every kUnlisted page is needed; 0: none is
  uint64_t next_slot;  // taken with an atomic fetch-add by writers
};

size_t MapSize(uint32_t page_count) { return size_t(kStatesOffset + 4 * uint64_t(page_count) + 4095) & ~size_t(4095); }

Status Errno(const std::string& what, int err) { return Status::IOError(what + ": " + std::strerror(err)); }

}  // namespace

CowArea::CowArea(int fd, uint32_t generation, uint32_t page_size, uint32_t page_count, bool unlisted_needed,
                 void* map, size_t map_size)
    : fd_(fd), generation_(generation), page_size_(page_size), page_count_(page_count),
      unlisted_needed_(unlisted_needed), map_(map), map_size_(map_size) {}

CowArea::~CowArea() {
  munmap(map_, map_size_);
  close(fd_);
}

uint32_t* CowArea::state(uint32_t pgno) const {
  return reinterpret_cast<uint32_t*>(static_cast<uint8_t*>(map_) + kStatesOffset) + (pgno - 1);
}

bool CowArea::needed(uint32_t state) const { return state == kNeeded || (state == kUnlisted && unlisted_needed_); }

uint64_t CowArea::slot_offset(uint64_t slot) const { return map_size_ + slot * page_size_; }

void CowArea::RemoveAbandoned(const std::string& path) {
  Env* env = Env::Default();
  const std::string dir = DirName(path), prefix = BaseName(path) + kTempInfix;
  std::vector<std::string> names;
  if (!env->GetChildren(dir, &names).ok()) return;
  for (const std::string& name : names) {
    if (name.compare(0, prefix.size(), prefix) == 0) env->RemoveFile(JoinPath(dir, name));
  }
}

Status CowArea::Create(const std::string& path, uint32_t generation, uint32_t page_size, uint32_t page_count,
                       const std::vector<uint32_t>* needed, mode_t mode, std::unique_ptr<CowArea>* out) {
  const std::string tmp = path + kTempInfix + std::to_string(getpid());
  int fd = open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Errno("cannot create " + tmp, errno);
  fchmod(fd, mode);
  const size_t size = MapSize(page_count);
  void* map = MAP_FAILED;
  if (ftruncate(fd, off_t(size)) == 0) map = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) {
    const int err = errno;
    close(fd);
    unlink(tmp.c_str());
    return Errno("cannot map " + tmp, err);
  }
  CowHeader* h = static_cast<CowHeader*>(map);
  std::memcpy(h->magic, kCowMagic, 8);
  h->generation = generation;
  h->page_size = page_size;
  h->page_count = page_count;
  h->unlisted_needed = needed == nullptr ? 1 : 0;
  std::unique_ptr<CowArea> area(
      new CowArea(fd, generation, page_size, page_count, h->unlisted_needed != 0, map, size));
  if (needed != nullptr) {
    for (uint32_t p : *needed) {
      if (p >= 1 && p <= page_count) *area->state(p) = kNeeded;
    }
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    unlink(tmp.c_str());
    return Errno("cannot publish " + path, err);
  }
  *out = std::move(area);
  return Status::OK();
}

std::unique_ptr<CowArea> CowArea::Map(const std::string& path, uint32_t generation) {
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return nullptr;
  CowHeader h;
  struct stat st;
  if (pread(fd, &h, sizeof h, 0) != ssize_t(sizeof h) || std::memcmp(h.magic, kCowMagic, 8) != 0 ||
      h.generation != generation || !IsValidPageSize(h.page_size) || fstat(fd, &st) != 0 ||
      uint64_t(st.st_size) < MapSize(h.page_count)) {
    close(fd);
    return nullptr;
  }
  const size_t size = MapSize(h.page_count);
  void* map = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) {
    close(fd);
    return nullptr;
  }
  return std::unique_ptr<CowArea>(
      new CowArea(fd, generation, h.page_size, h.page_count, h.unlisted_needed != 0, map, size));
}

Status CowArea::Preserve(sqlite3_file* db, uint32_t pgno) {
  if (pgno == 0 || pgno > page_count_) return Status::OK();  // not part of the pinned image
  uint32_t* s = state(pgno);
  uint32_t current = __atomic_load_n(s, __ATOMIC_ACQUIRE);
  if (!needed(current)) return Status::OK();
  // Nobody has written the page since the pin (a writer would have
  // preserved it first, and only one writer runs at a time): its content in
  // the file is the pinned content.
  std::string page(page_size_, '\0');
  int rc = db->pMethods->xRead(db, &page[0], int(page_size_), sqlite3_int64(pgno - 1) * page_size_);
  if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ) return Status::IOError("cannot read a page to preserve");
  CowHeader* h = static_cast<CowHeader*>(map_);
  const uint64_t slot = __atomic_fetch_add(&h->next_slot, 1, __ATOMIC_RELAXED);
  if (pwrite(fd_, page.data(), page_size_, off_t(slot_offset(slot))) != ssize_t(page_size_)) {
    return Errno("cannot preserve a page", errno);
  }
  // Fails only if the snapshot retired the page meanwhile: it no longer
  // needs the copy.
  __atomic_compare_exchange_n(s, &current, uint32_t(kFirstSlot + slot), false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  return Status::OK();
}

void CowArea::FreeSlots() {
  // On failure the slots are freed when the last writer lets go: nothing lost.
  if (ftruncate(fd_, off_t(map_size_)) != 0) return;
}

Status CowArea::Settle(uint32_t pgno, uint8_t* page) {
  if (pgno == 0 || pgno > page_count_) return Status::OK();
  uint32_t* s = state(pgno);
  uint32_t current = __atomic_load_n(s, __ATOMIC_ACQUIRE);
  while (needed(current)) {
    if (__atomic_compare_exchange_n(s, &current, kDone, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
      // No writer had preserved the page, so none had begun to overwrite it
      // before this: what was read is the pinned content.
      return Status::OK();
    }
  }
  if (current < kFirstSlot) return Status::OK();  // not needed: a caller's mistake, harmless
  const uint64_t slot = current - kFirstSlot;
  if (pread(fd_, page, page_size_, off_t(slot_offset(slot))) != ssize_t(page_size_)) {
    return Status::IOError("cannot read a preserved page from the copy-on-write file");
  }
  return Status::OK();
}

}  // namespace snapshot
