"""Bad input gets an error frame, changes nothing, and the connection keeps working."""

from __future__ import annotations

import json

import pytest
from websockets.exceptions import ConnectionClosed

from messaging.models import Message, PendingItem
from messaging.services.conversations import conversation_create_group
from tests.e2e.harness import send_text

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# (what is wrong, the frame as sent on the wire)
MALFORMED = [
    ("binary frame", b"\x00\x01binary"),
    ("invalid JSON", "{not json"),
    ("empty text", ""),
    ("a list", "[1, 2, 3]"),
    ("a string", '"send"'),
    ("a number", "42"),
    ("null", "null"),
    ("no type", json.dumps({"seqs": [1]})),
    ("type not a string", json.dumps({"type": 7})),
    ("unknown type", json.dumps({"type": "subscribe", "channel": "all"})),
    ("ack without seqs", json.dumps({"type": "ack"})),
    ("ack seqs not a list", json.dumps({"type": "ack", "seqs": "1,2"})),
    ("ack seqs empty", json.dumps({"type": "ack", "seqs": []})),
    ("ack seq zero", json.dumps({"type": "ack", "seqs": [0]})),
    ("ack seq a boolean", json.dumps({"type": "ack", "seqs": [True]})),
    ("read without msg_ids", json.dumps({"type": "read"})),
    ("read msg_ids not ids", json.dumps({"type": "read", "msg_ids": ["not-an-id"]})),
    ("typing without conversation", json.dumps({"type": "typing"})),
    ("typing conversation a string", json.dumps({"type": "typing", "conversation_id": "1"})),
    ("sync without after_seq", json.dumps({"type": "sync"})),
    ("sync after_seq negative", json.dumps({"type": "sync", "after_seq": -1})),
    ("send without client_msg_id", json.dumps({"type": "send", "to": 1, "msg_type": "text", "content": "x"})),
]


def bad_sends(*, peer_id: int, own_id: int) -> list[tuple[str, dict]]:
    """Sends that name their client_msg_id, so the error refers to it."""
    base = {"type": "send", "to": peer_id, "msg_type": "text", "content": "hi"}
    without_content = {name: value for name, value in base.items() if name != "content"}
    image_without_url = {"msg_type": "image", "content": {"name": "a.png", "size": 1, "mime": "image/png"}}
    return [
        ("send without recipient", {**base, "to": None, "client_msg_id": "bad-1"}),
        ("send with both recipients", {**base, "conversation_id": 1, "client_msg_id": "bad-2"}),
        ("send recipient a string", {**base, "to": str(peer_id), "client_msg_id": "bad-3"}),
        ("send without content", {**without_content, "client_msg_id": "bad-4"}),
        ("send empty content", {**base, "content": "  ", "client_msg_id": "bad-5"}),
        ("send unknown msg_type", {**base, "msg_type": "video", "client_msg_id": "bad-6"}),
        ("send image without url", {**base, **image_without_url, "client_msg_id": "bad-7"}),
        ("send mentions a stranger", {**base, "mentions": [987654], "client_msg_id": "bad-8"}),
        ("send to oneself", {**base, "to": own_id, "client_msg_id": "bad-9"}),
    ]


def test_every_malformed_frame_gets_bad_request_and_the_connection_survives(server, ws_connect, alice, bob):
    sender = ws_connect(server, alice)
    sender.handshake()
    send_text(sender, to=bob, content="accepted before the garbage")
    sender.recv_type("sent")

    client = ws_connect(server, bob)
    _, replay = client.handshake()
    assert [item["seq"] for item in replay["items"]] == [1]

    for what, raw in MALFORMED:
        client.send_raw(raw)
        error = client.recv_type("error")
        assert error["code"] == "bad_request", what
        assert error["ref"] is None, what
        assert isinstance(error["detail"], str), what
        assert error["detail"], what
        assert client.roundtrip() == [], f"connection broken after {what}"

    for what, frame in bad_sends(peer_id=alice.pk, own_id=bob.pk):
        client.send(frame)
        error = client.recv_type("error")
        assert error["code"] == "bad_request", (what, error)
        assert error["ref"] == frame["client_msg_id"], what
        assert client.roundtrip() == [], f"connection broken after {what}"

    # Nothing bad was stored, and what was accepted before is still there and pending.
    assert Message.objects.count() == 1
    assert PendingItem.objects.filter(user=bob).count() == 1
    client.send({"type": "ack", "seqs": [1]})
    assert sender.recv_type("receipt")["status"] == "delivered"
    send_text(client, to=alice, content="still works", client_msg_id="good-1")
    assert client.recv_type("sent")["client_msg_id"] == "good-1"
    assert sender.recv_type("message")["data"]["content"] == "still works"


