#!/usr/bin/env bash
# Downloads of a remote node's restore point against the server's own
# (see 2026-12-04-remote.md): the same 1 GiB file and 10k files of 4 KiB
# backed up on the server's node ("here") and on a node in its own
# process ("there"), downloaded through GET /api/v1/restore-points/{id}/
# files, warm cache, everything on loopback.
#   ARCA=path/to/arca  BENCH_DIR=/tmp/remote-bench  ./2026-12-04-remote.sh
set -euo pipefail
ARCA=${ARCA:-$HOME/.cache/arca-target/release/arca}
D=${BENCH_DIR:-/tmp/remote-bench}
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
NODE=
trap 'kill $SRV ${NODE:-}' EXIT
for _ in $(seq 50); do grep -q "password" "$D/server.out" 2>/dev/null && break; sleep 0.2; done
URL=$(grep -o 'listening on [^ ]*' "$D/server.out" | head -1 | cut -d' ' -f3)
PW=$(grep -o 'with password .*' "$D/server.out" | cut -d' ' -f3)
export ARCA_SERVER=$URL
export ARCA_TOKEN=$(curl -s "$URL/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"username\":\"admin\",\"password\":\"$PW\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
api() { curl -s -H "Authorization: Bearer $ARCA_TOKEN" -H 'content-type: application/json' "$@"; }
NT=$(api "$URL/api/v1/nodes" -d '{"name":"far","max_tasks":2}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
ARCA_TOKEN=$NT "$ARCA" node --server "$URL" --data-dir "$D/far" --nbd-listen 127.0.0.1:0 \
    --iscsi-listen 127.0.0.1:0 > "$D/node.out" 2> "$D/node.log" &
NODE=$!
for _ in $(seq 50); do grep -q "registered" "$D/node.out" 2>/dev/null && break; sleep 0.2; done
"$ARCA" node set far --source-root "$D" > /dev/null
"$ARCA" source add files here "$D/src" > /dev/null
api "$URL/api/v1/sources" -d "{\"name\":\"there\",\"kind\":\"files\",\"path\":\"$D/src\",\"node\":\"far\"}" > /dev/null
"$ARCA" backup now here --wait > /dev/null
"$ARCA" backup now there --wait > /dev/null
rp() { "$ARCA" --json snapshots | python3 -c "import json,sys; print([r['id'] for r in json.load(sys.stdin) if r['source_name']=='$1'][0])"; }
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
for src in here there; do
    F="$URL/api/v1/restore-points/$(rp $src)/files"
    for pass in warm measure measure; do
        t0=$(date +%s.%N)
        api "$F?path=big.bin" -o /dev/null
        t1=$(date +%s.%N)
        api "$F?path=small&format=tar" -o /dev/null
        t2=$(date +%s.%N)
        [ $pass = measure ] && python3 -c "import sys; a,b,c=map(float,sys.argv[2:]); print(f'{sys.argv[1]}: 1 GiB file {1024/(b-a):.0f} MiB/s ({b-a:.2f} s); 10k files as tar {c-b:.2f} s')" $src $t0 $t1 $t2
    done
    echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
done
