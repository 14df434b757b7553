#!/usr/bin/env bash
# accept-bench.sh — durable acceptance rate: smtp-source → MTA, no delivery running.
#
# Measures how many messages per second an MTA acknowledges with 250 (each one durable on
# disk before the 250), with Postfix's smtp-source: N messages of S bytes, C parallel
# sessions, a new connection per message. Runs, in one sitting and R times each:
#   direct   smtp-source → smtp-sink (no disk at all: the ceiling of the load generator)
#   petrel   smtp-source → petrel (release build, group-commit spool; its destination is down)
#   postfix  smtp-source → a private Postfix (../shared/bench/postfix-peer.sh), relay target down
# and prints the median of each. Loopback only. Needs root for Postfix, and the Debian
# package postfix (smtp-source, smtp-sink).
#
# Usage: bench/accept-bench.sh [-n N] [-s BYTES] [-c C] [-r RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
N=20000; SIZE=5000; CONC=20; RUNS=3
while [ $# -gt 0 ]; do
  case "$1" in
    -n) N=$2; shift 2;; -s) SIZE=$2; shift 2;; -c) CONC=$2; shift 2;; -r) RUNS=$2; shift 2;;
    *) echo "usage: $0 [-n N] [-s BYTES] [-c C] [-r RUNS]" >&2; exit 2;;
  esac
done
export PATH="$PATH:/usr/sbin"
SHARED=${SHARED:-../shared}
PETREL_PORT=2535; PEER_PORT=2526; SINK_PORT=2537; MGMT_PORT=8095
work=$(mktemp -d /var/tmp/petrel-accept.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  PEER_PORT=$PEER_PORT RELAY_PORT=$SINK_PORT "$SHARED/bench/postfix-peer.sh" stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

cargo build --release -q -p petrel
BIN=target/release/petrel

now() { date +%s.%N; }
inject() { # port
  local t0 t1
  t0=$(now)
  smtp-source -s "$CONC" -m "$N" -l "$SIZE" -f bench@source.example -t rcpt@sink.example "127.0.0.1:$1" >/dev/null
  t1=$(now)
  awk -v n="$N" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }'
}
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

declare -a direct petrel postfix
for run in $(seq "$RUNS"); do
  # direct: the sink accepts and discards.
  sink_user=(); [ "$(id -u)" = 0 ] && sink_user=(-u nobody)
  smtp-sink "${sink_user[@]}" -c "127.0.0.1:$SINK_PORT" 1000 >/dev/null 2>&1 & sink=$!
  sleep 0.5
  direct+=("$(inject $SINK_PORT)")
  kill $sink; wait $sink 2>/dev/null || true

  # petrel: fresh spool each run.
  rm -rf "$work/petrel"; mkdir -p "$work/petrel"
  cat > "$work/petrel/petrel.conf" <<CONF
host-name bench.petrel.test
smtp-listener 127.0.0.1:$PETREL_PORT
http-mgmt-port $MGMT_PORT
log-file $work/petrel/petrel.log
<spool $work/petrel/spool>
</spool>
<source 127.0.0.1>
  always-allow-relaying yes
</source>
# Acceptance only: the destination is a closed loopback port, so after one refused attempt
# the queue waits in retry mode and every accepted message stays spooled.
<domain *>
  smtp-hosts [127.0.0.1]:1
  retry-after 1h
</domain>
CONF
  "$BIN" serve --config "$work/petrel/petrel.conf" 2>"$work/petrel/stderr" & pp=$!
  pids+=("$pp")
  for _ in $(seq 100); do grep -q "petrel ready" "$work/petrel/stderr" && break; sleep 0.1; done
  petrel+=("$(inject $PETREL_PORT)")
  stats=$(curl -s "http://127.0.0.1:$MGMT_PORT/status" 2>/dev/null || true)
  echo "petrel run $run: ${petrel[-1]} msg/s; spool: $(echo "$stats" | grep -o '"spool":{[^}]*}' || true)"
  kill "$pp"; wait "$pp" 2>/dev/null || true

  # postfix: purge, accept into its queue (relay target is down, so nothing leaves).
  PEER_PORT=$PEER_PORT RELAY_PORT=$SINK_PORT "$SHARED/bench/postfix-peer.sh" start >/dev/null
  PEER_PORT=$PEER_PORT RELAY_PORT=$SINK_PORT "$SHARED/bench/postfix-peer.sh" purge >/dev/null 2>&1 || true
  sleep 0.5
  postfix+=("$(inject $PEER_PORT)")
  PEER_PORT=$PEER_PORT RELAY_PORT=$SINK_PORT "$SHARED/bench/postfix-peer.sh" stop >/dev/null
  PEER_PORT=$PEER_PORT RELAY_PORT=$SINK_PORT "$SHARED/bench/postfix-peer.sh" purge >/dev/null 2>&1 || true
  echo "run $run: direct=${direct[-1]} petrel=${petrel[-1]} postfix=${postfix[-1]} msg/s"
done
d=$(median "${direct[@]}"); p=$(median "${petrel[@]}"); f=$(median "${postfix[@]}")
echo "RESULT n=$N s=$SIZE c=$CONC runs=$RUNS direct_mps=$d petrel_mps=$p postfix_mps=$f petrel_over_postfix=$(awk -v a="$p" -v b="$f" 'BEGIN{printf "%.1f", a/b}') petrel_over_direct=$(awk -v a="$p" -v b="$d" 'BEGIN{printf "%.2f", a/b}')"
