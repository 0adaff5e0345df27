"""`send`: stored, answered with `sent`, delivered once to every recipient connection and
to the sender's other connections; retries, refusals and the rate limit."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async

from messaging.models import Message, PendingItem, StreamItem
from tests.factories import GroupFactory
from tests.messaging.wsclient import ws_connect, ws_isolation  # noqa: F401  (fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("ws_isolation")]

ISO_UTC = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$"


@database_sync_to_async
def counts() -> tuple[int, int, int]:
    return Message.objects.count(), StreamItem.objects.count(), PendingItem.objects.count()


@database_sync_to_async
def make_group(*members):
    return GroupFactory(members=list(members))


async def test_send_is_answered_with_sent_and_delivered_to_the_recipient(alice, bob):
    async with ws_connect(alice) as ws_alice, ws_connect(bob) as ws_bob:
        await ws_alice.send_text_message(to=bob.pk, content="hello bob", client_msg_id="c-1")

        sent = await ws_alice.receive_type("sent")
        delivered = await ws_bob.receive_type("message")

        assert set(sent) == {"type", "client_msg_id", "msg_id", "seq", "created_at"}
        assert sent["client_msg_id"] == "c-1"
        assert isinstance(sent["msg_id"], str)
        assert sent["seq"] == 1  # the first item of alice's own stream
        assert delivered["seq"] == 1  # ... and of bob's
        message = await database_sync_to_async(Message.objects.get)()
        assert delivered["data"] == {
            "msg_id": sent["msg_id"],
            "client_msg_id": "c-1",
            "conversation_id": message.conversation_id,
            "sender_id": alice.pk,
            "receiver_id": bob.pk,
            "msg_type": "text",
            "content": "hello bob",
            "mentions": [],
            "created_at": sent["created_at"],
        }
        assert sent["created_at"].endswith("Z")
        # The sending connection has it as `sent`, never again as `message`.
        await ws_alice.assert_nothing()
        await ws_bob.assert_nothing()
    assert await counts() == (1, 2, 1)  # one message, an item in each stream, bob's pending


async def test_the_senders_other_connections_get_the_message_but_the_sending_one_does_not(alice, bob):
    async with ws_connect(alice) as phone, ws_connect(alice) as laptop, ws_connect(bob) as ws_bob:
        await phone.send_text_message(to=bob.pk, client_msg_id="c-1")
        sent = await phone.receive_type("sent")

        copy = await laptop.receive_type("message")
        assert copy["seq"] == sent["seq"]
        assert copy["data"]["msg_id"] == sent["msg_id"]
        assert copy["data"]["sender_id"] == alice.pk
        await ws_bob.receive_type("message")

        # A second message: still nothing but `sent` on the phone, in seq order elsewhere.
        await phone.send_text_message(to=bob.pk, client_msg_id="c-2")
        assert (await phone.receive_type("sent"))["seq"] == sent["seq"] + 1
        assert (await laptop.receive_type("message"))["seq"] == sent["seq"] + 1
        await phone.assert_nothing()
        await laptop.assert_nothing()
    # The sender's own copy is never pending.
    assert await database_sync_to_async(PendingItem.objects.filter(user=alice).count)() == 0


async def test_a_retry_with_the_same_client_msg_id_answers_the_same_msg_id_and_delivers_nothing_twice(
    alice, bob
):
    async with ws_connect(alice) as ws_alice, ws_connect(alice) as other, ws_connect(bob) as ws_bob:
        await ws_alice.send_text_message(to=bob.pk, content="once", client_msg_id="retry-me")
        first = await ws_alice.receive_type("sent")
        await ws_bob.receive_type("message")
        await other.receive_type("message")

        await ws_alice.send_text_message(to=bob.pk, content="once", client_msg_id="retry-me")
        second = await ws_alice.receive_type("sent")

        assert second == first
        await ws_bob.assert_nothing()
        await other.assert_nothing()
        await ws_alice.assert_nothing()
    assert await counts() == (1, 2, 1)


async def test_a_retry_on_a_new_connection_answers_the_same_msg_id(alice, bob):
    async with ws_connect(alice) as ws_alice:
        await ws_alice.send_text_message(to=bob.pk, client_msg_id="lost-answer")
        first = await ws_alice.receive_type("sent")
    async with ws_connect(alice) as ws_alice:
        await ws_alice.send_text_message(to=bob.pk, client_msg_id="lost-answer")
        assert await ws_alice.receive_type("sent") == first
        await ws_alice.assert_nothing()
    assert await counts() == (1, 2, 1)


async def test_a_group_send_reaches_every_other_member(alice, bob, carol):
    group = await make_group(alice, bob, carol)
    async with ws_connect(alice) as ws_alice, ws_connect(bob) as ws_bob, ws_connect(carol) as ws_carol:
        await ws_alice.send(
            {
                "type": "send",
                "client_msg_id": "g-1",
                "conversation_id": group.pk,
                "msg_type": "text",
                "content": "hi all @bob",
                "mentions": [bob.pk],
            }
        )
        sent = await ws_alice.receive_until("sent", skipping={"presence"})
        for ws in (ws_bob, ws_carol):
            frame = await ws.receive_until("message", skipping={"presence"})
            assert frame["data"]["msg_id"] == sent["msg_id"]
            assert frame["data"]["conversation_id"] == group.pk
            assert frame["data"]["receiver_id"] is None
            assert frame["data"]["mentions"] == [bob.pk]
        await ws_alice.assert_nothing(ignoring={"presence"})
    assert await counts() == (1, 3, 2)


@pytest.mark.parametrize("msg_type", ["image", "file"])
async def test_attachments_travel_as_an_object(alice, bob, msg_type):
    content = {"url": "https://files.example/a.png", "name": "a.png", "size": 1234, "mime": "image/png"}
    async with ws_connect(alice) as ws_alice, ws_connect(bob) as ws_bob:
        await ws_alice.send(
            {"type": "send", "client_msg_id": "f-1", "to": bob.pk, "msg_type": msg_type, "content": content}
        )
        await ws_alice.receive_type("sent")
        data = (await ws_bob.receive_type("message"))["data"]
        assert data["msg_type"] == msg_type
        assert data["content"] == content


async def test_a_send_to_a_conversation_of_others_is_forbidden_and_stores_nothing(alice, bob, carol):
    group = await make_group(bob, carol)
    async with ws_connect(alice) as ws_alice, ws_connect(bob) as ws_bob:
        await ws_alice.send_text_message(conversation_id=group.pk, client_msg_id="intruder")

        error = await ws_alice.receive_type("error")

        assert error["code"] == "forbidden"
        assert error["ref"] == "intruder"
        assert error["detail"]
        await ws_bob.assert_nothing()
        await ws_alice.assert_alive()
    assert await counts() == (0, 0, 0)


async def test_a_send_to_an_unknown_conversation_is_not_found_and_stores_nothing(alice):
    async with ws_connect(alice) as ws:
        await ws.send_text_message(conversation_id=999_999, client_msg_id="nowhere")
        error = await ws.receive_type("error")
        assert (error["code"], error["ref"]) == ("not_found", "nowhere")
        await ws.assert_alive()
    assert await counts() == (0, 0, 0)


async def test_a_send_to_an_unknown_user_is_not_found_and_stores_nothing(alice):
    async with ws_connect(alice) as ws:
        await ws.send_text_message(to=999_999, client_msg_id="nobody")
        error = await ws.receive_type("error")
        assert (error["code"], error["ref"]) == ("not_found", "nobody")
        await ws.assert_alive()
    assert await counts() == (0, 0, 0)


async def test_a_refused_send_can_be_retried_with_the_same_client_msg_id_once_allowed(alice, bob, carol):
    group = await make_group(bob, carol)
    async with ws_connect(alice) as ws:
        await ws.send_text_message(conversation_id=group.pk, client_msg_id="c-1")
        assert (await ws.receive_type("error"))["code"] == "forbidden"
        # Nothing was stored under c-1, so it is still free for a message that is allowed.
        await ws.send_text_message(to=bob.pk, client_msg_id="c-1")
        assert (await ws.receive_type("sent"))["client_msg_id"] == "c-1"


async def test_sends_over_the_rate_limit_are_refused_store_nothing_and_keep_the_connection(
    alice, bob, settings
):
    settings.IMS_SEND_BURST = 3
    settings.IMS_SEND_RATE_PER_SECOND = 0.5
    async with ws_connect(alice) as ws:
        for n in range(5):
            await ws.send_text_message(to=bob.pk, client_msg_id=f"burst-{n}")
        answers = [await ws.receive() for _ in range(5)]

        assert [a["type"] for a in answers] == ["sent", "sent", "sent", "error", "error"]
        assert [a["code"] for a in answers[3:]] == ["rate_limited", "rate_limited"]
        assert [a["ref"] for a in answers[3:]] == ["burst-3", "burst-4"]
        await ws.assert_alive()
    assert (await counts())[0] == 3
    stored = await database_sync_to_async(
        lambda: set(Message.objects.values_list("client_msg_id", flat=True))
    )()
    assert stored == {"burst-0", "burst-1", "burst-2"}


async def test_the_rate_limit_refills_over_time(alice, bob, settings):
    settings.IMS_SEND_BURST = 1
    settings.IMS_SEND_RATE_PER_SECOND = 5
    async with ws_connect(alice) as ws:
        await ws.send_text_message(to=bob.pk, client_msg_id="a")
        await ws.send_text_message(to=bob.pk, client_msg_id="b")
        assert (await ws.receive())["type"] == "sent"
        assert (await ws.receive())["code"] == "rate_limited"
        await asyncio.sleep(0.3)
        await ws.send_text_message(to=bob.pk, client_msg_id="b")
        assert (await ws.receive_type("sent"))["client_msg_id"] == "b"


async def test_the_rate_limit_is_per_connection(alice, bob, settings):
    settings.IMS_SEND_BURST = 1
    settings.IMS_SEND_RATE_PER_SECOND = 0.1
    async with ws_connect(alice) as first, ws_connect(alice) as second:
        await first.send_text_message(to=bob.pk, client_msg_id="a")
        assert (await first.receive())["type"] == "sent"
        await first.send_text_message(to=bob.pk, client_msg_id="b")
        assert (await first.receive())["code"] == "rate_limited"
        await second.send_text_message(to=bob.pk, client_msg_id="c")
        assert (await second.receive_until("sent"))["client_msg_id"] == "c"


async def test_text_travels_unchanged_whatever_its_characters(alice, bob):
    text = 'héllo 👋 <b>"quoted"</b> \\ \u2028 末'
    async with ws_connect(alice) as ws_alice, ws_connect(bob) as ws_bob:
        await ws_alice.send_text_message(to=bob.pk, content=text, client_msg_id="ü-1")
        assert (await ws_alice.receive_type("sent"))["client_msg_id"] == "ü-1"
        assert (await ws_bob.receive_type("message"))["data"]["content"] == text


async def test_a_send_to_a_direct_conversation_by_its_id_names_the_receiver(alice, bob):
    async with ws_connect(alice) as ws_alice, ws_connect(bob) as ws_bob:
        await ws_alice.send_text_message(to=bob.pk, client_msg_id="c-1")
        first = await ws_bob.receive_type("message")
        await ws_alice.receive_type("sent")
        await ws_alice.send_text_message(
            conversation_id=first["data"]["conversation_id"], client_msg_id="c-2"
        )
        await ws_alice.receive_type("sent")
        assert (await ws_bob.receive_type("message"))["data"]["receiver_id"] == bob.pk
