"""StreamSession without a socket or a database: every seq once, ascending (PROTOCOL.md, Sync on connect).

The stream is an in-memory StreamReader; the socket is a list. Every await of the fake yields
to the event loop, so concurrent calls really interleave.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from messaging.session import Page, StreamSession

Frame = dict[str, Any]
PAGE_SIZE = 2  # small, so a handful of items spans several replay frames


def item_frame(seq: int) -> Frame:
    return {"type": "message", "seq": seq, "data": {"msg_id": f"msg-{seq}", "content": f"text {seq}"}}


class FakeStream:
    """One user's stream, as the database holds it: kept items, pending seqs, purged seqs."""

    def __init__(self) -> None:
        self.items: dict[int, Frame] = {}
        self.pending: set[int] = set()
        self.purged: set[int] = set()

    @property
    def head(self) -> int:
        return max([*self.items, *self.purged], default=0)

    def store(self, count: int, *, pending: bool = True) -> list[Frame]:
        """Append `count` items with the next seqs (what a send or a notification does)."""
        first = self.head + 1
        frames = [item_frame(seq) for seq in range(first, first + count)]
        for frame in frames:
            self.items[frame["seq"]] = frame
            if pending:
                self.pending.add(frame["seq"])
        return frames

    def purge(self, *seqs: int) -> None:
        for seq in seqs:
            del self.items[seq]
            self.pending.discard(seq)
            self.purged.add(seq)

    async def last_seq(self) -> int:
        await asyncio.sleep(0)
        return self.head

    async def page(self, *, pending_only: bool, after_seq: int, upto_seq: int, limit: int) -> Page:
        await asyncio.sleep(0)
        kept = self.pending if pending_only else self.items  # purged items are never pending
        seqs = sorted(seq for seq in kept if after_seq < seq <= upto_seq)
        return Page(items=[self.items[seq] for seq in seqs[:limit]], more=len(seqs) > limit)

    async def is_truncated(self, *, after_seq: int, upto_seq: int) -> bool:
        await asyncio.sleep(0)
        return any(after_seq < seq <= upto_seq for seq in self.purged)


class Wire:
    """The socket: every frame the session sent, in order."""

    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self._read = 0

    async def send(self, frame: Frame) -> None:
        await asyncio.sleep(0)
        self.frames.append(frame)

    def take(self) -> list[tuple]:
        """The frames sent since the last take, as ("offline", seqs, more) / ("message", seq)."""
        new, self._read = self.frames[self._read :], len(self.frames)
        return [
            ("offline", [item["seq"] for item in frame["items"]], frame["more"])
            if frame["type"] == "offline_messages"
            else (frame["type"], frame["seq"])
            for frame in new
        ]

    def delivered(self) -> list[int]:
        """Every item seq that reached the client, in the order it did."""
        return [
            item["seq"]
            for frame in self.frames
            for item in (frame["items"] if frame["type"] == "offline_messages" else [frame])
        ]


@pytest.fixture
def stream() -> FakeStream:
    return FakeStream()


@pytest.fixture
def wire() -> Wire:
    return Wire()


@pytest.fixture
def session(stream: FakeStream, wire: Wire) -> StreamSession:
    return StreamSession(send=wire.send, reader=stream, page_size=PAGE_SIZE)


async def ack(session: StreamSession, stream: FakeStream, seqs: list[int]) -> None:
    """What the consumer does with a client's ack: the database first, then the session."""
    stream.pending.difference_update(seqs)
    await session.acked(seqs)


async def go_live(session: StreamSession, stream: FakeStream, wire: Wire) -> None:
    """Connect with last_seq at the head: an empty replay, then every item is live."""
    await session.open(last_seq=stream.head, resume_from=stream.head)
    assert wire.take() == [("offline", [], False)]
    assert session.replay is None


async def live(session: StreamSession, frames: list[Frame]) -> None:
    """The channel layer delivers these events, in this order."""
    for frame in frames:
        await session.item(frame["seq"], frame)


# --- the replay on connect ----------------------------------------------------------


async def test_nothing_to_replay_is_one_empty_frame_with_more_false(session, wire):
    await session.open(last_seq=0, resume_from=None)
    assert wire.frames == [{"type": "offline_messages", "items": [], "more": False, "truncated": False}]
    assert session.replay is None


