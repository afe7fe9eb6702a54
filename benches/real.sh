# Sourced by run.sh: the `real` part (trees and a disk image made from real
# files of this machine, arca / restic / borg / bupstash and the machine's
# own limits) and the `nbd` part (fio random and sequential reads of an
# exported image restore point against qemu-nbd serving the raw file).
# See benches/README.md. Uses run.sh's log, measure, drop_caches, init_repo.

REAL_GIB=${BENCH_REAL_GIB:-1.5}
REAL_SYS=${BENCH_REAL_SYS:-/usr/share /usr/lib}
REAL_SDK=${BENCH_REAL_SDK:-$HOME/.rustup}
REAL_IMAGE_GIB=${BENCH_REAL_IMAGE_GIB:-3}
REAL_TOOLS=${BENCH_TOOLS:-arca restic borg bupstash}
REAL_SETS=${BENCH_REAL_SETS:-sys sdk image}
REAL_WARM=${BENCH_REAL_WARM:-1}
REAL_RESTORE_ONLY=${BENCH_REAL_RESTORE_ONLY:-0}
NBD_SECS=${BENCH_NBD_SECS:-10}
NBD_CACHE_MIB=${BENCH_NBD_CACHE_MIB:-512}
REAL_IMG=$DATA/real-disk.img
REAL_RESULTS=$WORK/results/$STAMP.real.tsv
NBD_RESULTS=$WORK/results/$STAMP.nbd.tsv
# Beside the repositories: a restore-only run needs the key of the last run.
export BUPSTASH_KEY=$REPOS/bupstash.key

install_real_tools() {
    local need=()
    [ -x /usr/bin/time ] || need+=(time)
    command -v fio >/dev/null || need+=(fio)
    command -v nbdcopy >/dev/null || need+=(libnbd-bin)
    command -v qemu-nbd >/dev/null || need+=(qemu-utils)
    command -v restic >/dev/null || need+=(restic)
    command -v borg >/dev/null || need+=(borgbackup)
    if [[ " $REAL_TOOLS " == *" bupstash "* ]] && ! command -v bupstash >/dev/null; then
        need+=(libsodium-dev pkg-config)
    fi
    if [ ${#need[@]} -gt 0 ]; then
        log "installing ${need[*]}"
        apt_install "${need[@]}"
    fi
    if [[ " $REAL_TOOLS " == *" bupstash "* ]] && ! command -v bupstash >/dev/null; then
        log "installing bupstash (cargo install --locked bupstash)"
        apt-get install -y -qq --no-install-recommends libsodium-dev pkg-config >>"$LOG" 2>&1 || true
        CARGO_TARGET_DIR=/root/.cache/bupstash-build cargo install --locked bupstash >>"$LOG" 2>&1 ||
            die "cargo install bupstash failed (log: $LOG)"
    fi
}

# copy_real NAME SRC...: a copy of the regular files and symlinks under the
# SRC directories, in directory order, up to $REAL_GIB GiB, into
# $DATA/real-NAME (reused while the same settings made it).
copy_real() {
    local name=$1 dst=$DATA/real-$1 cap want list
    shift
    cap=$(awk -v g="$REAL_GIB" 'BEGIN { printf "%.0f", g * 1073741824 }')
    want="real $name $cap $*"
    if [ -d "$dst" ] && [ "$(cat "$dst.ok" 2>/dev/null)" = "$want" ]; then
        log "reusing $dst"
        return
    fi
    rm -rf "$dst" "$dst.ok"
    mkdir -p "$dst"
    list=$(mktemp)
    local src
    for src in "$@"; do
        [ -d "$src" ] || continue
        find "$src" -xdev \( -type f -o -type l \) -printf '%s\t%P\n' 2>/dev/null |
            awk -F'\t' -v p="${src#/}/" '{ print $1 "\t" p $2 }'
    done | awk -F'\t' -v cap="$cap" 'full { next } { s += $1 } s > cap { full = 1; next } { print $2 }' >"$list"
    log "copying $(wc -l <"$list") files of $* into $dst"
    tar -C / --no-recursion -cf - -T "$list" 2>>"$LOG" | tar -C "$dst" -xf -
    rm -f "$list"
    echo "$want" >"$dst.ok"
}

# An ext4 image of the system-file tree, built without mounting.
make_real_image() {
    local want="image $REAL_IMAGE_GIB $(cat "$DATA/real-sys.ok")"
    if [ -f "$REAL_IMG" ] && [ "$(cat "$REAL_IMG.ok" 2>/dev/null)" = "$want" ]; then
        log "reusing $REAL_IMG"
        return
    fi
    rm -f "$REAL_IMG" "$REAL_IMG.ok"
    truncate -s "$(awk -v g="$REAL_IMAGE_GIB" 'BEGIN { printf "%.0f", g * 1073741824 }')" "$REAL_IMG"
    log "mkfs.ext4 -d $DATA/real-sys $REAL_IMG ($REAL_IMAGE_GIB GiB)"
    mkfs.ext4 -q -F -d "$DATA/real-sys" "$REAL_IMG" >>"$LOG" 2>&1 || die "mkfs.ext4 -d failed"
    echo "$want" >"$REAL_IMG.ok"
}

real_init() { # TOOL REPO
    rm -rf "$2"
    case $1 in
        bupstash)
            [ -f "$BUPSTASH_KEY" ] || bupstash new-key -o "$BUPSTASH_KEY" >>"$LOG" 2>&1
            bupstash init -r "$2" >>"$LOG" 2>&1 || die "bupstash init failed" ;;
        *) init_repo "$1" "$2" ;;
    esac
}

