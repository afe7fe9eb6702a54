#!/usr/bin/env bash
# NBD export throughput: Arca's `arca serve nbd` of an image restore point
# against qemu-nbd serving the same raw file, side by side.
#
#   sequential: nbdcopy --connections=4 to null:   (MB/s)
#   random:     fio --ioengine=nbd, 4 KiB random reads, iodepth 16 (IOPS, p99)
#
# Warm: after one full read (Arca's chunk cache holds the image; the page
# cache holds qemu-nbd's file). Cold: page cache dropped (needs root; else
# the cold rows say so) and fresh servers; for cold random reads Arca's
# chunk cache is 64 MiB (1/16 of the image, so most reads miss) and
# qemu-nbd reads with --cache=none (O_DIRECT).
#
#   NBD_BENCH_MIB   image size in MiB (default 1024; 1/4 of its blocks zero)
#   NBD_BENCH_SECS  seconds per fio run (default 10)
#   NBD_BENCH_CHUNK_KIB  image chunk size of the datastore (default: its default, 1024)
#
# Prints a markdown table. Installs fio and libnbd-bin if missing.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/arca-target}"
mib=${NBD_BENCH_MIB:-1024}
secs=${NBD_BENCH_SECS:-10}
for p in fio libnbd-bin; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="${missing:-} $p"
done
if [ -n "${missing:-}" ]; then
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p arca-tools
arca="$CARGO_TARGET_DIR/release/arca"

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
export ARCA_PASSPHRASE=bench ARCA_DATASTORE="$work/ds"

# 3 of 4 MiB random, 1 of 4 zero.
python3 - "$work/disk.raw" "$mib" <<'EOF'
import os, sys
path, mib = sys.argv[1], int(sys.argv[2])
with open(path, "wb") as f:
    for i in range(mib):
        f.write(bytes(1 << 20) if i % 4 == 3 else os.urandom(1 << 20))
EOF
"$arca" datastore init "$work/ds" ${NBD_BENCH_CHUNK_KIB:+--image-chunk-kib "$NBD_BENCH_CHUNK_KIB"} >/dev/null
"$arca" backup image "$work/disk.raw" --source disk >/dev/null

port_a=$((20000 + RANDOM % 10000)); port_q=$((port_a + 1))
"$arca" serve nbd --listen "127.0.0.1:$port_a" --cache-mib $((mib * 2)) >"$work/arca.log" 2>&1 &
pids+=($!)
qemu-nbd -t -r -f raw -x disk -b 127.0.0.1 -p "$port_q" --cache=writeback -e 16 "$work/disk.raw" &
pids+=($!)
sleep 1
declare -A url=([arca]="nbd://127.0.0.1:$port_a/disk/latest" [qemu-nbd]="nbd://127.0.0.1:$port_q/disk")

seq_mbs() { # url -> MB/s of the second (warm) copy
    nbdcopy --connections=4 "$1" null: >/dev/null
    local t0 t1
    t0=$(date +%s.%N); nbdcopy --connections=4 "$1" null:; t1=$(date +%s.%N)
    python3 -c "print(f'{$mib * 1048576 / 1e6 / ($t1 - $t0):.0f}')"
}
fio_rand() { # url -> "IOPS p99_us", no warm-up
    fio --name=r --ioengine=nbd --uri="$1" --rw=randread --bs=4k --iodepth=16 \
        --runtime="$secs" --time_based --size=${mib}M --output-format=json >"$work/fio.json"
    python3 - "$work/fio.json" <<'EOF'
import json, sys
text = open(sys.argv[1]).read()
j = json.loads(text[text.index("{"):])["jobs"][0]["read"]
p = j["clat_ns"]["percentile"]
print(f'{j["iops"]:.0f} {p.get("99.000000", 0) / 1000:.0f}')
EOF
}
rand() { # url -> "IOPS p99_us" after one full read
    fio --name=warm --ioengine=nbd --uri="$1" --rw=read --bs=1M --size=${mib}M >/dev/null
    fio_rand "$1"
}

declare -A S R
for t in arca qemu-nbd; do
    S[$t]=$(seq_mbs "${url[$t]}")
    R[$t]=$(rand "${url[$t]}")
done

stop_all() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); }
stop_all
drop() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; }
cold_note=""
drop || cold_note=" (page cache not dropped: not root)"
cold_seq() { # url -> MB/s of a first read by a fresh server
    local t0 t1
    t0=$(date +%s.%N); nbdcopy --connections=4 "$1" null:; t1=$(date +%s.%N)
    python3 -c "print(f'{$mib * 1048576 / 1e6 / ($t1 - $t0):.0f}')"
}
start_pair() { # arca cache MiB, qemu-nbd cache mode
    "$arca" serve nbd --listen "127.0.0.1:$port_a" --cache-mib "$1" >"$work/arca.log" 2>&1 &
    pids+=($!)
    qemu-nbd -t -r -f raw -x disk -b 127.0.0.1 -p "$port_q" --cache="$2" -e 16 "$work/disk.raw" &
    pids+=($!)
    sleep 1
}
declare -A CS CR
for t in arca qemu-nbd; do
    drop || true
    start_pair $((mib * 2)) writeback
    CS[$t]=$(cold_seq "${url[$t]}")
    stop_all
    drop || true
    start_pair 64 none
    CR[$t]=$(fio_rand "${url[$t]}")
    stop_all
done

ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
echo "| $mib MiB image | arca | qemu-nbd | arca / qemu-nbd |"
echo "|---|---:|---:|---:|"
echo "| warm: sequential, nbdcopy 4 connections (MB/s) | ${S[arca]} | ${S[qemu-nbd]} | $(ratio "${S[arca]}" "${S[qemu-nbd]}") |"
read -r ia pa <<<"${R[arca]}"; read -r iq pq <<<"${R[qemu-nbd]}"
echo "| warm: random 4 KiB reads, fio iodepth 16 (IOPS) | $ia | $iq | $(ratio "$ia" "$iq") |"
echo "| warm: random 4 KiB reads, p99 latency (µs) | $pa | $pq | |"
echo "| cold$cold_note: sequential, first read (MB/s) | ${CS[arca]} | ${CS[qemu-nbd]} | $(ratio "${CS[arca]}" "${CS[qemu-nbd]}") |"
read -r ia pa <<<"${CR[arca]}"; read -r iq pq <<<"${CR[qemu-nbd]}"
echo "| cold$cold_note: random 4 KiB reads (IOPS; arca cache 64 MiB, qemu-nbd O_DIRECT) | $ia | $iq | $(ratio "$ia" "$iq") |"
echo "| cold: random 4 KiB reads, p99 latency (µs) | $pa | $pq | |"
