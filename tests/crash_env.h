// CrashEnv: an Env that records every change the store makes to the disk, so
// that a test can build, afterwards, each state a power cut could have left.
//
// kill -9 loses nothing the process had written: the page cache survives.
// A power cut loses whatever the page cache had not yet written back, and
// the disk may have written back any part of it, in any order. What survives
// for certain is only what a sync made durable:
//   - a file's data, once the file was fsync'ed;
//   - a name (a file created, renamed, removed; a directory made), once the
//     directory holding it was fsync'ed. fsync of the file itself does not
//     make its name durable, and a rename is atomic but not durable until
//     its directory is synced.
// Everything else may or may not have reached the disk, and a write may
// have reached it in part (torn).
//
// Use: point the store at a directory under `root` (which must exist; what
// it holds already counts as durable, nothing else may change it, and
// changes outside it are passed on but not recorded), run operations
// through the CrashEnv, note ops() after each acknowledged operation, then
// for each crash point (CrashPoints(): just before each sync, and the end)
// ask CrashStates() for the disk states a power cut there could leave, and
// Materialize() each into a fresh directory to open a new Store on it:
//
//   CrashEnv env(tmp.path());
//   ... Store::Open with options.env = &env, backups ...; acked[id] = env.ops();
//   for (size_t cp : env.CrashPoints())
//     for (const CrashState& st : env.CrashStates(cp, &rng))
//       env.Materialize(st, other_dir);  // then check the store in other_dir
//
// Reads go to the real files, which hold what the page cache would show.
//
// A test VFS feeds the same record for SQLite's files (tests/power_loss_vfs.h)
// through the Record* calls, which describe changes already made.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "store/env.h"

namespace snapshot_test {

// One disk state a power cut could leave: which recorded changes reached the
// disk, and whether one write reached it only in part.
struct CrashState {
  std::string what;         // how it was chosen, for failure messages
  size_t crash_point = 0;   // changes [0, crash_point) had been issued
  std::vector<bool> kept;   // kept[i]: change i reached the disk
  size_t torn = SIZE_MAX;   // a kept write of which only torn_bytes landed
  size_t torn_bytes = 0;
};

class CrashEnv : public snapshot::EnvWrapper {
 public:
  explicit CrashEnv(std::string root);
  ~CrashEnv() override;

  // Changes recorded so far. An operation acknowledged when ops() == n is
  // durable in every crash state with crash_point >= n.
  size_t ops() const;
  // Each sync's index (a crash just before it), and ops() (a crash at the end).
  std::vector<size_t> CrashPoints() const;
  // The states a crash at `crash_point` could leave: every unsynced change
  // lost; each of a few prefixes of them kept; all kept; all kept but the
  // last write torn (half of it, or only its first 512-byte sector); all
  // data kept but no unsynced name change; and `random_subsets` seeded
  // random subsets. Duplicates are left out.
  std::vector<CrashState> CrashStates(size_t crash_point, std::mt19937* rng, int random_subsets = 4) const;
  // Writes the state's files under `to`, which stands for the root (made if
  // missing; must be empty).
  snapshot::Status Materialize(const CrashState& state, const std::string& to) const;

  // Env: the changes, recorded, then done on the real files.
  snapshot::Status NewWritableFile(const std::string& p, unsigned m,
                                   std::unique_ptr<snapshot::WritableFile>* o) override;
  snapshot::Status RenameFile(const std::string& f, const std::string& t) override;
  snapshot::Status RenameNoReplace(const std::string& f, const std::string& t) override;
  snapshot::Status RemoveFile(const std::string& p) override;
  snapshot::Status SyncDir(const std::string& d) override;
  snapshot::Status CreateDir(const std::string& d, unsigned m) override;

  // For a VFS: a file opened (created if `created`: a new name, durable only
  // once its directory is synced); returns its inode for the calls below.
  uint64_t RecordOpen(const std::string& path, bool created);
  void RecordWrite(uint64_t inode, uint64_t offset, const void* data, size_t n);
  void RecordTruncate(uint64_t inode, uint64_t size);
  void RecordSyncFile(uint64_t inode);
  void RecordRemove(const std::string& path);
  void RecordSyncDir(const std::string& dir);

 private:
  friend class CrashFile;
  enum class Kind { kLink, kMkdir, kRename, kUnlink, kWrite, kTruncate, kSyncFile, kSyncDir };
  struct Op {
    Kind kind;
    std::string path, to;  // relative to the root
    uint64_t inode = 0;
    uint64_t offset = 0;   // kWrite; the new size for kTruncate
    std::string data;      // kWrite
  };
  bool IsSync(const Op& op) const { return op.kind == Kind::kSyncFile || op.kind == Kind::kSyncDir; }
  // The directories whose sync makes `op`'s name change durable.
  std::vector<std::string> NameDirs(const Op& op) const;
  std::vector<bool> Forced(size_t crash_point) const;
  std::string Rel(const std::string& path) const;
  void Record(Op op);
  void RecordLocked(Op op);  // mu_ held; drops changes outside the root

  const std::string root_;
  mutable std::mutex mu_;
  std::vector<Op> log_;
  std::map<std::string, uint64_t> live_;  // name -> inode, as the running process sees it
  // What the root held at the start: durable in every state.
  std::vector<std::string> base_dirs_;
  std::map<std::string, uint64_t> base_names_;
  std::map<uint64_t, std::string> base_content_;
  uint64_t next_inode_ = 1;
};

}  // namespace snapshot_test
