"""Rules for text that users send, applied by every service that stores it.

A lone UTF-16 surrogate ("\\ud800", which JavaScript's JSON.stringify emits for a string
cut inside an emoji) is valid JSON but cannot be encoded as UTF-8: stored, it broke every
replay, page and admin view that showed it. PostgreSQL stores no U+0000 in text or jsonb.
Both are refused at the door, whichever edge the text came through.
"""

from __future__ import annotations

from typing import Any

from messaging.errors import BadRequest


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
