#!/usr/bin/env bash
# The test command: builds the extension and runs every test, first in a
# Release build (then its Debian package, installed, used and removed), then
# under AddressSanitizer + UndefinedBehaviorSanitizer,
# then each fuzz target for a fixed time, then the concurrency tests under
# ThreadSanitizer.
#   ./test.sh            everything
#   ./test.sh --quick    the Release build and its package only
set -euo pipefail
cd "$(dirname "$0")"
tools/install-deps.sh
jobs=$(nproc)
# The S3-compatible object store the remote tests use (tools/object-store.sh):
# installed and started in the background while the first build runs, its
# exports read before the first tests, stopped (its data removed) at exit.
object_store_out=$(mktemp)
tools/object-store.sh start >"$object_store_out" 2>"$object_store_out.err" &
object_store_pid=$!
object_store_ready() {
  [ -n "$object_store_pid" ] || return 0
  wait "$object_store_pid" || { cat "$object_store_out.err" >&2; echo "test.sh: the object store did not start" >&2; exit 1; }
  object_store_pid=""
  eval "$(cat "$object_store_out")"
}
object_store_stop() {
  [ -z "$object_store_pid" ] || wait "$object_store_pid" || true
  tools/object-store.sh stop || true
  rm -f "$object_store_out" "$object_store_out.err"
}
trap object_store_stop EXIT
# Each stage's heading says how long the run has taken so far, so a CI log
# shows where its time goes.
stage() { echo "== [$((SECONDS / 60))m$((SECONDS % 60))s] $*"; }

run() {  # run <build dir> <cmake args...>; $ctest_exclude: tests left out
  local dir=$1; shift
  cmake -S . -B "$dir" -DSNAPSHOT_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j"$jobs"
  object_store_ready
  ctest --test-dir "$dir" --output-on-failure -j"$jobs" ${ctest_exclude:+-E "$ctest_exclude"}
}

stage "Release build and tests"
run build -DCMAKE_BUILD_TYPE=Release
stage "The Debian package: cpack, apt-get install, used from anywhere, apt-get remove"
tests/install/run.sh build
[ "${1:-}" = "--quick" ] && exit 0
stage "SQLite's own tests, with the default VFS and through snapshot (the CI subset; --full: tests/sqlite_suite/run.sh --full)"
# The first run fetches SQLite's source with apt-get source and builds its
# testfixture (cached in /var/tmp/snapshot-sqlite-suite).
tests/sqlite_suite/run.sh --ci --ext build/snapshot.so
stage "Fuzz targets (libFuzzer, ASan + UBSan), 15 s each from the committed corpus"
tests/fuzz/run.sh 15
stage "AddressSanitizer + UndefinedBehaviorSanitizer build and tests"
# Left out: SqlLockByte.DatabaseOverOneGiB, which spends its 3 minutes under
# ASan inserting the 1 GiB its database needs; its code (the lock-byte page)
# is what StoreEdge.LockBytePageReadsAsZeros runs here, and it runs in the
# Release stage.
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest_exclude='^SqlLockByte[.]DatabaseOverOneGiB$' \
  run build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSNAPSHOT_SANITIZE=address,undefined

stage "ThreadSanitizer build and the concurrency tests"
# The tests whose code runs threads (the store's compression workers) and
# processes against each other: the store's, concurrency_test, vfs_test,
# tracked_test and multiwriter_test. Forked children are instrumented too; with
# halt_on_error a report ends the process, which fails its test.
# Left out: StoreEdge.LockBytePageReadsAsZeros holds a 1 GiB database in
# 64 KiB strings; under TSan that needs more memory mappings than
# vm.max_map_count (65530) allows, and ~10 GB, so TSan aborts ("failed to
# allocate", ENOMEM). Its threads are the compression workers every other
# store test runs here too; it runs in the two stages above. And the WAL
# Tracked.WritersCommitWhileASnapshotReads and Tracked.SnapshotKilledWhileReading:
# they poll for the backup's progress for a fixed ~2 s, and under TSan a
# WAL-mode backup of their 60 MB database publishes its first progress ~15 s
# after it starts, so the WAL instances fail (the first always, the second
# often); the DELETE instances wait the same way and took 230 and 276 s of
# CI runs near the time limit, so all four run only in the two stages above
# (their threads are the writers and the backup that MultiWriter runs here).
# Also left out: the store's fault-injection loops (StoreCrash, and
# compaction's every-step and power-loss tests). They fail each write of a
# snapshot or a compaction in turn, thousands of single-threaded store
# openings that under TSan cost minutes of a CI run near its time limit, and
# the threads they start are the compression workers the other store tests
# exercise here; they run in the two stages above.
# And ConcurrencyKill (writers and a backup killed with kill -9; each took
# 150 s under TSan; their threads are the ones the writers' tests run here).
# die_after_fork=0: a process that commits through the VFS while automatic
# snapshots are on (or not yet known to be off) runs their thread, so the
# tests' forked children start threads after a multi-threaded fork, which
# TSan otherwise refuses ("Dying"); the
# fork handlers (ext/auto_snapshot.h) are what make that safe, and TSan
# checks the children's threads too.
# One test at a time: several tests assert how long writers wait, and TSan
# slows the instrumented processes 5-15 times, so running two tests at once
# on two cores makes those measurements noise.
# From remote_tests, the ones whose code runs the background upload thread
# (remote/uploader.h) beside the caller's, against the object store.
tsan_tests='^(Store|Concurrency/|Modes/AutoSnapshots[.]|Modes/SnapshotPin[.]|AutoSnapshotSetting[.]|Modes/VfsTracking[.]|Modes/Tracked[.]|TrackedPin[.]|Modes/MultiWriter[.]|DiffLiveWriter[.]|Replicator[.]APushDoesNotHoldTheStoreWhileItUploads|ReplicationTest[.](BackupsGoUpInTheBackground|ServerStoppedMidBackgroundUpload|APushCanBeInterrupted|AForkedChildInheritsNoHalfOwnedUpload))'
# GCC 12's TSan cannot place its shadow memory when the kernel randomizes
# mmap with more than 28 bits (vm.mmap_rnd_bits=32 on newer kernels): run
# without address-space randomization there.
tsan_run=()
[ "$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 0)" -le 28 ] || tsan_run=(setarch "$(uname -m)" -R)
cmake -S . -B build-tsan -DSNAPSHOT_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSNAPSHOT_SANITIZE=thread >/dev/null
cmake --build build-tsan -j"$jobs" --target snapshot snapshot_tests remote_tests
object_store_ready
TSAN_OPTIONS=halt_on_error=1:die_after_fork=0 "${tsan_run[@]}" ctest --test-dir build-tsan --output-on-failure \
  -R "$tsan_tests" -E '^(StoreEdge[.]LockBytePageReadsAsZeros|Concurrency/ConcurrencyKill[.].*|StoreCrash[.].*|StoreCompaction[.](CompactionInterruptedAtEveryStep|PruneOfBundledSnapshotsInterruptedAtEveryStep|PowerLossDuringCompactionLosesNoSnapshot)|Modes/Tracked[.](WritersCommitWhileASnapshotReads|SnapshotKilledWhileReading)/(WAL|DELETE))( |$)'
stage "done"
