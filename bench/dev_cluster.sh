#!/usr/bin/env bash
# Measures what issue 3 asks for: a cold `dev-cluster up` (the Kubernetes build included), a warm `up`,
# and the whole test suite. Run from the repository root after `make install`:
#   bench/dev_cluster.sh            # warm up + suite (uses the normal cache)
#   bench/dev_cluster.sh --cold     # also a cold up into an empty, throw-away cache (about 8 minutes more)
set -euo pipefail
cd "$(dirname "$0")/.."
GG=.venv/bin/gitopsguard
work=$(mktemp -d)
trap '$GG dev-cluster --state-dir "$work/state" down >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

seconds() { local start=$1; echo "$(( $(date +%s%N) / 1000000 - start ))" | awk '{printf "%.1f", $1/1000}'; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

if [[ "${1:-}" == "--cold" ]]; then
  t=$(now_ms)
  $GG dev-cluster --state-dir "$work/cold-state" --cache-dir "$work/cold-cache" up >/dev/null
  echo "cold dev-cluster up (build included): $(seconds "$t") s"
  $GG dev-cluster --state-dir "$work/cold-state" down >/dev/null
fi

$GG dev-cluster --state-dir "$work/state" up >/dev/null 2>&1  # make sure the normal cache is warm
$GG dev-cluster --state-dir "$work/state" down >/dev/null
t=$(now_ms)
$GG dev-cluster --state-dir "$work/state" up >/dev/null 2>&1
echo "warm dev-cluster up: $(seconds "$t") s"
$GG dev-cluster --state-dir "$work/state" down >/dev/null

t=$(now_ms)
.venv/bin/python -m pytest -q -p no:cacheprovider >"$work/suite.log" 2>&1 || { tail -30 "$work/suite.log"; exit 1; }
echo "whole suite ($(tail -1 "$work/suite.log")): $(seconds "$t") s"
