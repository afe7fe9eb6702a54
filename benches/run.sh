#!/usr/bin/env bash
# Arca benchmarks: arca, restic and borg side by side on the same data.
# See benches/README.md.
#
#   benches/run.sh [all]          limits + tree + image comparison (default)
#   benches/run.sh tree|image     one part of the comparison (plus limits)
#   benches/run.sh limits         single-stage limits only
#   benches/run.sh index [ARGS]   RocksDB index scale test (ARGS go to arca-index-scale)
#   benches/run.sh real           trees and an ext4 image of this machine's real files:
#                                 arca, restic, borg, bupstash, tar | tar and cp
#   benches/run.sh nbd            fio over NBD: arca's export of the real image vs qemu-nbd
#   benches/run.sh ui             web UI: time to interactive with 100k restore points and a
#                                 100k-entry directory, asset sizes (benches/ui.sh)
#   benches/run.sh vm             VM disks (benches/vm.sh): a 10 GiB qcow2 of real files, full then
#                                 1% dirty: incremental from the dirty bitmap vs full read, and peers
#   benches/run.sh files          file access (benches/files.sh): downloads, S3 (rclone) and
#                                 NFS (nfs-cp) vs a local copy; cold time to first byte from an image
#
# Environment (defaults in brackets): BENCH_WORK [/var/tmp/arca-bench],
# BENCH_TREE_GIB [1.5], BENCH_IMAGE_GIB [3], BENCH_IMAGE_DAYS [10],
# BENCH_CHANGED_PCT [2], BENCH_SEED [42], BENCH_TOOLS ["arca restic borg"],
# BENCH_ARCA_CBT [1: arca image incrementals get --changed-extents],
# BENCH_VERIFY [1: compare restored data with the source],
# BENCH_REPS [3: runs of each first backup, second backup and restore; the
#   report shows the median],
# CARGO_TARGET_DIR [/root/.cache/arca-target], BENCH_BUILD [1: build arca first; 0: use
#   the binaries in CARGO_TARGET_DIR as they are].
# The real and nbd parts (benches/real.sh): BENCH_REAL_GIB [1.5], BENCH_REAL_SYS
# ["/usr/share /usr/lib"], BENCH_REAL_SDK [$HOME/.rustup], BENCH_REAL_IMAGE_GIB [3],
# BENCH_REAL_SETS ["sys sdk image"], BENCH_REAL_WARM [1: warm tree restores too],
# BENCH_REAL_RESTORE_ONLY [0; 1: restore from the repositories of the last run],
# BENCH_NBD_SECS [10], BENCH_NBD_CACHE_MIB [512]; BENCH_TOOLS defaults to
# "arca restic borg bupstash" there.
set -euo pipefail

MODE=${1:-all}
[ $# -gt 0 ] && shift
case $MODE in
    all | tree | image | limits | index | real | nbd) ;;
    files) exec bash "$(dirname "${BASH_SOURCE[0]}")/files.sh" "$@" ;;
    ui) exec bash "$(dirname "${BASH_SOURCE[0]}")/ui.sh" "$@" ;;
    vm) exec bash "$(dirname "${BASH_SOURCE[0]}")/vm.sh" "$@" ;;
    *) echo "usage: $0 [all|tree|image|limits|real|nbd|files|ui|vm|index [ARGS]]" >&2; exit 2 ;;
esac

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/root/.cache/arca-target}
BIN=$CARGO_TARGET_DIR/release
ARCA=$BIN/arca
WORK=${BENCH_WORK:-/var/tmp/arca-bench}
TREE_GIB=${BENCH_TREE_GIB:-1.5}
IMAGE_GIB=${BENCH_IMAGE_GIB:-3}
DAYS=${BENCH_IMAGE_DAYS:-10}
CHANGED_PCT=${BENCH_CHANGED_PCT:-2}
SEED=${BENCH_SEED:-42}
TOOLS=${BENCH_TOOLS:-arca restic borg}
ARCA_CBT=${BENCH_ARCA_CBT:-1}
VERIFY=${BENCH_VERIFY:-1}
REPS=${BENCH_REPS:-3}

DATA=$WORK/data
TREE=$DATA/tree
IMG=$DATA/disk.img
REPOS=$WORK/repos
RESTORE=$WORK/restore
STAMP=$(date +%Y%m%d-%H%M%S)
mkdir -p "$WORK/results"
RESULTS=$WORK/results/$STAMP.tsv
LOG=$WORK/results/$STAMP.log
REPORT=$WORK/results/$STAMP.md

