#!/usr/bin/env bash
# sink-compare.sh — `petrel sink --mix delivered=100` beside Postfix's smtp-sink as the
# destination of the relay benchmark, in one sitting, median of R runs:
#
#   direct: smtp-source → smtp-sink                 vs  smtp-source → petrel sink
#   relay:  smtp-source → petrel serve → smtp-sink  vs  smtp-source → petrel serve → petrel sink
#
# direct: this script starts each sink itself and times smtp-source (it ends when the sink
# has answered every message), and reads the sink's CPU seconds from /proc: on a shared
# machine, CPU per message is the steadier figure.
# relay: the smtp-sink runs are ../shared/bench/relay-bench.sh as it is; the petrel sink runs
# use the same smtp-source arguments and the same end-to-end clock (smtp-source start → N-th
# message accepted by the sink, read from the sink's --stats JSON: last_message_unix_ms).
# petrel serve runs bench/relay.conf (sink.example → 127.0.0.1:2527, 20 connections); the
# petrel sink offers no STARTTLS (no tls-certificate), like smtp-sink, so both get plain SMTP.
# smtp-source opens a new connection per message, as in relay-bench.sh.
# Loopback only. Needs smtp-source/smtp-sink (Debian's postfix), curl, awk, ss.
#
# Usage: bench/sink-compare.sh [-n N] [-r RUNS] [-s BYTES] [-c C] [--direct-only]
set -euo pipefail
cd "$(dirname "$0")/.."
N=20000; RUNS=3; SIZE=5000; CONC=20; RELAY=1
while [ $# -gt 0 ]; do
  case "$1" in
    -n) N=$2; shift 2;; -r) RUNS=$2; shift 2;; -s) SIZE=$2; shift 2;; -c) CONC=$2; shift 2;;
    --direct-only) RELAY=0; shift;;
    *) echo "usage: $0 [-n N] [-r RUNS] [-s BYTES] [-c C] [--direct-only]" >&2; exit 2;;
  esac
done
export PATH="$PATH:/usr/sbin"
SHARED=${SHARED:-../shared}
BENCH="$SHARED/bench/relay-bench.sh"
WORK=/var/tmp/petrel-bench
SINK_WORK=$(mktemp -d /tmp/sink-compare.XXXXXX)
SINK_PORT=2527
STATS_PORT=2528
cargo build --release -q -p petrel
BIN=$PWD/target/release/petrel
source bench/lib.sh
SINK_PID=""
stop_sink() { [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null && wait "$SINK_PID" 2>/dev/null; SINK_PID=""; }
cleanup() { stop_sink || true; stop_petrel || true; rm -rf "$SINK_WORK"; }
trap cleanup EXIT

start_sink() {
  stop_sink || true
  "$BIN" sink --listen "127.0.0.1:$SINK_PORT" --mix delivered=100 --stats "127.0.0.1:$STATS_PORT" \
    >"$SINK_WORK/sink.out" 2>"$SINK_WORK/sink.err" & SINK_PID=$!
  for _ in $(seq 100); do grep -q "petrel sink ready" "$SINK_WORK/sink.err" 2>/dev/null && return; sleep 0.1; done
  echo "petrel sink did not start:"; cat "$SINK_WORK/sink.err"; exit 1
}

# The first number called $1 in the sink's --stats JSON (totals come first), 0 if none.
stat() { local v; v=$(curl -s "http://127.0.0.1:$STATS_PORT/" | grep -o "\"$1\":[0-9]*" | head -1 | cut -d: -f2); echo "${v:-0}"; }

SOURCE_ARGS=(-c -s "$CONC" -m "$N" -l "$SIZE" -r 1 -f bench@source.example -t rcpt@sink.example
             -M bench.source.example -S relay-bench)
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }

