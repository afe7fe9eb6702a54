#!/usr/bin/env bash
# VM disk benchmark (issue 17): a qcow2 disk holding this machine's real
# files (ext4 made by mke2fs -d from /usr), backed up full, then again after
# a PCT% change written with qemu-io: arca incremental from the qcow2 dirty
# bitmap, arca's fallback (full read, dedup against the parent: --full-read),
# and restic, borg and bupstash backing up the same qcow2 file, which they
# can only read whole. Prints a markdown table; see benches/README.md.
#
#   benches/run.sh vm
#
# BENCH_VM_GIB [10] disk size, BENCH_VM_DIRTY_PCT [1], BENCH_VM_WRITE_KIB
# [1024 and 64: both patterns are run], BENCH_VM_SRC [/usr], BENCH_WORK
# [/var/tmp/arca-bench], BENCH_TOOLS [arca restic borg bupstash],
# BENCH_BUILD [1], CARGO_TARGET_DIR [/root/.cache/arca-target].
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/root/.cache/arca-target}
ARCA=$CARGO_TARGET_DIR/release/arca
WORK=${BENCH_WORK:-/var/tmp/arca-bench}/vm
GIB=${BENCH_VM_GIB:-10}
PCT=${BENCH_VM_DIRTY_PCT:-1}
WRITES=${BENCH_VM_WRITE_KIB:-1024 64}
SRC=${BENCH_VM_SRC:-/usr}
TOOLS=${BENCH_TOOLS:-arca restic borg bupstash}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$WORK/results"
LOG=$WORK/results/$STAMP.log
OUT=$WORK/results/$STAMP.md
export ARCA_PASSPHRASE=bench RESTIC_PASSWORD=bench BORG_PASSPHRASE=bench
export BORG_BASE_DIR=$WORK/cache/borg RESTIC_CACHE_DIR=$WORK/cache/restic
export BUPSTASH_KEY=$WORK/repos/bupstash.key
log() { echo "[$(date -u +%T)] $*" | tee -a "$LOG" >&2; }

if [ "${BENCH_BUILD:-1}" = 1 ]; then
    log "building arca"
    (cd "$ROOT" && cargo build --release --workspace --bins >>"$LOG" 2>&1)
fi
for t in restic borg; do
    if [[ " $TOOLS " == *" $t "* ]] && ! command -v $t >/dev/null; then
        pkg=$t; [ $t = borg ] && pkg=borgbackup
        apt-get install -y -qq --no-install-recommends $pkg >>"$LOG" 2>&1 || TOOLS=${TOOLS/$t/}
    fi
done
if [[ " $TOOLS " == *" bupstash "* ]] && ! command -v bupstash >/dev/null; then
    log "installing bupstash (cargo install --locked bupstash; it links libsodium)"
    apt-get install -y -qq --no-install-recommends libsodium-dev pkg-config >>"$LOG" 2>&1 || true
    CARGO_TARGET_DIR=/root/.cache/bupstash-build cargo install --locked bupstash >>"$LOG" 2>&1 ||
        TOOLS=${TOOLS/bupstash/}
fi

DISK=$WORK/data/vm.qcow2
PRISTINE=$WORK/data/pristine.qcow2
if [ ! -f "$PRISTINE" ]; then
    log "making a ${GIB} GiB qcow2 of the real files under $SRC"
    mkdir -p "$WORK/data"
    raw=$WORK/data/vm.raw
    rm -f "$raw"
    truncate -s "${GIB}G" "$raw"
    mke2fs -q -F -t ext4 -d "$SRC" "$raw" >>"$LOG" 2>&1
    qemu-img convert -f raw -O qcow2 "$raw" "$PRISTINE"
    rm -f "$raw"
fi
used=$(qemu-img info --output=json "$PRISTINE" | python3 -c 'import json,sys; print(json.load(sys.stdin)["actual-size"])')

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }
# Seconds of a command, its output to the log.
timed() {
    local s e
    s=$(date +%s.%N)
    "$@" >>"$LOG" 2>&1
    e=$(date +%s.%N)
    printf %.1f "$(echo "$e - $s" | bc)"
}

# Dirty PCT% of the disk in writes of $1 KiB at random aligned offsets
# (seeded), each of fresh random bytes.
dirty() {
    local kib=$1 n
    n=$(( GIB * 1024 * 1024 * PCT / 100 / kib ))
    python3 - "$DISK" "$kib" "$n" "$GIB" "$WORK/data/w" <<'EOF' >>"$LOG" 2>&1
import os, random, subprocess, sys
disk, kib, n, gib, wdir = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
os.makedirs(wdir, exist_ok=True)
rng = random.Random(42 + kib)
slots = gib * 1024 * 1024 // kib
cmds = []
for i, slot in enumerate(rng.sample(range(slots), n)):
    f = os.path.join(wdir, f"{i}")
    with open(f, "wb") as out:
        out.write(os.urandom(kib * 1024))
    cmds += ["-c", f"write -q -s {f} {slot * kib}k {kib}k"]
for k in range(0, len(cmds), 400):
    subprocess.run(["qemu-io", "-f", "qcow2", *cmds[k:k + 400], disk], check=True)
EOF
    rm -rf "$WORK/data/w"
    echo $(( n * kib * 1024 ))
}

