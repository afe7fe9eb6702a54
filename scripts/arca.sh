#!/usr/bin/env bash
# Build (once) and run the arca binary: `bash scripts/arca.sh <args>`.
# Without arguments it runs the all-in-one server (`arca server`).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/arca-target}"
if ! dpkg -s clang libclang-dev protobuf-compiler >/dev/null 2>&1; then
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq || true
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clang libclang-dev protobuf-compiler ||
        { sleep 5; $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clang libclang-dev protobuf-compiler; }
fi
cargo build --release --quiet --manifest-path "$root/Cargo.toml" --workspace --bin arca >&2
if [ $# -eq 0 ]; then set -- server; fi
exec "$CARGO_TARGET_DIR/release/arca" "$@"
