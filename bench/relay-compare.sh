#!/usr/bin/env bash
# relay-compare.sh — end-to-end relay throughput of petrel beside Postfix and the direct
# smtp-source → smtp-sink limit, in one sitting, median of R runs, for each message size.
# Uses ../shared/bench/relay-bench.sh (smtp-sink on 127.0.0.1:2527) and postfix-peer.sh.
# Loopback only; needs root (Postfix) and Debian's postfix package.
#
# Usage: bench/relay-compare.sh [-n N] [-r RUNS] [-s "5000 100000"] [--memory N]
#   --memory N  afterwards, queue N messages for a destination that is down and report
#               petrel's RSS (bounded memory while mail waits)
# BASELINE=/path/to/older/petrel adds that build as a fourth column, run in the same
# sitting with the same configuration (a before/after comparison of a change).
set -euo pipefail
cd "$(dirname "$0")/.."
N=20000; RUNS=3; SIZES="5000 100000"; MEMORY=0
while [ $# -gt 0 ]; do
  case "$1" in
    -n) N=$2; shift 2;; -r) RUNS=$2; shift 2;; -s) SIZES=$2; shift 2;; --memory) MEMORY=$2; shift 2;;
    *) echo "usage: $0 [-n N] [-r RUNS] [-s SIZES] [--memory N]" >&2; exit 2;;
  esac
done
export PATH="$PATH:/usr/sbin"
SHARED=${SHARED:-../shared}
BENCH="$SHARED/bench/relay-bench.sh"
WORK=/var/tmp/petrel-bench
cargo build --release -q -p petrel
BIN=$PWD/target/release/petrel
source bench/lib.sh
cleanup() { stop_petrel || true; PEER_PORT=2526 RELAY_PORT=2527 "$SHARED/bench/postfix-peer.sh" stop >/dev/null 2>&1 || true; }
trap cleanup EXIT

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; $(uname -r); n=$N runs=$RUNS c=20, a new connection per message"
for S in $SIZES; do
  d=(); f=(); p=(); b=()
  for run in $(seq "$RUNS"); do
    d+=("$("$BENCH" direct -n "$N" -s "$S" -c 20 --quiet | mps)")
    PEER_PORT=2526 RELAY_PORT=2527 "$SHARED/bench/postfix-peer.sh" start >/dev/null
    PEER_PORT=2526 RELAY_PORT=2527 "$SHARED/bench/postfix-peer.sh" purge >/dev/null 2>&1 || true
    f+=("$("$BENCH" relay --inject-port 2526 -n "$N" -s "$S" -c 20 --quiet | mps)")
    PEER_PORT=2526 RELAY_PORT=2527 "$SHARED/bench/postfix-peer.sh" stop >/dev/null
    start_petrel bench/relay.conf
    p+=("$("$BENCH" relay --inject-port 2525 -n "$N" -s "$S" -c 20 --quiet | mps)")
    stop_petrel
    line="size=$S run=$run direct=${d[-1]} postfix=${f[-1]} petrel=${p[-1]}"
    if [ -n "${BASELINE:-}" ]; then
      CURRENT=$BIN; BIN=$BASELINE
      start_petrel bench/relay.conf
      b+=("$("$BENCH" relay --inject-port 2525 -n "$N" -s "$S" -c 20 --quiet | mps)")
      stop_petrel; BIN=$CURRENT
      line="$line baseline=${b[-1]}"
    fi
    echo "$line"
  done
  D=$(median "${d[@]}"); F=$(median "${f[@]}"); P=$(median "${p[@]}")
  extra=""
  [ -n "${BASELINE:-}" ] && extra=" baseline_mps=$(median "${b[@]}")"
  echo "SUMMARY size=$S direct_mps=$D postfix_mps=$F petrel_mps=$P$extra petrel/direct=$(awk -v a="$P" -v b="$D" 'BEGIN{printf "%.2f", a/b}') petrel/postfix=$(awk -v a="$P" -v b="$F" 'BEGIN{printf "%.1f", a/b}')"
done

if [ "$MEMORY" -gt 0 ]; then
  # The sink is down (nothing on 2527): everything waits in its queue.
  start_petrel bench/relay.conf
  t0=$(date +%s)
  smtp-source -s 20 -m "$MEMORY" -l 5000 -f bench@source.example -t rcpt@sink.example 127.0.0.1:2525
  t1=$(date +%s)
  sleep 2
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$PID/status")
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$PID/status")
  queued=$(curl -s http://127.0.0.1:8096/queues | grep -o '"rcp":[0-9]*' | head -1)
  echo "MEMORY waiting=$MEMORY inject_s=$((t1 - t0)) rss_kib=$rss peak_rss_kib=$hwm queue=$queued"
fi
