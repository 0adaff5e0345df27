"""The public Python API: the one messaging module other apps call.

    from messaging.api import send_message
    send_message(alice, bob, "The build is green")

Call it inside your own transaction if you like: everything is stored in it and pushed
only after it commits, so nothing is pushed for work that rolled back. From async code use
the `a`-prefixed twins; like Channels' database_sync_to_async, they drop database
connections that went stale (say, after a PostgreSQL restart) before and after the call,
which plain sync_to_async never does.

Apps that put items of their own into users' streams (notifications does) use
`append_to_streams` with `StreamEntry` / `NewItem`, and learn of stored items through
messaging.signals.items_stored. Their REST views build on the same input fields and
pagination as messaging's (messaging.views.fields), so the whole /api/ reads one way.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ParamSpec, TypeVar

from channels.db import database_sync_to_async
from django.contrib.auth.base_user import AbstractBaseUser

from messaging.admin_base import ReadOnlyAdminMixin
from messaging.frames import iso
from messaging.ids import MAX_ID, require_ids
from messaging.models import Conversation, Message, Priority
from messaging.selectors.stream import item_frames
from messaging.services.messages import message_send
from messaging.services.receipts import items_mark_read
from messaging.services.stream import NewItem, StreamEntry, stream_append_many
from messaging.services.text import require_clean_strings, require_text
from messaging.signals import StoredItem
from messaging.views.fields import (
    TEXT_PATTERN,
    IdField,
    RefinedSchemaSerializer,
    StrictBooleanField,
    StrictCursorPagination,
    TextField,
    TextOrBlankField,
    id_schema,
)

__all__ = [
    "MAX_ID",
    "TEXT_PATTERN",
    "IdField",
    "NewItem",
    "Priority",
    "ReadOnlyAdminMixin",
    "RefinedSchemaSerializer",
    "StreamEntry",
    "StrictBooleanField",
    "StrictCursorPagination",
    "TextField",
    "TextOrBlankField",
    "append_to_streams",
    "asend_message",
    "asend_message_to_conversation",
    "async_twin",
    "id_schema",
    "iso",
    "item_frames",
    "mark_read",
    "require_clean_strings",
    "require_ids",
    "require_text",
    "send_message",
    "send_message_to_conversation",
]

UserRef = AbstractBaseUser | int
ConversationRef = Conversation | int
P = ParamSpec("P")
R = TypeVar("R")


def _pk(ref: Any) -> int:
    return ref if isinstance(ref, int) else ref.pk


def async_twin(func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """`func` for async code: the same contract, run in a worker thread."""

    @functools.wraps(func)
    async def twin(*args: P.args, **kwargs: P.kwargs) -> R:
        return await database_sync_to_async(func)(*args, **kwargs)

    twin.__doc__ = f"{func.__name__} for async code: the same contract, run in a worker thread."
    return twin


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


def append_to_streams(*, entries: Sequence[StreamEntry]) -> list[dict[int, StoredItem]]:
    """Store each entry as the next item of its recipients' streams, in the caller's
    transaction, and publish the items once it commits.

    A handful of statements whatever the number of entries and recipients. Pending
    recipients keep the item until one of their connections acks it. Returns, per entry,
    its items (StoredItem: user_id, seq, item_id, ...) by user id. The caller has
    validated the entries (active recipients, each user at most once per entry).
    """
    return stream_append_many(entries=entries)


def mark_read(*, user_id: int, msg_ids: Sequence[str] = (), notification_ids: Sequence[int] = ()) -> int:
    """Mark messages and notifications read by this user (they stop pending); every
    device of the reader, and each message's sender, gets a `read` receipt after commit.
    Unknown ids and items already read are skipped. Returns how many became read."""
    return items_mark_read(user_id=user_id, msg_ids=msg_ids, notification_ids=notification_ids)


asend_message = async_twin(send_message)
asend_message_to_conversation = async_twin(send_message_to_conversation)
