"""The composition root: every shared object, built once per process, in one typed place.

`open_root(settings)` builds what the API, the worker and the CLI share (the
network clients, the one channel cache, the 360dialog client) and closes it
on exit. The API adds its own runtime (`ApiRuntime`: the webhook ingress and
the agent services) in the app lifespan and reads it back, typed, with
`api_runtime(state)`; nothing else is kept in Litestar's untyped state.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from litestar.datastructures import State

from service.cache import ChannelCache
from service.clients import Clients, open_clients
from service.settings import Settings
from service.template_refresh import TemplateRefresher
from service.whatsapp.d360 import D360Client

if TYPE_CHECKING:
    from service.api.agent import AgentServices
    from service.ingest.ingress import WebhookIngress
    from service.ingest.worker import Worker


@dataclass(frozen=True, slots=True)
class Root:
    """What every entry point shares."""

    settings: Settings
    clients: Clients
    # Webhook credentials and 360dialog keys, one row per phone_number_id.
    channels: ChannelCache
    # Honours HTTP_TIMEOUT_SECONDS wherever it is used (API, CLI).
    d360: D360Client
    # Keeps the database's copy of each channel's templates in step with 360dialog.
    templates: TemplateRefresher

    def worker(self) -> Worker:
        from service.ingest.worker import Worker

        return Worker(self.clients.service_db, self.settings, templates=self.templates)


@asynccontextmanager
async def open_root(settings: Settings) -> AsyncIterator[Root]:
    async with open_clients(settings) as clients:
        channels = ChannelCache(clients.service_db)
        d360 = D360Client(
            clients.d360_http,
            base_url=settings.d360_base_url,
            timeout=settings.http_timeout_seconds,
        )
        templates = TemplateRefresher(clients.service_db, channels, d360)
        try:
            yield Root(
                settings=settings,
                clients=clients,
                channels=channels,
                d360=d360,
                templates=templates,
            )
        finally:
            # Background refreshes use the clients: they end before the clients close.
            await templates.aclose()


@dataclass(frozen=True, slots=True)
class ApiRuntime:
    """What the API's handlers reach, built in the app lifespan."""

    root: Root
    ingress: WebhookIngress
    agent: AgentServices


_KEY = "runtime"


def install(state: State, runtime: ApiRuntime) -> None:
    state[_KEY] = runtime


def api_runtime(state: State) -> ApiRuntime:
    """The running API's objects; only between lifespan start and stop."""
    runtime: ApiRuntime = state[_KEY]
    return runtime
