"""Many sends stored together (messages_send, and the consumers' send batcher) behave as
the same sends one by one."""

from __future__ import annotations

import asyncio
from unittest import mock

import pytest
from channels.db import database_sync_to_async
from django.db import DataError, connection
from django.test.utils import CaptureQueriesContext

from messaging.batching import send_batcher
from messaging.errors import BadRequest, Forbidden, NotFound
from messaging.models import Message, PendingItem, StreamItem
from messaging.services import messages as messages_module
from messaging.services.messages import SendCommand, SendResult, messages_send
from tests.factories import GroupFactory, UserFactory


def text(sender, *, to=None, conversation=None, content="hi", key=None, **extra) -> SendCommand:
    return SendCommand(
        sender_id=sender.pk,
        to=to.pk if to else None,
        conversation_id=conversation.pk if conversation else None,
        content=content,
        client_msg_id=key,
        **extra,
    )


@pytest.mark.django_db
def test_each_command_gets_its_own_outcome_and_bad_ones_store_nothing(alice, bob, carol):
    strangers = GroupFactory(members=[bob, carol])
    outcomes = messages_send(
        commands=[
            text(alice, to=bob, content="first", key="a1"),
            text(alice, to=bob, content="   ", key="a2"),
            text(alice, conversation=strangers, key="a3"),
            text(alice, to=bob, content="second", key="a4"),
            SendCommand(sender_id=alice.pk, to=999_999, content="x", client_msg_id="a5"),
            text(alice, to=bob, content="third", key="a6", mentions=[carol.pk]),
        ]
    )

    assert [type(outcome) for outcome in outcomes] == [
        SendResult,
        BadRequest,
        Forbidden,
        SendResult,
        NotFound,
        BadRequest,
    ]
    assert list(Message.objects.order_by("id").values_list("content", flat=True)) == ["first", "second"]
    bob_items = StreamItem.objects.filter(user=bob).order_by("seq")
    assert [(item.seq, item.message.content) for item in bob_items] == [(1, "first"), (2, "second")]
    assert PendingItem.objects.filter(user=bob).count() == 2


@pytest.mark.django_db
def test_the_same_client_msg_id_twice_in_one_batch_is_stored_once(alice, bob):
    first, again = messages_send(commands=[text(alice, to=bob, key="dup"), text(alice, to=bob, key="dup")])

    assert first.message.pk == again.message.pk
    assert (first.created, again.created) == (True, False)
    assert first.sender_seq == again.sender_seq
    assert StreamItem.objects.filter(user=bob).count() == 1


@pytest.mark.django_db
def test_a_batch_of_many_messages_takes_the_statements_of_one(alice, bob, carol):
    group = GroupFactory(members=[alice, bob, carol])
    messages_send(commands=[text(alice, conversation=group, key="warm")])

    def statements(count: int) -> int:
        commands = [text(alice, conversation=group, key=f"{count}-{n}") for n in range(count)]
        with CaptureQueriesContext(connection) as queries:
            messages_send(commands=commands)
        return len(queries.captured_queries)

    assert statements(1) == statements(50)


@pytest.mark.django_db(transaction=True)
async def test_concurrent_sends_through_the_batcher_give_the_recipient_gap_free_seqs():
    bob, *senders = await database_sync_to_async(lambda: [UserFactory() for _ in range(16)])()

    results = await asyncio.gather(
        *(send_batcher().submit(text(sender, to=bob, key=f"k{sender.pk}")) for sender in senders)
    )

    assert all(isinstance(result, SendResult) and result.created for result in results)
    seqs = [seq async for seq in StreamItem.objects.filter(user=bob).values_list("seq", flat=True)]
    assert sorted(seqs) == list(range(1, len(senders) + 1))


@pytest.mark.django_db(transaction=True)
async def test_a_bad_send_in_a_batch_raises_for_its_sender_only(alice, bob):
    good, bad = await asyncio.gather(
        send_batcher().submit(text(alice, to=bob, key="good")),
        send_batcher().submit(text(alice, to=alice, key="self")),
        return_exceptions=True,
    )

    assert isinstance(good, SendResult)
    assert isinstance(bad, BadRequest)
    assert await Message.objects.acount() == 1


@pytest.mark.django_db(transaction=True)
async def test_a_send_that_fails_to_store_fails_alone_while_others_send_at_the_same_moment(alice, bob, carol):
    """A failure no validation foresaw (a database error on one row) used to fail every
    send of the batch it landed in."""
    real_entry = messages_module._stream_entry

    def entry_or_failure(message, member_ids):
        if message.content == "poison":
            raise DataError("this row cannot be stored")
        return real_entry(message, member_ids)

    with mock.patch("messaging.services.messages._stream_entry", entry_or_failure):
        outcomes = await asyncio.gather(
            *(
                send_batcher().submit(text(carol, to=bob, key=f"ok-{n}", content=f"ordinary {n}"))
                for n in range(90)
            ),
            *(send_batcher().submit(text(alice, to=bob, key=f"bad-{n}", content="poison")) for n in range(6)),
            return_exceptions=True,
        )

    ordinary, poisoned = outcomes[:90], outcomes[90:]
    assert all(isinstance(outcome, SendResult) for outcome in ordinary)
    assert all(isinstance(outcome, DataError) for outcome in poisoned)
    assert await Message.objects.filter(sender=carol).acount() == 90
    assert await Message.objects.filter(sender=alice).acount() == 0
