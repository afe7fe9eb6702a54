#!/usr/bin/env bash
# Work on the UI without rebuilding: start the built `arca server` with
# ARCA_UI_DIR pointing at web/ui (files served from disk, read on each
# request) and run UI scenarios against it.
#   tests/ui/dev.sh SCENARIO...     e.g. tests/ui/dev.sh shell files
# Uses $CARGO_TARGET_DIR/release/arca (build it first). The tests proper
# (cargo test --test ui) always use the assets embedded in the binary.
set -euo pipefail
cd "$(dirname "$0")"
ui="$(cd ../../web/ui && pwd)"
arca="${CARGO_TARGET_DIR:-$HOME/.cache/arca-target}/release/arca"
[ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund --loglevel=error
tmp="$(mktemp -d)"
mkdir -p "$tmp/work"
ARCA_UI_DIR="$ui" "$arca" server --listen 127.0.0.1:0 --nbd-listen 127.0.0.1:0 --iscsi-listen 127.0.0.1:0 \
    --nfs-listen 127.0.0.1:0 --s3-listen 127.0.0.1:0 --data-dir "$tmp/data" \
    --source-root "$tmp" --restore-root "$tmp" >"$tmp/out" 2>"$tmp/log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do grep -q 'passphrase is in' "$tmp/out" 2>/dev/null && break; sleep 0.1; done
url="$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$tmp/out" | head -1)"
pw="$(sed -n 's/.*with password \([^ ]*\).*/\1/p' "$tmp/out" | head -1)"
echo "server $url (admin / $pw), log $tmp/log"
for s in "$@"; do
    ARCA_URL="$url" ARCA_USER=admin ARCA_PASSWORD="$pw" ARCA_WORK="$tmp/work" ARTIFACTS="artifacts/$s" node "$s.mjs"
done
