"""Heartbeat and dead peers: a ping every heartbeat_s, close 4408 after two silent ones."""

from __future__ import annotations

import asyncio
from unittest import mock

import pytest
from channels.db import database_sync_to_async
from django.db import OperationalError

from messaging.models import Connection, PendingItem
from messaging.services.messages import message_send
from tests.messaging.wsclient import ws_connect, ws_isolation  # noqa: F401  (fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("ws_isolation")]

HEARTBEAT_SECONDS = 0.5


@pytest.fixture(autouse=True)
def fast_heartbeat(settings):
    settings.IMS_HEARTBEAT_SECONDS = HEARTBEAT_SECONDS


async def test_the_server_pings_every_heartbeat(alice):
    async with ws_connect(alice) as ws:
        assert ws.hello["heartbeat_s"] == HEARTBEAT_SECONDS
        loop = asyncio.get_running_loop()
        started = loop.time()
        first = await ws.receive_type("ping", timeout=5)
        assert first["ts"].endswith("Z")
        await ws.send({"type": "pong"})
        await ws.receive_type("ping", timeout=5)
        # Two pings, about a heartbeat apart (generous bounds: a busy 2-core machine).
        assert 2 * HEARTBEAT_SECONDS * 0.8 <= loop.time() - started < 5


async def test_a_silent_client_is_closed_with_4408(alice):
    async with ws_connect(alice) as ws:
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await ws.receive_close(timeout=5) == 4408
        assert loop.time() - started >= 2 * HEARTBEAT_SECONDS * 0.8


async def test_a_client_that_keeps_talking_is_not_closed(alice):
    async with ws_connect(alice) as ws:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5 * HEARTBEAT_SECONDS
        while loop.time() < deadline:
            await ws.send({"type": "ping"})
            await ws.receive_until("pong", skipping={"ping"})
            await asyncio.sleep(HEARTBEAT_SECONDS / 2)
        await ws.send({"type": "ping"})
        await ws.receive_until("pong", skipping={"ping"})


async def test_answering_pings_with_pong_keeps_the_connection(alice):
    async with ws_connect(alice) as ws:
        for _ in range(4):  # four heartbeats: twice the silence that closes
            await ws.receive_type("ping", timeout=5)
            await ws.send({"type": "pong"})
        await ws.send({"type": "ping"})
        await ws.receive_until("pong", skipping={"ping"})


async def test_pending_items_stay_pending_when_a_silent_peer_is_closed(alice, bob):
    await database_sync_to_async(message_send)(sender_id=alice.pk, to=bob.pk, content="hi", client_msg_id="1")
    async with ws_connect(bob, empty_replay=False) as ws:
        page = await ws.receive_type("offline_messages")
        assert len(page["items"]) == 1
        assert await ws.receive_close(timeout=5) == 4408
    assert await database_sync_to_async(PendingItem.objects.filter(user=bob).count)() == 1


async def test_a_closed_silent_peer_leaves_no_connection_row(alice):
    async with ws_connect(alice) as ws:
        assert await ws.receive_close(timeout=5) == 4408
    assert await database_sync_to_async(Connection.objects.filter(user=alice).exists)() is False


async def test_a_database_error_while_recording_a_heartbeat_does_not_stop_the_heartbeat(alice):
    failing_once = mock.Mock(side_effect=[OperationalError("server closed the connection"), None, None, None])
    with mock.patch("messaging.batching.connections_heartbeat", failing_once):
        async with ws_connect(alice) as ws:
            await ws.receive_type("ping", timeout=5)
            await ws.send({"type": "pong"})
            await ws.receive_type("ping", timeout=5)  # still beating after the failure
            assert await ws.receive_close(timeout=5) == 4408  # and still closing the silent
    assert failing_once.call_count >= 2
