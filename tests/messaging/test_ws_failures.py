"""When our own side fails (the database restarting, say): no stalled replay, no half-open
connection. The client gets `server_error` and retries, or a close (1011) and reconnects;
either way the replay brings everything back."""

from __future__ import annotations

from unittest import mock

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import OperationalError

from messaging import consumers, delivery
from messaging.models import Connection, PendingItem, User
from messaging.services.messages import message_send
from tests.messaging.wsclient import channel_name_of, ws_connect, ws_isolation  # noqa: F401  (fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("ws_isolation")]

CLOSE_SERVER_ERROR = 1011


@pytest.fixture(autouse=True)
def small_batches(settings):
    settings.IMS_REPLAY_BATCH_SIZE = 2


@database_sync_to_async
def send_messages(sender: User, to: User, count: int, *, prefix: str = "m") -> None:
    for n in range(count):
        message_send(sender_id=sender.pk, to=to.pk, content=f"{prefix} {n}", client_msg_id=f"{prefix}-{n}")


@database_sync_to_async
def connections_of(user: User) -> int:
    return Connection.objects.filter(user=user).count()


def failing_on_call(number: int):
    """A stream page read that fails on its `number`th call (1-based) and works otherwise."""
    real = consumers.DatabaseStreamReader.page
    calls = 0

    async def page(self, **kwargs):
        nonlocal calls
        calls += 1
        if calls == number:
            raise OperationalError("the database is restarting")
        return await real(self, **kwargs)

    return page


async def test_a_failed_replay_page_is_sent_when_the_client_acks_again(alice, bob):
    await send_messages(alice, bob, 3)
    with mock.patch("messaging.consumers.DatabaseStreamReader.page", failing_on_call(2)):
        async with ws_connect(bob, empty_replay=False) as ws:
            first = await ws.receive_type("offline_messages")
            await ws.ack_frame(first)
            assert (await ws.receive_type("error"))["code"] == "server_error"

            await ws.ack_frame(first)  # the client retries: the replay goes on
            last = await ws.receive_type("offline_messages")
            assert ([i["seq"] for i in last["items"]], last["more"]) == ([3], False)


async def test_a_failure_during_the_handshake_closes_the_connection_and_cleans_up(alice, bob):
    await send_messages(alice, bob, 1)
    with mock.patch("messaging.consumers.DatabaseStreamReader.page", failing_on_call(1)):
        async with ws_connect(bob, empty_replay=False) as ws:
            assert await ws.receive_close() == CLOSE_SERVER_ERROR
    assert await connections_of(bob) == 0  # disconnect() ran
    async with ws_connect(bob, empty_replay=False) as ws:
        assert [i["seq"] for i in (await ws.receive_type("offline_messages"))["items"]] == [1]


async def test_a_failed_gap_fill_closes_the_connection_and_the_reconnect_replays_the_gap(alice, bob):
    async with ws_connect(bob) as ws:
        layer = get_channel_layer()
        group, channel = delivery.user_group(bob.pk), await channel_name_of(bob)
        await layer.group_discard(group, channel)
        await send_messages(alice, bob, 1, prefix="dropped")
        await layer.group_add(group, channel)
        with mock.patch("messaging.consumers.DatabaseStreamReader.page", failing_on_call(1)):
            await send_messages(alice, bob, 1, prefix="next")  # its gap cannot be read
            assert await ws.receive_close() == CLOSE_SERVER_ERROR
    assert await connections_of(bob) == 0
    assert await database_sync_to_async(PendingItem.objects.filter(user=bob).count)() == 2
    async with ws_connect(bob, empty_replay=False) as ws:
        page = await ws.receive_type("offline_messages")
        assert [i["seq"] for i in page["items"]] == [1, 2]
