#!/usr/bin/env bash
# A single-node S3-compatible object store on loopback, for the remote tests
# and for trying remote copies by hand: OpenStack Swift from Debian's
# packages with its s3api middleware, storage in a plain directory.
#
#   eval "$(tools/object-store.sh start)"   # installs (apt-get) on first use,
#                                           # starts it, prints the exports
#   tools/object-store.sh stop              # stops it and removes its data
#   tools/object-store.sh kill [SERVER...]  # stops it (or only the named
#                                           # servers: proxy, account,
#                                           # container, object, memcached),
#                                           # keeps the data; `start` brings
#                                           # back what is not running
#   tools/object-store.sh dir               # where its files are
#
# `start` prints, on stdout only, lines that set AWS_ENDPOINT_URL,
# AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and SNAPSHOT_REMOTE
# (s3://snapshot-test/<prefix>). It is quiet otherwise; on failure it says
# what failed on stderr, with the servers' log, and exits non-zero. Both
# commands are idempotent. No systemd: the four servers (proxy, account,
# container, object) and memcached are plain processes, each recorded in a
# pid file. Swift reads /etc/swift/swift.conf (the path is fixed in Swift) as
# Debian installs it.
#
# Settings (environment): SNAPSHOT_OBJECT_STORE_DIR (default
# /tmp/snapshot-object-store), SNAPSHOT_OBJECT_STORE_PORT (the S3 endpoint's
# port, default 18080; the three storage servers and memcached use the next
# four).
set -euo pipefail

dir=${SNAPSHOT_OBJECT_STORE_DIR:-/tmp/snapshot-object-store}
port=${SNAPSHOT_OBJECT_STORE_PORT:-18080}
bucket=snapshot-test
region=us-east-1
# tempauth's user "tester" of account "test": S3 access key "test:tester".
access_key=test:tester
secret_key=testing
servers=(memcached account container object proxy)

die() { echo "object-store.sh: $*" >&2; exit 1; }
say_log() { [ -f "$dir/log" ] && { echo "--- $dir/log (last lines):" >&2; tail -25 "$dir/log" >&2; }; return 0; }

install_packages() {
  local pkgs=(swift-proxy swift-account swift-container swift-object memcached curl) missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  # The packages' scripts would start the servers (and rsyslog) with
  # Debian's default configuration: forbid that for the install, where no
  # policy says otherwise (101: "action forbidden").
  local policy=/usr/sbin/policy-rc.d added_policy=""
  if [ ! -e $policy ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee $policy >/dev/null && $sudo chmod 755 $policy && added_policy=1
  fi
  local log; log=$(mktemp)
  # Recommends would bring a desktop keyring; the servers need none of them.
  if ! { $sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q \
         --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    [ -z "$added_policy" ] || $sudo rm -f $policy
    tail -30 "$log" >&2; rm -f "$log"
    die "apt-get could not install ${missing[*]}"
  fi
  [ -z "$added_policy" ] || $sudo rm -f $policy
  rm -f "$log"
}

alive() {  # alive NAME: is that server's recorded process running?
  local pid
  pid=$(cat "$dir/pids/$1" 2>/dev/null) || return 1
  # Its command line names it: after a reboot or a container's restart the
  # recorded number may belong to another process.
  tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q -- "$1"
}

running() {  # is every server alive?
  local s
  for s in "${servers[@]}"; do alive "$s" || return 1; done
}

kill_servers() {  # kill_servers [NAME...]: all of them by default
  local names=("$@") s pid
  [ ${#names[@]} -gt 0 ] || names=("${servers[@]}")
  for s in "${names[@]}"; do
    pid=$(cat "$dir/pids/$s" 2>/dev/null) || continue
    alive "$s" || { rm -f "$dir/pids/$s"; continue; }  # never another process
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$dir/pids/$s"
  done
}

write_config() {
  local user; user=$(id -un)
  mkdir -p "$dir/etc" "$dir/srv/d1"
  # Rings: one device, one replica, 2^6 partitions; made in one Python
  # process (swift-ring-builder would start nine, seconds each).
  /usr/bin/python3 - "$dir/etc" "$port" >>"$dir/log" 2>&1 <<'EOF' || { say_log; die "could not make Swift's rings"; }
import sys
from swift.common.ring import RingBuilder
etc, port = sys.argv[1], int(sys.argv[2])
for i, kind in enumerate(("account", "container", "object")):
    builder = RingBuilder(6, 1, 1)
    builder.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1", "port": port + 1 + i,
                     "device": "d1", "weight": 1})
    builder.rebalance()
    builder.get_ring().save("%s/%s.ring.gz" % (etc, kind))
EOF
  local kind p
  for kind in account container object; do
    case $kind in account) p=$((port + 1));; container) p=$((port + 2));; object) p=$((port + 3));; esac
    cat >"$dir/etc/$kind-server.conf" <<EOF
