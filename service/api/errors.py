"""One JSON error shape for every error: {"error": ..., "detail": ...}."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from msgspec import Meta

log = logging.getLogger(__name__)


# Every `error` the service answers; a client can switch on them. mypy holds the
# code to this list: a new code must be added here (and so to the OpenAPI enum).
ErrorCode = Literal[
    "bad_request",
    "invalid_payload",
    "unauthorized",
    "forbidden",
    "not_found",
    "media_unavailable",
    "method_not_allowed",
    "conflict",
    "window_closed",
    "send_in_progress",
    "channel_unavailable",
    "length_required",
    "payload_too_large",
    "too_many_items",
    "unsupported_media_type",
    "invalid_input",
    "idempotency_key_reused",
    "recipient_unavailable",
    "recipient_unsupported",
    "template_unavailable",
    "template_rejected",
    "too_many_requests",
    "internal_error",
    "database_error",
    "send_failed",
    "media_fetch_failed",
    "upload_failed",
    "unavailable",
    "error",
]


class ErrorBody(msgspec.Struct):
    error: Annotated[
        ErrorCode, Meta(description="A stable machine code; the status code's table says which")
    ]
    detail: Annotated[
        Any,
        Meta(
            description="Why, for a person: a sentence, or for `invalid_input` a list of "
            "{key, message, source}; for send errors an object with `reason` and `message`"
        ),
    ] = None


class ApiError(HTTPException):
    """Raised by handlers: `error` is a stable machine code, `detail` says why."""

    def __init__(self, status_code: int, error: ErrorCode, detail: Any = None) -> None:
        super().__init__(status_code=status_code, detail=str(detail or error))
        self.error = error
        self.error_detail = detail


_CODES: dict[int, ErrorCode] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    411: "length_required",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "too_many_requests",
    503: "unavailable",
}


MEANINGS = {
    400: "Unparsable request (for webhooks: not a WhatsApp payload)",
    401: "Missing, forged or expired credential",
    403: "Verification refused",
    404: "Not found, or not visible to the caller",
    409: "Conflicts with the current state; `error` says which",
    411: "No Content-Length: an upload must say its length",
    413: "Body too large (for an upload: larger than WhatsApp takes for its type)",
    415: "WhatsApp takes no file of this type",
    422: "Invalid input; `detail` names the offending field",
    502: "360dialog or the database failed; `detail` says which",
    503: "Temporarily unavailable; retry",
}


def documented(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the errors a route can answer, all in the one shape."""
    return {
        code: ResponseSpec(
            data_container=ErrorBody, description=MEANINGS[code], generate_examples=False
        )
        for code in codes
    }


def error_response(
    status_code: int, error: ErrorCode, detail: Any = None, headers: dict[str, str] | None = None
) -> Response[ErrorBody]:
    return Response(ErrorBody(error=error, detail=detail), status_code=status_code, headers=headers)


def handle_http_exception(_: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorBody]:
    if isinstance(exc, ApiError):
        return error_response(exc.status_code, exc.error, exc.error_detail, exc.headers)
    status = exc.status_code
    if isinstance(exc, ValidationException):
        # Litestar's extra lists the offending fields ({"key", "message", "source"}).
        return error_response(422, "invalid_input", exc.extra or exc.detail)
    # Keeps what Litestar set, such as Allow on a 405.
    return error_response(status, _CODES.get(status, "error"), exc.detail, exc.headers)


def handle_unexpected(_: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    log.exception("unhandled error", exc_info=exc)
    return error_response(HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", "unexpected error")