# real_measure TOOL OP BYTES REPO CMD...: measure into the real part's results.
real_measure() {
    RESULTS=$REAL_RESULTS measure "$@"
}

real_backup() { # TOOL SET OP SRC
    local tool=$1 set=$2 op=$3 src=$4 repo=$REPOS/real-$1-$2 bytes
    bytes=$(sum_sizes "$src")
    case $tool in
        arca) real_measure arca "$set/$op" "$bytes" "$repo" \
            "$ARCA" --datastore "$repo" --json backup files "$src" --source "$set" ;;
        restic) real_measure restic "$set/$op" "$bytes" "$repo" \
            restic -r "$repo" backup --host bench "$src" ;;
        borg) real_measure borg "$set/$op" "$bytes" "$repo" \
            env -C "$src" borg create --compression zstd,3 "$repo::$op" . ;;
        bupstash) real_measure bupstash "$set/$op" "$bytes" "$repo" \
            env BUPSTASH_SEND_LOG="$WORK/cache/bupstash-$set.sendlog" \
            bupstash put -r "$repo" -k "$BUPSTASH_KEY" "name=$set" "run=$op" "$src" ;;
    esac
}

# real_rm DIR...: delete restore outputs, write the deletion back (sync)
# and note when, for real_restore's warm runs.
REAL_LAST_RM=0
real_rm() {
    rm -rf "$@"
    sync
    REAL_LAST_RM=$(date +%s)
}

real_restore() { # TOOL SET OP SRC (OP restore-cold drops the page cache, restore-warm not)
    local tool=$1 set=$2 op=$3 src=$4 repo=$REPOS/real-$1-$2 bytes target root warm=0
    bytes=$(sum_sizes "$src")
    target=$RESTORE/real-$tool-$set-$op
    [ "$op" = restore-warm ] && warm=1
    real_rm "$target"
    if [ "$warm" = 1 ]; then
        # ext4 without a journal skips inodes deleted less than 60 s ago
        # when it allocates (300 s while their table block is dirty) as
        # long as the table block is cached; dropping the caches clears
        # that for cold runs, a warm run has to wait it out
        # (docs/benchmarks/2026-12-03-trestore.md).
        local wait=$((REAL_LAST_RM + 65 - $(date +%s)))
        if [ "$wait" -gt 0 ]; then
            log "waiting ${wait}s after the last deletion before a warm restore"
            sleep "$wait"
        fi
    fi
    mkdir -p "$target"
    root=$target
    case $tool in
        arca) WARM=$warm real_measure arca "$set/$op" "$bytes" "" \
            "$ARCA" --datastore "$repo" restore latest "$target" --source "$set" ;;
        restic)
            WARM=$warm real_measure restic "$set/$op" "$bytes" "" \
                restic -r "$repo" restore latest --target "$target"
            root=$target$src ;;
        borg) WARM=$warm real_measure borg "$set/$op" "$bytes" "" \
            env -C "$target" borg extract "$repo::backup-2" ;;
        bupstash) WARM=$warm real_measure bupstash "$set/$op" "$bytes" "" \
            bupstash restore -r "$repo" -k "$BUPSTASH_KEY" --into "$target" "name=$set" and run=backup-2 ;;
        tar) WARM=$warm real_measure tar "$set/$op" "$bytes" "" \
            sh -c 'tar -C "$1" -cf - . | tar -C "$2" -xf -' tar "$src" "$target" ;;
    esac
    if [ "$VERIFY" = 1 ] && [ "$op" = restore-cold ]; then
        if diff -rq --no-dereference "$src" "$root" >>"$LOG" 2>&1; then
            log "$tool: restored $set tree is identical"
        else
            log "WARNING: $tool: restored $set tree differs from the source (see $LOG)"
        fi
    fi
}

