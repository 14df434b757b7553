#!/usr/bin/env bash
# Runs petrel's whole test suite: unit tests, and integration tests that drive the real
# binary with real peers over loopback. Installs those peers first (swaks with its TLS
# modules, Postfix's smtp-source and smtp-sink, openssl, Python, Chromium and chromedriver),
# checks that each one really works, so a missing piece fails with its own name, and then
# runs every test binary even when an early one fails.
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$PATH:/usr/sbin:/usr/local/sbin"

# Debian packages the tests call, by package name (not by command: swaks is useless for
# STARTTLS without Net::SSLeay and IO::Socket::SSL, which it only recommends).
packages=(
  swaks libnet-ssleay-perl libio-socket-ssl-perl libio-socket-inet6-perl libnet-dns-perl
  libauthen-sasl-perl
  postfix openssl ca-certificates python3 python3-pip
  chromium chromium-driver fonts-dejavu-core fonts-liberation
  clickhouse-server
)
need=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  export DEBIAN_FRONTEND=noninteractive
  # Wait for another apt/dpkg run to finish instead of failing on its lock.
  apt=(apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
  # Postfix is installed only for its test tools: no mail system gets configured.
  echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
  $sudo "${apt[@]}" update -qq
  $sudo "${apt[@]}" install -y -qq "${need[@]}" >/dev/null
fi

# Python peers: aiosmtpd (recording SMTP sink), dkimpy (independent DKIM verifier),
# dnslib (a DNS server on loopback for MX tests), chdb (current ClickHouse in process: every
# statement the ClickHouse Signals store sends to the Debian server, 18.16, replays on it).
if ! python3 -c 'import aiosmtpd, dkim, dnslib, chdb' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check aiosmtpd dkimpy dnslib chdb
fi

./tests/check-tools.sh

cargo test --workspace --all-targets --no-fail-fast "$@"
