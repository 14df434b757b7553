#!/usr/bin/env bash
# Issue 15's page benchmark: server time of every Signals page over the analytics
# benchmark's data set (bench/signals-analytics.sh's generator: 90 days, 200 campaigns,
# 20 pools, 50 sending IPs, 1,000 recipient domains).
#
#   bench/signals-pages.sh [EVENTS] [RUNS]      (default 10000000 5)
#
# 1. Generates and ingests EVENTS events with the analytics benchmark, keeping its database
#    (under target/bench-pages/; reused when it already holds EVENTS events: delete the
#    folder to start over — the data is 90 days ending at generation time).
# 2. Serves that database with `petrel signals serve` (release build) and creates a read key.
# 3. Opens each page RUNS times (after one warm-up) with curl and HTTP Basic, and reads the
#    server's own time from the `Server-Timing: total;dur=…` header of the page: template,
#    API calls and store reads, without the network. Prints median and max per page.
#
# Goal: every page ≤ 300 ms at 10 million events. Run it on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
events="${1:-10000000}"
runs="${2:-5}"
dir="target/bench-pages"
db="$dir/bench-$events.db"
mkdir -p "$dir"

cargo build --release -q -p petrel
if [ ! -f "$db" ]; then
  echo "generating and ingesting $events events into $db (once)"
  cargo build --release -q -p petrel-signals --example analytics_bench
  target/release/examples/analytics_bench generate "$events" "$dir/data" 5000
  target/release/examples/analytics_bench ingest "$dir/data" "$db"
  rm -rf "$dir/data"
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
conf="$dir/signals.conf"
printf '<signals-service>\n  listener 127.0.0.1:%s\n  database %s\n</signals-service>\n' "$port" "$PWD/$db" > "$conf"
key=$(target/release/petrel signals create-key --label pages-bench --permissions read --config "$conf")
target/release/petrel signals serve --config "$conf" 2>"$dir/serve.log" & pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/login" && break; sleep 0.1; done

pages=(
  "/signals/health-score?range=90"
  "/signals/health-score?range=90&facet=campaign_id"
  "/signals/health-score?range=14&facet=mb_provider"
  "/signals/health-score/campaign_id/campaign-150?range=90"
  "/signals/spam-traps?range=90"
  "/signals/spam-traps?range=30&facet=ip_pool"
  "/signals/engagement?range=90"
  "/signals/engagement/campaign_id/campaign-150?range=90"
  "/signals/analytics?range=90d"
  "/signals/analytics?range=90d&group_by=sending-ip"
  "/signals/analytics?range=90d&group_by=domain&tab=delay"
  "/signals/analytics?range=7d&group_by=ip-pool"
  "/signals/analytics?range=24h&group_by=mailbox-provider"
  "/reports/message-events?range=24h"
  "/reports/message-events?range=10d&events=bounce&campaigns=campaign-199"
  "/signals/integration?range=10d"
)

server_ms() { # path: the page's Server-Timing total; fails unless the page answers 200
  local code
  code=$(curl -s -o /dev/null -D "$dir/headers" -w '%{http_code}' -u "$key:" "http://127.0.0.1:$port$1")
  [ "$code" = 200 ] || { echo "$1 answered $code" >&2; exit 1; }
  tr -d '\r' < "$dir/headers" | awk -F'dur=' 'tolower($0) ~ /^server-timing:/ { print $2 }'
}

printf '%-72s %10s %10s\n' "page ($events events, $runs runs)" "median ms" "max ms"
worst=0
for p in "${pages[@]}"; do
  server_ms "$p" >/dev/null
  times=()
  for _ in $(seq "$runs"); do times+=("$(server_ms "$p")"); done
  med=$(printf '%s\n' "${times[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
  max=$(printf '%s\n' "${times[@]}" | sort -n | tail -1)
  printf '%-72s %10s %10s\n' "$p" "$med" "$max"
  worst=$(awk -v a="$worst" -v b="$max" 'BEGIN { print (b > a) ? b : a }')
done
echo "slowest page: $worst ms (goal: 300 ms)"
