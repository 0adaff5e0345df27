"""Sending a chat message: validate, store in every member's stream, publish on commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from messaging import frames
from messaging.errors import BadRequest
from messaging.models import Conversation, Message, StreamItem
from messaging.services.conversations import conversation_get_or_create_direct, conversation_member_ids
from messaging.services.stream import NewItem, stream_append

MAX_CLIENT_MSG_ID_LENGTH = 64
ATTACHMENT_FIELDS = {"url": str, "name": str, "size": int, "mime": str}


@dataclass(frozen=True)
class SendResult:
    message: Message
    sender_seq: int
    created: bool  # False when this was a retry of an already stored client_msg_id


def clean_client_msg_id(value: Any) -> str:
    if value is None:
        return uuid.uuid4().hex
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_CLIENT_MSG_ID_LENGTH:
        raise BadRequest(
            f"client_msg_id must be a non-empty string of at most {MAX_CLIENT_MSG_ID_LENGTH} characters",
            field="client_msg_id",
        )
    return value


def clean_content(msg_type: Any, content: Any) -> Any:
    """The content as stored, or BadRequest saying what is wrong with it."""
    if msg_type == Message.Type.TEXT:
        if not isinstance(content, str) or not content.strip():
            raise BadRequest("text content must be a non-empty string", field="content")
        if len(content) > settings.IMS_MAX_TEXT_LENGTH:
            raise BadRequest(
                f"text content is limited to {settings.IMS_MAX_TEXT_LENGTH} characters", field="content"
            )
        return content
    if msg_type in (Message.Type.IMAGE, Message.Type.FILE):
        if not isinstance(content, dict):
            raise BadRequest(
                f"{msg_type} content must be an object {{url, name, size, mime}}", field="content"
            )
        for name, kind in ATTACHMENT_FIELDS.items():
            value = content.get(name)
            if not isinstance(value, kind) or isinstance(value, bool) or value in ("", None):
                raise BadRequest(f"content.{name} must be a {kind.__name__}", field="content")
        if content["size"] < 0:
            raise BadRequest("content.size must not be negative", field="content")
        # "//host/x" and "/\\host/x" are not paths: browsers read both as another host.
        url = content["url"]
        if not url.startswith(("https://", "http://", "/")) or url.startswith(("//", "/\\")):
            raise BadRequest("content.url must be an http(s) URL or a path on this site", field="content")
        return {name: content[name] for name in ATTACHMENT_FIELDS}
    raise BadRequest("msg_type must be one of text, image, file", field="msg_type")


def clean_mentions(mentions: Any, *, member_ids: Sequence[int]) -> list[int]:
    if not isinstance(mentions, list | tuple) or not all(
        isinstance(m, int) and not isinstance(m, bool) for m in mentions
    ):
        raise BadRequest("mentions must be a list of user ids", field="mentions")
    strangers = sorted(set(mentions) - set(member_ids))
    if strangers:
        raise BadRequest(f"mentioned users are not in the conversation: {strangers}", field="mentions")
    return sorted(set(mentions))


def _own_seq(message: Message) -> int:
    """The seq of the sender's copy; 0 once the stream item was purged after retention."""
    seq = StreamItem.objects.filter(message=message, user_id=message.sender_id).values_list("seq", flat=True)
    return seq.first() or 0


def _direct_peer(*, conversation_id: int, sender_id: int, member_ids: Sequence[int]) -> int | None:
    """The other user of a direct conversation (the message's receiver); None in a group."""
    if len(member_ids) != 2:
        return None
    if not Conversation.objects.filter(pk=conversation_id, kind=Conversation.Kind.DIRECT).exists():
        return None
    return next(user_id for user_id in member_ids if user_id != sender_id)


def message_send(
    *,
    sender_id: int,
    content: Any,
    msg_type: Any = Message.Type.TEXT,
    to: int | None = None,
    conversation_id: int | None = None,
    client_msg_id: str | None = None,
    mentions: Sequence[int] = (),
) -> SendResult:
    """Store a message in every member's stream; a repeated client_msg_id returns the first.

    Exactly one of `to` (a user, direct message) and `conversation_id` is given.
    """
    client_msg_id = clean_client_msg_id(client_msg_id)
    previous = Message.objects.filter(sender_id=sender_id, client_msg_id=client_msg_id).first()
    if previous:
        return SendResult(previous, _own_seq(previous), created=False)
    if (to is None) == (conversation_id is None):
        raise BadRequest("give exactly one of `to` and `conversation_id`", field="to")
    content = clean_content(msg_type, content)
    with transaction.atomic():
        if to is not None:
            conversation = conversation_get_or_create_direct(user_id=sender_id, peer_id=to)
            conversation_id, member_ids = conversation.pk, [sender_id, to]
        else:
            member_ids = conversation_member_ids(conversation_id=conversation_id, user_id=sender_id)
            to = _direct_peer(conversation_id=conversation_id, sender_id=sender_id, member_ids=member_ids)
        mentions = clean_mentions(mentions, member_ids=member_ids)
        return _store(
            sender_id=sender_id,
            client_msg_id=client_msg_id,
            conversation_id=conversation_id,
            receiver_id=to,
            msg_type=msg_type,
            content=content,
            mentions=mentions,
            member_ids=member_ids,
        )


def _store(*, sender_id: int, client_msg_id: str, member_ids: Sequence[int], **fields: Any) -> SendResult:
    """Precondition: inside message_send's transaction, everything validated."""
    message = Message(sender_id=sender_id, client_msg_id=client_msg_id, created_at=timezone.now(), **fields)
    try:
        with transaction.atomic():
            message.save(force_insert=True)
    except IntegrityError:
        # A concurrent retry of the same client_msg_id stored it first.
        previous = Message.objects.get(sender_id=sender_id, client_msg_id=client_msg_id)
        return SendResult(previous, _own_seq(previous), created=False)
    items = stream_append(
        recipients=[
            NewItem(user_id=uid, pending=uid != sender_id, is_own=uid == sender_id) for uid in member_ids
        ],
        kind=StreamItem.Kind.MESSAGE,
        frame_data=frames.message_data(message),
        message_id=message.pk,
        conversation_id=message.conversation_id,
        priority="P1",
        created_at=message.created_at,
    )
    return SendResult(message, items[sender_id].seq, created=True)