real_image() { # TOOL
    local tool=$1 repo=$REPOS/real-$1-image bytes target out
    bytes=$(stat -c %s "$REAL_IMG")
    target=$RESTORE/real-$tool-image
    if [ "$tool" != cp ]; then real_init "$tool" "$repo"; fi
    local op
    for op in backup-1 backup-2; do
        case $tool in
            arca) real_measure arca "image/$op" "$bytes" "$repo" \
                "$ARCA" --datastore "$repo" --json backup image "$REAL_IMG" --source image ;;
            restic) real_measure restic "image/$op" "$bytes" "$repo" \
                restic -r "$repo" backup --host bench "$REAL_IMG" ;;
            borg) real_measure borg "image/$op" "$bytes" "$repo" \
                env -C "$DATA" borg create --compression zstd,3 --chunker-params fixed,1048576 \
                $BORG_SPARSE "$repo::$op" "$(basename "$REAL_IMG")" ;;
            bupstash) real_measure bupstash "image/$op" "$bytes" "$repo" \
                env BUPSTASH_SEND_LOG="$WORK/cache/bupstash-image.sendlog" \
                bupstash put -r "$repo" -k "$BUPSTASH_KEY" name=image "run=$op" "$REAL_IMG" ;;
            cp) break ;;
        esac
    done
    rm -rf "$target"
    mkdir -p "$target"
    out=$target/$(basename "$REAL_IMG")
    case $tool in
        arca) real_measure arca image/restore-cold "$bytes" "" \
            "$ARCA" --datastore "$repo" restore latest "$out" --source image ;;
        restic)
            real_measure restic image/restore-cold "$bytes" "" \
                restic -r "$repo" restore latest --target "$target" $RESTIC_SPARSE
            out=$target$REAL_IMG ;;
        borg) real_measure borg image/restore-cold "$bytes" "" \
            env -C "$target" borg extract --sparse "$repo::backup-2" ;;
        bupstash) real_measure bupstash image/restore-cold "$bytes" "" \
            sh -c 'bupstash get -r "$1" -k "$2" name=image and run=backup-2 >"$3"' get "$repo" "$BUPSTASH_KEY" "$out" ;;
        cp) real_measure cp image/restore-cold "$bytes" "" cp --sparse=always "$REAL_IMG" "$out" ;;
    esac
    if [ "$VERIFY" = 1 ]; then
        if cmp "$REAL_IMG" "$out" >>"$LOG" 2>&1; then
            log "$tool: restored image is identical"
        else
            log "WARNING: $tool: restored image differs from the source (see $LOG)"
        fi
    fi
    rm -rf "$target"
}

