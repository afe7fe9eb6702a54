#!/usr/bin/env bash
# Build (once) and run the arca binary: `bash scripts/arca.sh <args>`.
# Without arguments it runs the all-in-one server (`arca server`).
# `bash scripts/arca.sh install [DIR]` puts `arca` on PATH instead: a copy
# in DIR (default /usr/local/bin as root, else ~/.local/bin).
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
if [ "${1:-}" = install ]; then
    if [ "$(id -u)" -eq 0 ]; then dir=${2:-/usr/local/bin}; else dir=${2:-$HOME/.local/bin}; fi
    mkdir -p "$dir"
    install -m 0755 "$CARGO_TARGET_DIR/release/arca" "$dir/arca"
    echo "installed $dir/arca ($(du -h "$dir/arca" | cut -f1))"
    case ":$PATH:" in
        *":$dir:"*) ;;
        *) echo "note: $dir is not on PATH; add it: export PATH=\"$dir:\$PATH\"" ;;
    esac
    exit 0
fi
if [ $# -eq 0 ]; then set -- server; fi
exec "$CARGO_TARGET_DIR/release/arca" "$@"
