#!/usr/bin/env bash
# S3 gateway benchmark: a 1 GiB file and 10k small files through rclone
# (--transfers 4) from `arca serve s3`, vs rclone reading a restored local
# copy; warm (one untimed run first).
set -euo pipefail
ARCA=${ARCA:-/root/.cache/arca-target-s3/release/arca}
W=${W:-/tmp/s3bench/w}
rm -rf "$W"; mkdir -p "$W/big" "$W/small"
export ARCA_DATASTORE=$W/ds ARCA_PASSPHRASE=bench-pass
$ARCA datastore init "$W/ds" --encryption repokey >/dev/null
head -c $((1<<30)) /dev/urandom > "$W/big/file.bin"
python3 - "$W/small" <<'PY'
import os, sys
d = sys.argv[1]
for i in range(10000):
    sub = os.path.join(d, f"d{i // 500:02d}")
    os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, f"f{i:05d}.txt"), "wb") as f:
        f.write(os.urandom(2048 + (i % 7) * 512))
PY
$ARCA backup files "$W/big" --source big >/dev/null
$ARCA backup files "$W/small" --source small >/dev/null
$ARCA restore latest --source big "$W/rbig" >/dev/null
$ARCA restore latest --source small "$W/rsmall" >/dev/null
export ARCA_S3_ACCESS_KEY=AKIABENCHKEY00000000 ARCA_S3_SECRET_KEY=benchsecretbenchsecretbenchsecretbench00
$ARCA serve s3 --listen 127.0.0.1:18444 > "$W/serve.out" 2> "$W/serve.err" &
SRV=$!
trap 'kill $SRV' EXIT
sleep 2
R=":s3,provider=Other,endpoint='http://127.0.0.1:18444',access_key_id=$ARCA_S3_ACCESS_KEY,secret_access_key=$ARCA_S3_SECRET_KEY:"
rc() { env -u AWS_CA_BUNDLE RCLONE_CONFIG=/dev/null rclone "$@"; }
t() { local s=$(date +%s.%N); "$@"; local e=$(date +%s.%N); echo "$e - $s" | bc; }
for what in big small; do
  for run in warmup timed1 timed2; do
    rm -rf "$W/out-s3" "$W/out-local"
    ts=$(t rc copy --transfers 4 "$R$what/latest" "$W/out-s3")
    tl=$(t rc copy --transfers 4 "$W/r$what" "$W/out-local")
    echo "$what $run s3=${ts}s local=${tl}s load=$(cut -d' ' -f1-3 /proc/loadavg)"
  done
done
rc check "$W/big" "$R"big/latest --download >/dev/null 2>&1 && echo "big: rclone check --download ok"
rc check "$W/small" "$R"small/latest >/dev/null 2>&1 && echo "small: rclone check ok"
