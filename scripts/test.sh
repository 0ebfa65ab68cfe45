#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine: installs what the tests
# need if missing (Chromium, fonts, Node.js and playwright-core for the browser
# test, openssl and curl for the TLS test, oathtool as the authenticator app,
# nginx in front of /auth/verify, rsyslog with its GnuTLS driver as the
# syslog receiver of the audit sinks (UDP, TCP, TLS), pebble as the ACME CA,
# hvac (in the venv) as the Vault client,
# a Python venv with aiosmtpd as the SMTP server, pysaml2 (signing with
# Debian's xmlsec1) as the SAML IdP and lxml (libxml2) as the reference C14N, node oidc-provider as the OpenID provider),
# then runs formatting, lints, the layering check, every test, and the static
# build check.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
apt_need=()
[ -x /usr/bin/chromium ] || apt_need+=(chromium)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || apt_need+=(fonts-dejavu-core)
command -v node >/dev/null || apt_need+=(nodejs)
command -v npm >/dev/null || apt_need+=(npm)
command -v openssl >/dev/null || apt_need+=(openssl)
command -v curl >/dev/null || apt_need+=(curl)
command -v oathtool >/dev/null || apt_need+=(oathtool)
[ -x /usr/sbin/nginx ] || apt_need+=(nginx)
[ -x /usr/bin/xmlsec1 ] || apt_need+=(xmlsec1)
[ -x /usr/sbin/rsyslogd ] || apt_need+=(rsyslog)
[ -e /usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so ] || apt_need+=(rsyslog-gnutls)
[ -x /usr/bin/pebble ] && [ -x /usr/bin/pebble-challtestsrv ] || apt_need+=(pebble)
if [ ${#apt_need[@]} -gt 0 ]; then
  echo "== installing: ${apt_need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${apt_need[@]}" >/dev/null
fi
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import aiosmtpd, saml2, lxml, hvac" 2>/dev/null; then
  echo "== python venv (aiosmtpd, the SMTP peer; pysaml2, the SAML IdP; lxml, the reference C14N; hvac, the Vault client)"
  python3 -m venv .venv 2>/dev/null || {
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv .venv
  }
  .venv/bin/pip install -q aiosmtpd pysaml2 lxml hvac==2.4.0
fi
if [ ! -d tests/peers/node_modules/oidc-provider ]; then
  echo "== npm ci (tests/peers: oidc-provider, jose)"
  (cd tests/peers && npm ci --no-audit --no-fund --silent)
fi
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  echo "== npm ci (tests/browser)"
  (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
fi

echo "== rustfmt";  cargo fmt --check
echo "== clippy";   cargo clippy --all-targets --locked -- -D warnings
echo "== layers";   scripts/check-layers.sh
echo "== tests";    cargo test --locked
echo "== static build"; scripts/static-build.sh
