#!/usr/bin/env bash
# `make run`: the service (and the worker) in the foreground against the stack
# that `make up` started. Ctrl-C stops them; the stack stays for `make down`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

STACK_DIR="${STACK_DIR:-.local}"
[ -f "$STACK_DIR/stack.env" ] || { echo "no $STACK_DIR/stack.env: run make up first" >&2; exit 1; }
set -a
# shellcheck disable=SC1091
. "$STACK_DIR/stack.env"
# A developer's own overrides (360dialog base URL, log level, ...).
[ -f .env ] && . ./.env
PORT="${PORT:-8000}"
set +a

pids=()
# No 360dialog configured: replies and media go to a loopback stand-in, so the
# README's session works offline. Set D360_BASE_URL in .env for the real one.
if [ -z "${D360_BASE_URL:-}" ]; then
    D360_BASE_URL="http://127.0.0.1:$((PORT + 1))"
    export D360_BASE_URL
    uv run --frozen python scripts/fake360.py --port "$((PORT + 1))" &
    pids+=($!)
    echo "360dialog: fake on $D360_BASE_URL (set D360_BASE_URL in .env for the real API)" >&2
fi
stop() {
    trap - INT TERM EXIT
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait
}
trap stop INT TERM EXIT

uv run --frozen python -m service api &
pids+=($!)
uv run --frozen python -m service worker &
pids+=($!)
echo "wa-inbox on http://127.0.0.1:$PORT (OpenAPI: /schema); Ctrl-C to stop" >&2
wait -n