PASS=arca-bench-passphrase
export ARCA_PASSPHRASE=$PASS RESTIC_PASSWORD=$PASS BORG_PASSPHRASE=$PASS
export BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
# The peers' client-side caches live in the work dir, emptied by every run.
export RESTIC_CACHE_DIR=$WORK/cache/restic BORG_BASE_DIR=$WORK/cache/borg-home
unset ARCA_DATASTORE

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" | tee -a "$LOG" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}
has_tool() { [[ " $TOOLS " == *" $1 "* ]]; }

APT_UPDATED=0
apt_install() {
    if [ "$APT_UPDATED" = 0 ]; then
        apt-get update -qq || { sleep 5; apt-get update -qq; }
        APT_UPDATED=1
    fi
    local cmd=(apt-get install -y -qq --no-install-recommends "$@")
    if ! DEBIAN_FRONTEND=noninteractive "${cmd[@]}"; then
        log "apt-get install $* failed; retrying once"
        sleep 5
        DEBIAN_FRONTEND=noninteractive "${cmd[@]}"
    fi
}

install_tools() {
    local need=()
    [ -x /usr/bin/time ] || need+=(time)
    if has_tool restic && ! command -v restic >/dev/null; then need+=(restic); fi
    if has_tool borg && ! command -v borg >/dev/null; then need+=(borgbackup); fi
    if [ ${#need[@]} -gt 0 ]; then
        log "installing ${need[*]}"
        apt_install "${need[@]}"
    fi
}

build() { # PACKAGES...
    if [ "${BENCH_BUILD:-1}" = 0 ]; then
        log "not building (BENCH_BUILD=0): using $BIN"
        return
    fi
    # The whole workspace's binaries (they include $*): `-p` would build
    # with other features than the tests and rebuild RocksDB.
    log "building $* (release, the workspace's binaries, $CARGO_TARGET_DIR)"
    if ! (cd "$ROOT" && cargo build --release --workspace --bins) >>"$LOG" 2>&1; then
        tail -n 40 "$LOG" >&2
        die "cargo build failed"
    fi
}

CAN_DROP=0
if (sync && echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then CAN_DROP=1; fi
drop_caches() {
    sync
    if [ "$CAN_DROP" = 1 ]; then echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || CAN_DROP=0; fi
}

# measure TOOL OP BYTES REPO CMD...: run CMD under GNU time after dropping the
# page cache (not with WARM=1); append "tool op bytes seconds maxrss_kib
# repo_bytes" to $RESULTS.
measure() {
    local tool=$1 op=$2 bytes=$3 repo=$4
    shift 4
    if [ "${WARM:-0}" != 1 ]; then drop_caches; fi
    echo "+ $*" >>"$LOG"
    local tf secs rss stored=-
    tf=$(mktemp)
    if ! /usr/bin/time -f '%e %M' -o "$tf" "$@" >>"$LOG" 2>&1; then
        tail -n 20 "$LOG" >&2
        die "$tool $op failed (full log: $LOG)"
    fi
    read -r secs rss < <(tail -n 1 "$tf")
    rm -f "$tf"
    if [ -n "$repo" ]; then stored=$(du -sb "$repo" | cut -f1); fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$op" "$bytes" "$secs" "$rss" "$stored" >>"$RESULTS"
    log "$(awk -v t="$tool" -v o="$op" -v b="$bytes" -v s="$secs" -v r="$rss" -v st="$stored" 'BEGIN {
        if (s <= 0) s = 0.01
        printf "%-6s %-14s %8.1f s %8.1f MB/s  peak RSS %7.1f MiB", t, o, s, b / s / 1e6, r / 1024
        if (st != "-") printf "  repo %8.1f MiB", st / 1048576 }')"
}

sum_sizes() { find "$1" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f", s }'; }

# ---- datasets (regenerated only when absent or modified by an earlier run) ----

gen_tree() {
    local want="tree $TREE_GIB $SEED"
    if [ -d "$TREE" ] && [ "$(cat "$DATA/tree.ok" 2>/dev/null)" = "$want" ]; then
        log "reusing $TREE"
        return
    fi
    rm -rf "$TREE" "$DATA/tree.ok"
    log "generating $TREE ($TREE_GIB GiB)"
    "$BIN/arca-datagen" --seed "$SEED" tree "$TREE" --size-gib "$TREE_GIB" | tee -a "$LOG"
    echo "$want" >"$DATA/tree.ok"
}

gen_image_day0() {
    local want="image $IMAGE_GIB $SEED day0"
    if [ -f "$IMG" ] && [ "$(cat "$DATA/image.ok" 2>/dev/null)" = "$want" ]; then
        log "reusing $IMG"
        return
    fi
    rm -f "$IMG" "$DATA/image.ok"
    log "generating $IMG ($IMAGE_GIB GiB, day 0)"
    "$BIN/arca-datagen" --seed "$SEED" image "$IMG" --size-gib "$IMAGE_GIB" --day 0 | tee -a "$LOG"
    echo "$want" >"$DATA/image.ok"
}

# ---- the three tools ----

init_repo() { # TOOL REPO
    rm -rf "$2"
    case $1 in
        arca) "$ARCA" datastore init "$2" --encryption repokey ;;
        restic) restic -r "$2" init --repository-version 2 ;;
        borg) borg init -e repokey "$2" ;;
    esac >>"$LOG" 2>&1 || die "$1: init of $2 failed (log: $LOG)"
}

