"""Multi-device: every item goes to every connection of its user; one ack is enough."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from messaging.services.messages import message_send
from tests.messaging.wsclient import ws_connect, ws_isolation  # noqa: F401  (fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("ws_isolation")]


@database_sync_to_async
def send(sender, to, client_msg_id: str) -> None:
    message_send(sender_id=sender.pk, to=to.pk, content="hi", client_msg_id=client_msg_id)


async def test_every_connection_of_the_recipient_gets_the_item(alice, bob):
    async with ws_connect(alice) as ws_alice, ws_connect(bob) as phone, ws_connect(bob) as laptop:
        await ws_alice.send_text_message(to=bob.pk, client_msg_id="c-1")
        sent = await ws_alice.receive_type("sent")
        on_phone, on_laptop = await phone.receive_type("message"), await laptop.receive_type("message")
        assert on_phone == on_laptop
        assert on_phone["data"]["msg_id"] == sent["msg_id"]
        await phone.assert_nothing()
        await laptop.assert_nothing()


async def test_an_ack_from_one_connection_stops_the_replay_to_later_ones(alice, bob):
    await send(alice, bob, "c-1")
    await send(alice, bob, "c-2")
    async with ws_connect(bob, empty_replay=False) as phone:
        page = await phone.receive_type("offline_messages")
        assert [i["seq"] for i in page["items"]] == [1, 2]
        async with ws_connect(bob, empty_replay=False) as tablet:  # connected before the ack
            assert [i["seq"] for i in (await tablet.receive_type("offline_messages"))["items"]] == [1, 2]
        await phone.ack([1])
        await phone.assert_alive()
    async with ws_connect(bob, empty_replay=False) as laptop:
        page = await laptop.receive_type("offline_messages")
        assert [i["seq"] for i in page["items"]] == [2]


async def test_a_live_item_acked_on_one_device_is_not_replayed_to_the_next(alice, bob):
    async with ws_connect(bob) as phone, ws_connect(bob) as laptop:
        await send(alice, bob, "c-1")
        message = await phone.receive_type("message")
        await laptop.receive_type("message")
        await phone.ack([message["seq"]])
        await phone.assert_alive()
    async with ws_connect(bob):  # the one empty replay frame
        pass


async def test_a_new_device_resuming_from_zero_sees_the_whole_stream_in_order(alice, bob):
    await send(alice, bob, "a-1")
    await send(bob, alice, "b-1")  # bob's own copy, from another device
    await send(alice, bob, "a-2")
    async with ws_connect(bob, last_seq=0, empty_replay=False) as ws:
        page = await ws.receive_type("offline_messages")
        assert [(i["seq"], i["data"]["client_msg_id"]) for i in page["items"]] == [
            (1, "a-1"),
            (2, "b-1"),
            (3, "a-2"),
        ]
        assert page["items"][1]["data"]["sender_id"] == bob.pk


async def test_a_device_connecting_after_a_send_on_another_sees_it_only_when_resuming(alice, bob):
    async with ws_connect(alice) as phone:
        await phone.send_text_message(to=bob.pk, client_msg_id="c-1")
        sent = await phone.receive_type("sent")
    async with ws_connect(alice):  # own copies are never pending: the one empty frame
        pass
    async with ws_connect(alice, last_seq=0, empty_replay=False) as laptop:
        page = await laptop.receive_type("offline_messages")
        assert [i["data"]["msg_id"] for i in page["items"]] == [sent["msg_id"]]
