"""One JSON error shape for every error: {"error": ..., "detail": ...}."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

log = logging.getLogger(__name__)


class ErrorBody(msgspec.Struct):
    error: str
    detail: Any = None


class ApiError(HTTPException):
    """Raised by handlers: `error` is a stable machine code, `detail` says why."""

    def __init__(self, status_code: int, error: str, detail: Any = None) -> None:
        super().__init__(status_code=status_code, detail=str(detail or error))
        self.error = error
        self.error_detail = detail


_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "too_many_requests",
    503: "unavailable",
}


def error_response(status_code: int, error: str, detail: Any = None) -> Response[ErrorBody]:
    return Response(ErrorBody(error=error, detail=detail), status_code=status_code)


def handle_http_exception(_: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorBody]:
    if isinstance(exc, ApiError):
        return error_response(exc.status_code, exc.error, exc.error_detail)
    status = exc.status_code
    if isinstance(exc, ValidationException):
        # Litestar's extra lists the offending fields ({"key", "message", "source"}).
        return error_response(422, "invalid_input", exc.extra or exc.detail)
    return error_response(status, _CODES.get(status, "error"), exc.detail)


def handle_unexpected(_: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    log.exception("unhandled error", exc_info=exc)
    return error_response(HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", "unexpected error")
