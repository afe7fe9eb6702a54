#!/usr/bin/env bash
# iSCSI export throughput: `arca serve iscsi` of an image restore point
# against tgtd (the Linux SCSI target framework's userspace daemon) serving
# the same raw file, side by side, warm cache, both read with libiscsi's
# iscsi-perf:
#
#   sequential: 1 MiB reads, 16 in flight  (MB/s)
#   random:     4 KiB random reads, 16 in flight  (IOPS)
#
#   ISCSI_BENCH_MIB   image size in MiB (default 1024; 1/4 of its blocks zero)
#   ISCSI_BENCH_SECS  seconds per run (default 10)
#
# Prints a markdown table. Installs libiscsi-bin and tgt if missing.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/arca-target}"
mib=${ISCSI_BENCH_MIB:-1024}
secs=${ISCSI_BENCH_SECS:-10}
for p in libiscsi-bin tgt; do
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
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
export ARCA_PASSPHRASE=bench ARCA_DATASTORE="$work/ds"

python3 - "$work/disk.raw" "$mib" <<'EOF'
import os, sys
path, mib = sys.argv[1], int(sys.argv[2])
with open(path, "wb") as f:
    for i in range(mib):
        f.write(bytes(1 << 20) if i % 4 == 3 else os.urandom(1 << 20))
EOF
"$arca" datastore init "$work/ds" >/dev/null
"$arca" backup image "$work/disk.raw" --source disk >/dev/null

port_a=$((20000 + RANDOM % 10000)); port_t=$((port_a + 1))
"$arca" serve iscsi --listen "127.0.0.1:$port_a" --cache-mib $((mib * 2)) >"$work/arca.log" 2>&1 &
pids+=($!)
tgtd -f --iscsi "portal=127.0.0.1:$port_t" >"$work/tgtd.log" 2>&1 &
pids+=($!)
sleep 1
tgtadm --lld iscsi --op new --mode target --tid 1 -T iqn.2026-11.io.bench:disk
tgtadm --lld iscsi --op new --mode logicalunit --tid 1 --lun 1 -b "$work/disk.raw"
tgtadm --lld iscsi --op bind --mode target --tid 1 -I ALL
declare -A url=(
    [arca]="iscsi://127.0.0.1:$port_a/iqn.2026-11.io.arca:disk.latest/0"
    [tgtd]="iscsi://127.0.0.1:$port_t/iqn.2026-11.io.bench:disk/1"
)

perf() { # url, extra args -> "IOPS MB/s" (average)
    local u=$1; shift
    timeout $((secs + 20)) iscsi-perf -m 16 -t "$secs" "$@" "$u" 2>&1 |
        tr '\r' '\n' | sed -n 's/.*iops average \([0-9]*\) (\([0-9]*\) MB\/s).*/\1 \2/p' | tail -1
}

declare -A S R
for t in arca tgtd; do
    perf "${url[$t]}" -b 2048 >/dev/null   # warm: one sequential pass
    S[$t]=$(perf "${url[$t]}" -b 2048)
    R[$t]=$(perf "${url[$t]}" -b 8 -r)
done
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
read -r _ sa <<<"${S[arca]}"; read -r _ st <<<"${S[tgtd]}"
read -r ia _ <<<"${R[arca]}"; read -r it _ <<<"${R[tgtd]}"
echo "| $mib MiB image, warm, iscsi-perf 16 in flight | arca | tgtd | arca / tgtd |"
echo "|---|---:|---:|---:|"
echo "| sequential 1 MiB reads (MB/s) | $sa | $st | $(ratio "$sa" "$st") |"
echo "| random 4 KiB reads (IOPS) | $ia | $it | $(ratio "$ia" "$it") |"