backup_tree() { # TOOL OP BYTES N
    local tool=$1 op=$2 bytes=$3 n=$4 repo=$REPOS/$1-tree
    case $tool in
        arca) measure "$tool" "$op" "$bytes" "$repo" \
            "$ARCA" --datastore "$repo" --json backup files "$TREE" --source tree ;;
        restic) measure "$tool" "$op" "$bytes" "$repo" \
            restic -r "$repo" backup --host bench "$TREE" ;;
        borg) measure "$tool" "$op" "$bytes" "$repo" \
            env -C "$TREE" borg create --compression zstd,3 "$repo::tree-$n" . ;;
    esac
}

restore_tree() { # TOOL BYTES N REP
    local tool=$1 bytes=$2 n=$3 rep=$4 repo=$REPOS/$1-tree target=$RESTORE/$1-tree-$4 root
    rm -rf "$target"
    mkdir -p "$RESTORE"
    case $tool in
        arca)
            measure "$tool" tree-restore "$bytes" "" \
                "$ARCA" --datastore "$repo" restore latest "$target" --source tree
            root=$target ;;
        restic)
            measure "$tool" tree-restore "$bytes" "" restic -r "$repo" restore latest --target "$target"
            root=$target$TREE ;;
        borg)
            mkdir -p "$target"
            measure "$tool" tree-restore "$bytes" "" env -C "$target" borg extract "$repo::tree-$n"
            root=$target ;;
    esac
    if [ "$VERIFY" = 1 ] && [ "$rep" = 1 ]; then
        if diff -rq "$TREE" "$root" >>"$LOG" 2>&1; then
            log "$tool: restored tree is identical"
        else
            log "WARNING: $tool: restored tree differs from the source (see $LOG)"
        fi
    fi
    # Kept until the end of the run: ext4 allocates inodes slowly for a
    # minute or more after many were deleted, which would slow the next tool.
}

backup_image() { # TOOL DAY BYTES [EXTENTS]
    local tool=$1 day=$2 bytes=$3 ext=${4:-} repo=$REPOS/$1-image extra=()
    case $tool in
        arca)
            if [ -n "$ext" ] && [ "$ARCA_CBT" = 1 ]; then extra=(--changed-extents "$ext"); fi
            measure "$tool" "image-day$day" "$bytes" "$repo" \
                "$ARCA" --datastore "$repo" --json backup image "$IMG" --source disk "${extra[@]}" ;;
        restic) measure "$tool" "image-day$day" "$bytes" "$repo" \
            restic -r "$repo" backup --host bench "$IMG" ;;
        borg) measure "$tool" "image-day$day" "$bytes" "$repo" \
            env -C "$DATA" borg create --compression zstd,3 --chunker-params fixed,1048576 \
            $BORG_SPARSE "$repo::disk-$day" disk.img ;;
    esac
}

