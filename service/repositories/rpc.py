"""PostgREST RPCs with msgspec-encoded bodies, for the ingestion hot paths.

postgrest-py runs every call through its request builder and the standard
library's json, twice over for the webhook's batches of raw bodies (a fifth
of the API's CPU per delivery, docs/PERFORMANCE.md). These calls send bytes
msgspec encoded, through the same shared client, URL and headers, and fail
the way postgrest-py does (`APIError`).
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from postgrest import APIError

from service.repositories.roles import ServiceClient

T = TypeVar("T")

_ENCODER = msgspec.json.Encoder()
_NUL = b"\\u0000"


def encode_for_postgres(args: object) -> bytes:
    """JSON for PostgREST; U+0000 removed, since Postgres text and jsonb cannot hold it.

    WhatsApp text can carry it; msgspec always writes it as the escape, so
    only bodies holding that escape pay for the slower clean-up.
    """
    encoded = _ENCODER.encode(args)
    if _NUL not in encoded:
        return encoded
    return _ENCODER.encode(_without_nul(msgspec.json.decode(encoded)))


def _without_nul(value: object) -> object:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


async def call(db: ServiceClient, function: str, args: object, result_type: type[T]) -> T:
    """POST /rpc/<function> with `args` as its JSON arguments; the result as `result_type`."""
    rest = db.postgrest
    response = await rest.session.post(
        str(rest.base_url.joinpath("rpc", function)),
        content=encode_for_postgres(args),
        headers={**rest.headers, "Content-Type": "application/json"},
    )
    if not response.is_success:
        raise APIError(_error(response.content, response.status_code))
    return msgspec.json.decode(response.content, type=result_type)


def _error(content: bytes, status: int) -> dict[str, Any]:
    try:
        error = msgspec.json.decode(content)
    except msgspec.DecodeError:
        error = None
    if isinstance(error, dict):
        return error
    return {"message": f"PostgREST answered {status}", "code": str(status)}
