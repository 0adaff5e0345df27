"""The fast path: the only module that talks to the channel layer.

Events are hints. The channel layer may drop or repeat them (channels-redis drops over
capacity without a word), so consumers check each item's seq and read any gap from the
database. Publishing happens only after the transaction that stored the items commits,
and never makes the database thread wait: from a thread serving an event loop (the
consumers' `database_sync_to_async`) the events are handed to that loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from messaging.frames import Frame

logger = logging.getLogger(__name__)
# Publishing tasks handed to an event loop; held here so that none is collected mid-run.
_in_flight: set[asyncio.Task[None]] = set()

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
    send_many = getattr(layer, "group_send_many", None)
    if send_many is not None:  # imsproject.fanout_layer: local sockets at once, Redis pipelined
        try:
            await send_many([(user_group(user_id), event) for user_id, event in events])
        except Exception:
            logger.exception("channel layer dropped a batch of events")
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
        transaction.on_commit(lambda: _publish_from_thread(events))


def _publish_from_thread(events: list[tuple[int, dict]]) -> None:
    """The database thread of a server process hands the events to the event loop that
    waits on it and goes on; any other caller (Celery, a command) publishes and waits.

    Before, `async_to_sync` here held the consumers' one database thread until the loop
    had run the sends: 12 % of that thread's time in a profile of the 1:1 closed loop.
    """
    loop = _waiting_loop()
    if loop is None:
        async_to_sync(publish)(events)
    elif loop.is_running() and not loop.is_closed():
        loop.call_soon_threadsafe(_start_publishing, events)
    else:
        # The server is stopping: async_to_sync would wait for a loop that never runs
        # again (seen hanging a daphne on SIGTERM). The stream poll and the next connect
        # deliver these items.
        logger.info("server loop stopped; %d events left to the stream poll", len(events))


def _waiting_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop this thread works for through sync_to_async (asgiref records it)."""
    local = SyncToAsync.threadlocal
    if getattr(local, "main_event_loop_pid", None) != os.getpid():
        return None
    return getattr(local, "main_event_loop", None)


def _start_publishing(events: list[tuple[int, dict]]) -> None:
    task = asyncio.ensure_future(publish(events))
    _in_flight.add(task)
    task.add_done_callback(_in_flight.discard)


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


def attach(channel_name: str, sink: Callable[[dict[str, Any]], bool]) -> None:
    """Events for this channel go to `sink` first, synchronously, when the layer supports
    it (imsproject.fanout_layer); it returns False for those the consumer must receive
    the ordinary way."""
    layer = get_channel_layer()
    attach_sink = getattr(layer, "attach", None)
    if attach_sink is not None:
        attach_sink(channel_name, sink)


async def leave(user_id: int, channel_name: str) -> None:
    layer = get_channel_layer()
    await layer.group_discard(user_group(user_id), channel_name)
    forget = getattr(layer, "forget", None)
    if forget is not None:
        forget(channel_name)
