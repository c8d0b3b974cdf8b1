// Two private VFSes that let SQLite's own backup API move pages between a
// live database and the snapshot store:
//
//  - snapshot_image: a read-only database whose pages are those of one stored
//    snapshot, decompressed and hash-checked as SQLite reads them. It is the
//    source of sqlite3_backup when a snapshot is restored into a live
//    database, so the restore is one SQLite write transaction: atomic, crash
//    safe, and seen by every other connection at its next transaction.
//  - snapshot_capture: a write-only database whose pages go straight into a
//    SnapshotBuilder. It is the destination of sqlite3_backup when a snapshot
//    is taken of a WAL database, so pages still in the -wal file are read
//    through SQLite's pager at one consistent point.
//
// Both are opened only through a TokenRegistry token (see token_registry.h).
#pragma once

#include <cstdint>
#include <string>

#include "store/status.h"
#include "store/store.h"
#include "vfs/token_registry.h"

namespace snapshot {

constexpr char kImageVfsName[] = "snapshot_image";
constexpr char kCaptureVfsName[] = "snapshot_capture";

struct ImageSource {
  SnapshotImage* image = nullptr;
  // The image's bytes, when the caller gathered them in memory (already
  // hash-checked): served from there instead of through `image`.
  const uint8_t* bytes = nullptr;
  Status error;  // first read failure, for the SQL error message
};

struct CaptureSink {
  SnapshotBuilder* builder = nullptr;
  std::string page1;  // held back: SQLite rewrites it last, at commit
  uint64_t size = 0;
  Status error;
};

TokenRegistry<ImageSource>& ImageRegistry();
TokenRegistry<CaptureSink>& CaptureRegistry();

// Registers both VFSes with SQLite (idempotent). Returns an SQLite code.
int RegisterInternalVfs();

}  // namespace snapshot
