"""The consumers' reader of a user's stream: replay pages read several at a time."""

from __future__ import annotations

from unittest import mock

import pytest
from channels.db import database_sync_to_async

from messaging.consumers import READ_AHEAD_PAGES, DatabaseStreamReader
from messaging.models import User
from messaging.selectors.stream import pending_items_page, stream_pages
from messaging.services.messages import SendCommand, messages_send

pytestmark = pytest.mark.django_db(transaction=True)


@database_sync_to_async
def send_many(sender: User, receiver: User, count: int) -> None:
    messages_send(
        commands=[SendCommand(sender_id=sender.pk, to=receiver.pk, content=f"m{n}") for n in range(count)]
    )


async def test_pages_read_ahead_are_the_pages_each_query_would_give(alice, bob):
    await send_many(alice, bob, 2 * READ_AHEAD_PAGES + 1)  # bob's seqs 1..11 with pages of 2
    reader = DatabaseStreamReader(bob.pk)
    upto = 2 * READ_AHEAD_PAGES + 1

    got, after = [], 0
    with mock.patch("messaging.batching.stream_pages", wraps=stream_pages) as reads:
        while True:
            page = await reader.page(pending_only=True, after_seq=after, upto_seq=upto, limit=2)
            got.append(([item["seq"] for item in page.items], page.more))
            if not page.more:
                break
            after = page.items[-1]["seq"]

    expected, after = [], 0
    while True:
        alone = await database_sync_to_async(pending_items_page)(
            user_id=bob.pk, after_seq=after, upto_seq=upto, limit=2
        )
        expected.append(([item["seq"] for item in alone.items], alone.more))
        if not alone.more:
            break
        after = alone.items[-1]["seq"]
    assert got == expected
    assert [seqs for seqs, _ in got] == [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10], [11]]
    assert reads.call_count == 2  # six pages, READ_AHEAD_PAGES (5) a read


async def test_a_page_asked_for_out_of_turn_is_read_again(alice, bob):
    await send_many(alice, bob, 6)
    reader = DatabaseStreamReader(bob.pk)
    first = await reader.page(pending_only=True, after_seq=0, upto_seq=6, limit=2)

    # A sync from another point, and a page of another kind: neither comes from the read-ahead.
    other = await reader.page(pending_only=True, after_seq=3, upto_seq=6, limit=2)
    whole = await reader.page(pending_only=False, after_seq=2, upto_seq=6, limit=2)

    assert [item["seq"] for item in first.items] == [1, 2]
    assert [item["seq"] for item in other.items] == [4, 5]
    assert [item["seq"] for item in whole.items] == [3, 4]
