"""Access to the isolated stack that `make test` started for this run."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def load_stack_env() -> dict[str, str]:
    path = os.environ.get("WA_TEST_STACK_ENV")
    if not path:
        raise RuntimeError(
            "WA_TEST_STACK_ENV is not set: run the tests with `make test`, which starts "
            "an isolated stack and points the tests at its stack.env"
        )
    env: dict[str, str] = {}
    for line in Path(path).read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            env[key] = value
    return env


def psql(database_url: str, sql: str) -> str:
    """Run SQL as the (non-superuser) postgres role; for fixtures that need DDL."""
    result = subprocess.run(
        ["psql", database_url, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip()
