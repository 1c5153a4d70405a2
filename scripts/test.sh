#!/usr/bin/env bash
# `make test`: lint, types, pgTAP and pytest against a fresh isolated stack
# that this script starts and always stops.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"

stack/stack.sh install
# supabase-js for the frontend contract test, exactly as package-lock.json pins it.
(cd tests/frontend && npm ci --no-audit --no-fund --silent)

echo "== ruff" >&2
uv run --frozen ruff check .
uv run --frozen ruff format --check .
echo "== mypy" >&2
uv run --frozen mypy

# A free block of four ports, so a developer's own stack keeps running.
STACK_PORT="$(uv run --frozen python scripts/free_ports.py 4)"
STACK_DIR="$ROOT/.local/test-$STACK_PORT"
export STACK_DIR STACK_PORT

cleanup() {
    stack/stack.sh down || true
    rm -rf "$STACK_DIR"
}
trap cleanup EXIT
rm -rf "$STACK_DIR"
stack/stack.sh up

echo "== pgTAP" >&2
# Run as whoever runs the tests (local connections are trusted), so the
# checkout never has to be readable by the postgres OS user.
pg_prove -h "$STACK_DIR/run" -p "$((STACK_PORT + 1))" -U postgres -d postgres --ext .sql -r supabase/tests/

echo "== pytest" >&2
WA_TEST_STACK_ENV="$STACK_DIR/stack.env" uv run --frozen pytest "$@"

echo "== frontend contract (supabase-js)" >&2
(cd tests/frontend && WA_TEST_STACK_ENV="$STACK_DIR/stack.env" npm test --silent)
