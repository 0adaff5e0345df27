"""Domain errors. Each `code` is a PROTOCOL.md error code and maps to one HTTP status here;
the REST error bodies are made here, and described here for the OpenAPI document."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from messaging.views.schema import RefinedSchemaSerializer


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


ERROR_CODES = [kind.code for kind in (BadRequest, TooLarge, Forbidden, NotFound, RateLimited, IMSError)]

# DRF's own errors that have a protocol code. Authentication failures have none: they
# keep DRF's body and its WWW-Authenticate header.
DRF_ERROR_CODES: dict[type[exceptions.APIException], str] = {
    exceptions.ValidationError: BadRequest.code,
    exceptions.ParseError: BadRequest.code,
    exceptions.UnsupportedMediaType: BadRequest.code,
    exceptions.MethodNotAllowed: BadRequest.code,
    exceptions.NotAcceptable: BadRequest.code,
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
    field_errors = {name: _messages(errors) for name, errors in fields.items() if name != "detail"}
    response.data = {**field_errors, "code": code, "detail": detail}
    return response


def _messages(errors: Any, prefix: str = "") -> list[str]:
    """A field's errors as one flat list of strings: those of list items and nested
    objects say where ("[2] ...", "keys.auth: ..."), so every body has one shape."""
    if isinstance(errors, Mapping):
        found = []
        for key, nested in errors.items():
            where = f"{prefix}[{key}]" if str(key).isdigit() else f"{prefix}{'.' if prefix else ''}{key}"
            found += _messages(nested, where)
        return found
    if isinstance(errors, list | tuple):
        return [message for error in errors for message in _messages(error, prefix)]
    return [f"{prefix}: {errors}" if prefix else str(errors)]


# --- the same bodies in the OpenAPI document ---------------------------------------------


class ErrorSerializer(RefinedSchemaSerializer):
    """The body of every error but 401: a protocol `code`, a `detail`, and for errors
    about fields `"<field>": ["...", ...]` beside them."""

    schema_refinement: ClassVar[dict[str, Any]] = {
        "additionalProperties": {
            "type": "array",
            "items": {"type": "string"},
            "description": "A field's errors.",
        }
    }

    code = serializers.ChoiceField(choices=ERROR_CODES)
    detail = serializers.CharField()


class AuthenticationErrorSerializer(serializers.Serializer):
    """The body of a 401: DRF's own, with the WWW-Authenticate header."""

    detail = serializers.CharField()


NOT_AUTHENTICATED = "No credentials, or wrong or revoked ones."
CSRF = "With session credentials, a write without its CSRF token."
NOT_JSON = "The body is not `application/json`."
NO_ROUTE = "No such path: an id outside the integers, say."


def error_responses(descriptions: Mapping[int, str]) -> dict[int, OpenApiResponse]:
    """The OpenAPI responses of the errors a view answers, by status, each with the error
    body; every view here requires credentials, so 401 is always among them."""
    responses = {
        status_code: OpenApiResponse(ErrorSerializer, description=description)
        for status_code, description in descriptions.items()
    }
    responses[status.HTTP_401_UNAUTHORIZED] = OpenApiResponse(
        AuthenticationErrorSerializer, description=NOT_AUTHENTICATED
    )
    return dict(sorted(responses.items()))
