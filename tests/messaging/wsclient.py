"""A small WebSocket client for consumer tests, driving `imsproject.asgi.application` (the
real middleware stack) through Channels' WebsocketCommunicator.

    async with ws_connect(alice) as ws:
        await ws.send({"type": "ping"})
        assert (await ws.receive())["type"] == "pong"

The context manager always disconnects, also when the test fails inside it. Receiving
never cancels the application on a timeout (the stock communicator does), so a failed
expectation still leaves a consumer that disconnects cleanly.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager, suppress
from typing import Any
from urllib.parse import urlencode

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers, get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.test import Client
from rest_framework.authtoken.models import Token

from imsproject.asgi import application
from messaging.models import Connection, User

# Things that must arrive get a generous timeout (2 cores, other runs beside ours);
# "nothing more arrives" waits briefly.
ARRIVES_SECONDS = 5.0
SILENCE_SECONDS = 0.3
SAME_SITE_ORIGIN = "http://127.0.0.1"

Frame = dict[str, Any]


class ConnectionClosed(AssertionError):
    """The server closed the socket while a frame was expected."""

    def __init__(self, code: int | None) -> None:
        super().__init__(f"the server closed the connection with code {code}")
        self.code = code


class WsClient:
    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.communicator = communicator
        self.hello: Frame | None = None
        self.replay: Frame | None = None

    # --- output of the server ---------------------------------------------------------

    async def receive_event(self, timeout: float = ARRIVES_SECONDS) -> dict[str, Any]:
        """The next ASGI message the application sent (websocket.send or websocket.close)."""
        future = self.communicator.future
        if future.done():
            future.result()  # re-raise what crashed the consumer
        try:
            return await asyncio.wait_for(self.communicator.output_queue.get(), timeout)
        except TimeoutError:
            if future.done():
                future.result()
            raise AssertionError(f"nothing arrived within {timeout} s") from None

    async def receive(self, timeout: float = ARRIVES_SECONDS) -> Frame:
        """The next frame, decoded; fails on a close or a binary frame."""
        event = await self.receive_event(timeout)
        if event["type"] == "websocket.close":
            raise ConnectionClosed(event.get("code"))
        assert event["type"] == "websocket.send", event
        assert event.get("text") is not None, f"expected a text frame, got {event}"
        frame = json.loads(event["text"])
        assert isinstance(frame, dict), frame
        assert isinstance(frame.get("type"), str), frame
        return frame

    async def receive_type(self, kind: str, timeout: float = ARRIVES_SECONDS) -> Frame:
        """The next frame, which must be of this type."""
        frame = await self.receive(timeout)
        assert frame["type"] == kind, f"expected {kind!r}, got {frame}"
        return frame

    async def receive_until(
        self, kind: str, *, skipping: Iterable[str] | None = None, timeout: float = ARRIVES_SECONDS
    ) -> Frame:
        """The first frame of this type; frames before it are skipped (only the listed
        types, when `skipping` is given)."""
        allowed = None if skipping is None else set(skipping)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            frame = await self.receive(max(deadline - loop.time(), 0.01))
            if frame["type"] == kind:
                return frame
            assert allowed is None or frame["type"] in allowed, f"unexpected frame before {kind!r}: {frame}"

    async def receive_close(self, timeout: float = ARRIVES_SECONDS) -> int | None:
        """Skip frames until the server closes the socket; returns the close code."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = await self.receive_event(max(deadline - loop.time(), 0.01))
            if event["type"] == "websocket.close":
                return event.get("code")

    async def assert_nothing(self, timeout: float = SILENCE_SECONDS, *, ignoring: Iterable[str] = ()) -> None:
        """Nothing (except frames of the ignored types) arrives within `timeout`."""
        ignored = set(ignoring)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (left := deadline - loop.time()) > 0:
            try:
                event = await asyncio.wait_for(self.communicator.output_queue.get(), left)
            except TimeoutError:
                return
            if (
                event["type"] == "websocket.send"
                and json.loads(event.get("text") or "{}").get("type") in ignored
            ):
                continue
            raise AssertionError(f"expected nothing, got {event}")

    # --- input to the server ----------------------------------------------------------

    async def send(self, frame: Any) -> None:
        await self.send_text(json.dumps(frame))

    async def send_text(self, text: str) -> None:
        await self.communicator.send_input({"type": "websocket.receive", "text": text})

    async def send_bytes(self, data: bytes) -> None:
        await self.communicator.send_input({"type": "websocket.receive", "bytes": data})

    async def request(self, frame: Frame, kind: str, *, timeout: float = ARRIVES_SECONDS) -> Frame:
        """Send a frame and return the next frame, which must be of type `kind`."""
        await self.send(frame)
        return await self.receive_type(kind, timeout)

    async def assert_alive(self) -> None:
        """The connection still answers: ping gets pong."""
        pong = await self.request({"type": "ping"}, "pong")
        assert isinstance(pong["ts"], str)

    async def ack(self, seqs: Iterable[int]) -> None:
        await self.send({"type": "ack", "seqs": list(seqs)})

    async def ack_frame(self, frame: Frame) -> None:
        """Ack every item of an offline_messages frame (nothing when it is empty)."""
        seqs = [item["seq"] for item in frame["items"]]
        if seqs:
            await self.ack(seqs)

    async def send_text_message(
        self,
        *,
        to: int | None = None,
        conversation_id: int | None = None,
        content: str = "hi",
        client_msg_id: str,
    ) -> Frame:
        frame: Frame = {
            "type": "send",
            "client_msg_id": client_msg_id,
            "msg_type": "text",
            "content": content,
        }
        if to is not None:
            frame["to"] = to
        if conversation_id is not None:
            frame["conversation_id"] = conversation_id
        await self.send(frame)
        return frame


