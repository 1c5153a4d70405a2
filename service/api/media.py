"""Streaming a message's media from 360dialog to the agent."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from urllib.parse import quote

import httpx

from service.api.errors import ApiError
from service.whatsapp.d360 import D360Client
from service.whatsapp.errors import D360Error, D360Exception

log = logging.getLogger(__name__)


def content_disposition(filename: str) -> str:
    """`inline` with an ASCII fallback and the UTF-8 name (RFC 6266)."""
    # Control characters (a customer's CR/LF) would make the header invalid.
    printable = "".join(ch for ch in filename if ch >= " " and ch != "\x7f")
    cleaned = printable.replace("\\", "/").rsplit("/", 1)[-1].replace('"', "").strip() or "media"
    ascii_name = cleaned.encode("ascii", "replace").decode("ascii").replace("?", "_")
    return f"inline; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(cleaned, safe='')}"


async def open_media(
    d360: D360Client, api_key: str, media_id: str
) -> tuple[httpx.Response, str | None, AsyncExitStack]:
    """Looks the media up and opens its download; 404 when 360dialog no longer has it."""
    stack = AsyncExitStack()
    try:
        info = await d360.get_media_url(api_key, media_id)
        response = await stack.enter_async_context(d360.stream_media(api_key, info.url))
    except ValueError as exc:
        await stack.aclose()
        raise ApiError(404, "media_unavailable", "this media cannot be fetched") from exc
    except D360Error as exc:
        await stack.aclose()
        if exc.status_code in (400, 404, 410):
            raise ApiError(404, "media_unavailable", "WhatsApp no longer has this media") from exc
        log.warning("media %s: %s", media_id, exc)
        raise ApiError(502, "media_fetch_failed", "360dialog did not deliver the media") from exc
    except D360Exception as exc:
        await stack.aclose()
        log.warning("media %s: %s", media_id, exc)
        raise ApiError(502, "media_fetch_failed", "360dialog did not deliver the media") from exc
    return response, info.mime_type, stack


async def iterate_body(response: httpx.Response, stack: AsyncExitStack) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.aiter_bytes():
            yield chunk
    finally:
        await stack.aclose()
