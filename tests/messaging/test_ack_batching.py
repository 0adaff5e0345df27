"""Acks from many connections are stored together (messaging.batching), each one exactly
as if it had been stored alone."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from messaging.batching import ack_batcher
from messaging.delivery import user_group
from messaging.models import ItemStatus, PendingItem, StreamItem
from messaging.services.messages import message_send
from messaging.services.stream import items_ack_many
from tests.factories import UserFactory


def send(sender, receiver, text: str) -> int:
    """The receiver's seq of a new message."""
    message = message_send(sender_id=sender.pk, to=receiver.pk, content=text).message
    return StreamItem.objects.get(message=message, user=receiver).seq


@pytest.mark.django_db(transaction=True)
def test_acks_of_several_users_in_one_call_each_deliver_their_own_items(alice, bob, carol):
    bob_seq, carol_seq = send(alice, bob, "to bob"), send(alice, carol, "to carol")
    other_bob_seq = send(alice, bob, "stays pending")

    delivered = items_ack_many(acks=[(bob.pk, [bob_seq]), (carol.pk, [carol_seq]), (carol.pk, [carol_seq])])

    assert delivered == 2
    assert set(PendingItem.objects.values_list("user_id", "seq")) == {(bob.pk, other_bob_seq)}
    statuses = dict(StreamItem.objects.filter(is_own=False).values_list("message__content", "status"))
    assert statuses == {"to bob": "delivered", "to carol": "delivered", "stays pending": "sent"}


@pytest.mark.django_db(transaction=True)
def test_a_batch_sends_the_sender_one_receipt_per_reader(alice, bob, carol):
    seqs = {bob.pk: send(alice, bob, "b"), carol.pk: send(alice, carol, "c")}
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(user_group(alice.pk), channel)

    items_ack_many(acks=[(user_id, [seq]) for user_id, seq in seqs.items()])

    receipts = [async_to_sync(layer.receive)(channel)["frame"] for _ in range(2)]
    assert sorted(r["user_id"] for r in receipts) == sorted(seqs)
    assert all(r["status"] == "delivered" and len(r["msg_ids"]) == 1 for r in receipts)


@pytest.mark.django_db(transaction=True)
async def test_concurrent_acks_are_all_stored_before_each_returns():
    users = await database_sync_to_async(lambda: [UserFactory() for _ in range(21)])()
    sender, readers = users[0], users[1:]
    seqs = await database_sync_to_async(lambda: [send(sender, r, f"m{r.pk}") for r in readers])()

    async def ack_and_check(reader, seq) -> str:
        await ack_batcher().submit((reader.pk, [seq]))
        item = await StreamItem.objects.aget(user=reader, seq=seq)
        return item.status

    statuses = await asyncio.gather(*(ack_and_check(r, s) for r, s in zip(readers, seqs, strict=True)))

    assert statuses == [ItemStatus.DELIVERED] * len(readers)
    assert not await PendingItem.objects.filter(user__in=readers).aexists()
