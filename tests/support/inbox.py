"""Delivering webhooks through the real endpoint and draining the real worker."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.clients import Clients
from service.ingest.worker import BatchReport, Worker
from service.settings import Settings
from tests.support.stack import psql

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "webhooks"

# From supabase/seed.sql.
WORKSPACE_A = "11111111-1111-4111-8111-111111111111"
WORKSPACE_B = "22222222-2222-4222-8222-222222222222"
AGENT_A = "a0000000-0000-4000-8000-0000000000a1"  # a member of workspace A
CHANNEL_A = "100000000000001"
CHANNEL_B = "100000000000002"
SECRET_A = "demo-secret-a"
SECRET_B = "demo-secret-b"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(fixture_bytes(name))
    return loaded


def valid_fixture_names() -> list[str]:
    return sorted(p.name for p in FIXTURES.glob("*.json"))


def invalid_fixture_names() -> list[str]:
    return sorted(p.name for p in (FIXTURES / "invalid").iterdir() if p.is_file())


async def deliver(
    api: AsyncTestClient[Litestar],
    body: bytes | dict[str, Any],
    *,
    secret: str | None = SECRET_A,
    headers: dict[str, str] | None = None,
) -> int:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = {"content-type": "application/json", **(headers or {})}
    if secret is not None:
        sent["X-Webhook-Secret"] = secret
    response = await api.post("/api/webhooks/whatsapp", content=raw, headers=sent)
    return response.status_code


async def drain(clients: Clients, settings: Settings) -> BatchReport:
    return await Worker(clients.service_db, settings).drain()


def body_sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def reset_inbox(database_url: str) -> None:
    """Each test starts with no conversations, messages or inbox events."""
    psql(
        database_url,
        "truncate public.webhook_events, public.pending_message_updates, "
        "public.messages, public.conversations restart identity cascade",
    )