# --- credentials ----------------------------------------------------------------------


def ws_path(**params: Any) -> str:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"/ws/?{query}" if query else "/ws/"


def token_key(user: User) -> str:
    return Token.objects.get_or_create(user=user)[0].key


def session_cookie(user: User) -> str:
    """The `Cookie` header value of a browser that logged in as this user."""
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def session_headers(cookie: str, origin: str | None = SAME_SITE_ORIGIN) -> list[tuple[bytes, bytes]]:
    headers = [(b"cookie", cookie.encode())]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    return headers


async def refused(path: str, headers: list[tuple[bytes, bytes]] | None = None) -> bool:
    """True when the handshake was refused: the consumer closed before accepting (daphne
    answers that with HTTP 403) and sent nothing else."""
    communicator = WebsocketCommunicator(application, path, headers=headers)
    try:
        await communicator.send_input({"type": "websocket.connect"})
        first = await asyncio.wait_for(communicator.output_queue.get(), ARRIVES_SECONDS)
        if first["type"] != "websocket.close":
            return False
        return communicator.output_queue.empty()
    finally:
        with suppress(Exception):
            await communicator.disconnect(timeout=ARRIVES_SECONDS)


@asynccontextmanager
async def ws_connect(
    user: User | None = None,
    *,
    path: str | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
    last_seq: Any = None,
    empty_replay: bool = True,
) -> AsyncIterator[WsClient]:
    """An accepted connection (with the user's token unless `path` is given), its hello
    read. With `empty_replay`, the replay is read too and must be the one empty frame."""
    if path is None:
        assert user is not None, "give a user or a path"
        key = await database_sync_to_async(token_key)(user)
        path = ws_path(token=key, last_seq=last_seq)
    communicator = WebsocketCommunicator(application, path, headers=headers)
    client = WsClient(communicator)
    try:
        connected, code = await communicator.connect(timeout=ARRIVES_SECONDS)
        assert connected, f"handshake refused (close code {code})"
        client.hello = await client.receive_type("hello")
        if empty_replay:
            client.replay = await client.receive_type("offline_messages")
            assert client.replay["items"] == [], client.replay
            assert client.replay["more"] is False, client.replay
        yield client
    finally:
        with suppress(Exception):
            await communicator.disconnect(timeout=ARRIVES_SECONDS)


async def channel_name_of(user: User) -> str:
    """The channel of the user's only open connection (from its Connection row)."""
    names = await database_sync_to_async(
        lambda: list(Connection.objects.filter(user=user).values_list("channel_name", flat=True))
    )()
    assert len(names) == 1, names
    return names[0]


# --- isolation ------------------------------------------------------------------------


@pytest.fixture
async def ws_isolation(settings: Any) -> AsyncIterator[None]:
    """A fresh channel layer for each test (groups left by an earlier test, or queues bound
    to its event loop, must not leak in), and no database connection left open in the
    thread that runs the consumers' ORM calls.

    Also a fast password hasher: the personas' factory hashes a password, and PBKDF2's
    default cost (~0.5 s a user here) would dominate these tests. Request this fixture
    before the personas (pytest.mark.usefixtures does) so it applies to them.
    """
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)
    layer = get_channel_layer()
    await layer.flush()
    try:
        yield
    finally:
        await layer.flush()
        if hasattr(layer, "close_pools"):
            await layer.close_pools()
        channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)
        await sync_to_async(connections.close_all, thread_sensitive=True)()
