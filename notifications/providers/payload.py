"""Shortens a JSON payload to a provider's size limit, keeping it valid JSON.

Providers cap a push (Web Push 4 KiB encrypted, APNs 4 KiB, FCM 4,000 bytes of data). The
full item is always in the user's stream, so a push only needs enough to show and to find
it: long text fields are cut first, then the oldest entries of long lists (a batch keeps
its `count` and `last`), then any long string. A shortened payload says `"truncated": true`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

# Fields of the WebSocket frames (PROTOCOL.md) whose text a reader can do without.
TEXT_FIELDS = frozenset({"content", "title", "body", "text"})
ELLIPSIS = "…"
# Shorter strings are left alone: cutting them saves little and loses their meaning.
_MIN_STRING_CHARS = 16


class PayloadTooLarge(ValueError):
    """Even shortened, the payload does not fit (too many keys, not too much text)."""


def dumps(payload: Any) -> bytes:
    """Compact UTF-8 JSON, the form every size limit is measured on."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def fit_json(payload: dict[str, Any], *, max_bytes: int) -> dict[str, Any]:
    """A copy of `payload` whose `dumps()` is at most `max_bytes`; raises PayloadTooLarge."""
    if len(dumps(payload)) <= max_bytes:
        return payload
    shortened = copy.deepcopy(payload)
    shortened["truncated"] = True
    for step in (_cut_text_field, _drop_oldest_list_entry, _cut_any_string):
        while (overflow := len(dumps(shortened)) - max_bytes) > 0:
            if not step(shortened, overflow=overflow):
                break
        if overflow <= 0:
            return shortened
    raise PayloadTooLarge(f"payload still {overflow} bytes over {max_bytes} after shortening")


def _strings(node: Any) -> Iterator[tuple[Any, Any, str]]:
    """(container, key or index, value) for every string leaf, depth first."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        if isinstance(value, str):
            yield node, key, value
        else:
            yield from _strings(value)


def _lists(node: Any) -> Iterator[list[Any]]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _lists(value)
    elif isinstance(node, list):
        yield node
        for value in node:
            yield from _lists(value)


def _cut_longest(candidates: list[tuple[Any, Any, str]], *, overflow: int) -> bool:
    """Caps the longest strings at one common length, the largest that saves `overflow`
    bytes, so two long fields (title and content, say) each keep a fair share."""
    ellipsis_bytes = len(ELLIPSIS.encode())
    candidates = [c for c in candidates if len(c[2]) > _MIN_STRING_CHARS + len(ELLIPSIS)]
    if not candidates:
        return False

    def saved(cap: int) -> int:
        # Each character removed saves at least one byte of JSON; each cut adds an ellipsis.
        return sum(len(value) - cap - ellipsis_bytes for _, _, value in candidates if len(value) > cap + 1)

    low, high = _MIN_STRING_CHARS, max(len(value) for _, _, value in candidates) - 2
    if saved(low) < overflow:
        cap = low
    else:
        while low < high:
            middle = (low + high + 1) // 2
            low, high = (middle, high) if saved(middle) >= overflow else (low, middle - 1)
        cap = low
    # Every cut string gets shorter (cap + 1 < its length), so repeated calls end.
    for container, key, value in candidates:
        if len(value) > cap + 1:
            container[key] = value[:cap].rstrip() + ELLIPSIS
    return True


def _cut_text_field(payload: dict[str, Any], *, overflow: int) -> bool:
    candidates = [c for c in _strings(payload) if c[1] in TEXT_FIELDS]
    return _cut_longest(candidates, overflow=overflow)


def _cut_any_string(payload: dict[str, Any], *, overflow: int) -> bool:
    return _cut_longest(list(_strings(payload)), overflow=overflow)


def _drop_oldest_list_entry(payload: dict[str, Any], *, overflow: int) -> bool:
    lists = [entries for entries in _lists(payload) if len(entries) > 1]
    if not lists:
        return False
    # Frames list items oldest first (a batch's newest is also in `last`).
    max(lists, key=lambda entries: len(dumps(entries))).pop(0)
    return True
