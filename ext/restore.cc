#include "ext/restore.h"

#include <limits.h>
#include <stdlib.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "ext/backup.h"
#include "ext/capture.h"
#include "ext/progress.h"
#include "ext/sql_util.h"
#include "ext/tracked_capture.h"
#include "store/coding.h"
#include "store/format.h"
#include "store/store.h"
#include "store/stored_order.h"
#include "vfs/internal_vfs.h"
#include "vfs/journal_commit.h"
#include "vfs/sqlite_format.h"
#include "vfs/tracker.h"

namespace snapshot {
namespace {

Status ResolveId(Store* store, uint64_t requested, uint64_t* id) {
  if (requested != 0) {
    Manifest m;
    SNAPSHOT_RETURN_IF_ERROR(store->ReadManifest(requested, &m));
    *id = requested;
    return Status::OK();
  }
  return store->LatestId(id);
}

// Opens snapshot `id` as a read-only SQLite database (the restore source).
class ImageDatabase {
 public:
  ~ImageDatabase() { sqlite3_close(db_); }
  Status Open(SnapshotImage* image) {
    source_.image = image;
    token_.reset(new ScopedToken<ImageSource>(&ImageRegistry(), &source_));
    int rc = sqlite3_open_v2(token_->token().c_str(), &db_, SQLITE_OPEN_READONLY, kImageVfsName);
    if (rc != SQLITE_OK) return SqliteStatus(db_, rc, "cannot open the snapshot");
    return Status::OK();
  }
  sqlite3* db() const { return db_; }
  // From now on, pages come from `bytes` (the whole image, checked).
  void ServeFrom(const uint8_t* bytes) { source_.bytes = bytes; }
  // The store's own account of a failed read, when there is one.
  Status ReadError() const { return source_.error; }

