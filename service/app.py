"""The app factory: the API's part of the composition root (service/root.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.exceptions import HTTPException
from litestar.middleware import DefineMiddleware
from litestar.openapi.config import OpenAPIConfig

from service.api.agent import OPENAPI_COMPONENTS, build_agent_services
from service.api.attachments import AttachmentController
from service.api.conversations import ConversationController
from service.api.errors import handle_http_exception, handle_unexpected
from service.api.health import HealthController
from service.api.messages import MessageController
from service.api.openapi import document_reply_kinds
from service.api.webhooks import document_webhook, whatsapp_webhook
from service.ingest.ingress import WebhookIngress
from service.logs import RequestIdMiddleware
from service.root import ApiRuntime, install, open_root
from service.settings import Need, Settings


def create_app(settings: Settings | None = None) -> Litestar:
    """The API; settings given are used as they are (`python -m service api` checked them)."""
    settings = settings or Settings.load().require(Need.AGENT_AUTH)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with open_root(settings) as root:
            ingress = WebhookIngress(
                root.clients.service_db,
                root.channels,
                window_seconds=settings.webhook_batch_window_ms / 1000,
            )
            ingress.start()
            install(app.state, ApiRuntime(root, ingress, build_agent_services(root)))
            try:
                yield
            finally:
                # The server has finished every accepted request by now; what
                # the ingress still holds is written before the clients close.
                await ingress.stop()

    app = Litestar(
        route_handlers=[
            HealthController,
            whatsapp_webhook,
            ConversationController,
            AttachmentController,
            MessageController,
        ],
        lifespan=[lifespan],
        middleware=[DefineMiddleware(RequestIdMiddleware)],
        cors_config=cors_config(settings),
        exception_handlers={
            HTTPException: handle_http_exception,
            Exception: handle_unexpected,
        },
        # Our own logging (service/logs.py) formats every line; Litestar's would add a second.
        logging_config=None,
        # Every body but an upload's (service/api/attachments.py sets its own).
        request_max_body_size=settings.webhook_max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="wa-inbox", version="0.1.0", path="/schema", components=OPENAPI_COMPONENTS
        ),
        debug=False,
    )
    document_webhook(app.openapi_schema, settings)
    document_reply_kinds(app.openapi_schema)
    return app


def cors_config(settings: Settings) -> CORSConfig | None:
    """Browsers on CORS_ALLOWED_ORIGINS may call the agent API; none by default."""
    if not settings.cors_allowed_origins:
        return None
    return CORSConfig(
        allow_origins=list(settings.cors_allowed_origins),
        allow_methods=["GET", "POST", "PATCH", "PUT", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-Id"],
        expose_headers=["Idempotent-Replayed", "X-Request-Id", "Location"],
        allow_credentials=False,
        max_age=600,
    )
