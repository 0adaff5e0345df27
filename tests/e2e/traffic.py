"""Steady chat traffic from clients that behave as PROTOCOL.md asks, for restart and fault
tests: each reconnects when its connection ends (with `last_seq`), sends again every `send`
it got no `sent` for (same client_msg_id), acks what it receives and dedupes by seq. The
test then counts what every client received against what the server accepted.

asyncio, so that dozens of clients run in one thread; the test calls `run_traffic` from
plain code, and nothing here touches the ORM.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake

# As a real client: back off a little before reconnecting, never wait long.
RECONNECT_DELAY_SECONDS = 0.1
OPEN_TIMEOUT_SECONDS = 10


# Frames that are items of the user's stream (PROTOCOL.md), each with a seq.
STREAM_ITEMS = frozenset({"message", "notification", "conversation", "message_update"})


@dataclass(eq=False)
class Peer:
    """One user's client. `urls` are tried in turn, one per (re)connect: the servers
    themselves, or the one proxy in front of them."""

    name: str
    user_id: int
    token: str
    urls: list[str]
    ssl_context: ssl.SSLContext | None = None
    # More for websockets.connect: host= and port= send the TCP connection elsewhere than
    # the URL's host (a proxy on a spare port), which still names the site.
    connect_kwargs: dict[str, Any] = field(default_factory=dict)
    # What arrived, by seq of this user's stream: a message's data; for other items
    # (notifications, conversation changes) {"type": ..., "data": ...}.
    items: dict[int, dict[str, Any]] = field(default_factory=dict)
    # client_msg_id -> msg_id of every `sent` (the server accepted it).
    accepted: dict[str, str] = field(default_factory=dict)
    unanswered: dict[str, dict[str, Any]] = field(default_factory=dict)
    close_codes: list[int | None] = field(default_factory=list)
    failed_connects: int = 0
    connects: int = 0
    problems: list[str] = field(default_factory=list)
    _ws: Any = None
    _stopping: bool = False
    _url_index: int = 0

    @property
    def last_seq(self) -> int:
        return max(self.items, default=0)

    def resume_seq(self) -> int:
        """The highest seq with every seq before it handled: what `last_seq` on reconnect
        says (a `sent` may carry a seq ahead of items still on their way, as ims-client.js
        knows)."""
        seq = 0
        while seq + 1 in self.items:
            seq += 1
        return seq

    def summary(self) -> str:
        return (
            f"{self.name}: {self.connects} connects, {self.failed_connects} failed, "
            f"closes {self.close_codes}, "
            f"{len(self.items)} items up to seq {self.last_seq}, {len(self.accepted)} accepted, "
            f"{len(self.unanswered)} unanswered"
        )

    def received_ids(self) -> set[str]:
        """msg_ids of the messages others sent to this user."""
        return {data["msg_id"] for data in self.messages().values() if data["sender_id"] != self.user_id}

    def messages(self) -> dict[int, dict[str, Any]]:
        return {seq: data for seq, data in self.items.items() if "msg_id" in data}

    def notifications(self) -> list[dict[str, Any]]:
        return [item["data"] for item in self.items.values() if item.get("type") == "notification"]

    async def send_text(self, *, to: Peer, client_msg_id: str) -> None:
        frame = {
            "type": "send",
            "client_msg_id": client_msg_id,
            "to": to.user_id,
            "msg_type": "text",
            "content": f"{self.name} to {to.name}: {client_msg_id}",
        }
        self.unanswered[client_msg_id] = frame
        await self._send(frame)

    async def _send(self, frame: dict[str, Any]) -> None:
        ws = self._ws
        if ws is None:
            return  # sent again once connected
        with contextlib.suppress(ConnectionClosed):
            await ws.send(json.dumps(frame))

    async def run(self) -> None:
        """Stay connected, reconnecting whenever the connection ends, until stop()."""
        while not self._stopping:
            url = self.urls[self._url_index % len(self.urls)]
            self._url_index += 1
            query = {"token": self.token, **({"last_seq": self.resume_seq()} if self.items else {})}
            try:
                async with websockets.connect(
                    f"{url}?{urlencode(query)}",
                    ssl=self.ssl_context,
                    open_timeout=OPEN_TIMEOUT_SECONDS,
                    ping_interval=None,
                    max_size=4 * 2**20,
                    close_timeout=2,
                    **self.connect_kwargs,
                ) as ws:
                    self.connects += 1
                    await self._converse(ws)
                if not self._stopping:  # iteration ends quietly on a normal close (1000, 1001)
                    self.close_codes.append(ws.close_code)
            except ConnectionClosed as closed:
                self.close_codes.append(closed.rcvd.code if closed.rcvd else None)
            except (OSError, InvalidHandshake, TimeoutError):
                self.failed_connects += 1
            finally:
                self._ws = None
            if not self._stopping:
                await asyncio.sleep(RECONNECT_DELAY_SECONDS)

    async def _converse(self, ws: Any) -> None:
        async for raw in ws:
            frame = json.loads(raw)
            kind = frame["type"]
            if kind == "hello":
                self._ws = ws
                for unanswered in list(self.unanswered.values()):
                    await self._send(unanswered)
            elif kind == "sent":
                self._accept(frame)
            elif kind in STREAM_ITEMS or kind in ("offline_messages", "batch"):
                items = frame["items"] if kind in ("offline_messages", "batch") else [frame]
                for item in items:
                    self._take(item)
                if items:
                    await ws.send(json.dumps({"type": "ack", "seqs": [item["seq"] for item in items]}))
            elif kind == "error":
                if frame["code"] in ("server_error", "rate_limited") and frame["ref"] in self.unanswered:
                    await asyncio.sleep(0.2)
                    await self._send(self.unanswered[frame["ref"]])
                else:
                    self.problems.append(f"error frame {frame}")
            if self._stopping:
                await ws.close()
                return

    def _accept(self, frame: dict[str, Any]) -> None:
        client_msg_id, msg_id = frame["client_msg_id"], frame["msg_id"]
        if self.accepted.get(client_msg_id, msg_id) != msg_id:
            self.problems.append(f"{client_msg_id} answered as {self.accepted[client_msg_id]} and {msg_id}")
        self.accepted[client_msg_id] = msg_id
        self.unanswered.pop(client_msg_id, None)
        # The sender's own copy in its stream: this connection learns its seq from `sent`.
        own_copy = {"msg_id": msg_id, "sender_id": self.user_id}
        self._take({"type": "message", "seq": frame["seq"], "data": own_copy})

    def _take(self, item: dict[str, Any]) -> None:
        seq = item["seq"]
        data = item["data"] if item["type"] == "message" else {"type": item["type"], "data": item["data"]}
        known = self.items.get(seq)
        if known is not None and known.get("msg_id") != data.get("msg_id"):
            self.problems.append(f"seq {seq} carried {known} and then {data}")
        self.items[seq] = data

    async def stop(self) -> None:
        self._stopping = True
        if self._ws is not None:
            with contextlib.suppress(ConnectionClosed):
                await self._ws.close()


@dataclass
class Pair:
    sender: Peer
    receiver: Peer


async def _send_steadily(pair: Pair, *, count: int, interval_seconds: float, prefix: str) -> None:
    for n in range(count):
        await pair.sender.send_text(to=pair.receiver, client_msg_id=f"{prefix}-{pair.sender.name}-{n}")
        await asyncio.sleep(interval_seconds)


def everything_arrived(pairs: list[Pair]) -> bool:
    """Every send answered, and every accepted message at its receiver."""
    for pair in pairs:
        if pair.sender.unanswered:
            return False
        if not set(pair.sender.accepted.values()) <= pair.receiver.received_ids():
            return False
    return True


async def _traffic(
    pairs: list[Pair],
    *,
    count: int,
    interval_seconds: float,
    during: Callable[[], Any],
    settle_seconds: float,
    prefix: str,
) -> None:
    peers = {id(peer): peer for pair in pairs for peer in (pair.sender, pair.receiver)}.values()
    runners = [asyncio.create_task(peer.run()) for peer in peers]
    try:
        deadline = time.monotonic() + OPEN_TIMEOUT_SECONDS
        while not all(peer._ws is not None for peer in peers):
            if time.monotonic() > deadline:
                raise AssertionError("the clients did not all connect")
            await asyncio.sleep(0.02)
        senders = [
            asyncio.create_task(
                _send_steadily(pair, count=count, interval_seconds=interval_seconds, prefix=prefix)
            )
            for pair in pairs
        ]
        # The fault happens in a thread of its own while the traffic goes on.
        await asyncio.to_thread(during)
        await asyncio.gather(*senders)
        deadline = time.monotonic() + settle_seconds
        while not everything_arrived(pairs) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        for peer in peers:
            await peer.stop()
        for runner in runners:
            runner.cancel()
        await asyncio.gather(*runners, return_exceptions=True)


def run_traffic(
    pairs: list[Pair],
    *,
    count: int,
    interval_seconds: float,
    during: Callable[[], Any] = lambda: None,
    settle_seconds: float = 20.0,
    prefix: str = "m",
) -> None:
    """Each pair's sender sends `count` messages `interval_seconds` apart while `during()`
    runs (a restart, a kill); returns once everything arrived or `settle_seconds` after
    the last send."""
    asyncio.run(
        _traffic(
            pairs,
            count=count,
            interval_seconds=interval_seconds,
            during=during,
            settle_seconds=settle_seconds,
            prefix=prefix,
        )
    )


def assert_each_message_once(pairs: list[Pair], *, count: int) -> None:
    """Every send accepted once; every receiver has each accepted message once, under one
    seq, with its stream's seqs gap-free; and no client saw anything it should not."""
    for pair in pairs:
        sender, receiver = pair.sender, pair.receiver
        assert not sender.problems, sender.problems
        assert not receiver.problems, receiver.problems
        assert not sender.unanswered, f"{sender.name}: {len(sender.unanswered)} sends never answered"
        assert len(sender.accepted) == count, f"{sender.name}: {len(sender.accepted)} of {count} accepted"
        assert len(set(sender.accepted.values())) == count, f"{sender.name}: a retry was stored twice"
        from_sender = {
            data["msg_id"]: seq
            for seq, data in receiver.messages().items()
            if data["sender_id"] == sender.user_id
        }
        missing = set(sender.accepted.values()) - set(from_sender)
        assert not missing, (
            f"{receiver.name} never received {len(missing)} of {sender.name}'s messages: "
            f"{receiver.summary()}; {sender.summary()}"
        )
        by_msg_id: dict[str, int] = {}
        for seq, data in receiver.messages().items():
            assert by_msg_id.setdefault(data["msg_id"], seq) == seq, f"{data['msg_id']} shown twice"
        assert receiver.resume_seq() == receiver.last_seq, f"{receiver.name}: a gap in its seqs"
