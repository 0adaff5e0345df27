"""Graceful shutdown of a daphne process serving IMS: the first SIGTERM (or SIGINT) ends it
within a second or two, and no client is left guessing.

daphne's own shutdown (Twisted's handler stops the reactor at once) cancels every
application instance and drops every socket: with 20 WebSockets open the process was gone
in 0.1 s and not one got a close frame; sends being stored were never answered, and no
consumer's disconnect (presence, Connection rows) ran. Here, instead:

1. the listening sockets close, so the proxy sends new connections to the other servers;
   idle HTTP keep-alive connections close too, and those with a request under way close
   after its response, so the proxy sends no new request here (nginx retries a GET that
   met a closed connection elsewhere, but not a POST: that would be a 502);
2. every open WebSocket stops being read; the frames read but not yet handed to its
   consumer are dropped, and what the consumers are already doing is finished: sends
   stored and answered with `sent`, acks stored (messaging.batching);
3. each WebSocket gets close code 1001 (PROTOCOL.md: reconnect, with backoff) and its
   consumer's disconnect runs;
4. once every connection and request is done, or IMS_SHUTDOWN_GRACE_SECONDS have passed,
   the reactor stops as daphne stops it, and the process exits 0.

A frame dropped, or sent by the client after the close frame, was never taken: the client
sends again, after reconnecting, each `send` it got no `sent` for, which the protocol
makes idempotent (client_msg_id), and unacked items come again in its replay. So a
client sending without pause cannot hold a server up: only what is under way finishes.

A second signal stops at once, as daphne always did. Nothing happens under another ASGI
server. This reads daphne's bookkeeping (`Server.connections`, each WebSocket protocol's
`application_queue`) and Twisted's listening ports, of the versions pinned in
requirements.txt; install_graceful_shutdown() checks at start-up that they are there.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings

from messaging.batching import batchers_idle

logger = logging.getLogger(__name__)

CLOSE_GOING_AWAY = 1001
CLOSE_REASON = b"server shutting down; reconnect"
# How often the shutdown looks whether what it waits for is done.
POLL_SECONDS = 0.01
# The share of the grace period spent storing what was taken before the close frames go
# out; the rest is for the clients' close replies and the consumers' disconnects.
DRAIN_SHARE = 0.5
# What is being waited for must look done this many polls in a row: a consumer takes its
# next frame from its queue a task switch before it hands the frame to a batcher.
SETTLED_POLLS = 3


def install_graceful_shutdown() -> None:
    """When this process is daphne, make its first SIGTERM or SIGINT a graceful shutdown
    (installed once the reactor runs, over Twisted's own handlers)."""
    if "daphne.cli" not in sys.modules:
        return  # another ASGI server, or none (tests and management commands import the app)
    from daphne.http_protocol import HTTPFactory
    from daphne.server import Server
    from daphne.ws_protocol import WebSocketProtocol
    from twisted.internet import reactor

    for owner, name in (
        (Server, "kill_all_applications"),
        (Server, "application_checker"),
        (HTTPFactory, "buildProtocol"),
        (WebSocketProtocol, "sendCloseFrame"),
        (WebSocketProtocol, "onMessage"),
        (WebSocketProtocol, "STATE_OPEN"),
    ):
        if not hasattr(owner, name):
            raise RuntimeError(f"graceful shutdown: {owner.__name__}.{name} is gone; check daphne's version")
    reactor.callWhenRunning(_take_over_signals, reactor)


def _take_over_signals(reactor: Any) -> None:
    """Through the event loop (which daphne's reactor runs on), not signal.signal(): the
    loop wakes at once, where a plain handler waited for its next timer, up to a second."""
    shutdown = GracefulShutdown(reactor)
    loop = asyncio.get_event_loop()  # the reactor's: daphne makes it the current loop
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, shutdown.on_signal, signum)


def _ignore_frame(payload: bytes, is_binary: bool) -> None:
    """A frame that arrived after the close frame went out: not taken."""


