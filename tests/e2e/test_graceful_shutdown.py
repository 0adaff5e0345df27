"""SIGTERM to a server (a deploy, a rolling restart) closes every WebSocket with 1001 within
a second or two, answers every send it took, and exits 0 (imsproject/shutdown.py)."""

from __future__ import annotations

import contextlib
import http.client
import signal
import threading
import time

import pytest
from websockets.exceptions import ConnectionClosed

from messaging.models import Connection, Message
from tests.conftest import token_of
from tests.e2e.harness import send_text, wait_until
from tests.e2e.silent_socket import SilentSocket
from tests.factories import GroupFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

UNLIMITED = {"IMS_SEND_RATE_PER_SECOND": "100000", "IMS_SEND_BURST": "100000"}
# PROTOCOL.md: "1001: the server is shutting down or restarting", the client reconnects.
GOING_AWAY = 1001
# What "within a second or two" means here, with room for a busy shared machine.
SHUTDOWN_SECONDS = 3.0


def test_sigterm_closes_every_websocket_with_1001_and_exits_0(start_server, ws_connect, alice, bob):
    server = start_server()
    clients = [ws_connect(server, alice if n % 2 else bob) for n in range(20)]
    for client in clients:
        client.handshake()
    wait_until(lambda: Connection.objects.count() == 20, what="20 Connection rows")

    began = time.monotonic()
    status = server.terminate(timeout=SHUTDOWN_SECONDS + 10)
    took = time.monotonic() - began

    assert status == 0, server.stderr()[-3000:]
    assert took < SHUTDOWN_SECONDS, f"the server took {took:.1f} s to stop:\n{server.stderr()[-3000:]}"
    assert [client.close_code(timeout=1) for client in clients] == [GOING_AWAY] * 20
    # Each consumer's disconnect ran: its Connection row is gone, so nobody shows online.
    assert Connection.objects.count() == 0
    assert "Traceback" not in server.stderr()


def frames_until_closed(client) -> list[dict]:
    """Every frame but noise the client has or receives before the connection ends."""
    frames = []
    with contextlib.suppress(ConnectionClosed):
        while True:
            frames.append(client.recv(skip=frozenset({"ping", "presence", "receipt", "message"})))
    return frames


def send_all(client, to, ids: list[str]) -> None:
    """Send each, a little apart, until done or the connection is gone."""
    with contextlib.suppress(ConnectionClosed):
        for client_msg_id in ids:
            send_text(client, to=to, content=f"text of {client_msg_id}", client_msg_id=client_msg_id)
            time.sleep(0.005)


def test_every_send_taken_before_sigterm_is_answered_and_the_rest_are_retried_once(
    start_server, ws_connect, alice, bob
):
    server = start_server(**UNLIMITED)
    receiver = ws_connect(server, bob)
    receiver.handshake()
    sender = ws_connect(server, alice)
    sender.handshake()

    # The sender keeps sending while the server stops, as a busy client would.
    count = 200
    ids = [f"burst-{n}" for n in range(count)]
    sending = threading.Thread(target=send_all, args=(sender, bob, ids), daemon=True)
    sending.start()
    stored = Message.objects.filter(sender=alice)
    wait_until(lambda: stored.count() >= 20, what="the first sends to be stored")
    assert server.terminate(timeout=SHUTDOWN_SECONDS + 10) == 0, server.stderr()[-3000:]

    frames = frames_until_closed(sender)
    sending.join(timeout=10)
    assert sender.ws.close_code == GOING_AWAY
    accepted = {frame["client_msg_id"]: frame for frame in frames if frame["type"] == "sent"}
    assert 0 < len(accepted) < count, "the signal came too late to interrupt the sends"
    # Stored is answered: nothing was stored behind the client's back.
    assert set(stored.values_list("client_msg_id", flat=True)) == set(accepted)

    server.start()
    sender = ws_connect(server, alice)
    sender.handshake()
    retries = [cid for cid in ids if cid not in accepted]
    for client_msg_id in retries:
        send_text(sender, to=bob, content=f"text of {client_msg_id}", client_msg_id=client_msg_id)
    assert {sender.recv_type("sent")["client_msg_id"] for _ in retries} == set(retries)

    receiver = ws_connect(server, bob)
    receiver.recv_type("hello")
    items = receiver.replay_all()
    assert sorted(item["data"]["client_msg_id"] for item in items) == sorted(ids), "each exactly once"
    assert [item["seq"] for item in items] == list(range(1, count + 1))


def test_a_server_stopped_with_no_connection_exits_0_at_once(start_server):
    server = start_server()
    began = time.monotonic()
    assert server.terminate(timeout=SHUTDOWN_SECONDS + 10) == 0, server.stderr()[-3000:]
    assert time.monotonic() - began < 1.5


def test_presence_goes_offline_on_the_other_server_when_one_stops(
    start_server, ws_connect, private_redis, alice, bob
):
    GroupFactory(members=[alice, bob])
    one = start_server(REDIS_URL=private_redis.url)
    two = start_server(REDIS_URL=private_redis.url)
    watcher = ws_connect(two, bob)
    watcher.handshake()
    leaving = ws_connect(one, alice)
    leaving.handshake()
    assert watcher.recv_type("presence") == {"type": "presence", "user_id": alice.pk, "online": True}

    assert one.terminate(timeout=SHUTDOWN_SECONDS + 10) == 0
    assert leaving.close_code(timeout=1) == GOING_AWAY
    offline = watcher.recv_type("presence", timeout=1)
    assert offline == {"type": "presence", "user_id": alice.pk, "online": False}


def test_an_idle_keepalive_connection_is_closed_at_once_so_no_request_lands_on_a_stopping_server(
    start_server, alice
):
    """As nginx's upstream keep-alive connections: closed when the shutdown starts, not
    when the process is gone (held open here by a client that never answers its close
    frame: a second of autobahn's close timeout)."""
    server = start_server()
    stalling = SilentSocket(port=server.port, token=token_of(alice))
    keepalive = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    keepalive.request("GET", "/sw.js")
    assert keepalive.getresponse().read()

    server.process.send_signal(signal.SIGTERM)
    began = time.monotonic()
    keepalive.sock.settimeout(5)
    assert keepalive.sock.recv(1) == b"", "the server closed it"
    closed_after = time.monotonic() - began

    assert server.process.wait(timeout=SHUTDOWN_SECONDS + 10) == 0
    exited_after = time.monotonic() - began
    # Closed as the shutdown began, not with the process (whose end the silent client's
    # close timeout holds back).
    assert closed_after < exited_after / 2, (closed_after, exited_after)
    stalling.sock.close()
