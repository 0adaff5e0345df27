"""No item waits for the next event (PROTOCOL.md, "Sync on connect"): an item stored by
another process reaches open sockets within IMS_STREAM_POLL_SECONDS (1), whatever the
channel layer, even when its event is lost and nothing comes after it."""

from __future__ import annotations

import time
from unittest import mock

import pytest

from messaging.api import send_message

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WITHIN_SECONDS = 2.0


def test_a_message_sent_from_another_process_reaches_an_open_socket_within_two_seconds(
    server, ws_connect, alice, bob
):
    client = ws_connect(server, bob)
    client.handshake()

    started = time.monotonic()
    message = send_message(alice, bob, "from a worker")  # this test process: not the server
    frame = client.recv_type("message", timeout=5)

    assert time.monotonic() - started < WITHIN_SECONDS
    assert (frame["seq"], frame["data"]["msg_id"]) == (1, message.msg_id)


def test_a_lost_last_event_is_recovered_without_any_later_traffic(server, ws_connect, alice, bob):
    client = ws_connect(server, bob)
    client.handshake()
    send_message(alice, bob, "first")
    assert client.recv_type("message", timeout=5)["seq"] == 1

    with mock.patch("messaging.delivery.publish_on_commit"):  # the channel layer drops it
        started = time.monotonic()
        send_message(alice, bob, "the last of a burst")
    frame = client.recv_type("message", timeout=5)

    assert time.monotonic() - started < WITHIN_SECONDS
    assert (frame["seq"], frame["data"]["content"]) == (2, "the last of a burst")
    client.assert_silent(for_seconds=1.5)  # and only once