class GracefulShutdown:
    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor
        self.started = False
        self.task: asyncio.Future[None] | None = None

    def on_signal(self, signum: int) -> None:
        if self.started:
            logger.warning("%s again: stopping at once", signal.Signals(signum).name)
            self._stop_reactor()
            return
        self.started = True
        logger.info("%s: shutting down gracefully", signal.Signals(signum).name)
        self.task = asyncio.ensure_future(self.run())

    async def run(self) -> None:
        began = time.monotonic()
        grace_seconds = settings.IMS_SHUTDOWN_GRACE_SECONDS
        try:
            servers = self._stop_listening()
            self._end_http_keepalive()
            paused = [protocol for protocol in _websockets(servers) if _is_open(protocol)]
            for protocol in paused:
                protocol.transport.pauseProducing()
                _drop_frames_not_taken(protocol)
            drained = await _settled(
                lambda: _taken_frames_handled(paused), until=began + grace_seconds * DRAIN_SHARE
            )
            closed: set[Any] = set()
            _close_open_websockets(servers, closed)

            def finished() -> bool:
                _close_open_websockets(servers, closed)  # those whose handshake was under way
                return not _busy(servers)

            done = await _settled(finished, until=began + grace_seconds)
            gave_up = "" if drained and done else "; gave up waiting after IMS_SHUTDOWN_GRACE_SECONDS"
            logger.info(
                "graceful shutdown: %d WebSocket(s) closed with %d in %.2f s%s",
                len(closed),
                CLOSE_GOING_AWAY,
                time.monotonic() - began,
                gave_up,
            )
        except Exception:
            logger.exception("graceful shutdown failed; stopping at once")
        self._stop_reactor()

    def _stop_listening(self) -> set[Any]:
        """Close daphne's listening sockets; the daphne servers they belonged to."""
        from daphne.http_protocol import HTTPFactory

        servers = set()
        for reader in self.reactor.getReaders():
            factory = getattr(reader, "factory", None)
            if isinstance(factory, HTTPFactory) and hasattr(reader, "stopListening"):
                reader.stopListening()
                servers.add(factory.server)
        return servers

    def _end_http_keepalive(self) -> None:
        from twisted.web.http import HTTPChannel

        for reader in self.reactor.getReaders():
            protocol = getattr(reader, "protocol", None)  # a WebSocket's is its own protocol
            # Twisted's HTTPFactory wraps each HTTPChannel (to choose HTTP/1.1 or HTTP/2).
            channel = getattr(protocol, "_channel", protocol)
            if not isinstance(channel, HTTPChannel):
                continue
            channel.persistent = False  # closed once the request under way is answered
            if not channel.requests:
                channel.transport.loseConnection()

    def _stop_reactor(self) -> None:
        if self.reactor.running:
            self.reactor.stop()


def _websockets(servers: set[Any]) -> list[Any]:
    from daphne.ws_protocol import WebSocketProtocol

    return [
        protocol
        for server in servers
        for protocol in list(server.connections)
        if isinstance(protocol, WebSocketProtocol)
    ]


def _is_open(protocol: Any) -> bool:
    return protocol.state == protocol.STATE_OPEN and protocol.transport is not None


def _drop_frames_not_taken(protocol: Any) -> None:
    """Frames read from the socket that the consumer has not started on: never answered,
    so the client sends them again."""
    queue = getattr(protocol, "application_queue", None)
    if queue is None:
        return
    kept = []
    while not queue.empty():
        message = queue.get_nowait()
        if message.get("type") != "websocket.receive":
            kept.append(message)
    for message in kept:
        queue.put_nowait(message)


def _taken_frames_handled(protocols: list[Any]) -> bool:
    """The frames these connections' consumers had started on are handled, and what they
    gave the batchers is stored."""
    queues = (getattr(protocol, "application_queue", None) for protocol in protocols)
    return all(queue is None or queue.empty() for queue in queues) and batchers_idle()


def _close_open_websockets(servers: set[Any], closed: set[Any]) -> None:
    for protocol in _websockets(servers):
        if protocol in closed or not _is_open(protocol):
            continue
        closed.add(protocol)
        protocol.onMessage = _ignore_frame
        protocol.sendCloseFrame(code=CLOSE_GOING_AWAY, reasonUtf8=CLOSE_REASON)
        protocol.transport.resumeProducing()  # to read the client's close reply


def _busy(servers: set[Any]) -> bool:
    """A request or connection still running its application, or a batch still storing."""
    for server in servers:
        for details in list(server.connections.values()):
            instance = details.get("application_instance")
            if instance is not None and not instance.done():
                return True
    return not batchers_idle()


async def _settled(condition: Callable[[], bool], *, until: float) -> bool:
    """Wait until `condition` holds SETTLED_POLLS polls in a row; False at `until`."""
    in_a_row = 0
    while time.monotonic() < until:
        in_a_row = in_a_row + 1 if condition() else 0
        if in_a_row >= SETTLED_POLLS:
            return True
        await asyncio.sleep(POLL_SECONDS)
    return False
