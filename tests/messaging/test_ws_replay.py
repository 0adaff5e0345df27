"""Sync on connect, `sync`, and gap filling (PROTOCOL.md, Sync on connect)."""

from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.utils import timezone

from messaging import delivery
from messaging.models import PendingItem, StreamItem, User
from messaging.services.messages import message_send
from messaging.services.stream import NewItem, StreamEntry, stream_append
from tests.messaging.wsclient import (
    SILENCE_SECONDS,
    WsClient,
    channel_name_of,
    token_key,
    ws_connect,
    ws_isolation,  # noqa: F401  (fixture)
    ws_path,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("ws_isolation")]

BATCH = 5


@pytest.fixture(autouse=True)
def small_batches(settings):
    settings.IMS_REPLAY_BATCH_SIZE = BATCH


@database_sync_to_async
def send_messages(sender: User, to: User, count: int, *, prefix: str = "m") -> list[str]:
    """Store `count` direct messages; returns their msg_ids, oldest first."""
    return [
        str(
            message_send(
                sender_id=sender.pk, to=to.pk, content=f"{prefix} {n}", client_msg_id=f"{prefix}-{n}"
            ).message.id
        )
        for n in range(count)
    ]


@database_sync_to_async
def notify(user: User, title: str) -> int:
    now = timezone.now()
    data = {
        "id": 1,
        "title": title,
        "content": "",
        "extra": {},
        "priority": "P2",
        "category": "todo",
        "created_at": "2024-01-01T00:00:00Z",
    }
    items = stream_append(
        entry=StreamEntry(
            recipients=[NewItem(user_id=user.pk, pending=True)],
            kind=StreamItem.Kind.NOTIFICATION,
            body={"data": data},
            priority="P2",
            created_at=now,
        )
    )
    return items[user.pk].seq


@database_sync_to_async
def pending_seqs(user: User) -> list[int]:
    return sorted(PendingItem.objects.filter(user=user).values_list("seq", flat=True))


@database_sync_to_async
def purge_items(user: User, seqs: list[int]) -> None:
    """What the retention purge does to the oldest items of a stream."""
    StreamItem.objects.filter(user=user, seq__in=seqs).delete()


def seqs_of(frame: dict) -> list[int]:
    return [item["seq"] for item in frame["items"]]


async def drain(ws: WsClient) -> list[dict]:
    """Read offline_messages frames, acking each, up to the one with more:false."""
    pages = []
    while True:
        page = await ws.receive_type("offline_messages")
        pages.append(page)
        if not page["more"]:
            return pages
        await ws.ack_frame(page)


async def resume(user: User, last_seq: int | str):
    key = await database_sync_to_async(token_key)(user)
    return ws_connect(path=ws_path(token=key, last_seq=last_seq), empty_replay=False)


# --- on connect -----------------------------------------------------------------------


async def test_nothing_pending_is_one_empty_frame_with_more_false(alice):
    async with ws_connect(alice, empty_replay=False) as ws:
        assert await ws.receive() == {
            "type": "offline_messages",
            "items": [],
            "more": False,
            "truncated": False,
        }
        await ws.assert_nothing()


async def test_pending_items_come_in_frames_of_the_batch_size_each_after_the_previous_is_acked(alice, bob):
    msg_ids = await send_messages(alice, bob, 12)
    async with ws_connect(bob, empty_replay=False) as ws:
        assert ws.hello["last_seq"] == 12
        first = await ws.receive_type("offline_messages")
        assert seqs_of(first) == [1, 2, 3, 4, 5]
        assert (first["more"], first["truncated"]) == (True, False)
        assert [item["data"]["msg_id"] for item in first["items"]] == msg_ids[:5]
        assert all(item["type"] == "message" for item in first["items"])
        assert first["items"][0]["data"]["content"] == "m 0"
        await ws.assert_nothing()  # not flooded: the next frame waits for the ack

        await ws.ack([1, 2, 3])
        await ws.assert_nothing()  # only part of the frame acked
        await ws.ack([4, 5])
        second = await ws.receive_type("offline_messages")
        assert seqs_of(second) == [6, 7, 8, 9, 10]
        assert second["more"] is True
        assert "truncated" not in second  # first frame only
        await ws.assert_nothing()

        await ws.ack_frame(second)
        last = await ws.receive_type("offline_messages")
        assert seqs_of(last) == [11, 12]
        assert last["more"] is False
        await ws.ack_frame(last)
        await ws.assert_nothing()
    assert await pending_seqs(bob) == []


