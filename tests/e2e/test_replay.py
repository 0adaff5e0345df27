"""Offline replay, resume and flow control, over a real socket to a real daphne."""

from __future__ import annotations

from unittest import mock

import pytest

from messaging.models import PendingItem
from messaging.services.messages import message_send
from tests.e2e.harness import send_text, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def send_and_confirm(client, *, to, contents):
    """Send text messages and wait for each `sent`; returns the `sent` frames in order."""
    for content in contents:
        send_text(client, to=to, content=content)
    return [client.recv_type("sent") for _ in contents]


def store_without_event(*, sender, to, count, prefix="stored"):
    """Messages stored by another process whose channel-layer event never arrives."""
    with mock.patch("messaging.delivery.publish_on_commit"):
        for n in range(count):
            message_send(
                sender_id=sender.pk, to=to.pk, content=f"{prefix} {n}", client_msg_id=f"{prefix}-{n}"
            )


def test_offline_messages_are_replayed_until_acked(server, ws_connect, alice, bob):
    sender = ws_connect(server, alice)
    sender.handshake()
    sent = send_and_confirm(sender, to=bob, contents=["one", "two", "three"])
    assert [frame["client_msg_id"] for frame in sent] == ["one", "two", "three"]

    receiver = ws_connect(server, bob)
    hello, replay = receiver.handshake()
    assert hello == {"type": "hello", "protocol": 1, "user_id": bob.pk, "heartbeat_s": 30, "last_seq": 3}
    assert [item["seq"] for item in replay["items"]] == [1, 2, 3]
    assert [item["data"]["content"] for item in replay["items"]] == ["one", "two", "three"]
    assert [item["data"]["msg_id"] for item in replay["items"]] == [frame["msg_id"] for frame in sent]
    assert all(item["type"] == "message" for item in replay["items"])
    assert replay["items"][0]["data"]["sender_id"] == alice.pk
    assert replay["more"] is False
    assert replay["truncated"] is False
    receiver.close()

    # Received but not acked: still pending, so the next connection gets them again.
    receiver = ws_connect(server, bob)
    _, replay = receiver.handshake()
    assert [item["seq"] for item in replay["items"]] == [1, 2, 3]

    receiver.send({"type": "ack", "seqs": [1, 2, 3]})
    receipt = sender.recv_type("receipt")
    assert receipt["status"] == "delivered"
    assert receipt["user_id"] == bob.pk
    assert sorted(receipt["msg_ids"]) == sorted(frame["msg_id"] for frame in sent)
    receiver.close()

    receiver = ws_connect(server, bob)
    hello, replay = receiver.handshake()
    assert hello["last_seq"] == 3
    assert replay["items"] == []
    assert replay["more"] is False


def test_resume_with_last_seq_replays_acked_items_after_it(server, ws_connect, alice, bob):
    phone = ws_connect(server, bob)
    phone.handshake()
    sender = ws_connect(server, alice)
    sender.handshake()
    send_and_confirm(sender, to=bob, contents=[f"m{n}" for n in range(1, 6)])
    live = [phone.recv_type("message") for _ in range(5)]
    assert [frame["seq"] for frame in live] == [1, 2, 3, 4, 5]
    phone.send({"type": "ack", "seqs": [1, 2, 3, 4, 5]})
    wait_until(lambda: not PendingItem.objects.filter(user=bob).exists(), what="the ack to be stored")

    # A second device that has seen up to seq 2 catches up, acked items included.
    laptop = ws_connect(server, bob, last_seq=2)
    hello, replay = laptop.handshake()
    assert hello["last_seq"] == 5
    assert [item["seq"] for item in replay["items"]] == [3, 4, 5]
    assert [item["data"]["content"] for item in replay["items"]] == ["m3", "m4", "m5"]
    assert replay["more"] is False
    assert replay["truncated"] is False

    up_to_date = ws_connect(server, bob, last_seq=5)
    _, replay = up_to_date.handshake()
    assert replay["items"] == []
    assert replay["more"] is False

    # Without last_seq only pending items come: none.
    fresh = ws_connect(server, bob)
    _, replay = fresh.handshake()
    assert replay["items"] == []


def test_sync_replays_everything_after_the_given_seq(server, ws_connect, alice, bob):
    receiver = ws_connect(server, bob)
    receiver.handshake()
    sender = ws_connect(server, alice)
    sender.handshake()
    send_and_confirm(sender, to=bob, contents=["a", "b", "c", "d"])
    assert [receiver.recv_type("message")["seq"] for _ in range(4)] == [1, 2, 3, 4]

    # The client lost track after seq 1 (say a rendering bug) and asks for the rest.
    receiver.send({"type": "sync", "after_seq": 1})
    replay = receiver.recv_type("offline_messages")
    assert [item["seq"] for item in replay["items"]] == [2, 3, 4]
    assert replay["more"] is False

    # Live items keep flowing after the sync, in order and each once.
    send_and_confirm(sender, to=bob, contents=["e"])
    frame = receiver.recv_type("message")
    assert (frame["seq"], frame["data"]["content"]) == (5, "e")


def test_server_fills_a_gap_left_by_a_dropped_event(server, ws_connect, alice, bob):
    receiver = ws_connect(server, bob)
    receiver.handshake()
    sender = ws_connect(server, alice)
    sender.handshake()
    send_and_confirm(sender, to=bob, contents=["first"])
    assert receiver.recv_type("message")["seq"] == 1

    store_without_event(sender=alice, to=bob, count=2, prefix="dropped")
    send_and_confirm(sender, to=bob, contents=["after the gap"])

    frames = [receiver.recv_type("message") for _ in range(3)]
    assert [frame["seq"] for frame in frames] == [2, 3, 4]
    assert [frame["data"]["content"] for frame in frames] == ["dropped 0", "dropped 1", "after the gap"]
    assert receiver.roundtrip() == []


def test_replay_sends_the_next_page_only_after_the_previous_one_is_acked(server, ws_connect, alice, bob):
    store_without_event(sender=alice, to=bob, count=250)

    receiver = ws_connect(server, bob)
    hello, first = receiver.handshake()
    assert hello["last_seq"] == 250
    assert [item["seq"] for item in first["items"]] == list(range(1, 101))
    assert first["more"] is True
    assert first["truncated"] is False

    # A message sent live during the replay waits until the replay is over.
    sender = ws_connect(server, alice)
    sender.handshake()
    send_and_confirm(sender, to=bob, contents=["live during replay"])

    receiver.assert_silent(for_seconds=1.0)
    receiver.send({"type": "ack", "seqs": list(range(1, 100))})
    receiver.assert_silent(for_seconds=1.0)
    receiver.send({"type": "ack", "seqs": [100]})

    second = receiver.recv_type("offline_messages")
    assert [item["seq"] for item in second["items"]] == list(range(101, 201))
    assert second["more"] is True
    assert "truncated" not in second
    receiver.send({"type": "ack", "seqs": [item["seq"] for item in second["items"]]})

    third = receiver.recv_type("offline_messages")
    assert [item["seq"] for item in third["items"]] == list(range(201, 251))
    assert third["more"] is False
    receiver.send({"type": "ack", "seqs": [item["seq"] for item in third["items"]]})

    live = receiver.recv_type("message")
    assert (live["seq"], live["data"]["content"]) == (251, "live during replay")
    receiver.send({"type": "ack", "seqs": [251]})
    assert receiver.roundtrip() == []
    wait_until(lambda: not PendingItem.objects.filter(user=bob).exists(), what="every ack to be stored")
