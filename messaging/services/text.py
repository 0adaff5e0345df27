"""Rules for text that users send, applied by every service that stores it.

A lone UTF-16 surrogate ("\\ud800", which JavaScript's JSON.stringify emits for a string
cut inside an emoji) is valid JSON but cannot be encoded as UTF-8: stored, it broke every
replay, page and admin view that showed it. PostgreSQL stores no U+0000 in text or jsonb.
Both are refused at the door, whichever edge the text came through.
"""

from __future__ import annotations

from typing import Any

from messaging.errors import BadRequest

# The same rules as JSON Schema patterns (ECMA 262, which Python's re also reads), for the
# OpenAPI document. Lone surrogates need no pattern: no JSON Schema string holds one.
TEXT_PATTERN = r"^[^\u0000]*$"
# What str.strip() removes: the characters for which str.isspace() is true. Spelled out,
# because `\s` means fewer of them in ECMA 262 and more in Python.
_WHITESPACE = r"\t-\r\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# Text with something besides whitespace: what `value.strip()` leaves non-empty.
NOT_BLANK_PATTERN = rf"^[^\u0000]*[^\u0000{_WHITESPACE}][^\u0000]*$"


def text_problem(value: str) -> str | None:
    """Why this string cannot be stored, or None."""
    if "\x00" in value:
        return "must not contain the character U+0000"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text (it holds a lone UTF-16 surrogate)"
    return None


def require_text(value: str, *, field: str) -> str:
    problem = text_problem(value)
    if problem:
        raise BadRequest(f"`{field}` {problem}", field=field)
    return value


def require_clean_strings(value: Any, *, field: str) -> Any:
    """Every string anywhere in a JSON value passes require_text (walked without
    recursion: the value may nest as deep as a JSON parser allowed)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            require_text(item, field=field)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return value
