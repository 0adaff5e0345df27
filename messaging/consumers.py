"""The WebSocket endpoint of PROTOCOL.md. Each handler parses, calls one service, answers."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from messaging import delivery, frames, inbound
from messaging.auth import query_params
from messaging.batching import ack_batcher, send_batcher
from messaging.errors import BadRequest, IMSError, RateLimited
from messaging.selectors import pending_items_page, stream_is_truncated, stream_items_page, stream_last_seq
from messaging.services.conversations import conversation_member_ids
from messaging.services.messages import SendCommand
from messaging.services.presence import connection_close, connection_heartbeat, connection_open
from messaging.services.stream import messages_mark_read
from messaging.throttle import TokenBucket

logger = logging.getLogger(__name__)

CLOSE_SILENT_PEER = 4408
CLOSE_SERVER_ERROR = 1011
# Live items that arrive during a replay wait in memory up to this many; past it they
# are dropped and read back from the database when the replay ends.
MAX_HELD_ITEMS = 1000
# Clients send `typing` on keystrokes; a few a second is plenty for the indicator.
TYPING_RATE_PER_SECOND = 2
TYPING_BURST = 5


@dataclass
class Replay:
    """A replay in progress: items in (cursor, upto], one frame per ack."""

    pending_only: bool
    cursor: int
    upto: int
    first: bool = True
    awaiting: set[int] = field(default_factory=set)


@database_sync_to_async
def read_replay_page(*, user_id: int, replay: Replay) -> tuple[list[frames.Frame], bool, bool | None]:
    """(item frames, more, truncated: only on the first page and only when resuming)."""
    select = pending_items_page if replay.pending_only else stream_items_page
    page = select(
        user_id=user_id, after_seq=replay.cursor, upto_seq=replay.upto, limit=settings.IMS_REPLAY_BATCH_SIZE
    )
    truncated = None
    if replay.first:
        truncated = not replay.pending_only and stream_is_truncated(
            user_id=user_id, after_seq=replay.cursor, upto_seq=replay.upto
        )
    return page.items, page.more, truncated


def encode(frame: frames.Frame) -> str:
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


class IMSConsumer(AsyncWebsocketConsumer):
    user_id: int | None = None
    heartbeat: asyncio.Task | None = None

    # --- lifecycle ---------------------------------------------------------------------

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close()  # before accept: the handshake is refused with 403
            return
        self.user_id = user.pk
        self.last_received = time.monotonic()
        self.send_bucket = TokenBucket(rate=settings.IMS_SEND_RATE_PER_SECOND, burst=settings.IMS_SEND_BURST)
        self.typing_bucket = TokenBucket(rate=TYPING_RATE_PER_SECOND, burst=TYPING_BURST)
        self.replay: Replay | None = None
        self.held: dict[int, frames.Frame] = {}
        self.held_dropped_upto = 0
        self.own_seqs: set[int] = set()  # answered with `sent`, not repeated as `message`
        await self.accept()
        try:
            await self._open()
        except Exception:
            await self._close_on_failure("connect")

    async def _open(self) -> None:
        """hello, presence, the replay. Precondition: accepted."""
        # Join before reading last_seq: every seq above it is published after this point.
        await delivery.join(self.user_id, self.channel_name)
        last_seq = await database_sync_to_async(stream_last_seq)(user_id=self.user_id)
        self.last_forwarded = last_seq
        await self.send_frame(
            frames.hello(user_id=self.user_id, heartbeat_s=settings.IMS_HEARTBEAT_SECONDS, last_seq=last_seq)
        )
        resume_from = await self._resume_point()
        self.heartbeat = asyncio.create_task(self._beat())
        peers = await database_sync_to_async(connection_open)(
            user_id=self.user_id, channel_name=self.channel_name
        )
        await delivery.publish_frames_now(
            (peer, frames.presence(user_id=self.user_id, online=True)) for peer in peers
        )
        await self._start_replay(pending_only=resume_from is None, after_seq=resume_from or 0, upto=last_seq)

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
        if self.user_id is None:
            return
        if self.heartbeat is not None:
            self.heartbeat.cancel()
        await delivery.leave(self.user_id, self.channel_name)
        peers = await database_sync_to_async(connection_close)(
            user_id=self.user_id, channel_name=self.channel_name
        )
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
            if now - self.last_received >= 2 * interval:
                await self.close(code=CLOSE_SILENT_PEER)
                return
            if now >= next_ping:
                next_ping = now + interval
                await self.send_frame(frames.ping())
                try:
                    await database_sync_to_async(connection_heartbeat)(channel_name=self.channel_name)
                except Exception:
                    # A database outage (a PostgreSQL restart) must not end this loop: the
                    # connection would then never be pinged or closed as a dead peer again.
                    logger.exception("heartbeat of user %s not recorded", self.user_id)

    # --- client frames -----------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        self.last_received = time.monotonic()
        ref = None
        try:
            frame = inbound.parse_frame(text_data, bytes_data)
            if frame["type"] == "send" and isinstance(frame.get("client_msg_id"), str):
                ref = frame["client_msg_id"]
            await getattr(self, f"on_{frame['type']}")(frame)
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
        result = await send_batcher().submit(SendCommand(sender_id=self.user_id, **command))
        if result.sender_seq > self.last_forwarded:
            self.own_seqs.add(result.sender_seq)
        await self.send_frame(frames.sent(message=result.message, seq=result.sender_seq))

    async def on_ack(self, frame: dict[str, Any]) -> None:
        seqs = inbound.parse_seqs(frame)
        await ack_batcher().submit((self.user_id, seqs))
        if self.replay is not None:
            self.replay.awaiting.difference_update(seqs)
            # Nothing awaited yet a replay: reading the next page failed last time
            # (server_error), and this ack is the client's retry.
            if not self.replay.awaiting:
                await self._send_replay_page()

    async def on_read(self, frame: dict[str, Any]) -> None:
        msg_ids = inbound.parse_msg_ids(frame)
        await database_sync_to_async(messages_mark_read)(user_id=self.user_id, msg_ids=msg_ids)

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
        upto = await database_sync_to_async(stream_last_seq)(user_id=self.user_id)
        self.last_forwarded = max(self.last_forwarded, upto)
        await self._start_replay(pending_only=False, after_seq=after_seq, upto=upto)

    async def on_ping(self, frame: dict[str, Any]) -> None:
        await self.send_frame(frames.pong())

    async def on_pong(self, frame: dict[str, Any]) -> None:
        """Nothing to do: any frame proves the peer alive."""

    # --- replay --------------------------------------------------------------------------

    async def _start_replay(self, *, pending_only: bool, after_seq: int, upto: int) -> None:
        self.replay = Replay(pending_only=pending_only, cursor=after_seq, upto=upto)
        await self._send_replay_page()

    async def _send_replay_page(self) -> None:
        """Send the next page; the one after it goes when the client has acked this one."""
        replay = self.replay
        while replay is not None:
            items, more, truncated = await read_replay_page(user_id=self.user_id, replay=replay)
            if items:
                replay.cursor = items[-1]["seq"]
            shown = [item for item in items if item["seq"] not in self.own_seqs]
            await self.send_frame(frames.offline_messages(items=shown, more=more, truncated=truncated))
            replay.first = False
            if not more:
                self.replay = None
                # Own sends the replay skipped will never come again.
                self.own_seqs = {seq for seq in self.own_seqs if seq > replay.upto}
                await self._flush_held()
                return
            replay.awaiting = {item["seq"] for item in shown}
            if replay.awaiting:
                return

    async def _flush_held(self) -> None:
        held, self.held = self.held, {}
        if self.held_dropped_upto:
            await self._fill_gap(upto=self.held_dropped_upto)
            self.held_dropped_upto = 0
        for seq in sorted(held):
            await self._forward(seq, held[seq])

    # --- live items ----------------------------------------------------------------------

    async def stream_item(self, event: dict[str, Any]) -> None:
        """A new item of this user's stream (delivery.ITEM_EVENT)."""
        seq, frame = event["seq"], event["frame"]
        if self.replay is None:
            try:
                await self._forward(seq, frame)
            except Exception:
                # The gap before this item could not be read, and skipping it would break
                # the seq order: the client reconnects and its replay has both.
                await self._close_on_failure("forward")
        elif len(self.held) < MAX_HELD_ITEMS:
            self.held[seq] = frame
        else:
            self.held_dropped_upto = max(self.held_dropped_upto, seq)

    async def frame_forward(self, event: dict[str, Any]) -> None:
        """A frame that is not a stream item: receipt, typing, presence (delivery.FRAME_EVENT)."""
        await self.send_frame(event["frame"])

    async def _forward(self, seq: int, frame: frames.Frame) -> None:
        """Send items in seq order, each once: a missing predecessor is read from the database."""
        if seq <= self.last_forwarded:
            return
        if seq > self.last_forwarded + 1:
            await self._fill_gap(upto=seq - 1)
        await self._emit(seq, frame)

    async def _fill_gap(self, *, upto: int) -> None:
        while self.last_forwarded < upto:
            replay = Replay(pending_only=False, cursor=self.last_forwarded, upto=upto, first=False)
            items, _, _ = await read_replay_page(user_id=self.user_id, replay=replay)
            if not items:  # purged meanwhile: nothing left to send below upto
                self.last_forwarded = upto
                return
            for item in items:
                await self._emit(item["seq"], item)

    async def _emit(self, seq: int, frame: frames.Frame) -> None:
        self.last_forwarded = seq
        if seq in self.own_seqs:
            self.own_seqs.discard(seq)  # this connection already has it, as `sent`
        else:
            await self.send_frame(frame)

    # --- output --------------------------------------------------------------------------

    async def send_frame(self, frame: frames.Frame) -> None:
        await self.send(text_data=encode(frame))

    async def send_error(self, error: IMSError, *, ref: Any = None) -> None:
        await self.send_frame(frames.error(code=error.code, detail=error.detail, ref=ref))

    async def _close_on_failure(self, stage: str) -> None:
        """Close with 1011 rather than let the exception end the consumer: then
        disconnect() still runs (group, Connection row, presence)."""
        logger.exception("%s for user %s failed; closing", stage, self.user_id)
        await self.close(code=CLOSE_SERVER_ERROR)
