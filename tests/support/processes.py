"""Real processes for reliability tests and benchmarks: a private stack, the API, the worker.

Everything is started on free loopback ports in its own folder and stopped by
whoever started it; readiness is always polled, never assumed after a sleep.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from scripts.free_ports import block_is_free

ROOT = Path(__file__).resolve().parents[2]


def free_port_block(count: int, start: int = 57000) -> int:
    for base in range(start, 60000, 10):
        if block_is_free(base, count):
            return base
    raise RuntimeError("no free port block")


def _read_env(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            env[key] = value
    return env


@dataclass
class IsolatedStack:
    """A stack of its own (STACK_DIR/STACK_PORT), wiped when stopped."""

    name: str
    port: int = field(default_factory=lambda: free_port_block(4))

    @property
    def folder(self) -> Path:
        return ROOT / ".local" / f"{self.name}-{self.port}"

    def _run(self, *args: str) -> None:
        done = subprocess.run(
            [str(ROOT / "stack" / "stack.sh"), *args],
            check=False,
            cwd=ROOT,
            env={**os.environ, "STACK_DIR": str(self.folder), "STACK_PORT": str(self.port)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        # stack.sh says why on stderr; a bare CalledProcessError would hide it.
        assert done.returncode == 0, f"stack.sh {' '.join(args)}: {done.stderr.strip()}"

    def up(self) -> None:
        self._run("up")

    def stop(self, piece: str) -> None:
        self._run("stop", piece)

    def destroy(self) -> None:
        self._run("down")
        shutil.rmtree(self.folder, ignore_errors=True)

    @property
    def env(self) -> dict[str, str]:
        return _read_env(self.folder / "stack.env")


@dataclass
class ServiceProcess:
    """`python -m service api|worker` as a child process."""

    command: str
    env: dict[str, str]
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {**os.environ, **self.env, "PORT": str(self.port), "LOG_LEVEL": "WARNING"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service", self.command],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def wait_healthy(self, within_seconds: float = 20.0) -> None:
        """For the API: until /health answers."""
        deadline = time.monotonic() + within_seconds
        async with httpx.AsyncClient() as client:
            while True:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.command} exited with {self.process.returncode}")
                try:
                    if (await client.get(f"{self.url}/health", timeout=1.0)).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.command} not healthy after {within_seconds}s")
                await asyncio.sleep(0.02)

    def kill9(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill9()

    def peak_rss_mb(self) -> float:
        """VmHWM: the most resident memory the process ever had."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0
