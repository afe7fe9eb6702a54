#!/usr/bin/env bash
# Download API benchmark (see 2026-12-03-dl.md): a 1 GiB file and 10k
# small files through GET /api/v1/restore-points/{id}/files, against
# reading the same files from local disk, warm cache.
#   ARCA=path/to/arca  BENCH_DIR=/tmp/dl-bench  ./2026-12-03-dl.sh
set -euo pipefail
ARCA=${ARCA:-$HOME/.cache/arca-target/release/arca}
D=${BENCH_DIR:-/tmp/dl-bench}
rm -rf "$D"; mkdir -p "$D/src/small"
head -c $((1 << 30)) /dev/urandom > "$D/src/big.bin"
python3 - "$D/src/small" <<'PY'
import os, sys
for i in range(10000):
    with open(os.path.join(sys.argv[1], f"f{i:05}"), "wb") as f:
        f.write(os.urandom(4096))
PY
"$ARCA" server --listen 127.0.0.1:0 --nbd-listen 127.0.0.1:0 --iscsi-listen 127.0.0.1:0 \
    --data-dir "$D/data" --source-root "$D" --restore-root "$D" > "$D/server.out" 2> "$D/server.log" &
SRV=$!
trap 'kill $SRV' EXIT
for _ in $(seq 50); do grep -q "password" "$D/server.out" 2>/dev/null && break; sleep 0.2; done
URL=$(grep -o 'listening on [^ ]*' "$D/server.out" | head -1 | cut -d' ' -f3)
PW=$(grep -o 'with password .*' "$D/server.out" | cut -d' ' -f3)
export ARCA_SERVER=$URL
export ARCA_TOKEN=$(curl -s "$URL/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"username\":\"admin\",\"password\":\"$PW\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
"$ARCA" source add files bench "$D/src" > /dev/null
"$ARCA" backup now bench --wait > /dev/null
RP=$("$ARCA" --json snapshots | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
F="$URL/api/v1/restore-points/$RP/files"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
# Warm both sides once, then measure.
for pass in warm measure; do
    t0=$(date +%s.%N)
    curl -s -H "Authorization: Bearer $ARCA_TOKEN" "$F?path=big.bin" -o /dev/null
    t1=$(date +%s.%N)
    cat "$D/src/big.bin" > /dev/null
    t2=$(date +%s.%N)
    [ $pass = measure ] && python3 -c "import sys; a,b,c=map(float,sys.argv[1:]); print(f'1 GiB file: API {1024/(b-a):.0f} MiB/s ({b-a:.2f} s), local disk {1024/(c-b):.0f} MiB/s ({c-b:.2f} s)')" $t0 $t1 $t2
done
python3 - "$URL" "$ARCA_TOKEN" "$RP" "$D/src/small" <<'PY'
import http.client, os, sys, time, threading, urllib.parse
url, token, rp, local = sys.argv[1:]
host = urllib.parse.urlparse(url).netloc
names = sorted(os.listdir(local))
def api(part):
    c = http.client.HTTPConnection(host)  # one keep-alive connection per worker
    for n in part:
        c.request("GET", f"/api/v1/restore-points/{rp}/files?path=small/{n}", headers={"Authorization": "Bearer " + token})
        r = c.getresponse(); b = r.read()
        assert r.status == 200 and len(b) == 4096, (r.status, len(b))
def disk(part):
    for n in part:
        with open(os.path.join(local, n), "rb") as f: f.read()
for what, f in [("API", api), ("local disk", disk)]:
    for workers in (1, 4):
        parts = [names[i::workers] for i in range(workers)]
        for rnd in ("warm", "measure"):
            t = time.time()
            th = [threading.Thread(target=f, args=(p,)) for p in parts]
            [x.start() for x in th]; [x.join() for x in th]
            dt = time.time() - t
        print(f"10k files of 4 KiB, {what}, {workers} parallel: {len(names)/dt:.0f} files/s ({dt:.2f} s)")
PY
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
