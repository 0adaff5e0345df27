"""Clients that never read, spam `sync`, or lose their account: they cost the server bounded
memory, their connections close with the codes of PROTOCOL.md, and nothing accepted is lost."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus

from messaging.models import Connection, PendingItem
from messaging.services.messages import message_send
from tests.conftest import token_of
from tests.e2e.harness import send_text, wait_until
from tests.e2e.silent_socket import SilentSocket, rss_bytes

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

UNLIMITED = {"IMS_SEND_RATE_PER_SECOND": "100000", "IMS_SEND_BURST": "100000"}
BIG_TEXT = "x" * 8000
MIB = 2**20
# What the server may grow by while clients refuse to read: their 1 MiB output budgets,
# the replay pages in flight, and the allocator's slack. Unbounded, the same traffic
# grew it by 50 MiB and more.
GROWTH_BOUND_BYTES = 24 * MIB


def pending_of(user) -> int:
    return PendingItem.objects.filter(user=user).count()


def test_sockets_that_never_read_are_closed_and_cost_bounded_memory(start_server, ws_connect, alice, bob):
    server = start_server(**UNLIMITED)
    sender = ws_connect(server, alice)
    sender.handshake()
    silent = [SilentSocket(port=server.port, token=token_of(bob)) for _ in range(4)]
    wait_until(lambda: Connection.objects.filter(user=bob).count() == 4, what="bob's four sockets")
    before = rss_bytes(server.process.pid)

    count = 1500
    for n in range(count):
        send_text(sender, to=bob, content=BIG_TEXT, client_msg_id=f"big-{n}")
    for _ in range(count):
        sender.recv_type("sent")
    growth = rss_bytes(server.process.pid) - before

    assert growth < GROWTH_BOUND_BYTES, f"daphne grew by {growth / MIB:.1f} MiB"
    wait_until(
        lambda: not Connection.objects.filter(user=bob).exists(), what="the silent sockets to be closed"
    )
    for sock in silent:
        sock.close()
    # Nothing is lost: a client that reads gets every item.
    assert pending_of(bob) == count
    reader = ws_connect(server, bob, max_size=None)
    reader.recv_type("hello")
    assert len(reader.replay_all()) == count


def kernel_send_buffer_max() -> int:
    """The most a socket's send buffer grows to (the last of net.ipv4.tcp_wmem)."""
    try:
        return int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[-1])
    except OSError:
        return 4 * MIB


def test_a_socket_that_stopped_reading_learns_4429_when_it_reads_again(start_server, ws_connect, alice, bob):
    server = start_server(**UNLIMITED)
    sender = ws_connect(server, alice)
    sender.handshake()
    slow = SilentSocket(port=server.port, token=token_of(bob))

    # More than the kernel's send buffer takes plus the 1 MiB the server keeps for a
    # connection before it gives up on it.
    count = (kernel_send_buffer_max() + 2 * MIB) // len(BIG_TEXT)
    for n in range(count):
        send_text(sender, to=bob, content=BIG_TEXT, client_msg_id=f"big-{n}")
    for _ in range(count):
        sender.recv_type("sent")

    assert slow.read_until_close(timeout=20) == 4429


def test_a_flood_of_sync_frames_is_rate_limited_and_costs_bounded_memory(
    start_server, ws_connect, alice, bob
):
    server = start_server()
    for n in range(300):
        message_send(sender_id=alice.pk, to=bob.pk, content=BIG_TEXT, client_msg_id=f"big-{n}")
    flooder = SilentSocket(port=server.port, token=token_of(bob))
    time.sleep(0.5)
    before = rss_bytes(server.process.pid)

    for _ in range(150):
        flooder.send({"type": "sync", "after_seq": 0})
    time.sleep(2)
    growth = rss_bytes(server.process.pid) - before

    assert growth < GROWTH_BOUND_BYTES, f"daphne grew by {growth / MIB:.1f} MiB"
    wait_until(
        lambda: not Connection.objects.filter(user=bob).exists(), what="the flooding socket to be closed"
    )
    flooder.close()
    assert pending_of(bob) == 300


def test_sync_over_its_rate_gets_rate_limited_and_the_connection_stays_open(server, ws_connect, bob):
    client = ws_connect(server, bob)
    client.handshake()
    codes = []
    for _ in range(8):
        client.send({"type": "sync", "after_seq": 0})
    for _ in range(8):
        frame = client.recv(skip=frozenset({"ping", "pong"}))
        codes.append(frame.get("code") or frame["type"])
    assert "rate_limited" in codes
    assert codes.count("offline_messages") <= 6
    client.roundtrip()


def test_deactivating_a_user_closes_their_open_sockets_with_4403(server, ws_connect, bob):
    client = ws_connect(server, bob)
    client.handshake()

    bob.is_active = False
    bob.save()  # as the admin or a shell would, in another process than the server

    started = time.monotonic()
    assert client.close_code(timeout=10) == 4403
    assert time.monotonic() - started < 5
    with pytest.raises(InvalidStatus):
        ws_connect(server, bob)


def test_sends_to_a_deactivated_user_are_refused_whichever_field_names_them(server, ws_connect, alice, bob):
    conversation_id = message_send(sender_id=alice.pk, to=bob.pk, content="hi").message.conversation_id
    bob.is_active = False
    bob.save()
    sender = ws_connect(server, alice)
    sender.handshake()

    send_text(sender, to=bob, content="by to", client_msg_id="to-1")
    sender.send(
        {
            "type": "send",
            "client_msg_id": "cid-1",
            "conversation_id": conversation_id,
            "msg_type": "text",
            "content": "x",
        }
    )

    errors = [sender.recv_type("error") for _ in range(2)]
    assert [(e["code"], e["ref"]) for e in errors] == [("not_found", "to-1"), ("not_found", "cid-1")]
    assert pending_of(bob) == 1  # only the first message, from before
