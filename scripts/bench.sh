#!/usr/bin/env bash
# Benchmarks (figures, not pass/fail): each result is a ratio against a
# baseline measured in the same run. Needs wrk (installed if missing).
# `scripts/bench.sh access` runs only the access-check figures (issue 5).
set -euo pipefail
cd "$(dirname "$0")/.."
for t in wrk oathtool; do
  command -v $t >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $t >/dev/null; }
done
bin=target/x86_64-unknown-linux-gnu/release/gatehouse
[ -x "$bin" ] || scripts/static-build.sh >/dev/null
baseline=$(cargo bench --bench raw --locked 2>/dev/null | tail -1)
raw=$(ls -t target/release/deps/raw-* | grep -v '\.d$' | head -1)
if [ "${1:-}" != "access" ]; then
  python3 scripts/bench.py "$bin" "$baseline" "$raw"
fi
python3 scripts/bench_access.py "$bin" "$baseline" "$raw"