async def test_the_replay_sends_pending_items_oldest_first_a_page_after_each_ack(session, stream, wire):
    frames = stream.store(7)
    stream.pending -= {2, 5}  # acked earlier by another device
    await session.open(last_seq=7, resume_from=None)
    assert wire.take() == [("offline", [1, 3], True)]
    assert wire.frames[0]["truncated"] is False
    assert wire.frames[0]["items"] == [frames[0], frames[2]]

    await ack(session, stream, [1])
    await ack(session, stream, [99])  # not in the page
    assert wire.take() == []  # part of the page acked: the next one waits
    await ack(session, stream, [3])
    assert wire.take() == [("offline", [4, 6], True)]
    assert "truncated" not in wire.frames[-1]  # first frame only

    await ack(session, stream, [4, 6])
    assert wire.take() == [("offline", [7], False)]
    assert session.replay is None
    await ack(session, stream, [7])
    assert wire.take() == []


async def test_a_replay_of_exactly_one_page_is_one_frame_with_more_false(session, stream, wire):
    stream.store(PAGE_SIZE + 1)
    stream.purge(1)  # a replay of pending items is never truncated
    await session.open(last_seq=PAGE_SIZE + 1, resume_from=None)
    assert wire.take() == [("offline", [2, 3], False)]
    assert wire.frames[0]["truncated"] is False
    assert session.replay is None


# --- resuming with last_seq ---------------------------------------------------------


async def test_a_resume_replays_every_kept_item_after_last_seq_acked_or_not(session, stream, wire):
    stream.store(6)
    stream.pending -= {1, 2, 3, 4}
    await session.open(last_seq=6, resume_from=2)
    assert wire.take() == [("offline", [3, 4], True)]
    assert wire.frames[0]["truncated"] is False
    await ack(session, stream, [3, 4])
    assert wire.take() == [("offline", [5, 6], False)]


@pytest.mark.parametrize(("resume_from", "truncated"), [(0, True), (1, True), (2, False)])
async def test_a_resume_is_truncated_on_its_first_frame_only_when_an_item_after_it_was_purged(
    session, stream, wire, resume_from, truncated
):
    stream.store(6)
    stream.purge(1, 2)
    await session.open(last_seq=6, resume_from=resume_from)
    assert wire.take() == [("offline", [3, 4], True)]
    assert wire.frames[0]["truncated"] is truncated
    await ack(session, stream, [3, 4])
    assert wire.take() == [("offline", [5, 6], False)]
    assert "truncated" not in wire.frames[-1]


# --- live items during a replay -------------------------------------------------------


async def test_live_items_during_a_replay_follow_it_ascending_each_once(session, stream, wire):
    replayed = stream.store(4)
    await session.open(last_seq=4, resume_from=None)
    assert wire.take() == [("offline", [1, 2], True)]

    fresh = stream.store(3)  # seqs 5, 6, 7
    await live(session, [fresh[1], fresh[0], replayed[1], fresh[1], replayed[3], fresh[2]])
    assert wire.take() == []  # held while the replay runs

    await ack(session, stream, [1, 2])
    assert wire.take() == [("offline", [3, 4], False), ("message", 5), ("message", 6), ("message", 7)]
    assert wire.frames[-3:] == fresh


async def test_live_items_beyond_what_the_session_holds_are_read_back_in_order(stream, wire):
    session = StreamSession(send=wire.send, reader=stream, page_size=PAGE_SIZE, max_held=2)
    stream.store(3)
    await session.open(last_seq=3, resume_from=None)
    assert wire.take() == [("offline", [1, 2], True)]
    fresh = stream.store(6)  # seqs 4..9: two held in memory, four dropped
    await live(session, fresh)
    assert wire.take() == []

    await ack(session, stream, [1, 2])
    assert wire.take() == [("offline", [3], False), *[("message", seq) for seq in range(4, 10)]]
    assert wire.frames[-6:] == fresh


# --- gaps, repeats, purges ------------------------------------------------------------


async def test_a_dropped_event_is_filled_from_the_stream_before_the_next_one(session, stream, wire):
    stream.store(3)
    await go_live(session, stream, wire)
    dropped, arrived = stream.store(2)
    await live(session, [arrived])
    assert wire.take() == [("message", 4), ("message", 5)]
    assert wire.frames[-2:] == [dropped, arrived]

    await live(session, stream.store(5)[-1:])  # a gap of several pages
    assert wire.take() == [("message", seq) for seq in range(6, 11)]


async def test_a_repeated_event_is_sent_once_and_an_old_seq_is_ignored(session, stream, wire):
    first, second = stream.store(2)
    await go_live(session, stream, wire)
    third = stream.store(1)[0]
    await live(session, [third, third, first, second, third])
    assert wire.take() == [("message", 3)]