restore_image() { # TOOL BYTES LASTDAY REP
    local tool=$1 bytes=$2 day=$3 rep=$4 repo=$REPOS/$1-image target=$RESTORE/$1-image out
    rm -rf "$target"
    mkdir -p "$target"
    case $tool in
        arca)
            out=$target/disk.img
            measure "$tool" image-restore "$bytes" "" \
                "$ARCA" --datastore "$repo" restore latest "$out" --source disk ;;
        restic)
            out=$target$IMG
            measure "$tool" image-restore "$bytes" "" \
                restic -r "$repo" restore latest --target "$target" $RESTIC_SPARSE ;;
        borg)
            out=$target/disk.img
            measure "$tool" image-restore "$bytes" "" \
                env -C "$target" borg extract --sparse "$repo::disk-$day" ;;
    esac
    if [ "$VERIFY" = 1 ] && [ "$rep" = 1 ]; then
        if cmp "$IMG" "$out" >>"$LOG" 2>&1; then
            log "$tool: restored image is identical"
        else
            log "WARNING: $tool: restored image differs from the source (see $LOG)"
        fi
    fi
    # One big file: removing it does not slow later file creation.
    rm -rf "$target"
}

# ---- scenarios ----

run_limits() {
    log "single-stage limits (arca-limits)"
    "$BIN/arca-limits" | tee -a "$LOG" "$WORK/results/$STAMP.limits.md" >&2
    LIMITS_JSON=$("$BIN/arca-limits" --json)
    echo "$LIMITS_JSON" >>"$LOG"
}

run_tree() {
    gen_tree
    local bytes tool
    bytes=$(sum_sizes "$TREE")
    log "tree: $bytes bytes; tools: $TOOLS"
    local rep
    for tool in $TOOLS; do
        # Each first backup into a new repository; the last one is kept.
        for rep in $(seq "$REPS"); do
            init_repo "$tool" "$REPOS/$tool-tree"
            backup_tree "$tool" tree-backup-1 "$bytes" 1
        done
        for rep in $(seq "$REPS"); do backup_tree "$tool" tree-backup-2 "$bytes" "2-$rep"; done
    done
    # The tree is about to change: the next run regenerates it.
    rm -f "$DATA/tree.ok"
    "$BIN/arca-datagen" --seed "$SEED" modify-tree "$TREE" --pct "$CHANGED_PCT" | tee -a "$LOG"
    bytes=$(sum_sizes "$TREE")
    for tool in $TOOLS; do backup_tree "$tool" tree-backup-3 "$bytes" 3; done
    for rep in $(seq "$REPS"); do
        for tool in $TOOLS; do restore_tree "$tool" "$bytes" 3 "$rep"; done
    done
}

run_image() {
    gen_image_day0
    local bytes tool day ext last=$((DAYS - 1))
    bytes=$(stat -c %s "$IMG")
    log "image: $bytes bytes, $DAYS versions; tools: $TOOLS"
    local rep
    for day in $(seq 0 "$last"); do
        ext=
        if [ "$day" -gt 0 ]; then
            rm -f "$DATA/image.ok"
            ext=$DATA/extents-$day
            "$BIN/arca-datagen" --seed "$SEED" image "$IMG" --day "$day" \
                --changed-pct "$CHANGED_PCT" --changed-extents-out "$ext" | tee -a "$LOG"
        fi
        for tool in $TOOLS; do
            if [ "$day" = 0 ]; then
                # Each full backup into a new repository; the last one is kept.
                for rep in $(seq "$REPS"); do
                    init_repo "$tool" "$REPOS/$tool-image"
                    backup_image "$tool" "$day" "$bytes" "$ext"
                done
            else
                backup_image "$tool" "$day" "$bytes" "$ext"
            fi
        done
    done
    for rep in $(seq "$REPS"); do
        for tool in $TOOLS; do restore_image "$tool" "$bytes" "$last" "$rep"; done
    done
    if has_tool arca; then
        # The same incremental without changed-block information: arca reads
        # and hashes the whole image, like the peers do.
        measure arca image-reread "$bytes" "$REPOS/arca-image" \
            "$ARCA" --datastore "$REPOS/arca-image" --json backup image "$IMG" --source disk
    fi
}

