#!/usr/bin/env bash
# Bounded fuzzing of the parsers of untrusted input (arca-repo decoders, arca-calendar expressions,
# the NBD and iSCSI servers, the node protocol's messages, the NFS export's handles and allow lists; fuzz/, cargo-fuzz).
#
#   FUZZ_RUNS       iterations per target (default -1: until FUZZ_TIME)
#   FUZZ_TIME       seconds per target at most (default 30)
#   FUZZ_SANITIZER  none (default) or address
#   FUZZ_TARGETS    space-separated subset of targets (default: all)
#
# Each target's libFuzzer output goes to fuzz/artifacts/<target>/fuzz.log.
# Works on stable Rust: cargo-fuzz passes nightly-only rustc flags, which
# RUSTC_BOOTSTRAP=1 unlocks. Crash inputs land in fuzz/artifacts/<target>/;
# reproduce one with `RUSTC_BOOTSTRAP=1 cargo fuzz run -s none <target> <file>`
# from fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${FUZZ_RUNS:--1}
max_time=${FUZZ_TIME:-30}
sanitizer=${FUZZ_SANITIZER:-none}
# Outside the clone; one directory per sanitizer so that switching does not
# rebuild everything.
target_dir="${CARGO_TARGET_DIR:-$HOME/.cache/arca-target}/fuzz"
[ "$sanitizer" = none ] || target_dir="$target_dir-$sanitizer"
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="$target_dir"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

cd fuzz
targets=${FUZZ_TARGETS:-$(cargo fuzz list)}
start=$SECONDS
echo "fuzz: building ($sanitizer sanitizer) into $target_dir"
if ! cargo fuzz build -s "$sanitizer" --target-dir "$target_dir"; then
    echo "fuzz: build failed"
    exit 1
fi

passed=0
failed=0
failed_names=()
for t in $targets; do
    corpus=("corpus/$t")
    mkdir -p "corpus/$t"
    [ -d "seeds/$t" ] && corpus+=("seeds/$t")
    mkdir -p "artifacts/$t"
    log="artifacts/$t/fuzz.log"
    t0=$SECONDS
    if cargo fuzz run -s "$sanitizer" --target-dir "$target_dir" "$t" "${corpus[@]}" -- \
        -runs="$runs" -max_total_time="$max_time" -timeout=20 -print_final_stats=1 \
        >"$log" 2>&1; then
        passed=$((passed + 1))
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
        echo "fuzz: $t ok (${execs:-?} runs, ${cov:-cov: ?}, $((SECONDS - t0))s)"
    else
        failed=$((failed + 1))
        failed_names+=("$t")
        echo "fuzz: $t FAILED ($((SECONDS - t0))s); full log in fuzz/$log"
        grep -E -A1 'panicked at|ERROR: |SUMMARY: |Test unit written|^Base64: |^error' "$log" | head -n 40 | sed 's/^/    /' || tail -n 40 "$log" | sed 's/^/    /'
    fi
done

echo "fuzz: total $((SECONDS - start))s${failed_names:+; failed: ${failed_names[*]} (inputs in fuzz/artifacts/)}"
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
