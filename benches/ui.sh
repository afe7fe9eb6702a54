#!/usr/bin/env bash
# Web UI benchmark (issue 16): time to interactive of the dashboard, of
# the restore-point list with 100k restore points, and of a restore point's
# 100k-entry directory, on loopback, in headless Chromium; and the size of
# the embedded assets (raw and gzip, as served).
#   benches/run.sh ui     (or bash benches/ui.sh)
# Environment: BENCH_WORK [/var/tmp/arca-bench], BENCH_UI_RPS [100000],
# BENCH_UI_ENTRIES [100000], BENCH_UI_RUNS [6: the first cold, the rest
# warm], CARGO_TARGET_DIR [/root/.cache/arca-target], BENCH_BUILD [1].
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/root/.cache/arca-target}
WORK=${BENCH_WORK:-/var/tmp/arca-bench}/ui
RPS=${BENCH_UI_RPS:-100000}
ENTRIES=${BENCH_UI_ENTRIES:-100000}
RUNS=${BENCH_UI_RUNS:-6}
if [ "${BENCH_BUILD:-1}" = 1 ]; then
    (cd "$ROOT" && cargo build --release --workspace --bins)
fi
BIN=$CARGO_TARGET_DIR/release
[ -d "$ROOT/tests/ui/node_modules/playwright-core" ] ||
    (cd "$ROOT/tests/ui" && npm ci --no-audit --no-fund --loglevel=error)

rm -rf "$WORK"
mkdir -p "$WORK/wide"
echo "== a directory of $ENTRIES files" >&2
python3 - "$WORK/wide" "$ENTRIES" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with open(os.path.join(d, f"file-{i:06d}.txt"), "w") as f:
        f.write(f"{i}\n")
PY

start_server() {
    "$BIN/arca" server --listen 127.0.0.1:0 --nbd-listen 127.0.0.1:0 --iscsi-listen 127.0.0.1:0 \
        --nfs-listen 127.0.0.1:0 --s3-listen 127.0.0.1:0 --data-dir "$WORK/data" \
        --source-root "$WORK" --restore-root "$WORK" >"$WORK/out" 2>"$WORK/log" &
    PID=$!
    for _ in $(seq 300); do grep -q 'passphrase is in\|listening on' "$WORK/out" 2>/dev/null && break; sleep 0.1; done
    sleep 0.5
    URL=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$WORK/out" | head -1)
}
api() { # METHOD PATH [BODY]
    curl -sf -X "$1" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        ${3:+-d "$3"} "$URL/api/v1$2"
}
trap 'kill $PID 2>/dev/null || true' EXIT
start_server
PW=$(sed -n 's/.*with password \([^ ]*\).*/\1/p' "$WORK/out" | head -1)
TOKEN=$(curl -sf -H 'Content-Type: application/json' -d "{\"username\":\"admin\",\"password\":\"$PW\"}" \
    "$URL/api/v1/auth/login" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
echo "== backup of the wide directory, a source for $RPS seeded restore points" >&2
SRC=$(api POST /sources "{\"name\":\"wide\",\"kind\":\"files\",\"path\":\"$WORK/wide\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
api POST /sources "{\"name\":\"many\",\"kind\":\"files\",\"path\":\"$WORK/wide\"}" >/dev/null
TASK=$(api POST "/sources/$SRC/backup" '{}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
for _ in $(seq 600); do
    st=$(api GET "/tasks/$TASK" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
    [ "$st" = succeeded ] && break
    [ "$st" = failed ] && { echo "backup failed" >&2; exit 1; }
    sleep 1
done
RP=$(api GET "/restore-points?source=wide" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
kill "$PID"; wait "$PID" 2>/dev/null || true
"$BIN/arca-ui-seed" "$WORK/data/catalog.db" many "$RPS" >&2
start_server

echo "== time to interactive ($RUNS loads each: 1 cold, $((RUNS - 1)) warm)" >&2
node "$HERE/ui/tti.mjs" "$URL" admin "$PW" "$RUNS" "/" "/restore-points" "/restore-points/$RP?path=/" \
    >"$WORK/tti.jsonl"
echo
echo "| page | data | cold (ms) | warm median (ms) | requests (cold) | rows shown |"
echo "|---|---|---|---|---|---|"
python3 - "$WORK/tti.jsonl" "$RPS" "$ENTRIES" <<'PY'
import json, sys
rps, entries = sys.argv[2], sys.argv[3]
names = {"/": ("dashboard", f"{int(rps)+1} restore points"), "/restore-points": ("restore-point list", f"{int(rps)+1} restore points")}
for line in open(sys.argv[1]):
    r = json.loads(line)
    name, data = names.get(r["hash"], ("directory of a restore point", f"{entries} entries"))
    print(f"| {name} | {data} | {r['cold_ms']} | {r['warm_median_ms']} | {r['requests_cold']} | {r['rows_shown']} |")
PY
echo
echo "| embedded assets | files | raw | gzip (as served) |"
echo "|---|---|---|---|"
raw=0; gz=0; n=0
while IFS= read -r f; do
    rel=${f#"$ROOT/web/ui/"}
    path=/ui/$rel; [ "$rel" = index.html ] && path=/
    r=$(curl -sf "$URL$path" | wc -c)
    g=$(curl -sf -H 'Accept-Encoding: gzip' "$URL$path" | wc -c)
    raw=$((raw + r)); gz=$((gz + g)); n=$((n + 1))
done < <(find "$ROOT/web/ui" -type f | sort)
echo "| all | $n | $((raw / 1024)) KiB | $((gz / 1024)) KiB |"