async def test_a_gap_of_purged_items_is_skipped_without_hanging(session, stream, wire):
    await go_live(session, stream, wire)
    frames = stream.store(4)
    stream.purge(1, 3)
    await asyncio.wait_for(live(session, [frames[-1]]), timeout=1)
    assert wire.take() == [("message", 2), ("message", 4)]

    stream.store(2)
    stream.purge(5, 6)  # purged before the poll saw them
    await asyncio.wait_for(session.catch_up(last_seq=6), timeout=1)
    await live(session, stream.store(1))
    assert wire.take() == [("message", 7)]


# --- the connection's own sends -------------------------------------------------------


async def test_an_own_send_answered_with_sent_is_not_repeated_live(session, stream, wire):
    await go_live(session, stream, wire)
    own = stream.store(1, pending=False)
    session.sent(1)
    await live(session, own)
    assert wire.take() == []
    await live(session, stream.store(1))
    assert wire.take() == [("message", 2)]

    stream.store(1, pending=False)
    session.sent(3)
    await live(session, stream.store(1))  # the event of 3 was dropped: the gap is filled
    assert wire.take() == [("message", 4)]


async def test_an_own_send_during_a_replay_is_not_repeated_after_it(session, stream, wire):
    stream.store(3)
    await session.open(last_seq=3, resume_from=None)
    own = stream.store(1, pending=False)
    session.sent(4)
    await live(session, own)
    await ack(session, stream, [1, 2])
    await live(session, stream.store(1))
    assert wire.take() == [("offline", [1, 2], True), ("offline", [3], False), ("message", 5)]


async def test_own_sends_are_not_repeated_in_a_sync_replay_nor_waited_for(session, stream, wire):
    stream.store(2)
    await go_live(session, stream, wire)
    own = stream.store(2, pending=False)
    session.sent(3)  # their events have not come yet
    session.sent(4)
    stream.store(1)
    await session.sync(after_seq=0)
    await ack(session, stream, [1, 2])  # the page [3, 4] then shows nothing: no ack to wait for
    assert wire.delivered() == [1, 2, 5]
    assert wire.frames[-1]["more"] is False
    assert session.replay is None
    await live(session, own)
    assert wire.delivered() == [1, 2, 5]


# --- the per-process poll (catch_up) ---------------------------------------------------


async def test_catch_up_sends_the_items_no_event_carried(session, stream, wire):
    stream.store(2)
    await go_live(session, stream, wire)
    assert not session.is_behind(2)  # the poll leaves a connection that has everything alone
    stream.store(3)  # by a worker: no event reaches this process
    assert session.is_behind(5)
    await session.catch_up(last_seq=5)
    assert not session.is_behind(5)
    assert wire.take() == [("message", 3), ("message", 4), ("message", 5)]
    await session.catch_up(last_seq=5)
    assert wire.take() == []


async def test_catch_up_does_nothing_while_a_replay_runs(session, stream, wire):
    stream.store(3)
    await session.open(last_seq=3, resume_from=None)
    wire.take()
    stream.store(2)
    await session.catch_up(last_seq=5)
    assert wire.take() == []
    await ack(session, stream, [1, 2])
    assert wire.take() == [("offline", [3], False)]
    await session.catch_up(last_seq=5)
    assert wire.take() == [("message", 4), ("message", 5)]


async def test_catch_up_does_nothing_while_an_own_send_is_in_flight(session, stream, wire):
    await go_live(session, stream, wire)
    session.sends_in_flight += 1
    stream.store(1, pending=False)  # stored; its `sent` is not written yet
    await session.catch_up(last_seq=1)
    assert wire.take() == []
    session.sends_in_flight -= 1
    session.sent(1)
    stream.store(1)
    await session.catch_up(last_seq=2)
    assert wire.take() == [("message", 2)]


async def test_a_poll_before_the_replay_starts_sends_nothing_ahead_of_it(session, stream, wire):
    """The consumer registers with the stream poll before session.open(): a poll in that
    window must neither send items as `message` before the replay nor send them twice."""
    stream.store(3)
    await session.catch_up(last_seq=3)
    await session.open(last_seq=3, resume_from=None)
    await ack(session, stream, [1, 2])
    assert wire.take() == [("offline", [1, 2], True), ("offline", [3], False)]


# --- sync -------------------------------------------------------------------------------


async def test_sync_replays_every_kept_item_after_the_given_seq(session, stream, wire):
    stream.store(4)
    stream.purge(1)
    await go_live(session, stream, wire)
    await session.sync(after_seq=0)
    assert wire.take() == [("offline", [2, 3], True)]
    assert wire.frames[-1]["truncated"] is True
    await ack(session, stream, [2, 3])
    assert wire.take() == [("offline", [4], False)]


