"""Builders of the server → client frames of PROTOCOL.md. Pure functions, no I/O."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from messaging.models import Message, StreamItem

Frame = dict[str, Any]


def iso(moment: dt.datetime) -> str:
    """ISO 8601 in UTC with a Z, as every time on the wire."""
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def now_iso() -> str:
    return iso(timezone.now())


# The message fields of the wire representation, in order; the replay reads them
# straight from the database as `message__<field>` (selectors.STREAM_ROW_FIELDS).
MESSAGE_FIELDS = (
    "id",
    "client_msg_id",
    "conversation_id",
    "sender_id",
    "receiver_id",
    "msg_type",
    "content",
    "mentions",
    "created_at",
)


def _message_data(
    id: Any,
    client_msg_id: str,
    conversation_id: int,
    sender_id: int,
    receiver_id: int | None,
    msg_type: str,
    content: Any,
    mentions: list[int],
    created_at: dt.datetime,
) -> Frame:
    return {
        "msg_id": str(id),
        "client_msg_id": client_msg_id,
        "conversation_id": conversation_id,
        "sender_id": sender_id,
        "receiver_id": receiver_id,
        "msg_type": msg_type,
        "content": content,
        "mentions": list(mentions),
        "created_at": iso(created_at),
    }


def message_data(message: Message) -> Frame:
    return _message_data(*(getattr(message, name) for name in MESSAGE_FIELDS))


def stream_row_frame(row: tuple[Any, ...]) -> Frame:
    """The item frame (`message`, `notification`, `conversation`) of a stream item read as a row of
    (seq, kind, payload, *MESSAGE_FIELDS of its message): no model instances on the
    replay path, where building them cost more than the query."""
    seq, kind, payload, *message = row
    if kind == StreamItem.Kind.MESSAGE:
        return {"type": "message", "seq": seq, "data": _message_data(*message)}
    return {"type": kind, "seq": seq, **payload}


def hello(*, user_id: int, heartbeat_s: float, last_seq: int) -> Frame:
    return {
        "type": "hello",
        "protocol": 1,
        "user_id": user_id,
        # 30, not 30.0: clients in typed languages read it into an integer.
        "heartbeat_s": int(heartbeat_s) if float(heartbeat_s).is_integer() else heartbeat_s,
        "last_seq": last_seq,
    }


def offline_messages(*, items: list[Frame], more: bool, truncated: bool | None) -> Frame:
    frame: Frame = {"type": "offline_messages", "items": items, "more": more}
    if truncated is not None:
        frame["truncated"] = truncated
    return frame


def sent(*, message: Message, seq: int) -> Frame:
    return {
        "type": "sent",
        "client_msg_id": message.client_msg_id,
        "msg_id": str(message.id),
        "seq": seq,
        "created_at": iso(message.created_at),
    }


def receipt(*, msg_ids: list[str], status: str, user_id: int, at: dt.datetime) -> Frame:
    return {"type": "receipt", "msg_ids": msg_ids, "status": status, "user_id": user_id, "at": iso(at)}


def notification_receipt(*, notification_ids: list[Any], user_id: int, at: dt.datetime) -> Frame:
    return {
        "type": "receipt",
        "notification_ids": notification_ids,
        "status": "read",
        "user_id": user_id,
        "at": iso(at),
    }


def presence(*, user_id: int, online: bool) -> Frame:
    return {"type": "presence", "user_id": user_id, "online": online}


def typing(*, conversation_id: int, user_id: int) -> Frame:
    return {"type": "typing", "conversation_id": conversation_id, "user_id": user_id}


def ping() -> Frame:
    return {"type": "ping", "ts": now_iso()}


def pong() -> Frame:
    return {"type": "pong", "ts": now_iso()}


def error(*, code: str, detail: str, ref: Any = None) -> Frame:
    return {"type": "error", "code": code, "detail": detail, "ref": ref}
