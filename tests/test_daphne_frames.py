"""Frames written without autobahn (imsproject.daphne_hardening.text_frame) are the bytes
autobahn writes for the same text, at each of RFC 6455's three length encodings."""

from __future__ import annotations

from collections import deque

import pytest
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.protocol import TrafficStats

from imsproject.daphne_hardening import text_frame


class Transport:
    def __init__(self) -> None:
        self.written = b""

    def write(self, data: bytes) -> None:
        self.written += data


def autobahn_frame(text: str) -> bytes:
    """What autobahn's sendMessage writes for `text`, with daphne's options (no
    compression, fragmentation or masking of server frames)."""
    protocol = WebSocketServerProtocol()
    protocol.factory = WebSocketServerFactory()
    protocol.transport = Transport()
    protocol.state = protocol.STATE_OPEN
    protocol.trackedTimings = None
    protocol.trafficStats = TrafficStats()
    protocol._perMessageCompress = None
    protocol.maxMessagePayloadSize = 0
    protocol.autoFragmentSize = 0
    protocol.maskServerFrames = False
    protocol.logFrames = protocol.logOctets = False
    protocol.send_queue = deque()
    protocol.peer = "test"
    protocol.sendMessage(text.encode(), isBinary=False)
    return protocol.transport.written


@pytest.mark.parametrize("length", [0, 1, 125, 126, 300, 65535, 65536, 200_000])
def test_a_text_frame_is_what_autobahn_writes(length):
    text = "x" * length  # `length` bytes: each boundary of the length encodings is hit
    assert text_frame(text) == autobahn_frame(text)
    mixed = "é" * (length // 2) + "x" * (length % 2)  # as many bytes, in two-byte characters
    assert text_frame(mixed) == autobahn_frame(mixed)


def test_the_length_counts_bytes_not_characters():
    frame = text_frame("é" * 100)  # 200 bytes: past the one-byte length
    assert frame[:4] == b"\x81\x7e\x00\xc8"
