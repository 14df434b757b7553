#!/usr/bin/env bash
# Checks that every external peer the tests use works, not merely that it is installed:
# swaks can STARTTLS, smtp-source reaches smtp-sink, chromium renders a page headless,
# chromedriver starts, openssl makes a key, and Python has its test modules. Each failure is
# named, so a missing package shows up here rather than as a confusing test failure later.
# Loopback only; every process started here is ended by PID.
set -uo pipefail
export PATH="$PATH:/usr/sbin:/usr/local/sbin"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
failed=()
ok() { echo "  ok    $1"; }
bad() { echo "  FAIL  $1: $2"; failed+=("$1"); }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Waits up to 10 s for something to listen on 127.0.0.1:$1.
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

echo "checking the test peers"

# openssl: a key and a self-signed certificate for the STARTTLS check.
if openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" \
  -days 1 -subj /CN=localhost >/dev/null 2>&1; then ok openssl; else bad openssl "cannot make a certificate"; fi

# Python and its peer modules.
if python3 -c 'import aiosmtpd, dkim, dnslib, ssl' 2>"$work/py.err"; then ok "python3 (aiosmtpd, dkimpy, dnslib)"
else bad python3 "$(tail -n 1 "$work/py.err")"; fi

# ClickHouse: Debian's server (the Signals store tests start their own on a free port) and
# chDB (current ClickHouse in process, replaying the store's statements).
if [ -x "${PETREL_CLICKHOUSE_SERVER:-/usr/sbin/clickhouse-server}" ]; then ok clickhouse-server
else bad clickhouse-server "not installed (Debian package clickhouse-server)"; fi
if python3 -c 'import chdb; chdb.query("SELECT 1")' >/dev/null 2>"$work/chdb.err"; then ok chdb
else bad chdb "$(tail -n 1 "$work/chdb.err")"; fi

# smtp-sink and smtp-source: one message over loopback.
port=$(free_port)
sink_user=(); [ "$(id -u)" = 0 ] && sink_user=(-u nobody)
smtp-sink "${sink_user[@]}" -c "127.0.0.1:$port" 10 >"$work/sink.out" 2>&1 &
pids+=($!)
wait_port "$port"
if timeout 20 smtp-source -m 1 -c "127.0.0.1:$port" >"$work/source.out" 2>&1; then ok "smtp-source → smtp-sink"
else bad smtp-source "$(tail -n 1 "$work/source.out")"; fi

# swaks with STARTTLS against a Python SMTP server that offers it.
port=$(free_port)
cat >"$work/tls_server.py" <<'PY'
import ssl, sys
from aiosmtpd.controller import Controller
class H:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"
ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
c = Controller(H(), hostname="127.0.0.1", port=int(sys.argv[1]), tls_context=ctx, require_starttls=True)
c.start()
import time
time.sleep(60)
PY
python3 "$work/tls_server.py" "$port" "$work/cert.pem" "$work/key.pem" >/dev/null 2>&1 &
pids+=($!)
wait_port "$port"
if timeout 30 swaks --server 127.0.0.1 --port "$port" --tls --to a@example.test --from b@example.test \
  >"$work/swaks.out" 2>&1 && grep -q "TLS started" "$work/swaks.out"; then ok "swaks STARTTLS"
else bad "swaks STARTTLS" "$(grep -m1 -E '\*\*\*|TLS' "$work/swaks.out" || tail -n 1 "$work/swaks.out")"; fi

# chromium renders a page headless; chromedriver starts and answers /status.
echo '<html><body><p id="x">petrel</p></body></html>' >"$work/page.html"
if timeout 60 chromium --headless=new --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$work/profile" --dump-dom "file://$work/page.html" 2>/dev/null | grep -q petrel; then ok chromium
else bad chromium "cannot render a page headless"; fi
port=$(free_port)
chromedriver --port="$port" >/dev/null 2>&1 &
pids+=($!)
driver=no
for _ in $(seq 50); do
  if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/status', timeout=1)" 2>/dev/null; then driver=yes; break; fi
  sleep 0.2
done
if [ "$driver" = yes ]; then ok chromedriver; else bad chromedriver "did not answer /status"; fi

if [ ${#failed[@]} -gt 0 ]; then
  echo "test peers not working: ${failed[*]}" >&2
  exit 1
fi
