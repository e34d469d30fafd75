#!/usr/bin/env bash
# Validates the gateway's OpenAPI document and fuzzes the API from it (issue 13).
#
# Starts the built `hostbridge serve` on the embedded default (in-process data and
# training, a copy of the sample store in a temp dir, a free port, no API key), fetches
# /api/v1/openapi.json, validates it with openapi-spec-validator, then runs schemathesis
# against it, bounded by a number of examples per operation and a wall-clock budget, with
# the checks not_a_server_error, status_code_conformance and response_schema_conformance.
# Exits non-zero on any failure; the server is always stopped.
#
# Needs: the debug binary (cargo build --workspace --bins), python3 with venv, PyPI.
# Tunables (environment): OPENAPI_CHECK_MAX_EXAMPLES (default 30),
# OPENAPI_CHECK_MAX_TIME seconds of fuzzing (default 150), OPENAPI_CHECK_VENV (where
# the Python tools are installed; default under the target dir, reused between runs),
# OPENAPI_CHECK_REPORT_DIR (schemathesis' JUnit report; default a temp dir).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET" in /*) ;; *) TARGET=$ROOT/$TARGET ;; esac
BIN=$TARGET/debug/hostbridge
MAX_EXAMPLES=${OPENAPI_CHECK_MAX_EXAMPLES:-30}
MAX_TIME=${OPENAPI_CHECK_MAX_TIME:-150}
VENV=${OPENAPI_CHECK_VENV:-$TARGET/openapi-check-venv}
# Versions that install and run on the machines' Python 3.11.
PINS=(schemathesis==4.32.5 openapi-spec-validator==0.9.0)

log() { printf 'openapi-check: %s\n' "$*" >&2; }

if [[ ! -x "$BIN" ]]; then
    log "no $BIN: build it first (cargo build --workspace --bins)"
    exit 2
fi

# The Python tools, in their own venv (installed once, then only checked).
installed=$("$VENV/bin/pip" freeze 2>/dev/null || true)
if ! grep -qx "${PINS[0]}" <<<"$installed" || ! grep -qx "${PINS[1]}" <<<"$installed"; then
    log "installing ${PINS[*]} into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PINS[@]}"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/openapi-check.XXXXXX")
SERVER_PID=
stop_server() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        # SIGTERM drains and ends running loads and trainings; SIGKILL if that hangs.
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            log "the gateway did not stop within 10 s of SIGTERM; killing it"
            kill -KILL "$SERVER_PID" 2>/dev/null || true
        fi
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=
}
cleanup() {
    local status=$?
    stop_server
    if [[ $status -ne 0 && -f "$WORK/server.log" ]]; then
        log "gateway log (last 40 lines):"
        tail -n 40 "$WORK/server.log" >&2 || true
    fi
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

PORT=$(free_port)
# Nothing listens there: fetching loads fail fast instead of waiting on an IB Gateway.
IB_PORT=$(free_port)
BASE=http://127.0.0.1:$PORT
cp -r "$ROOT/data" "$WORK/data"
mkdir -p "$WORK/models"

log "starting $BIN serve on $BASE"
# The embedded default: no host services, no Kafka, no key, whatever the caller's
# environment says.
env -u HOSTBRIDGE_API_KEY -u USE_IB_HOST_SERVICE -u USE_TRAINING_HOST_SERVICE \
    -u KAFKA_BOOTSTRAP_SERVERS -u KAFKA_COMMANDS_TOPIC -u REDIS_URL \
    EVENT_MODE=socketio RUST_LOG=${RUST_LOG:-warn} \
    "$BIN" serve --bind "127.0.0.1:$PORT" --data-dir "$WORK/data" \
    --models-dir "$WORK/models" --strategies-dir "$ROOT/strategies" \
    --state "$WORK/operations.redb" --ib-address "127.0.0.1:$IB_PORT" \
    --max-sessions 1 >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

"$VENV/bin/python" - "$BASE" "$WORK/openapi.json" <<'PY'
import json, sys, time, urllib.request
base, out = sys.argv[1], sys.argv[2]
deadline = time.monotonic() + 60
while True:
    try:
        with urllib.request.urlopen(base + "/api/v1/health", timeout=5) as r:
            if r.status == 200:
                break
    except OSError:
        pass
    if time.monotonic() > deadline:
        sys.exit("the gateway did not answer /api/v1/health within 60 s")
    time.sleep(0.2)
with urllib.request.urlopen(base + "/api/v1/openapi.json", timeout=10) as r:
    doc = json.load(r)
with open(out, "w") as f:
    json.dump(doc, f)
print(f"openapi-check: {doc['openapi']} document, {len(doc['paths'])} paths, "
      f"{len(doc['components']['schemas'])} schemas", file=sys.stderr)
PY

log "validating the document"
"$VENV/bin/openapi-spec-validator" "$WORK/openapi.json"

# Two operations answer 503 by design on the embedded default, and both are documented:
# head-timestamp asks the IB Gateway, which is not there (the message names it), and a
# training start beyond the session limit is refused as busy (DESIGN.md's contract).
# Only there is a 503 accepted; a 500, or any 5xx elsewhere, fails the run.
cat >"$WORK/schemathesis.toml" <<'TOML'
[[operations]]
include-path = "/api/v1/data/{symbol}/{timeframe}/head-timestamp"
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "503"]

[[operations]]
include-path = "/api/v1/trainings/start"
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "503"]
TOML

REPORT_DIR=${OPENAPI_CHECK_REPORT_DIR:-$WORK/report}
mkdir -p "$REPORT_DIR"
log "fuzzing: at most $MAX_EXAMPLES examples per operation, $MAX_TIME s"
started=$(date +%s)
# The SSE streams never end by themselves, so they are left to the Rust tests (which
# read their first event); every other operation is fuzzed. `timeout` is the hard
# bound should schemathesis itself hang.
status=0
cd "$WORK" # schemathesis and hypothesis write their scratch files here
timeout --kill-after=10 $((MAX_TIME + 120)) \
    "$VENV/bin/schemathesis" --config-file "$WORK/schemathesis.toml" \
    run "$BASE/api/v1/openapi.json" \
    --url "$BASE" \
    --checks not_a_server_error,status_code_conformance,response_schema_conformance \
    --exclude-path-regex '/events$' \
    --max-examples "$MAX_EXAMPLES" \
    --max-time "$MAX_TIME" \
    --request-timeout 45 \
    --workers 2 \
    --seed "${OPENAPI_CHECK_SEED:-13}" \
    --suppress-health-check all \
    --generation-database none \
    --report junit --report-dir "$REPORT_DIR" \
    --no-color || status=$?
log "schemathesis finished in $(($(date +%s) - started)) s with status $status"
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    log "the gateway died during the run"
    status=1
fi
exit "$status"
