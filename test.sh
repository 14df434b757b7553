#!/usr/bin/env bash
# Runs petrel's whole test suite: unit tests, and integration tests that drive the real
# binary with real peers over loopback. Installs those peers (swaks, Postfix's smtp-source
# and smtp-sink, openssl, Python, Chromium and chromedriver) when they are missing, so it
# works on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$PATH:/usr/sbin:/usr/local/sbin"

need=()
command -v swaks >/dev/null || need+=(swaks)
command -v smtp-source >/dev/null || need+=(postfix)
command -v openssl >/dev/null || need+=(openssl)
command -v python3 >/dev/null || need+=(python3)
# A real browser for the engagement-tracking test, driven over WebDriver.
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  export DEBIAN_FRONTEND=noninteractive
  # Postfix is installed only for its test tools: no mail system gets configured.
  echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Python peers: aiosmtpd (recording SMTP sink), dkimpy (independent DKIM verifier),
# dnslib (a DNS server on loopback for MX tests).
if ! python3 -c 'import aiosmtpd, dkim, dnslib' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check aiosmtpd dkimpy dnslib
fi

cargo test --workspace --all-targets "$@"