report() {
    {
        echo "## Arca benchmark $STAMP"
        echo
        echo "Host: $(nproc) cores, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM;" \
            "page cache $([ "$CAN_DROP" = 1 ] && echo "dropped before every run" || echo "NOT dropped (no permission)")."
        echo "Versions: $("$ARCA" --version 2>/dev/null || echo arca ?);" \
            "$(has_tool restic && restic version 2>/dev/null | head -n 1 || true);" \
            "$(has_tool borg && borg --version 2>/dev/null || true)."
        echo "Data: tree $TREE_GIB GiB (seed $SEED), image $IMAGE_GIB GiB, $DAYS versions, $CHANGED_PCT% changed per version."
        echo "Settings: all repositories encrypted (arca repokey, restic default, borg repokey);" \
            "arca zstd 3; restic compression auto; borg zstd,3, images with fixed 1 MiB chunks like arca's${BORG_SPARSE:+ and --sparse};" \
            "arca image incrementals $([ "$ARCA_CBT" = 1 ] && echo "with" || echo "without") --changed-extents."
        echo "Client-side caches outside the repositories (not counted as stored):" \
            "restic $(du -sm "$RESTIC_CACHE_DIR" | cut -f1) MiB, borg $(du -sm "$BORG_BASE_DIR" | cut -f1) MiB;" \
            "arca keeps its index inside the datastore, so it is counted."
        echo
        if [ -f "$WORK/results/$STAMP.limits.md" ]; then cat "$WORK/results/$STAMP.limits.md"; echo; fi
        awk -f "$HERE/report.awk" -v limits="${LIMITS_JSON:-}" -v cbt="$ARCA_CBT" -v days="$DAYS" "$RESULTS"
    } | tee "$REPORT"
    log "report: $REPORT, raw results: $RESULTS, log: $LOG"
}

# ---- real files and NBD (benches/real.sh) ----

# shellcheck source=benches/real.sh
. "$HERE/real.sh"

report_real() { # PART
    {
        echo "## Arca benchmark $STAMP: $1"
        echo
        echo "Host: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM;" \
            "$(uname -sr); page cache $([ "$CAN_DROP" = 1 ] && echo "dropped before every cold run" || echo "NOT dropped (no permission)")."
        echo "Versions: $("$ARCA" --version 2>/dev/null || echo arca ?); $(restic version 2>/dev/null | head -n 1 || true);" \
            "$(borg --version 2>/dev/null || true); $(bupstash version 2>/dev/null || true); $(qemu-nbd --version 2>/dev/null | head -n 1 || true)."
        echo "Settings: every repository encrypted (arca repokey, restic default, borg repokey, bupstash always);" \
            "arca zstd 3 (default), restic compression auto, borg zstd,3 (images: fixed 1 MiB chunks${BORG_SPARSE:+, --sparse}), bupstash defaults" \
            "(its send log kept between backups of a data set). Cold = page cache dropped before the command; warm = run again right after."
        echo
        case $1 in
            real) real_report ;;
            nbd) nbd_report ;;
        esac
    } | tee "$REPORT"
    log "report: $REPORT, log: $LOG"
}

# ---- main ----

if [ "$MODE" = index ]; then
    build arca-benches
    exec "$BIN/arca-index-scale" --fresh --path "$WORK/index-scale" "$@"
fi

if [ "$MODE" = real ] || [ "$MODE" = nbd ]; then
    rm -rf "$WORK/cache" "$RESTORE"
    mkdir -p "$DATA" "$REPOS" "$RESTIC_CACHE_DIR" "$BORG_BASE_DIR"
    build arca-tools
    [ -x "$ARCA" ] || die "$ARCA not built"
    BORG_SPARSE=
    if borg create --help 2>/dev/null | grep -q -- '--sparse'; then BORG_SPARSE=--sparse; fi
    RESTIC_SPARSE=
    if restic restore --help 2>/dev/null | grep -q -- '--sparse'; then RESTIC_SPARSE=--sparse; fi
    log "work dir $WORK; log $LOG"
    "run_$MODE"
    report_real "$MODE"
    rm -rf "$RESTORE"
    exit 0
fi

# Restores of the last run are removed first, long before this run restores.
rm -rf "$WORK/cache" "$RESTORE"
mkdir -p "$DATA" "$REPOS" "$RESTIC_CACHE_DIR" "$BORG_BASE_DIR"
: >"$RESULTS"
install_tools
build arca-tools arca-benches
[ -x "$ARCA" ] || die "$ARCA not built"
BORG_SPARSE=
if has_tool borg && borg create --help 2>/dev/null | grep -q -- '--sparse'; then BORG_SPARSE=--sparse; fi
RESTIC_SPARSE=
if has_tool restic && restic restore --help 2>/dev/null | grep -q -- '--sparse'; then RESTIC_SPARSE=--sparse; fi
LIMITS_JSON=
log "work dir $WORK; log $LOG"
run_limits
case $MODE in
    all) run_tree; run_image ;;
    tree) run_tree ;;
    image) run_image ;;
    limits) ;;
esac
report
rm -rf "$RESTORE"
