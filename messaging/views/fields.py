"""Building blocks of the REST API that both apps' views share (notifications gets them
through messaging.api): input fields that take exactly the JSON the OpenAPI document at
/api/schema/ names, cursor pagination that refuses what it cannot read, and a way for a
serializer to state in that document what its fields alone cannot (messaging.views.schema).

DRF's stock fields coerce: CharField takes 12 as "12", IntegerField takes "12" and 12.0,
BooleanField takes "yes". A client generated from the schema never sends those, and a
request outside the schema must be refused, so these fields take the JSON type itself.
"""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request

from messaging.inbound import MAX_INT
from messaging.services.text import NOT_BLANK_PATTERN, TEXT_PATTERN
from messaging.views.schema import RefinedSchemaSerializer

__all__ = [
    "MAX_INT",
    "NOT_BLANK_PATTERN",
    "TEXT_PATTERN",
    "IdField",
    "RefinedSchemaSerializer",
    "StrictBooleanField",
    "StrictCursorPagination",
    "TextField",
    "TextOrBlankField",
    "id_schema",
]


def id_schema(description: str = "") -> dict[str, Any]:
    """The JSON Schema of an id: every id is a positive 64-bit integer."""
    schema: dict[str, Any] = {"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_INT}
    if description:
        schema["description"] = description
    return schema


@extend_schema_field(id_schema())
class IdField(serializers.IntegerField):
    """A user, conversation, device or notification id: a JSON integer from 1 to 2**63 - 1
    (a bigger one is the client's mistake, not a database error)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_value=1, max_value=MAX_INT, **kwargs)

    def to_internal_value(self, data: Any) -> int:
        if not isinstance(data, int) or isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


class TextField(serializers.CharField):
    """A JSON string with more than whitespace in it, kept as sent (no trimming: the
    lengths the schema counts are the service's), without U+0000 (services.text says
    why). Both rules are a pattern the schema shows."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["validators"] = [*kwargs.get("validators", ()), RegexValidator(NOT_BLANK_PATTERN)]
        super().__init__(trim_whitespace=False, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


# Inside allOf: drf-spectacular turns a top-level pattern of a field that may be blank into
# oneOf [pattern, ""], which "" matches twice, so no "" would be valid.
@extend_schema_field({"type": "string", "allOf": [{"pattern": TEXT_PATTERN}]})
class TextOrBlankField(serializers.CharField):
    """TextField that may also be empty or whitespace (DRF refuses U+0000 itself)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_blank=True, trim_whitespace=False, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """JSON true or false, nothing DRF would read as one."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class StrictCursorPagination(CursorPagination):
    """Cursor pagination that answers 400 to a `page_size` that is not a positive integer
    (DRF quietly uses its default instead; more than max_page_size still gives that many)
    and 404 to a cursor whose position could not come from this ordering (DRF would take
    it to the query: a 500)."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
            raise ValidationError({self.page_size_query_param: ["a positive integer"]})
        return min(int(raw), self.max_page_size)

    def decode_cursor(self, request: Request) -> Cursor | None:
        cursor = super().decode_cursor(request)
        # DRF's stub says int; decode_cursor takes the position from the query string.
        position = cursor.position if cursor is not None else None
        if position is not None and not self.position_is_valid(str(position)):
            raise NotFound(self.invalid_cursor_message)
        return cursor

    def position_is_valid(self, position: str) -> bool:
        """Whether a position read from a cursor can be a value of this ordering's field."""
        return True

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1}
                parameter["description"] = (
                    f"Results a page: {self.page_size} when absent, at most {self.max_page_size}."
                )
            elif parameter["name"] == self.cursor_query_param:
                parameter["description"] = "The `next` or `previous` of a page; any other value is a 404."
        return parameters

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        page = super().get_paginated_response_schema(schema)
        return {**page, "required": ["next", "previous", "results"]}
