"""Async client for the 360dialog WhatsApp Cloud API (waba-v2).

One client serves every channel: each call takes that phone number's D360-API-KEY.
The httpx.AsyncClient is injected (the app lifespan owns it) so connections are
pooled across channels and tests can fake the transport.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import secrets
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx
import msgspec

from service.settings import SEND_ATTEMPTS, SEND_BACKOFF_CAP_SECONDS
from service.whatsapp.domain import (
    Recipient,
    Reply,
    Send360Response,
    cloud_message,
)
from service.whatsapp.errors import D360Error, D360NetworkError, error_from_response
from service.whatsapp.templates import (
    MAX_PAGES,
    PAGE_SIZE,
    ListedTemplate,
    TemplateListing,
    listed_templates,
)

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://waba-v2.360dialog.io"
LOOKASIDE_HOST = "lookaside.fbsbx.com"
API_KEY_HEADER = "D360-API-KEY"

# Media ids are numeric; refusing anything path-like keeps `GET /{media_id}` on that route.
_MEDIA_ID = re.compile(r"[A-Za-z0-9_-]+")

# Why sends are special: once the request bytes have left, a timeout or dropped
# connection does not tell us whether WhatsApp accepted the message, and sending it
# again could deliver it twice. So POST /messages (a send) is retried on transport
# errors only when the request provably never went out (no connection, or no free
# connection in the pool). Reads, mark-as-read and webhook config are idempotent:
# repeating them is harmless, so any transport error is retried. The same reasoning
# makes a 504 (gateway gave up waiting upstream) non-retryable for sends.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Local, deterministic failures: another attempt fails the same way.
_NEVER_RETRY = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)

_T = TypeVar("_T")


class MediaInfo(msgspec.Struct, frozen=True):
    """`GET /{media_id}`: where to download an inbound file (the URL lives ~5 minutes)."""

    url: str
    mime_type: str | None = None
    sha256: str | None = None
    file_size: int | None = None
    id: str | None = None


class UploadedMedia(msgspec.Struct, frozen=True):
    """`POST /media`: the id to send the file by (Meta keeps it 30 days)."""

    id: str


class D360Client:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: httpx.Timeout | float = 10.0,
        max_attempts: int = SEND_ATTEMPTS,
        backoff_base: float = 0.5,
        backoff_cap: float = SEND_BACKOFF_CAP_SECONDS,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._base = httpx.URL(self._base_url)
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._sleep = sleep

    # --- messages -----------------------------------------------------------------------

    async def send_message(
        self, api_key: str, recipient: Recipient, reply: Reply, *, reply_to: str | None = None
    ) -> Send360Response:
        """Send one reply. A 200 means accepted; delivery arrives later as a status webhook."""
        body = cloud_message(recipient, reply, context_message_id=reply_to)
        response = await self._request(
            "POST", self._url("/messages"), api_key, body=body, idempotent=False
        )
        sent = _decode(response, Send360Response, "send response")
        if not sent.messages:
            raise _bad_response(response, "send response carried no message id")
        return sent

    async def mark_as_read(self, api_key: str, message_id: str) -> None:
        """Mark an inbound message (and the ones before it) as read."""
        if not message_id:
            raise ValueError("message_id must not be empty")
        body = {"messaging_product": "whatsapp", "status": "read", "message_id": message_id}
        await self._request("POST", self._url("/messages"), api_key, body=body, idempotent=True)

    # --- media --------------------------------------------------------------------------

    async def get_media_url(self, api_key: str, media_id: str) -> MediaInfo:
        if not _MEDIA_ID.fullmatch(media_id):
            raise ValueError(f"not a media id: {media_id!r}")
        response = await self._request(
            "GET", self._url(f"/{media_id}"), api_key, idempotent=True, label="GET /{media_id}"
        )
        return _decode(response, MediaInfo, "media info")

    async def upload_media(
        self, api_key: str, file: AsyncIterable[bytes], *, mime_type: str, filename: str
    ) -> str:
        """Upload a file (`POST /media`, multipart) as it arrives; returns its media id.

        The body is streamed from `file` chunk by chunk, so a large document never
        sits whole in memory. Sent once, never retried: the chunks can be read only
        once. An exception raised by `file` aborts the upload and propagates.
        """
        boundary = secrets.token_hex(16)
        response = await self._request(
            "POST",
            self._url("/media"),
            api_key,
            stream_body=_multipart(boundary, file, mime_type, filename),
            content_type=f"multipart/form-data; boundary={boundary}",
            idempotent=False,
            attempts=1,
        )
        uploaded = _decode(response, UploadedMedia, "upload response")
        if not uploaded.id:
            raise _bad_response(response, "upload response carried no media id")
        return uploaded.id

    @asynccontextmanager
    async def stream_media(self, api_key: str, url: str) -> AsyncIterator[httpx.Response]:
        """Yields the open response to a media URL from `get_media_url`, to stream its body.

        Errors before the body (HTTP errors, failed connects) are retried and raised
        as D360Error / D360NetworkError; a failure while reading the body surfaces as
        the underlying httpx.TransportError.
        """
        response = await self._request(
            "GET",
            self.media_download_url(url),
            api_key,
            idempotent=True,
            stream=True,
            label="media download",
        )
        try:
            yield response
        finally:
            await response.aclose()

    def media_download_url(self, url: str) -> str:
        """Where to download a media URL: lookaside links go through 360dialog.

        The lookaside host only serves 360dialog's own app, so the URL is rewritten
        to the 360dialog host (path and query unchanged) and sent with the API key.
        Any other host is refused so the key never leaves for a third party.
        """
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise ValueError("not a media URL") from exc
        if parsed.scheme == "https" and parsed.host == LOOKASIDE_HOST and parsed.port is None:
            return self._base_url + parsed.raw_path.decode("ascii")
        base = self._base
        if (parsed.scheme, parsed.host, parsed.port) == (base.scheme, base.host, base.port):
            return url
        raise ValueError(f"refusing to fetch media from {parsed.host!r}")

    # --- configuration ------------------------------------------------------------------

    async def list_templates(self, api_key: str) -> list[ListedTemplate]:
        """Every template of the channel's WhatsApp Business Account, page by page."""
        raw: list[dict[str, Any]] = []
        for page in range(MAX_PAGES):
            url = self._url(f"/v1/configs/templates?limit={PAGE_SIZE}&offset={page * PAGE_SIZE}")
            response = await self._request(
                "GET", url, api_key, idempotent=True, label="GET /v1/configs/templates"
            )
            listing = _decode(response, TemplateListing, "template list")
            raw += listing.waba_templates
            done = listing.total if listing.total is not None else len(raw)
            if len(listing.waba_templates) < PAGE_SIZE or len(raw) >= done:
                break
        else:
            log.warning("template list cut at %d entries", len(raw))
        return listed_templates(raw)

    async def set_webhook(self, api_key: str, url: str, headers: dict[str, str]) -> None:
        """Point this number's webhook at `url`; 360dialog sends `headers` with every delivery."""
        if not url.startswith("https://"):
            raise ValueError("the webhook URL must be https")
        # Setting the same config twice is harmless, so it retries like a read.
        await self._request(
            "POST",
            self._url("/v1/configs/webhook"),
            api_key,
            body={"url": url, "headers": headers},
            idempotent=True,
        )

    # --- transport ----------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return self._base_url + path

    async def _request(
        self,
        method: str,
        url: str,
        api_key: str,
        *,
        body: Mapping[str, object] | None = None,
        stream_body: AsyncIterable[bytes] | None = None,
        content_type: str | None = None,
        idempotent: bool,
        stream: bool = False,
        label: str | None = None,
        attempts: int | None = None,
    ) -> httpx.Response:
        """One call with retries; returns a 2xx response (still open when `stream`)."""
        if not api_key:
            raise ValueError("api_key must not be empty")
        # Errors and logs name the call by path only: the media link's query is a
        # short-lived credential.
        label = label or f"{method} {httpx.URL(url).path}"
        headers = {API_KEY_HEADER: api_key, "Accept": "application/json"}
        content: bytes | AsyncIterable[bytes] | None = None
        if body is not None:
            content = msgspec.json.encode(body)
            headers["Content-Type"] = "application/json"
        elif stream_body is not None:
            content = stream_body
        if content_type is not None:
            headers["Content-Type"] = content_type
        max_attempts = attempts or self._max_attempts

        attempt = 0
        while True:
            attempt += 1
            request = self._http.build_request(
                method, url, headers=headers, content=content, timeout=self._timeout
            )
            try:
                # Never follow redirects: httpx would carry the key header to the new host.
                response = await self._http.send(request, stream=stream, follow_redirects=False)
            except httpx.TransportError as exc:
                if attempt < max_attempts and _transport_retryable(exc, idempotent):
                    log.warning("360dialog %s: %s, retrying", label, type(exc).__name__)
                    await self._sleep(self._backoff(attempt))
                    continue
                raise D360NetworkError(
                    f"360dialog {label}: {type(exc).__name__} after {attempt} attempt(s)",
                    attempts=attempt,
                ) from exc
            if response.is_success:
                return response

            error = error_from_response(
                response.status_code, await _error_body(response, stream), attempts=attempt
            )
            retry = error.retryable and (idempotent or response.status_code != 504)
            if retry and attempt < max_attempts:
                log.warning(
                    "360dialog %s: HTTP %s (%s), retrying", label, error.status_code, error.code
                )
                await self._sleep(self._backoff(attempt, response.headers.get("retry-after")))
                continue
            raise error

    def _backoff(self, attempt: int, retry_after: str | None = None) -> float:
        """Exponential backoff with full jitter, at least the server's Retry-After (capped)."""
        ceiling = min(self._backoff_cap, self._backoff_base * 2 ** (attempt - 1))
        delay = random.uniform(0, ceiling)  # noqa: S311 - jitter, not a secret
        hinted = _seconds(retry_after)
        if hinted is not None:
            delay = max(delay, min(hinted, self._backoff_cap))
        return delay


