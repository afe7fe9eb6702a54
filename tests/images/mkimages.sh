#!/bin/sh
# Build the disk images the file-access tests read (frontends' tree of
# image restore points; after the merge also downloads, the CLI, S3 and
# NFS), with the real tools: sfdisk, sgdisk, mkfs.ext4 -d, mkfs.vfat,
# mtools, mkntfs + ntfs-3g (FUSE, userspace), truncate, dd. Run as:
# tests/images/mkimages.sh OUT [bigdir [COUNT]]
#
# OUT/src/          the files put on every file system (what tests compare
#                   against); OUT/src-fat/ the subset FAT can hold (no
#                   links, no fifo, no 255-byte names); OUT/src-ntfs/
#                   what the NTFS file systems hold (src-fat without
#                   random5m.bin, with random3m.bin, a hard link, an
#                   Interix symlink as ntfs-3g makes them, a Windows
#                   symlink (reparse point), a name with quotes)
# OUT/mbr.img       MBR: 1 ext4, 2 FAT32, 3 extended with 5 FAT16, 6 FAT12,
#                   4 NTFS
# OUT/gpt.img       GPT: 1 FAT16, 2 ext4, 3 unformatted, 4 NTFS
# OUT/fat.img       FAT32 on the whole disk (no partition table)
# OUT/ext4.img      ext4 on the whole disk
# OUT/ntfs.img      NTFS on the whole disk; it alone also holds (not in
#                   src-ntfs) ntfs-only/packed/c.txt, NTFS-compressed (it
#                   cannot be read), and ntfs-only/junction -> C:\Users;
#                   the partitions' NTFS read whole
# OUT/bigdir.img    (with "bigdir [COUNT]") ext4 on the whole disk whose
#                   /big holds COUNT (100000) empty files f000000, f000001...
#                   (minutes of CPU: mkfs.ext4 -d links entries one by one)
# OUT/bigntfs.img   (with "bigdir [COUNT]") the same on NTFS (160 MiB: a
#                   1 KiB file record per file; ~30 s through ntfs-3g)
#
# Times: every source file's mtime is set to 2024-05-06 07:08:10 UTC (an
# even second: FAT keeps 2 s).
set -eu
OUT=$1
export PATH="$PATH:/sbin:/usr/sbin"
export LC_ALL=C.UTF-8
export MTOOLS_SKIP_CHECK=1
rm -rf "$OUT"
mkdir -p "$OUT/src/sub/deeper" "$OUT/src/日本"
S=$OUT/src
printf 'hello\n' > "$S/hello.txt"
: > "$S/empty"
head -c 5242880 /dev/urandom > "$S/random5m.bin"
printf 'café\n' > "$S/é.txt"
printf 'nihon\n' > "$S/日本/名前.txt"
printf 'space\n' > "$S/with space.txt"
printf 'dash\n' > "$S/-leading"
printf 'hash\n' > "$S/#hash"
printf 'pct\n' > "$S/%pct"
printf 'deep\n' > "$S/sub/deeper/deep.txt"
printf 'ro\n' > "$S/readonly.txt"
chmod 0444 "$S/readonly.txt"
printf '#!/bin/sh\n' > "$S/run.sh"
chmod 0755 "$S/run.sh"
# Sparse: 8 MiB with 4 KiB of data at 4 MiB.
truncate -s 8M "$S/sparse.bin"
printf 'in the middle' | dd of="$S/sparse.bin" bs=1 seek=4194304 conv=notrunc status=none
cp -r "$S" "$OUT/src-fat"
N=$OUT/src-ntfs
cp -r "$S" "$N"
rm "$N/random5m.bin"
head -c 3145728 "$S/random5m.bin" > "$N/random3m.bin"
ln "$N/hello.txt" "$N/hardlink.txt"
printf 'odd\n' > "$N/it's \"odd\" name.txt"
ln -s hello.txt "$N/fastlink"
ln -s sub/deeper/deep.txt "$N/winlink"
# What only ext4 holds.
ln "$S/hello.txt" "$S/hardlink.txt"
ln -s hello.txt "$S/fastlink"
ln -s "sub/deeper/$(printf 'x%.0s' $(seq 1 70))/../../deeper/deep.txt" "$S/slowlink"
mkfifo "$S/fifo"
LONG=$(printf 'n%.0s' $(seq 1 251))
printf 'long\n' > "$S/${LONG}.txt"
chown -h 1234:5678 "$S/sub/deeper/deep.txt" 2>/dev/null || true
find "$S" "$OUT/src-fat" "$N" -exec touch -h -d '2024-05-06 07:08:10 UTC' {} +

