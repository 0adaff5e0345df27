"""PostgreSQL faults short of an outage (test_outages.py has those): a lock held for 10 s
on a table every send needs must not freeze what needs no database, and two callers
sending inside their own transactions to overlapping users in opposite order cannot
deadlock."""

from __future__ import annotations

import itertools
import threading
import time
import urllib.request

import psycopg
import pytest
from django.db import connection, transaction
from rest_framework.authtoken.models import Token

from messaging.api import send_message_to_conversation
from messaging.models import Message, StreamCounter, StreamItem
from notifications.api import send_notification
from tests.e2e.harness import WsClient, database_url, send_text
from tests.factories import GroupFactory, UserFactory

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's locks"),
]

STALL_SECONDS = 10
# What a server answers without its database: static files, the service worker script.
CHEAP_PATHS = ("/static/ims/ims-client.js", "/static/ims/chat.css", "/sw.js")
HEARTBEAT_SECONDS = 2


def frames_while(
    client: WsClient, seconds: float, *, others: tuple[WsClient, ...] = ()
) -> list[tuple[float, dict]]:
    """Every frame `client` gets for `seconds`, with when it came; it and `others` send
    `ping` twice a second meanwhile (live clients: the server closes one silent for two
    heartbeats)."""
    frames: list[tuple[float, dict]] = []
    began = time.monotonic()
    next_ping = began
    while (now := time.monotonic()) - began < seconds:
        if now >= next_ping:
            for alive in (client, *others):
                alive.send({"type": "ping"})
            next_ping = now + 0.5
        try:
            frame = client.recv(timeout=0.1, skip=frozenset())
        except TimeoutError:
            continue
        frames.append((time.monotonic() - began, frame))
    return frames


def get(url: str) -> tuple[int, float]:
    """The status of a GET and how long it took."""
    began = time.monotonic()
    with urllib.request.urlopen(url, timeout=STALL_SECONDS + 5) as response:  # noqa: S310 (a local URL)
        response.read()
        return response.status, time.monotonic() - began


def test_a_table_locked_for_10_s_stalls_sends_but_not_pings_presence_or_static_files(
    start_server, ws_connect, private_redis
):
    alice, bob, carol = (UserFactory(username=name) for name in ("alice", "bob", "carol"))
    GroupFactory(members=[alice, bob, carol])
    for user in (alice, bob, carol):
        Token.objects.get_or_create(user=user)
    server = start_server(REDIS_URL=private_redis.url, IMS_HEARTBEAT_SECONDS=str(HEARTBEAT_SECONDS))
    watcher, sender, leaving = (ws_connect(server, user) for user in (bob, alice, carol))
    for client in (watcher, sender, leaving):
        client.handshake()
    frames_while(watcher, 0.5, others=(sender, leaving))  # the others' presence, pings so far

    # As a migration's ALTER TABLE would: every seq is taken from this table.
    with psycopg.connect(database_url(), autocommit=False) as locker:
        locker.execute("LOCK TABLE messaging_streamcounter IN ACCESS EXCLUSIVE MODE")
        locked_at = time.monotonic()
        send_text(sender, to=bob, content="written during the stall", client_msg_id="stalled-1")
        seen = frames_while(watcher, 3, others=(sender, leaving))
        leaving.close()  # well into the stall, with the stream poll stuck on the lock
        statics: list[tuple[int, float]] = []
        fetching = threading.Thread(
            target=lambda: statics.extend(get(f"{server.origin}{path}") for path in CHEAP_PATHS), daemon=True
        )
        fetching.start()
        seen += frames_while(watcher, STALL_SECONDS - (time.monotonic() - locked_at), others=(sender,))
        locker.rollback()
    fetching.join(timeout=STALL_SECONDS)

    # What needs no locked table went on: pings on schedule, carol's presence, static files.
    pings = [at for at, frame in seen if frame["type"] == "ping"]
    assert len(pings) >= STALL_SECONDS // HEARTBEAT_SECONDS - 1, seen
    assert max(b - a for a, b in itertools.pairwise(pings)) < HEARTBEAT_SECONDS * 1.5, pings
    offline = [frame for _, frame in seen if frame["type"] == "presence" and not frame["online"]]
    assert offline == [{"type": "presence", "user_id": carol.pk, "online": False}], seen
    assert len(statics) == len(CHEAP_PATHS), statics
    assert all(status == 200 and took < 1 for status, took in statics), statics
    assert not [frame for _, frame in seen if frame["type"] == "message"], "stored before the lock went?"

    # And once the lock is gone, what waited is stored, answered and delivered.
    sent = sender.recv_type("sent", timeout=10)
    assert sent["client_msg_id"] == "stalled-1"
    message = watcher.recv_type("message", timeout=10)
    assert message["data"]["msg_id"] == sent["msg_id"]
    assert "Traceback" not in server.stderr()


def test_sends_in_opposite_order_inside_callers_transactions_never_deadlock():
    """Two callers, each in its own transaction on its own connection, first lock a row
    of their own, then send a group message and a notification to overlapping users
    listed in opposite order, and hold their transaction a moment: each seq counter is
    taken in user-id order whatever the order of the list (messaging.services.stream), so
    one waits for the other and both commit."""
    users = [UserFactory(username=f"user{n}") for n in range(6)]
    for user in users:
        Token.objects.get_or_create(user=user)
    first, second = users[:4], users[2:]
    conversations = [GroupFactory(members=first), GroupFactory(members=second)]
    started = threading.Barrier(2, timeout=10)
    errors: list[BaseException] = []

    def caller(sender, recipients, conversation) -> None:
        try:
            with transaction.atomic():
                # A row of the caller's own app (here: the sender's API token).
                Token.objects.select_for_update().get(user=sender)
                started.wait()
                send_message_to_conversation(sender, conversation, f"from {sender.username}")
                send_notification(recipients, "Build", "green", priority="P2", category="todo")
                time.sleep(0.3)  # the other caller now waits on this one's counter rows
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=caller, args=(first[0], first, conversations[0])),
        threading.Thread(target=caller, args=(second[-1], list(reversed(second)), conversations[1])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert not errors, errors  # a deadlock: PostgreSQL aborts one with DeadlockDetected
    assert Message.objects.count() == 2
    for user in users:
        items = sorted(StreamItem.objects.filter(user=user).values_list("seq", flat=True))
        assert items == list(range(1, len(items) + 1))
        assert StreamCounter.objects.get(user_id=user.pk).last_seq == len(items)
