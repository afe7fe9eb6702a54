#!/usr/bin/env bash
# API under load: a real `arca server` with BENCH_RESTORE_POINTS (default
# 100 000) restore points in its catalog, loaded by wrk (Debian package,
# installed here) on loopback. Prints req/s and latency percentiles per
# endpoint. wrk drives the server as fast as it answers; the p99 at that
# saturation bounds the p99 at any lower rate such as 500 req/s.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/root/.cache/arca-target}"
N=${BENCH_RESTORE_POINTS:-100000}
DUR=${BENCH_API_SECONDS:-15}
CONN=${BENCH_API_CONNECTIONS:-16}
command -v wrk >/dev/null || { apt-get install -y -qq wrk || { sleep 5; apt-get install -y -qq wrk; }; }
cargo build --release --quiet --manifest-path "$root/Cargo.toml" --workspace --bin arca --bin arca-control-scale
BIN=$CARGO_TARGET_DIR/release
work=$(mktemp -d /var/tmp/arca-api-bench.XXXX)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$work"' EXIT
start() {
    "$BIN/arca" server --data-dir "$work/data" --listen 127.0.0.1:0 >"$work/log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do
        url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$work/log" | head -1)
        [ -n "$url" ] && return 0
        sleep 0.1
    done
    cat "$work/log"; exit 1
}
start; kill $pid; wait $pid 2>/dev/null || true; pid=
"$BIN/arca-control-scale" --seed-catalog "$work/data/catalog.db" --restore-points "$N"
start
token=$(URL="$url" PW="$(cat "$work/data/initial-admin-password")" python3 -c '
import json, os, urllib.request
req = urllib.request.Request(os.environ["URL"] + "/api/v1/auth/login",
    data=json.dumps({"username": "admin", "password": os.environ["PW"].strip()}).encode(),
    headers={"content-type": "application/json"})
print(json.load(urllib.request.urlopen(req))["token"])')
echo
echo "API under load: $N restore points, wrk -t2 -c$CONN -d${DUR}s on loopback, 2 cores shared by server and load"
echo
echo "| endpoint | req/s | p50 ms | p90 ms | p99 ms |"
echo "|---|---:|---:|---:|---:|"
for ep in "/api/v1/restore-points?limit=50" "/api/v1/restore-points?source=bench-src-7&limit=50" \
          "/api/v1/restore-points?since=0&limit=100&offset=5000" "/api/v1/tasks/42" "/api/v1/tasks?state=queued&limit=20" "/healthz"; do
    out=$(wrk -t2 -c"$CONN" -d"${DUR}s" --latency -H "Authorization: Bearer $token" "$url$ep")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    pct() { awk -v p="$1" '$1 == p {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; printf "%.2f", v}' <<<"$out"; }
    non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
    [ -n "$non2xx" ] && echo "WARNING: $ep answered $non2xx non-2xx responses" >&2
    echo "| \`$ep\` | $rps | $(pct 50%) | $(pct 90%) | $(pct 99%) |"
done
