#!/usr/bin/env bash
# File access benchmark (issue 15): real files read out of a restore point
# through the server's download API (curl / Python http.client), its S3
# gateway (rclone) and an NFS export made with `arca mount --nfs`
# (libnfs's nfs-cp), each against the same client reading a restored copy
# on local disk, warm (every figure is the second of two identical runs).
# Then the time to first byte of one file out of a 3 GiB ext4 image
# restore point, cold (page cache dropped, server restarted).
#
#   benches/run.sh files            (or: bash benches/files.sh)
#
# Data (real files of this machine, nothing generated):
#   big.bin     the first 1 GiB of a tar stream of /usr/lib and /usr/share
#   small/      the first 10,000 regular files of at most 64 KiB under
#               /usr/share, with their relative paths
#   disk.img    3 GiB raw ext4 (mkfs.ext4 -d) holding a copy of /usr/share
#               (654 MB of files here)
# Environment: ARCA [$CARGO_TARGET_DIR/release/arca], BENCH_WORK
# [/var/tmp/arca-bench-files], BENCH_SMALL [10000], BENCH_COLD_RUNS [3].
set -euo pipefail
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/root/.cache/arca-target}
ARCA=${ARCA:-$CARGO_TARGET_DIR/release/arca}
W=${BENCH_WORK:-/var/tmp/arca-bench-files}
SMALL=${BENCH_SMALL:-10000}
COLD_RUNS=${BENCH_COLD_RUNS:-3}
export PATH="$PATH:/sbin:/usr/sbin"
# rclone refuses a custom CA bundle with its own transport; loopback needs none.
unset AWS_CA_BUNDLE AWS_PROFILE

load() { cut -d' ' -f1-3 /proc/loadavg; }
now() { date +%s.%N; }
# seconds between two timestamps
dt() { python3 -c "import sys; print(f'{float(sys.argv[2])-float(sys.argv[1]):.3f}')" "$1" "$2"; }
row() { printf '| %s | %s | %s | %s | %s |\n' "$@" | tee -a "$W/table.md"; }

# --- data --------------------------------------------------------------------
mkdir -p "$W"
if [ ! -f "$W/src/DONE" ]; then
    rm -rf "$W/src"
    mkdir -p "$W/src/small"
    echo "making data from /usr/lib and /usr/share"
    tar -cf - /usr/lib /usr/share 2>/dev/null | head -c $((1 << 30)) > "$W/src/big.bin"
    (cd /usr/share && find . -type f -size -65k -print0 | head -z -n "$SMALL" |
        tar --null -T - -cf - | tar -xf - -C "$W/src/small")
    touch "$W/src/DONE"
fi
if [ ! -f "$W/disk.img" ]; then
    echo "making the 3 GiB ext4 image of /usr/share"
    truncate -s 3G "$W/disk.img.tmp"
    mkfs.ext4 -q -F -b 4096 -d /usr/share "$W/disk.img.tmp"
    mv "$W/disk.img.tmp" "$W/disk.img"
fi
NSMALL=$(find "$W/src/small" -type f | wc -l)
SMALL_BYTES=$(du -sb --apparent-size "$W/src/small" | cut -f1)
# The file read cold from the image: a small one deep in the tree.
PROBE_REL=$(cd /usr/share && find . -type f -size -16k -path './doc/*' | sort | sed -n '1s|^\./||p')

# --- server ------------------------------------------------------------------
SRV=
start_server() {
    "$ARCA" server --listen 127.0.0.1:0 --nbd-listen 127.0.0.1:0 --iscsi-listen 127.0.0.1:0 \
        --s3-listen 127.0.0.1:0 --nfs-listen 127.0.0.1:0 \
        --data-dir "$W/data" --source-root "$W" --restore-root "$W" \
        > "$W/server.out" 2> "$W/server.log" &
    SRV=$!
    for _ in $(seq 100); do grep -q "listening on" "$W/server.out" 2>/dev/null && break; sleep 0.2; done
    URL=$(grep -o 'listening on [^ ]*' "$W/server.out" | head -1 | cut -d' ' -f3)
    export ARCA_SERVER=$URL
}
stop_server() { [ -n "$SRV" ] && kill "$SRV" && wait "$SRV" 2>/dev/null || true; SRV=; }
trap stop_server EXIT

