"""CORS for browser frontends, and one log format (text or JSON) that never carries a secret."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.logs import configure_logging
from service.settings import Settings
from tests.support.inbox import CHANNEL_A
from tests.support.payloads import new_phone, text_payload
from tests.support.processes import free_port_block

ROOT = Path(__file__).resolve().parents[2]
FRONTEND = "http://localhost:3000"


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
    }


async def test_a_listed_origin_passes_the_preflight(settings: Settings) -> None:
    allowed = msgspec.structs.replace(settings, cors_allowed_origins=(FRONTEND,))
    async with AsyncTestClient(app=create_app(allowed)) as client:
        response = await client.options("/api/conversations", headers=preflight(FRONTEND))
        actual = await client.get("/api/conversations", headers={"Origin": FRONTEND})
    assert response.status_code in (200, 204)
    assert response.headers["access-control-allow-origin"] == FRONTEND
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "idempotency-key" in response.headers["access-control-allow-headers"].lower()
    # The real request (here refused: no token) carries the header too, so the browser reads it.
    assert actual.status_code == 401
    assert actual.headers["access-control-allow-origin"] == FRONTEND


async def test_another_origin_is_refused(settings: Settings) -> None:
    allowed = msgspec.structs.replace(settings, cors_allowed_origins=(FRONTEND,))
    async with AsyncTestClient(app=create_app(allowed)) as client:
        response = await client.options(
            "/api/conversations", headers=preflight("http://evil.example")
        )
        actual = await client.get("/api/conversations", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-origin" not in actual.headers


async def test_no_origin_is_allowed_by_default(settings: Settings) -> None:
    async with AsyncTestClient(app=create_app(settings)) as client:
        response = await client.options("/api/conversations", headers=preflight(FRONTEND))
    assert "access-control-allow-origin" not in response.headers


# --- logs ----------------------------------------------------------------------------------


@pytest.fixture
def json_log(settings: Settings) -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    configure_logging("INFO", "json", secrets=settings.secrets, stream=stream)
    try:
        yield stream
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])


async def test_api_lines_are_json_with_the_request_id(
    settings: Settings, json_log: io.StringIO
) -> None:
    body = json.dumps(text_payload(CHANNEL_A, new_phone(), "hola")).encode()
    async with AsyncTestClient(app=create_app(settings)) as client:
        response = await client.post(
            "/api/webhooks/whatsapp",
            content=body,
            headers={"X-Webhook-Secret": "wrong", "X-Request-Id": "trace-42"},
        )
        fresh = await client.get("/health")
    assert response.status_code == 401
    assert response.headers["x-request-id"] == "trace-42"
    assert len(fresh.headers["x-request-id"]) == 16  # one of ours when the caller sent none

    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    refused = [line for line in lines if line["message"].startswith("webhook refused")]
    assert refused, lines
    assert refused[0]["request_id"] == "trace-42"
    assert refused[0]["level"] == "warning"
    assert set(refused[0]) >= {"ts", "level", "logger", "message", "request_id"}


def test_no_line_carries_a_key_token_or_secret(settings: Settings, json_log: io.StringIO) -> None:
    log = logging.getLogger("service.test")
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXZhbHVl"
    log.warning("calling with key %s", settings.supabase_service_role_key)
    log.warning("header Authorization: Bearer %s", token)
    log.warning("url https://x.example/path?apikey=abc123secret&x=1")
    log.warning("postgres at postgresql://postgres:pa55word@127.0.0.1:5432/postgres")
    try:
        raise RuntimeError(f"boom with {settings.supabase_jwt_secret}")
    except RuntimeError:
        log.exception("failed")

    text = json_log.getvalue()
    for secret in (settings.supabase_service_role_key, settings.supabase_jwt_secret, token,
                   "abc123secret", "pa55word"):  # fmt: skip
        assert secret not in text
    assert text.count("[redacted]") == 5


def start(command: str, env: dict[str, str], stderr: Path) -> subprocess.Popen[bytes]:
    with stderr.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "service", command],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )


async def wait_for(condition: object, what: str, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what} not seen within {within}s"
        await asyncio.sleep(0.05)


async def test_api_and_worker_write_one_format_including_uvicorn_lines(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port_block(1, start=58500)
    env = {**stack_env, "PORT": str(port), "LOG_LEVEL": "INFO", "LOG_FORMAT": "json"}
    api_log, worker_log = tmp_path / "api.log", tmp_path / "worker.log"
    api = start("api", env, api_log)
    worker = start("worker", {**env, "LOG_FORMAT": "text"}, worker_log)
    try:
        await wait_for(lambda: "Application startup complete" in api_log.read_text(), "startup")
        async with httpx.AsyncClient() as client:
            response = await client.post(
                f"http://127.0.0.1:{port}/api/webhooks/whatsapp", content=b"{}",
                headers={"X-Request-Id": "from-proxy-1"},
            )  # fmt: skip
        # No credential: refused before the body is read (docs/SECURITY.md).
        assert response.status_code == 401
        await wait_for(lambda: "worker started" in worker_log.read_text(), "worker start")
    finally:
        for process in (api, worker):
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)

    lines = [json.loads(line) for line in api_log.read_text().splitlines()]
    loggers = {line["logger"] for line in lines}
    assert "uvicorn.error" in loggers  # the server's own lines, in our format
    assert any(line["message"].startswith("Application shutdown complete") for line in lines)
    worker_lines = worker_log.read_text().splitlines()
    assert worker_lines
    for line in worker_lines:
        # "2026-12-02 13:40:00,123 INFO service: worker started"
        _day, _time, level, _ = line.split(" ", 3)
        assert level in ("DEBUG", "INFO", "WARNING", "ERROR")
    assert any(line.endswith("service: worker stopped") for line in worker_lines)
    for secret in (stack_env["SUPABASE_SERVICE_ROLE_KEY"], stack_env["SUPABASE_JWT_SECRET"]):
        assert secret not in api_log.read_text()
        assert secret not in worker_log.read_text()
