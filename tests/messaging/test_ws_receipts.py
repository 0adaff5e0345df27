"""`ack` and `read`: pending entries go, statuses change, the sender gets a `receipt`."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from messaging.models import ItemStatus, PendingItem, StreamItem
from tests.factories import GroupFactory
from tests.messaging.wsclient import ws_connect, ws_isolation  # noqa: F401  (fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("ws_isolation")]


@database_sync_to_async
def item_of(user, seq: int) -> StreamItem:
    return StreamItem.objects.get(user=user, seq=seq)


@database_sync_to_async
def pending_of(user) -> list[int]:
    return sorted(PendingItem.objects.filter(user=user).values_list("seq", flat=True))


async def exchange(ws_sender, ws_recipient, *, to: int, client_msg_id: str) -> tuple[dict, dict]:
    await ws_sender.send_text_message(to=to, client_msg_id=client_msg_id)
    sent = await ws_sender.receive_type("sent")
    message = await ws_recipient.receive_type("message")
    return sent, message


async def test_ack_marks_delivered_drops_the_pending_entry_and_sends_a_delivered_receipt(alice, bob):
    async with ws_connect(alice) as ws_alice, ws_connect(bob) as ws_bob:
        sent, message = await exchange(ws_alice, ws_bob, to=bob.pk, client_msg_id="c-1")
        assert await pending_of(bob) == [message["seq"]]

        await ws_bob.ack([message["seq"]])
        receipt = await ws_alice.receive_type("receipt")

        assert set(receipt) == {"type", "msg_ids", "status", "user_id", "at"}
        assert receipt["msg_ids"] == [sent["msg_id"]]
        assert (receipt["status"], receipt["user_id"]) == ("delivered", bob.pk)
        assert receipt["at"].endswith("Z")
        item = await item_of(bob, message["seq"])
        assert item.status == ItemStatus.DELIVERED
        assert item.delivered_at is not None
        assert await pending_of(bob) == []
        await ws_bob.assert_nothing()  # the recipient is not told about its own ack


async def test_a_repeated_ack_sends_no_second_receipt(alice, bob):
    async with ws_connect(alice) as ws_alice, ws_connect(bob) as ws_bob:
        _, message = await exchange(ws_alice, ws_bob, to=bob.pk, client_msg_id="c-1")
        await ws_bob.ack([message["seq"]])
        await ws_alice.receive_type("receipt")
        await ws_bob.ack([message["seq"]])
        await ws_alice.assert_nothing()


async def test_one_receipt_covers_every_message_acked_together(alice, bob):
    async with ws_connect(alice) as ws_alice, ws_connect(bob) as ws_bob:
        first, m1 = await exchange(ws_alice, ws_bob, to=bob.pk, client_msg_id="c-1")
        second, m2 = await exchange(ws_alice, ws_bob, to=bob.pk, client_msg_id="c-2")
        await ws_bob.ack([m1["seq"], m2["seq"]])
        receipt = await ws_alice.receive_type("receipt")
        assert sorted(receipt["msg_ids"]) == sorted([first["msg_id"], second["msg_id"]])
        await ws_alice.assert_nothing()


async def test_read_marks_read_and_sends_a_read_receipt(alice, bob):
    async with ws_connect(alice) as ws_alice, ws_connect(bob) as ws_bob:
        sent, message = await exchange(ws_alice, ws_bob, to=bob.pk, client_msg_id="c-1")
        await ws_bob.ack([message["seq"]])
        assert (await ws_alice.receive_type("receipt"))["status"] == "delivered"

        await ws_bob.send({"type": "read", "msg_ids": [sent["msg_id"]]})
        receipt = await ws_alice.receive_type("receipt")

        assert (receipt["msg_ids"], receipt["status"], receipt["user_id"]) == (
            [sent["msg_id"]],
            "read",
            bob.pk,
        )
        item = await item_of(bob, message["seq"])
        assert item.status == ItemStatus.READ
        assert item.read_at is not None

        await ws_bob.send({"type": "read", "msg_ids": [sent["msg_id"]]})  # read twice: one receipt
        await ws_alice.assert_nothing()


async def test_read_without_ack_also_ends_the_pending_state(alice, bob):
    async with ws_connect(alice) as ws_alice, ws_connect(bob) as ws_bob:
        sent, message = await exchange(ws_alice, ws_bob, to=bob.pk, client_msg_id="c-1")
        await ws_bob.send({"type": "read", "msg_ids": [sent["msg_id"]]})
        assert (await ws_alice.receive_type("receipt"))["status"] == "read"
        assert await pending_of(bob) == []
        item = await item_of(bob, message["seq"])
        assert item.delivered_at is not None


async def test_receipts_reach_every_connection_of_the_sender(alice, bob):
    async with ws_connect(alice) as phone, ws_connect(alice) as laptop, ws_connect(bob) as ws_bob:
        _, message = await exchange(phone, ws_bob, to=bob.pk, client_msg_id="c-1")
        await laptop.receive_type("message")
        await ws_bob.ack([message["seq"]])
        for ws in (phone, laptop):
            assert (await ws.receive_type("receipt"))["status"] == "delivered"


async def test_each_group_member_sends_its_own_receipt(alice, bob, carol):
    group = await database_sync_to_async(GroupFactory)(members=[alice, bob, carol])
    async with ws_connect(alice) as ws_alice, ws_connect(bob) as ws_bob, ws_connect(carol) as ws_carol:
        await ws_alice.send_text_message(conversation_id=group.pk, client_msg_id="g-1")
        sent = await ws_alice.receive_until("sent", skipping={"presence"})
        for ws in (ws_bob, ws_carol):
            message = await ws.receive_until("message", skipping={"presence"})
            await ws.ack([message["seq"]])
        receipts = [await ws_alice.receive_until("receipt", skipping={"presence"}) for _ in range(2)]
        assert sorted(r["user_id"] for r in receipts) == sorted([bob.pk, carol.pk])
        assert all(r["msg_ids"] == [sent["msg_id"]] for r in receipts)


async def test_acking_ones_own_copy_sends_no_receipt(alice, bob):
    async with ws_connect(alice) as phone, ws_connect(alice) as laptop:
        await phone.send_text_message(to=bob.pk, client_msg_id="c-1")
        await phone.receive_type("sent")
        copy = await laptop.receive_type("message")
        await laptop.ack([copy["seq"]])
        await phone.assert_nothing()
        await laptop.assert_nothing()


async def test_a_recipient_cannot_mark_someone_elses_message_read(alice, bob, carol):
    async with ws_connect(alice) as ws_alice, ws_connect(bob) as ws_bob, ws_connect(carol) as ws_carol:
        sent, _ = await exchange(ws_alice, ws_bob, to=bob.pk, client_msg_id="c-1")
        await ws_carol.send({"type": "read", "msg_ids": [sent["msg_id"]]})
        await ws_carol.assert_alive()
        await ws_alice.assert_nothing()