async def _multipart(
    boundary: str, file: AsyncIterable[bytes], mime_type: str, filename: str
) -> AsyncIterator[bytes]:
    """The Cloud API's upload form: `messaging_product`, `type` (the MIME type), `file`."""
    delimiter = f"--{boundary}\r\n".encode()
    # A quote or line break would end the header early; the name is only a label.
    name = filename.replace('"', "'").replace("\r", " ").replace("\n", " ")
    yield (
        delimiter
        + b'Content-Disposition: form-data; name="messaging_product"\r\n\r\nwhatsapp\r\n'
        + delimiter
        + b'Content-Disposition: form-data; name="type"\r\n\r\n'
        + mime_type.encode("ascii")
        + b"\r\n"
        + delimiter
        + f'Content-Disposition: form-data; name="file"; filename="{name}"\r\n'.encode()
        + f"Content-Type: {mime_type}\r\n\r\n".encode("ascii")
    )
    async for chunk in file:
        yield chunk
    yield f"\r\n--{boundary}--\r\n".encode()


def _transport_retryable(exc: httpx.TransportError, idempotent: bool) -> bool:
    if isinstance(exc, _NEVER_RETRY):
        return False
    return idempotent or isinstance(exc, _NOT_SENT)


async def _error_body(response: httpx.Response, stream: bool) -> bytes:
    if not stream:
        return response.content
    try:
        return await response.aread()
    except httpx.TransportError:
        return b""
    finally:
        await response.aclose()


def _decode(response: httpx.Response, kind: type[_T], what: str) -> _T:
    try:
        return msgspec.json.decode(response.content, type=kind, strict=False)
    except msgspec.DecodeError as exc:
        raise _bad_response(response, f"unexpected {what}: {exc}") from exc


def _bad_response(response: httpx.Response, message: str) -> D360Error:
    raw = response.content[:2000].decode("utf-8", errors="replace")
    return D360Error(response.status_code, message=message, raw=raw)


def _seconds(retry_after: str | None) -> float | None:
    # Only the delta-seconds form; 360dialog/Meta do not send HTTP dates here.
    if retry_after is None:
        return None
    try:
        seconds = float(retry_after)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