async def test_a_replay_of_exactly_one_batch_is_one_frame_with_more_false(alice, bob):
    await send_messages(alice, bob, BATCH)
    async with ws_connect(bob, empty_replay=False) as ws:
        only = await ws.receive_type("offline_messages")
        assert seqs_of(only) == [1, 2, 3, 4, 5]
        assert only["more"] is False


async def test_the_default_batch_is_at_most_100_items(alice, bob, settings):
    settings.IMS_REPLAY_BATCH_SIZE = 100
    await send_messages(alice, bob, 101)
    async with ws_connect(bob, empty_replay=False) as ws:
        first = await ws.receive_type("offline_messages")
        assert len(first["items"]) == 100
        assert first["more"] is True
        await ws.ack_frame(first)
        assert seqs_of(await ws.receive_type("offline_messages")) == [101]


async def test_notifications_are_replayed_beside_messages_in_seq_order(alice, bob):
    await send_messages(alice, bob, 1)
    await notify(bob, "Approve the budget")
    await send_messages(alice, bob, 1, prefix="later")
    async with ws_connect(bob, empty_replay=False) as ws:
        page = await ws.receive_type("offline_messages")
        assert [(i["type"], i["seq"]) for i in page["items"]] == [
            ("message", 1),
            ("notification", 2),
            ("message", 3),
        ]
        assert page["items"][1]["data"]["title"] == "Approve the budget"


async def test_items_not_acked_are_replayed_again_on_reconnect(alice, bob):
    await send_messages(alice, bob, 7)
    async with ws_connect(bob, empty_replay=False) as ws:
        first = await ws.receive_type("offline_messages")
        await ws.ack([1, 2])  # the socket dies before the rest is acked
    assert await pending_seqs(bob) == [3, 4, 5, 6, 7]

    async with ws_connect(bob, empty_replay=False) as ws:
        again = await ws.receive_type("offline_messages")
        assert seqs_of(again) == [3, 4, 5, 6, 7]
        assert again["more"] is False
        assert again["items"][0] == first["items"][2]


async def test_acked_items_are_not_replayed_on_a_plain_reconnect(alice, bob):
    await send_messages(alice, bob, 3)
    async with ws_connect(bob, empty_replay=False) as ws:
        await ws.ack_frame(await ws.receive_type("offline_messages"))
        await ws.assert_alive()  # the ack is processed
    async with ws_connect(bob) as ws:  # the one empty frame
        assert ws.hello["last_seq"] == 3


async def test_the_senders_own_copies_are_never_replayed_as_pending(alice, bob):
    await send_messages(alice, bob, 3)
    async with ws_connect(alice) as ws:  # empty replay
        assert ws.hello["last_seq"] == 3


# --- resuming with last_seq -----------------------------------------------------------


async def test_last_seq_resumes_with_every_later_item_acked_or_not(alice, bob):
    await send_messages(alice, bob, 8)
    async with ws_connect(bob, empty_replay=False) as ws:
        await drain(ws)  # acks 1..5; 6..8 stay pending
    async with await resume(bob, 2) as ws:
        pages = await drain(ws)
        assert [seqs_of(p) for p in pages] == [[3, 4, 5, 6, 7], [8]]
        assert pages[0]["truncated"] is False
        await ws.assert_nothing()


async def test_last_seq_catches_up_a_second_device_with_the_users_own_messages(alice, bob):
    msg_ids = await send_messages(alice, bob, 2)
    async with await resume(alice, 0) as ws:
        page = await ws.receive_type("offline_messages")
        assert seqs_of(page) == [1, 2]
        assert [i["data"]["msg_id"] for i in page["items"]] == msg_ids
        assert all(i["data"]["sender_id"] == alice.pk for i in page["items"])
        assert page["more"] is False


