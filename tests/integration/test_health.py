"""/health and /ready through the real app against the real stack."""

from __future__ import annotations

import msgspec
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.settings import Settings


async def test_health_is_ok(api: AsyncTestClient[Litestar]) -> None:
    response = await api.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_when_postgrest_answers(api: AsyncTestClient[Litestar]) -> None:
    response = await api.get("/ready")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"


async def test_not_ready_says_why(settings: Settings) -> None:
    # Nothing listens on port 9 of loopback: the gateway is "down".
    broken = msgspec.structs.replace(settings, supabase_url="http://127.0.0.1:9")
    async with AsyncTestClient(app=create_app(broken)) as client:
        response = await client.get("/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert "gateway unreachable" in body["reason"]


async def test_openapi_is_served(api: AsyncTestClient[Litestar]) -> None:
    response = await api.get("/schema/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/health" in paths
    assert "/ready" in paths
