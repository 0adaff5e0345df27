"""Acks of every connection in this process, stored together.

An ack costs a transaction of four statements whether it covers one item or a thousand,
and with many connections acking at once the single database thread of the consumers was
the bottleneck. Acks that arrive while a flush is running wait for the next one, which
takes them all: under load one transaction serves many connections, when idle an ack is
stored at once. No timer, so no latency is added.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence

from channels.db import database_sync_to_async

from messaging.services.stream import items_ack_many


class AckBatcher:
    def __init__(self) -> None:
        self._queue: list[tuple[int, Sequence[int], asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def ack(self, *, user_id: int, seqs: Sequence[int]) -> None:
        """Returns once the ack is committed; raises what storing it raised."""
        future = asyncio.get_running_loop().create_future()
        self._queue.append((user_id, seqs, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                try:
                    await database_sync_to_async(items_ack_many)(acks=[(u, s) for u, s, _ in batch])
                except Exception as error:
                    for *_, future in batch:
                        if not future.done():  # its connection may have gone meanwhile
                            future.set_exception(error)
                else:
                    for *_, future in batch:
                        if not future.done():
                            future.set_result(None)
        finally:
            self._flusher = None


_batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AckBatcher] = weakref.WeakKeyDictionary()


def ack_batcher() -> AckBatcher:
    """The batcher of the running event loop (one per server process)."""
    loop = asyncio.get_running_loop()
    if loop not in _batchers:
        _batchers[loop] = AckBatcher()
    return _batchers[loop]