async def test_last_seq_at_the_head_of_the_stream_is_one_empty_frame(alice, bob):
    await send_messages(alice, bob, 3)
    async with await resume(bob, 3) as ws:
        assert await ws.receive() == {
            "type": "offline_messages",
            "items": [],
            "more": False,
            "truncated": False,
        }


async def test_last_seq_past_the_head_of_the_stream_is_one_empty_frame(alice, bob):
    await send_messages(alice, bob, 3)
    async with await resume(bob, 50) as ws:
        page = await ws.receive_type("offline_messages")
        assert (page["items"], page["more"]) == ([], False)


async def test_a_resume_over_purged_items_says_truncated(alice, bob):
    await send_messages(alice, bob, 6)
    await purge_items(bob, [1, 2, 3, 4])
    async with await resume(bob, 2) as ws:
        page = await ws.receive_type("offline_messages")
        assert page["truncated"] is True
        assert seqs_of(page) == [5, 6]
        assert page["more"] is False


async def test_a_resume_over_a_stream_purged_entirely_says_truncated(alice, bob):
    await send_messages(alice, bob, 3)
    await purge_items(bob, [1, 2, 3])
    async with await resume(bob, 1) as ws:
        page = await ws.receive_type("offline_messages")
        assert (page["items"], page["more"], page["truncated"]) == ([], False, True)


async def test_a_resume_after_the_purged_items_is_not_truncated(alice, bob):
    await send_messages(alice, bob, 6)
    await purge_items(bob, [1, 2, 3, 4])
    async with await resume(bob, 4) as ws:
        page = await ws.receive_type("offline_messages")
        assert page["truncated"] is False
        assert seqs_of(page) == [5, 6]


# --- sync -----------------------------------------------------------------------------


async def test_sync_replays_every_kept_item_after_the_given_seq(alice, bob):
    await send_messages(alice, bob, 7)
    async with ws_connect(bob, empty_replay=False) as ws:
        await drain(ws)
        await ws.send({"type": "sync", "after_seq": 1})
        pages = await drain(ws)
        assert [seqs_of(p) for p in pages] == [[2, 3, 4, 5, 6], [7]]
        assert pages[0]["truncated"] is False
        await ws.assert_nothing()


async def test_sync_waits_for_the_ack_of_each_frame(alice, bob):
    await send_messages(alice, bob, 7)
    async with ws_connect(bob, empty_replay=False) as ws:
        await drain(ws)
        await ws.send({"type": "sync", "after_seq": 0})
        first = await ws.receive_type("offline_messages")
        assert seqs_of(first) == [1, 2, 3, 4, 5]
        await ws.assert_nothing()
        await ws.ack_frame(first)  # already acked once: acking again is how a client moves on
        assert seqs_of(await ws.receive_type("offline_messages")) == [6, 7]


async def test_sync_at_the_head_is_one_empty_frame(alice, bob):
    await send_messages(alice, bob, 2)
    async with ws_connect(bob, empty_replay=False) as ws:
        await drain(ws)
        await ws.send({"type": "sync", "after_seq": 2})
        assert await ws.receive() == {
            "type": "offline_messages",
            "items": [],
            "more": False,
            "truncated": False,
        }


async def test_sync_over_purged_items_says_truncated(alice, bob):
    await send_messages(alice, bob, 4)
    await purge_items(bob, [1, 2])
    async with await resume(bob, 4) as ws:
        await drain(ws)
        await ws.send({"type": "sync", "after_seq": 0})
        page = await ws.receive_type("offline_messages")
        assert (page["truncated"], seqs_of(page)) == (True, [3, 4])


# --- live items during a replay, gaps, repeats ----------------------------------------


