#!/usr/bin/env bash
# Issue 13's analytics benchmark: generated 90 days of a mid-size sender's events (200
# campaigns, 20 IP pools, 50 sending IPs, 1,000 recipient domains, events/5 recipients),
# ingested with rollups over HTTP (2 connections), then Metrics API p95 over 90 days, the
# health score by campaign over 90 days and the database size per million events.
#
#   bench/signals-analytics.sh [EVENTS] [PER_BATCH]     (default 10000000 5000)
#
# Run it on a quiet machine; the lead records the figures in docs/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
events="${1:-10000000}"
per_batch="${2:-5000}"
cargo build --release -q -p petrel-signals --example analytics_bench
exec target/release/examples/analytics_bench "$events" "$per_batch"
