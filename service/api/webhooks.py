"""POST/GET /api/webhooks/whatsapp: authenticate, store durably, answer fast.

Every WhatsApp message and status arrives here, so this is a raw ASGI route:
Litestar routes to it and its exception handlers still shape every refusal,
but no dependency injection, signature model or response object runs per
delivery (0.18 → 0.11 ms of API CPU per delivery, docs/PERFORMANCE.md). The
price is that it documents itself: `webhook_path_item` is what the app
factory adds to the OpenAPI document.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

import msgspec
from litestar import asgi
from litestar.enums import ScopeType
from litestar.exceptions import MethodNotAllowedException
from litestar.openapi.spec import (
    OpenAPI,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    PathItem,
    Reference,
    RequestBody,
    Schema,
)
from litestar.types.asgi_types import (
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    WebSocketCloseEvent,
)

from service.api.errors import MEANINGS, ApiError, ErrorCode
from service.cache import LookupsExhausted
from service.ingest.ingress import Outcome
from service.ingest.limits import MAX_ITEMS_PER_DELIVERY
from service.root import api_runtime

if TYPE_CHECKING:
    from litestar.types import Receive, Scope, Send

    from service.settings import Settings

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/api/webhooks/whatsapp"
# A longer hub.verify_token is refused without a query (it would also make a
# URL PostgREST may refuse); operators choose short ones.
MAX_VERIFY_TOKEN_CHARS = 1000
_ALLOW = "GET, POST, OPTIONS"

_REFUSALS: dict[Outcome, tuple[int, ErrorCode, str]] = {
    Outcome.INVALID: (400, "invalid_payload", "not a WhatsApp webhook payload"),
    Outcome.UNAUTHORIZED: (401, "unauthorized", "missing or invalid webhook credential"),
    Outcome.TOO_MANY_ITEMS: (
        413,
        "too_many_items",
        f"a delivery holds at most {MAX_ITEMS_PER_DELIVERY} messages and statuses",
    ),
    Outcome.UNAVAILABLE: (503, "unavailable", "could not store the delivery; retry"),
}
_TEXT = (b"content-type", b"text/plain; charset=utf-8")


@asgi(WEBHOOK_PATH, is_mount=False, copy_scope=False)
async def whatsapp_webhook(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != ScopeType.HTTP:  # a WebSocket handshake on this path: refused
        await send(WebSocketCloseEvent(type="websocket.close", code=1008, reason=""))
        return
    method = scope["method"]
    if method == "POST":
        await _receive_delivery(scope, receive, send)
    elif method == "GET":
        await _verify_subscription(scope, send)
    elif method == "OPTIONS":
        await _send(send, 204, [(b"allow", _ALLOW.encode())], b"")
    else:
        raise MethodNotAllowedException(headers={"Allow": _ALLOW})


async def _receive_delivery(scope: Scope, receive: Receive, send: Send) -> None:
    runtime = api_runtime(scope["app"].state)
    settings, ingress = runtime.root.settings, runtime.ingress
    limit = settings.webhook_max_body_bytes
    secret_header = settings.webhook_secret_header.lower().encode("latin-1")
    secret = signature = None
    # One pass: ASGI servers lowercase header names; the first of a repeated
    # header counts.
    for name, value in scope["headers"]:
        if name == secret_header and secret is None:
            secret = value.decode("latin-1")
        elif name == b"x-hub-signature-256" and signature is None:
            signature = value.decode("latin-1")
        elif name == b"content-length" and value.isdigit() and int(value) > limit:
            raise _too_large(limit)
    if not secret and not signature:
        # Nothing to authenticate against: refused before the body is read,
        # and the connection closed, so a sender with no credential cannot
        # make us receive megabytes (docs/SECURITY.md).
        await _refuse_and_close(send, Outcome.UNAUTHORIZED)
        return
    body = await _read_body(receive, limit)
    outcome = await ingress.accept(body, secret=secret, signature=signature)
    if outcome is not Outcome.STORED:
        status, error, detail = _REFUSALS[outcome]
        raise ApiError(status, error, detail)
    await _answer(send, 200, b"")


async def _read_body(receive: Receive, limit: int) -> bytes:
    """The whole body, or 413 as soon as what arrived exceeds `limit`."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            raise ApiError(400, "bad_request", "the request body was not received")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"the body exceeds {limit} bytes")


