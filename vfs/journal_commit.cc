#include "vfs/journal_commit.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>

#include "store/coding.h"
#include "store/format.h"
#include "vfs/sqlite_format.h"

namespace snapshot {
namespace {

Status IoStatus(int rc, const char* what) {
  return Status::IOError(std::string(what) + ": " + sqlite3_errstr(rc));
}

// The pager's checksum: the nonce plus every 200th byte, from the end.
uint32_t JournalChecksum(uint32_t nonce, const uint8_t* page, uint32_t page_size) {
  uint32_t sum = nonce;
  constexpr int kStride = int(kJournalChecksumStride);
  for (int i = int(page_size) - kStride; i > 0; i -= kStride) sum += page[i];
  return sum;
}

// The journal header size the pager would use for this database file.
uint32_t SectorSize(sqlite3_file* db) {
  if (db->pMethods->xDeviceCharacteristics(db) & SQLITE_IOCAP_POWERSAFE_OVERWRITE) return kJournalDefaultSectorSize;
  int s = db->pMethods->xSectorSize(db);
  if (s < int(kJournalMinSectorSize)) return kJournalDefaultSectorSize;
  return uint32_t(std::min(s, int(kJournalMaxSectorSize)));
}

class JournalFile {
 public:
  explicit JournalFile(sqlite3_vfs* vfs) : vfs_(vfs), mem_(new uint8_t[size_t(vfs->szOsFile)]()) {}
  ~JournalFile() { Close(); }
  sqlite3_file* file() { return reinterpret_cast<sqlite3_file*>(mem_.get()); }
  int Open(const char* name) {
    int out = 0;
    int rc = vfs_->xOpen(vfs_, name, file(), SQLITE_OPEN_MAIN_JOURNAL | SQLITE_OPEN_CREATE | SQLITE_OPEN_READWRITE,
                         &out);
    open_ = rc == SQLITE_OK;
    return rc;
  }
  void Close() {
    if (open_ && file()->pMethods) file()->pMethods->xClose(file());
    open_ = false;
  }

