#!/usr/bin/env bash
# Second pass on the same datastore: both rclone copies with
# --ignore-checksum (rclone local->local otherwise hashes both sides),
# and a plain read of the restored copy (cat, warm).
set -euo pipefail
ARCA=${ARCA:-/root/.cache/arca-target-s3/release/arca}
W=${W:-/tmp/s3bench/w}
export ARCA_DATASTORE=$W/ds ARCA_PASSPHRASE=bench-pass
export ARCA_S3_ACCESS_KEY=AKIABENCHKEY00000000 ARCA_S3_SECRET_KEY=benchsecretbenchsecretbenchsecretbench00
ARCA_LOG=warn $ARCA serve s3 --listen 127.0.0.1:18444 > "$W/serve.out" 2> "$W/serve.err" &
SRV=$!
trap 'kill $SRV' EXIT
sleep 2
R=":s3,provider=Other,endpoint='http://127.0.0.1:18444',access_key_id=$ARCA_S3_ACCESS_KEY,secret_access_key=$ARCA_S3_SECRET_KEY:"
rc() { env -u AWS_CA_BUNDLE RCLONE_CONFIG=/dev/null rclone "$@"; }
t() { local s=$(date +%s.%N); "$@"; local e=$(date +%s.%N); echo "$e - $s" | bc; }
for what in big small; do
  for run in warmup timed1 timed2; do
    rm -rf "$W/out-s3" "$W/out-local"
    ts=$(t rc copy --ignore-checksum --transfers 4 "$R$what/latest" "$W/out-s3")
    tl=$(t rc copy --ignore-checksum --transfers 4 "$W/r$what" "$W/out-local")
    tc=$(t sh -c "find '$W/r$what' -type f -exec cat {} + > /dev/null")
    echo "$what $run s3=${ts}s local=${tl}s cat=${tc}s load=$(cut -d' ' -f1-3 /proc/loadavg)"
  done
done
