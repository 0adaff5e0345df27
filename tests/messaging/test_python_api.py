"""messaging.api, the Python API other Django apps call: send inside your own transaction,
pushed only once it commits.

The channel-layer tests listen on the layer the project is configured with (in memory, or
Redis when REDIS_URL is set): a test channel joins the group `user.<id>`, as every consumer
of that user does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import connection, transaction

from messaging import delivery, frames
from messaging.api import (
    asend_message,
    asend_message_to_conversation,
    send_message,
    send_message_to_conversation,
)
from messaging.errors import BadRequest, Forbidden, IMSError, NotFound
from messaging.models import Conversation, Message, PendingItem, StreamItem, User
from messaging.services.conversations import conversation_create_group

Listen = Callable[[User], Awaitable[str]]


class RolledBack(Exception):
    """Raised inside a caller's transaction.atomic() to roll it back."""


def stored() -> tuple[int, int, int, int]:
    return (
        Message.objects.count(),
        StreamItem.objects.count(),
        PendingItem.objects.count(),
        Conversation.objects.count(),
    )


# --- sync API, no channel layer ----------------------------------------------------------


@pytest.mark.django_db
def test_send_message_takes_users(alice, bob):
    message = send_message(alice, bob, "The build is green")

    assert isinstance(message, Message)
    assert (message.sender_id, message.receiver_id, message.content) == (
        alice.pk,
        bob.pk,
        "The build is green",
    )
    assert StreamItem.objects.filter(message=message).count() == 2


@pytest.mark.django_db
def test_send_message_takes_user_ids_and_attachments(alice, bob):
    content = {"url": "https://files.example/r.pdf", "name": "r.pdf", "size": 10, "mime": "application/pdf"}

    message = send_message(alice.pk, bob.pk, content, "file")

    assert (message.msg_type, message.content) == ("file", content)


@pytest.mark.django_db
def test_send_message_to_conversation_takes_a_conversation_or_its_id(alice, bob, carol):
    group = conversation_create_group(creator_id=alice.pk, title="Team", member_ids=[bob.pk, carol.pk])

    by_object = send_message_to_conversation(alice, group, "one", mentions=[bob.pk])
    by_id = send_message_to_conversation(carol.pk, group.pk, "two")

    assert by_object.conversation_id == by_id.conversation_id == group.pk
    assert by_object.mentions == [bob.pk]
    assert StreamItem.objects.filter(message=by_id).count() == 3


@pytest.mark.django_db
def test_send_message_with_a_used_client_msg_id_returns_that_message(alice, bob):
    first = send_message(alice, bob, "once", client_msg_id="build-42")
    again = send_message(alice, bob, "once", client_msg_id="build-42")

    assert again.pk == first.pk
    assert Message.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda a, b, c, g: send_message(a, a, "to myself"), BadRequest),
        (lambda a, b, c, g: send_message(a, 987_654, "nobody"), NotFound),
        (lambda a, b, c, g: send_message(a, b, ""), BadRequest),
        (lambda a, b, c, g: send_message(a, b, "hi", "video"), BadRequest),
        (lambda a, b, c, g: send_message(a, b, "hi", mentions=[c.pk]), BadRequest),
        (lambda a, b, c, g: send_message_to_conversation(c, g, "let me in"), Forbidden),
        (lambda a, b, c, g: send_message_to_conversation(a, 987_654, "hi"), NotFound),
    ],
    ids=[
        "to self",
        "unknown user",
        "empty text",
        "bad msg_type",
        "stranger mentioned",
        "non-member",
        "no such",
    ],
)
def test_bad_calls_raise_an_ims_error_and_store_nothing(alice, bob, carol, call, error):
    group = conversation_create_group(creator_id=alice.pk, title="Pair", member_ids=[bob.pk])
    before = stored()

    with pytest.raises(error) as raised:
        call(alice, bob, carol, group)

    assert isinstance(raised.value, IMSError)
    assert stored() == before


@pytest.mark.django_db
def test_a_send_in_a_callers_transaction_that_rolls_back_stores_nothing(alice, bob):
    def approve_expense() -> None:
        with transaction.atomic():
            send_message(alice, bob, "Your expense report was approved")
            raise RolledBack

    with pytest.raises(RolledBack):
        approve_expense()

    assert stored() == (0, 0, 0, 0)


@pytest.mark.django_db
def test_a_failed_send_leaves_the_callers_transaction_usable(alice, bob):
    with transaction.atomic():
        alice.display_name = "Alice A."
        alice.save()
        with pytest.raises(BadRequest):
            send_message(alice, bob, "")
        send_message(alice, bob, "fixed it")

    alice.refresh_from_db()
    assert alice.display_name == "Alice A."
    assert Message.objects.get().content == "fixed it"


# --- what reaches the channel layer ------------------------------------------------------


async def next_event(channel: str, *, timeout: float = 3.0) -> dict:
    return await asyncio.wait_for(get_channel_layer().receive(channel), timeout)