json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"; }

{
echo "# VM disk: qcow2 of real files, ${PCT}% dirty ($STAMP)"
echo
echo "Disk: ${GIB} GiB qcow2, $(( used / 1048576 )) MiB allocated (ext4 of $SRC). Machine: $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GiB RAM. Page cache dropped before every backup."
echo
echo "| writes | tool | backup | time s | read MiB | added MiB |"
echo "|---|---|---|---:|---:|---:|"
} >"$OUT"

row() { echo "| $1 | $2 | $3 | $4 | $5 | $6 |" >>"$OUT"; }
mib() { echo "scale=1; $1 / 1048576" | bc; }

for kib in $WRITES; do
    rm -rf "$WORK/repos"
    mkdir -p "$WORK/repos"
    cp --sparse=always "$PRISTINE" "$DISK"
    qemu-img bitmap --remove "$DISK" x >/dev/null 2>&1 || true
    for t in $TOOLS; do
        case $t in
            arca) "$ARCA" --datastore "$WORK/repos/arca" datastore init --encryption repokey >>"$LOG" 2>&1 ;;
            restic) restic init -r "$WORK/repos/restic" >>"$LOG" 2>&1 ;;
            borg) borg init -e repokey "$WORK/repos/borg" >>"$LOG" 2>&1 ;;
            bupstash) [ -f "$BUPSTASH_KEY" ] || bupstash new-key -o "$BUPSTASH_KEY" >>"$LOG" 2>&1
                      bupstash init -r "$WORK/repos/bupstash" >>"$LOG" 2>&1 ;;
        esac
    done
    # Full backups of the pristine disk.
    for t in $TOOLS; do
        drop_caches
        case $t in
            arca)
                j=$("$ARCA" --datastore "$WORK/repos/arca" --json backup image "$DISK" --source vm 2>>"$LOG")
                row "$kib KiB" arca "full" "$(echo "$j" | json_field duration_s | xargs printf %.1f)" \
                    "$(mib "$(echo "$j" | json_field bytes_read)")" "$(mib "$(echo "$j" | json_field bytes_added)")" ;;
            restic) row "$kib KiB" restic full "$(timed restic -r "$WORK/repos/restic" backup "$DISK")" "$(mib "$(stat -c %s "$DISK")")" "" ;;
            borg) row "$kib KiB" borg full "$(timed borg create --compression zstd,3 "$WORK/repos/borg::full" "$DISK")" "$(mib "$(stat -c %s "$DISK")")" "" ;;
            bupstash) row "$kib KiB" bupstash full "$(timed bupstash put -r "$WORK/repos/bupstash" "$DISK")" "$(mib "$(stat -c %s "$DISK")")" "" ;;
        esac
    done
    changed=$(dirty "$kib")
    log "dirtied $changed bytes in $kib KiB writes"
    for t in $TOOLS; do
        drop_caches
        case $t in
            arca)
                j=$("$ARCA" --datastore "$WORK/repos/arca" --json backup image "$DISK" --source vm 2>>"$LOG")
                row "$kib KiB" arca "incremental (dirty bitmap)" "$(echo "$j" | json_field duration_s | xargs printf %.1f)" \
                    "$(mib "$(echo "$j" | json_field bytes_read)")" "$(mib "$(echo "$j" | json_field bytes_added)")"
                echo "$j" | json_field mode >>"$LOG" ;;
            restic) row "$kib KiB" restic "second" "$(timed restic -r "$WORK/repos/restic" backup "$DISK")" "$(mib "$(stat -c %s "$DISK")")" "" ;;
            borg) row "$kib KiB" borg "second" "$(timed borg create --compression zstd,3 "$WORK/repos/borg::second" "$DISK")" "$(mib "$(stat -c %s "$DISK")")" "" ;;
            bupstash) row "$kib KiB" bupstash "second" "$(timed bupstash put -r "$WORK/repos/bupstash" "$DISK")" "$(mib "$(stat -c %s "$DISK")")" "" ;;
        esac
    done
    if [[ " $TOOLS " == *" arca "* ]]; then
        drop_caches
        j=$("$ARCA" --datastore "$WORK/repos/arca" --json backup image "$DISK" --source vm --full-read 2>>"$LOG")
        row "$kib KiB" arca "fallback: full read, dedup against parent" "$(echo "$j" | json_field duration_s | xargs printf %.1f)" \
            "$(mib "$(echo "$j" | json_field bytes_read)")" "$(mib "$(echo "$j" | json_field bytes_added)")"
        # The restore point equals the disk.
        "$ARCA" --datastore "$WORK/repos/arca" restore latest "$WORK/data/restored.raw" >>"$LOG" 2>&1
        qemu-img compare -f raw -F qcow2 "$WORK/data/restored.raw" "$DISK" >>"$LOG" 2>&1 &&
            log "restore equals the disk" || log "RESTORE DIFFERS"
        rm -f "$WORK/data/restored.raw"
    fi
    echo "| $kib KiB | (changed) | | | $(mib "$changed") | |" >>"$OUT"
done
cat "$OUT"
