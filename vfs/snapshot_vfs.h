// The `snapshot` VFS: a shim over the default VFS that records, in a file
// shared by every process, which pages of a database change, and keeps the
// pages a running snapshot still needs from being lost (copy-on-write).
//
//   sqlite3_open_v2("file:app.db?vfs=snapshot", ...)   one connection
//   sqlite> .open file:app.db?vfs=snapshot              the shell
//   SELECT snapshot_config('default_vfs', 1);           every later connection
//   SNAPSHOT_DEFAULT_VFS=1 (environment, at load)       the same
//
// Every page written to the database file, and every page written as a WAL
// frame, is reported to the database's Tracker (vfs/tracker.h) before the
// write is passed on: it sets the page's bit in <db>-snaptrack, keeps the
// evidence that lets a snapshot trust those bits, and, while a snapshot
// reads a rollback-mode database, preserves the old page (vfs/cow.h).
// Everything else passes through unchanged, shared memory and memory-mapped
// I/O included. See docs/VFS.md for the whole design.
#pragma once

namespace snapshot {

constexpr char kSnapshotVfsName[] = "snapshot";

// Registers the VFS over the current default VFS (idempotent); returns an
// SQLite result code. Under another `name` (a string that lives as long as
// the process) it is a separate registration of the same shim: unit tests
// linked with SQLite use one so that theirs never meets the extension's.
int RegisterSnapshotVfs(const char* name = kSnapshotVfsName);

// Makes the snapshot VFS the process's default, so connections opened later
// use it without asking; returns an SQLite result code.
int MakeSnapshotVfsDefault();

// A file control of the snapshot VFS (an opcode far from SQLite's own):
// paced write-back of the database file (vfs/paced_sync.h).
//
//   SnapshotWritebackGate gate = {fn, arg};
//   sqlite3_file_control(db, "main", kPaceWritebackFcntl, &gate);   // on
//   sqlite3_file_control(db, "main", kPaceWritebackFcntl, nullptr); // off, after syncing the rest
//
// SQLITE_NOTFOUND from a connection that is not through the snapshot VFS.
constexpr int kPaceWritebackFcntl = 0x534e4150;  // "SNAP"

// The gate, in C terms, since the argument crosses the extension's
// boundary: fn(arg) is called before each paced sync, and may wait.
struct SnapshotWritebackGate {
  void (*fn)(void* arg);
  void* arg;
};

}  // namespace snapshot
