// The `snapshot` VFS: a shim over the default VFS that records, in a file
// shared by every process, which pages of a database change.
//
//   sqlite3_open_v2("file:app.db?vfs=snapshot", ...)      one connection
//   sqlite> .open --vfs snapshot app.db                    the shell
//
// Every page written to the database file, and every page written as a WAL
// frame, sets its bit in <db>-snaptrack: a bitmap mapped MAP_SHARED into
// every process that uses the database through this VFS, so a bit set
// survives the process being killed (the kernel holds the page). The bit is
// set before the write is passed on.
//
// This is the first part of the copy-on-write VFS of docs/VFS.md. Snapshots
// do not read the bits yet: that needs the pin protocol and the trust checks
// of docs/VFS.md, sections 2 and 3. Everything else passes through
// unchanged, shared memory and memory-mapped I/O included.
#pragma once

#include <cstdint>
#include <string>

namespace snapshot {

constexpr char kSnapshotVfsName[] = "snapshot";
constexpr char kTrackSuffix[] = "-snaptrack";
// The bitmap starts at this offset of the tracking file, one bit per page
// (bit k of byte b is page 8b + k + 1).
constexpr uint64_t kTrackHeaderSize = 4096;
constexpr char kTrackMagic[9] = "SQSNTRK0";

// Registers the VFS over the current default VFS (idempotent); returns an
// SQLite result code.
int RegisterSnapshotVfs();

}  // namespace snapshot
