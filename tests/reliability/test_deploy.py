"""deploy/: the Procfile and the systemd units start the documented processes, which work.

Each command is taken from the file itself (not retyped here), run against a
private stack the way the platform or systemd would run it, and shown to
serve: the API stores a delivery, the worker turns it into a message. Both
then stop cleanly on SIGTERM.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.inbox import CHANNEL_A, SECRET_A
from tests.support.payloads import new_phone, text_payload
from tests.support.processes import ROOT, IsolatedStack, free_port_block
from tests.support.stack import psql

DEPLOY = ROOT / "deploy"
UNITS = ("wa-inbox-api.service", "wa-inbox-worker.service", "wa-inbox.target")
# Where the units expect the checkout and the settings on a server.
INSTALL_DIR = "/opt/wa-inbox"
ENV_FILE = "/etc/wa-inbox/wa-inbox.env"


@pytest.fixture(scope="module")
def stack() -> Iterator[IsolatedStack]:
    own = IsolatedStack("deploy")
    own.up()
    try:
        yield own
    finally:
        own.destroy()


def unit_settings(name: str) -> dict[str, list[str]]:
    """The [Service] and [Unit] keys of a unit file, each with every value it is given."""
    found: dict[str, list[str]] = {}
    for line in (DEPLOY / name).read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def procfile() -> dict[str, str]:
    entries: dict[str, str] = {}
    for line in (DEPLOY / "Procfile").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, command = line.partition(":")
            entries[name.strip()] = command.strip()
    return entries


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """systemd's own parser: an unknown key or a bad value is printed (and then ignored)."""
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd-analyze (package systemd) is needed for this test"
    # The paths of a server, moved to this checkout so ExecStart names a real file.
    for name in UNITS:
        text = (DEPLOY / name).read_text().replace(INSTALL_DIR, str(ROOT))
        text = text.replace(ENV_FILE, str(tmp_path / "wa-inbox.env"))
        text = text.replace("User=wa-inbox", "User=root").replace("Group=wa-inbox", "Group=root")
        (tmp_path / name).write_text(text)
    (tmp_path / "wa-inbox.env").write_text("SUPABASE_URL=http://127.0.0.1:1\n")
    checked = subprocess.run(
        [analyze, "verify", *(str(tmp_path / name) for name in UNITS)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")


def test_the_files_start_the_documented_commands() -> None:
    """The commands of docs/OPERATIONS.md "Deploy", and nothing else."""
    operations = (ROOT / "docs" / "OPERATIONS.md").read_text()
    for process, name, entry in (
        ("api", "wa-inbox-api.service", "web"),
        ("worker", "wa-inbox-worker.service", "worker"),
    ):
        documented = f"python -m service {process}"
        assert f"| `{documented}` |" in operations
        (exec_start,) = unit_settings(name)["ExecStart"]
        assert exec_start == f"{INSTALL_DIR}/.venv/bin/{documented}"
        assert procfile()[entry].endswith(f"uv run --frozen --no-dev {documented}")
    assert procfile().keys() == {"web", "worker"}


def test_units_restart_on_failure_and_stop_with_sigterm() -> None:
    for name in ("wa-inbox-api.service", "wa-inbox-worker.service"):
        unit = unit_settings(name)
        assert unit["Restart"] == ["on-failure"], name
        assert unit["KillSignal"] == ["SIGTERM"], name
        assert unit["EnvironmentFile"] == [ENV_FILE], name
        assert unit["WorkingDirectory"] == [INSTALL_DIR], name
    target = unit_settings("wa-inbox.target")
    assert target["Wants"] == ["wa-inbox-api.service wa-inbox-worker.service"]


class Launched:
    """A launched command in a process group of its own (`uv run` has a child)."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def sigterm(self) -> int:
        # Only the started process, as systemd (KillMode=mixed) and Procfile runners do.
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)

    def kill(self) -> None:
        """After a failure: the whole group, so nothing outlives the test."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def systemd_command(name: str, settings_file: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """ExecStart and the environment systemd would give it (EnvironmentFile wins)."""
    unit = unit_settings(name)
    env = {"PATH": os.environ["PATH"]}
    for assignments in unit.get("Environment", []):
        for item in shlex.split(assignments):
            key, _, value = item.partition("=")
            env[key] = value
    env.update(settings_file)
    (exec_start,) = unit["ExecStart"]
    return shlex.split(exec_start.replace(INSTALL_DIR, str(ROOT))), env


def procfile_command(name: str, settings: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """As a Procfile runner does: `sh -c` with the platform's environment."""
    return ["sh", "-c", procfile()[name]], {**os.environ, **settings}


def wait_until(what: str, check: Callable[[], bool], within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"{what} not reached in {within}s"
        time.sleep(0.05)


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1.0).status_code == 200
    except httpx.TransportError:
        return False


@pytest.mark.parametrize("launcher", ["systemd", "procfile"])
def test_the_documented_commands_serve_and_stop_cleanly(
    stack: IsolatedStack, launcher: str
) -> None:
    port = free_port_block(1, start=58800)
    settings = {**stack.env, "PORT": str(port)}
    if launcher == "systemd":
        api_argv, api_env = systemd_command("wa-inbox-api.service", settings)
        worker_argv, worker_env = systemd_command("wa-inbox-worker.service", settings)
        assert api_env["HOST"] == "127.0.0.1"
    else:
        api_argv, api_env = procfile_command("web", settings)
        worker_argv, worker_env = procfile_command("worker", settings)
    api_url = f"http://127.0.0.1:{port}"

    api = Launched(api_argv, api_env, ROOT)
    worker = Launched(worker_argv, worker_env, ROOT)
    try:
        wait_until("the API answering /health", lambda: healthy(api_url))
        sender = new_phone()
        response = httpx.post(
            f"{api_url}/api/webhooks/whatsapp",
            content=json.dumps(text_payload(CHANNEL_A, sender, "desde deploy/")),
            headers={"X-Webhook-Secret": SECRET_A, "content-type": "application/json"},
        )
        assert response.status_code == 200
        database_url = stack.env["DATABASE_URL"]
        stored = (
            "select count(*) from messages m join conversations c on c.id = m.conversation_id "
            f"where c.phone = '+{sender}'"
        )
        wait_until("the worker storing the message", lambda: psql(database_url, stored) == "1")
        assert worker.alive()

        # A clean stop: status 0 or death by the SIGTERM sent, as systemd counts it
        # (uvicorn re-raises the signal once it has shut down); through `uv run`
        # (Procfile), uv passes the signal on and exits 128+15 like a shell.
        clean = {0, -signal.SIGTERM, 128 + signal.SIGTERM}
        assert api.sigterm() in clean
        assert worker.sigterm() in clean
        # Nothing left behind: uv did not leave the service running as an orphan.
        assert not healthy(api_url)
    finally:
        api.kill()
        worker.kill()
    leased = psql(
        stack.env["DATABASE_URL"],
        "select count(*) from webhook_events where status = 'pending' and locked_until > now()",
    )
    assert leased == "0"
