"""Domain errors. Each `code` is a PROTOCOL.md error code and maps to one HTTP status here."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler


class IMSError(Exception):
    code = "server_error"
    http_status: int = status.HTTP_500_INTERNAL_SERVER_ERROR

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

    def __init__(
        self, detail: str, *, field: str | None = None, retry_after_seconds: int | None = None
    ) -> None:
        super().__init__(detail, field=field)
        # Sent as the Retry-After header of a REST answer.
        self.retry_after_seconds = retry_after_seconds


# DRF's own errors that have a protocol code. Authentication failures have none: they
# keep DRF's body and its WWW-Authenticate header.
DRF_ERROR_CODES: dict[type[exceptions.APIException], str] = {
    exceptions.ValidationError: BadRequest.code,
    exceptions.ParseError: BadRequest.code,
    exceptions.UnsupportedMediaType: BadRequest.code,
    exceptions.PermissionDenied: Forbidden.code,
    exceptions.NotFound: NotFound.code,
    exceptions.Throttled: RateLimited.code,
}


def error_body(exc: IMSError) -> dict[str, Any]:
    """The REST body of a domain error: {"code", "detail"}, plus {"<field>": [detail]}."""
    body: dict[str, Any] = {"code": exc.code, "detail": exc.detail}
    if exc.field:
        body[exc.field] = [exc.detail]
    return body


def rest_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every error body has a protocol `code` and a `detail`; field errors keep DRF's
    {"<field>": ["..."]} beside them."""
    if isinstance(exc, IMSError):
        headers = {}
        if isinstance(exc, RateLimited) and exc.retry_after_seconds is not None:
            headers["Retry-After"] = str(exc.retry_after_seconds)
        return Response(error_body(exc), status=exc.http_status, headers=headers)
    response = exception_handler(exc, context)
    code = next((code for kind, code in DRF_ERROR_CODES.items() if isinstance(exc, kind)), None)
    if response is None or code is None:
        return response
    fields = response.data if isinstance(response.data, dict) else {"non_field_errors": response.data}
    detail = (
        fields.get("detail") if isinstance(fields.get("detail"), str) else "invalid input; see the fields"
    )
    response.data = {**fields, "code": code, "detail": detail}
    return response
