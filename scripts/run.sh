#!/usr/bin/env bash
# `make run`: the API, the worker and (unless .env names a real 360dialog) the
# fake 360dialog in the foreground, against the stack that `make up` started.
# Ctrl-C stops these three; the stack runs in sessions of its own and stays for
# `make down`. Their pid files go next to the stack's, for `make status`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

STACK_DIR="${STACK_DIR:-.local}"
[ -f "$STACK_DIR/stack.env" ] || { echo "no $STACK_DIR/stack.env: run make up first" >&2; exit 1; }
# A developer's own overrides (360dialog base URL, log level, ...) in .env,
# read by the service's own parser (not the shell: `KEY = value` and `$` mean
# the same as for `python -m service`), and, as for every entry point (README
# "Settings"), only where the caller did not set the variable
# (`LOG_FORMAT=json make run`, make's PORT). They win over stack.env.
dotenv=""
if [ -f .env ]; then
    dotenv="$(uv run --frozen python -c '
import os, sys
from pathlib import Path
from service.settings import SettingsError, shell_exports
try:
    print(shell_exports(os.environ, Path(".env")), end="")
except SettingsError as exc:
    sys.exit(f"error: {exc}")
')"
fi
set -a
# shellcheck disable=SC1091
. "$STACK_DIR/stack.env"
set +a
eval "$dotenv"
export PORT="${PORT:-8000}"
RUN_DIR="$STACK_DIR/run"
API_URL="http://127.0.0.1:$PORT"
FAKE_PORT=$((PORT + 1))
FAKE_URL="http://127.0.0.1:$FAKE_PORT"

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# One line instead of uvicorn's "address already in use" traceback.
refuse_taken_port() { # refuse_taken_port <port> <what>
    port_free "$1" && return 0
    if curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$1/health" 2>/dev/null; then
        echo "wa-inbox is already running on http://127.0.0.1:$1 (make status; stop it or set another PORT)" >&2
    else
        echo "port $1 ($2) is taken by another program; free it or set another PORT" >&2
    fi
    exit 1
}

# stack.env points D360_BASE_URL at the fake on PORT+1; .env may name the real one.
start_fake=0
if [ -z "${D360_BASE_URL:-}" ] || [ "$D360_BASE_URL" = "$FAKE_URL" ]; then
    D360_BASE_URL="$FAKE_URL"
    export D360_BASE_URL
    start_fake=1
fi
refuse_taken_port "$PORT" "the API"
[ "$start_fake" = 0 ] || refuse_taken_port "$FAKE_PORT" "the fake 360dialog"

pids=()
pidfiles=()
started() { # started <name> <pid>: remembered for Ctrl-C and `make status`
    pids+=("$2")
    echo "$2" >"$RUN_DIR/$1.pid"
    pidfiles+=("$RUN_DIR/$1.pid")
}
stop() {
    trap - INT TERM EXIT
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait
    rm -f "${pidfiles[@]}" "$RUN_DIR/api.url" "$RUN_DIR/fake360.url"
}
trap stop INT TERM EXIT

if [ "$start_fake" = 1 ]; then
    uv run --frozen python scripts/fake360.py --port "$FAKE_PORT" &
    started fake360 $!
    echo "$FAKE_URL" >"$RUN_DIR/fake360.url"
    echo "360dialog: fake on $FAKE_URL (set D360_BASE_URL in .env for the real API)" >&2
fi
uv run --frozen python -m service api &
started api $!
echo "$API_URL" >"$RUN_DIR/api.url"
uv run --frozen python -m service worker &
started worker $!
echo "wa-inbox on $API_URL (OpenAPI: /schema); Ctrl-C to stop" >&2
wait -n
