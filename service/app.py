"""The app factory: the one place that wires the service together."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.openapi.config import OpenAPIConfig

from service.api.agent import OPENAPI_COMPONENTS, build_agent_services
from service.api.conversations import ConversationController
from service.api.errors import handle_http_exception, handle_unexpected
from service.api.health import HealthController
from service.api.messages import MessageController
from service.api.webhooks import document_webhook, whatsapp_webhook
from service.clients import Clients, open_clients
from service.ingest.channels import ChannelDirectory
from service.ingest.ingress import WebhookIngress
from service.settings import Settings


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with open_clients(settings) as clients:
            ingress = WebhookIngress(
                clients.service_db,
                ChannelDirectory(clients.service_db),
                window_seconds=settings.webhook_batch_window_ms / 1000,
            )
            ingress.start()
            app.state.clients = clients
            app.state.webhook = ingress
            app.state.agent_services = build_agent_services(clients)
            try:
                yield
            finally:
                await ingress.stop()

    def provide_clients(state: State) -> Clients:
        clients: Clients = state.clients
        return clients

    app = Litestar(
        route_handlers=[
            HealthController,
            whatsapp_webhook,
            ConversationController,
            MessageController,
        ],
        lifespan=[lifespan],
        state=State({"settings": settings}),
        dependencies={
            "clients": Provide(provide_clients, sync_to_thread=False),
        },
        exception_handlers={
            HTTPException: handle_http_exception,
            Exception: handle_unexpected,
        },
        request_max_body_size=settings.webhook_max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="wa-inbox", version="0.1.0", path="/schema", components=OPENAPI_COMPONENTS
        ),
        debug=False,
    )
    document_webhook(app.openapi_schema, settings)
    return app
