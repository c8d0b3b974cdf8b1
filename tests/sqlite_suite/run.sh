#!/usr/bin/env bash
# Runs SQLite's own test suite twice, with the default VFS ("unix") and with
# the `snapshot` VFS made the default for every connection in every process,
# and reports each test that fails only through our VFS.
#
#   tests/sqlite_suite/run.sh --ci        the CI subset (ci.list), a few minutes
#   tests/sqlite_suite/run.sh --vfs       every file that exercises a VFS (vfs.list), about an hour
#   tests/sqlite_suite/run.sh --full      vfs.list + veryquick's files, hours
#   tests/sqlite_suite/run.sh FILE...     just these test files (e.g. pager1.test)
#   tests/sqlite_suite/run.sh --tools     only mptest and speedtest1
#   options: --ext PATH (default build/snapshot.so), -j N (default 2),
#            --timeout SECONDS per file, --no-mptest, --no-speedtest
#
# What it does:
#  1. Fetches the Debian source of the system's SQLite (3.40.1, test suite
#     included) with `apt-get source`, adding a deb-src line for bookworm main
#     if there is none, and builds testfixture, mptester and speedtest1 with
#     Debian's compile options. SQLite is compiled with
#     -DSQLITE_EXTRA_INIT=snapshot_suite_init (suite_init.c): when
#     SNAPSHOT_SUITE_EXT names our extension, every process loads it when SQLite
#     initializes and, with SNAPSHOT_DEFAULT_VFS=1, makes `snapshot` the default
#     VFS. Children the tests start (the crash simulator's, multi-client
#     tests', mptest's) inherit the environment. The source and the binaries
#     are cached in $SNAPSHOT_SUITE_DIR (default /var/tmp/snapshot-sqlite-suite);
#     SQLite's source is never committed here.
#  2. Checks that the VFS really is in use in the VFS run (a -snaptrack file
#     appears beside a database testfixture writes) and not in the default run.
#  3. Runs each test file in its own scratch directory, in both modes, at most
#     -j files at once, under nice and a per-file timeout.
#  4. report.py compares the modes per file: errors and test counts in each,
#     every test failing only through the VFS, files whose test count differs
#     (a fault-injection loop cut short), crashes, timeouts, leaks.
#  5. mptest (SQLite's multi-process tester, its scripts in four journal
#     modes) and speedtest1 in both modes, with the time ratio and a check that
#     the databases come out byte-identical.
#
# Exit status: 0 when nothing fails only through the VFS except the expected
# differences listed, with their reasons, in expected.txt (also in
# docs/VFS.md); 1 otherwise; 2 when the set-up fails.
# Results of each run: $SNAPSHOT_SUITE_DIR/runs/<time>/ (summary.txt, and
# <mode>/<file>/out.txt); runs/last points to the newest.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
suite_dir=${SNAPSHOT_SUITE_DIR:-/var/tmp/snapshot-sqlite-suite}
ext=$repo/build/snapshot.so
jobs=2
timeout=900
files=()
list=""
do_mptest=1
do_speedtest=1
mptest_repeat=20           # what SQLite's Makefile runs
mptest_modes="DELETE WAL PERSIST TRUNCATE"
speedtest_size=50
while [ $# -gt 0 ]; do
  case $1 in
    --ci) list=$here/ci.list; timeout=300; mptest_repeat=2; mptest_modes="DELETE WAL"; speedtest_size=10 ;;
    --vfs) list=$here/vfs.list; timeout=300 ;;
    --full) list=full ;;
    --tools) list=none ;;
    --ext) ext=$(realpath "$2"); shift ;;
    -j) jobs=$2; shift ;;
    --timeout) timeout=$2; shift ;;
    --no-mptest) do_mptest=0 ;;
    --no-speedtest) do_speedtest=0 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) files+=("$1") ;;
  esac
  shift
