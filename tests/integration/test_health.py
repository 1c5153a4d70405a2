"""/health and /ready through the real app against the real stack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.settings import Settings
from tests.support.gateway import root_refusing_gateway


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


@pytest.fixture
def hosted_gateway(stack_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    with root_refusing_gateway(stack_env["SUPABASE_URL"], tmp_path / "gateway") as url:
        yield url


async def test_ready_behind_a_gateway_that_refuses_the_api_root(
    settings: Settings, stack_env: dict[str, str], hosted_gateway: str
) -> None:
    async with httpx.AsyncClient() as client:
        root = await client.head(
            f"{hosted_gateway}/rest/v1/",
            headers={"apikey": stack_env["SUPABASE_PUBLISHABLE_KEY"]},
        )
    assert root.status_code == 401  # what a hosted project answers today
    hosted = msgspec.structs.replace(
        settings,
        supabase_url=hosted_gateway,
        supabase_anon_key=stack_env["SUPABASE_PUBLISHABLE_KEY"],
        supabase_service_role_key=stack_env["SUPABASE_SECRET_KEY"],
    )
    async with AsyncTestClient(app=create_app(hosted)) as client:
        response = await client.get("/ready")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready", "database": "ok", "reason": None}


async def test_not_ready_with_a_key_the_gateway_refuses(
    settings: Settings, hosted_gateway: str
) -> None:
    wrong = msgspec.structs.replace(
        settings, supabase_url=hosted_gateway, supabase_service_role_key="sb_secret_not-this-one"
    )
    async with AsyncTestClient(app=create_app(wrong)) as client:
        response = await client.get("/ready")
    assert response.status_code == 503
    assert "refused the service role key (401)" in response.json()["reason"]
