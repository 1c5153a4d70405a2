"""`python -m service ...` as a person runs it: settings from `.env`, one-line failures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def service(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Runs in `cwd` with only `env` (and what Python needs), like a fresh shell."""
    base = {
        "PATH": os.environ["PATH"],
        "HOME": str(cwd),
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        cwd=cwd,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


@pytest.mark.parametrize(
    ("command", "drop", "says"),
    [
        ("worker", "SUPABASE_SERVICE_ROLE_KEY", "error: SUPABASE_SERVICE_ROLE_KEY is not set: put"),
        ("api", "SUPABASE_SERVICE_ROLE_KEY", "error: SUPABASE_SERVICE_ROLE_KEY is not set: put"),
        ("api", "SUPABASE_ANON_KEY", "error: SUPABASE_ANON_KEY is not set: put"),
        ("api", "SUPABASE_JWT_SECRET", "error: neither SUPABASE_JWT_SECRET nor SUPABASE_JWKS_URL"),
        ("worker", "SUPABASE_URL", "error: SUPABASE_URL is not set: set it to the project URL"),
    ],
)
def test_a_missing_setting_stops_the_entry_point_with_one_line(
    stack_env: dict[str, str], tmp_path: Path, command: str, drop: str, says: str
) -> None:
    env = {k: v for k, v in stack_env.items() if k != drop}
    result = service([command], tmp_path, env)
    assert result.returncode == 2
    assert one_line(result.stderr).startswith(says)


def test_a_bad_log_level_is_one_line(stack_env: dict[str, str], tmp_path: Path) -> None:
    result = service(["worker"], tmp_path, {**stack_env, "LOG_LEVEL": "verbose"})
    assert result.returncode == 2
    assert one_line(result.stderr).startswith("error: LOG_LEVEL='verbose' is not a level")


def test_dev_token_needs_the_local_database(stack_env: dict[str, str], tmp_path: Path) -> None:
    env = {k: v for k, v in stack_env.items() if k != "DATABASE_URL"}
    result = service(["dev-token", "--email", "agent-a@example.com"], tmp_path, env)
    assert result.returncode == 2
    assert one_line(result.stderr).startswith("error: DATABASE_URL is not set")


def test_dotenv_in_the_working_directory_is_read_and_the_environment_wins(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    lines = [f"{k}={v}" for k, v in stack_env.items()] + ["LOG_LEVEL=verbose"]
    (tmp_path / ".env").write_text("\n".join(lines) + "\n")

    result = service(["workspace", "list"], tmp_path, {"LOG_LEVEL": "warning"})

    assert result.returncode == 0, result.stderr
    assert "Tienda Demo A" in result.stdout
    # Without the environment's value, .env's bad one is used and refused.
    refused = service(["workspace", "list"], tmp_path, {})
    assert refused.returncode == 2
    assert "LOG_LEVEL='verbose'" in one_line(refused.stderr)


def test_a_cli_error_is_one_line_on_stderr_and_debug_adds_the_traceback(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    argv = ["channel", "add", "--workspace-id", "00000000-0000-4000-8000-000000000009",
            "--phone-number-id", "123", "--display-phone-number", "+1", "--api-key", "k",
            "--webhook-secret", "s"]  # fmt: skip
    result = service(argv, tmp_path, stack_env)
    assert result.returncode == 1
    assert result.stdout == ""
    assert one_line(result.stderr) == (
        "error: no workspace with id 00000000-0000-4000-8000-000000000009 (see `workspace list`)"
    )

    debug = service(["--debug", *argv], tmp_path, stack_env)
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr


def test_a_usage_error_is_one_line(stack_env: dict[str, str], tmp_path: Path) -> None:
    result = service(["member", "add", "--workspace-id", "not-a-uuid"], tmp_path, stack_env)
    assert result.returncode == 2
    assert one_line(result.stderr).startswith("error: ")


def test_events_replay_of_an_unknown_event_exits_non_zero(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    result = service(["events", "replay", "999999"], tmp_path, stack_env)
    assert result.returncode == 1
    assert one_line(result.stderr) == "error: no event 999999 (see `events list`)"
