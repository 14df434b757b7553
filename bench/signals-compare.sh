#!/usr/bin/env bash
# signals-compare.sh — the Signals benchmarks, in one sitting:
#   1. relay throughput (../shared/bench/relay-bench.sh, smtp-source → MTA → smtp-sink):
#      the direct smtp-source → smtp-sink limit, Postfix (postfix-peer.sh), petrel with
#      Signals off (bench/relay.conf) and on (bench/relay-signals.conf: events uploaded to
#      petrel's own service in the same daemon), interleaved, median of R runs; after each
#      "on" run, waits until every injection and delivery event is searchable and counts them;
#   2. petrel's ingest service alone (HTTP + gzip + SQLite), crates/signals/examples/ingest_bench;
#   3. the uploader path: emit → event files → gzip upload → ingest, examples/pipeline_bench.
# Loopback only; needs root (Postfix) and Debian's postfix package.
#
# Usage: bench/signals-compare.sh [-n N] [-r RUNS] [-s SIZE] [-e EVENTS]   (-e 0: relay part only)
set -euo pipefail
cd "$(dirname "$0")/.."
N=10000; RUNS=3; SIZE=5000; EVENTS=200000
while [ $# -gt 0 ]; do
  case "$1" in
    -n) N=$2; shift 2;; -r) RUNS=$2; shift 2;; -s) SIZE=$2; shift 2;; -e) EVENTS=$2; shift 2;;
    *) echo "usage: $0 [-n N] [-r RUNS] [-s SIZE] [-e EVENTS]" >&2; exit 2;;
  esac
done
export PATH="$PATH:/usr/sbin"
SHARED=${SHARED:-../shared}
BENCH="$SHARED/bench/relay-bench.sh"
WORK=/var/tmp/petrel-bench
KEY=0123456789abcdef0123456789abcdef01234567
cargo build --release -q -p petrel
cargo build --release -q -p petrel-signals --examples
BIN=$PWD/target/release/petrel
source bench/lib.sh
peer() { PEER_PORT=2526 RELAY_PORT=2527 "$SHARED/bench/postfix-peer.sh" "$@"; }
trap 'stop_petrel || true; peer stop >/dev/null 2>&1 || true' EXIT
count() { # event type → total_count in the service
  curl -s -H "Authorization: $KEY" "http://127.0.0.1:8098/api/v1/events/message?events=$1&per_page=1" \
    | sed -n 's/.*"total_count":\([0-9]*\).*/\1/p'
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; $(uname -r); n=$N size=$SIZE runs=$RUNS c=20"
d=(); f=(); off=(); on=()
for run in $(seq "$RUNS"); do
  d+=("$("$BENCH" direct -n "$N" -s "$SIZE" -c 20 --quiet | mps)")
  peer start >/dev/null; peer purge >/dev/null 2>&1 || true
  f+=("$("$BENCH" relay --inject-port 2526 -n "$N" -s "$SIZE" -c 20 --quiet | mps)")
  peer stop >/dev/null
  start_petrel bench/relay.conf
  off+=("$("$BENCH" relay --inject-port 2525 -n "$N" -s "$SIZE" -c 20 --quiet | mps)")
  stop_petrel
  start_petrel bench/relay-signals.conf
  on+=("$("$BENCH" relay --inject-port 2525 -n "$N" -s "$SIZE" -c 20 --quiet | mps)")
  t0=$(date +%s.%N)
  for _ in $(seq 600); do
    inj=$(count injection); dlv=$(count delivery)
    [ "${inj:-0}" -ge "$N" ] && [ "${dlv:-0}" -ge "$N" ] && break
    sleep 0.1
  done
  lag=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
  stop_petrel
  echo "run=$run direct=${d[-1]} postfix=${f[-1]} signals_off=${off[-1]} signals_on=${on[-1]} events_stored injection=$inj delivery=$dlv (all searchable ${lag}s after the last message was delivered)"
done
OFF=$(median "${off[@]}"); ON=$(median "${on[@]}")
echo "SUMMARY size=$SIZE direct_mps=$(median "${d[@]}") postfix_mps=$(median "${f[@]}") signals_off_mps=$OFF signals_on_mps=$ON on/off=$(awk -v a="$ON" -v b="$OFF" 'BEGIN{printf "%.3f", a/b}')"

[ "$EVENTS" -eq 0 ] && exit 0
ing=(); pipe=()
for run in $(seq "$RUNS"); do
  ing+=("$(target/release/examples/ingest_bench "$EVENTS" 5000 2 | sed -n 's/.*: \([0-9]*\) events\/s/\1/p')")
  line=$(target/release/examples/pipeline_bench "$EVENTS" | grep '^RESULT')
  pipe+=("$(echo "$line" | sed 's/.*upload_ingest_eps=\([0-9]*\).*/\1/')")
  echo "run=$run ingest_eps=${ing[-1]} $line"
done
echo "SUMMARY events=$EVENTS ingest_eps=$(median "${ing[@]}") uploader_to_ingest_eps=$(median "${pipe[@]}")"