# direct: starts a sink (the command), times smtp-source straight into it; prints
# "msg/s cpu_seconds" of the sink.
direct() {
  "$@" >"$SINK_WORK/direct.out" 2>&1 & local pid=$!
  for _ in $(seq 100); do ss -Hltn "sport = :$SINK_PORT" | grep -q . && break; sleep 0.05; done
  local c0 t0 t1 c1
  c0=$(ticks $pid); t0=$EPOCHREALTIME
  smtp-source "${SOURCE_ARGS[@]}" "127.0.0.1:$SINK_PORT" >/dev/null 2>&1
  t1=$EPOCHREALTIME; c1=$(ticks $pid)
  kill $pid; wait $pid 2>/dev/null || true
  awk -v n="$N" -v a="$t0" -v b="$t1" -v c="$c0" -v d="$c1" -v hz="$(getconf CLK_TCK)" \
    'BEGIN{ printf "%.1f %.2f\n", n / (b - a), (d - c) / hz }'
}
SMTP_SINK_USER=(); [ "$(id -u)" = 0 ] && SMTP_SINK_USER=(-u nobody)

# relay: smtp-source into port $1 with relay-bench.sh's arguments; prints the end-to-end
# msg/s at the petrel sink (N / (N-th message's time - start)).
run_to_sink() {
  local port=$1 t0 deadline
  sleep 1   # as relay-bench.sh, which samples the background load for 1 s before injecting
  t0=$EPOCHREALTIME
  smtp-source "${SOURCE_ARGS[@]}" "127.0.0.1:$port" >"$SINK_WORK/source.out" 2>&1 &
  local src=$!
  deadline=$(( $(date +%s) + 600 ))
  while [ "$(stat delivered)" -lt "$N" ]; do
    [ "$(date +%s)" -ge "$deadline" ] && { echo "timeout" >&2; kill $src 2>/dev/null; echo 0; return; }
    sleep 0.25   # the end time comes from the sink's own clock; polling is only for "done"
  done
  wait $src || true
  local last; last=$(stat last_message_unix_ms)
  awk -v n="$N" -v t0="$t0" -v t1="$last" 'BEGIN{ printf "%.1f", n / (t1 / 1000 - t0) }'
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; $(uname -r); load $(cut -d' ' -f1-3 /proc/loadavg); n=$N s=$SIZE c=$CONC runs=$RUNS, a new connection per message"
ds=(); dp=(); cs=(); cp=(); rs=(); rp=()
for run in $(seq "$RUNS"); do
  read -r m c < <(direct smtp-sink "${SMTP_SINK_USER[@]}" -4 -m 2048 "127.0.0.1:$SINK_PORT" 1024)
  ds+=("$m"); cs+=("$c")
  read -r m c < <(direct "$BIN" sink --listen "127.0.0.1:$SINK_PORT" --mix delivered=100)
  dp+=("$m"); cp+=("$c")
  line="run=$run direct: smtp-sink=${ds[-1]} msg/s ${cs[-1]} cpu-s, petrel-sink=${dp[-1]} msg/s ${cp[-1]} cpu-s"
  if [ "$RELAY" = 1 ]; then
    start_petrel bench/relay.conf
    rs+=("$("$BENCH" relay --inject-port 2525 -n "$N" -s "$SIZE" -c "$CONC" --quiet | mps)")
    stop_petrel
    start_petrel bench/relay.conf
    start_sink
    rp+=("$(run_to_sink 2525)")
    stop_sink
    stop_petrel
    line="$line; relay: smtp-sink=${rs[-1]} petrel-sink=${rp[-1]} msg/s"
  fi
  echo "$line"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ printf "%.2f", (b > 0) ? a / b : 0 }'; }
DS=$(median "${ds[@]}"); DP=$(median "${dp[@]}"); CS=$(median "${cs[@]}"); CP=$(median "${cp[@]}")
out="SUMMARY n=$N s=$SIZE direct_smtp_sink_mps=$DS direct_petrel_sink_mps=$DP direct_ratio=$(ratio "$DP" "$DS") cpu_smtp_sink_s=$CS cpu_petrel_sink_s=$CP"
if [ "$RELAY" = 1 ]; then
  RS=$(median "${rs[@]}"); RP=$(median "${rp[@]}")
  out="$out relay_smtp_sink_mps=$RS relay_petrel_sink_mps=$RP relay_ratio=$(ratio "$RP" "$RS")"
fi
echo "$out"
