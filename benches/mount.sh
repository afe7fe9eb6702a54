#!/usr/bin/env bash
# Time from `arca mount` to the first byte read: an `arca server` with an
# image source, one backup, then N times: `arca mount` (API call, the node
# opens the restore point, polls until active), `qemu-io -c 'read 0 4k'`
# on the address it printed, and `arca unmount`.
#
#   MOUNT_BENCH_MIB   image size in MiB (default 1024)
#   MOUNT_BENCH_RUNS  mounts to time (default 10)
#
# Prints a markdown table (min, median, max in ms; read-only and writable).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/arca-target}"
mib=${MOUNT_BENCH_MIB:-1024}
runs=${MOUNT_BENCH_RUNS:-10}
cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p arca-tools
arca="$CARGO_TARGET_DIR/release/arca"
work=$(mktemp -d)
srv=""
cleanup() { [ -n "$srv" ] && kill "$srv" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

head -c $((mib << 20)) /dev/urandom >"$work/disk.raw"
"$arca" server --listen 127.0.0.1:0 --nbd-listen 127.0.0.1:0 --iscsi-listen off --nfs-listen off \
    --data-dir "$work/data" >"$work/server.log" 2>&1 &
srv=$!
for _ in $(seq 100); do grep -q "listening on" "$work/server.log" 2>/dev/null && break; sleep 0.1; done
export ARCA_SERVER=$(sed -n 's/.*listening on //p' "$work/server.log" | head -1)
export XDG_CONFIG_HOME="$work/cfg"
ARCA_PASSWORD=$(cat "$work/data/initial-admin-password") "$arca" login >/dev/null
"$arca" source add image vm "$work/disk.raw" >/dev/null
"$arca" backup now vm --wait >/dev/null 2>&1
rp=$(ARCA_DATASTORE="$work/data/datastores/default" ARCA_PASSPHRASE="$(cat "$work/data/datastores/default.passphrase")" \
     "$arca" --json snapshots | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')

time_mount() { # extra mount args -> ms from `arca mount` to the first 4 KiB read
    local t0 t1 out id
    t0=$(date +%s%N)
    out=$("$arca" --json mount "$rp" "$@")
    qemu-io -f raw -r -c 'read 0 4k' "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["address"])' "$out")" >/dev/null
    t1=$(date +%s%N)
    id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["id"])' "$out")
    "$arca" unmount "$id" >/dev/null
    echo $(( (t1 - t0) / 1000000 ))
}
stats() { python3 -c 'import sys,statistics as s; v=sorted(map(int,sys.argv[1:])); print(f"{v[0]} | {s.median(v):.0f} | {v[-1]}")' "$@"; }
ro=(); rw=()
for _ in $(seq "$runs"); do ro+=("$(time_mount)"); rw+=("$(time_mount --writable)"); done
echo "| $mib MiB image, $runs mounts | min (ms) | median (ms) | max (ms) |"
echo "|---|---:|---:|---:|"
echo "| arca mount → first 4 KiB read, read-only | $(stats "${ro[@]}") |"
echo "| arca mount --writable → first 4 KiB read | $(stats "${rw[@]}") |"