 private:
  ImageSource source_;
  std::unique_ptr<ScopedToken<ImageSource>> token_;
  sqlite3* db_ = nullptr;
};

constexpr char kPreRestoreLabel[] = "pre-restore";

Status PageSizeMismatch() {
  return Status::InvalidArgument(
      "cannot restore a snapshot whose page size differs from the database's while the database is in WAL mode; "
      "switch it to PRAGMA journal_mode=DELETE first, or use snapshot_restore_to()");
}

// Whether a restore may write only the pages that differ, through its own
// rollback journal (see vfs/journal_commit.h): rollback-journal modes that
// keep a journal on disk, and a connection that re-reads the file header
// when it next locks the database (not locking_mode=EXCLUSIVE).
bool CanCommitThroughJournal(sqlite3* db, const char* schema) {
  const std::string q = "PRAGMA \"" + QuoteIdentifier(schema) + "\".";
  std::string journal_mode, locking_mode;
  if (!QueryText(db, q + "journal_mode", &journal_mode).ok()) return false;
  if (!QueryText(db, q + "locking_mode", &locking_mode).ok()) return false;
  const bool journaled = sqlite3_stricmp(journal_mode.c_str(), "delete") == 0 ||
                         sqlite3_stricmp(journal_mode.c_str(), "truncate") == 0 ||
                         sqlite3_stricmp(journal_mode.c_str(), "persist") == 0;
  return journaled && sqlite3_stricmp(locking_mode.c_str(), "normal") == 0;
}

// The journaled restore keeps the list of pages it writes; past this many
// (a 64 MiB list) the restore copies every page with sqlite3_backup instead,
// which keeps none. So memory stays bounded whatever page count a snapshot's
// manifest declares.
constexpr size_t kMaxJournaledPages = size_t(1) << 24;

// Writes snapshot `image` over the live file, changing only pages whose
// content differs from the state just recorded as snapshot `current` (taken
// under the same EXCLUSIVE lock), as one journaled commit. NotSupported when
// this path does not apply (the caller copies every page instead).
Status RestoreThroughJournal(sqlite3* db, const char* schema, Store* store, SnapshotImage* image,
                             uint64_t current_id, ProgressFile* progress) {
  std::unique_ptr<SnapshotImage> current;
  SNAPSHOT_RETURN_IF_ERROR(store->OpenImage(current_id, &current));
  sqlite3_file* file = FilePointer(db, schema, SQLITE_FCNTL_FILE_POINTER);
  sqlite3_vfs* vfs = nullptr;
  sqlite3_file_control(db, schema, SQLITE_FCNTL_VFS_POINTER, &vfs);
  const char* db_name = sqlite3_db_filename(db, schema);
  if (file == nullptr || vfs == nullptr || db_name == nullptr) return Status::IOError("cannot reach the database file");
  uint8_t live_header[kDbHeaderSize];
  int rc = file->pMethods->xRead(file, live_header, sizeof live_header, 0);
  if (rc != SQLITE_OK) return SqliteStatus(nullptr, rc, "cannot read the database header");
  if (live_header[kDbHeaderWriteVersionOffset] != kFileFormatRollback ||
      live_header[kDbHeaderReadVersionOffset] != kFileFormatRollback) {
    // Switched to WAL since the restore looked: not for this path.
    return Status::NotSupported("the database is no longer in rollback-journal mode");
  }

  JournalCommit c;
  c.vfs = vfs;
  c.journal_name = sqlite3_filename_journal(db_name);
  c.db = file;
  c.page_size = image->info().page_size;
  c.old_page_count = current->info().page_count;
  c.new_page_count = image->info().page_count;
  const uint32_t lock_page = LockBytePage(c.page_size);
  for (uint32_t p = 1; p <= c.new_page_count; p++) {
    if (p == lock_page) continue;
    // Compared by content hash, not by (pack, index): the target was opened
    // before the store lock was taken again, and a compaction may have
    // moved its pages to another pack since.
    PageHash now, then;
    const bool same = p != 1 && current->StoredHash(p, &now) && image->StoredHash(p, &then) && now == then;
    if (same) continue;
    if (c.pages.size() == kMaxJournaledPages) return Status::NotSupported("too many pages differ to list them");
    c.pages.push_back(p);
  }
  // The pages that differ, in the order the packs hold them: each frame
  // decoded once, as far as the last of them (store/stored_order.h).
  std::vector<uint8_t> page1(c.page_size), zeros;
  size_t written = 0;
  c.write_pages = [&](const JournalCommit::PageWriter& write) -> Status {
    return ReadInStoredOrder(image, &c.pages, [&](uint32_t first_pgno, uint32_t n, const uint8_t* data) -> Status {
      written += n;
      progress->Update(written, c.pages.size());
      if (data == nullptr) {  // stored nowhere: zeros
        zeros.resize(size_t(n) * c.page_size);
        data = zeros.data();
      }
      if (first_pgno == 1) {
        // What SQLite's own commit would write: the next change counter (so
        // every other connection drops its cache), a new schema cookie (so
        // each re-reads the schema), the page count, this library's version,
        // and the live file's journal-mode bytes.
        std::memcpy(page1.data(), data, c.page_size);
        uint8_t* out = page1.data();
        const uint32_t counter = LoadU32BE(live_header + kDbHeaderChangeCounterOffset) + 1;
        StoreU32BE(out + kDbHeaderChangeCounterOffset, counter);
        StoreU32BE(out + kDbHeaderVersionValidForOffset, counter);
        StoreU32BE(out + kDbHeaderSqliteVersionOffset, uint32_t(sqlite3_libversion_number()));
        StoreU32BE(out + kDbHeaderPageCountOffset, c.new_page_count);
        StoreU32BE(out + kDbHeaderSchemaCookieOffset, LoadU32BE(live_header + kDbHeaderSchemaCookieOffset) + 1);
        out[kDbHeaderWriteVersionOffset] = live_header[kDbHeaderWriteVersionOffset];
        out[kDbHeaderReadVersionOffset] = live_header[kDbHeaderReadVersionOffset];
        SNAPSHOT_RETURN_IF_ERROR(write(1, 1, out));
        first_pgno++;
        n--;
        data += c.page_size;
      }
      return n > 0 ? write(first_pgno, n, data) : Status::OK();
    });
  };
  return CommitThroughJournal(c);
}

// A database of up to kWholeImageBytes is gathered whole in memory (the
// memory the page-order reader's frame cache used to take) and written or
// served from there: a snapshot many snapshots after a full one comes in
// hundreds of runs of pages, and a write each cost it more than its extra
// frames.
constexpr uint64_t kWholeImageBytes = uint64_t(64) << 20;
bool FitsInMemory(const SnapshotInfo& info) { return info.db_bytes() <= kWholeImageBytes; }

// Reads every page of `image` into `out` (db_bytes() bytes; need not be
// zero-filled: every byte is written), in the order the packs store them
// (store/stored_order.h: each frame decoded once, and only as far as the
// last page this snapshot holds in it; every page hash-checked).
Status GatherImage(SnapshotImage* image, uint8_t* out, InterruptCheck* interrupt, ProgressFile* progress) {
  const uint32_t page_size = image->info().page_size;
  uint64_t done = 0;
  return ReadInStoredOrder(image, nullptr, [&](uint32_t first_pgno, uint32_t n, const uint8_t* data) -> Status {
    if (interrupt != nullptr) SNAPSHOT_RETURN_IF_ERROR(interrupt->Poll(1));
    uint8_t* to = out + uint64_t(first_pgno - 1) * page_size;
    if (data != nullptr) {
      std::memcpy(to, data, size_t(n) * page_size);
    } else {
      std::memset(to, 0, size_t(n) * page_size);
    }
    done += n;
    progress->Update(done, image->info().page_count);
    return Status::OK();
  });
}

// Writes every page of `image` to `out` (a new, empty file): gathered and
// written at once if it fits in memory, else run by run, in stored order,
// straight from each frame.
Status WriteInStoredOrder(SnapshotImage* image, WritableFile* out, InterruptCheck* interrupt,
                          ProgressFile* progress) {
  const uint32_t page_size = image->info().page_size;
  const uint64_t total = image->info().page_count;
  if (FitsInMemory(image->info())) {
    std::unique_ptr<uint8_t[]> bytes(new uint8_t[size_t(image->info().db_bytes()) + 1]);
    SNAPSHOT_RETURN_IF_ERROR(GatherImage(image, bytes.get(), interrupt, progress));
    return out->Append(bytes.get(), size_t(image->info().db_bytes()));
  }
  std::unique_ptr<uint8_t[]> zeros;
  constexpr uint32_t kZeroPages = 64;
  uint64_t done = 0;
  return ReadInStoredOrder(image, nullptr, [&](uint32_t first_pgno, uint32_t n, const uint8_t* data) -> Status {
    SNAPSHOT_RETURN_IF_ERROR(interrupt->Poll(1));
    const uint64_t offset = uint64_t(first_pgno - 1) * page_size;
    if (data != nullptr) {
      SNAPSHOT_RETURN_IF_ERROR(out->WriteAt(offset, data, size_t(n) * page_size));
    } else {
      if (!zeros) zeros.reset(new uint8_t[size_t(kZeroPages) * page_size]());
      for (uint32_t at = 0; at < n; at += kZeroPages) {
        const uint32_t k = std::min(kZeroPages, n - at);
        SNAPSHOT_RETURN_IF_ERROR(out->WriteAt(offset + uint64_t(at) * page_size, zeros.get(), size_t(k) * page_size));
      }
    }
    done += n;
    progress->Update(done, total);
    return Status::OK();
  });
}

// A snapshot larger than SQLite allows a database is refused before
// anything is written: sqlite3_backup would fail part way (SQLITE_FULL), and
// such a page count is what a damaged or hostile manifest declares (its
// pages all zeros, stored nowhere: writing them would fill the disk). The
// limit (SQLITE_MAX_PAGE_COUNT as the library was built) is read on a
// connection of its own: a PRAGMA on the caller's schema would start a read
// transaction there lasting as long as the calling statement (say, an
// INSERT ... SELECT snapshot_restore()), and sqlite3_backup could not start.
Status CheckFitsSqlite(uint64_t id, uint32_t page_count, const char* outcome) {
  PrivateConnection memory;
  const int rc = memory.Open(":memory:", SQLITE_OPEN_READWRITE, nullptr, 0);
  if (rc != SQLITE_OK) return SqliteStatus(memory.db(), rc, "cannot open an in-memory database");
  int64_t max_pages = 0;
  SNAPSHOT_RETURN_IF_ERROR(QueryInt(memory.db(), "PRAGMA max_page_count", &max_pages));
  if (int64_t(page_count) <= max_pages) return Status::OK();
  return Status::InvalidArgument("snapshot " + std::to_string(id) + " has " + std::to_string(page_count) +
                                 " pages, more than SQLite allows a database (max_page_count " +
                                 std::to_string(max_pages) + "); " + outcome);
}

// What RestoreInto must do on every way out, a return or an exception (the
// SQL function's fence turns one into an error, and the connection goes
// on): finish the backup, which commits the copy or rolls it back and lets
// go of the database's write lock; and unless the restore succeeded,
// discard the pre-restore snapshot it recorded, so that a failed call
// changes nothing.
class RestoreEnds {
 public:
  RestoreEnds(sqlite3* db, const char* schema, const ConnectionSettings& settings, const uint64_t* pre_restore_id)
      : db_(db), schema_(schema), settings_(settings), pre_restore_id_(pre_restore_id) {}
  ~RestoreEnds() {
    if (backup != nullptr) sqlite3_backup_finish(backup);
    if (succeeded || !recorded) return;
    try {
      if (!store) OpenStore(db_, schema_, settings_, StoreAccess::kWrite, &store);
      if (store) store->Discard(*pre_restore_id_);
    } catch (...) {  // std::bad_alloc: the snapshot stays listed, the database unchanged
    }
  }
  RestoreEnds(const RestoreEnds&) = delete;
  RestoreEnds& operator=(const RestoreEnds&) = delete;

