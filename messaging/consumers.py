"""The WebSocket endpoint of PROTOCOL.md: dispatch and socket I/O only.

Each client frame type has one handler in CLIENT_FRAMES (the table the frame parser
checks against); each handler parses, calls one service, answers. What keeps "each seq
once, in order" is messaging.session.StreamSession, which this consumer feeds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from imsproject.daphne_hardening import sync_writer
from messaging import delivery, frames, inbound, wire
from messaging.auth import query_params
from messaging.batching import (
    ack_batcher,
    close_batcher,
    heartbeat_batcher,
    open_batcher,
    page_batcher,
    send_batcher,
)
from messaging.errors import BadRequest, IMSError, RateLimited
from messaging.selectors.conversations import conversation_member_ids
from messaging.selectors.stream import PageRequest, stream_is_truncated, stream_last_seq
from messaging.selectors.users import StreamHead
from messaging.services.messages import SendCommand
from messaging.services.receipts import items_mark_read
from messaging.session import Page, StreamSession
from messaging.stream_poll import stream_poll
from messaging.throttle import TokenBucket

logger = logging.getLogger(__name__)

CLOSE_SILENT_PEER = 4408
CLOSE_REVOKED = 4403
CLOSE_SERVER_ERROR = 1011
# Clients send `typing` on keystrokes; a few a second is plenty for the indicator.
TYPING_RATE_PER_SECOND = 2
TYPING_BURST = 5
# Pages read in one query by a replay (each sent after the client acks the one before).
READ_AHEAD_PAGES = 5
# A `sync` replays from the database; a client needs one after a gap, not a stream of them.
SYNC_RATE_PER_SECOND = 1
SYNC_BURST = 5


class DatabaseStreamReader:
    """StreamReader over the selectors, for one user."""

    def __init__(self, user_id: int) -> None:
        self.user_id = user_id
        # The pages read ahead: ((pending_only, after_seq, upto_seq) they follow, items).
        self._ahead: tuple[tuple[bool, int, int], Page] | None = None

    async def last_seq(self) -> int:
        return await database_sync_to_async(stream_last_seq)(user_id=self.user_id)

    async def page(self, *, pending_only: bool, after_seq: int, upto_seq: int, limit: int) -> Page:
        """The next page, read READ_AHEAD_PAGES pages at a time: a replay asks for the
        page after the one it just sent, and each database hop costs more than its rows."""
        if upto_seq <= after_seq:  # a client resuming with nothing missed: no database hop
            return Page(items=[], more=False)
        ahead = self._ahead
        if ahead is not None and ahead[0] == (pending_only, after_seq, upto_seq) and ahead[1].items:
            read = ahead[1]
        else:
            read = await page_batcher().submit(
                PageRequest(
                    user_id=self.user_id,
                    pending_only=pending_only,
                    after_seq=after_seq,
                    upto_seq=upto_seq,
                    limit=limit * READ_AHEAD_PAGES,
                )
            )
        page = Page(items=read.items[:limit], more=len(read.items) > limit or read.more)
        rest = Page(items=read.items[limit:], more=read.more)
        self._ahead = ((pending_only, page.items[-1]["seq"], upto_seq), rest) if page.items else None
        return page

    async def is_truncated(self, *, after_seq: int, upto_seq: int) -> bool:
        if upto_seq <= after_seq:
            return False
        return await database_sync_to_async(stream_is_truncated)(
            user_id=self.user_id, after_seq=after_seq, upto_seq=upto_seq
        )


class IMSConsumer(AsyncWebsocketConsumer):
    # False until connect() accepts an authenticated user; user_id and everything after
    # it in connect() exist from then on.
    authenticated = False
    user_id: int
    heartbeat: asyncio.Task | None = None
    session: StreamSession
    _write: Callable[[str], None] | None = None  # daphne's synchronous write, when served by it
    _acks_storing: asyncio.Future[None] | None = None
    _heartbeat_storing: asyncio.Future[None] | None = None
    _handling_frame = False

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch without its `aclose_old_connections()` before each handler:
        that is a hop to the one database thread for every frame and every event, queued
        behind the batches there (7 % of the server's CPU and most of the receive latency
        in a profile of the 1:1 closed loop). Every ORM call here goes through
        database_sync_to_async, which closes stale connections itself around the call."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        """Channels' version, without its closing `aclose_old_connections()` (see dispatch):
        5.7 % of the server's CPU in a reconnect-storm profile. No group of Channels' own
        (`groups`) to leave: delivery.leave runs in disconnect()."""
        await self.disconnect(message["code"])
        raise StopConsumer

    # --- lifecycle ---------------------------------------------------------------------

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close()  # before accept: the handshake is refused with 403
            return
        self.authenticated = True
        self.user_id = user.pk
        self.last_received = time.monotonic()
        self.send_bucket = TokenBucket(rate=settings.IMS_SEND_RATE_PER_SECOND, burst=settings.IMS_SEND_BURST)
        self.typing_bucket = TokenBucket(rate=TYPING_RATE_PER_SECOND, burst=TYPING_BURST)
        self.sync_bucket = TokenBucket(rate=SYNC_RATE_PER_SECOND, burst=SYNC_BURST)
        self._acks_waiting: set[int] = set()
        self.reader = DatabaseStreamReader(user.pk)
        self.session = StreamSession(
            send=self.send_frame,
            reader=self.reader,
            page_size=settings.IMS_REPLAY_BATCH_SIZE,
            merge_window_seconds=settings.IMS_MERGE_WINDOW_SECONDS,
            merge_max_items=settings.IMS_MERGE_MAX_ITEMS,
        )
        await self.accept()
        try:
            await self._open()
        except Exception:
            await self._close_on_failure("connect")

    async def _open(self) -> None:
        """hello, presence, the replay. Precondition: accepted."""
        # Join before reading last_seq: every seq above it is published after this point.
        await delivery.join(self.user_id, self.channel_name)
        # last_seq and the Connection row in one batch with the other handshakes of the moment.
        last_seq, peers = await open_batcher().submit((self.user_id, self.channel_name))
        await self.send_frame(
            frames.hello(user_id=self.user_id, heartbeat_s=settings.IMS_HEARTBEAT_SECONDS, last_seq=last_seq)
        )
        resume_from = await self._resume_point()
        self.heartbeat = asyncio.create_task(self._beat())
        stream_poll().add(self.user_id, self)
        await delivery.publish_frames_now(
            (peer, frames.presence(user_id=self.user_id, online=True)) for peer in peers
        )
        await self.session.open(last_seq=last_seq, resume_from=resume_from)
        # From here on, events reach this socket without a task switch when the server allows it.
        self._write = sync_writer(self.base_send)
        if self._write is not None:
            delivery.attach(self.channel_name, self.fast_event)

    async def _resume_point(self) -> int | None:
        raw = query_params(self.scope).get("last_seq")
        if raw is None or raw == "":
            return None
        try:
            return inbound.parse_last_seq(raw)
        except BadRequest as error:
            await self.send_error(error)
            return None

    async def disconnect(self, code: int) -> None:
        if not self.authenticated:
            return
        if self.heartbeat is not None:
            self.heartbeat.cancel()
        self.session.close()
        stream_poll().discard(self.user_id, self)
        await delivery.leave(self.user_id, self.channel_name)
        peers = await close_batcher().submit((self.user_id, self.channel_name))
        await delivery.publish_frames_now(
            (peer, frames.presence(user_id=self.user_id, online=False)) for peer in peers
        )

    async def _beat(self) -> None:
        """Ping every heartbeat_s; close a peer silent for two heartbeats with 4408."""
        interval = settings.IMS_HEARTBEAT_SECONDS
        next_ping = time.monotonic() + interval
        while True:
            await asyncio.sleep(min(interval / 4, 5))
            now = time.monotonic()
            if now - self.last_received >= 2 * interval and not self._handling_frame:
                await self.close(code=CLOSE_SILENT_PEER)
                return
            if now >= next_ping:
                next_ping = now + interval
                await self.send_frame(frames.ping())
                self._record_heartbeat_later()

    def _record_heartbeat_later(self) -> None:
        """Record the ping without holding up the next one: with the database stalled (a
        lock held for seconds) the pings went quiet, and clients took the server for dead.
        At most one record in flight per connection."""
        if self._heartbeat_storing is None or self._heartbeat_storing.done():
            self._heartbeat_storing = asyncio.ensure_future(self._record_heartbeat())

    async def _record_heartbeat(self) -> None:
        try:
            await heartbeat_batcher().submit(self.channel_name)
        except Exception:
            # A database outage (a PostgreSQL restart) is logged, not raised: the next
            # ping records the connection again.
            logger.exception("heartbeat of user %s not recorded", self.user_id)

    # --- client frames (CLIENT_FRAMES) ----------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        self.last_received = time.monotonic()
        self._handling_frame = True
        try:
            await self._handle(text_data, bytes_data)
        finally:
            self._handling_frame = False
            # Frames the client sent meanwhile wait behind this one, unread: it was not
            # silent. (A send waiting 10 s on a locked table closed a live client with 4408.)
            self.last_received = time.monotonic()

    async def _handle(self, text_data: str | None, bytes_data: bytes | None) -> None:
        ref = None
        try:
            frame = inbound.parse_frame(text_data, bytes_data, types=CLIENT_FRAMES.keys())
            if frame["type"] == "send" and isinstance(frame.get("client_msg_id"), str):
                ref = frame["client_msg_id"]
            await CLIENT_FRAMES[frame["type"]](self, frame)
        except IMSError as error:
            await self.send_error(error, ref=ref)
        except Exception:
            logger.exception("frame from user %s failed", self.user_id)
            await self.send_frame(
                frames.error(code="server_error", detail="internal error; retry later", ref=ref)
            )

    async def on_send(self, frame: dict[str, Any]) -> None:
        command = inbound.parse_send(frame)
        if not self.send_bucket.allow():
            raise RateLimited(f"at most {settings.IMS_SEND_RATE_PER_SECOND:g} sends a second; slow down")
        self.session.sends_in_flight += 1
        try:
            result = await send_batcher().submit(SendCommand(sender_id=self.user_id, **command))
        finally:
            self.session.sends_in_flight -= 1
        self.session.sent(result.sender_seq)
        await self.send_frame(frames.sent(message=result.message, seq=result.sender_seq))

    async def on_ack(self, frame: dict[str, Any]) -> None:
        seqs = inbound.parse_seqs(frame)
        self._store_acks_later(seqs)
        # The next replay page need not wait for the ack's commit: the client has the
        # items; were the commit lost, they would only stay pending and come again.
        await self.session.acked(seqs)

    def _store_acks_later(self, seqs: list[int]) -> None:
        """Store acks without holding up this connection's next frame. Awaiting each
        commit here kept every frame after an ack waiting for it: 6 ms of each of a
        replay's 100 round trips. Acks that come while some are being stored wait in one
        set and go together, so a client acking faster than they commit costs a set of
        seqs, not a task each."""
        self._acks_waiting.update(seqs)
        if self._acks_storing is None or self._acks_storing.done():
            self._acks_storing = asyncio.ensure_future(self._store_acks())

    async def _store_acks(self) -> None:
        while self._acks_waiting:
            seqs, self._acks_waiting = sorted(self._acks_waiting), set()
            try:
                await ack_batcher().submit((self.user_id, seqs))
            except Exception:
                # Not stored: the items stay pending and come again on the next connect.
                logger.exception("acks of user %s not stored", self.user_id)

    async def on_read(self, frame: dict[str, Any]) -> None:
        ids = inbound.parse_read(frame)
        await database_sync_to_async(items_mark_read)(user_id=self.user_id, **ids)

    async def on_typing(self, frame: dict[str, Any]) -> None:
        conversation_id = inbound.require_int(frame, "conversation_id", minimum=1)
        members = await database_sync_to_async(conversation_member_ids)(
            conversation_id=conversation_id, user_id=self.user_id
        )
        if not self.typing_bucket.allow():
            raise RateLimited(f"at most {TYPING_RATE_PER_SECOND:g} typing frames a second")
        if len(members) > settings.IMS_PRESENCE_MAX_GROUP_SIZE:
            return  # in a big group one keystroke would cost a send to every member
        typing = frames.typing(conversation_id=conversation_id, user_id=self.user_id)
        await delivery.publish_frames_now((member, typing) for member in members if member != self.user_id)

    async def on_sync(self, frame: dict[str, Any]) -> None:
        after_seq = inbound.require_int(frame, "after_seq")
        if not self.sync_bucket.allow():
            raise RateLimited(f"at most {SYNC_RATE_PER_SECOND:g} sync a second (bursts of {SYNC_BURST})")
        await self.session.sync(after_seq=after_seq)

    async def on_ping(self, frame: dict[str, Any]) -> None:
        await self.send_frame(frames.pong())

    async def on_pong(self, frame: dict[str, Any]) -> None:
        """Nothing to do: any frame proves the peer alive."""

    # --- server events (messaging.delivery) and the per-process poll ---------------------

    def fast_event(self, event: dict[str, Any]) -> bool:
        """The channel layer's synchronous hand-over (delivery.attach): write an item that
        is next in seq order, or a plain frame, at once. False leaves the event to the
        ordinary dispatch below (gaps, replays, own sends in flight, revocations)."""
        write = self._write
        if write is None:
            return False
        kind = event.get("type")
        if kind == delivery.ITEM_EVENT:
            decision = self.session.item_now(event["seq"], event["frame"])
            if decision is None:
                return False
            if decision:
                write(wire.encode(event["frame"]))
            return True
        if kind == delivery.FRAME_EVENT:
            write(wire.encode(event["frame"]))
            return True
        return False

    async def stream_item(self, event: dict[str, Any]) -> None:
        """A new item of this user's stream (delivery.ITEM_EVENT)."""
        try:
            await self.session.item(event["seq"], event["frame"])
        except Exception:
            # The gap before this item could not be read, and skipping it would break
            # the seq order: the client reconnects and its replay has both.
            await self._close_on_failure("forward")

    async def frame_forward(self, event: dict[str, Any]) -> None:
        """A frame that is not a stream item: receipt, typing, presence (delivery.FRAME_EVENT)."""
        await self.send_frame(event["frame"])

    async def connection_revoke(self, event: dict[str, Any]) -> None:
        """The user was deactivated, logged out or lost its credentials (delivery.REVOKE_EVENT)."""
        session_key = event.get("session_key")
        if session_key is None or session_key == self._session_key():
            await self.close(code=CLOSE_REVOKED)

    def known_seq(self) -> int:
        """stream_poll.Watcher: the last seq this connection has had."""
        return self.session.last_forwarded

    def needs(self, head: StreamHead) -> bool:
        """stream_poll.Watcher: the user was deactivated, or the stream has items this
        connection has not had."""
        return not head.is_active or self.session.is_behind(head.last_seq)

    async def stream_head(self, head: StreamHead) -> None:
        """The per-process poll read this user's stream head (stream_poll.Watcher)."""
        if not head.is_active:
            await self.close(code=CLOSE_REVOKED)
            return
        await self.session.catch_up(last_seq=head.last_seq)

    def _session_key(self) -> str | None:
        session = self.scope.get("session")
        return getattr(session, "session_key", None) if self.scope.get("auth_method") == "session" else None

    # --- output --------------------------------------------------------------------------

    async def send_frame(self, frame: frames.Frame) -> None:
        if self._write is not None:  # daphne, once open: the frame goes out at once
            self._write(wire.encode(frame))
            return
        await self.send(text_data=wire.encode(frame))

    async def send_error(self, error: IMSError, *, ref: Any = None) -> None:
        await self.send_frame(frames.error(code=error.code, detail=error.detail, ref=ref))

    async def _close_on_failure(self, stage: str) -> None:
        """Close with 1011 rather than let the exception end the consumer: then
        disconnect() still runs (group, Connection row, presence)."""
        logger.exception("%s for user %s failed; closing", stage, self.user_id)
        await self.close(code=CLOSE_SERVER_ERROR)


Handler = Callable[[IMSConsumer, dict[str, Any]], Awaitable[None]]
# PROTOCOL.md's client → server table: a frame type is known exactly when it is here.
CLIENT_FRAMES: dict[str, Handler] = {
    "send": IMSConsumer.on_send,
    "ack": IMSConsumer.on_ack,
    "read": IMSConsumer.on_read,
    "typing": IMSConsumer.on_typing,
    "sync": IMSConsumer.on_sync,
    "ping": IMSConsumer.on_ping,
    "pong": IMSConsumer.on_pong,
}
