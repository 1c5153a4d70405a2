"""POST/GET /api/webhooks/whatsapp: authenticate, store durably, answer fast."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar.status_codes import HTTP_200_OK

from service.api.errors import ApiError, documented
from service.clients import Clients
from service.ingest.ingress import Outcome, WebhookIngress
from service.repositories import channels as channels_repo

_REFUSALS = {
    Outcome.INVALID: (400, "invalid_payload", "not a WhatsApp webhook payload"),
    Outcome.UNAUTHORIZED: (401, "unauthorized", "missing or invalid webhook credential"),
    Outcome.UNAVAILABLE: (503, "unavailable", "could not store the delivery; retry"),
}


class WebhookController(Controller):
    path = "/api/webhooks/whatsapp"
    tags = ["webhooks"]  # noqa: RUF012 (Litestar reads it per instance)

    @post(
        "",
        responses=documented(400, 401, 413, 503),
        status_code=HTTP_200_OK,
        summary="Receive a WhatsApp webhook delivery (360dialog or Meta)",
        description=(
            "Answers exactly 200 once the delivery is stored durably; 400 for a body that is "
            "not a WhatsApp payload, 401 for a bad credential, 413 over 1 MiB, 503 when it "
            "could not be stored (the sender retries). Nothing is stored on any refusal."
        ),
    )
    async def receive(
        self, request: Request[Any, Any, Any], webhook: NamedDependency[WebhookIngress]
    ) -> Response[bytes]:
        secret_header = request.app.state.settings.webhook_secret_header
        outcome = await webhook.accept(
            await request.body(),
            secret=request.headers.get(secret_header),
            signature=request.headers.get("x-hub-signature-256"),
        )
        if outcome is Outcome.STORED:
            return Response(b"", status_code=HTTP_200_OK, media_type="text/plain")
        status, error, detail = _REFUSALS[outcome]
        raise ApiError(status, error, detail)

    @get(
        "",
        responses=documented(403),
        summary="Meta-direct subscription handshake",
        description="Echoes hub.challenge when hub.verify_token matches an active channel.",
        media_type="text/plain",
    )
    async def verify(
        self,
        clients: NamedDependency[Clients],
        mode: Annotated[str, QueryParameter(name="hub.mode")] = "",
        token: Annotated[str, QueryParameter(name="hub.verify_token")] = "",
        challenge: Annotated[str, QueryParameter(name="hub.challenge")] = "",
    ) -> str:
        if mode != "subscribe" or not token:
            raise ApiError(403, "forbidden", "verification failed")
        if not await channels_repo.verify_token_exists(clients.service_db, token):
            raise ApiError(403, "forbidden", "verification failed")
        return challenge
