"""How a serializer states in the OpenAPI document what its fields alone cannot: the
rules between fields that JSON Schema can say ("exactly one of", "content by msg_type",
"other keys are field errors"). The rules themselves stay where they are checked."""

from __future__ import annotations

from typing import Any, ClassVar

from drf_spectacular.extensions import OpenApiSerializerExtension
from rest_framework import serializers


class RefinedSchemaSerializer(serializers.Serializer):
    """A serializer whose schema is its fields' plus `schema_refinement`."""

    schema_refinement: ClassVar[dict[str, Any]] = {}


class RefinedSchemaExtension(OpenApiSerializerExtension):
    target_class = RefinedSchemaSerializer
    match_subclasses = True

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        # drf-spectacular's documented way for an extension to start from the default.
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        target: type[RefinedSchemaSerializer] = (
            self.target if isinstance(self.target, type) else type(self.target)
        )
        if not target.__dict__.get("__doc__"):
            schema.pop("description", None)  # not this base class's docstring
        return {**schema, **target.schema_refinement}
