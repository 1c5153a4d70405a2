"""One log format for the API, the worker and the CLI: text for a terminal, JSON for shippers.

Every logger (ours, uvicorn's, Litestar's, httpx's) goes through the root
logger's one handler. Lines logged while the API handles a request carry its
request id (the caller's X-Request-Id when it is a sane token, else a new
one, echoed in the response). No line carries a key, token or secret: the
configured secrets and anything shaped like a bearer token or JWT are
masked before a line is written.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import re
import secrets
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING

import msgspec
from litestar.enums import ScopeType

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

_MASK = "[redacted]"
# Bearer credentials, JWTs, and key-like query or header values.
_SHAPES = re.compile(
    r"(?i)(bearer\s+)[^\s\"',]+"
    r"|eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]*"
    r"|((?:api[_-]?key|apikey|token|secret|password)[\"']?\s*[=:]\s*[\"']?)[^\s\"'&,]+"
    r"|(://[^/\s:@]+:)[^@\s/]+@"
)


class Redactor(logging.Filter):
    """Masks secrets in the rendered message (and in exception text)."""

    def __init__(self, known: Iterable[str] = ()) -> None:
        super().__init__()
        self._known = tuple(sorted({k for k in known if k}, key=len, reverse=True))

    def scrub(self, text: str) -> str:
        for value in self._known:
            text = text.replace(value, _MASK)
        return _SHAPES.sub(_keep_prefix, text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.scrub(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        record.request_id = request_id.get()
        return True


def _keep_prefix(match: re.Match[str]) -> str:
    prefix = match.group(1) or match.group(2) or match.group(3)
    if match.group(3):
        return f"{prefix}{_MASK}@"
    return f"{prefix or ''}{_MASK}"


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(rid)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None)
        record.rid = f" [{rid}]" if rid else ""
        return super().format(record)


class _Line(msgspec.Struct, omit_defaults=True):
    ts: str
    level: str
    logger: str
    message: str
    request_id: str | None = None
    exception: str | None = None


class JsonFormatter(logging.Formatter):
    _encoder = msgspec.json.Encoder()

    def format(self, record: logging.LogRecord) -> str:
        line = _Line(
            ts=datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            level=record.levelname.lower(),
            logger=record.name,
            message=record.getMessage(),
            request_id=getattr(record, "request_id", None),
            exception=record.exc_text or None,
        )
        return self._encoder.encode(line).decode()


def configure_logging(
    level: str, fmt: str = "text", *, secrets: Iterable[str] = (), stream: IO[str] | None = None
) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(Redactor(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Servers' and libraries' own handlers would print a second, other format.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "litestar"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # httpx logs every request at INFO; on the webhook path that is thousands
    # of lines a second and would carry URLs with query strings.
    for noisy in ("httpx", "httpcore", "hpack"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


_SANE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# A random prefix per process and a counter: unique ids without a syscall per request.
_ID_PREFIX = secrets.token_hex(4)
_ids = itertools.count(1)


class RequestIdMiddleware:
    """Gives each HTTP request an id for its log lines and echoes it as X-Request-Id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        rid = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                rid = candidate if _SANE_ID.fullmatch(candidate) else None
                break
        rid = rid or f"{_ID_PREFIX}{next(_ids):08x}"
        header = (b"x-request-id", rid.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        token = request_id.set(rid)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)
