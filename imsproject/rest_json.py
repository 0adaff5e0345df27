"""JSON in and out of the REST API, hardened against hostile input.

- A body nested tens of thousands of levels deep overflows the JSON parser's stack with a
  RecursionError, which DRF does not catch: it answered 500. It is a 400 now.
- A string that cannot be encoded as UTF-8 (a lone surrogate stored before text was
  checked) broke every page that showed it; such text goes out as a JSON \\u escape.
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer


class SafeJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply") from None


class SafeJSONRenderer(JSONRenderer):
    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        try:
            return super().render(data, accepted_media_type, renderer_context)
        except UnicodeEncodeError:
            return _EscapingJSONRenderer().render(data, accepted_media_type, renderer_context)


class _EscapingJSONRenderer(JSONRenderer):
    """Non-ASCII text as \\u escapes: how SafeJSONRenderer writes what UTF-8 cannot encode."""

    ensure_ascii = True
