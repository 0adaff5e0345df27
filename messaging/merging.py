"""Merging of low-priority live items into `batch` frames (PROTOCOL.md, "Priorities and merging").

Pure logic, no timer and no I/O: the session offers each live item frame with the time
now and sends whatever comes back; when `deadline` passes it calls `flush`. P3 items of
one kind and category are held up to `window_seconds` after the first of them, at most
`max_items`, and go out as one `batch`. Anything else that must go out first releases the
held ones, so merging never delays an urgent item and seqs still leave in order.
"""

from __future__ import annotations

from typing import Any

Frame = dict[str, Any]
MERGED_PRIORITY = "P3"


def merge_key(frame: Frame) -> tuple[str, Any] | None:
    """What an item merges with (its kind and category), or None if it travels alone."""
    data = frame.get("data")
    if not isinstance(data, dict) or data.get("priority") != MERGED_PRIORITY:
        return None
    return str(frame.get("type")), data.get("category")


def batch_frame(items: list[Frame]) -> Frame:
    """The `batch` frame of PROTOCOL.md; a single held item goes out as itself."""
    if len(items) == 1:
        return items[0]
    return {"type": "batch", "count": len(items), "items": items, "last": items[-1]}


class Merger:
    """Holds at most one group of mergeable items for a connection."""

    def __init__(self, *, window_seconds: float, max_items: int) -> None:
        self.window_seconds = window_seconds
        self.max_items = max_items
        self._key: tuple[str, Any] | None = None
        self._held: list[Frame] = []
        self.deadline: float | None = None  # when the held group must go out

    @property
    def enabled(self) -> bool:
        return self.window_seconds > 0 and self.max_items > 1

    @property
    def holding(self) -> bool:
        return bool(self._held)

    def offer(self, frame: Frame, *, now: float) -> list[Frame]:
        """The frames to send now, in order, for this next item of the connection."""
        key = merge_key(frame) if self.enabled else None
        out: list[Frame] = []
        if self._held and key != self._key:
            out.extend(self.flush())
        if key is None:
            out.append(frame)
            return out
        if not self._held:
            self._key = key
            self.deadline = now + self.window_seconds
        self._held.append(frame)
        if len(self._held) >= self.max_items:
            out.extend(self.flush())
        return out

    def due(self, *, now: float) -> list[Frame]:
        """The held group if its window has passed, else nothing."""
        if self.deadline is not None and now >= self.deadline:
            return self.flush()
        return []

    def flush(self) -> list[Frame]:
        """Release the held group now (before a replay, or anything that must not wait)."""
        held, self._held, self._key, self.deadline = self._held, [], None, None
        return [batch_frame(held)] if held else []