async def assert_nothing_arrives(channel: str, *, wait: float = 0.5) -> None:
    try:
        event = await asyncio.wait_for(get_channel_layer().receive(channel), wait)
    except TimeoutError:
        return
    raise AssertionError(f"expected nothing on the channel layer, got {event}")


@pytest.fixture
async def listen() -> AsyncIterator[Listen]:
    """listen(user) -> a fresh channel in the group of that user, left again afterwards.

    Also closes the worker thread's database connection at the end, or PostgreSQL could
    not drop the test database.
    """
    layer = get_channel_layer()
    joined: list[tuple[str, str]] = []

    async def join(user: User) -> str:
        channel = await layer.new_channel()
        await layer.group_add(delivery.user_group(user.pk), channel)
        joined.append((delivery.user_group(user.pk), channel))
        return channel

    yield join
    for group, channel in joined:
        await layer.group_discard(group, channel)
    # connection.close here would bind the event loop thread's connection; look it up there.
    await sync_to_async(lambda: connection.close())()


@pytest.mark.django_db(transaction=True)
async def test_a_rolled_back_send_publishes_nothing(alice, bob, listen):
    bobs_tab, alices_tab = await listen(bob), await listen(alice)

    @database_sync_to_async
    def approve_expense() -> None:
        with transaction.atomic():
            send_message(alice, bob, "Your expense report was approved")
            raise RolledBack

    with pytest.raises(RolledBack):
        await approve_expense()

    await assert_nothing_arrives(bobs_tab)
    await assert_nothing_arrives(alices_tab, wait=0.1)
    assert await database_sync_to_async(stored)() == (0, 0, 0, 0)


@pytest.mark.django_db(transaction=True)
async def test_a_committed_send_publishes_the_item_only_after_commit(alice, bob, listen):
    bobs_tab = await listen(bob)

    @database_sync_to_async
    def approve_expense() -> tuple[Message, list[dict]]:
        with transaction.atomic():
            message = send_message(alice, bob, "Your expense report was approved")
            # Still inside the caller's transaction: the layer has nothing yet.
            early = async_to_sync(drain)(bobs_tab)
        return message, early

    message, early = await approve_expense()

    assert early == []
    event = await next_event(bobs_tab)
    assert event == {
        "type": delivery.ITEM_EVENT,
        "seq": 1,
        "frame": {"type": "message", "seq": 1, "data": frames.message_data(message)},
    }
    await assert_nothing_arrives(bobs_tab, wait=0.2)


async def drain(channel: str) -> list[dict]:
    events = []
    while True:
        try:
            events.append(await asyncio.wait_for(get_channel_layer().receive(channel), 0.3))
        except TimeoutError:
            return events


@pytest.mark.django_db(transaction=True)
async def test_the_sender_is_published_its_own_copy(alice, bob, listen):
    alices_tab = await listen(alice)

    message = await asend_message(alice, bob, "hi")

    event = await next_event(alices_tab)
    assert (event["seq"], event["frame"]["data"]["msg_id"]) == (1, message.msg_id)


@pytest.mark.django_db(transaction=True)
async def test_asend_message_works_from_async_code(alice, bob, listen):
    bobs_tab = await listen(bob)

    message = await asend_message(alice, bob.pk, "from an async view", client_msg_id="a-1")
    again = await asend_message(alice, bob.pk, "from an async view", client_msg_id="a-1")

    assert again.pk == message.pk
    event = await next_event(bobs_tab)
    assert event["frame"]["data"]["content"] == "from an async view"
    await assert_nothing_arrives(bobs_tab)  # the retry delivered nothing again


@pytest.mark.django_db(transaction=True)
async def test_asend_message_to_conversation_reaches_every_member(alice, bob, carol, listen):
    group = await database_sync_to_async(conversation_create_group)(
        creator_id=alice.pk, title="Team", member_ids=[bob.pk, carol.pk]
    )
    tabs = {user.pk: await listen(user) for user in (alice, bob, carol)}

    message = await asend_message_to_conversation(alice, group, "standup in 5", mentions=[carol.pk])

    for user_id, tab in tabs.items():
        event = await next_event(tab)
        assert event["frame"]["data"]["msg_id"] == message.msg_id, user_id
        assert event["frame"]["data"]["mentions"] == [carol.pk]


@pytest.mark.django_db(transaction=True)
async def test_async_twins_raise_the_same_errors_and_store_nothing(alice, bob, carol, listen):
    group = await database_sync_to_async(conversation_create_group)(
        creator_id=alice.pk, title="Pair", member_ids=[bob.pk]
    )
    bobs_tab = await listen(bob)

    with pytest.raises(NotFound):
        await asend_message(alice, 987_654, "nobody")
    with pytest.raises(Forbidden):
        await asend_message_to_conversation(carol, group.pk, "let me in")

    await assert_nothing_arrives(bobs_tab)
    assert await database_sync_to_async(Message.objects.count)() == 0
