"""Daphne on the Redis channel layer: idle sockets survive, and servers share one Redis."""

from __future__ import annotations

import pytest
from websockets.exceptions import ConnectionClosed

from tests.e2e.harness import send_text

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

# redis-py's default read timeout is 5 s (DESIGN.md, known traps): idle three times as long.
IDLE_SECONDS = 15
# No protocol pings while idle: the layer's own socket must survive the silence.
QUIET = {"IMS_HEARTBEAT_SECONDS": "60"}


def test_a_connection_idle_for_15_seconds_on_redis_still_receives(
    start_server, ws_connect, redis_url, alice, bob
):
    server = start_server(REDIS_URL=redis_url, **QUIET)
    receiver = ws_connect(server, bob)
    receiver.handshake()
    try:
        receiver.assert_silent(for_seconds=IDLE_SECONDS)
    except ConnectionClosed as closed:
        code = closed.rcvd.code if closed.rcvd else None
        pytest.fail(f"the server closed an idle connection (code {code}):\n{server.stderr()[-2000:]}")

    sender = ws_connect(server, alice)
    sender.handshake()
    send_text(sender, to=bob, content="after the silence")
    sender.recv_type("sent")
    frame = receiver.recv_type("message")
    assert (frame["seq"], frame["data"]["content"]) == (1, "after the silence")
    assert "Traceback" not in server.stderr()


def test_live_delivery_crosses_two_servers_on_one_redis(start_server, ws_connect, redis_url, alice, bob):
    one = start_server(REDIS_URL=redis_url)
    two = start_server(REDIS_URL=redis_url)
    receiver = ws_connect(one, bob)
    sender = ws_connect(two, alice)
    sender_elsewhere = ws_connect(one, alice)
    for client in (receiver, sender, sender_elsewhere):
        client.handshake()

    send_text(sender, to=bob, content="across servers", client_msg_id="x-1")
    sent = sender.recv_type("sent")
    frame = receiver.recv_type("message")
    assert frame["data"]["msg_id"] == sent["msg_id"]
    assert frame["data"]["content"] == "across servers"
    assert sender_elsewhere.recv_type("message")["seq"] == sent["seq"]

    receiver.send({"type": "ack", "seqs": [frame["seq"]]})
    for client in (sender, sender_elsewhere):
        receipt = client.recv_type("receipt")
        assert (receipt["msg_ids"], receipt["status"]) == ([sent["msg_id"]], "delivered")

    # And back the other way.
    send_text(receiver, to=alice, content="got it", client_msg_id="y-1")
    assert receiver.recv_type("sent")["client_msg_id"] == "y-1"
    assert sender.recv_type("message")["data"]["content"] == "got it"