rm -rf "$W/data" "$W/restored" "$W/out"
start_server
PW=$(grep -o 'with password .*' "$W/server.out" | cut -d' ' -f3)
ARCA_TOKEN=$(curl -s "$URL/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"username\":\"admin\",\"password\":\"$PW\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
export ARCA_TOKEN
"$ARCA" source add files bench "$W/src" > /dev/null
"$ARCA" source add image img "$W/disk.img" > /dev/null
echo "backing up ($(load))"
"$ARCA" backup now bench --wait > /dev/null
"$ARCA" backup now img --wait > /dev/null
RP=$("$ARCA" --json snapshots --source bench | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
IMG_RP=$("$ARCA" --json snapshots --source img | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
"$ARCA" restore "$RP" --to "$W/restored" --wait > /dev/null
diff -rq "$W/src/small" "$W/restored/small" && cmp "$W/src/big.bin" "$W/restored/big.bin"
LOCAL=$W/restored

S3=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["s3_endpoint"])' < <("$ARCA" --json status))
KEYS=$("$ARCA" s3-key create --description bench)
AK=$(echo "$KEYS" | sed -n 1p)
SK=$(echo "$KEYS" | sed -n 2p)
REMOTE=":s3,provider=Other,endpoint='$S3',access_key_id=$AK,secret_access_key=$SK:bench/$RP"
NFS=$("$ARCA" --json mount --nfs "$RP" --ttl 2h | python3 -c 'import json,sys; print(json.load(sys.stdin)["address"])')
NFS_PATH=${NFS%%\?*}
NFS_OPTS=${NFS#*\?}

: > "$W/table.md"
echo
echo "load before: $(load); $NSMALL small files, $SMALL_BYTES bytes"
echo
row "what" "through Arca" "local restored copy" "Arca / local" "load"
row "---" "---:" "---:" "---:" "---"

# measure NAME UNIT AMOUNT ARCA_CMD LOCAL_CMD: two runs of each, the second counts.
measure() {
    local name=$1 unit=$2 amount=$3 a=$4 l=$5 ta tl t0 t1
    for pass in warm measured; do
        rm -rf "$W/out"; mkdir -p "$W/out"
        t0=$(now); bash -c "$a"; t1=$(now); ta=$(dt "$t0" "$t1")
        rm -rf "$W/out"; mkdir -p "$W/out"
        t0=$(now); bash -c "$l"; t1=$(now); tl=$(dt "$t0" "$t1")
    done
    python3 - "$name" "$unit" "$amount" "$ta" "$tl" "$(load)" >> "$W/table.md" <<'PY'
import sys
name, unit, amount, ta, tl, load = sys.argv[1:]
amount, ta, tl = float(amount), float(ta), float(tl)
f = (lambda t: f"{amount / t / 1e6:,.0f} MB/s ({t:.2f} s)") if unit == "MB" else (lambda t: f"{amount / t:,.0f} files/s ({t:.2f} s)")
print(f"| {name} | {f(ta)} | {f(tl)} | {tl / ta:.2f} | {load} |")
PY
    tail -1 "$W/table.md"
}
export W URL ARCA_TOKEN RP REMOTE NFS_PATH NFS_OPTS LOCAL
BIG=$((1 << 30))

# Download API: curl for the big file; 4 Python workers on kept-alive
# connections for the small ones (local: the same workers reading files).
measure "1 GiB file, download API (curl)" MB $BIG \
    'curl -sf -H "Authorization: Bearer $ARCA_TOKEN" "$URL/api/v1/restore-points/$RP/files?path=big.bin" -o $W/out/big.bin' \
    'cat $LOCAL/big.bin > $W/out/big.bin'
cat > "$W/small.py" <<'PY'
import http.client, os, sys, threading, urllib.parse
mode, url, token, rp, local, out = sys.argv[1:]
names = sorted(os.path.relpath(os.path.join(d, f), local) for d, _, fs in os.walk(local) for f in fs)
host = urllib.parse.urlparse(url).netloc
def api(part):
    c = http.client.HTTPConnection(host)
    for n in part:
        c.request("GET", f"/api/v1/restore-points/{rp}/files?path=" + urllib.parse.quote("small/" + n, safe=""),
                  headers={"Authorization": "Bearer " + token})
        r = c.getresponse(); b = r.read()
        assert r.status == 200, (n, r.status)
def disk(part):
    for n in part:
        with open(os.path.join(local, n), "rb") as f: f.read()
f = api if mode == "api" else disk
th = [threading.Thread(target=f, args=(names[i::4],)) for i in range(4)]
[t.start() for t in th]; [t.join() for t in th]
PY
measure "$NSMALL small files, download API (4 clients)" files "$NSMALL" \
    'python3 $W/small.py api $URL $ARCA_TOKEN $RP $LOCAL/small $W/out' \
    'python3 $W/small.py disk $URL $ARCA_TOKEN $RP $LOCAL/small $W/out'

# S3 gateway: rclone copy (4 transfers) against rclone copying the local copy.
measure "1 GiB file, S3 (rclone copy)" MB $BIG \
    'rclone copy --transfers 4 --ignore-checksum "$REMOTE/big.bin" $W/out' \
    'rclone copy --transfers 4 --ignore-checksum $LOCAL/big.bin $W/out'
measure "$NSMALL small files, S3 (rclone copy)" files "$NSMALL" \
    'rclone copy --transfers 4 --ignore-checksum "$REMOTE/small" $W/out' \
    'rclone copy --transfers 4 --ignore-checksum $LOCAL/small $W/out'

# NFS: nfs-cp against cp, one process per file for the small ones (4 at once).
measure "1 GiB file, NFS (nfs-cp)" MB $BIG \
    'nfs-cp "$NFS_PATH/big.bin?$NFS_OPTS" $W/out/big.bin > /dev/null' \
    'cp $LOCAL/big.bin $W/out/big.bin'
measure "$NSMALL small files, NFS (nfs-cp, 4 at once)" files "$NSMALL" \
    'cd $LOCAL/small && find . -type f -printf "%P\n" | xargs -d "\n" -P 4 -I{} sh -c "nfs-cp \"$NFS_PATH/small/\$1?$NFS_OPTS\" $W/out/x\$\$ > /dev/null" _ {}' \
    'cd $LOCAL/small && find . -type f -printf "%P\n" | xargs -d "\n" -P 4 -I{} sh -c "cp \"\$1\" $W/out/x\$\$" _ {}'
rm -rf "$W/out"

# --- cold time to first byte out of the image --------------------------------
echo
echo "| cold run | time to first byte of fs/$PROBE_REL (download API, fresh server) | nfs-cat of the same file (export made after the download, caches dropped again) | load |" | tee -a "$W/table.md"
echo "|---|---:|---:|---|" | tee -a "$W/table.md"
WANT=$(sha256sum "/usr/share/$PROBE_REL" | cut -d' ' -f1)
Q=$(python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "fs/$PROBE_REL")
for i in $(seq "$COLD_RUNS"); do
    stop_server
    sync; echo 3 > /proc/sys/vm/drop_caches
    start_server
    # The first request opens the datastore's restore point, the image's
    # partition table and its ext4 metadata: everything is cold.
    T=$(curl -sf -o "$W/probe" -w '%{time_starttransfer}' -H "Authorization: Bearer $ARCA_TOKEN" \
        "$URL/api/v1/restore-points/$IMG_RP/files?path=$Q")
    [ "$(sha256sum "$W/probe" | cut -d' ' -f1)" = "$WANT" ] || { echo "probe differs" >&2; exit 1; }
    NFSI=$("$ARCA" --json mount --nfs "$IMG_RP" --ttl 1h | python3 -c 'import json,sys; print(json.load(sys.stdin)["address"])')
    sync; echo 3 > /proc/sys/vm/drop_caches
    t0=$(now); nfs-cat "${NFSI%%\?*}/fs/$PROBE_REL?${NFSI#*\?}" > /dev/null; t1=$(now)
    printf '| %s | %.3f s | %s s | %s |\n' "$i" "$T" "$(dt "$t0" "$t1")" "$(load)" | tee -a "$W/table.md"
done
echo
echo "table in $W/table.md"
