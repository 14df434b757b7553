#!/usr/bin/env bash
# tracking-compare.sh — the engagement-tracking benchmarks, in one sitting:
#   1. relay throughput for a ~21 KB HTML newsletter (quoted-printable, 30 links), injected
#      and received by crates/petrel/examples/html_relay_bench (smtp-source cannot send
#      HTML), in two load shapes (a connection per message like relay-bench.sh, and reused
#      pipelined connections): the injector → sink limit (--direct), Postfix (postfix-peer.sh), petrel with
#      Signals on and tracking off
#      (bench/relay-signals.conf) and with tracking on (bench/relay-tracking.conf),
#      interleaved, median of R runs; after each tracking run, one delivered message is
#      checked for wrapped links;
#   2. petrel's tracking host alone: pixels and clicks per second with every event written
#      (crates/tracking-host/examples/tracking_load).
# Loopback only; every request loop is bounded by a count and a timeout. Needs root (Postfix)
# and Debian's postfix package.
#
# Usage: bench/tracking-compare.sh [-n N] [-r RUNS] [-q REQUESTS]
set -euo pipefail
cd "$(dirname "$0")/.."
N=5000; RUNS=3; REQ=200000
while [ $# -gt 0 ]; do
  case "$1" in
    -n) N=$2; shift 2;; -r) RUNS=$2; shift 2;; -q) REQ=$2; shift 2;;
    *) echo "usage: $0 [-n N] [-r RUNS] [-q REQUESTS]" >&2; exit 2;;
  esac
done
WORK=/var/tmp/petrel-bench
cargo build --release -q -p petrel
cargo build --release -q -p petrel --example html_relay_bench
cargo build --release -q -p petrel-tracking-host --example tracking_load
BIN=$PWD/target/release/petrel
LOAD=$PWD/target/release/examples/html_relay_bench
source bench/lib.sh
export PATH="$PATH:/usr/sbin"
SHARED=${SHARED:-../shared}
peer() { PEER_PORT=2526 RELAY_PORT=2527 "$SHARED/bench/postfix-peer.sh" "$@"; }
trap 'stop_petrel || true; peer stop >/dev/null 2>&1 || true' EXIT

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; $(uname -r); n=$N runs=$RUNS c=20 size=$("$LOAD" --print | wc -c)"
links() { echo "$1" | sed 's/.*tracked_links_in_first=\([0-9]*\).*/\1/'; }
# Two load shapes: a connection per message, one command at a time (relay-bench.sh's
# smtp-source shape), and --reuse (one connection per session, pipelined: a bulk injector).
for shape in per-message reuse; do
  opt=""; [ "$shape" = reuse ] && opt="--reuse"
  d=(); f=(); off=(); on=()
  for run in $(seq "$RUNS"); do
    d+=("$("$LOAD" $opt --direct -n "$N" --sink 127.0.0.1:2537 | mps)")
    peer start >/dev/null; peer purge >/dev/null 2>&1 || true
    f+=("$("$LOAD" $opt -n "$N" --inject 127.0.0.1:2526 --sink 127.0.0.1:2527 | mps)")
    peer stop >/dev/null
    start_petrel bench/relay-signals.conf
    l_off=$("$LOAD" $opt -n "$N" --inject 127.0.0.1:2525 --sink 127.0.0.1:2527 | grep '^RESULT')
    off+=("$(echo "$l_off" | mps)")
    stop_petrel
    start_petrel bench/relay-tracking.conf
    l_on=$("$LOAD" $opt -n "$N" --inject 127.0.0.1:2525 --sink 127.0.0.1:2527 | grep '^RESULT')
    on+=("$(echo "$l_on" | mps)")
    stop_petrel
    echo "shape=$shape run=$run direct=${d[-1]} postfix=${f[-1]} tracking_off=${off[-1]} (wrapped links: $(links "$l_off")) tracking_on=${on[-1]} (wrapped links: $(links "$l_on"))"
  done
  OFF=$(median "${off[@]}"); ON=$(median "${on[@]}")
  echo "SUMMARY html_relay shape=$shape direct_mps=$(median "${d[@]}") postfix_mps=$(median "${f[@]}") tracking_off_mps=$OFF tracking_on_mps=$ON on/off=$(awk -v a="$ON" -v b="$OFF" 'BEGIN{printf "%.3f", a/b}')"
done

for mode in open click; do
  r=()
  for run in $(seq "$RUNS"); do
    line=$(target/release/examples/tracking_load --mode "$mode" --requests "$REQ" | grep '^RESULT')
    r+=("$(echo "$line" | sed 's/.* rps=\([0-9.]*\).*/\1/')")
    echo "run=$run $line"
  done
  echo "SUMMARY tracking_host mode=$mode rps=$(median "${r[@]}")"
done
