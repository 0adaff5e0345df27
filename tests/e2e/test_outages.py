"""Redis and PostgreSQL going away under traffic: every message answered `sent` reaches its
recipient once, in seq order, and the servers recover without being restarted."""

from __future__ import annotations

import contextlib
import time

import pytest
from django.db import connection
from websockets.exceptions import ConnectionClosed

from tests.e2e.harness import RECV_TIMEOUT_SECONDS, WsClient, send_text

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

UNLIMITED = {"IMS_SEND_RATE_PER_SECOND": "100000", "IMS_SEND_BURST": "100000"}
# Longer than any test here: only the channel layer, or a gap it reveals, delivers.
NO_POLL = {"IMS_STREAM_POLL_SECONDS": "600"}


def send_until_sent(sender: WsClient, *, to, client_msg_id: str, tries: int = 20) -> dict:
    """Send, and send again with the same client_msg_id after `server_error`, as
    PROTOCOL.md tells clients to: the `sent` that finally comes."""
    for _ in range(tries):
        send_text(sender, to=to, content=client_msg_id, client_msg_id=client_msg_id)
        frame = sender.recv(skip=frozenset({"ping", "pong", "presence", "typing", "receipt", "message"}))
        if frame["type"] == "sent":
            assert frame["client_msg_id"] == client_msg_id
            return frame
        assert (frame["type"], frame["code"], frame["ref"]) == ("error", "server_error", client_msg_id), frame
        time.sleep(0.25)
    pytest.fail(f"{client_msg_id} was never stored")


def take_messages(receiver: WsClient, into: dict[int, dict], *, timeout: float) -> None:
    """Every message frame arriving within `timeout`, by seq (each acked); a repeated seq fails."""
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            frame = receiver.recv(timeout=remaining)
        except TimeoutError:
            return
        items = frame["items"] if frame["type"] == "offline_messages" else [frame]
        for item in items:
            assert item["type"] == "message", item
            assert item["seq"] not in into, f"seq {item['seq']} arrived twice"
            into[item["seq"]] = item
        if items:
            receiver.send({"type": "ack", "seqs": [item["seq"] for item in items]})


def connected(ws_connect, server, user) -> WsClient:
    client = ws_connect(server, user)
    client.handshake()
    return client


def send_many(sender: WsClient, *, to, prefix: str, count: int = 10) -> list[str]:
    """The msg_ids of `count` messages, each sent until stored."""
    return [send_until_sent(sender, to=to, client_msg_id=f"{prefix}-{n}")["msg_id"] for n in range(count)]


def assert_each_once_in_order(received: dict[int, dict], sent: list[str]) -> None:
    assert [received[seq]["data"]["msg_id"] for seq in sorted(received)] == sent
    assert sorted(received) == list(range(1, len(sent) + 1))


def test_a_redis_crash_under_traffic_loses_no_message_and_live_delivery_comes_back(
    start_server, ws_connect, private_redis, alice, bob
):
    one = start_server(REDIS_URL=private_redis.url, **UNLIMITED, **NO_POLL)
    two = start_server(REDIS_URL=private_redis.url, **UNLIMITED, **NO_POLL)
    receiver, sender = connected(ws_connect, one, bob), connected(ws_connect, two, alice)
    received: dict[int, dict] = {}
    sent = send_many(sender, to=bob, prefix="before")
    take_messages(receiver, received, timeout=2)
    assert len(received) == 10  # across servers, through Redis

    private_redis.kill()
    # Stored and answered as ever; their events have nowhere to go.
    sent += send_many(sender, to=bob, prefix="during")
    private_redis.start()

    # Each server finds Redis again by itself: a message gets through the channel layer.
    deadline = time.monotonic() + RECV_TIMEOUT_SECONDS
    while len(received) < len(sent) + 1 and time.monotonic() < deadline:
        sent.append(send_until_sent(sender, to=bob, client_msg_id=f"after-{len(sent)}")["msg_id"])
        take_messages(receiver, received, timeout=1)
    # The first live item after the outage revealed the gap; the session read it back.
    take_messages(receiver, received, timeout=1)
    assert_each_once_in_order(received, sent)
    # A line when Redis went away and one when it was back (for publishing, for the
    # subscription), not a traceback per event.
    for server in (one, two):
        log = server.stderr()
        went, back = log.count("Redis is unreachable for"), log.count("Redis is reachable again for")
        assert "Traceback" not in log
        assert 1 <= went == back <= 2, log


@pytest.mark.skipif(connection.vendor != "postgresql", reason="cuts PostgreSQL's connections")
def test_database_connections_cut_under_traffic_lose_no_accepted_message(
    start_server, ws_connect, alice, bob
):
    server = start_server(**UNLIMITED)
    receiver, sender = connected(ws_connect, server, bob), connected(ws_connect, server, alice)
    received: dict[int, dict] = {}
    sent = send_many(sender, to=bob, prefix="before")
    take_messages(receiver, received, timeout=1)

    # As a PostgreSQL restart or failover does to every connection of the server.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert cursor.fetchone()[0] >= 1

    sent += send_many(sender, to=bob, prefix="after")
    # A forward that met a dead connection would close with 1011; the replay has its items.
    with contextlib.suppress(ConnectionClosed):
        take_messages(receiver, received, timeout=2)
    if len(received) < len(sent):
        receiver = ws_connect(server, bob, last_seq=max(received, default=0))
        receiver.recv_type("hello")
        take_messages(receiver, received, timeout=2)
    assert_each_once_in_order(received, sent)
