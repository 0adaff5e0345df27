"""The fast path: the only module that talks to the channel layer.

Events are hints. The channel layer may drop or repeat them (channels-redis drops over
capacity without a word), so consumers check each item's seq and read any gap from the
database. Publishing happens only after the transaction that stored the items commits.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from messaging.frames import Frame

logger = logging.getLogger(__name__)

ITEM_EVENT = "stream.item"  # handled by IMSConsumer.stream_item
FRAME_EVENT = "frame.forward"  # handled by IMSConsumer.frame_forward
REVOKE_EVENT = "connection.revoke"  # handled by IMSConsumer.connection_revoke


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


async def publish(events: Iterable[tuple[int, dict]]) -> None:
    """Send each (user_id, event) to that user's group; failures are logged, never raised.

    The items are already stored, so a lost event only delays them until the consumer's
    gap check, the next `sync`, or the next connect.
    """
    layer = get_channel_layer()
    if layer is None:
        return
    for user_id, event in events:
        try:
            await layer.group_send(user_group(user_id), event)
        except Exception:
            logger.exception("channel layer dropped an event for user %s", user_id)


def item_event(seq: int, frame: Frame) -> dict:
    return {"type": ITEM_EVENT, "seq": seq, "frame": frame}


def frame_event(frame: Frame) -> dict:
    return {"type": FRAME_EVENT, "frame": frame}


def publish_on_commit(events: list[tuple[int, dict]]) -> None:
    """Publish after the surrounding transaction commits; never if it rolls back."""
    if events:
        transaction.on_commit(lambda: async_to_sync(publish)(events))


def publish_frames_on_commit(frames: Iterable[tuple[int, Frame]]) -> None:
    publish_on_commit([(user_id, frame_event(frame)) for user_id, frame in frames])


def publish_items_on_commit(items: Iterable[tuple[int, int, Frame]]) -> None:
    """Each (user_id, seq, frame) goes to every connection of that user."""
    publish_on_commit([(user_id, item_event(seq, frame)) for user_id, seq, frame in items])


def publish_revoke_on_commit(user_id: int, *, session_key: str | None = None) -> None:
    """Close the user's connections (those of one login session, if given) with 4403.

    The fast path only: the per-process stream poll closes a deactivated user's
    connections within IMS_STREAM_POLL_SECONDS even when this event is lost.
    """
    publish_on_commit([(user_id, {"type": REVOKE_EVENT, "session_key": session_key})])


async def publish_frames_now(frames: Iterable[tuple[int, Frame]]) -> None:
    """For frames that are never stored (typing, presence): there is no commit to wait for."""
    await publish([(user_id, frame_event(frame)) for user_id, frame in frames])


async def join(user_id: int, channel_name: str) -> None:
    layer = get_channel_layer()
    await layer.group_add(user_group(user_id), channel_name)


async def leave(user_id: int, channel_name: str) -> None:
    layer = get_channel_layer()
    await layer.group_discard(user_group(user_id), channel_name)
