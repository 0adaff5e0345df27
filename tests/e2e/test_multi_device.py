"""Every item goes to every connection of its user, the sender's other devices included."""

from __future__ import annotations

import pytest

from messaging.models import Conversation
from messaging.services.conversations import conversation_create_group
from tests.e2e.harness import send_text

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_live_message_reaches_every_device_of_both_users(server, ws_connect, alice, bob):
    bob_phone, bob_laptop = ws_connect(server, bob), ws_connect(server, bob)
    alice_phone, alice_laptop = ws_connect(server, alice), ws_connect(server, alice)
    for client in (bob_phone, bob_laptop, alice_phone, alice_laptop):
        client.handshake()

    send_text(alice_phone, to=bob, content="lunch?", client_msg_id="c-1")
    sent = alice_phone.recv_type("sent")
    assert sent["client_msg_id"] == "c-1"
    assert sent["seq"] == 1

    for device in (bob_phone, bob_laptop):
        frame = device.recv_type("message")
        assert frame["seq"] == 1
        assert frame["data"]["msg_id"] == sent["msg_id"]
        assert frame["data"]["content"] == "lunch?"
        assert frame["data"]["sender_id"] == alice.pk
        assert frame["data"]["receiver_id"] == bob.pk

    own_copy = alice_laptop.recv_type("message")
    assert own_copy["seq"] == sent["seq"]
    assert own_copy["data"]["msg_id"] == sent["msg_id"]
    assert own_copy["data"]["sender_id"] == alice.pk
    # The sending connection has the message as `sent`; it never gets it twice.
    assert alice_phone.roundtrip() == []

    # One device acks for all of them; the sender's devices both get the receipt.
    bob_laptop.send({"type": "ack", "seqs": [1]})
    for device in (alice_phone, alice_laptop):
        receipt = device.recv_type("receipt")
        assert receipt["msg_ids"] == [sent["msg_id"]]
        assert receipt["status"] == "delivered"
        assert receipt["user_id"] == bob.pk

    # Delivered, so nothing is pending for bob; the sender's own copy never was.
    for user in (bob, alice):
        _, replay = ws_connect(server, user).handshake()
        assert replay["items"] == []


def test_each_device_sees_seqs_ascending_and_once_while_both_users_send(server, ws_connect, alice, bob):
    alice_phone, alice_laptop = ws_connect(server, alice), ws_connect(server, alice)
    bob_phone = ws_connect(server, bob)
    for client in (alice_phone, alice_laptop, bob_phone):
        client.handshake()

    for n in range(10):
        send_text(alice_phone, to=bob, content=f"from alice {n}")
        send_text(bob_phone, to=alice, content=f"from bob {n}")

    laptop_seqs = [alice_laptop.recv_type("message")["seq"] for _ in range(20)]
    assert laptop_seqs == list(range(1, 21))

    phone_frames = [alice_phone.recv(skip=frozenset({"ping", "presence", "receipt"})) for _ in range(20)]
    # The phone sees its own sends as `sent` and bob's as `message`, one per seq of the stream.
    assert sorted(frame["seq"] for frame in phone_frames) == list(range(1, 21))
    assert [frame["type"] for frame in phone_frames].count("sent") == 10
    message_seqs = [frame["seq"] for frame in phone_frames if frame["type"] == "message"]
    assert message_seqs == sorted(message_seqs)


def test_a_group_message_reaches_every_member_but_not_strangers(server, ws_connect, alice, bob, carol):
    group = conversation_create_group(creator_id=alice.pk, title="Launch", member_ids=[bob.pk])
    sender, member, stranger = ws_connect(server, alice), ws_connect(server, bob), ws_connect(server, carol)
    for client in (sender, member, stranger):
        client.handshake()

    sender.send(
        {
            "type": "send",
            "client_msg_id": "g-1",
            "conversation_id": group.pk,
            "msg_type": "text",
            "content": "@bob ship it",
            "mentions": [bob.pk],
        }
    )
    sent = sender.recv_type("sent")
    frame = member.recv_type("message")
    assert frame["data"]["msg_id"] == sent["msg_id"]
    assert frame["data"]["conversation_id"] == group.pk
    assert frame["data"]["receiver_id"] is None
    assert frame["data"]["mentions"] == [bob.pk]
    assert stranger.roundtrip() == []
    _, replay = ws_connect(server, carol).handshake()
    assert replay["items"] == []


def test_peers_see_presence_and_typing(server, ws_connect, alice, bob):
    watcher = ws_connect(server, alice)
    watcher.handshake()
    send_text(watcher, to=bob, content="opens the conversation")
    watcher.recv_type("sent")
    conversation_id = Conversation.objects.get().pk

    phone, laptop = ws_connect(server, bob), ws_connect(server, bob)
    phone.handshake()
    laptop.handshake()
    assert watcher.recv_type("presence") == {"type": "presence", "user_id": bob.pk, "online": True}

    phone.send({"type": "typing", "conversation_id": conversation_id})
    typing = watcher.recv_type("typing")
    assert typing == {"type": "typing", "conversation_id": conversation_id, "user_id": bob.pk}

    phone.close()
    laptop.close()
    assert watcher.recv_type("presence") == {"type": "presence", "user_id": bob.pk, "online": False}
