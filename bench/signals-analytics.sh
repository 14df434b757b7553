#!/usr/bin/env bash
# Issue 13's analytics benchmark: 90 days of a mid-size sender's events (200 campaigns, 30
# templates, 20 IP pools, 50 sending IPs, 1,000 recipient domains, events/5 recipients),
# ingested with rollups over HTTP (2 connections); then Metrics API p95 over the 90 days, the
# health score by campaign over the 90 days and the database size per million events.
#
#   bench/signals-analytics.sh [-r RUNS] [-k] [EVENTS] [PER_BATCH]   (default 10000000 5000)
#
# The data set is generated once (deterministic) under target/analytics-bench/EVENTS/ and
# reused; each run ingests it into a fresh database there. The query figures are taken on
# the database of the last run. -r RUNS (default 1): ingest runs, the median is printed.
# UPLOADERS=N (environment, default 2): concurrent uploading connections.
# -k keeps the data set and the database afterwards (default: both deleted, they are large:
# about 0.1 GB per million events for the data set).
# Run it on a quiet machine; the lead records the figures in docs/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=1; KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    -r) RUNS=$2; shift 2;; -k) KEEP=1; shift;;
    *) break;;
  esac
done
events="${1:-10000000}"
per_batch="${2:-5000}"
dir="target/analytics-bench/$events"
cargo build --release -q -p petrel-signals --example analytics_bench
bin=target/release/examples/analytics_bench
cleanup() { [ "$KEEP" = 1 ] || rm -rf "$dir"; }
trap cleanup EXIT
[ -f "$dir/batches.bin" ] || "$bin" generate "$events" "$dir" "$per_batch"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; $(uname -r); load $(cut -d' ' -f1-3 /proc/loadavg)"
eps=()
for run in $(seq "$RUNS"); do
  # (progress goes to stderr; the RESULT line is printed here, not tee'd to /dev/stderr,
  # which would reopen and truncate a log file that stderr is redirected to)
  line=$("$bin" ingest "$dir" "$dir/signals.db" | grep '^RESULT ingest')
  echo "$line"
  eps+=("$(echo "$line" | sed 's/.*events_per_s=\([0-9]*\).*/\1/')")
done
printf '%s\n' "${eps[@]}" | sort -n | awk -v runs="${eps[*]}" '{ v[NR] = $1 } END { print "SUMMARY ingest_events_per_s median=" v[int((NR + 1) / 2)] " runs=" runs }'
"$bin" query "$dir" "$dir/signals.db"
