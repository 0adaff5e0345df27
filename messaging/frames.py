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


def message_data(message: Message) -> Frame:
    return {
        "msg_id": str(message.id),
        "client_msg_id": message.client_msg_id,
        "conversation_id": message.conversation_id,
        "sender_id": message.sender_id,
        "receiver_id": message.receiver_id,
        "msg_type": message.msg_type,
        "content": message.content,
        "mentions": list(message.mentions),
        "created_at": iso(message.created_at),
    }


def item_frame(item: StreamItem) -> Frame:
    """The `message` or `notification` frame of one stream item."""
    if item.kind == StreamItem.Kind.MESSAGE:
        return {"type": "message", "seq": item.seq, "data": message_data(item.message)}
    return {"type": item.kind, "seq": item.seq, "data": item.payload}


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
