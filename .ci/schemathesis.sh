#!/usr/bin/env bash
# Property-based API testing: schemathesis (PyPI) against the OpenAPI
# document a real `arca server` serves on loopback. Bounded by
# ST_EXAMPLES (default 25) examples per operation and a fixed seed.
#
# Checks: no 5xx, responses match the documented schemas, status codes and
# content types are documented. "Schema-valid request rejected" is not
# checked: schedules and windows are a grammar (every 15m, Mon..Fri 22:00)
# that JSON Schema cannot express, so a schema-valid string may still be a
# clear 422.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/arca-target}"
if ! command -v schemathesis >/dev/null 2>&1; then
    python3 -m pip install --quiet schemathesis || { sleep 5; python3 -m pip install --quiet schemathesis; }
fi
BIN=$CARGO_TARGET_DIR/release/arca
[ -x "$BIN" ] || cargo build --release -p arca-tools
work=$(mktemp -d)
"$BIN" server --data-dir "$work/data" --listen 127.0.0.1:0 >"$work/log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
url=
for _ in $(seq 100); do
    url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$work/log" | head -1)
    [ -n "$url" ] && [ -f "$work/data/initial-admin-password" ] && break
    sleep 0.1
done
[ -n "$url" ] || { cat "$work/log"; echo "server did not start"; exit 1; }
login() {
    URL="$url" PW="$(cat "$work/data/initial-admin-password")" python3 - <<'PY'
import json, os, urllib.request
req = urllib.request.Request(os.environ["URL"] + "/api/v1/auth/login",
    data=json.dumps({"username": "admin", "password": os.environ["PW"].strip()}).encode(),
    headers={"content-type": "application/json"})
print(json.load(urllib.request.urlopen(req))["token"])
PY
}
token=$(login)
# Every operation gets the admin's session token, /metrics included (it
# answers 401 without a token). Revoking a token (DELETE /tokens/{id})
# with generated ids revokes that very session, after which every other
# operation only sees 401: it runs last, on its own. Signing out
# (POST /auth/logout) revokes the session too: it runs first, with a
# session of its own (later passes may reset the admin's password).
# Run from the scratch directory: schemathesis keeps a cache in the cwd.
cd "$work"
revoke="DELETE /api/v1/tokens/{id}"
st() {
    schemathesis run "$url/api/v1/openapi.json" \
        -H "Authorization: Bearer $token" \
        --max-examples "${ST_EXAMPLES:-25}" --seed 1 \
        --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance,response_headers_conformance \
        "$@"
}
logout="POST /api/v1/auth/logout"
main_token=$token
token=$(login)
st --include-name "$logout"
token=$main_token
st --exclude-name "$revoke" --exclude-name "$logout"
st --include-name "$revoke"
