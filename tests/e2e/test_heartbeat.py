"""Heartbeat: the server pings, and closes a peer silent for two heartbeats with 4408."""

from __future__ import annotations

import threading
import time

import pytest
from websockets.exceptions import ConnectionClosed

from tests.e2e.harness import send_text, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

HEARTBEAT_SECONDS = 1


class PingAnswerer(threading.Thread):
    """Answers every server ping with pong, as a live client does, until stopped."""

    def __init__(self, client) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.pings = 0
        self.closed: ConnectionClosed | None = None
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                frame = self.client.recv(timeout=0.2, skip=frozenset())
            except TimeoutError:
                continue
            except ConnectionClosed as closed:
                self.closed = closed
                return
            if frame["type"] == "ping":
                self.pings += 1
                self.client.send({"type": "pong"})

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=5)


def test_a_silent_client_is_pinged_then_closed_with_4408_and_keeps_its_pending_items(
    start_server, ws_connect, alice, bob
):
    server = start_server(IMS_HEARTBEAT_SECONDS=str(HEARTBEAT_SECONDS))
    sender = ws_connect(server, alice)
    sender.handshake()
    send_text(sender, to=bob, content="still pending")
    sender.recv_type("sent")

    lively = ws_connect(server, bob)
    lively.handshake()
    answerer = PingAnswerer(lively)
    answerer.start()

    connected_at = time.monotonic()
    silent = ws_connect(server, bob)
    hello, replay = silent.handshake()
    assert hello["heartbeat_s"] == HEARTBEAT_SECONDS
    assert [item["data"]["content"] for item in replay["items"]] == ["still pending"]
    ping = silent.recv_type("ping", timeout=5 * HEARTBEAT_SECONDS)
    assert ping["ts"].endswith("Z")

    assert silent.close_code(timeout=10 * HEARTBEAT_SECONDS) == 4408
    silent_for = time.monotonic() - connected_at
    assert 2 * HEARTBEAT_SECONDS <= silent_for < 6 * HEARTBEAT_SECONDS

    # The client that answers pings outlives several heartbeats.
    wait_until(lambda: answerer.pings >= 4, timeout=10 * HEARTBEAT_SECONDS, what="four pings answered")
    answerer.stop()
    assert answerer.closed is None
    assert lively.roundtrip() == []

    # Closed for silence, the item was never acked: the next connection gets it again.
    _, replay = ws_connect(server, bob).handshake()
    assert [item["data"]["content"] for item in replay["items"]] == ["still pending"]
