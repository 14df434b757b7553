#!/usr/bin/env bash
# large-messages.sh — petrel's resident memory while many sessions send large messages
# (issue 17 item 5).
#
# C sessions at once (one connection each) send one message of M MiB each (Python smtplib's
# low-level calls, so no SIZE parameter: petrel sees every byte). Three set-ups, one sitting:
#   default    petrel's defaults (max-message-size 25M, max-smtp-in-memory 512M)
#   budget     max-message-size raised to 64M, max-smtp-in-memory default 512M
#   unlimited  max-message-size unlimited, max-smtp-in-memory 16G (nothing but the size
#              of the messages bounds memory: the behaviour before the fix), with at most
#              10 sessions, since it holds every message whole (and spools it)
# For each: replies (250 / 452 / 552), petrel's peak resident memory (VmHWM) and wall time.
# The destination is a closed port, so accepted messages stay spooled (on /var/tmp; the
# spool is deleted afterwards). Loopback only, bounded: C x M MiB sent once per set-up,
# each run cut off after 10 minutes.
#
# Usage: bench/large-messages.sh [-c SESSIONS] [-m MIB]      (defaults: 100 sessions, 50 MiB)
set -euo pipefail
cd "$(dirname "$0")/.."
CONC=100; MIB=50
while [ $# -gt 0 ]; do
  case "$1" in
    -c) CONC=$2; shift 2;; -m) MIB=$2; shift 2;;
    *) echo "usage: $0 [-c SESSIONS] [-m MIB]" >&2; exit 2;;
  esac
done
SMTP_PORT=2541; MGMT_PORT=8099
WORK=$(mktemp -d /var/tmp/petrel-large.XXXXXX)
trap 'stop_petrel; rm -rf "$WORK"' EXIT
# shellcheck source=bench/lib.sh
. bench/lib.sh

cargo build --release -q -p petrel
BIN=target/release/petrel

SEND=$(cat <<'PY'
import smtplib, sys, threading, collections
port, count, mib = (int(a) for a in sys.argv[1:4])
chunk = b"x" * (1 << 20) + b"\r\n"
codes = collections.Counter()
lock = threading.Lock()
def one(i):
    try:
        s = smtplib.SMTP("127.0.0.1", port, timeout=300)
        s.ehlo(); s.mail("a@b.example"); s.rcpt("r%d@big.example" % i)
        s.putcmd("data"); s.getreply()
        s.send(b"Subject: large\r\n\r\n")
        for _ in range(mib):
            s.send(chunk)
        s.send(b".\r\n")
        code, _ = s.getreply()
        s.close()
    except Exception as e:
        code = type(e).__name__
    with lock:
        codes[str(code)] += 1
threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
for t in threads: t.start()
for t in threads: t.join()
print(" ".join("%s:%d" % kv for kv in sorted(codes.items())))
PY
)

run() { # name, extra configuration lines, sessions
  local conf="$WORK.conf"
  printf 'host-name bench.petrel.test\nsmtp-listener 127.0.0.1:%s\nhttp-mgmt-port %s\nlog-file %s/petrel.log\n<spool %s/spool>\n</spool>\n<source 0/0>\n  always-allow-relaying yes\n</source>\n<domain *>\n  smtp-hosts [127.0.0.1]:1\n</domain>\n%b' \
    "$SMTP_PORT" "$MGMT_PORT" "$WORK" "$WORK" "$2" > "$conf"
  start_petrel "$conf"
  local base t0 replies t1 peak
  base=$(awk '/VmHWM/ { print int($2 / 1024) }' "/proc/$PID/status")
  t0=$(date +%s.%N)
  replies=$(timeout 600 python3 -c "$SEND" "$SMTP_PORT" "$3" "$MIB")
  t1=$(date +%s.%N)
  peak=$(awk '/VmHWM/ { print int($2 / 1024) }' "/proc/$PID/status")
  stop_petrel
  rm -f "$conf"
  printf '%-10s %s sessions x %s MiB: replies %s; peak RSS %s MiB (idle %s MiB); %s s\n' \
    "$1" "$3" "$MIB" "$replies" "$peak" "$base" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')"
}

echo "large-messages: $(nproc) cores, $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
run default "" "$CONC"
run budget "max-message-size 64M\n" "$CONC"
run unlimited "max-message-size unlimited\nmax-smtp-in-memory 16G\n" "$(( CONC < 10 ? CONC : 10 ))"
