"""Fixtures shared by every test: the real local stack, real clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from hypothesis import settings as hypothesis_settings
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.clients import Clients, open_clients
from service.settings import Settings
from tests.support.agent import Tenant, drop_tenant, make_tenant
from tests.support.stack import load_stack_env

# Property tests are derandomized so that CI is repeatable; explore new inputs
# with `pytest tests/reliability --hypothesis-profile=explore`.
hypothesis_settings.register_profile("repeatable", derandomize=True, database=None)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile("repeatable")


@pytest.fixture(scope="session")
def stack_env() -> dict[str, str]:
    return load_stack_env()


@pytest.fixture(scope="session")
def settings(stack_env: dict[str, str]) -> Settings:
    return Settings.from_env(
        {
            **stack_env,
            "D360_BASE_URL": "https://waba-v2.360dialog.io",
            "WEBHOOK_BATCH_WINDOW_MS": "1",
        }
    )


@pytest.fixture(scope="session")
def jwt_secret(settings: Settings) -> str:
    return settings.supabase_jwt_secret


@pytest.fixture(scope="session")
async def clients(settings: Settings) -> AsyncIterator[Clients]:
    async with open_clients(settings) as opened:
        yield opened


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=create_app(settings)) as client:
        yield client


# A throwaway workspace with its own members (tests/support/agent.py), and a second one.
@pytest.fixture
def tenant(stack_env: dict[str, str], jwt_secret: str) -> Iterator[Tenant]:
    made = make_tenant(stack_env["DATABASE_URL"], jwt_secret, "A")
    yield made
    drop_tenant(made)


@pytest.fixture
def other(stack_env: dict[str, str], jwt_secret: str) -> Iterator[Tenant]:
    made = make_tenant(stack_env["DATABASE_URL"], jwt_secret, "B")
    yield made
    drop_tenant(made)
