"""Frames to the text that goes on the wire, each encoded once however many sockets get it.

orjson encodes a frame about ten times faster than the standard library's json; an item
that goes to many users is encoded once per entry, with only its seq spliced in per user.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

Frame = dict[str, Any]


class EncodedFrame(dict):
    """A frame that carries its wire text. It compares and serializes as the plain dict
    it is; only the consumers' writes read `text`."""

    __slots__ = ("text",)
    text: str


def encode(frame: Frame) -> str:
    text = getattr(frame, "text", None)
    if text is not None:
        return text
    try:
        return orjson.dumps(frame).decode()
    except TypeError:  # orjson.JSONEncodeError is one
        pass
    # Unreachable for what the services store today; a row stored before text was checked
    # (a lone surrogate) must still never break a replay: escape it as JSON allows.
    return json.dumps(frame, ensure_ascii=True, separators=(",", ":"))


class ItemFrames:
    """Builds the item frames {"type", "seq", **body} of many entries, encoding each body once."""

    def __init__(self) -> None:
        self._bodies: dict[int, tuple[Frame, str | None]] = {}

    def frame(self, kind: str, seq: int, body: Frame) -> Frame:
        frame = EncodedFrame(type=kind, seq=seq, **body)
        cached = self._bodies.get(id(body))
        if cached is None or cached[0] is not body:
            cached = self._bodies[id(body)] = (body, _body_text(body))
        body_text = cached[1]
        if body_text is not None:
            head = f'{{"type":{orjson.dumps(kind).decode()},"seq":{seq}'
            frame.text = f"{head},{body_text[1:]}" if body else f"{head}}}"
        else:
            frame.text = encode(dict(frame))
        return frame


def _body_text(body: Frame) -> str | None:
    try:
        return orjson.dumps(body).decode()
    except TypeError:
        return None