run_real() {
    install_real_tools
    : >"$REAL_RESULTS"
    # shellcheck disable=SC2086
    copy_real sys $REAL_SYS
    # shellcheck disable=SC2086
    copy_real sdk $REAL_SDK
    make_real_image
    local set tool src
    for set in $REAL_SETS; do
        [ "$set" = image ] && continue
        src=$DATA/real-$set
        log "real $set: $(sum_sizes "$src") bytes in $(find "$src" -type f | wc -l) files"
        if [ "$REAL_RESTORE_ONLY" != 1 ]; then
            for tool in $REAL_TOOLS; do
                real_init "$tool" "$REPOS/real-$tool-$set"
                real_backup "$tool" "$set" backup-1 "$src"
                real_backup "$tool" "$set" backup-2 "$src"
            done
        fi
        for tool in $REAL_TOOLS tar; do
            real_restore "$tool" "$set" restore-cold "$src"
            if [ "$REAL_WARM" = 1 ]; then real_restore "$tool" "$set" restore-warm "$src"; fi
            real_rm "$RESTORE"/real-"$tool"-"$set"-*
        done
    done
    if [[ " $REAL_SETS " == *" image "* ]]; then
        for tool in $REAL_TOOLS cp; do real_image "$tool"; done
    fi
}

real_report() {
    echo "### Real files"
    echo
    local set
    for set in sys sdk; do
        [ -d "$DATA/real-$set" ] || continue
        echo "- $set: copy of $([ $set = sys ] && echo "$REAL_SYS" || echo "$REAL_SDK") (up to $REAL_GIB GiB):" \
            "$(sum_sizes "$DATA/real-$set") bytes, $(find "$DATA/real-$set" -type f | wc -l) files," \
            "$(find "$DATA/real-$set" -type d | wc -l) directories, $(find "$DATA/real-$set" -type l | wc -l) symlinks"
    done
    echo "- image: $REAL_IMAGE_GIB GiB ext4 (\`mkfs.ext4 -d\` of the sys tree, not mounted)," \
        "$(du -B1 "$REAL_IMG" | cut -f1) bytes allocated"
    echo
    awk -f "$HERE/real.awk" "$REAL_RESULTS"
}

# ---- nbd ----

nbd_fio() { # TOOL STATE JOB URL PID: one fio run, a line in $NBD_RESULTS
    local tool=$1 state=$2 job=$3 url=$4 pid=$5 args json
    case $job in
        rand4k-qd1) args=(--rw=randread --bs=4k --iodepth=1 --runtime="$NBD_SECS" --time_based) ;;
        rand4k-qd16) args=(--rw=randread --bs=4k --iodepth=16 --runtime="$NBD_SECS" --time_based) ;;
        seq1m) args=(--rw=read --bs=1M --iodepth=4) ;;
    esac
    json=$(mktemp)
    echo "+ fio $tool $state $job $url" >>"$LOG"
    fio --name="$job" --ioengine=nbd --uri="$url" --size="$(stat -c %s "$REAL_IMG")" \
        --output-format=json "${args[@]}" >"$json" 2>>"$LOG" || die "fio $job on $tool failed"
    python3 - "$json" "$tool" "$state" "$job" "$pid" >>"$NBD_RESULTS" <<'EOF'
import json, sys
path, tool, state, job, pid = sys.argv[1:]
text = open(path).read()
r = json.loads(text[text.index("{"):])["jobs"][0]["read"]
p99 = r["clat_ns"].get("percentile", {}).get("99.000000", 0) / 1000
hwm = rss = 0
if tool == "arca":
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) / 1024
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
print(f"{tool}\t{state}\t{job}\t{r['iops']:.0f}\t{r['bw_bytes'] / 1e6:.1f}\t{p99:.0f}\t{rss:.0f}\t{hwm:.0f}")
EOF
    rm -f "$json"
    log "$(tail -n 1 "$NBD_RESULTS")"
}

NBD_PID=
nbd_start() { # TOOL PORT -> sets NBD_PID, NBD_URL
    case $1 in
        arca)
            "$ARCA" --datastore "$REPOS/real-nbd" serve nbd --listen "127.0.0.1:$2" \
                --cache-mib "$NBD_CACHE_MIB" >>"$LOG" 2>&1 &
            NBD_URL="nbd://127.0.0.1:$2/image/latest" ;;
        qemu-nbd)
            qemu-nbd -t -r -f raw -x disk -b 127.0.0.1 -p "$2" --cache=writeback -e 16 \
                "$REAL_IMG" >>"$LOG" 2>&1 &
            NBD_URL="nbd://127.0.0.1:$2/disk" ;;
    esac
    NBD_PID=$!
    local i
    for i in $(seq 50); do
        nbdinfo --size "$NBD_URL" >/dev/null 2>&1 && return
        sleep 0.2
    done
    die "$1 did not start serving on port $2"
}

