"""The per-process stream poll: no item waits for an event (PROTOCOL.md, "Sync on connect").

Items stored by another process (a Celery worker, a management command, another server
on the in-memory layer) reach no channel layer of ours, and channels-redis may drop the
last event of a burst with nothing after it to reveal the gap. Every
IMS_STREAM_POLL_SECONDS, one query reads the stream heads of the users with a connection
in this process that have items a connection of theirs has not had, or were deactivated;
each connection behind its head catches up from the database, and each connection of a
user deactivated meanwhile is closed.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from channels.db import database_sync_to_async
from django.conf import settings

from messaging.batching import side_thread
from messaging.selectors.users import StreamHead, stream_heads_beyond

logger = logging.getLogger(__name__)
# A stream head read just as a burst of events was still in flight: each connection that
# looks behind would read the database on its own (a broadcast to 10,000 users took 9 s
# in `make bench` on PostgreSQL + Redis, the database thread busy with 10,000 gap reads).
# Connections behind get this long for their events before they read.
EVENT_GRACE_FRACTION = 0.25


class Watcher(Protocol):
    def known_seq(self) -> int:
        """The last seq of its user's stream this watcher has had (or skipped on purpose)."""
        ...

    def needs(self, head: StreamHead) -> bool:
        """Whether this head asks anything of the watcher: a cheap check, run for every
        connection at every poll."""
        ...

    async def stream_head(self, head: StreamHead) -> None: ...


class StreamPoll:
    """The connections of this process by user, and the task that polls for them while
    there are any."""

    def __init__(
        self,
        *,
        interval_seconds: float,
        read_heads: Callable[[Mapping[int, int]], Awaitable[dict[int, StreamHead]]],
    ) -> None:
        self._interval_seconds = interval_seconds
        self._read_heads = read_heads
        self._watchers: dict[int, set[Watcher]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None

    def add(self, user_id: int, watcher: Watcher) -> None:
        self._watchers[user_id].add(watcher)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())

    def discard(self, user_id: int, watcher: Watcher) -> None:
        watchers = self._watchers.get(user_id)
        if watchers is not None:
            watchers.discard(watcher)
            if not watchers:
                del self._watchers[user_id]

    async def poll_once(self, *, grace_seconds: float = 0) -> None:
        if not self._watchers:
            return
        # Only heads past what every connection of the user has had come back: an idle
        # poll of 10,000 connections was 10,000 heads built and checked every second.
        known = {
            user_id: min(watcher.known_seq() for watcher in watchers)
            for user_id, watchers in self._watchers.items()
            if watchers
        }
        heads = await self._read_heads(known)
        if grace_seconds:
            await asyncio.sleep(grace_seconds)
        # All at once: the connections' gap reads then share database hops
        # (messaging.batching.page_batcher); one at a time, a broadcast stored by
        # another process reached 10,000 connections in 38 s on SQLite.
        # Only those the head concerns: a task for each of 20,000 idle connections every
        # second would cost the event loop more than the poll itself.
        await asyncio.gather(
            *(
                self._tell(user_id, watcher, head)
                for user_id, head in heads.items()
                for watcher in list(self._watchers.get(user_id, ()))
                if watcher.needs(head)
            )
        )

    @staticmethod
    async def _tell(user_id: int, watcher: Watcher, head: StreamHead) -> None:
        try:
            await watcher.stream_head(head)
        except Exception:
            logger.exception("catching up a connection of user %s failed", user_id)

    async def _run(self) -> None:
        grace = self._interval_seconds * EVENT_GRACE_FRACTION
        while self._watchers:
            # The grace is part of the interval: an item still reaches a connection within it.
            await asyncio.sleep(self._interval_seconds - grace)
            try:
                await self.poll_once(grace_seconds=grace)
            except Exception:
                # A database outage must not end the poll: it would never run again.
                logger.exception("stream poll failed; trying again in %s s", self._interval_seconds)


_polls: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, StreamPoll] = weakref.WeakKeyDictionary()


def stream_poll() -> StreamPoll:
    """The poll of the running event loop (one per server process)."""
    loop = asyncio.get_running_loop()
    if loop not in _polls:
        _polls[loop] = StreamPoll(
            interval_seconds=settings.IMS_STREAM_POLL_SECONDS,
            # On a thread of its own: a read stuck behind a lock on the stream counters
            # must not hold up the consumers' database thread (heartbeats, hang-ups).
            read_heads=database_sync_to_async(
                lambda known: stream_heads_beyond(known=known),
                thread_sensitive=False,
                executor=side_thread("stream-poll"),
            ),
        )
    return _polls[loop]
