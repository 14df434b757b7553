#!/usr/bin/env bash
# Issue 16's scale-out benchmark: the same generated events (every type and facet, late and
# duplicated events, 90 days) ingested over HTTP by several concurrent uploaders into SQLite
# and into ClickHouse, side by side; then disk bytes per million events and the p50 / p95 /
# max latency of Metrics and Signals queries over the whole 90 days. One run per size, so
# the figures show how each grows.
#
#   bench/signals-scale.sh [SIZES] [UPLOADERS] [STORE]
#       (default "1000000 10000000 50000000" 4 both; STORE is sqlite, clickhouse or both)
#
# ClickHouse is Debian's clickhouse-server started with its data under target/bench-data
# (removed afterwards); set CLICKHOUSE_URL to use a running server instead. Run it on a quiet
# machine; the lead records the figures in docs/BENCHMARKS.md.
#
# To time the queries again without ingesting again: with CLICKHOUSE_URL, also set
# CLICKHOUSE_DATABASE (kept after the run), then run again with QUERIES_ONLY=1 and the same
# size (STORE clickhouse): only the queries run, against what that database holds.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin"
sizes="${1:-1000000 10000000 50000000}"
uploaders="${2:-4}"
store="${3:-both}"
extra=()
[ -n "${CLICKHOUSE_URL:-}" ] && extra=(--clickhouse-url "$CLICKHOUSE_URL")
[ -n "${CLICKHOUSE_DATABASE:-}" ] && extra+=(--database "$CLICKHOUSE_DATABASE")
[ -n "${QUERIES_ONLY:-}" ] && extra+=(--queries-only)
cargo build --release -q -p petrel-signals --example clickhouse_bench
for n in $sizes; do
  echo "== $n events"
  target/release/examples/clickhouse_bench --events "$n" --uploaders "$uploaders" \
    --store "$store" "${extra[@]}"
done
