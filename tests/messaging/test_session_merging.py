"""P3 merging on a live connection, driven through StreamSession without a socket."""

from __future__ import annotations

import asyncio
from typing import Any

from messaging.session import Page, StreamSession

WINDOW_SECONDS = 0.2


class ListStream:
    """A user's stream held in a list: the reads of StreamReader, no database."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, frame: dict[str, Any]) -> dict[str, Any]:
        self.items.append(frame)
        return frame

    async def last_seq(self) -> int:
        return self.items[-1]["seq"] if self.items else 0

    async def page(self, *, pending_only: bool, after_seq: int, upto_seq: int, limit: int) -> Page:
        chosen = [item for item in self.items if after_seq < item["seq"] <= upto_seq]
        return Page(items=chosen[:limit], more=len(chosen) > limit)

    async def is_truncated(self, *, after_seq: int, upto_seq: int) -> bool:
        return False


def notification(seq: int, *, priority: str = "P3", category: str = "announcement") -> dict[str, Any]:
    return {
        "type": "notification",
        "seq": seq,
        "data": {"id": seq, "title": f"n{seq}", "priority": priority, "category": category},
    }


async def open_session(stream: ListStream, *, max_items: int = 10) -> tuple[StreamSession, list[dict]]:
    sent: list[dict] = []

    async def send(frame: dict) -> None:
        sent.append(frame)

    session = StreamSession(
        send=send,
        reader=stream,
        page_size=100,
        merge_window_seconds=WINDOW_SECONDS,
        merge_max_items=max_items,
    )
    await session.open(last_seq=await stream.last_seq(), resume_from=None)
    assert sent.pop(0)["type"] == "offline_messages"
    return session, sent


async def live(session: StreamSession, stream: ListStream, frame: dict[str, Any]) -> None:
    await session.item(frame["seq"], stream.add(frame))


async def test_a_p3_burst_reaches_a_live_connection_as_one_batch():
    stream = ListStream()
    session, sent = await open_session(stream)
    burst = [notification(seq) for seq in (1, 2, 3)]
    for frame in burst:
        await live(session, stream, frame)
    assert sent == []
    await asyncio.sleep(WINDOW_SECONDS * 2)
    assert sent == [{"type": "batch", "count": 3, "items": burst, "last": burst[-1]}]
    session.close()


async def test_a_lone_p3_goes_out_as_itself_when_its_window_closes():
    stream = ListStream()
    session, sent = await open_session(stream)
    await live(session, stream, notification(1))
    await asyncio.sleep(WINDOW_SECONDS * 2)
    assert sent == [notification(1)]
    session.close()


async def test_p0_is_never_delayed_behind_held_p3_and_seqs_stay_in_order():
    stream = ListStream()
    session, sent = await open_session(stream)
    await live(session, stream, notification(1))
    await live(session, stream, notification(2))
    await live(session, stream, notification(3, priority="P0", category="alert"))
    assert [frame["type"] for frame in sent] == ["batch", "notification"]
    assert [item["seq"] for item in sent[0]["items"]] == [1, 2]
    assert sent[1]["seq"] == 3
    session.close()


async def test_p1_and_p2_items_are_never_merged():
    stream = ListStream()
    session, sent = await open_session(stream)
    for seq, priority in ((1, "P1"), (2, "P1"), (3, "P2"), (4, "P2")):
        await live(session, stream, notification(seq, priority=priority, category="todo"))
    assert [frame["seq"] for frame in sent] == [1, 2, 3, 4]
    session.close()


async def test_a_p3_of_another_category_releases_the_held_ones_first():
    stream = ListStream()
    session, sent = await open_session(stream)
    await live(session, stream, notification(1, category="news"))
    await live(session, stream, notification(2, category="news"))
    await live(session, stream, notification(3, category="announcement"))
    assert [frame["type"] for frame in sent] == ["batch"]
    assert sent[0]["count"] == 2
    await asyncio.sleep(WINDOW_SECONDS * 2)
    assert sent[1] == notification(3)
    session.close()


async def test_a_full_batch_goes_out_at_once_without_waiting_for_the_window():
    stream = ListStream()
    session, sent = await open_session(stream, max_items=3)
    for seq in range(1, 5):
        await live(session, stream, notification(seq))
    assert len(sent) == 1
    assert sent[0]["count"] == 3
    assert sent[0]["last"]["seq"] == 3
    await asyncio.sleep(WINDOW_SECONDS * 2)
    assert sent[1] == notification(4)
    session.close()


async def test_a_sync_sends_held_items_before_its_replay_and_never_twice():
    stream = ListStream()
    session, sent = await open_session(stream)
    await live(session, stream, notification(1))
    await live(session, stream, notification(2))
    await session.sync(after_seq=2)
    assert [frame["type"] for frame in sent] == ["batch", "offline_messages"]
    assert sent[1]["items"] == []
    await asyncio.sleep(WINDOW_SECONDS * 2)
    assert len(sent) == 2
    session.close()


async def test_replay_on_connect_is_not_merged():
    stream = ListStream()
    for seq in (1, 2, 3):
        stream.add(notification(seq))
    sent: list[dict] = []

    async def send(frame: dict) -> None:
        sent.append(frame)

    session = StreamSession(
        send=send, reader=stream, page_size=100, merge_window_seconds=WINDOW_SECONDS, merge_max_items=10
    )
    await session.open(last_seq=3, resume_from=None)
    assert sent == [{"type": "offline_messages", "items": stream.items, "more": False, "truncated": False}]
    session.close()


async def test_a_gap_filled_from_the_database_is_merged_like_live_items():
    stream = ListStream()
    session, sent = await open_session(stream)
    stream.add(notification(1))  # its event was dropped by the channel layer
    await live(session, stream, notification(2))
    assert sent == []
    await asyncio.sleep(WINDOW_SECONDS * 2)
    assert [item["seq"] for item in sent[0]["items"]] == [1, 2]
    session.close()


async def test_a_closed_session_sends_nothing_it_held():
    stream = ListStream()
    session, sent = await open_session(stream)
    await live(session, stream, notification(1))
    session.close()
    await asyncio.sleep(WINDOW_SECONDS * 2)
    assert sent == []
