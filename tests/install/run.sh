#!/usr/bin/env bash
# The Debian package, used as the README's Install and cron sections say an
# operator uses it: builds it (cpack -G DEB) in BUILD_DIR, installs it with
# apt-get, then, from an unrelated directory with a clean environment
# (env -i PATH=/usr/bin:/bin), checks that
#   - `.load snapshot` in the sqlite3 shell and load_extension("snapshot") in
#     Debian's python3 find the extension by its bare name;
#   - every script in /usr/share/snapshot/sql/ works (sql/test_scripts.sh
#     --installed) and the README's crontab line does;
#   - a Django project that only adds snapshot_django to INSTALLED_APPS runs
#     migrate (a pre-migrate snapshot), snapshot_backup, snapshot_list and
#     snapshot_restore --yes;
# then removes the package with apt-get and checks that no file it installed
# is left. The package is purged at the end whatever happens (trap), so that
# dpkg does not even remember it.
#   tests/install/run.sh BUILD_DIR     after the build; needs root or sudo
set -euo pipefail
started=$SECONDS
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "$1" && pwd)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "install test: SKIPPED: installing the package needs root or sudo"
    exit 0
  fi
  SUDO=sudo
fi
installed() { dpkg-query -W -f='${Status}' snapshot 2>/dev/null | grep -q "install ok installed"; }
known() { dpkg-query -W snapshot >/dev/null 2>&1; }  # installed, or removed with its postrm kept
not_installed() { ! installed; }
not_known() { ! known; }
if installed; then
  echo "install test: SKIPPED: the snapshot package is installed on this machine;" \
       "this test installs and removes it (apt-get remove snapshot, then run it again)"
  exit 0
fi

