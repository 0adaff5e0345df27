"""kill -9 of the server loses no accepted message (PROTOCOL.md: `sent` means stored)."""

from __future__ import annotations

import pytest
from websockets.exceptions import ConnectionClosed

from messaging.models import Message
from tests.e2e.harness import send_text, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# No rate limit in the way of a sender that pipelines its sends.
UNLIMITED = {"IMS_SEND_RATE_PER_SECOND": "100000", "IMS_SEND_BURST": "100000"}


def frames_until_closed(client) -> list[dict]:
    """Every frame the client still has or receives before the connection ends."""
    frames = []
    try:
        while True:
            frames.append(client.recv(skip=frozenset()))
    except ConnectionClosed:
        return frames


def test_messages_accepted_before_a_kill_9_reach_the_recipient_after_restart(
    start_server, ws_connect, alice, bob
):
    server = start_server(**UNLIMITED)
    receiver = ws_connect(server, bob)
    receiver.handshake()
    sender = ws_connect(server, alice)
    sender.handshake()

    count = 30
    for n in range(count):
        send_text(sender, to=bob, content=f"before the crash {n}", client_msg_id=f"c-{n}")
    sent = {frame["client_msg_id"]: frame for frame in (sender.recv_type("sent") for _ in range(count))}
    assert len(sent) == count
    receiver.recv_type("message")  # live delivery was under way; bob acks nothing

    server.kill()
    frames_until_closed(receiver)
    server.start()

    receiver = ws_connect(server, bob)
    hello = receiver.recv_type("hello")
    assert hello["last_seq"] == count
    items = receiver.replay_all()
    assert [item["seq"] for item in items] == list(range(1, count + 1))
    assert [item["data"]["client_msg_id"] for item in items] == [f"c-{n}" for n in range(count)]
    assert all(item["data"]["msg_id"] == sent[item["data"]["client_msg_id"]]["msg_id"] for item in items)


def test_a_kill_9_while_sending_loses_no_accepted_message_and_retries_never_duplicate(
    start_server, ws_connect, alice, bob
):
    server = start_server(**UNLIMITED)
    receiver = ws_connect(server, bob)
    receiver.handshake()
    sender = ws_connect(server, alice)
    sender.handshake()

    count = 200
    ids = [f"burst-{n}" for n in range(count)]
    for client_msg_id in ids:
        send_text(sender, to=bob, content=f"text of {client_msg_id}", client_msg_id=client_msg_id)
    # Kill as soon as some are stored: whatever `sent` frames were still on their way are lost.
    stored = Message.objects.filter(sender=alice)
    wait_until(lambda: stored.count() >= 20, what="the first sends to be stored")
    server.kill()
    accepted = {
        frame["client_msg_id"]: frame for frame in frames_until_closed(sender) if frame["type"] == "sent"
    }
    assert len(accepted) < count, "the kill came too late to interrupt the sends"
    assert set(accepted) <= set(stored.values_list("client_msg_id", flat=True)), "`sent` means stored"
    frames_until_closed(receiver)

    server.start()
    sender = ws_connect(server, alice)
    sender.handshake()
    # The client retries everything it has no `sent` for, and (harmlessly) a few it has.
    retries = [cid for cid in ids if cid not in accepted] + list(accepted)[:5]
    for client_msg_id in retries:
        send_text(sender, to=bob, content=f"text of {client_msg_id}", client_msg_id=client_msg_id)
    answers = {frame["client_msg_id"]: frame for frame in (sender.recv_type("sent") for _ in retries)}
    assert set(answers) == set(retries)
    for client_msg_id, first in accepted.items():
        if client_msg_id in answers:
            assert answers[client_msg_id]["msg_id"] == first["msg_id"]
            assert answers[client_msg_id]["seq"] == first["seq"]

    receiver = ws_connect(server, bob)
    receiver.recv_type("hello")
    items = receiver.replay_all()
    received = [item["data"]["client_msg_id"] for item in items]
    assert sorted(received) == sorted(ids), "every message exactly once"
    assert [item["seq"] for item in items] == list(range(1, count + 1))
    by_id = {item["data"]["client_msg_id"]: item["data"]["msg_id"] for item in items}
    assert all(by_id[cid] == frame["msg_id"] for cid, frame in accepted.items())
    assert stored.count() == count
