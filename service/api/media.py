"""Streaming a message's media from 360dialog to the agent.

Whatever a customer declares (type, filename) reaches a co-worker's browser,
so it is treated as hostile: only an allowlist of types is shown inline,
everything else is a download of `application/octet-stream`, and every media
response is sandboxed and never sniffed (docs/SECURITY.md, "Media").
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from urllib.parse import quote

import httpx

from service.api.errors import ApiError
from service.whatsapp.d360 import D360Client
from service.whatsapp.errors import D360Error, D360Exception

log = logging.getLogger(__name__)


DOWNLOAD_TYPE = "application/octet-stream"

# A browser may render these itself without running anything of the sender's.
# SVG is an image that carries scripts, so it is a download like HTML.
_INLINE_PREFIXES = ("image/", "audio/", "video/")
_INLINE_EXACT = frozenset({"application/pdf"})
_NOT_INLINE = frozenset({"image/svg+xml"})
_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")

# On every media response: the body can never run script in our origin, and
# the browser never guesses a type other than the one sent.
SAFETY_HEADERS = {
    "Content-Security-Policy": "sandbox",
    "X-Content-Type-Options": "nosniff",
}

# Control characters would make the header invalid (a customer's CR/LF);
# format characters (Cf: U+202E right-to-left override, zero-width joiners)
# make `invoice\u202egpj.exe` display as `invoiceexe.jpg`.
_STRIPPED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def served_type(declared: str | None) -> tuple[str, bool]:
    """The Content-Type to send for a declared media type, and whether it is shown inline."""
    essence = (declared or "").split(";", 1)[0].strip().lower()
    allowed = essence.startswith(_INLINE_PREFIXES) or essence in _INLINE_EXACT
    if allowed and essence not in _NOT_INLINE and _MIME.fullmatch(essence):
        return essence, True
    return DOWNLOAD_TYPE, False


def clean_filename(filename: str) -> str:
    """The last path segment without control or format characters; `media` when nothing is left."""
    kept = "".join(ch for ch in filename if unicodedata.category(ch) not in _STRIPPED_CATEGORIES)
    return kept.replace("\\", "/").rsplit("/", 1)[-1].replace('"', "").strip() or "media"


def content_disposition(filename: str, *, inline: bool) -> str:
    """`inline` or `attachment`, with an ASCII fallback and the UTF-8 name (RFC 6266)."""
    cleaned = clean_filename(filename)
    ascii_name = cleaned.encode("ascii", "replace").decode("ascii").replace("?", "_")
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(cleaned, safe='')}"


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
