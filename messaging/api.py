"""The public Python API for other Django apps.

    from messaging.api import send_message
    send_message(alice, bob, "The build is green")

Call it inside your own transaction if you like: the message is stored in it and pushed
only after it commits, so nothing is pushed for work that rolled back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from asgiref.sync import sync_to_async
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


asend_message = sync_to_async(send_message)
asend_message_to_conversation = sync_to_async(send_message_to_conversation)
