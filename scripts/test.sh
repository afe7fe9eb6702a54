#!/usr/bin/env bash
# The whole test suite: system packages, formatting, lints, unit/property
# and end-to-end tests, schemathesis against the API, and bounded fuzzing. Works on a fresh Debian 12
# machine; reuses a cargo target directory outside the clone.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/arca-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq || true
    # Debian mirrors occasionally miss an archive once; retry.
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
        { sleep 5; $sudo apt-get update -qq || true;
          $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; }
}

# Like apt_install, from Debian's bookworm-backports suite (added to the
# apt sources if missing).
apt_install_backports() {
    local missing=()
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing ${missing[*]} from bookworm-backports"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/ ||
        echo "deb http://deb.debian.org/debian bookworm-backports main" |
        $sudo tee /etc/apt/sources.list.d/backports.list >/dev/null
    $sudo apt-get update -qq || true
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -t bookworm-backports "${missing[@]}" ||
        { sleep 5; $sudo apt-get update -qq || true;
          $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -t bookworm-backports "${missing[@]}"; }
}

# clang/libclang for RocksDB's bindings; protoc for the node protocol's
# gRPC code; diffutils for cmp in the tests; libnbd-bin (nbdinfo, nbdcopy)
# as NBD clients (qemu-img and qemu-io come with the machine); libiscsi-bin
# (iscsi-ls, iscsi-inq, iscsi-test-cu, ...) and libiscsi-dev (the tests build a
# small libiscsi client) as iSCSI initiators.
apt_install clang libclang-dev protobuf-compiler diffutils libnbd-bin libiscsi-bin libiscsi-dev
# File access (issue 15): partitioned disk images with ext4, FAT and NTFS
# inside (fdisk: sfdisk, gdisk: sgdisk, dosfstools + mtools, ntfs-3g:
# mkntfs and the FUSE driver that fills the NTFS images, attr: setfattr
# for ntfs-3g's system.* attributes), NFS clients (libnfs-utils: nfs-ls,
# nfs-cat, nfs-cp) and an S3 client (rclone; awscli and boto3 come from
# pip below).
apt_install fdisk gdisk dosfstools mtools ntfs-3g attr libnfs-utils rclone
# The web UI's end-to-end tests (tests/ui.rs): Debian's chromium, driven
# headless by playwright-core; Node.js and npm install playwright-core and
# axe-core from tests/ui/package-lock.json (the test does `npm ci` itself).
apt_install chromium fonts-dejavu-core
command -v npm >/dev/null || apt_install nodejs npm
# VM ingest over libvirt (tests/libvirt.rs): libvirtd with the QEMU/KVM
# driver and QEMU 10 from bookworm-backports (stable's qemu-system 7.2
# would replace the qemu-img 10 the image tests use), an sshd for the
# tests' own loopback server (and ssh-keygen), and libssl-dev + pkg-config
# for libssh2-sys (the ssh2 crate links the system OpenSSL).
apt_install_backports libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils
apt_install openssh-server openssh-client libssl-dev pkg-config
python3 -c "import boto3" 2>/dev/null && command -v aws >/dev/null ||
    python3 -m pip install --quiet awscli boto3 ||
    { sleep 5; python3 -m pip install --quiet awscli boto3; }

echo "== cargo fmt"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --release --workspace --all-targets -- -D warnings
echo "== cargo test"
cargo test --release --workspace
echo "== schemathesis against the served OpenAPI document"
bash .ci/schemathesis.sh
if [ -x .ci/fuzz.sh ] || [ -f .ci/fuzz.sh ]; then
    echo "== fuzz (bounded)"
    bash .ci/fuzz.sh
fi
echo "== all tests passed"
