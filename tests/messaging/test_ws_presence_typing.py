"""`presence` on connect and last disconnect; `typing` relayed to the other members only."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from messaging.models import Message, StreamItem
from messaging.services.conversations import conversation_get_or_create_direct
from tests.factories import GroupFactory
from tests.messaging.wsclient import ws_connect, ws_isolation  # noqa: F401  (fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("ws_isolation")]


@database_sync_to_async
def direct(user, peer):
    return conversation_get_or_create_direct(user_id=user.pk, peer_id=peer.pk)


@database_sync_to_async
def group_of(*members):
    return GroupFactory(members=list(members))


# --- presence -------------------------------------------------------------------------


async def test_peers_see_a_user_come_online_and_go_offline(alice, bob):
    await direct(alice, bob)
    async with ws_connect(alice) as ws_alice:
        async with ws_connect(bob) as ws_bob:
            assert await ws_alice.receive() == {"type": "presence", "user_id": bob.pk, "online": True}
            await ws_bob.assert_nothing()  # never told about itself
        assert await ws_alice.receive() == {"type": "presence", "user_id": bob.pk, "online": False}
        await ws_alice.assert_nothing()


async def test_presence_changes_only_with_the_first_and_the_last_connection(alice, bob):
    await direct(alice, bob)
    async with ws_connect(alice) as ws_alice:
        async with ws_connect(bob):
            assert (await ws_alice.receive())["online"] is True
            async with ws_connect(bob):
                await ws_alice.assert_nothing()  # bob was online already
            await ws_alice.assert_nothing()  # bob is still online on the first
        assert (await ws_alice.receive())["online"] is False


async def test_presence_goes_to_every_connection_of_the_peer(alice, bob):
    await direct(alice, bob)
    async with ws_connect(alice) as phone, ws_connect(alice) as laptop, ws_connect(bob):
        for ws in (phone, laptop):
            assert await ws.receive() == {"type": "presence", "user_id": bob.pk, "online": True}


async def test_users_who_share_no_conversation_see_no_presence(alice, bob, carol):
    await direct(alice, bob)
    async with ws_connect(carol) as ws_carol:
        async with ws_connect(alice):
            pass
        await ws_carol.assert_nothing()


async def test_group_members_see_presence(alice, bob, carol):
    await group_of(alice, bob, carol)
    async with ws_connect(bob) as ws_bob, ws_connect(carol) as ws_carol:
        await ws_bob.receive_type("presence")  # carol
        async with ws_connect(alice):
            for ws in (ws_bob, ws_carol):
                assert await ws.receive() == {"type": "presence", "user_id": alice.pk, "online": True}
        for ws in (ws_bob, ws_carol):
            assert await ws.receive() == {"type": "presence", "user_id": alice.pk, "online": False}


# --- typing ---------------------------------------------------------------------------


async def test_typing_is_relayed_to_the_other_members_only(alice, bob, carol):
    group = await group_of(alice, bob, carol)
    async with (
        ws_connect(alice) as ws_alice,
        ws_connect(alice) as alice_laptop,
        ws_connect(bob) as ws_bob,
        ws_connect(carol) as ws_carol,
    ):
        await ws_alice.send({"type": "typing", "conversation_id": group.pk})

        for ws in (ws_bob, ws_carol):
            expected = {"type": "typing", "conversation_id": group.pk, "user_id": alice.pk}
            assert await ws.receive_until("typing", skipping={"presence"}) == expected
        await ws_alice.assert_nothing(ignoring={"presence"})
        await alice_laptop.assert_nothing(ignoring={"presence"})


async def test_typing_in_a_direct_conversation_reaches_the_peer(alice, bob):
    conversation = await direct(alice, bob)
    async with ws_connect(alice) as ws_alice, ws_connect(bob) as ws_bob:
        await ws_alice.receive_type("presence")
        await ws_bob.send({"type": "typing", "conversation_id": conversation.pk})
        assert await ws_alice.receive() == {
            "type": "typing",
            "conversation_id": conversation.pk,
            "user_id": bob.pk,
        }
        await ws_bob.assert_nothing()


async def test_typing_in_a_conversation_of_others_is_forbidden(alice, bob, carol):
    group = await group_of(bob, carol)
    async with ws_connect(bob) as ws_bob, ws_connect(alice) as ws_alice:
        await ws_alice.send({"type": "typing", "conversation_id": group.pk})
        error = await ws_alice.receive_type("error")
        assert (error["code"], error["ref"]) == ("forbidden", None)
        await ws_bob.assert_nothing()
        await ws_alice.assert_alive()


async def test_typing_in_an_unknown_conversation_is_not_found(alice):
    async with ws_connect(alice) as ws:
        await ws.send({"type": "typing", "conversation_id": 999_999})
        assert (await ws.receive_type("error"))["code"] == "not_found"
        await ws.assert_alive()


async def test_typing_is_never_stored(alice, bob):
    conversation = await direct(alice, bob)
    async with ws_connect(alice) as ws_alice, ws_connect(bob) as ws_bob:
        await ws_alice.receive_type("presence")
        await ws_bob.send({"type": "typing", "conversation_id": conversation.pk})
        await ws_alice.receive_type("typing")
    assert await database_sync_to_async(Message.objects.count)() == 0
    assert await database_sync_to_async(StreamItem.objects.count)() == 0


async def test_typing_to_an_offline_peer_is_dropped_not_replayed(alice, bob):
    conversation = await direct(alice, bob)
    async with ws_connect(bob) as ws_bob:
        await ws_bob.send({"type": "typing", "conversation_id": conversation.pk})
        await ws_bob.assert_alive()
    async with ws_connect(alice) as ws_alice:  # the one empty replay frame, no typing
        await ws_alice.assert_nothing()


async def test_typing_faster_than_a_few_a_second_is_rate_limited(alice, bob):
    conversation = await direct(alice, bob)
    async with ws_connect(bob) as ws_bob:
        for _ in range(5):  # the burst
            await ws_bob.send({"type": "typing", "conversation_id": conversation.pk})
        await ws_bob.send({"type": "typing", "conversation_id": conversation.pk})
        error = await ws_bob.receive_type("error")
        assert (error["code"], error["ref"]) == ("rate_limited", None)
        await ws_bob.assert_alive()


async def test_typing_in_a_group_above_the_presence_limit_is_not_relayed(alice, bob, carol, settings):
    settings.IMS_PRESENCE_MAX_GROUP_SIZE = 2
    group = await group_of(alice, bob, carol)
    async with ws_connect(alice) as ws_alice, ws_connect(bob) as ws_bob:
        await ws_alice.send({"type": "typing", "conversation_id": group.pk})
        await ws_bob.assert_nothing()
        await ws_alice.assert_alive()