def test_sends_to_unknown_or_foreign_targets_are_refused_without_storing(
    server, ws_connect, alice, bob, carol
):
    private = conversation_create_group(creator_id=bob.pk, title="Private", member_ids=[carol.pk])
    client = ws_connect(server, alice)
    client.handshake()
    cases = [
        ({"to": 987654}, "not_found"),
        ({"conversation_id": 987654}, "not_found"),
        ({"conversation_id": private.pk}, "forbidden"),
    ]
    for n, (target, code) in enumerate(cases):
        client.send(
            {"type": "send", "client_msg_id": f"x-{n}", "msg_type": "text", "content": "hi", **target}
        )
        error = client.recv_type("error")
        assert (error["code"], error["ref"]) == (code, f"x-{n}")
        assert client.roundtrip() == []
    assert not Message.objects.exists()


def oversized_ping(size: int) -> str:
    return json.dumps({"type": "ping", "pad": "x" * size})


@pytest.mark.parametrize("size", [65 * 1024, 1000 * 1024], ids=["65KiB", "1000KiB"])
def test_a_frame_over_64_kib_gets_too_large_and_the_connection_survives(server, ws_connect, bob, size):
    client = ws_connect(server, bob)
    client.handshake()
    client.send_raw(oversized_ping(size))
    error = client.recv_type("error")
    assert error["code"] == "too_large"
    assert error["ref"] is None
    assert client.roundtrip() == []


# daphne hands frames up to 1 MiB to the application, which answers too_large. Over that,
# autobahn (daphne's WebSocket layer, failByDrop=True, not settable from daphne's command
# line) aborts the TCP connection without a close frame: the client sees 1006.
DAPHNE_FRAME_LIMIT = 1024 * 1024


def answer_to(client, raw: str) -> tuple[str, object]:
    """("error", code) or ("closed", the close code received, None when there was none)."""
    try:
        client.send_raw(raw)
        return "error", client.recv_type("error")["code"]
    except ConnectionClosed as closed:
        return "closed", closed.rcvd.code if closed.rcvd else None


def test_a_frame_over_1_mib_gets_too_large_or_close_code_1009(server, ws_connect, bob):
    client = ws_connect(server, bob)
    client.handshake()
    answer = answer_to(client, oversized_ping(2 * DAPHNE_FRAME_LIMIT))
    assert answer in {("error", "too_large"), ("closed", 1009)}


def test_a_frame_over_1_mib_costs_at_most_that_connection_and_loses_nothing(server, ws_connect, alice, bob):
    sender = ws_connect(server, alice)
    sender.handshake()
    send_text(sender, to=bob, content="accepted")
    sender.recv_type("sent")

    client = ws_connect(server, bob)
    client.handshake()
    answer_to(client, oversized_ping(2 * DAPHNE_FRAME_LIMIT))

    # The server and the sender's connection are fine, and the message is still pending.
    assert sender.roundtrip() == []
    _, replay = ws_connect(server, bob).handshake()
    assert [item["data"]["content"] for item in replay["items"]] == ["accepted"]


def test_sends_over_the_rate_limit_get_rate_limited_and_store_nothing(start_server, ws_connect, alice, bob):
    server = start_server(IMS_SEND_RATE_PER_SECOND="1", IMS_SEND_BURST="3")
    client = ws_connect(server, alice)
    client.handshake()
    ids = [f"r-{n}" for n in range(10)]
    for client_msg_id in ids:
        send_text(client, to=bob, content=client_msg_id, client_msg_id=client_msg_id)

    answers = {}
    for _ in ids:
        frame = client.recv(skip=frozenset({"ping", "presence"}))
        assert frame["type"] in {"sent", "error"}, frame
        if frame["type"] == "error":
            assert frame["code"] == "rate_limited"
        answers[frame["client_msg_id"] if frame["type"] == "sent" else frame["ref"]] = frame["type"]
    assert set(answers) == set(ids), "one answer for every send"
    accepted = sorted(cid for cid, kind in answers.items() if kind == "sent")
    assert 3 <= len(accepted) <= 5
    assert client.roundtrip() == []
    assert sorted(Message.objects.values_list("client_msg_id", flat=True)) == accepted


def test_a_malformed_last_seq_gets_bad_request_and_the_pending_replay(server, ws_connect, alice, bob):
    sender = ws_connect(server, alice)
    sender.handshake()
    send_text(sender, to=bob, content="pending")
    sender.recv_type("sent")

    client = ws_connect(server, bob, last_seq="-1")
    assert client.recv_type("hello")["last_seq"] == 1
    assert client.recv_type("error")["code"] == "bad_request"
    replay = client.recv_type("offline_messages")
    assert [item["data"]["content"] for item in replay["items"]] == ["pending"]
    assert client.roundtrip() == []
