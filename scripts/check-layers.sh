#!/usr/bin/env bash
# Keeps dependencies pointing down (DESIGN.md): redb only in src/store,
# actix-web and askama only in src/web and src/app.rs, no store transaction
# or table under src/web, no import cycle between domain modules (checked
# with tsort), leaves importing only leaves.
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

# No import cycle between domain modules. The graph: an edge A -> B for every
# `crate::B` named in non-comment code of a file under src/A (or src/A.rs),
# unit-test modules (from a line `mod tests`) left out. The top of the tree
# (the composition root `service`, and `app`, `cli`, `control`, `ops`, `web`)
# may import anything and is left out; the leaves may import only leaves.
top='service app cli control ops web main lib'
leaves='error clock crypto config store telemetry'
graph=$(for f in $(find src -name '*.rs' | sort); do
  m=$(echo "$f" | sed -E 's#^src/([a-z_0-9]+)(/.*|\.rs)$#\1#')
  case " $top " in *" $m "*) continue ;; esac
  awk '/^mod tests/{exit} {print}' "$f" | grep -vE '^\s*//' \
    | grep -ohE 'crate::[a-z_0-9]+' | sed 's/^crate:://' | sort -u \
    | while read -r d; do
        case " $top $m " in *" $d "*) continue ;; esac
        echo "$m $d"
      done
done | sort -u)
for l in $leaves; do
  bad=$(echo "$graph" | awk -v l="$l" -v leaves=" $leaves " \
        '$1 == l && index(leaves, " " $2 " ") == 0 {print $2}' | tr '\n' ' ')
  [ -n "$bad" ] && { echo "leaf module $l imports domain modules: $bad"; fail=1; }
done
if ! out=$(echo "$graph" | tsort 2>&1 >/dev/null) || [ -n "$out" ]; then
  echo "import cycle between domain modules (edges A B mean A uses crate::B):"
  echo "$out"
  fail=1
fi
[ $fail -eq 0 ] && echo "layers OK"
exit $fail