work=$(mktemp -d /tmp/snapshot-install-test.XXXXXX)
cleanup() {
  if known; then
    echo "install test: purging the package"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q snapshot >/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
mkdir "$work/elsewhere" "$work/home"
trap 'echo "install test: FAILED at line $LINENO: $BASH_COMMAND"' ERR

passed=0 failed=0
stage() { echo "== $* (at $((SECONDS - started)) s)"; }
check() {  # check NAME COMMAND...: counts a pass when the command succeeds
  local name=$1; shift
  if "$@"; then passed=$((passed + 1)); echo "ok    $name"
  else failed=$((failed + 1)); echo "FAIL  $name"; fi
}
# A command as cron or a fresh login runs it: no variables but PATH and HOME,
# in a directory that has nothing to do with the build or the package.
clean() { (cd "$work/elsewhere" && env -i PATH=/usr/bin:/bin HOME="$work/home" "$@"); }
load_version() { clean sqlite3 :memory: ".load snapshot" "SELECT snapshot_version()" 2>&1; }
bare_name_not_found() { ! load_version >/dev/null; }

# Without the package, a bare name must not be found: otherwise what follows
# would pass whatever the package does.
check "before installing, .load snapshot fails" bare_name_not_found

stage "cpack -G DEB in $build"
out=$(cd "$build" && cpack -G DEB 2>&1) || { echo "$out"; exit 1; }
deb=$(sed -n 's/^CPack: - package: \(.*\.deb\) generated\.$/\1/p' <<<"$out")
version=$(sed -n 's/^set(CPACK_PACKAGE_VERSION "\(.*\)")$/\1/p' "$build/CPackConfig.cmake")
arch=$(dpkg --print-architecture)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
echo "$deb ($(stat -c %s "$deb") bytes)"
check "the package is $build/snapshot_${version}_$arch.deb" test "$deb" = "$build/snapshot_${version}_$arch.deb"
field() { dpkg-deb -f "$deb" "$1"; }
check "Package: snapshot, Version: $version (the project's)" test "$(field Package) $(field Version)" = "snapshot $version"
depends=$(field Depends)
echo "      Depends: $depends"
check "it depends on libsqlite3-0 and libzstd1" grep -Eq "libsqlite3-0 \(>= [0-9.]+\).*libzstd1 \(>= " <<<"$depends"
check "it depends on libsodium23 (remote copies' encryption)" grep -Eq "(^|, )libsodium23( |,|$)" <<<"$depends"
check "it has a maintainer and a description" test -n "$(field Maintainer)" -a -n "$(field Description)"
contents=$(dpkg-deb -c "$deb" | awk '{print $6}' | sed 's,^\.,,')
for f in /usr/lib/$multiarch/snapshot.so /usr/share/snapshot/sql/nightly.sql \
         /usr/lib/python3/dist-packages/snapshot_django/apps.py /usr/share/doc/snapshot/README.md \
         /usr/share/doc/snapshot/copyright /usr/share/man/man7/snapshot.7.gz; do
  check "the package has $f" grep -qx "$f" <<<"$contents"
done
# Directories the package shares with the system (/usr/lib, ...) stay after
# its removal; the others must go.
existed=$(grep '/$' <<<"$contents" | sed 's,/$,,' | while read -r d; do [ ! -d "$d" ] || echo "$d"; done)

# As the README says it, from the build directory's parent: ./build/snapshot_*.deb
rel=./$(basename "$build")/$(basename "$deb")
stage "apt-get install $rel"
(cd "$build/.." && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$rel") \
  > "$work/apt-install.log" 2>&1 || { cat "$work/apt-install.log"; exit 1; }
check "apt-get installed it" installed
files=$(dpkg -L snapshot)

stage "from $work/elsewhere, env -i PATH=/usr/bin:/bin"
check ".load snapshot in the sqlite3 shell: version $version" test "$(load_version)" = "$version"
manual_page() {  # what `man 7 snapshot` shows (man-db may not be installed)
  if command -v man >/dev/null; then clean man -w 7 snapshot | grep -qx /usr/share/man/man7/snapshot.7.gz || return 1; fi
  zcat /usr/share/man/man7/snapshot.7.gz | grep -q '^\.TH SNAPSHOT 7'
}
check "man 7 snapshot" manual_page
check "Debian's python3: sqlite3 load_extension(\"snapshot\")" test "$(clean /usr/bin/python3 -c '
import sqlite3
con = sqlite3.connect(":memory:")
con.enable_load_extension(True)
con.load_extension("snapshot")
print(con.execute("SELECT snapshot_version()").fetchone()[0])')" = "$version"
check "every script in /usr/share/snapshot/sql/" clean bash "$src/sql/test_scripts.sh" --installed /usr/share/snapshot/sql

# The README's crontab line, as cron runs it: sh, PATH=/usr/bin:/bin, the
# crontab's SNAPSHOT_DIR.
db=$work/srv/db.sqlite3 store=$work/backups/app log=$work/snapshot.log
mkdir -p "$work/srv" "$store"
: > "$log"
sqlite3 "$db" "CREATE TABLE t(x); WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<1000) INSERT INTO t SELECT randomblob(500) FROM c;"
for _ in 1 2; do
  clean SHELL=/bin/sh LOGNAME="$(id -un)" SNAPSHOT_DIR="$store" \
    /bin/sh -c "sqlite3 $db < /usr/share/snapshot/sql/nightly.sql >> $log 2>&1" || echo "      (exit $?)"
done
sed 's/^/      | /' "$log"
check "the crontab line: two nightly snapshots in SNAPSHOT_DIR, verified" \
  test "$(grep -Ec "nightly database=$db store=$store snapshot=[12] |verify database=$db store=$store snapshots=[12] result=ok" "$log")" = 4

stage "a Django project with only snapshot_django added to INSTALLED_APPS"
cp -r "$src/tests/install/djangoproject" "$work/site"
manage() {  # manage ARGS...: manage.py as an operator runs it; its output in manage.out, its exit code in $rc
  rc=0
  clean /usr/bin/python3 "$work/site/manage.py" "$@" > "$work/manage.out" 2>&1 || rc=$?
  echo "      \$ manage.py $* (exit $rc)"
  sed 's/^/      | /' "$work/manage.out"
}
printed() { [ "$rc" = 0 ] && grep -Eq "$1" "$work/manage.out"; }
check "snapshot_django is imported from /usr/lib/python3/dist-packages" test \
  "$(clean /usr/bin/python3 -c 'import snapshot_django; print(snapshot_django.__file__)')" \
  = /usr/lib/python3/dist-packages/snapshot_django/__init__.py
sitedb=$work/site/db.sqlite3
manage migrate --no-input
check "migrate takes a pre-migrate snapshot (in <db>-snapshots)" printed "to $sitedb-snapshots as snapshot 1 \\(label 'pre-migrate'"
check "migrate applied the migrations" test "$(sqlite3 "$sitedb" "SELECT count(*) FROM django_migrations WHERE app = 'auth'")" -gt 0
manage snapshot_backup
check "snapshot_backup" printed "as snapshot 2 \\(label 'backup'"
permissions=$(sqlite3 "$sitedb" "SELECT count(*) FROM auth_permission")
sqlite3 "$sitedb" "DELETE FROM auth_permission"
manage snapshot_list
check "snapshot_list lists the pre-migrate snapshot" printed "^ +1 .* pre-migrate "
check "snapshot_list lists the backup" printed "^ +2 .* backup "
manage snapshot_restore --yes
check "snapshot_restore --yes restores the latest snapshot" printed "^Restored snapshot 2 "
check "the deleted rows are back ($permissions)" test "$(sqlite3 "$sitedb" "SELECT count(*) FROM auth_permission")" = "$permissions"

stage "apt-get remove snapshot"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get remove -y -q snapshot > "$work/apt-remove.log" 2>&1 ||
  cat "$work/apt-remove.log"
check "apt-get removed it" not_installed
left=$(while read -r f; do
  [ "$f" != /. ] || continue
  [ -e "$f" ] || [ -L "$f" ] || continue
  if [ -d "$f" ] && grep -qxF "$f" <<<"$existed"; then continue; fi
  echo "$f"
done <<<"$files")
check "no file or directory it installed is left" test -z "$left"
[ -z "$left" ] || sed 's/^/      left: /' <<<"$left"
check "after removing, .load snapshot fails again" bare_name_not_found
# dpkg keeps a removed package's postrm (CPack's, which runs ldconfig) until
# it is purged; purge it, so that the machine is as it was.
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q snapshot > "$work/apt-purge.log" 2>&1 ||
  cat "$work/apt-purge.log"
check "apt-get purge snapshot: dpkg no longer knows it" not_known

echo "install test: $passed passed, $failed failed ($((SECONDS - started)) s)"
[ "$failed" -eq 0 ]
