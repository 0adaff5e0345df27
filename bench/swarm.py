"""Many client connections, split over worker processes (one process may hold at most
20,000 open files here, and one Python process cannot parse frames for 10,000 sockets
quickly enough to measure a server).

Each worker holds its share of the connections and answers commands from the bench
process over a pipe. Times are time.monotonic(), one clock for every process on Linux.
IMS clients behave as real ones: they read the replay on connect and ack every item.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import resource
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

PER_WORKER = 5000
ITEM_TYPES = ("message", "notification")


def raise_open_files_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Client:
    """One socket: its frames are counted by type; items are acked."""

    def __init__(self, url: str, *, ims: bool, arrivals: dict[str, list[float]]) -> None:
        self.url = url
        self.ims = ims
        self.arrivals = arrivals
        self.ws: ClientConnection | None = None
        self.reader: asyncio.Task[None] | None = None
        self.last_seq = 0

    async def open(self, *, resume: bool = False) -> None:
        url = f"{self.url}&last_seq={self.last_seq}" if resume and self.ims else self.url
        self.ws = await connect(url, max_size=None, open_timeout=120, ping_interval=None, close_timeout=1)
        if self.ims:  # hello, then the replay until `more` is false
            while True:
                frame = json.loads(await self.ws.recv())
                items = frame.get("items") or ()
                if items:
                    self.last_seq = max(self.last_seq, items[-1]["seq"])
                    await self.ws.send(json.dumps({"type": "ack", "seqs": [i["seq"] for i in items]}))
                if frame["type"] == "offline_messages" and not frame["more"]:
                    break
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        with contextlib.suppress(Exception):
            async for raw in self.ws:
                frame = json.loads(raw)
                kind = frame.get("type")
                self.arrivals.setdefault(kind, []).append(time.monotonic())
                if self.ims and kind in ITEM_TYPES:
                    self.last_seq = max(self.last_seq, frame["seq"])
                    await self.ws.send(json.dumps({"type": "ack", "seqs": [frame["seq"]]}))

    async def drop(self) -> None:
        """Lose the connection as a network failure would: no closing handshake."""
        if self.reader is not None:
            self.reader.cancel()
        if self.ws is not None:
            self.ws.transport.abort()
            with contextlib.suppress(Exception):
                await self.ws.wait_closed()

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()


async def _gather_limited(coros: list, concurrency: int) -> list[Any]:
    gate = asyncio.Semaphore(concurrency)

    async def one(coro: Any) -> Any:
        async with gate:
            try:
                return await coro
            except Exception as error:
                return error

    return await asyncio.gather(*(one(c) for c in coros))


class Worker:
    def __init__(self) -> None:
        self.clients: list[Client] = []
        self.arrivals: dict[str, list[float]] = {}

    async def open(self, urls: list[str], ims: bool, concurrency: int) -> dict[str, Any]:
        clients = [Client(url, ims=ims, arrivals=self.arrivals) for url in urls]
        outcomes = await _gather_limited([c.open() for c in clients], concurrency)
        self.clients += [c for c, o in zip(clients, outcomes, strict=True) if not isinstance(o, Exception)]
        failed = [repr(o) for o in outcomes if isinstance(o, Exception)]
        return {"opened": len(urls) - len(failed), "failed": len(failed), "errors": failed[:3]}

    async def expect(self, kind: str, count: int, stall_seconds: float) -> dict[str, Any]:
        """Wait for `count` frames of `kind` (since the last reset), or a stall."""
        seen, quiet_since = -1, time.monotonic()
        while len(self.arrivals.get(kind, ())) < count and time.monotonic() - quiet_since < stall_seconds:
            if len(self.arrivals.get(kind, ())) != seen:
                seen, quiet_since = len(self.arrivals.get(kind, ())), time.monotonic()
            await asyncio.sleep(0.01)
        times = self.arrivals.get(kind, [])
        return {"received": len(times), "last_at": max(times) if times else None}

    async def storm(self) -> dict[str, Any]:
        """Every connection dropped at once, then every client reconnecting at once (with
        its last seq, as the IMS client does): when was the last one resumed?"""
        await asyncio.gather(*(c.drop() for c in self.clients))
        started = time.monotonic()
        outcomes = await asyncio.gather(*(c.open(resume=True) for c in self.clients), return_exceptions=True)
        failed = [repr(o) for o in outcomes if isinstance(o, Exception)]
        return {
            "resumed": len(outcomes) - len(failed),
            "failed": len(failed),
            "errors": failed[:3],
            "started_at": started,
            "last_at": time.monotonic(),
        }

    async def cycles(self, urls: list[str], ims: bool, concurrency: int) -> dict[str, Any]:
        """Connect and disconnect once per URL, `concurrency` at a time."""

        async def cycle(url: str) -> None:
            client = Client(url, ims=ims, arrivals={})
            await client.open()
            await client.close()

        outcomes = await _gather_limited([cycle(url) for url in urls], concurrency)
        failed = [repr(o) for o in outcomes if isinstance(o, Exception)]
        return {"cycles": len(urls) - len(failed), "failed": len(failed), "errors": failed[:3]}

    async def close(self) -> dict[str, Any]:
        await asyncio.gather(*(c.close() for c in self.clients))
        count, self.clients = len(self.clients), []
        return {"closed": count}

    def reset(self) -> dict[str, Any]:
        self.arrivals.clear()
        return {}


def _serve(pipe: Any) -> None:
    raise_open_files_limit()

    async def main() -> None:
        worker = Worker()
        loop = asyncio.get_running_loop()
        while True:
            command, kwargs = await loop.run_in_executor(None, pipe.recv)
            if command == "exit":
                await worker.close()
                pipe.send({})
                return
            result = getattr(worker, command)(**kwargs)
            pipe.send(await result if asyncio.iscoroutine(result) else result)

    asyncio.run(main())


class Swarm:
    """Worker processes, each given a slice of every command's URLs."""

    def __init__(self, workers: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes = []
        self.processes = []
        for _ in range(workers):
            mine, theirs = context.Pipe()
            process = context.Process(target=_serve, args=(theirs,), daemon=True)
            process.start()
            self.pipes.append(mine)
            self.processes.append(process)

    @classmethod
    def for_connections(cls, count: int) -> Swarm:
        return cls(max(1, -(-count // PER_WORKER)))

    def _all(self, command: str, per_worker: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        for n, pipe in enumerate(self.pipes):
            pipe.send((command, per_worker[n] if per_worker else {}))
        return [pipe.recv() for pipe in self.pipes]

    def _split(self, urls: list[str], **kwargs: Any) -> list[dict[str, Any]]:
        share = len(self.pipes)
        return [{"urls": urls[n::share], **kwargs} for n in range(share)]

    def open(self, urls: list[str], *, ims: bool, concurrency: int = 200) -> dict[str, Any]:
        results = self._all(
            "open", self._split(urls, ims=ims, concurrency=max(1, concurrency // len(self.pipes)))
        )
        return {
            "opened": sum(r["opened"] for r in results),
            "failed": sum(r["failed"] for r in results),
            "errors": [e for r in results for e in r["errors"]][:3],
        }

    def expect_start(self, kind: str, count: int, *, stall_seconds: float = 10) -> None:
        """Workers wait for `count` frames of `kind` in all (spread as the URLs were);
        expect_collect() returns when they have them or stalled."""
        share = len(self.pipes)
        for n, pipe in enumerate(self.pipes):
            pipe.send(
                (
                    "expect",
                    {"kind": kind, "count": len(range(n, count, share)), "stall_seconds": stall_seconds},
                )
            )

    def expect_collect(self) -> dict[str, Any]:
        results = [pipe.recv() for pipe in self.pipes]
        lasts = [r["last_at"] for r in results if r["last_at"] is not None]
        return {"received": sum(r["received"] for r in results), "last_at": max(lasts) if lasts else None}

    def storm(self) -> dict[str, Any]:
        results = self._all("storm")
        return {
            "resumed": sum(r["resumed"] for r in results),
            "failed": sum(r["failed"] for r in results),
            "errors": [e for r in results for e in r["errors"]][:3],
            "seconds": round(max(r["last_at"] for r in results) - min(r["started_at"] for r in results), 2),
        }

    def cycles(self, urls: list[str], *, ims: bool, concurrency: int = 50) -> dict[str, Any]:
        results = self._all(
            "cycles", self._split(urls, ims=ims, concurrency=max(1, concurrency // len(self.pipes)))
        )
        return {"cycles": sum(r["cycles"] for r in results), "failed": sum(r["failed"] for r in results)}

    def close(self) -> None:
        self._all("close")

    def reset(self) -> None:
        self._all("reset")

    def exit(self) -> None:
        with contextlib.suppress(Exception):
            self._all("exit")
        for process in self.processes:
            process.join(5)
            if process.is_alive():
                process.kill()
