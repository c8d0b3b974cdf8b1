// Paced write-back: while it is on, every 256 KiB a connection writes to
// its database file is synced at once, after a gate lets it go, and the
// file's own syncs wait at the gate too, so that no fsync finds much left
// to flush.
//
// The snapshot uses it for the WAL checkpoint it runs after letting go of
// its pin (ext/tracked_capture.cc). That checkpoint copies everything
// committed while the snapshot read into the database file. When a writer
// commits meanwhile, SQLite does not sync the file at the checkpoint's end
// (the WAL keeps the frames until a complete checkpoint syncs), and the
// writer's own next checkpoint then flushed all of it inside its commit,
// the longest commit of each snapshot (bench/README.md, "Where in the
// snapshot the slow commits are"). The gate waits for a
// writer's commit to end, so each batch goes to the disk between two
// commits, as the pack's chunks do (store/env_posix.cc).
//
// The syncs go through the file's own xSync: a descriptor of our own on the
// database file would drop every POSIX lock of the process on it when
// closed. A paced sync that fails is not forgotten: Linux reports a
// write-back error to one fsync only, so the connection's own next sync
// could succeed over pages that never reached the disk. The error is
// returned by that sync instead (or by switching pacing off).
//
// Switched on for one connection's database file with the snapshot VFS's
// file control kPaceWritebackFcntl (vfs/snapshot_vfs.h).
#pragma once

#include <cstdint>

#include "vfs/sqlite_api.h"
#include "vfs/snapshot_vfs.h"

namespace snapshot {

class WritebackPacer {
 public:
  // `file`: the database file as the underlying VFS opened it.
  WritebackPacer(sqlite3_file* file, SnapshotWritebackGate gate) : file_(file), gate_(gate) {}

  // The connection wrote n bytes to the file.
  void Wrote(uint64_t n);
  // The connection is about to sync the file.
  void BeforeSync();
  // The error of a paced sync since the last call (SQLITE_OK if none), which
  // the connection's own sync must report.
  int TakeError();
  // Pacing ends: syncs what was written since the last sync; the error of
  // any paced sync not yet taken.
  int Finish();

 private:
  void Sync();
  sqlite3_file* file_;
  SnapshotWritebackGate gate_;
  uint64_t unsynced_ = 0;
  int error_ = SQLITE_OK;
};

}  // namespace snapshot