async def test_sync_during_a_replay_replaces_it_and_live_items_follow(session, stream, wire):
    stream.store(6)
    await session.open(last_seq=6, resume_from=None)
    assert wire.take() == [("offline", [1, 2], True)]

    await session.sync(after_seq=3)  # the old replay's next page would be [3, 4]
    assert wire.take() == [("offline", [4, 5], True)]
    await live(session, stream.store(1))  # held by the new replay
    await ack(session, stream, [1, 2])
    assert wire.take() == []  # the old replay's pages never come

    await ack(session, stream, [4, 5])
    assert wire.take() == [("offline", [6], False), ("message", 7)]
    await live(session, stream.store(1))
    assert wire.take() == [("message", 8)]


# --- concurrency ------------------------------------------------------------------------


async def test_items_and_polls_at_the_same_time_never_send_a_seq_twice_or_out_of_order(session, stream, wire):
    await go_live(session, stream, wire)
    shuffle = random.Random(7).shuffle
    for _ in range(20):
        frames = stream.store(5)
        calls = [session.item(frame["seq"], frame) for frame in frames]
        calls += [session.catch_up(last_seq=frame["seq"]) for frame in frames[::2]]
        shuffle(calls)
        await asyncio.gather(*calls)
    assert wire.delivered() == list(range(1, 101))


async def test_an_ack_that_ends_a_replay_beside_items_and_polls_keeps_the_order(session, stream, wire):
    stream.store(4)
    await session.open(last_seq=4, resume_from=None)
    await ack(session, stream, [1, 2])
    fresh = stream.store(4)
    stream.pending -= {3, 4}
    await asyncio.gather(
        session.item(fresh[2]["seq"], fresh[2]),
        session.acked([3, 4]),
        session.catch_up(last_seq=8),
        session.item(fresh[0]["seq"], fresh[0]),
        session.catch_up(last_seq=8),
        session.item(fresh[3]["seq"], fresh[3]),
    )
    await session.catch_up(last_seq=8)
    assert wire.delivered() == list(range(1, 9))


# --- the synchronous fast path (item_now) ------------------------------------------------


async def test_item_now_lets_only_the_next_seq_through_and_drops_repeats(session, stream, wire):
    await go_live(session, stream, wire)
    three = stream.store(3)[-1]
    assert session.item_now(2, item_frame(2)) is None  # 1 is missing: only the async path reads gaps
    assert session.item_now(1, item_frame(1)) is True
    assert session.item_now(1, item_frame(1)) is False  # a repeated event
    assert session.item_now(2, item_frame(2)) is True
    assert session.last_forwarded == 2
    await live(session, [three])
    assert wire.take() == [("message", 3)]  # the async path goes on from where it left off


async def test_item_now_defers_before_open_during_a_replay_and_while_an_own_send_is_in_flight(
    session, stream, wire
):
    stream.store(3)
    assert session.item_now(1, item_frame(1)) is None  # not opened: the replay sends the first items
    await session.open(last_seq=3, resume_from=None)
    assert session.replay is not None
    assert session.item_now(4, item_frame(4)) is None  # a replay runs: live items are held behind it
    await ack(session, stream, [1, 2])
    await ack(session, stream, [3])
    assert session.replay is None
    session.sends_in_flight = 1
    assert session.item_now(4, item_frame(4)) is None  # its `sent` must come before any `message`
    session.sends_in_flight = 0
    session.sent(4)
    assert session.item_now(4, item_frame(4)) is False  # own send: answered by `sent`, never as `message`
    assert session.last_forwarded == 4
    assert session.item_now(5, item_frame(5)) is True


async def test_item_now_defers_while_a_gap_is_being_filled(session, stream, wire):
    await go_live(session, stream, wire)
    stream.store(3)
    filling = asyncio.ensure_future(session.catch_up(last_seq=2))
    for _ in range(10):  # until catch_up holds the session while it reads the stream
        if session._lock.locked():
            break
        await asyncio.sleep(0)
    assert session._lock.locked()
    assert session.item_now(1, item_frame(1)) is None  # the next seq, yet the gap fill is sending it
    await filling
    assert wire.take() == [("message", 1), ("message", 2)]


async def test_item_now_leaves_p3_items_and_anything_behind_them_to_the_merger(stream, wire):
    session = StreamSession(
        send=wire.send, reader=stream, page_size=PAGE_SIZE, merge_window_seconds=5, merge_max_items=10
    )
    await go_live(session, stream, wire)
    news = {"type": "notification", "seq": 1, "data": {"priority": "P3", "category": "news"}}
    assert session.item_now(1, news) is None
    await session.item(1, news)  # held for its merge window
    assert wire.take() == []
    assert session.item_now(2, item_frame(2)) is None  # must not overtake the held one
    session.close()