done
[ -n "$list" ] || [ ${#files[@]} -gt 0 ] || { echo "say --ci, --vfs, --full or which test files (--help)" >&2; exit 2; }
[ -f "$ext" ] || { echo "no extension at $ext: build it first (cmake --build build)" >&2; exit 2; }

SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
mkdir -p "$suite_dir"

# --- 1. SQLite's source, the system library's exact version -----------------
version=$(dpkg-query -W -f='${Version}' libsqlite3-0)   # e.g. 3.40.1-2+deb12u2
upstream=${version%%-*}
src=$suite_dir/sqlite3-$upstream
if [ ! -f "$src/test/tester.tcl" ]; then
  if ! apt-get source --print-uris "sqlite3=$version" >/dev/null 2>&1; then
    # Source lines for the suites the binary lines already use (Debian's
    # deb822 format, the way /etc/apt/sources.list.d/debian.sources says it).
    echo "== adding a deb-src line for bookworm main and updating apt's lists"
    printf '%s\n' 'Types: deb-src' 'URIs: http://deb.debian.org/debian' 'Suites: bookworm' \
      'Components: main' 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' |
      $SUDO tee /etc/apt/sources.list.d/snapshot-deb-src.sources >/dev/null
    $SUDO apt-get update -q >/dev/null
  fi
  echo "== apt-get source sqlite3=$version into $suite_dir"
  (cd "$suite_dir" && apt-get source -q "sqlite3=$version" >/dev/null)
fi

# --- testfixture, mptester, speedtest1 ---------------------------------------
# The compile options Debian adds in debian/rules of the same package, so
# the tested SQLite is the system's (less dpkg-buildflags' hardening and -g).
bld=$suite_dir/bld
debian_cflags=$(sed -n '/^export CFLAGS += /,/[^\\]$/p' "$src/debian/rules" |
                sed 's/^export CFLAGS += //; s/\\$//' | tr -s ' \t\n' ' ')
tf=$bld/testfixture
if [ ! -x "$tf" ] || [ ! -x "$bld/mptester" ] || [ ! -x "$bld/speedtest1" ] ||
   [ "$here/suite_init.c" -nt "$tf" ]; then
  echo "== building testfixture, mptester and speedtest1 in $bld (a few minutes)"
  mkdir -p "$bld"
  (
    cd "$bld"
    [ -f Makefile ] || nice "$src/configure" CFLAGS="$debian_cflags" --enable-threadsafe \
        --enable-load-extension --enable-json --enable-fts4 --enable-fts5 >configure.log 2>&1
    nice make -j"$jobs" sqlite3.c sqlite3.h >make.log 2>&1
    gcc -O2 -I. -c "$here/suite_init.c" -o suite_init.o
    rm -f testfixture mptester speedtest1
    nice make -j"$jobs" testfixture mptester speedtest1 \
        OPTS=-DSQLITE_EXTRA_INIT=snapshot_suite_init LIBS="$bld/suite_init.o" >>make.log 2>&1
  ) || { echo "build failed: see $bld/make.log" >&2; exit 2; }
fi

# --- the test files ------------------------------------------------------------
# Entries are file names in SQLite's test/ or paths from the source's top
# (ext/fts5/test/fts5aa.test); results go under the name without ".test".
if [ "$list" = full ]; then
  # veryquick's files, as SQLite's permutations.test computes them.
  veryquick=$(cd /tmp && "$tf" <(printf '%s\n' \
    'set argv0 [lindex $argv 0]/list; source [lindex $argv 0]/permutations.test' \
    'array set S $::testspec(veryquick)' \
    'foreach f $S(-files) {puts [string map [list $testdir/../ {}] $f]}' 'exit 0') "$src/test" |
    grep '\.test$')
  mapfile -t files < <( (grep -v '^#' "$here/vfs.list"; echo "$veryquick") | tr -s ' \t' '\n' |
                        grep . | awk '!seen[$0]++')
elif [ "$list" = none ]; then
  files=()
elif [ -n "$list" ]; then
  mapfile -t files < <(grep -v '^#' "$list" | tr -s ' \t' '\n' | grep .)
fi
for i in "${!files[@]}"; do
  f=${files[$i]}
  [ -f "$src/test/$f" ] && files[$i]=test/$f
  [ -f "$src/${files[$i]}" ] || { echo "no test file $f in $src" >&2; exit 2; }
done

run=$suite_dir/runs/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$run"
ln -sfn "$run" "$suite_dir/runs/last"
echo "$version" >"$run/version"

# Each mode is a set of environment variables for every process of the run.
mode_env() {  # mode_env default|vfs
  if [ "$1" = vfs ]; then echo "SNAPSHOT_SUITE_EXT=$ext SNAPSHOT_DEFAULT_VFS=1"; else echo "SNAPSHOT_SUITE_EXT="; fi
}

# --- 2. is the VFS in use? -------------------------------------------------------
for mode in default vfs; do
  d=$run/check-$mode; mkdir -p "$d"
  printf '%s\n' 'sqlite3 db check.db' 'db eval {CREATE TABLE t(x); INSERT INTO t VALUES(1)}' 'db close' \
    'puts [file exists check.db-snaptrack]' >"$d/check.tcl"
  seen=$(cd "$d" && env $(mode_env $mode) "$tf" check.tcl)
  want=0; [ $mode = vfs ] && want=1
  if [ "$seen" != "$want" ]; then
    echo "the $mode run would not test what it says: check.db-snaptrack exists=$seen" >&2; exit 2
  fi
done
echo "== VFS check: through the VFS a database gets its -snaptrack file, by default not"

# --- 3. the test files in both modes ---------------------------------------------
echo "== ${#files[@]} test files x 2 modes, -j$jobs, timeout ${timeout}s per file; output in $run"
export tf src run timeout ext
export -f mode_env
start=$(date +%s)
# Longest first would balance better; the lists are ordered by that already.
mkdir -p "$run/default" "$run/vfs"
for f in "${files[@]}"; do echo "default $f"; echo "vfs $f"; done |
  xargs -r -P "$jobs" -L 1 bash -c '
    mode=$0 file=$1 name=$(basename "$1" .test) d=$run/$0/$name
    mkdir -p "$d"; cd "$d"
    t0=$(date +%s.%N)
    env $(mode_env $mode) timeout -k 10 "$timeout" nice "$tf" "$src/$file" >out.txt 2>&1 </dev/null
    echo $? >rc
    awk -v a="$t0" -v b="$(date +%s.%N)" "BEGIN{printf \"%.1f\n\", b-a}" >seconds
    # Keep the output, drop the databases the test left.
    find . -mindepth 1 -maxdepth 1 ! -name out.txt ! -name rc ! -name seconds -exec rm -rf {} +
  '
echo "$(( $(date +%s) - start ))" >"$run/seconds"

# --- 5. mptest and speedtest1 -------------------------------------------------------
if [ $do_mptest = 1 ]; then
  echo "== mptest"
  for mode in default vfs; do
    d=$run/mptest-$mode; mkdir -p "$d"
    (
      cd "$d"
      for jm in $mptest_modes; do
        for script in crash01 multiwrite01; do
          rm -f mptest.db*
          echo "--- $script --journalmode $jm"
          env $(mode_env $mode) timeout -k 10 600 nice "$bld/mptester" mptest.db \
            "$src/mptest/$script.test" --repeat $mptest_repeat --journalmode $jm 2>&1 || echo "exit status $?"
        done
      done
      for script in config01 config02; do
        rm -f mptest.db*
        echo "--- $script"
        env $(mode_env $mode) timeout -k 10 600 nice "$bld/mptester" mptest.db \
          "$src/mptest/$script.test" 2>&1 || echo "exit status $?"
      done
    ) >"$d/out.txt"
  done
fi
if [ $do_speedtest = 1 ]; then
  echo "== speedtest1"
  for mode in default vfs; do
    d=$run/speedtest1-$mode; rm -rf "$d"; mkdir -p "$d"
    (cd "$d" && env $(mode_env $mode) nice "$bld/speedtest1" --size $speedtest_size speed.db >out.txt 2>&1; echo $? >rc)
  done
fi

echo "$speedtest_size" >"$run/speedtest-size"
python3 "$here/report.py" "$run" "$here/expected.txt" | tee "$run/summary.txt"
exit "${PIPESTATUS[0]}"
