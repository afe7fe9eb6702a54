#!/bin/sh
# Image restore vs restore --path disk.img (the file-tree path), 256 MiB.
set -e
B=${ARCA:-arca}
D=${WORK:-/tmp/cli-bench/w}; rm -rf $D; mkdir -p $D
export ARCA_DATASTORE=$D/ds ARCA_PASSPHRASE=bench
$B datastore init >/dev/null 2>&1 || $B init >/dev/null
# 256 MiB: half random, half zero (holes).
head -c 134217728 /dev/urandom > $D/disk.raw; truncate -s 268435456 $D/disk.raw
$B backup image $D/disk.raw --source vm >/dev/null
t() { s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N); echo "$(echo "$e - $s" | bc) s: $*"; }
for i in 1 2 3; do
  rm -rf $D/o1 $D/o2
  t $B restore latest $D/o1
  t $B restore latest $D/o2 --path disk.img
done
cmp $D/disk.raw $D/o2/disk.img && echo same-bytes
du -k $D/o1 $D/o2/disk.img
t $B ls latest -r
t $B find '*.img' --images
