"""The public Python API for other Django apps.

    from messaging.api import send_message
    send_message(alice, bob, "The build is green")

Call it inside your own transaction if you like: the message is stored in it and pushed
only after it commits, so nothing is pushed for work that rolled back. From async code use
the twins `asend_message` and `asend_message_to_conversation`; like Channels'
database_sync_to_async, they drop database connections that went stale (say, after a
PostgreSQL restart) before and after the call, which plain sync_to_async never does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from channels.db import database_sync_to_async
from django.contrib.auth.base_user import AbstractBaseUser

from messaging.models import Conversation, Message
from messaging.services.messages import message_send

UserRef = AbstractBaseUser | int
ConversationRef = Conversation | int


def _pk(ref: Any) -> int:
    return ref if isinstance(ref, int) else ref.pk


def send_message(
    sender: UserRef,
    to: UserRef,
    content: Any,
    msg_type: str = "text",
    *,
    client_msg_id: str | None = None,
    mentions: Sequence[int] = (),
) -> Message:
    """Send a direct message from `sender` to `to` (users or their ids).

    Raises messaging.errors.IMSError (BadRequest, NotFound, ...) and stores nothing when
    the input is invalid. With a `client_msg_id` already used by the sender, returns
    that message and sends nothing again.
    """
    return message_send(
        sender_id=_pk(sender),
        to=_pk(to),
        content=content,
        msg_type=msg_type,
        client_msg_id=client_msg_id,
        mentions=mentions,
    ).message


def send_message_to_conversation(
    sender: UserRef,
    conversation: ConversationRef,
    content: Any,
    msg_type: str = "text",
    *,
    client_msg_id: str | None = None,
    mentions: Sequence[int] = (),
) -> Message:
    """Send to a conversation (direct or group) the sender belongs to."""
    return message_send(
        sender_id=_pk(sender),
        conversation_id=_pk(conversation),
        content=content,
        msg_type=msg_type,
        client_msg_id=client_msg_id,
        mentions=mentions,
    ).message


async def asend_message(
    sender: UserRef,
    to: UserRef,
    content: Any,
    msg_type: str = "text",
    *,
    client_msg_id: str | None = None,
    mentions: Sequence[int] = (),
) -> Message:
    """send_message for async code: the same contract, run in a worker thread."""
    return await database_sync_to_async(send_message)(
        sender, to, content, msg_type, client_msg_id=client_msg_id, mentions=mentions
    )


async def asend_message_to_conversation(
    sender: UserRef,
    conversation: ConversationRef,
    content: Any,
    msg_type: str = "text",
    *,
    client_msg_id: str | None = None,
    mentions: Sequence[int] = (),
) -> Message:
    """send_message_to_conversation for async code."""
    return await database_sync_to_async(send_message_to_conversation)(
        sender, conversation, content, msg_type, client_msg_id=client_msg_id, mentions=mentions
    )
