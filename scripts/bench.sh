#!/usr/bin/env bash
# Benchmarks (figures, not pass/fail): each result is a ratio against a
# baseline measured in the same run. Needs wrk (installed if missing).
# `scripts/bench.sh access` runs only the access-check figures (issue 5;
# default configuration beside GATEHOUSE_LOG=warn, issue 18),
# `scripts/bench.sh peer` Gatehouse beside node oidc-provider (tests/peers,
# issue 18; needs its node_modules, which scripts/test.sh installs),
# `scripts/bench.sh saml` only SAML verification vs raw RSA (issue 4; needs
# the test venv with pysaml2, which scripts/test.sh creates), `scripts/bench.sh
# vault` only the encryption service's figures (issue 14), `scripts/bench.sh
# kv` only the KV v2 figures (issue 14; GATEHOUSE_BIN picks another binary).
# sinks` only sign-ins with three audit sinks vs none (issue 15).
# tls` only the TLS figures (issue 16).
set -euo pipefail
cd "$(dirname "$0")/.."
for t in wrk oathtool; do
  command -v $t >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $t >/dev/null; }
done
# oha: fixed-rate latency (p99 without the flat-out load generator's own
# scheduling in it); from crates.io, built once.
command -v oha >/dev/null || [ -x "$HOME/.cargo/bin/oha" ] || cargo install oha --locked --quiet
export PATH="$HOME/.cargo/bin:$PATH"
if [ "${1:-}" = "vault" ]; then
  # Transit through HTTP vs /healthz and raw XChaCha20-Poly1305 (issue 14).
  bin=target/x86_64-unknown-linux-gnu/release/gatehouse
  [ -x "$bin" ] || scripts/static-build.sh >/dev/null
  cargo bench --bench raw --locked --no-run 2>/dev/null
  exec python3 scripts/bench_vault.py "$bin" "$(ls -t target/release/deps/raw-* | grep -v '\.d$' | head -1)"
fi
if [ "${1:-}" = "sinks" ]; then
  # Sign-ins with three audit sinks vs none (issue 15); the debug build will
  # do for a ratio, the release build when it is there.
  bin=target/x86_64-unknown-linux-gnu/release/gatehouse
  [ -x "$bin" ] || { cargo build --locked --quiet; bin=target/debug/gatehouse; }
  exec python3 scripts/bench_sinks.py "$bin"
fi
if [ "${1:-}" = "tls" ]; then
  # Debug profile (dependencies, rustls and aws-lc included, are optimised
  # there): the figures are ratios, both sides built alike.
  cargo build --locked --bin gatehouse --bench tls_bare 2>/dev/null
  exec python3 scripts/bench_tls.py target/debug/gatehouse "$(ls -t target/debug/deps/tls_bare-* | grep -v '\.d$' | head -1)"
fi
if [ "${1:-}" = "saml" ]; then
  cargo bench --bench raw --locked --no-run 2>/dev/null
  exec python3 scripts/bench_saml.py "$(ls -t target/release/deps/raw-* | grep -v '\.d$' | head -1)"
fi
bin=target/x86_64-unknown-linux-gnu/release/gatehouse
[ -x "$bin" ] || scripts/static-build.sh >/dev/null
# `scripts/bench.sh kv`: only the KV v2 read and write figures (issue 14).
if [ "${1:-}" = "kv" ]; then
  exec python3 scripts/bench_kv.py "${GATEHOUSE_BIN:-$bin}"
fi
baseline=$(cargo bench --bench raw --locked 2>/dev/null | tail -1)
raw=$(ls -t target/release/deps/raw-* | grep -v '\.d$' | head -1)
if [ "${1:-}" = "peer" ]; then
  exec python3 scripts/bench_peer.py "$bin" "$raw"
fi
if [ "${1:-}" != "access" ]; then
  python3 scripts/bench.py "$bin" "$baseline" "$raw"
fi
python3 scripts/bench_access.py "$bin" "$baseline" "$raw"
[ "${1:-}" = "access" ] || python3 scripts/bench_saml.py "$raw"
[ "${1:-}" = "access" ] || python3 scripts/bench_kv.py "$bin"