async def test_live_items_during_a_replay_come_after_it_in_order_each_once(alice, bob):
    await send_messages(alice, bob, 7)
    async with ws_connect(bob, empty_replay=False) as ws:
        first = await ws.receive_type("offline_messages")
        assert seqs_of(first) == [1, 2, 3, 4, 5]

        await send_messages(alice, bob, 3, prefix="live")
        await ws.assert_nothing()  # held until the replay is over

        await ws.ack_frame(first)
        last = await ws.receive_type("offline_messages")
        assert (seqs_of(last), last["more"]) == ([6, 7], False)
        live = [await ws.receive_type("message") for _ in range(3)]
        assert [f["seq"] for f in live] == [8, 9, 10]
        assert [f["data"]["content"] for f in live] == ["live 0", "live 1", "live 2"]
        await ws.assert_nothing()


async def test_live_items_beyond_what_a_replay_holds_in_memory_are_read_back_in_order(alice, bob):
    await send_messages(alice, bob, 6)
    with mock.patch("messaging.session.MAX_HELD_ITEMS", 2):
        async with ws_connect(bob, empty_replay=False) as ws:
            first = await ws.receive_type("offline_messages")
            await send_messages(alice, bob, 5, prefix="live")
            await ws.assert_nothing()
            await ws.ack_frame(first)
            assert seqs_of(await ws.receive_type("offline_messages")) == [6]
            live = [await ws.receive_type("message") for _ in range(5)]
            assert [f["seq"] for f in live] == [7, 8, 9, 10, 11]
            await ws.assert_nothing()


async def test_a_dropped_event_is_filled_from_the_database_before_the_next_one(alice, bob):
    async with ws_connect(bob) as ws:
        layer = get_channel_layer()
        group, channel = delivery.user_group(bob.pk), await channel_name_of(bob)

        await layer.group_discard(group, channel)  # the layer loses the next event
        await send_messages(alice, bob, 1, prefix="dropped")
        await ws.assert_nothing()
        await layer.group_add(group, channel)
        await send_messages(alice, bob, 1, prefix="next")

        frames = [await ws.receive_type("message"), await ws.receive_type("message")]
        assert [f["seq"] for f in frames] == [1, 2]
        assert [f["data"]["content"] for f in frames] == ["dropped 0", "next 0"]
        await ws.assert_nothing()


async def test_several_dropped_events_are_filled_in_order(alice, bob, settings):
    settings.IMS_REPLAY_BATCH_SIZE = 2  # the gap spans several database pages
    async with ws_connect(bob) as ws:
        layer = get_channel_layer()
        group, channel = delivery.user_group(bob.pk), await channel_name_of(bob)
        await layer.group_discard(group, channel)
        await send_messages(alice, bob, 5, prefix="dropped")
        await layer.group_add(group, channel)
        await send_messages(alice, bob, 1, prefix="next")

        assert [(await ws.receive_type("message"))["seq"] for _ in range(6)] == [1, 2, 3, 4, 5, 6]
        await ws.assert_nothing()


async def test_a_gap_of_purged_items_is_skipped(alice, bob):
    async with ws_connect(bob) as ws:
        layer = get_channel_layer()
        group, channel = delivery.user_group(bob.pk), await channel_name_of(bob)
        await layer.group_discard(group, channel)
        await send_messages(alice, bob, 2, prefix="gone")
        await purge_items(bob, [1, 2])
        await layer.group_add(group, channel)
        await send_messages(alice, bob, 1, prefix="next")

        assert (await ws.receive_type("message"))["seq"] == 3
        await ws.assert_nothing()


async def test_a_dropped_last_event_is_recovered_with_sync(alice, bob):
    async with ws_connect(bob) as ws:
        layer = get_channel_layer()
        group, channel = delivery.user_group(bob.pk), await channel_name_of(bob)
        await layer.group_discard(group, channel)
        await send_messages(alice, bob, 1)
        await layer.group_add(group, channel)
        await ws.assert_nothing()

        await ws.send({"type": "sync", "after_seq": 0})
        page = await ws.receive_type("offline_messages")
        assert (seqs_of(page), page["more"]) == ([1], False)
        await ws.assert_nothing()


