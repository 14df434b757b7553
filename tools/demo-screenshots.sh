#!/usr/bin/env bash
# The README's screenshots, from a petrel fed by real traffic through its own pipeline:
# SMTP injection, delivery to a recording sink, opens and clicks through petrel's tracking
# host, a DSN and complaints to its bounce and feedback-loop processors, events uploaded
# to its own Signals service. Seven days of it: each day's run of the daemon sees a clock
# set back that many days (libfaketime; without it, only today's traffic), so the charts
# have history. Then the daemon runs on the real clock and tools/screenshots.py takes the
# pages.
#
#   tools/demo-screenshots.sh [OUT_DIR] [DAYS]      (default docs/images 7)
#
# Needs python3 with aiosmtpd (./test.sh installs it), chromium and chromedriver, and
# faketime (apt-get install faketime) for the history. Everything runs on loopback under a
# temporary directory that is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs/images}"
days="${2:-7}"
key=0123456789abcdef0123456789abcdef0123beef
cargo build --release -q -p petrel
bin="$PWD/target/release/petrel"
work=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
smtp=$(free_port); mgmt=$(free_port); sig=$(free_port); track=$(free_port); sink=$(free_port)
pid=""; sink_pid=""
stop_petrel() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=""; fi; }
cleanup() {
  stop_petrel
  exec 3>&- 2>/dev/null || true   # the sink stops when its stdin closes
  [ -n "$sink_pid" ] && wait "$sink_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

mkfifo "$work/sink.in"
python3 crates/petrel/tests/support/sink.py 127.0.0.1 "$sink" "$work/sink.jsonl" > "$work/sink.out" < "$work/sink.in" & sink_pid=$!
exec 3>"$work/sink.in"
touch "$work/sink.jsonl"

cat > "$work/petrel.conf" <<CONF
host-name demo.brand.example
postmaster postmaster@brand.example
smtp-listener 127.0.0.1:$smtp
http-mgmt-port $mgmt
log-file $work/petrel.log
<spool $work/spool>
</spool>
<virtual-mta warm-1>
  smtp-source-host 127.0.0.1 mta1.brand.example
</virtual-mta>
<virtual-mta shared-1>
  smtp-source-host 127.0.0.2 mta2.brand.example
</virtual-mta>
<virtual-mta-pool warm>
  virtual-mta warm-1
</virtual-mta-pool>
<virtual-mta-pool shared>
  virtual-mta shared-1
</virtual-mta-pool>
<rewrite-list mfrom>
  mail-from *@mail.brand.example *@bounces.brand.example
  mail-from *@news.brand.example *@bounces.brand.example
</rewrite-list>
<source 127.0.0.1>
  always-allow-relaying yes
  process-x-job yes
  process-x-virtual-mta yes
  rewrite-list mfrom
</source>
<source 127.0.0.3>
  always-allow-relaying no
</source>
<bounce-processor>
  <address-list>
    domain bounces.brand.example
  </address-list>
</bounce-processor>
<feedback-loop-processor>
  <address-list>
    domain fbl.brand.example
  </address-list>
</feedback-loop-processor>
<domain *>
  smtp-hosts [127.0.0.1]:$sink
  use-starttls no
  retry-after 10m
</domain>
<signals>
  api-key $key
  upload-url http://127.0.0.1:$sig/api/v1/ingest/events
  event-dir $work/events
  upload-interval 500ms
  process-x-sp-subaccount-id true
  engagement-tracking sparkpost
  tracking-listener 127.0.0.1:$track
</signals>
<signals-service>
  listener 127.0.0.1:$sig
  database $work/signals.db
</signals-service>
CONF

libfaketime=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1
start_petrel() { # [clock offset, e.g. -3d]
  # Preloaded rather than through the `faketime` wrapper, so that $! is petrel itself;
  # fd 3 (the sink's stdin) closed so that stopping the sink does not wait for petrel.
  if [ -n "${1:-}" ]; then
    LD_PRELOAD="$libfaketime" FAKETIME="$1" FAKETIME_DONT_FAKE_MONOTONIC=1 \
      "$bin" serve --config "$work/petrel.conf" 2>"$work/stderr" 3>&- & pid=$!
  else
    "$bin" serve --config "$work/petrel.conf" 2>"$work/stderr" 3>&- & pid=$!
  fi
  for _ in $(seq 100); do grep -q "petrel ready" "$work/stderr" && return; sleep 0.1; done
  echo "petrel did not start:"; cat "$work/stderr"; exit 1
}

# Waits until the uploader has sent every closed event file.
wait_uploaded() {
  sleep 3
  for _ in $(seq 120); do
    ls "$work/events"/sp1-*.json >/dev/null 2>&1 || return 0
    sleep 0.5
  done
  echo "events were not uploaded"; exit 1
}

[ -f "$libfaketime" ] || { echo "libfaketime is not installed (apt-get install faketime): only today's traffic"; days=1; }
for d in $(seq $((days - 1)) -1 0); do
  if [ "$d" -gt 0 ]; then start_petrel "-${d}d"; else start_petrel; fi
  messages=$((260 + (d * 37) % 90))
  complaints=0; [ "$d" = 3 ] && complaints=2
  echo "day -$d: $messages messages"
  python3 tools/demo-traffic.py --smtp-port "$smtp" --sink-record "$work/sink.jsonl" \
    --day "$d" --messages "$messages" --complaints "$complaints"
  sleep 2
  wait_uploaded
  if [ "$d" -gt 0 ]; then stop_petrel; fi
done

python3 tools/screenshots.py --url "http://127.0.0.1:$sig" --key "$key" --out "$out" \
  --page "health-score=/signals/health-score?range=7" \
  --page "summary-report=/signals/analytics?range=7d&precision=day&group_by=sending-ip&metric=count_sent&metric=count_accepted&metric=accepted_rate&metric=bounce_rate&metric=open_rate&metric=click_through_rate"
if [ -n "${DEMO_HOLD:-}" ]; then
  echo "holding: http://127.0.0.1:$sig/ (key $key), monitor http://127.0.0.1:$mgmt/ for $DEMO_HOLD s"
  sleep "$DEMO_HOLD"
fi
