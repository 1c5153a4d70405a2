# The two commands of the README are `make run` and `make test`.
# STACK_DIR / STACK_PORT / PORT select an isolated instance (see README).
STACK_DIR ?= .local
# Not 54321: that block is the Supabase CLI's, and both may run on one machine.
STACK_PORT ?= 54421
PORT ?= 8000
export STACK_DIR STACK_PORT PORT
# Where stack/stack.sh installs uv when the machine has none (Debian 12's
# Python refuses a system-wide pip install).
export PATH := $(CURDIR)/.tools/bin:$(PATH)

.PHONY: up down reset migrate status install run test lint bench

install:
	@stack/stack.sh install

up:
	@stack/stack.sh up

down:
	@stack/stack.sh down

reset:
	@stack/stack.sh reset

migrate:
	@stack/stack.sh migrate

status:
	@stack/stack.sh status

run: up
	@scripts/run.sh

test:
	@scripts/test.sh

# Benchmarks (not part of `make test`): each runs on a private stack it removes.
bench: install
	@command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive $(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -q wrk >/dev/null
	@uv run --frozen python bench/ingest.py
	@uv run --frozen python bench/poison.py
	@uv run --frozen python bench/inbox.py
	@uv run --frozen python bench/realtime_cost.py
	@uv run --frozen python bench/upload.py

lint: install
	@uv run --frozen ruff check .
	@uv run --frozen ruff format --check .
	@uv run --frozen mypy
