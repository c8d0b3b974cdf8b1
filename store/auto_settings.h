// The store's automatic-snapshot files: the setting every process that
// writes the database reads (AUTO), and what the last automatic snapshot of
// any process did (AUTO-STATUS). No SQLite here; the background snapshotter
// that acts on them is ext/auto_snapshot.h.
//
//   AutoSettings a;
//   a.interval_s = 10;
//   a.policy = "within 1h, hourly 48";           // store/retention.h's text
//   WriteAutoSettings(env, "app.db-snapshots", a, 0600);
//   ReadAutoSettings(env, "app.db-snapshots", &a);  // NotFound: never set (off)
//
// Why in the store: the setting must reach every process that writes the
// database and outlive them all. The store is where they already look (the
// same discovery as snapshot_backup: snapshot_config('dir'), $SNAPSHOT_DIR,
// <db>-snapshots), it is durable and backed up, and it answers "auto
// snapshots into which store?" by being that store. The tracking file beside
// the database would reach the processes too, but it is disposable (started
// over on a format change, deleted with the database) and knows no store.
//
// AUTO is written like STORE: whole, to AUTO.tmp, fsynced, renamed. AUTO-STATUS
// is like PROGRESS: replaced by rename, never fsynced, not part of the
// store's state. Both are text (docs/FORMAT.md, section 2).
#pragma once

#include <cstdint>
#include <string>

#include "store/env.h"
#include "store/status.h"

namespace snapshot {

constexpr char kAutoFileName[] = "AUTO";
constexpr char kAutoStatusFileName[] = "AUTO-STATUS";

struct AutoSettings {
  int64_t interval_s = 0;  // 0: off
  std::string policy;      // retention applied after each automatic snapshot; empty: none
};

// NotFound when the store has no AUTO file (automatic snapshots were never
// turned on); Corruption when it cannot be parsed.
Status ReadAutoSettings(Env* env, const std::string& store_dir, AutoSettings* out);
Status WriteAutoSettings(Env* env, const std::string& store_dir, const AutoSettings& settings, unsigned mode);

// What the last automatic snapshot attempt of any process did. Times are
// Unix milliseconds; 0 when there is none.
struct AutoStatus {
  uint64_t last_id = 0;      // the last automatic snapshot taken
  int64_t last_ms = 0;
  int64_t last_pid = 0;
  int64_t error_ms = 0;      // the last failure, kept until a later success
  int64_t error_pid = 0;
  std::string error;
};

Status ReadAutoStatus(Env* env, const std::string& store_dir, AutoStatus* out);
// Best effort and cheap: a status that cannot be written is not an error
// of the snapshot it describes.
Status WriteAutoStatus(Env* env, const std::string& store_dir, const AutoStatus& status, unsigned mode);

}  // namespace snapshot