async def test_repeated_and_stale_events_are_forwarded_once(alice, bob):
    async with ws_connect(bob) as ws:
        await send_messages(alice, bob, 1)
        frame = await ws.receive_type("message")

        # The channel layer repeats an event.
        await delivery.publish([(bob.pk, delivery.item_event(frame["seq"], frame))])
        await ws.assert_nothing()

        await send_messages(alice, bob, 1, prefix="next")
        assert (await ws.receive_type("message"))["seq"] == 2
        await ws.assert_nothing()


async def test_items_replayed_on_connect_are_not_forwarded_again_when_their_events_arrive_late(alice, bob):
    await send_messages(alice, bob, 2)
    async with ws_connect(bob, empty_replay=False) as ws:
        page = await ws.receive_type("offline_messages")
        assert seqs_of(page) == [1, 2]
        # A late event for an item the replay already carried.
        await delivery.publish([(bob.pk, delivery.item_event(2, page["items"][1]))])
        await ws.assert_nothing(SILENCE_SECONDS)


async def test_a_live_item_and_its_replay_are_the_same_frame(alice, bob):
    async with ws_connect(bob) as ws:
        await send_messages(alice, bob, 1)
        live_message = await ws.receive_type("message")
        await notify(bob, "Deploy approved")
        live_notification = await ws.receive_type("notification")
    async with await resume(bob, 0) as ws:
        page = await ws.receive_type("offline_messages")
        assert page["items"] == [live_message, live_notification]


async def test_a_gap_that_is_the_connections_own_send_is_filled_without_repeating_it(alice, bob):
    async with ws_connect(alice) as ws:
        layer = get_channel_layer()
        group, channel = delivery.user_group(alice.pk), await channel_name_of(alice)
        await layer.group_discard(group, channel)
        await ws.send_text_message(to=bob.pk, client_msg_id="mine")
        assert (await ws.receive_type("sent"))["seq"] == 1
        await layer.group_add(group, channel)
        await send_messages(bob, alice, 1, prefix="reply")

        reply = await ws.receive_type("message")  # seq 1 was this connection's own `sent`
        assert (reply["seq"], reply["data"]["content"]) == (2, "reply 0")
        await ws.assert_nothing()


async def test_a_send_during_a_replay_is_answered_at_once_and_never_repeated_as_message(alice, bob):
    await send_messages(bob, alice, 7)
    async with ws_connect(alice, empty_replay=False) as ws:
        first = await ws.receive_type("offline_messages")
        await ws.send_text_message(to=bob.pk, client_msg_id="meanwhile")
        assert (await ws.receive_type("sent"))["seq"] == 8
        await ws.ack_frame(first)
        last = await ws.receive_type("offline_messages")
        assert (seqs_of(last), last["more"]) == ([6, 7], False)
        await ws.assert_nothing()


async def test_sync_during_a_replay_takes_over_and_sends_each_seq_once(alice, bob):
    await send_messages(alice, bob, 7)
    async with ws_connect(bob, empty_replay=False) as ws:
        assert seqs_of(await ws.receive_type("offline_messages")) == [1, 2, 3, 4, 5]
        await send_messages(alice, bob, 2, prefix="live")  # seqs 8 and 9, held
        await ws.assert_nothing()

        await ws.send({"type": "sync", "after_seq": 3})
        pages = await drain(ws)
        assert [seqs_of(p) for p in pages] == [[4, 5, 6, 7, 8], [9]]
        await ws.assert_nothing()  # the held 8 and 9 came with the sync, not again
        await send_messages(alice, bob, 1, prefix="after")
        assert (await ws.receive_type("message"))["seq"] == 10


async def test_expired_pending_items_are_not_replayed_but_stay_in_the_stream(alice, bob):
    await send_messages(alice, bob, 3)
    await database_sync_to_async(PendingItem.objects.filter(user=bob, seq=1).update)(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    async with ws_connect(bob, empty_replay=False) as ws:
        assert seqs_of(await ws.receive_type("offline_messages")) == [2, 3]
    async with await resume(bob, 0) as ws:
        assert seqs_of(await ws.receive_type("offline_messages")) == [1, 2, 3]
