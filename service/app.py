"""The app factory: the one place that wires the service together."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi.config import OpenAPIConfig

from service.api.health import HealthController
from service.clients import Clients, open_clients
from service.settings import Settings


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with open_clients(settings) as clients:
            app.state.clients = clients
            yield

    def provide_clients(state: State) -> Clients:
        clients: Clients = state.clients
        return clients

    return Litestar(
        route_handlers=[HealthController],
        lifespan=[lifespan],
        dependencies={"clients": Provide(provide_clients, sync_to_thread=False)},
        openapi_config=OpenAPIConfig(title="wa-inbox", version="0.1.0", path="/schema"),
        debug=False,
    )
