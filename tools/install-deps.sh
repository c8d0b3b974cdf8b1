#!/usr/bin/env bash
# Installs what building, testing and the demo need, from Debian's packages.
# Does nothing when everything is already there; uses sudo when not root.
set -euo pipefail
packages=(cmake g++ make pkg-config libsqlite3-dev sqlite3 libzstd-dev zstd libxxhash-dev
          libcurl4-openssl-dev libssl-dev  # remote/: S3 requests (libcurl signs them), MD5 (libcrypto)
          libsodium-dev  # remote/: optional client-side encryption of remote copies (XChaCha20-Poly1305)
          libgtest-dev lz4 python3 python3-django
          clang libclang-rt-14-dev  # clang and its libFuzzer runtime: tests/fuzz
          tcl-dev  # testfixture for SQLite's test suite (tests/sqlite_suite; dpkg-dev unpacks its source)
          dpkg-dev file  # cpack -G DEB: dpkg-shlibdeps finds the package's dependencies, file its ELF files
          gnuplot-nox)  # bench/continuous.py plots commit latency and protection lag into a PNG
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The demo and benchmarks build databases from apt's package index.
ls /var/lib/apt/lists/*Packages.lz4 >/dev/null 2>&1 || need_update=1
if [ ${#missing[@]} -eq 0 ] && [ -z "${need_update:-}" ]; then exit 0; fi
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -q
[ ${#missing[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
