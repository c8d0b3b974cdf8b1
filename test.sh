#!/usr/bin/env bash
# The test command: builds the extension and runs every test, first in a
# Release build, then under AddressSanitizer + UndefinedBehaviorSanitizer.
#   ./test.sh            everything
#   ./test.sh --quick    Release build only
set -euo pipefail
cd "$(dirname "$0")"
tools/install-deps.sh
jobs=$(nproc)

run() {  # run <build dir> <cmake args...>
  local dir=$1; shift
  cmake -S . -B "$dir" -DSNAPSHOT_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j"$jobs"
  ctest --test-dir "$dir" --output-on-failure -j"$jobs"
}

echo "== Release build and tests"
run build -DCMAKE_BUILD_TYPE=Release
[ "${1:-}" = "--quick" ] && exit 0
echo "== AddressSanitizer + UndefinedBehaviorSanitizer build and tests"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  run build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSNAPSHOT_SANITIZE=address,undefined