nbd_stop() {
    if [ -n "$NBD_PID" ]; then
        kill "$NBD_PID" 2>/dev/null || true
        wait "$NBD_PID" 2>/dev/null || true
    fi
    NBD_PID=
}

run_nbd() {
    install_real_tools
    # shellcheck disable=SC2086
    copy_real sys $REAL_SYS
    make_real_image
    : >"$NBD_RESULTS"
    log "nbd: backing up $REAL_IMG into $REPOS/real-nbd"
    init_repo arca "$REPOS/real-nbd"
    "$ARCA" --datastore "$REPOS/real-nbd" --json backup image "$REAL_IMG" --source image >>"$LOG" 2>&1 ||
        die "arca backup image failed"
    trap nbd_stop EXIT
    local tool port=$((20000 + RANDOM % 20000)) job
    for tool in arca qemu-nbd; do
        # Cold: a fresh server after the page cache was dropped, per run.
        for job in rand4k-qd1 rand4k-qd16 seq1m; do
            drop_caches
            nbd_start "$tool" "$port"
            nbd_fio "$tool" cold "$job" "$NBD_URL" "$NBD_PID"
            nbd_stop
        done
        # Warm: after one whole sequential read by the same server.
        drop_caches
        nbd_start "$tool" "$port"
        nbd_fio "$tool" fill seq1m "$NBD_URL" "$NBD_PID"
        for job in rand4k-qd1 rand4k-qd16 seq1m; do
            nbd_fio "$tool" warm "$job" "$NBD_URL" "$NBD_PID"
        done
        nbd_stop
    done
    trap - EXIT
}

nbd_report() {
    echo "### NBD: the image restore point over NBD vs qemu-nbd on the raw file"
    echo
    echo "Image: $(stat -c %s "$REAL_IMG") bytes ($REAL_IMAGE_GIB GiB ext4 of real files);" \
        "fio $(fio --version) with its nbd engine, 4 KiB random reads for $NBD_SECS s," \
        "sequential = one whole read in 1 MiB requests (iodepth 4)." \
        "arca: \`arca serve nbd --cache-mib $NBD_CACHE_MIB\`; qemu-nbd: \`-r -e 16 --cache=writeback\`." \
        "Cold = page cache $([ "$CAN_DROP" = 1 ] && echo dropped || echo "NOT dropped (no permission)") and a fresh server per run;" \
        "warm = the same server after one whole sequential read. RSS = the arca process after the run (VmRSS / VmHWM)."
    echo
    awk -F'\t' '
        { key = $2 "/" $3; v[$1, key] = $0; iops[$1, key] = $4; mbs[$1, key] = $5; p99[$1, key] = $6
          rss[$1, key] = $7; hwm[$1, key] = $8 }
        END {
            print "| run | arca IOPS | arca MB/s | arca p99 µs | qemu-nbd IOPS | qemu-nbd MB/s | qemu-nbd p99 µs | arca / qemu-nbd | arca RSS / peak MiB |"
            print "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
            n = split("cold/rand4k-qd1 cold/rand4k-qd16 cold/seq1m warm/rand4k-qd1 warm/rand4k-qd16 warm/seq1m", keys, " ")
            for (i = 1; i <= n; i++) {
                k = keys[i]
                if (!(("arca", k) in v) || !(("qemu-nbd", k) in v)) continue
                r = (k ~ /seq/) ? mbs["arca", k] / (mbs["qemu-nbd", k] > 0 ? mbs["qemu-nbd", k] : 1) \
                                : iops["arca", k] / (iops["qemu-nbd", k] > 0 ? iops["qemu-nbd", k] : 1)
                printf "| %s | %s | %s | %s | %s | %s | %s | %.2f× | %s / %s |\n", k,
                    iops["arca", k], mbs["arca", k], p99["arca", k],
                    iops["qemu-nbd", k], mbs["qemu-nbd", k], p99["qemu-nbd", k], r, rss["arca", k], hwm["arca", k]
            }
        }' "$NBD_RESULTS"
}
