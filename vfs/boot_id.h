// Which boot of the machine this is, so that the tracking file can tell a
// record that survived a crash of a process (the kernel kept every page of
// the shared mapping) from one that survived a crash of the machine (pages
// not yet written back are lost, so the bits cannot be trusted).
//
//   uint8_t id[kBootIdSize];
//   CurrentBootId(id);  // compare with TrackHeader::boot_id
//
// Within one boot, MonotonicMs() is one clock for every process: a time one
// process records in the tracking file (TrackHeader::held_before_ms) means
// the same to another, and to no process of a later boot.
#pragma once

#include <cstddef>
#include <cstdint>

namespace snapshot {

constexpr size_t kBootIdSize = 16;

// This boot of the machine (/proc/sys/kernel/random/boot_id), as 16 bytes;
// all zeros if it cannot be read.
void CurrentBootId(uint8_t out[kBootIdSize]);

// CLOCK_MONOTONIC, in milliseconds: the same clock in every process of one
// boot, never set back.
int64_t MonotonicMs();

}  // namespace snapshot
