"""WebSocket load: pairs of senders and receivers, replay drains, idle connections.

Senders and receivers live in this one process, so latency is measured on one clock:
the sender puts time.monotonic() in the message content and the receiver subtracts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from websockets.asyncio.client import connect

UrlFor = Callable[[int], str]  # user id -> ws URL with its credentials


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    last_at: float = 0.0

    def summary(self, *, started: float, expected: int) -> dict[str, float]:
        ordered = sorted(self.latencies)
        count = len(ordered)
        elapsed = max(self.last_at - started, 1e-9)
        return {
            "expected": expected,
            "delivered": count,
            "lost": expected - count,
            "per_second": round(count / elapsed, 1),
            "p50_ms": round(statistics.median(ordered) * 1000, 1) if ordered else None,
            "p99_ms": round(ordered[min(count - 1, int(count * 0.99))] * 1000, 1) if ordered else None,
        }


async def _wait_for_deliveries(tally: Tally, expected: int, *, stall_seconds: float = 10) -> None:
    """Wait while deliveries still come in; give up after `stall_seconds` without one."""
    seen, quiet_since = -1, time.monotonic()
    while len(tally.latencies) < expected and time.monotonic() - quiet_since < stall_seconds:
        if len(tally.latencies) != seen:
            seen, quiet_since = len(tally.latencies), time.monotonic()
        await asyncio.sleep(0.05)


async def _open(url: str, *, ims: bool):
    ws = await connect(url, max_size=None, open_timeout=60, ping_interval=None)
    if ims:  # hello, then the replay until `more` is false
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == "offline_messages" and not frame["more"]:
                break
    return ws


async def _receive(ws, tally: Tally, *, ims: bool) -> None:
    with contextlib.suppress(Exception):
        async for raw in ws:
            frame = json.loads(raw)
            if frame["type"] != "message":
                continue
            now = time.monotonic()
            tally.latencies.append(now - float(frame["data"]["content"]))
            tally.last_at = now
            if ims:
                await ws.send(json.dumps({"type": "ack", "seqs": [frame["seq"]]}))


async def _drain(ws) -> None:
    with contextlib.suppress(Exception):
        async for _ in ws:
            pass


def _send_frame(sender: int, receiver: int, n: int, run: str) -> str:
    return json.dumps(
        {
            "type": "send",
            "client_msg_id": f"{run}-{sender}-{n}",
            "to": receiver,
            "msg_type": "text",
            "content": repr(time.monotonic()),
        }
    )


async def pairs_at_rate(
    url_for: UrlFor, pairs: list[tuple[int, int]], *, rate: float, seconds: float, ims: bool, run: str
) -> dict[str, float]:
    """Open-loop load: `rate` messages a second spread over the pairs, for `seconds`."""
    receivers = [await _open(url_for(r), ims=ims) for _, r in pairs]
    senders = [await _open(url_for(s), ims=ims) for s, _ in pairs]
    tally = Tally()
    tasks = [asyncio.create_task(_receive(ws, tally, ims=ims)) for ws in receivers]
    tasks += [asyncio.create_task(_drain(ws)) for ws in senders]
    per_pair = int(rate * seconds / len(pairs))
    started = time.monotonic()

    async def send_all(index: int) -> None:
        (sender, receiver), ws = pairs[index], senders[index]
        for n in range(per_pair):
            due = started + (n + index / len(pairs)) * len(pairs) / rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            await ws.send(_send_frame(sender, receiver, n, run))

    await asyncio.gather(*(send_all(i) for i in range(len(pairs))))
    expected = per_pair * len(pairs)
    await _wait_for_deliveries(tally, expected)
    for ws in receivers + senders:
        await ws.close()
    for task in tasks:
        task.cancel()
    return {"offered_per_second": rate, **tally.summary(started=started, expected=expected)}


async def pairs_closed_loop(
    url_for: UrlFor, pairs: list[tuple[int, int]], *, window: int, seconds: float, ims: bool, run: str
) -> dict[str, float]:
    """As fast as the server answers: each sender keeps `window` sends unanswered."""
    receivers = [await _open(url_for(r), ims=ims) for _, r in pairs]
    senders = [await _open(url_for(s), ims=ims) for s, _ in pairs]
    tally = Tally()
    tasks = [asyncio.create_task(_receive(ws, tally, ims=ims)) for ws in receivers]
    sent_total = 0  # sends made; every one must be delivered
    started = time.monotonic()
    stop_at = started + seconds

    async def sender_loop(index: int) -> None:
        nonlocal sent_total
        (sender, receiver), ws = pairs[index], senders[index]
        n = 0
        for _ in range(window):
            await ws.send(_send_frame(sender, receiver, n, run))
            n += 1
        sent_total += window
        answered = 0
        async for raw in ws:
            if json.loads(raw)["type"] != "sent":
                continue
            answered += 1
            if time.monotonic() < stop_at:
                await ws.send(_send_frame(sender, receiver, n, run))
                n += 1
                sent_total += 1
            elif answered == n:
                break

    await asyncio.gather(*(sender_loop(i) for i in range(len(pairs))))
    await _wait_for_deliveries(tally, sent_total)
    for ws in receivers + senders:
        await ws.close()
    for task in tasks:
        task.cancel()
    return tally.summary(started=started, expected=sent_total)


async def drain_replay(url: str) -> dict[str, float]:
    """Connect and take every replayed item, acking each frame: seconds until the last."""
    started = time.monotonic()
    received = 0
    async with connect(url, max_size=None, open_timeout=60, ping_interval=None) as ws:
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] != "offline_messages":
                continue
            received += len(frame["items"])
            if frame["items"]:
                await ws.send(json.dumps({"type": "ack", "seqs": [item["seq"] for item in frame["items"]]}))
            if not frame["more"]:
                break
    return {"items": received, "seconds": round(time.monotonic() - started, 3)}


async def hold_idle(urls: list[str], *, ims: bool, concurrency: int = 200) -> list:
    """Open one connection per URL (at most `concurrency` handshakes at once); return them open."""
    gate = asyncio.Semaphore(concurrency)

    async def one(url: str):
        async with gate:
            return await _open(url, ims=ims)

    return await asyncio.gather(*(one(url) for url in urls))