 private:
  sqlite3_vfs* vfs_;
  std::unique_ptr<uint8_t[]> mem_;
  bool open_ = false;
};

}  // namespace

Status CommitThroughJournal(const JournalCommit& c) {
  const uint32_t ps = c.page_size;
  JournalFile journal(c.vfs);
  int rc = journal.Open(c.journal_name);
  if (rc != SQLITE_OK) return IoStatus(rc, "cannot create the rollback journal");
  sqlite3_file* jf = journal.file();
  // A persisted journal (journal_mode=PERSIST) may have an old tail that
  // the pager would misread (e.g. a super-journal name): start empty.
  rc = jf->pMethods->xTruncate(jf, 0);

  // 1. The journal: header padded to a sector, then one record per page
  //    that exists now and will be overwritten.
  const uint32_t sector = SectorSize(c.db);
  uint32_t nonce;
  sqlite3_randomness(sizeof nonce, &nonce);
  // Every page that exists now and will be overwritten or cut off by the
  // truncation: rollback restores the old size, but only journaled content.
  std::vector<uint32_t> saved;
  for (uint32_t p : c.pages) {
    if (p <= c.old_page_count) saved.push_back(p);
  }
  const uint32_t lock_page = LockBytePage(ps);
  for (uint32_t p = c.new_page_count + 1; p <= c.old_page_count; p++) {
    if (p != lock_page) saved.push_back(p);
  }
  const uint32_t records = uint32_t(saved.size());
  std::vector<uint8_t> header(sector, 0);
  std::memcpy(&header[kJournalMagicOffset], kJournalMagic, sizeof kJournalMagic);
  StoreU32BE(&header[kJournalRecordCountOffset], records);
  StoreU32BE(&header[kJournalNonceOffset], nonce);
  StoreU32BE(&header[kJournalInitialPagesOffset], c.old_page_count);
  StoreU32BE(&header[kJournalSectorSizeOffset], sector);
  StoreU32BE(&header[kJournalPageSizeOffset], ps);
  if (rc == SQLITE_OK) rc = jf->pMethods->xWrite(jf, header.data(), int(sector), 0);
  sqlite3_int64 offset = sector;
  std::vector<uint8_t> record(ps + kJournalRecordOverhead);
  uint8_t* const record_page = record.data() + kJournalRecordPageNumberSize;
  for (size_t i = 0; rc == SQLITE_OK && i < saved.size(); i++) {
    const uint32_t p = saved[i];
    StoreU32BE(record.data(), p);
    rc = c.db->pMethods->xRead(c.db, record_page, int(ps), sqlite3_int64(p - 1) * ps);
    if (rc == SQLITE_IOERR_SHORT_READ) rc = SQLITE_OK;  // beyond the file's end: zeros, like the pager
    if (rc != SQLITE_OK) break;
    StoreU32BE(record_page + ps, JournalChecksum(nonce, record_page, ps));
    rc = jf->pMethods->xWrite(jf, record.data(), int(record.size()), offset);
    offset += sqlite3_int64(record.size());
  }
  if (rc == SQLITE_OK) rc = jf->pMethods->xSync(jf, SQLITE_SYNC_FULL);
  if (rc != SQLITE_OK) {
    // Nothing in the database changed yet: the journal is just removed.
    journal.Close();
    c.vfs->xDelete(c.vfs, c.journal_name, 0);
    return IoStatus(rc, "cannot write the rollback journal; the database was not changed");
  }

  // 2. The new pages. From here on a failure leaves the journal hot, and
  //    SQLite rolls the database back at its next access.
  //    Only journaled pages may be written, each once, and all of them:
  //    anything else would commit a mix that no rollback or restore meant.
  std::vector<bool> written(c.pages.size());
  size_t written_count = 0;
  Status write_error;
  const JournalCommit::PageWriter write = [&](uint32_t first_pgno, uint32_t n, const uint8_t* data) -> Status {
    for (uint32_t i = 0; i < n; i++) {
      const uint32_t p = first_pgno + i;
      const auto it = std::lower_bound(c.pages.begin(), c.pages.end(), p);
      const size_t at = size_t(it - c.pages.begin());
      if (it == c.pages.end() || *it != p || written[at]) {
        write_error = Status::InvalidArgument("internal: page " + std::to_string(p) +
                                              " is not to be written, or written twice; SQLite will roll the "
                                              "database back from its journal");
        return write_error;
      }
      // A page at a time, as SQLite's pager writes.
      rc = c.db->pMethods->xWrite(c.db, data + size_t(i) * ps, int(ps), sqlite3_int64(p - 1) * ps);
      if (rc != SQLITE_OK) {
        write_error = IoStatus(rc, "cannot write the database; SQLite will roll it back from its journal");
        return write_error;
      }
      written[at] = true;
      written_count++;
    }
    return Status::OK();
  };
  Status s = c.write_pages(write);
  if (!write_error.ok()) return write_error;
  if (!s.ok()) return Status::IOError(s.message() + "; SQLite will roll the database back from its journal");
  if (written_count != c.pages.size()) {
    return Status::InvalidArgument("internal: not every page was written; SQLite will roll the database back from "
                                   "its journal");
  }
  if (c.new_page_count < c.old_page_count) {
    rc = c.db->pMethods->xTruncate(c.db, sqlite3_int64(c.new_page_count) * ps);
    if (rc != SQLITE_OK) return IoStatus(rc, "cannot truncate the database; SQLite will roll it back from its journal");
  }
  rc = c.db->pMethods->xSync(c.db, SQLITE_SYNC_FULL);
  if (rc != SQLITE_OK) return IoStatus(rc, "cannot sync the database; SQLite will roll it back from its journal");

  // 3. Commit.
  journal.Close();
  rc = c.vfs->xDelete(c.vfs, c.journal_name, 1);
  if (rc != SQLITE_OK) {
    // Once the journal is gone the commit has happened, even if syncing the
    // directory failed afterwards; only a journal still there is a failure.
    int exists = 1;
    if (c.vfs->xAccess(c.vfs, c.journal_name, SQLITE_ACCESS_EXISTS, &exists) != SQLITE_OK || exists) {
      return IoStatus(rc, "cannot delete the rollback journal; SQLite will roll the database back from it");
    }
  }
  return Status::OK();
}

}  // namespace snapshot
