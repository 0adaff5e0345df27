"""Sends, acks, handshakes and hang-ups of every connection in this process, stored together.

A send or an ack costs a transaction of a few statements whether it covers one message
or a hundred, and with many connections busy at once the single database thread of the
consumers was the bottleneck. Work that arrives while a flush is running waits for the
next one, which takes it all: under load one transaction serves many connections, when
idle a frame is stored at once. No timer, so no latency is added.

On PostgreSQL IMS_DB_FLUSHES flushes run side by side, each on a thread and a database
connection of its own, so that one batch is built and sent while another waits on its
commit; and a flush stuck behind a lock (a migration, another app's long transaction)
never holds up the consumers' own database thread, which handshakes, replay pages,
heartbeats and hang-ups (presence) need. Seqs stay gap free and ordered: the seq counters
are row-locked until commit.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import connections
from rest_framework.authtoken.models import Token

from messaging.selectors.stream import PageRequest, stream_last_seqs, stream_pages
from messaging.services.messages import SendCommand, SendResult, messages_send
from messaging.services.presence import connections_close, connections_heartbeat, connections_open
from messaging.services.stream import items_ack_many
from messaging.session import Page

Item = TypeVar("Item")
Result = TypeVar("Result")


_side_threads: dict[str, ThreadPoolExecutor] = {}


def side_thread(name: str) -> ThreadPoolExecutor:
    """A database thread of its own (its own connection), called `name`, for this process:
    for work that must neither wait for the consumers' thread nor hold it up."""
    if name not in _side_threads:
        _side_threads[name] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"ims-db-{name}")
    return _side_threads[name]


def close_side_connections() -> None:
    """Close the database connections of the side lanes (a test database can then be dropped)."""
    for executor in _side_threads.values():
        executor.submit(connections.close_all).result()


class Batcher(Generic[Item, Result]):
    """Runs `store(items)`, which returns one result or exception per item, for everything
    submitted while the previous run was busy."""

    def __init__(
        self, store: Callable[[list[Item]], Sequence[Result | Exception]], *, flushes: int = 1
    ) -> None:
        # One flush at a time: the consumers' database thread. More: threads of their own
        # (each shared by every batcher), never the consumers' thread.
        self._lanes = (
            [database_sync_to_async(store)]
            if flushes == 1
            else [
                database_sync_to_async(store, thread_sensitive=False, executor=side_thread(f"lane-{n}"))
                for n in range(1, flushes + 1)
            ]
        )
        self._queue: list[tuple[Item, asyncio.Future[Result]]] = []
        self._idle_lanes = list(range(len(self._lanes)))
        self._flushers: set[asyncio.Task[None]] = set()

    @property
    def idle(self) -> bool:
        """Nothing waits to be stored and no flush is running."""
        return not self._queue and not self._flushers

    async def submit(self, item: Item) -> Result:
        """Returns once the item is committed; raises what storing it raised."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._idle_lanes:
            lane = max(self._idle_lanes)
            self._idle_lanes.remove(lane)
            task = asyncio.create_task(self._flush(lane))
            self._flushers.add(task)
            task.add_done_callback(self._flushers.discard)
        return await future

    async def _flush(self, lane: int) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                self._settle(batch, await self._outcomes([item for item, _ in batch], lane))
        finally:
            self._idle_lanes.append(lane)

    async def _outcomes(self, items: list[Item], lane: int) -> Sequence[Any]:
        """One outcome per item. When storing the batch fails as a whole, each item is
        stored alone, so one bad item fails only itself (never its neighbours' sends)."""
        store = self._lanes[lane]
        try:
            return await store(items)
        except Exception as error:
            if len(items) == 1:
                return [error]
        outcomes: list[Any] = []
        for item in items:
            try:
                (outcome,) = await store([item])
            except Exception as error:
                outcome = error
            outcomes.append(outcome)
        return outcomes

    @staticmethod
    def _settle(batch: list[tuple[Item, asyncio.Future[Result]]], outcomes: Sequence[Any]) -> None:
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():  # its connection went away meanwhile
                continue
            if isinstance(outcome, Exception):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)


def _store_acks(acks: list[tuple[int, Sequence[int]]]) -> list[None]:
    items_ack_many(acks=acks)
    return [None] * len(acks)


def _store_sends(commands: list[SendCommand]) -> list[SendResult | Exception]:
    return list(messages_send(commands=commands))


def _store_opens(opens: list[tuple[int, str]]) -> list[tuple[int, list[int]]]:
    """Each (user_id, channel_name) that joined its group: (last seq, peers to tell)."""
    last_seqs = stream_last_seqs(user_ids=sorted({user_id for user_id, _ in opens}))
    peers = connections_open(opens=opens)
    return [(last_seqs[user_id], tell) for (user_id, _), tell in zip(opens, peers, strict=True)]


def _store_closes(closes: list[tuple[int, str]]) -> list[list[int]]:
    return connections_close(closes=closes)


def _read_pages(requests: list[PageRequest]) -> list[Page]:
    return stream_pages(requests=requests)


def _store_heartbeats(channel_names: list[str]) -> list[None]:
    connections_heartbeat(channel_names=channel_names)
    return [None] * len(channel_names)


def _read_tokens(keys: list[str]) -> list[Any]:
    """The active user of each API token key, else AnonymousUser: one query for many."""
    found = {
        token.key: token.user for token in Token.objects.select_related("user").filter(key__in=set(keys))
    }
    users = [found.get(key) for key in keys]
    return [user if user is not None and user.is_active else AnonymousUser() for user in users]


_batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Batcher]] = (
    weakref.WeakKeyDictionary()
)


def _batcher(name: str, store: Callable, *, flushes: int = 1) -> Batcher:
    """The batcher called `name` of the running event loop (one per server process)."""
    per_loop = _batchers.setdefault(asyncio.get_running_loop(), {})
    if name not in per_loop:
        per_loop[name] = Batcher(store, flushes=flushes)
    return per_loop[name]


def batchers_idle() -> bool:
    """Whether every batcher of the running event loop has stored all it was given: a
    graceful shutdown (imsproject.shutdown) waits for this before it closes connections,
    so a send being stored is answered before its connection goes."""
    return all(batcher.idle for batcher in _batchers.get(asyncio.get_running_loop(), {}).values())


def ack_batcher() -> Batcher[tuple[int, Sequence[int]], None]:
    return _batcher("acks", _store_acks, flushes=settings.IMS_DB_FLUSHES)


def send_batcher() -> Batcher[SendCommand, SendResult]:
    return _batcher("sends", _store_sends, flushes=settings.IMS_DB_FLUSHES)


def open_batcher() -> Batcher[tuple[int, str], tuple[int, list[int]]]:
    """Connections that joined their group: recorded, with their user's last seq."""
    return _batcher("opens", _store_opens)


def close_batcher() -> Batcher[tuple[int, str], list[int]]:
    return _batcher("closes", _store_closes)


def page_batcher() -> Batcher[PageRequest, Page]:
    """Replay and catch-up pages: those asked for together are read in one database hop."""
    return _batcher("pages", _read_pages)


def heartbeat_batcher() -> Batcher[str, None]:
    """Connections (channel names) that were just pinged: last seen now."""
    return _batcher("heartbeats", _store_heartbeats)


def token_batcher() -> Batcher[str, Any]:
    """API tokens of handshakes: one query for all that arrive together."""
    return _batcher("tokens", _read_tokens)
