#!/usr/bin/env bash
# examples/demo/run.sh — petrel and petrel sink on loopback, a few minutes of realistic
# campaigns, and a Signals service whose numbers tell what happened:
#
#   inject.py ──SMTP──► petrel serve ──SMTP──► petrel sink (a world of mailbox providers)
#                          ▲   │                  │  bounces later, complains, opens, clicks
#                          │   └─ events ─► Signals service on http://127.0.0.1:8097
#                          └── DSNs, ARF reports ─┘  tracking host :8098, landing pages :8099
#
# Usage: examples/demo/run.sh [--minutes N] [--rate MSGS_PER_S] [--exit]
#   --exit   stop everything when the story is complete (default: keep petrel and its
#            Signals service running until Ctrl-C, so you can look around)
# Needs cargo and python3. Ports: 2525 (SMTP), 8080 (management), 8097 (Signals), 8098
# (tracking), 2527/2528 (sink, its counts), 8099 (landing pages). Data in examples/demo/var.
set -euo pipefail
cd "$(dirname "$0")/../.."
MINUTES=3; RATE=20; EXIT=0
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) MINUTES=$2; shift 2;; --rate) RATE=$2; shift 2;; --exit) EXIT=1; shift;;
    *) echo "usage: $0 [--minutes N] [--rate MSGS_PER_S] [--exit]" >&2; exit 2;;
  esac
done
DEMO=examples/demo
VAR=$DEMO/var
KEY=5ca1ab1e0000000000000000000000000000c0de
for tool in python3 curl; do command -v $tool >/dev/null || { echo "the demo needs $tool" >&2; exit 1; }; done
for port in 2525 2527 2528 8080 8097 8098 8099; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is in use (another petrel?): stop it first" >&2; exit 1
  fi
done

echo "building petrel (release)…"
cargo build --release -q -p petrel
BIN=$PWD/target/release/petrel
rm -rf "$VAR"; mkdir -p "$VAR"

PIDS=()
stop() {
  # the sink first, so its summary is printed; then the rest, each by its PID
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  PIDS=()
}
trap stop EXIT
trap 'exit 130' INT TERM

wait_for() { # file text
  for _ in $(seq 300); do grep -q "$2" "$1" 2>/dev/null && return; sleep 0.1; done
  echo "did not start:"; cat "$1"; exit 1
}

"$BIN" sink --config $DEMO/sink.conf 2>"$VAR/sink.log" & PIDS+=($!)
wait_for "$VAR/sink.log" "petrel sink ready"
"$BIN" serve --config $DEMO/petrel.conf 2>"$VAR/petrel.stderr" & PIDS+=($!)
wait_for "$VAR/petrel.stderr" "petrel ready"
python3 -m http.server 8099 --bind 127.0.0.1 --directory $DEMO/site >"$VAR/web.log" 2>&1 & PIDS+=($!)

echo "injecting for $MINUTES minute(s) at $RATE messages/s…"
python3 $DEMO/inject.py --port 2525 --minutes "$MINUTES" --rate "$RATE" --web 8099

echo "waiting for retries, late bounces, complaints, opens and clicks…"
sink_stat() { curl -s http://127.0.0.1:2528/ | grep -o "\"$1\":[0-9]*" | head -1 | cut -d: -f2; }
for _ in $(seq 600); do
  queued=$("$BIN" list --json --maxitems 1 --config $DEMO/petrel.conf | grep -c '"rcpt' || true)
  [ "$queued" = 0 ] && [ "$(sink_stat pending)" = 0 ] && break
  sleep 1
done
sleep 3   # the last events' upload

echo
echo "What the sink did (its own counts):"
curl -s http://127.0.0.1:2528/metrics | grep '^petrel_sink_total' | grep -v ' 0$' | sed 's/^/  /'
echo
echo "What petrel's Signals service says, by campaign:"
for job in spring-newsletter order-receipts winback-blast; do
  line="  $job:"
  for t in delivery bounce delay out_of_band spam_complaint open click; do
    n=$(curl -s -H "Authorization: $KEY" \
      "http://127.0.0.1:8097/api/v1/events/message?campaigns=$job&events=$t&per_page=1" |
      grep -o '"total_count":[0-9]*' | cut -d: -f2)
    line="$line $t=${n:-0}"
  done
  echo "$line"
done
cat <<TXT

The events search:   curl -s -H 'Authorization: $KEY' \\
                       'http://127.0.0.1:8097/api/v1/events/message?campaigns=winback-blast&events=bounce'
The sink's counts:   curl -s http://127.0.0.1:2528/   (Prometheus text at /metrics)
petrel's queues:     $BIN show queues --config $DEMO/petrel.conf
Accounting:          $VAR/acct-*.csv
TXT
if [ "$EXIT" = 1 ]; then exit 0; fi
echo
echo "petrel and its Signals service keep running; press Ctrl-C to stop."
wait "${PIDS[1]}"
