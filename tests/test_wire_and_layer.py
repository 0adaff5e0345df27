"""The frame encoder (messaging.wire) and the per-process fan-out layer (imsproject.fanout_layer)."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from channels.exceptions import ChannelFull

from imsproject.channel_layers import redis_channel_layer
from imsproject.fanout_layer import FanoutChannelLayer
from messaging.wire import ItemFrames, encode

# Pub/sub channels are global to a Redis server: a prefix of this run's own keeps other
# test runs on the same server out.
TEST_PREFIX = f"ims-test-{uuid.uuid4().hex[:8]}"

# --- wire -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [{"data": {"title": "Größe 🚀", "n": 3, "extra": {}}}, {"event": "created", "data": {"id": 1}}, {}],
    ids=["unicode", "two keys", "empty"],
)
def test_an_item_frame_is_its_body_encoded_once_with_the_seq_spliced_in(body):
    frames = ItemFrames()
    first, second = frames.frame("notification", 7, body), frames.frame("notification", 12345, body)
    for frame, seq in ((first, 7), (second, 12345)):
        assert frame == {"type": "notification", "seq": seq, **body}
        assert json.loads(encode(frame)) == {"type": "notification", "seq": seq, **body}


def test_a_lone_surrogate_is_escaped_rather_than_failing():
    frame = {"type": "message", "data": {"content": "bad \ud800 text"}}
    assert json.loads(encode(frame)) == frame
    spliced = ItemFrames().frame("message", 1, {"data": {"content": "bad \ud800"}})
    assert json.loads(encode(spliced))["data"]["content"] == "bad \ud800"


# --- the layer in memory ---------------------------------------------------------------------


async def test_a_sink_takes_the_events_it_accepts_and_the_rest_queue_for_receive():
    layer = FanoutChannelLayer()
    taken: list[dict] = []
    fast, plain = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("user.1", fast)
    await layer.group_add("user.1", plain)
    layer.attach(fast, lambda event: event["n"] % 2 == 0 and taken.append(event) is None)

    await layer.group_send_many([("user.1", {"type": "x", "n": n}) for n in range(4)])

    assert [event["n"] for event in taken] == [0, 2]
    assert [(await layer.receive(fast))["n"] for _ in range(2)] == [1, 3]
    assert [(await layer.receive(plain))["n"] for _ in range(4)] == [0, 1, 2, 3]


async def test_a_full_channel_drops_group_events_and_refuses_direct_sends():
    layer = FanoutChannelLayer(capacity=2)
    channel = await layer.new_channel()
    await layer.group_add("user.1", channel)
    for n in range(5):
        await layer.group_send("user.1", {"type": "x", "n": n})  # never raises: events are hints
    with pytest.raises(ChannelFull):
        await layer.send(channel, {"type": "x", "n": 9})
    assert [(await layer.receive(channel))["n"] for _ in range(2)] == [0, 1]


async def test_a_channel_that_left_its_group_gets_nothing_and_forget_drops_its_queue():
    layer = FanoutChannelLayer()
    channel = await layer.new_channel()
    await layer.group_add("user.1", channel)
    await layer.group_send("user.1", {"type": "x"})
    await layer.group_discard("user.1", channel)
    layer.forget(channel)
    await layer.group_send("user.1", {"type": "x"})
    assert channel not in layer.channels
    assert "user.1" not in layer.groups


# --- across processes, on Redis ----------------------------------------------------------------


async def receive_within(layer: FanoutChannelLayer, channel: str, seconds: float = 3) -> dict:
    return await asyncio.wait_for(layer.receive(channel), seconds)


@pytest.mark.redis
async def test_one_subscription_per_process_carries_group_events_between_processes(redis_url):
    here, there = (
        FanoutChannelLayer(redis_url, prefix=TEST_PREFIX),
        FanoutChannelLayer(redis_url, prefix=TEST_PREFIX),
    )
    try:
        tab_here, tab_there, other_user = (
            await here.new_channel(),
            await there.new_channel(),
            await there.new_channel(),
        )
        await here.group_add("user.1", tab_here)
        await there.group_add("user.1", tab_there)
        await there.group_add("user.2", other_user)
        await asyncio.sleep(0.2)  # subscriptions are not awaited by Redis's reply

        await here.group_send_many([("user.1", {"type": "x", "n": 1}), ("user.1", {"type": "x", "n": 2})])

        assert [(await receive_within(there, tab_there))["n"] for _ in range(2)] == [1, 2]
        assert [(await receive_within(here, tab_here))["n"] for _ in range(2)] == [1, 2]
        with pytest.raises(TimeoutError):  # its own publication is not delivered twice here
            await receive_within(here, tab_here, 0.5)
        with pytest.raises(TimeoutError):  # nor to another user's group there
            await receive_within(there, other_user, 0.2)

        await there.group_discard("user.1", tab_there)  # the last member there: unsubscribed
        await asyncio.sleep(0.2)
        await here.group_send("user.1", {"type": "x", "n": 3})
        assert (await receive_within(here, tab_here))["n"] == 3
        with pytest.raises(TimeoutError):
            await receive_within(there, tab_there, 0.5)
    finally:
        await here.flush()
        await there.flush()


@pytest.mark.redis
def test_sync_callers_publish_through_a_loop_of_their_own_each_time(redis_url):
    """A Celery task or a command publishes through async_to_sync, a new event loop per
    call: the layer must not reuse a connection of a loop that is gone."""
    from asgiref.sync import async_to_sync

    layer = FanoutChannelLayer(redis_url, prefix=TEST_PREFIX)
    for n in range(3):
        async_to_sync(layer.group_send)("user.1", {"type": "x", "n": n})  # raised before
    async_to_sync(layer.flush)()


@pytest.mark.redis
async def test_a_large_batch_travels_as_one_message_and_each_process_keeps_its_own_groups(redis_url):
    from imsproject.fanout_layer import BULK_EVENTS

    here, there = (
        FanoutChannelLayer(redis_url, prefix=TEST_PREFIX),
        FanoutChannelLayer(redis_url, prefix=TEST_PREFIX),
    )
    try:
        mine, others = await there.new_channel(), await there.new_channel()
        await there.group_add("user.1", mine)
        await there.group_add("user.2", others)
        await asyncio.sleep(0.2)
        events = [(f"user.{n}", {"type": "x", "n": n}) for n in range(1, BULK_EVENTS + 10)]

        await here.group_send_many(events)

        assert (await receive_within(there, mine))["n"] == 1
        assert (await receive_within(there, others))["n"] == 2
        with pytest.raises(TimeoutError):  # one event each, nothing of the other groups
            await receive_within(there, mine, 0.3)
    finally:
        await here.flush()
        await there.flush()


@pytest.mark.redis
async def test_deployments_on_different_redis_databases_do_not_hear_each_other(redis_url):
    """Redis pub/sub ignores the database number; the layer's prefix carries it."""
    base = redis_url.rsplit("/", 1)[0]
    configs = [redis_channel_layer(f"{base}/{db}", max_connections=10)["CONFIG"] for db in (14, 15)]
    first, second = (FanoutChannelLayer(**config) for config in configs)
    try:
        tab_first, tab_second = await first.new_channel(), await second.new_channel()
        await first.group_add("user.1", tab_first)
        await second.group_add("user.1", tab_second)
        await asyncio.sleep(0.2)  # subscriptions are not awaited by Redis's reply

        await first.group_send("user.1", {"type": "x", "n": 1})

        assert (await receive_within(first, tab_first))["n"] == 1
        with pytest.raises(TimeoutError):
            await receive_within(second, tab_second, 0.5)
    finally:
        await first.flush()
        await second.flush()