[DEFAULT]
swift_dir = $dir/etc
devices = $dir/srv
mount_check = false
bind_ip = 127.0.0.1
bind_port = $p
workers = 0
user = $user
log_name = $kind-server
[pipeline:main]
pipeline = $kind-server
[app:$kind-server]
use = egg:swift#$kind
EOF
  done
  # s3api answers S3 requests and checks their signatures with tempauth's
  # keys; slo is what multipart uploads are made of; tempauth keeps its
  # tokens in memcached (and refuses to issue one without it).
  cat >"$dir/etc/proxy-server.conf" <<EOF
[DEFAULT]
swift_dir = $dir/etc
bind_ip = 127.0.0.1
bind_port = $port
workers = 0
user = $user
log_name = proxy-server
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo proxy-logging proxy-server
[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
[filter:s3api]
use = egg:swift#s3api
location = $region
[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = $secret_key .admin
[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$((port + 4))
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
EOF
}

start_servers() {  # those that are not running
  mkdir -p "$dir/pids"
  local s
  for s in "${servers[@]}"; do
    alive "$s" && continue
    # setsid: the servers outlive the shell that started them, and a
    # terminal's signals do not reach them.
    if [ "$s" = memcached ]; then
      setsid memcached -l 127.0.0.1 -p $((port + 4)) -U 0 -m 16 -u "$(id -un)" </dev/null >>"$dir/log" 2>&1 &
    else
      setsid "swift-$s-server" "$dir/etc/$s-server.conf" </dev/null >>"$dir/log" 2>&1 &
    fi
    echo $! >"$dir/pids/$s"
  done
}

wait_ready() {  # the proxy answers and the bucket exists
  # Four Python servers take seconds to start, many on a loaded machine.
  local deadline=$((SECONDS + 90)) token
  until curl -fsS -o /dev/null "http://127.0.0.1:$port/healthcheck" 2>/dev/null; do
    running || { say_log; die "a server exited while starting"; }
    [ $SECONDS -lt $deadline ] || { say_log; die "the proxy on 127.0.0.1:$port did not answer within 90 s"; }
    sleep 0.1
  done
  # Swift's own API makes the bucket (a container of account AUTH_test):
  # curl's S3 signing cannot take an access key with a colon in it.
  while :; do
    token=$(curl -fsS -o /dev/null -D - -H "X-Auth-User: $access_key" -H "X-Auth-Key: $secret_key" \
              "http://127.0.0.1:$port/auth/v1.0" 2>/dev/null | tr -d '\r' | sed -n 's/^[Xx]-[Aa]uth-[Tt]oken: //p') || true
    if [ -n "$token" ] && curl -fsS -o /dev/null -X PUT -H "X-Auth-Token: $token" \
         "http://127.0.0.1:$port/v1/AUTH_test/$bucket" 2>/dev/null; then
      return 0
    fi
    [ $SECONDS -lt $deadline ] || { say_log; die "the proxy on 127.0.0.1:$port did not make bucket $bucket within 90 s"; }
    sleep 0.1
  done
}

case ${1:-} in
  start)
    install_packages
    [ -f "$dir/etc/proxy-server.conf" ] || { rm -rf "$dir"; mkdir -p "$dir"; write_config; }
    start_servers
    wait_ready
    echo "export AWS_ENDPOINT_URL=http://127.0.0.1:$port AWS_REGION=$region" \
         "AWS_ACCESS_KEY_ID=$access_key AWS_SECRET_ACCESS_KEY=$secret_key"
    echo "export SNAPSHOT_REMOTE=s3://$bucket/snapshots"
    ;;
  stop)
    kill_servers
    rm -rf "$dir"
    ;;
  kill)
    shift
    for s in "$@"; do
      [[ " ${servers[*]} " == *" $s "* ]] || die "no server '$s' (the servers: ${servers[*]})"
    done
    kill_servers "$@"
    ;;
  dir)
    echo "$dir"
    ;;
  *)
    echo "usage: $0 start|stop|kill [SERVER...]|dir" >&2; exit 2
    ;;
esac
