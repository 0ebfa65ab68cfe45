#!/usr/bin/env bash
# Keeps dependencies pointing down (DESIGN.md): redb only in src/store,
# actix-web and askama only in src/web and src/app.rs; no store transaction
# or table under src/web.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
bad=$(grep -rlE '\bredb::|use redb\b' src --include=*.rs | grep -v '^src/store/' || true)
[ -n "$bad" ] && { echo "redb used outside src/store: $bad"; fail=1; }
bad=$(grep -rlE '\bactix_web::|use actix_web\b|\baskama::|use askama\b' src --include=*.rs \
      | grep -vE '^src/web/|^src/app\.rs$' || true)
[ -n "$bad" ] && { echo "actix-web/askama used outside src/web and src/app.rs: $bad"; fail=1; }
# web never opens a store transaction nor names a table (DESIGN.md): it calls
# one domain operation, which opens its own (readyz uses Store::ping).
bad=$(grep -rnE 'store\.(read|write)\(\)|\bWriteTx\b|\bReadTx\b|store::Reader\b|\.begin_read\b|\.begin_write\b|\bbegin_(read|write)\(|\bTable::' \
      src/web --include=*.rs || true)
[ -n "$bad" ] && { echo "store transaction or table opened under src/web: $bad"; fail=1; }
bad=$(grep -rlE 'SystemTime::now' src --include=*.rs | grep -v '^src/clock\.rs$' || true)
[ -n "$bad" ] && { echo "wall clock read outside src/clock.rs: $bad"; fail=1; }
bad=$(grep -rLE '^//!' src --include=*.rs || true)
[ -n "$bad" ] && { echo "modules without a //! line: $bad"; fail=1; }
[ $fail -eq 0 ] && echo "layers OK"
exit $fail
