"""Errors raised by the 360dialog client.

360dialog answers in two shapes: Cloud API errors passed through from Meta
(`{"error": {"message", "type", "code", "error_subcode", "error_data", "fbtrace_id"}}`)
and its own gateway errors (`{"error": "<text>"}`). Both, and bodies that are not
JSON at all, become a `D360Error`. Logic should key on `code`, never on message text.
"""

from __future__ import annotations

from typing import Any

import msgspec

# Meta error codes that mean "slow down" even when the HTTP status is a plain 400.
RATE_LIMIT_CODES = frozenset({130429, 131056})
# Free-form message outside the 24h window (470 is the legacy on-premise code).
WINDOW_CLOSED_CODES = frozenset({131047, 470})
# "Business-scoped User ID recipients are not supported for this message".
USER_ID_UNSUPPORTED_CODE = 131062
# The template was refused: unknown, not approved, paused, disabled, or its
# parameters do not fit it (Meta's 132000-132016). The stored copy is stale.
TEMPLATE_ERROR_CODES = frozenset(range(132000, 132017))
# Retrying these only repeats the failure (and counts toward error throttling).
NEVER_RETRY_CODES = WINDOW_CLOSED_CODES | TEMPLATE_ERROR_CODES | {131026, USER_ID_UNSUPPORTED_CODE}

_RAW_LIMIT = 2000


class D360Exception(Exception):
    """Anything the 360dialog client raises after giving up."""

    attempts: int = 1


class D360Error(D360Exception):
    """360dialog (or Meta behind it) answered with an error, or with an unusable body."""

    def __init__(
        self,
        status_code: int,
        *,
        code: int | None = None,
        message: str = "",
        details: str | None = None,
        error_subcode: int | None = None,
        error_type: str | None = None,
        fbtrace_id: str | None = None,
        raw: str = "",
        attempts: int = 1,
    ) -> None:
        self.status_code = status_code
        self.code = code
        self.message = message
        self.details = details
        self.error_subcode = error_subcode
        self.error_type = error_type
        self.fbtrace_id = fbtrace_id
        self.raw = raw
        self.attempts = attempts
        super().__init__(self._describe())

    def _describe(self) -> str:
        code = f" ({self.code})" if self.code is not None else ""
        text = self.message or "no error message"
        details = f": {self.details}" if self.details and self.details != self.message else ""
        return f"360dialog HTTP {self.status_code}{code} {text}{details}"

    @property
    def retryable(self) -> bool:
        if self.code in NEVER_RETRY_CODES:
            return False
        if self.code in RATE_LIMIT_CODES:
            return True
        return self.status_code == 429 or self.status_code >= 500

    @property
    def rate_limited(self) -> bool:
        return self.status_code == 429 or self.code in RATE_LIMIT_CODES


class D360RateLimitError(D360Error):
    """HTTP 429, throughput (130429) or pair rate limit (131056)."""


class D360WindowClosedError(D360Error):
    """The 24h customer service window is closed: only templates may be sent (131047)."""


class D360AuthError(D360Error):
    """The channel's D360-API-KEY was refused (HTTP 401)."""


class D360NetworkError(D360Exception):
    """No HTTP answer: connection failure or timeout, after the allowed retries."""

    def __init__(self, message: str, *, attempts: int = 1) -> None:
        self.attempts = attempts
        super().__init__(message)


def error_from_response(status_code: int, body: bytes, *, attempts: int = 1) -> D360Error:
    """Build the most specific error for an error response; never raises itself."""
    raw = body[:_RAW_LIMIT].decode("utf-8", errors="replace")
    fields: dict[str, Any] = {"message": raw.strip()}
    try:
        parsed: object = msgspec.json.decode(body)
    except msgspec.DecodeError:
        parsed = None
    if isinstance(parsed, dict):
        fields = _fields_from_json(parsed) or fields
    code = fields.get("code")
    if status_code == 429 or code in RATE_LIMIT_CODES:
        cls: type[D360Error] = D360RateLimitError
    elif code in WINDOW_CLOSED_CODES:
        cls = D360WindowClosedError
    elif status_code == 401:
        cls = D360AuthError
    else:
        cls = D360Error
    return cls(status_code, raw=raw, attempts=attempts, **fields)


def _fields_from_json(parsed: dict[str, Any]) -> dict[str, Any]:
    error = parsed.get("error")
    if isinstance(error, dict):  # Meta / Graph shape
        data = error.get("error_data")
        return {
            "code": _int(error.get("code")),
            "message": _str(error.get("message")) or "",
            "details": _str(data.get("details")) if isinstance(data, dict) else None,
            "error_subcode": _int(error.get("error_subcode")),
            "error_type": _str(error.get("type")),
            "fbtrace_id": _str(error.get("fbtrace_id")),
        }
    if isinstance(error, str):  # 360dialog gateway shape
        return {"message": error}
    errors = parsed.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        # Legacy on-premise shape, still seen on some /v1 endpoints.
        first = errors[0]
        return {
            "code": _int(first.get("code")),
            "message": _str(first.get("title")) or _str(first.get("message")) or "",
            "details": _str(first.get("details")),
        }
    message = _str(parsed.get("message"))
    return {"message": message} if message else {}


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None
