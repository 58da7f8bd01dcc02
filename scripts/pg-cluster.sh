#!/usr/bin/env bash
# Prints "<version> <cluster>" of the PostgreSQL cluster that serves port 5432 (the one every test uses),
# so that .ci/run and the fault suite's restart act on the same cluster. Falls back to the highest
# installed version's "main" when pg_lsclusters is not available.
set -euo pipefail
PORT=${1:-5432}
if command -v pg_lsclusters >/dev/null 2>&1; then
  line=$(pg_lsclusters --no-header 2>/dev/null | awk -v port="$PORT" '$3 == port { print $1, $2; exit }')
  if [ -n "$line" ]; then echo "$line"; exit 0; fi
fi
version=$(ls /etc/postgresql 2>/dev/null | grep -E '^[0-9]+$' | sort -n | tail -n1)
[ -n "$version" ] || { echo "no PostgreSQL cluster found" >&2; exit 1; }
echo "$version main"
