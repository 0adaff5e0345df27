"""Parsing of client → server frames. Everything here raises BadRequest or TooLarge with a
message a client author can act on; nothing touches the database."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any, TypeGuard

from django.conf import settings

from messaging.errors import BadRequest, TooLarge
from messaging.ids import MAX_ID

MAX_IDS_PER_FRAME = 1000
# Ids and seqs are 64-bit columns (messaging.ids).
MAX_INT = MAX_ID


def parse_frame(text: str | None, data: bytes | None, *, types: Collection[str]) -> dict[str, Any]:
    """The frame as a dict with a known string `type` (one of `types`)."""
    limit = settings.IMS_MAX_FRAME_BYTES
    # Size first, whatever the kind: a huge binary frame is too_large, not bad_request.
    # Characters are counted first so a huge text is refused without encoding it.
    raw = text if text is not None else data or b""
    if len(raw) > limit or (text is not None and len(text.encode()) > limit):
        raise TooLarge(f"frames are limited to {limit} bytes")
    if text is None:
        raise BadRequest("binary frames are not part of the protocol; send JSON text frames")
    try:
        frame = json.loads(text)
    except ValueError as exc:
        raise BadRequest(f"invalid JSON: {exc}") from None
    except RecursionError:  # "[[[[…" fits in a frame but not on the parser's stack
        raise BadRequest("invalid JSON: nested too deeply") from None
    if not isinstance(frame, dict):
        raise BadRequest("a frame must be a JSON object")
    kind = frame.get("type")
    if not isinstance(kind, str):
        raise BadRequest("a frame needs a string field `type`")
    if kind not in types:
        raise BadRequest(f"unknown frame type {kind!r}")
    return frame


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value <= MAX_INT


def require_int(frame: dict[str, Any], name: str, *, minimum: int = 0) -> int:
    value = frame.get(name)
    if not _is_int(value) or value < minimum:
        raise BadRequest(f"`{name}` must be an integer >= {minimum}")
    return value


def check_id(value: int) -> int:
    """An id from a URL path: Django's <int:…> takes 0 and any number of digits."""
    if not 1 <= value <= MAX_INT:
        raise BadRequest(f"ids are integers from 1 to {MAX_INT}")
    return value


def parse_last_seq(raw: str) -> int:
    """The `last_seq` query parameter: ASCII digits only (str.isdigit also takes "²")."""
    if not (raw.isascii() and raw.isdigit()) or int(raw) > MAX_INT:
        raise BadRequest("last_seq must be a non-negative integer; replaying pending items instead")
    return int(raw)


def optional_int(frame: dict[str, Any], name: str) -> int | None:
    return None if frame.get(name) is None else require_int(frame, name, minimum=1)


def require_list(frame: dict[str, Any], name: str, item_type: type, label: str) -> list:
    value = frame.get(name)
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, item_type) and not isinstance(v, bool) for v in value)
        or (item_type is int and not all(_is_int(v) for v in value))
    ):
        raise BadRequest(f"`{name}` must be a non-empty list of {label}")
    if len(value) > MAX_IDS_PER_FRAME:
        raise BadRequest(f"`{name}` takes at most {MAX_IDS_PER_FRAME} entries a frame")
    return value


def parse_seqs(frame: dict[str, Any]) -> list[int]:
    seqs = require_list(frame, "seqs", int, "positive integers")
    if any(seq < 1 for seq in seqs):
        raise BadRequest("`seqs` must be a non-empty list of positive integers")
    return seqs


def parse_read(frame: dict[str, Any]) -> dict[str, list]:
    """`msg_ids` and/or `notification_ids`: the keyword arguments of items_mark_read."""
    if frame.get("msg_ids") is None and frame.get("notification_ids") is None:
        raise BadRequest("`read` needs `msg_ids` and/or `notification_ids`")
    ids: dict[str, list] = {}
    if frame.get("msg_ids") is not None:
        ids["msg_ids"] = require_list(frame, "msg_ids", str, "message id strings")
    if frame.get("notification_ids") is not None:
        notification_ids = require_list(frame, "notification_ids", int, "notification ids")
        if any(notification_id < 1 for notification_id in notification_ids):
            raise BadRequest("`notification_ids` must be a non-empty list of notification ids")
        ids["notification_ids"] = notification_ids
    return ids


def parse_send(frame: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of services.messages.message_send, less the sender. Shape
    only: what may be sent is the service's to say."""
    client_msg_id = frame.get("client_msg_id")
    if not isinstance(client_msg_id, str) or not client_msg_id:
        raise BadRequest("`client_msg_id` must be a non-empty string")
    to, conversation_id = optional_int(frame, "to"), optional_int(frame, "conversation_id")
    if (to is None) == (conversation_id is None):
        raise BadRequest("give exactly one of `to` and `conversation_id`")
    if "msg_type" not in frame or "content" not in frame:
        raise BadRequest("`send` needs `msg_type` and `content`")
    mentions = frame.get("mentions", [])
    if mentions is None:
        mentions = []
    return {
        "client_msg_id": client_msg_id,
        "to": to,
        "conversation_id": conversation_id,
        "msg_type": frame["msg_type"],
        "content": frame["content"],
        "mentions": mentions,
    }
