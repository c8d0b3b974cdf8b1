#!/usr/bin/env bash
# Builds the libFuzzer targets (build-fuzz/, clang, ASan + UBSan) and runs
# each for SECONDS (default 60) from its committed seed corpus. The corpus is
# copied first, so a run never changes the repository. Fails when any target
# finds a crash, a hang (-timeout), or an allocation over -malloc_limit_mb;
# the input that did it is kept in build-fuzz/fuzz-artifacts/.
#   tests/fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(pack_fuzz manifest_fuzz bundle_fuzz store_fuzz sql_args_fuzz sidefiles_fuzz s3_xml_fuzz)

CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSNAPSHOT_FUZZ=ON \
  -DBUILD_TESTING=OFF -DSNAPSHOT_WERROR=ON >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target "${targets[@]}"

# The store fsyncs every file it publishes: on tmpfs that costs nothing, and
# the targets run 5-20 times as many inputs.
scratch_base=${TMPDIR:-/tmp}
[ -d /dev/shm ] && [ -w /dev/shm ] && scratch_base=/dev/shm
work=$(mktemp -d "$scratch_base/snapshot-fuzz-run-XXXXXX")
trap 'rm -rf "$work"' EXIT
artifacts=build-fuzz/fuzz-artifacts
mkdir -p "$artifacts"

failed=()
for t in "${targets[@]}"; do
  cp -r "tests/fuzz/corpus/$t" "$work/$t"
  log="$work/$t.log"
  status=0
  # From inside $work: whatever a target might create by a relative name
  # lands there, not in the repository.
  (cd "$work" && TMPDIR="$work" "$root/build-fuzz/tests/fuzz/$t" "$work/$t" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -malloc_limit_mb=512 -artifact_prefix="$root/$artifacts/$t-" -print_final_stats=1 \
    >"$log" 2>&1) || status=$?
  runs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1 runs in \2 s/p' "$log")
  if [ $status -ne 0 ]; then
    failed+=("$t")
    echo "$t: FAILED (exit $status); input kept in $artifacts/"
    grep -E 'ERROR|FUZZ_CHECK|SUMMARY|Test unit written' "$log" | head -20 || tail -40 "$log"
  else
    echo "$t: ${runs:-? runs}, no failure"
  fi
done
[ ${#failed[@]} -eq 0 ] || { echo "fuzz targets failed: ${failed[*]}"; exit 1; }
