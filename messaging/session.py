"""One connection's view of its user's stream: every seq once, in ascending order.

This is where the delivery guarantee of PROTOCOL.md lives for a connection: the replay on
connect with its flow control (the next page only after the last one is acked), live items
held while a replay runs, gaps in the live stream filled from the database (the channel
layer drops events), the connection's own sends answered by `sent` and not repeated as
`message`, and P3 items merged into `batch` frames (messaging.merging). Plain Python with
no Channels import: tests drive it with a list for a socket and any object with the reads
of StreamReader. The consumer only feeds it events.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from messaging.merging import Merger, merge_key

Frame = dict[str, Any]
# Live items that arrive during a replay wait in memory up to this many; past it they
# are dropped and read back from the database when the replay ends.
MAX_HELD_ITEMS = 1000


@dataclass(frozen=True, kw_only=True)
class Page:
    items: list[Frame]  # item frames, seq ascending
    more: bool


class StreamReader(Protocol):
    """The reads a session needs, for one user's stream."""

    async def last_seq(self) -> int: ...

    async def page(self, *, pending_only: bool, after_seq: int, upto_seq: int, limit: int) -> Page: ...

    async def is_truncated(self, *, after_seq: int, upto_seq: int) -> bool: ...


@dataclass(kw_only=True)
class Replay:
    """A replay in progress: items in (cursor, upto], one frame per ack."""

    pending_only: bool
    cursor: int
    upto: int
    first: bool = True
    awaiting: set[int] = field(default_factory=set)
    # The page after `cursor`, read while the client acks the current one.
    next_page: asyncio.Task[Page] | None = None


