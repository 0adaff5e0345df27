"""Domain errors. Each `code` is a PROTOCOL.md error code and maps to one HTTP status here."""

from __future__ import annotations

from typing import Any

from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler


class IMSError(Exception):
    code = "server_error"
    http_status = status.HTTP_500_INTERNAL_SERVER_ERROR

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class BadRequest(IMSError):
    code = "bad_request"
    http_status = status.HTTP_400_BAD_REQUEST


class TooLarge(IMSError):
    code = "too_large"
    http_status = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE


class Forbidden(IMSError):
    code = "forbidden"
    http_status = status.HTTP_403_FORBIDDEN


class NotFound(IMSError):
    code = "not_found"
    http_status = status.HTTP_404_NOT_FOUND


class RateLimited(IMSError):
    code = "rate_limited"
    http_status = status.HTTP_429_TOO_MANY_REQUESTS


def rest_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus IMS errors rendered as {"code", "detail"} (and the field)."""
    if isinstance(exc, IMSError):
        body: dict[str, Any] = {"code": exc.code, "detail": exc.detail}
        if exc.field:
            body[exc.field] = [exc.detail]
        return Response(body, status=exc.http_status)
    return exception_handler(exc, context)
