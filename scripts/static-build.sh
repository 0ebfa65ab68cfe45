#!/usr/bin/env bash
# Builds the release executable statically linked (static-pie, glibc) and
# checks that it is: `ldd` must not list shared libraries.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-gnu
# Without the getrandom flag a static binary reads /dev/urandom, which is
# absent in minimal containers.
RUSTFLAGS='-C target-feature=+crt-static --cfg getrandom_backend="linux_getrandom"' \
  cargo build --release --locked --target "$target"
bin="target/$target/release/gatehouse"
out="$(ldd "$bin" 2>&1 || true)"
if ! grep -Eq "not a dynamic executable|statically linked" <<<"$out"; then
  echo "FAIL: $bin is dynamically linked:" >&2
  echo "$out" >&2
  exit 1
fi
size=$(stat -c %s "$bin")
echo "static build OK: $bin ($((size / 1024 / 1024)) MiB); ldd: $out"
