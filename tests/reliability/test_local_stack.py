"""The local stack as a developer drives it: `make up`, `make run`, Ctrl-C, `make status`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.processes import ROOT, IsolatedStack, free_port_block


def make(stack: IsolatedStack, target: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-s", target],
        cwd=ROOT,
        env={**os.environ, **stack_vars(stack), **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def stack_vars(stack: IsolatedStack) -> dict[str, str]:
    return {"STACK_DIR": str(stack.folder), "STACK_PORT": str(stack.port)}


def status(stack: IsolatedStack) -> dict[str, str]:
    """`make status` as {piece: "running"|"stopped"}; it must exit 0 either way."""
    shown = make(stack, "status")
    assert shown.returncode == 0, shown.stderr
    return {
        line.split(":")[0]: line.split()[1] for line in shown.stdout.splitlines() if line.strip()
    }


def wait_until(what: str, predicate: object, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what} not reached within {within}s"
        time.sleep(0.05)


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture
def fresh_stack() -> Iterator[IsolatedStack]:
    stack = IsolatedStack("local")
    try:
        yield stack
    finally:
        stack.destroy()


def test_up_with_a_taken_port_starts_nothing(fresh_stack: IsolatedStack) -> None:
    gateway = fresh_stack.port
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", gateway))
        squatter.listen()
        refused = make(fresh_stack, "up")

    assert refused.returncode != 0
    assert f"port {gateway} (gateway) taken; nothing started" in refused.stderr
    assert "Traceback" not in refused.stderr
    # Postgres and PostgREST come before the gateway: neither may be left running.
    assert set(status(fresh_stack).values()) == {"stopped"}
    assert not (fresh_stack.folder / "pg" / "data").exists()


def test_make_run_twice_ctrl_c_and_status(fresh_stack: IsolatedStack) -> None:
    port = free_port_block(2, start=58700)
    api_url = f"http://127.0.0.1:{port}"
    run_env = {**os.environ, **stack_vars(fresh_stack), "PORT": str(port), "LOG_LEVEL": "WARNING"}
    # Its own session stands for the terminal: Ctrl-C signals its whole group.
    first = subprocess.Popen(
        ["make", "-s", "run"],
        cwd=ROOT,
        env=run_env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until("the API answering", lambda: answers(f"{api_url}/health"), within=240)
        running = status(fresh_stack)
        assert {k: running[k] for k in ("postgres", "postgrest", "gateway", "api", "worker")} == {
            k: "running" for k in ("postgres", "postgrest", "gateway", "api", "worker")
        }
        wait_until("the fake 360dialog", lambda: status(fresh_stack)["fake360"] == "running")
        stack_env = (fresh_stack.folder / "stack.env").read_text()
        assert f"D360_BASE_URL=http://127.0.0.1:{port + 1}\n" in stack_env

        second = subprocess.run(
            [str(ROOT / "scripts" / "run.sh")],
            cwd=ROOT,
            env=run_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1
        assert second.stderr.strip() == (
            f"wa-inbox is already running on {api_url} (make status; stop it or set another PORT)"
        )

        os.killpg(first.pid, signal.SIGINT)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()

    after = status(fresh_stack)
    assert {k: after[k] for k in ("api", "worker", "fake360")} == {
        "api": "stopped",
        "worker": "stopped",
        "fake360": "stopped",
    }
    # The stack is not in the terminal's process group: it outlives Ctrl-C.
    assert {k: after[k] for k in ("postgres", "postgrest", "gateway")} == {
        "postgres": "running",
        "postgrest": "running",
        "gateway": "running",
    }
    assert answers(f"http://127.0.0.1:{fresh_stack.port + 3}/ready")

    assert make(fresh_stack, "down").returncode == 0
    assert set(status(fresh_stack).values()) == {"stopped"}


def test_stack_env_names_the_loopback_fake_360dialog(stack_env: dict[str, str]) -> None:
    # What a shell that sources stack.env hands the CLI: never the real 360dialog.
    assert stack_env["D360_BASE_URL"].startswith("http://127.0.0.1:")
