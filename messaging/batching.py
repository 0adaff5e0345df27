"""Sends and acks of every connection in this process, stored together.

A send or an ack costs a transaction of a few statements whether it covers one message
or a hundred, and with many connections busy at once the single database thread of the
consumers was the bottleneck. Work that arrives while a flush is running waits for the
next one, which takes it all: under load one transaction serves many connections, when
idle a frame is stored at once. No timer, so no latency is added.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from channels.db import database_sync_to_async

from messaging.services.messages import SendCommand, SendResult, messages_send
from messaging.services.stream import items_ack_many

Item = TypeVar("Item")
Result = TypeVar("Result")


class Batcher(Generic[Item, Result]):
    """Runs `store(items)`, which returns one result or exception per item, for everything
    submitted while the previous run was busy."""

    def __init__(self, store: Callable[[list[Item]], Sequence[Result | Exception]]) -> None:
        self._store = database_sync_to_async(store)
        self._queue: list[tuple[Item, asyncio.Future[Result]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        """Returns once the item is committed; raises what storing it raised."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                self._settle(batch, await self._outcomes([item for item, _ in batch]))
        finally:
            self._flusher = None

    async def _outcomes(self, items: list[Item]) -> Sequence[Any]:
        """One outcome per item. When storing the batch fails as a whole, each item is
        stored alone, so one bad item fails only itself (never its neighbours' sends)."""
        try:
            return await self._store(items)
        except Exception as error:
            if len(items) == 1:
                return [error]
        outcomes: list[Any] = []
        for item in items:
            try:
                (outcome,) = await self._store([item])
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


_batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Batcher]] = (
    weakref.WeakKeyDictionary()
)


def _batcher(name: str, store: Callable) -> Batcher:
    """The batcher called `name` of the running event loop (one per server process)."""
    per_loop = _batchers.setdefault(asyncio.get_running_loop(), {})
    if name not in per_loop:
        per_loop[name] = Batcher(store)
    return per_loop[name]


def ack_batcher() -> Batcher[tuple[int, Sequence[int]], None]:
    return _batcher("acks", _store_acks)


def send_batcher() -> Batcher[SendCommand, SendResult]:
    return _batcher("sends", _store_sends)
