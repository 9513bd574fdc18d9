#!/usr/bin/env bash
# Fuzzes the HTTP API with schemathesis against its own /openapi.json.
#
# Installs schemathesis from PyPI into a venv under $HOME/.cache (once), starts the
# `serve_queue` example (5000 tasks queued, an API token, a 1 s long-poll cap) on a
# free loopback port, runs schemathesis with every check, and stops the server.
# Exits non-zero when schemathesis finds a failure (a 5xx, a response that breaks the
# schema, an undocumented status, ...).
#
#   scrum-http/scripts/schemathesis.sh [extra schemathesis flags, e.g. --max-examples 200]
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV="${SCHEMATHESIS_VENV:-$HOME/.cache/scrum-http/schemathesis-venv}"
if [ ! -x "$VENV/bin/schemathesis" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet 'schemathesis>=4,<5'
fi

TARGET="${CARGO_TARGET_DIR:-target}"
cargo build --quiet -p scrum-http --example serve_queue
PORT="${PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}"
TOKEN="schemathesis-token-$RANDOM$RANDOM$RANDOM"
"$TARGET/debug/examples/serve_queue" --addr "127.0.0.1:$PORT" --tasks 5000 --max-wait 1 --token "$TOKEN" &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
    sleep 0.1
done

"$VENV/bin/schemathesis" run "http://127.0.0.1:$PORT/openapi.json" \
    --header "Authorization: Bearer $TOKEN" \
    --checks all \
    --max-examples "${MAX_EXAMPLES:-100}" \
    --seed "${SEED:-1}" \
    --workers 1 \
    "$@"