class StreamSession:
    def __init__(
        self,
        *,
        send: Callable[[Frame], Awaitable[None]],
        reader: StreamReader,
        page_size: int,
        max_held: int | None = None,
        merge_window_seconds: float = 0,
        merge_max_items: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._send = send
        self._reader = reader
        self._page_size = page_size
        self._max_held = MAX_HELD_ITEMS if max_held is None else max_held
        self.last_forwarded = 0  # the highest seq this connection has had, or skipped on purpose
        self.replay: Replay | None = None
        self._held: dict[int, Frame] = {}
        self._held_dropped_upto = 0
        self._own_seqs: set[int] = set()  # answered with `sent`, not repeated as `message`
        self.sends_in_flight = 0
        self._merger = Merger(window_seconds=merge_window_seconds, max_items=merge_max_items)
        self._clock = clock
        self._merge_timer: asyncio.TimerHandle | None = None
        self._merge_flush: asyncio.Task | None = None
        self._opened = False  # until open(): the replay, not a poll, sends the first items
        # The poller runs beside the consumer's own dispatch; both forward items.
        self._lock = asyncio.Lock()

    # --- what the client asked for ------------------------------------------------------

    async def open(self, *, last_seq: int, resume_from: int | None) -> None:
        """Start the replay after `hello`. `last_seq` was read after the connection joined
        its user's group, so every later seq also arrives live."""
        async with self._lock:
            self._opened = True
            self.last_forwarded = max(self.last_forwarded, last_seq)
            await self._start_replay(
                pending_only=resume_from is None, after_seq=resume_from or 0, upto=last_seq
            )

    async def sync(self, *, after_seq: int) -> None:
        """Replay every kept item after `after_seq`, replacing a replay in progress."""
        upto = await self._reader.last_seq()
        async with self._lock:
            self.last_forwarded = max(self.last_forwarded, upto)
            await self._start_replay(pending_only=False, after_seq=after_seq, upto=upto)

    async def acked(self, seqs: Iterable[int]) -> None:
        """The client acked these seqs: the next replay page goes once the last is acked."""
        if self.replay is None:
            return  # a live item's ack, the common case: no lock to take
        async with self._lock:
            replay = self.replay
            if replay is None:
                return
            replay.awaiting.difference_update(seqs)
            # Nothing awaited yet a replay: reading the next page failed last time
            # (server_error), and this ack is the client's retry.
            if not replay.awaiting:
                await self._send_replay_pages()

    def sent(self, seq: int) -> None:
        """This connection answered its own send with `sent`: never repeat it as `message`."""
        if seq > self.last_forwarded:
            self._own_seqs.add(seq)

    # --- what the server learned ----------------------------------------------------------

    async def item(self, seq: int, frame: Frame) -> None:
        """A live item of this user's stream (a channel-layer event: maybe repeated, maybe
        after a dropped one)."""
        async with self._lock:
            if self.replay is None:
                await self._forward(seq, frame)
            elif len(self._held) < self._max_held:
                self._held[seq] = frame
            else:
                self._held_dropped_upto = max(self._held_dropped_upto, seq)

    def item_now(self, seq: int, frame: Frame) -> bool | None:
        """The synchronous fast path for a live item: True when it goes out now (the
        caller writes it), False when this connection must not get it (had it already, or
        it is its own send answered by `sent`), None when only the ordered async path
        (`item`) may decide: a replay or a gap fill runs, a send of this connection is in
        flight, items before it are missing, or P3 items are being merged."""
        if not self._opened or self.replay is not None or self.sends_in_flight or self._lock.locked():
            return None
        if self._merger.holding or (self._merger.enabled and merge_key(frame) is not None):
            return None
        if seq <= self.last_forwarded:
            return False
        if seq != self.last_forwarded + 1:
            return None
        self.last_forwarded = seq
        if seq in self._own_seqs:
            self._own_seqs.discard(seq)
            return False
        return True

    def is_behind(self, last_seq: int) -> bool:
        """The stream has items up to `last_seq`, and this connection has not had them all."""
        return last_seq > self.last_forwarded

    async def catch_up(self, *, last_seq: int) -> None:
        """The stream has items up to `last_seq` (the per-process poll read it): send any
        this connection has not had, even if no event ever carries them."""
        if (
            not self._opened
            or last_seq <= self.last_forwarded
            or self.replay is not None
            or self.sends_in_flight
        ):
            # A replay ends by reading the gap itself; an own send in flight would
            # come back as `message` before its `sent`. The next poll tries again.
            return
        async with self._lock:
            if self.replay is None:
                await self._fill_gap(upto=last_seq)

    def close(self) -> None:
        """The connection is gone: held P3 items stay pending and come back on reconnect."""
        if self._merge_timer is not None:
            self._merge_timer.cancel()

    # --- replay ----------------------------------------------------------------------------

    async def _start_replay(self, *, pending_only: bool, after_seq: int, upto: int) -> None:
        if self.replay is not None and self.replay.next_page is not None:
            self.replay.next_page.cancel()
        # Held items go first: the replay frame must not repeat them, nor overtake them.
        await self._send_all(self._merger.flush())
        self.replay = Replay(pending_only=pending_only, cursor=after_seq, upto=upto)
        await self._send_replay_pages()

    def _read_page(self, replay: Replay) -> Awaitable[Page]:
        """The page after replay.cursor: the one read ahead if there is one."""
        ahead, replay.next_page = replay.next_page, None
        if ahead is not None:
            return ahead
        return self._reader.page(
            pending_only=replay.pending_only,
            after_seq=replay.cursor,
            upto_seq=replay.upto,
            limit=self._page_size,
        )

    async def _send_replay_pages(self) -> None:
        """Send the next page; the one after it goes when the client has acked this one."""
        replay = self.replay
        while replay is not None:
            page = await self._read_page(replay)
            truncated = None
            if replay.first:
                truncated = not replay.pending_only and await self._reader.is_truncated(
                    after_seq=replay.cursor, upto_seq=replay.upto
                )
            if page.items:
                replay.cursor = page.items[-1]["seq"]
            shown = [item for item in page.items if item["seq"] not in self._own_seqs]
            frame: Frame = {"type": "offline_messages", "items": shown, "more": page.more}
            if truncated is not None:
                frame["truncated"] = truncated
            await self._send(frame)
            replay.first = False
            if not page.more:
                self.replay = None
                # Own sends the replay skipped will never come again.
                self._own_seqs = {seq for seq in self._own_seqs if seq > replay.upto}
                await self._flush_held()
                return
            replay.awaiting = {item["seq"] for item in shown}
            if replay.awaiting:
                # Read the next page while the client takes this one and acks it: a page
                # costs a round trip to the client plus one to the database, not their sum.
                replay.next_page = asyncio.ensure_future(self._read_page(replay))
                return

    async def _flush_held(self) -> None:
        held, self._held = self._held, {}
        if self._held_dropped_upto:
            await self._fill_gap(upto=self._held_dropped_upto)
            self._held_dropped_upto = 0
        for seq in sorted(held):
            await self._forward(seq, held[seq])

    # --- live items --------------------------------------------------------------------------

    async def _forward(self, seq: int, frame: Frame) -> None:
        """Send items in seq order, each once: a missing predecessor is read first."""
        if seq <= self.last_forwarded:
            return
        if seq > self.last_forwarded + 1:
            await self._fill_gap(upto=seq - 1)
        await self._emit(seq, frame)

    async def _fill_gap(self, *, upto: int) -> None:
        while self.last_forwarded < upto:
            page = await self._reader.page(
                pending_only=False, after_seq=self.last_forwarded, upto_seq=upto, limit=self._page_size
            )
            if not page.items:  # purged meanwhile: nothing left to send below upto
                self.last_forwarded = upto
                return
            for item in page.items:
                await self._emit(item["seq"], item)

    async def _emit(self, seq: int, frame: Frame) -> None:
        self.last_forwarded = seq
        if seq in self._own_seqs:
            self._own_seqs.discard(seq)  # this connection already has it, as `sent`
            return
        await self._send_all(self._merger.offer(frame, now=self._clock()))
        if self._merger.holding and self._merge_timer is None:
            delay = max(0.0, (self._merger.deadline or 0.0) - self._clock())
            self._merge_timer = asyncio.get_running_loop().call_later(delay, self._merge_window_closed)

    # --- merging ------------------------------------------------------------------------------

    async def _send_all(self, frames: list[Frame]) -> None:
        for frame in frames:
            await self._send(frame)

    def _merge_window_closed(self) -> None:
        self._merge_timer = None
        self._merge_flush = asyncio.ensure_future(self._flush_merged())

    async def _flush_merged(self) -> None:
        async with self._lock:
            deadline = self._merger.deadline
            if deadline is not None and deadline > self._clock():
                # The group went out early and a new one started: wait for its own window.
                delay = deadline - self._clock()
                self._merge_timer = asyncio.get_running_loop().call_later(delay, self._merge_window_closed)
                return
            await self._send_all(self._merger.due(now=self._clock()))
