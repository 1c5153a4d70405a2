"""What the agent endpoints get injected, and their shared helpers.

Handlers receive the verified caller (`agent`), a PostgREST client carrying
that caller's token (`user_db`, so RLS decides every read and write), the
360dialog client and `ChannelKeys`. They never receive the `Root`: the
service-role client is not reachable from them.
"""

from __future__ import annotations

import base64
import binascii
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import ExceptionHandlersMap
from postgrest import APIError, AsyncPostgrestClient

from service.api.auth import AuthUser, TokenVerifier, authenticate
from service.api.errors import ApiError, ErrorBody, ErrorCode, documented, error_response
from service.repositories.channel_keys import ChannelKeys
from service.repositories.send_ledger import SendLedger
from service.root import Root, api_runtime
from service.whatsapp.d360 import D360Client

log = logging.getLogger(__name__)

BEARER_SECURITY: list[dict[str, list[str]]] = [{"BearerAuth": []}]
# Every agent route: bad token, not visible, invalid input, token keys unreachable, 502
# when the database refuses a request; routes with a body also 400 (unparsable) and 413
# (too large): service.api.openapi.AgentOperation keeps those two only where there is one.
AGENT_ERRORS = documented(400, 401, 404, 413, 422, 502, 503)
SEND_ERRORS = documented(400, 401, 404, 409, 413, 422, 502, 503)
OPENAPI_COMPONENTS = Components(
    security_schemes={
        "BearerAuth": SecurityScheme(
            type="http",
            scheme="bearer",
            bearer_format="JWT",
            description="The agent's Supabase access token",
        )
    }
)


@dataclass(frozen=True, slots=True)
class AgentServices:
    """What agent endpoints may use besides the caller's own PostgREST client.

    Built once in the app lifespan from the `Root` (they share its caches).
    """

    verifier: TokenVerifier
    keys: ChannelKeys
    ledger: SendLedger
    d360: D360Client
    user_db: Callable[[str], AsyncPostgrestClient]
    # Re-reads one channel's templates in the background (after 360dialog refused one);
    # only this bound operation, never the refresher and its service-role client.
    refresh_templates: Callable[[str], None]


def build_agent_services(root: Root) -> AgentServices:
    settings, clients = root.settings, root.clients
    return AgentServices(
        verifier=TokenVerifier(
            jwt_secret=settings.supabase_jwt_secret,
            jwks_url=settings.supabase_jwks_url,
            http=clients.db_http,
        ),
        keys=ChannelKeys(root.channels),
        ledger=SendLedger(clients.service_db),
        d360=root.d360,
        user_db=clients.user_db,
        refresh_templates=root.templates.refresh_soon,
    )


def _services(state: State) -> AgentServices:
    return api_runtime(state).agent


async def provide_agent(request: Request[Any, Any, Any], state: State) -> AuthUser:
    return await authenticate(_services(state).verifier, request.headers.get("authorization"))


def provide_user_db(state: State, agent: NamedDependency[AuthUser]) -> AsyncPostgrestClient:
    return _services(state).user_db(agent.token)


def provide_channel_keys(state: State) -> ChannelKeys:
    return _services(state).keys


def provide_send_ledger(state: State) -> SendLedger:
    return _services(state).ledger


def provide_d360(state: State) -> D360Client:
    return _services(state).d360


def provide_refresh_templates(state: State) -> Callable[[str], None]:
    return _services(state).refresh_templates


AGENT_DEPENDENCIES: dict[str, Provide] = {
    "agent": Provide(provide_agent),
    "user_db": Provide(provide_user_db, sync_to_thread=False),
    "channel_keys": Provide(provide_channel_keys, sync_to_thread=False),
    "send_ledger": Provide(provide_send_ledger, sync_to_thread=False),
    "d360": Provide(provide_d360, sync_to_thread=False),
    "refresh_templates": Provide(provide_refresh_templates, sync_to_thread=False),
}


# --- errors -------------------------------------------------------------------------------


def invalid(key: str, message: str, source: str = "body") -> ApiError:
    """422 naming the offending field, shaped like Litestar's own validation errors."""
    return ApiError(422, "invalid_input", [{"key": key, "message": message, "source": source}])


def text_input(value: str | None, key: str, source: str = "body") -> str | None:
    """Postgres text cannot hold U+0000: refuse it here rather than as a 502 later."""
    if value is not None and "\x00" in value:
        raise invalid(key, "must not contain the NUL character (U+0000)", source)
    return value


def not_found(what: str = "conversation") -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


# PostgREST/Postgres errors that reach a handler. Never 403: RLS denials look like
# absence (404), and no database message is echoed to the caller.
_PGRST_STATUS: dict[str, tuple[int, ErrorCode, str]] = {
    "PGRST301": (401, "unauthorized", "invalid or expired token"),
    "PGRST302": (401, "unauthorized", "missing token"),
    "42501": (404, "not_found", "not found"),
    "23503": (404, "not_found", "not found"),
    "23505": (409, "conflict", "already exists"),
    "22023": (422, "invalid_input", "invalid parameter"),
    "22P02": (422, "invalid_input", "invalid parameter"),
    "22007": (422, "invalid_input", "invalid parameter"),
    "22008": (422, "invalid_input", "invalid parameter"),
}


def handle_postgrest_error(_: Request[Any, Any, Any], exc: APIError) -> Response[ErrorBody]:
    mapped = _PGRST_STATUS.get(str(exc.code))
    if mapped is not None:
        return error_response(*mapped)
    log.error("database error %s: %s", exc.code, exc.message)
    return error_response(502, "database_error", "the database refused the request")


AGENT_EXCEPTION_HANDLERS: ExceptionHandlersMap = {APIError: handle_postgrest_error}


# --- keyset cursors -----------------------------------------------------------------------


class _Cursor(msgspec.Struct, array_like=True):
    at: datetime
    id: uuid.UUID


def encode_cursor(at: datetime, row_id: uuid.UUID) -> str:
    """Opaque to clients: base64url of the last row's (sort time, id)."""
    raw = msgspec.json.encode(_Cursor(at=at, id=row_id))
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(value: str | None, key: str) -> tuple[datetime, uuid.UUID] | None:
    if value is None or value == "":
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        cursor = msgspec.json.decode(raw, type=_Cursor)
    except (binascii.Error, ValueError, msgspec.DecodeError) as exc:
        raise invalid(key, "not a cursor from a previous page", "query") from exc
    if cursor.at.tzinfo is None:
        raise invalid(key, "not a cursor from a previous page", "query")
    return cursor.at, cursor.id
