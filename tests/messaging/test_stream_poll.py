"""The per-process stream poll: which stream heads it reads, and which connections it tells."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from messaging.models import StreamCounter
from messaging.selectors.users import StreamHead, stream_heads_beyond
from messaging.stream_poll import StreamPoll

pytestmark = pytest.mark.django_db


def test_only_heads_past_what_the_connections_had_come_back(alice, bob, carol):
    StreamCounter.objects.create(user=alice, last_seq=5)
    StreamCounter.objects.create(user=bob, last_seq=3)
    # carol has no counter yet: her stream is empty

    heads = stream_heads_beyond(known={alice.pk: 4, bob.pk: 3, carol.pk: 0})

    assert heads == {alice.pk: StreamHead(last_seq=5, is_active=True)}


def test_deactivated_and_deleted_users_come_back_whatever_their_seq(alice, bob, carol):
    StreamCounter.objects.create(user=alice, last_seq=2)
    bob.is_active = False
    bob.save()
    gone = carol.pk
    carol.delete()

    heads = stream_heads_beyond(known={alice.pk: 2, bob.pk: 0, gone: 7})

    assert heads == {
        bob.pk: StreamHead(last_seq=0, is_active=False),
        gone: StreamHead(last_seq=0, is_active=False),
    }


def test_no_connections_no_query(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert stream_heads_beyond(known={}) == {}


class FakeWatcher:
    def __init__(self, known: int) -> None:
        self.known = known
        self.told: list[StreamHead] = []

    def known_seq(self) -> int:
        return self.known

    def needs(self, head: StreamHead) -> bool:
        return not head.is_active or head.last_seq > self.known

    async def stream_head(self, head: StreamHead) -> None:
        self.told.append(head)


async def test_the_poll_asks_with_the_least_any_connection_of_a_user_had_and_tells_only_those_behind():
    asked: list[dict[int, int]] = []

    async def read_heads(known: Mapping[int, int]) -> dict[int, StreamHead]:
        asked.append(dict(known))
        return {1: StreamHead(last_seq=9, is_active=True)}

    poll = StreamPoll(interval_seconds=60, read_heads=read_heads)
    behind, current, other_user = FakeWatcher(known=7), FakeWatcher(known=9), FakeWatcher(known=3)
    poll._watchers[1].update({behind, current})  # add() would start the loop
    poll._watchers[2].add(other_user)

    await poll.poll_once()

    assert asked == [{1: 7, 2: 3}]
    assert behind.told == [StreamHead(last_seq=9, is_active=True)]
    assert current.told == other_user.told == []