MiB=1048576
mkext4() { # IMAGE SIZE_MIB SRC [mkfs options]
    img=$1 size=$2 src=$3
    shift 3
    rm -f "$img"
    truncate -s "${size}M" "$img"
    mkfs.ext4 -q -F -b 4096 "$@" -d "$src" -E root_owner=0:0 "$img"
}
mkfat() { # IMAGE SIZE_MIB BITS SRC
    rm -f "$1"
    truncate -s "$2M" "$1"
    mkfs.vfat -F "$3" -n ARCA "$1" >/dev/null
    # mcopy -s copies the tree; -p keeps times (-m the mtime).
    (cd "$4" && for f in * .[!.]*; do
        [ -e "$f" ] || continue
        mcopy -i "$1" -s -m "./$f" ::/
    done)
    if [ -e "$4/readonly.txt" ]; then mattrib -i "$1" +r ::/readonly.txt; fi
}
# NTFS, filled through ntfs-3g. winlink becomes a Windows symlink to
# sub\deeper\deep.txt: reparse data of tag IO_REPARSE_TAG_SYMLINK (LE
# 0xA000000C), data length, 0, then substitute name at 0 and print name
# at LEN (LEN bytes each), flags 1 (relative), the two names in UTF-16LE.
utf16hex() { printf '%s' "$1" | iconv -f UTF-8 -t UTF-16LE | od -An -tx1 | tr -d ' \n'; }
mkntfs_img() { # IMAGE SIZE_MIB SRC [extras]
    rm -f "$1"
    truncate -s "$2M" "$1"
    mkntfs -F -Q -q -L ARCA "$1" 2>/dev/null
    m=$T/ntfs-mnt
    mkdir -p "$m"
    # ntfs-3g in the foreground, waited for after the unmount: it writes
    # its last changes when the FUSE connection closes.
    ntfs-3g -o no_detach,compression "$1" "$m" >"$T/ntfs-3g.log" 2>&1 &
    pid=$!
    trap 'fusermount -u "$m" 2>/dev/null; wait $pid' EXIT
    i=0
    until mountpoint -q "$m"; do
        i=$((i + 1))
        if [ $i -gt 100 ] || ! kill -0 $pid 2>/dev/null; then
            echo "mkimages.sh: ntfs-3g cannot mount $1 (FUSE needed: /dev/fuse)" >&2
            exit 1
        fi
        sleep 0.1
    done
    # One cp: hard links stay links.
    cp -a "$3/." "$m/"
    if [ -L "$3/winlink" ]; then
        # Made again as a Windows symlink, its times set first: ntfs-3g
        # cannot set a symlink's times.
        rm "$m/winlink"
        touch -d '2024-05-06 07:08:10 UTC' "$m/winlink"
        name=$(utf16hex 'sub\deeper\deep.txt')
        len=$((${#name} / 2))
        hex=0c0000a0$(printf '%02x%02x' $(((12 + 2 * len) % 256)) $(((12 + 2 * len) / 256)))0000
        hex=${hex}0000$(printf '%02x00' $len)$(printf '%02x00' $len)$(printf '%02x00' $len)01000000$name$name
        setfattr -h -n system.ntfs_reparse_data -v "0x$hex" "$m/winlink"
    fi
    if [ -e "$3/readonly.txt" ]; then
        setfattr -h -n system.ntfs_attrib_be -v 0x00000001 "$m/readonly.txt"
    fi
    # A DOS 8.3 name beside the long one (Windows makes them; the tree
    # shows only the long name).
    if [ -e "$3/with space.txt" ]; then
        setfattr -h -n system.ntfs_dos_name -v WITHSP~1.TXT "$m/with space.txt"
    fi
    # Only in ntfs.img (tests of what cannot be read): an NTFS-compressed
    # file (a directory with the compressed attribute compresses what is
    # written in it) and a junction (IO_REPARSE_TAG_MOUNT_POINT, LE
    # 0xA0000003) to C:\Users: substitute name \??\C:\Users at 0, print
    # name C:\Users after it.
    if [ "${4:-}" = extras ]; then
        mkdir -p "$m/ntfs-only/packed" "$m/ntfs-only/junction"
        setfattr -h -n system.ntfs_attrib_be -v 0x00000810 "$m/ntfs-only/packed"
        yes compressible | head -c 200000 > "$m/ntfs-only/packed/c.txt"
        sub=$(utf16hex '\??\C:\Users')
        prn=$(utf16hex 'C:\Users')
        sl=$((${#sub} / 2))
        pl=$((${#prn} / 2))
        dl=$((8 + sl + pl + 4))
        hex=030000a0$(printf '%02x%02x' $((dl % 256)) $((dl / 256)))0000
        hex=${hex}0000$(printf '%02x00' $sl)$(printf '%02x00' $sl)$(printf '%02x00' $pl)$sub${prn}00000000
        setfattr -h -n system.ntfs_reparse_data -v "0x$hex" "$m/ntfs-only/junction"
    fi
    find "$m" -mindepth 1 ! -name winlink ! -name junction -exec touch -h -d '2024-05-06 07:08:10 UTC' {} +
    fusermount -u "$m"
    wait $pid
    trap - EXIT
}
place() { # DISK IMAGE START_MIB
    dd if="$2" of="$1" bs=$MiB seek="$3" conv=notrunc,sparse status=none
}

T=$OUT/tmp
mkdir -p "$T"
mkext4 "$T/ext4-24.img" 24 "$S"
mkfat "$T/fat32.img" 40 32 "$OUT/src-fat"
mkfat "$T/fat16.img" 16 16 "$OUT/src-fat"
mkdir -p "$T/small" && printf 'twelve\n' > "$T/small/twelve.txt"
touch -d '2024-05-06 07:08:10 UTC' "$T/small/twelve.txt"
mkfat "$T/fat12.img" 4 12 "$T/small"
mkntfs_img "$T/ntfs.img" 16 "$N"
mkntfs_img "$T/ntfs-extras.img" 16 "$N" extras

# MBR: 1 ext4 (1-25 MiB), 2 FAT32 (25-65), 3 extended (65-90) with
# 5 FAT16 (66-82) and 6 FAT12 (83-87), 4 NTFS (90-106).
truncate -s 106M "$OUT/mbr.img"
sfdisk -q "$OUT/mbr.img" <<EOF
label: dos
start=2048, size=49152, type=83
start=51200, size=81920, type=c
start=133120, size=51200, type=5
start=184320, size=32768, type=7
start=135168, size=32768, type=6
start=169984, size=8192, type=1
EOF
place "$OUT/mbr.img" "$T/ext4-24.img" 1
place "$OUT/mbr.img" "$T/fat32.img" 25
place "$OUT/mbr.img" "$T/fat16.img" 66
place "$OUT/mbr.img" "$T/fat12.img" 83
place "$OUT/mbr.img" "$T/ntfs.img" 90

# GPT: 1 FAT16 (1-17 MiB), 2 ext4 (17-41), 3 unformatted (41-45),
# 4 NTFS (45-61).
truncate -s 62M "$OUT/gpt.img"
sgdisk -n 1:2048:34815 -t 1:0700 -n 2:34816:83967 -t 2:8300 -n 3:83968:92159 \
    -n 4:92160:124927 -t 4:0700 "$OUT/gpt.img" >/dev/null
place "$OUT/gpt.img" "$T/fat16.img" 1
place "$OUT/gpt.img" "$T/ext4-24.img" 17
place "$OUT/gpt.img" "$T/ntfs.img" 45

cp "$T/fat32.img" "$OUT/fat.img"
cp "$T/ext4-24.img" "$OUT/ext4.img"
cp "$T/ntfs-extras.img" "$OUT/ntfs.img"

if [ "${2:-}" = bigdir ]; then
    n=${3:-100000}
    # Fast path: the kernel fills the directory of a loop-mounted file
    # system in seconds; `mkfs.ext4 -d` links each name by scanning the
    # directory (minutes of CPU for 100k names). Same result either way: an
    # ext4 file system whose /big holds n empty files.
    mkdir -p "$T/empty" "$T/mnt"
    mkext4 "$OUT/bigdir.img" 64 "$T/empty" -N 110000
    if mount -o loop "$OUT/bigdir.img" "$T/mnt" 2>/dev/null; then
        mkdir "$T/mnt/big"
        (cd "$T/mnt/big" && seq -f 'f%06g' 0 $((n - 1)) | xargs touch)
        umount "$T/mnt"
    else
        B=$T/bigsrc/big
        mkdir -p "$B"
        (cd "$B" && seq -f 'f%06g' 0 $((n - 1)) | xargs touch)
        mkext4 "$OUT/bigdir.img" 64 "$T/bigsrc" -N 110000
    fi
    truncate -s 160M "$OUT/bigntfs.img"
    mkntfs -F -Q -q "$OUT/bigntfs.img" 2>/dev/null
    m=$T/ntfs-mnt
    mkdir -p "$m"
    ntfs-3g -o no_detach "$OUT/bigntfs.img" "$m" >"$T/ntfs-3g.log" 2>&1 &
    pid=$!
    trap 'fusermount -u "$m" 2>/dev/null; wait $pid' EXIT
    i=0
    until mountpoint -q "$m"; do
        i=$((i + 1))
        if [ $i -gt 100 ] || ! kill -0 $pid 2>/dev/null; then
            echo "mkimages.sh: ntfs-3g cannot mount $OUT/bigntfs.img (FUSE needed: /dev/fuse)" >&2
            exit 1
        fi
        sleep 0.1
    done
    mkdir "$m/big"
    (cd "$m/big" && seq -f 'f%06g' 0 $((n - 1)) | xargs touch)
    fusermount -u "$m"
    wait $pid
    trap - EXIT
fi
rm -rf "$T"