  std::unique_ptr<Store> store;      // locked exclusively once the database is
  sqlite3_backup* backup = nullptr;  // the restore's, once started
  bool recorded = false;             // the pre-restore snapshot is committed
  bool succeeded = false;

 private:
  sqlite3* db_;
  const char* schema_;
  const ConnectionSettings& settings_;
  const uint64_t* pre_restore_id_;
};

// Restores snapshot `id` into `schema`, after recording the current state as
// a 'pre-restore' snapshot; both under the write lock that sqlite3_backup
// takes first, so no commit can slip in between. In rollback-journal mode
// only the pages that differ are written (RestoreThroughJournal); otherwise
// sqlite3_backup copies every page. If the restore fails, the pre-restore
// snapshot is taken back: a failed call changes nothing (RestoreEnds).
Status RestoreInto(sqlite3* db, const char* schema, const ConnectionSettings& settings, SnapshotImage* image,
                   uint64_t* pre_restore_id) {
  std::unique_ptr<uint8_t[]> whole;  // the image gathered in memory, when it is served from there
  ImageDatabase source;  // both outlive the backup reading them
  RestoreEnds ends(db, schema, settings, pre_restore_id);
  std::unique_ptr<Store>& store = ends.store;
  sqlite3_backup*& backup = ends.backup;
  bool& recorded = ends.recorded;
  if (image->info().page_count == 0) {
    // sqlite3_backup copies an empty source at its first step, before the
    // state it replaces could be recorded, so record it first (outside the
    // write lock: a commit landing in between is not in it). Refuse up front
    // what that step would refuse.
    std::string mode;
    int64_t page_size = 0;
    const std::string q = "PRAGMA \"" + QuoteIdentifier(schema) + "\".";
    if (QueryText(db, q + "journal_mode", &mode).ok() && sqlite3_stricmp(mode.c_str(), "wal") == 0 &&
        QueryInt(db, q + "page_size", &page_size).ok() && uint32_t(page_size) != image->info().page_size) {
      return PageSizeMismatch();
    }
    SNAPSHOT_RETURN_IF_ERROR(
        TakeSnapshot(db, schema, settings, StoreAccess::kWrite, "pre-restore", kPreRestoreLabel, pre_restore_id));
    recorded = true;
  }
  const bool journal_path = image->info().page_count > 0 && CanCommitThroughJournal(db, schema);
  Status s = source.Open(image);
  backup = s.ok() ? sqlite3_backup_init(db, schema, source.db(), "main") : nullptr;
  if (s.ok() && backup == nullptr) s = SqliteStatus(db, sqlite3_errcode(db), "cannot start the restore");
  // The restore may write without the snapshot VFS: the next snapshot must
  // not trust the record of changed pages.
  if (s.ok()) DistrustTracking(sqlite3_db_filename(db, schema), kRestored);
  // Zero pages: takes the destination's write lock and copies nothing.
  int rc = !s.ok() ? SQLITE_ERROR
                   : RetryWhileBusy(settings.busy_timeout_ms, [&] { return sqlite3_backup_step(backup, 0); });
  bool copied = false;
  if (!s.ok()) {
    // reported below
  } else if (rc == SQLITE_READONLY) {
    s = PageSizeMismatch();
  } else if (rc != SQLITE_OK && rc != SQLITE_DONE) {
    s = SqliteStatus(db, rc, "cannot lock the database for the restore");
  } else if (rc == SQLITE_OK) {
    // The database's write lock is held: now the store's lock. (SQLITE_DONE
    // means the empty copy is already committed, its pre-restore recorded.)
    StoreLocation loc;
    s = OpenStore(db, schema, settings, StoreAccess::kWrite, &store, &loc);
    std::unique_ptr<ProgressFile> progress;
    if (s.ok()) progress.reset(new ProgressFile(store->dir(), "restore", loc.file_mode));
    if (s.ok()) {
      std::unique_ptr<SnapshotBuilder> builder;
      s = CaptureUnderWriteLock(db, schema, store.get(), &builder);
      if (s.ok()) s = builder->Commit(kPreRestoreLabel, pre_restore_id);
      recorded = recorded || s.ok();
      if (s.ok() && journal_path && builder->page_size() == image->info().page_size) {
        s = RestoreThroughJournal(db, schema, store.get(), image, *pre_restore_id, progress.get());
        copied = s.code() != Status::Code::kNotSupported;
        if (!copied) s = Status::OK();
      }
      // Copying every page: gathered first in stored order when the image
      // fits in memory, instead of read in the page order the backup asks.
      if (s.ok() && !copied && FitsInMemory(image->info())) {
        whole.reset(new uint8_t[size_t(image->info().db_bytes()) + 1]);
        s = GatherImage(image, whole.get(), nullptr, progress.get());
        if (s.ok()) {
          source.ServeFrom(whole.get());
        } else if (s.IsCorruption()) {
          s = Status::Corruption(s.message() + "; the database was not changed");
        }
      }
      while (s.ok() && !copied && (rc = sqlite3_backup_step(backup, 1024)) == SQLITE_OK) {
        const int total = sqlite3_backup_pagecount(backup);
        progress->Update(uint64_t(total - sqlite3_backup_remaining(backup)), uint64_t(total));
      }
    }
  }
  if (s.ok() && !copied && rc != SQLITE_DONE) {
    if (!source.ReadError().ok()) {
      s = Status::Corruption(source.ReadError().message() + "; the database was not changed");
    } else if (rc == SQLITE_READONLY) {
      s = PageSizeMismatch();
    } else {
      s = SqliteStatus(db, rc, "the restore failed and was rolled back");
    }
  }
  // Finishing the backup (ends' destructor) after RestoreThroughJournal
  // ends the backup's (empty) transaction and releases the lock; otherwise
  // it commits or rolls back the copy.
  ends.succeeded = s.ok();
  return s;
}

// Whether directory `dir` is `root` or below it (both resolved; false when
// either does not exist, since then nothing can be inside it).
bool IsInside(const std::string& dir, const std::string& root) {
  char a[PATH_MAX], b[PATH_MAX];
  if (realpath(dir.c_str(), a) == nullptr || realpath(root.c_str(), b) == nullptr) return false;
  const std::string d(a), r(b);
  return d == r || (d.size() > r.size() && d.compare(0, r.size(), r) == 0 && d[r.size()] == '/');
}

}  // namespace

Status RestoreLive(sqlite3* db, const char* schema, const ConnectionSettings& settings, uint64_t requested,
                   uint64_t* restored_id) {
  Status s;
  if (!sqlite3_get_autocommit(db)) {
    s = Status::InvalidArgument("cannot restore inside a transaction; COMMIT or ROLLBACK first");
  }
  if (s.ok() && sqlite3_db_readonly(db, schema) == 1) {
    s = Status::InvalidArgument("this connection opened the database read-only; a restore must write it");
  }
  int64_t query_only = 0;
  if (s.ok() && QueryInt(db, "PRAGMA query_only", &query_only).ok() && query_only != 0) {
    s = Status::InvalidArgument("this connection is read-only (PRAGMA query_only); a restore must write the database");
  }
  if (s.ok() && sqlite3_txn_state(db, schema) > SQLITE_TXN_NONE) {
    // The calling statement (or another one still running on this
    // connection) reads the database, and a restore must replace it.
    s = Status::InvalidArgument(
        "call snapshot_restore() in a statement of its own (SELECT snapshot_restore(...);), with no other statement "
        "of this connection still reading the database");
  }
  // First, under the store's shared lock alone: find the snapshot, check
  // every byte it needs (a damaged snapshot changes nothing), and open its
  // files. Then the lock is dropped, since RestoreInto must wait for the
  // database's write lock holding no store lock; the open files stay valid.
  uint64_t id = 0, pre_id = 0;
  std::unique_ptr<Store> reader;
  std::unique_ptr<SnapshotImage> image;
  if (s.ok()) s = OpenStore(db, schema, settings, StoreAccess::kRead, &reader);
  if (s.ok()) s = ResolveId(reader.get(), requested, &id);
  if (s.ok()) s = reader->OpenImage(id, &image);
  // Every frame the restore may read, read and checksummed now but not
  // decompressed: the restore decodes each once as it writes, and the
  // pages are hash-checked then (what fails then is rolled back).
  if (s.ok()) s = CheckStoredFrames(image.get(), nullptr);
  if (s.ok()) s = CheckFitsSqlite(id, image->info().page_count, "the database was not changed");
  if (s.ok()) reader->ReleaseLock();
  if (s.ok()) s = RestoreInto(db, schema, settings, image.get(), &pre_id);
  if (s.ok()) *restored_id = id;
  return s;
}

Status RestoreToFile(sqlite3* db, const char* schema, const ConnectionSettings& settings, const char* path,
                     uint64_t requested, uint64_t* restored_id) {
  StoreLocation loc;
  Status s = LocateStore(db, schema, settings, &loc);
  if (s.ok()) s = RestoreToFileAt(db, loc, settings, path, requested, restored_id);
  return s;
}

Status RestoreToFileAt(sqlite3* db, const StoreLocation& loc, const ConnectionSettings& settings, const char* path,
                       uint64_t requested, uint64_t* restored_id) {
  uint64_t id = 0;
  Env* env = Env::Default();
  Status s;
  if (env->FileExists(path)) {
    s = Status::InvalidArgument(std::string(path) + " already exists; snapshot_restore_to() only creates new files");
  }
  // Files a database of this name left behind when it was deleted: SQLite
  // would roll a hot journal, or a WAL's frames, into the new file the first
  // time it is opened, and a tracking file describes another database.
  for (const char* suffix : {"-journal", "-wal", "-snaptrack"}) {
    const std::string left = std::string(path) + suffix;
    if (s.ok() && env->FileExists(left)) {
      s = Status::InvalidArgument(left + " exists, left by a database of that name that is gone; SQLite would " +
                                  "apply it to the restored file: move it away first, or restore to another path");
    }
  }
  if (s.ok() && IsInside(DirName(path), loc.store_dir)) {
    s = Status::InvalidArgument(std::string(path) + " is inside the snapshot store; choose a path outside " +
                                loc.store_dir);
  }
  std::unique_ptr<Store> store;
  if (s.ok()) s = OpenStoreAt(loc, settings, StoreAccess::kRead, &store);
  if (s.ok()) s = ResolveId(store.get(), requested, &id);
  std::unique_ptr<SnapshotImage> image;
  if (s.ok()) s = store->OpenImage(id, &image);
  if (s.ok()) s = CheckFitsSqlite(id, image->info().page_count, "nothing was written");
  if (s.ok()) {
    // A name nobody else uses, so that nothing of the user's is truncated.
    uint64_t nonce;
    sqlite3_randomness(sizeof nonce, &nonce);
    const std::string tmp = std::string(path) + ".snapshot-" + std::to_string(nonce) + kTempSuffix;
    std::unique_ptr<WritableFile> out;
    s = env->NewWritableFile(tmp, loc.file_mode, &out);
    InterruptCheck interrupt(db);
    ProgressFile progress(loc.store_dir, "restore_to", loc.file_mode);
    if (s.ok()) s = WriteInStoredOrder(image.get(), out.get(), &interrupt, &progress);
    if (s.ok()) s = out->Sync();
    if (s.ok()) s = out->Close();
    if (s.ok()) s = env->RenameNoReplace(tmp, path);
    if (s.ok()) s = env->SyncDir(DirName(path));
    if (!s.ok()) {
      out.reset();
      env->RemoveFile(tmp);
    }
  }
  if (s.ok()) *restored_id = id;
  return s;
}

}  // namespace snapshot