async def _verify_subscription(scope: Scope, send: Send) -> None:
    """Meta-direct handshake: echo hub.challenge when hub.verify_token is a channel's."""
    query = parse_qs(scope["query_string"].decode("latin-1"))

    def param(name: str) -> str:
        return query.get(name, [""])[0]

    token = param("hub.verify_token")
    if param("hub.mode") != "subscribe" or not token or len(token) > MAX_VERIFY_TOKEN_CHARS:
        raise ApiError(403, "forbidden", "verification failed")
    root = api_runtime(scope["app"].state).root
    try:
        known = await root.channels.verify_token_exists(token)
    except LookupsExhausted as exc:  # a flood of made-up tokens: Meta retries the handshake
        raise ApiError(503, "unavailable", "could not check the verify token; retry") from exc
    except Exception as exc:  # database unreachable: Meta retries the handshake
        log.warning("verify token lookup failed: %s", type(exc).__name__)
        raise ApiError(503, "unavailable", "could not check the verify token; retry") from exc
    if not known:
        raise ApiError(403, "forbidden", "verification failed")
    await _answer(send, 200, param("hub.challenge").encode())


async def _refuse_and_close(send: Send, outcome: Outcome) -> None:
    status, error, detail = _REFUSALS[outcome]
    body = msgspec.json.encode({"error": error, "detail": detail})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await _send(send, status, headers, body)


async def _answer(send: Send, status: int, body: bytes) -> None:
    await _send(send, status, [_TEXT, (b"content-length", str(len(body)).encode())], body)


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send(HTTPResponseStartEvent(type="http.response.start", status=status, headers=headers))
    await send(HTTPResponseBodyEvent(type="http.response.body", body=body, more_body=False))


_ERROR_BODY = Reference("#/components/schemas/ErrorBody")


def _error(code: int) -> OpenAPIResponse:
    return OpenAPIResponse(
        description=MEANINGS[code],
        content={"application/json": OpenAPIMediaType(schema=_ERROR_BODY)},
    )


def _text(description: str) -> OpenAPIResponse:
    return OpenAPIResponse(
        description=description,
        content={"text/plain": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))},
    )


def _optional(where: str, name: str, description: str) -> Parameter:
    return Parameter(
        name=name,
        param_in=where,
        required=False,
        schema=Schema(type=OpenAPIType.STRING),
        description=description,
    )


def webhook_path_item(settings: Settings) -> PathItem:
    """The operations of the raw route, as configured."""
    return PathItem(
        post=Operation(
            tags=["webhooks"],
            summary="Receive a WhatsApp webhook delivery (360dialog or Meta)",
            description=(
                "Answers exactly 200 (empty body) once the delivery is stored durably; 400 for a "
                "body that is not a WhatsApp payload, 401 for a bad credential, 413 over "
                f"{settings.webhook_max_body_bytes} bytes or {MAX_ITEMS_PER_DELIVERY} messages and "
                "statuses, 503 when it could not be stored (the "
                "sender retries). Nothing is stored on any refusal."
            ),
            operation_id="receiveWebhook",
            parameters=[
                _optional(
                    "header",
                    settings.webhook_secret_header,
                    "360dialog: the channel's webhook secret, as registered with 360dialog",
                ),
                _optional(
                    "header",
                    "X-Hub-Signature-256",
                    "Meta-direct: `sha256=` and the HMAC-SHA256 of the body with the app secret",
                ),
            ],
            request_body=RequestBody(
                content={
                    "application/json": OpenAPIMediaType(schema=Schema(type=OpenAPIType.OBJECT))
                },
                required=True,
                description="The webhook payload, as 360dialog or Meta sends it",
            ),
            responses={
                "200": OpenAPIResponse(
                    description="Stored",
                    headers={
                        "Content-Length": OpenAPIHeader(schema=Schema(type=OpenAPIType.INTEGER))
                    },
                ),
                **{str(code): _error(code) for code in (400, 401, 413, 503)},
            },
        ),
        get=Operation(
            tags=["webhooks"],
            summary="Meta-direct subscription handshake",
            description="Echoes hub.challenge when hub.verify_token matches an active channel.",
            operation_id="verifyWebhook",
            parameters=[
                _optional("query", "hub.mode", "Must be `subscribe`"),
                _optional("query", "hub.verify_token", "The channel's verify token"),
                _optional("query", "hub.challenge", "Meta's random value, answered back as is"),
            ],
            responses={"200": _text("hub.challenge"), "403": _error(403), "503": _error(503)},
        ),
    )


def document_webhook(document: OpenAPI, settings: Settings) -> None:
    """Adds the raw route's operations to the app's OpenAPI document."""
    document.paths = {**(document.paths or {}), WEBHOOK_PATH: webhook_path_item(settings)}
