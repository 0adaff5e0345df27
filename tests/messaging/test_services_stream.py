"""The per-user stream (messaging.services.stream and its selectors): seqs, pending, ack,
read, purge, and the replay pages.

Concurrency tests use real transactions and threads. On SQLite the IMMEDIATE transaction
mode and the busy timeout serialise writers; on PostgreSQL the row lock on each user's
StreamCounter does. The same tests must pass on both.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from messaging import delivery, frames
from messaging.errors import BadRequest
from messaging.models import (
    Conversation,
    ItemStatus,
    Message,
    PendingItem,
    StreamCounter,
    StreamItem,
    User,
)
from messaging.selectors.stream import (
    PageRequest,
    pending_items_page,
    stream_is_truncated,
    stream_items_page,
    stream_last_seq,
    stream_pages,
)
from messaging.services.conversations import conversation_create_group
from messaging.services.messages import message_send
from messaging.services.receipts import messages_mark_read
from messaging.services.stream import (
    NewItem,
    StreamEntry,
    items_ack,
    stream_append,
    stream_assign_seqs,
    stream_purge_expired,
)

T = TypeVar("T")


# --- helpers ---------------------------------------------------------------------------


def make_users(count: int, prefix: str) -> list[User]:
    """Many users fast: no password hashing."""
    return User.objects.bulk_create([User(username=f"{prefix}{index}") for index in range(count)])


def seqs_of(user: User) -> list[int]:
    return list(StreamItem.objects.filter(user=user).order_by("seq").values_list("seq", flat=True))


def item_of(user: User, message: Message) -> StreamItem:
    return StreamItem.objects.get(user=user, message=message)


def send(sender: User, to: User, content: str = "hi", **kwargs: Any) -> Message:
    return message_send(sender_id=sender.pk, to=to.pk, content=content, **kwargs).message


def run_in_threads(work: Callable[[T], None], args: Iterable[T]) -> None:
    """Run work(arg) in one thread per arg, started together; re-raise the first failure.

    Each thread closes its own database connection, or PostgreSQL could not drop the
    test database afterwards.
    """
    args = list(args)
    start = threading.Barrier(len(args))
    failures: list[BaseException] = []

    def run(arg: T) -> None:
        try:
            start.wait()
            work(arg)
        except BaseException as exc:
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(arg,)) for arg in args]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert not any(thread.is_alive() for thread in threads), "a sending thread hung"
    if failures:
        raise failures[0]


def receipts(events: list[tuple[int, dict]]) -> list[tuple[int, dict]]:
    return [
        (user_id, event["frame"])
        for user_id, event in events
        if event["type"] == delivery.FRAME_EVENT and event["frame"]["type"] == "receipt"
    ]


# --- seq assignment --------------------------------------------------------------------


@pytest.mark.django_db
def test_seqs_start_at_one_and_count_up_per_user_without_gaps(alice, bob, carol):
    for _ in range(3):
        send(alice, bob)
    for _ in range(2):
        send(carol, bob)

    assert seqs_of(bob) == [1, 2, 3, 4, 5]
    assert seqs_of(alice) == [1, 2, 3]
    assert seqs_of(carol) == [1, 2]
    assert stream_last_seq(user_id=bob.pk) == 5
    assert stream_last_seq(user_id=alice.pk) == 3


@pytest.mark.django_db
def test_a_user_who_never_received_anything_has_last_seq_zero(alice):
    assert stream_last_seq(user_id=alice.pk) == 0
    assert not StreamCounter.objects.filter(user=alice).exists()


@pytest.mark.django_db
def test_assigning_seqs_gives_a_user_listed_twice_one_seq(alice, bob):
    with transaction.atomic():
        first = stream_assign_seqs(user_ids=[bob.pk, alice.pk, bob.pk])
    with transaction.atomic():
        second = stream_assign_seqs(user_ids=[alice.pk])

    assert first == {alice.pk: 1, bob.pk: 1}
    assert second == {alice.pk: 2}
    assert stream_last_seq(user_id=bob.pk) == 1


@pytest.mark.django_db
def test_the_senders_copy_is_in_its_stream_but_never_pending(alice, bob):
    result = message_send(sender_id=alice.pk, to=bob.pk, content="hi")

    own = item_of(alice, result.message)
    theirs = item_of(bob, result.message)
    assert own.is_own
    assert own.seq == result.sender_seq == 1
    assert not theirs.is_own
    assert not PendingItem.objects.filter(user=alice).exists()
    pending = PendingItem.objects.get(user=bob)
    assert (pending.seq, pending.item_id) == (theirs.seq, theirs.pk)
    assert pending.expires_at == theirs.created_at + dt.timedelta(days=settings.IMS_OFFLINE_TTL_DAYS)


class RolledBack(Exception):
    pass


@pytest.mark.django_db
def test_nothing_is_published_for_a_send_that_rolls_back(alice, bob, django_capture_on_commit_callbacks):
    def send_then_fail() -> None:
        with transaction.atomic():
            message_send(sender_id=alice.pk, to=bob.pk, content="hi")
            raise RolledBack

    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(RolledBack):
        send_then_fail()

    assert callbacks == []
    assert not StreamItem.objects.exists()


@pytest.mark.django_db
def test_items_are_published_once_the_send_commits(alice, bob, published, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        result = message_send(sender_id=alice.pk, to=bob.pk, content="hi")

    by_user = {user_id: event for user_id, event in published}
    assert set(by_user) == {alice.pk, bob.pk}
    assert by_user[bob.pk] == {
        "type": delivery.ITEM_EVENT,
        "seq": 1,
        "frame": {"type": "message", "seq": 1, "data": frames.message_data(result.message)},
    }
    assert by_user[alice.pk]["seq"] == result.sender_seq


@pytest.mark.django_db
@pytest.mark.parametrize("warm", [False, True], ids=["first send", "later send"])
def test_a_group_send_takes_the_same_number_of_queries_for_5_or_200_members(
    warm, django_assert_max_num_queries
):
    counts = {}
    for size in (5, 200):
        members = make_users(size, prefix=f"g{size}-")
        group = conversation_create_group(
            creator_id=members[0].pk, title=f"{size}", member_ids=[m.pk for m in members]
        )
        if warm:
            message_send(sender_id=members[0].pk, conversation_id=group.pk, content="warm up")
        with CaptureQueriesContext(connection) as queries:
            message_send(sender_id=members[0].pk, conversation_id=group.pk, content="hello all")
        counts[size] = len(queries.captured_queries)
        assert StreamItem.objects.filter(message__conversation=group).count() == size * (2 if warm else 1)

    assert counts[5] == counts[200], counts
    # The budget: three lookups (retries, members, active users), the message, one upsert
    # of the counters, one insert each of items and pending entries; the rest is
    # savepoints (this test runs in a transaction).
    members = make_users(200, prefix="budget-")
    group = conversation_create_group(creator_id=members[0].pk, title="b", member_ids=[m.pk for m in members])
    with django_assert_max_num_queries(11):
        message_send(sender_id=members[0].pk, conversation_id=group.pk, content="hello all")


@pytest.mark.django_db(transaction=True)
def test_concurrent_sends_to_one_recipient_get_distinct_consecutive_seqs(bob):
    senders = make_users(6, prefix="sender")
    group = conversation_create_group(creator_id=bob.pk, title="all", member_ids=[s.pk for s in senders])
    rounds = 8

    def send_all(sender: User) -> None:
        for n in range(rounds):
            message_send(sender_id=sender.pk, to=bob.pk, content=f"direct {n}", client_msg_id=f"d{n}")
            message_send(
                sender_id=sender.pk, conversation_id=group.pk, content=f"group {n}", client_msg_id=f"g{n}"
            )

    run_in_threads(send_all, senders)

    # Seq 1 is the `conversation` item of the group bob created.
    assert seqs_of(bob) == list(range(1, 2 * rounds * len(senders) + 2))
    assert stream_last_seq(user_id=bob.pk) == 2 * rounds * len(senders) + 1
    assert PendingItem.objects.filter(user=bob).count() == 2 * rounds * len(senders)
    for sender in senders:
        # Its own direct and group messages, plus every other sender's group messages.
        expected = 1 + 2 * rounds + rounds * (len(senders) - 1)
        assert seqs_of(sender) == list(range(1, expected + 1))
        assert stream_last_seq(user_id=sender.pk) == expected


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_seqs_of_overlapping_new_users_never_deadlock():
    # Counters are created on a user's first item. Creating them after locking others
    # deadlocked on PostgreSQL when three transactions met at a first use.
    threads, rounds = 6, 15
    for round_ in range(rounds):
        users = [u.pk for u in make_users(8, prefix=f"r{round_}-")]
        # Thread i takes a window of users, overlapping its neighbours in both directions.
        windows = [users[i : i + 4] + users[: i % 3] for i in range(threads)]

        def assign(window: list[int]) -> None:
            with transaction.atomic():
                stream_assign_seqs(user_ids=window)

        run_in_threads(assign, windows)

        for user_id in users:
            times = sum(user_id in window for window in windows)
            assert stream_last_seq(user_id=user_id) == times, (round_, user_id)


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_messages_between_two_users_open_one_conversation(alice, bob):
    def send_some(pair: tuple[User, User]) -> None:
        sender, to = pair
        for n in range(5):
            message_send(sender_id=sender.pk, to=to.pk, content="hi", client_msg_id=f"{n}")

    run_in_threads(send_some, [(alice, bob), (bob, alice)] * 2)

    assert Conversation.objects.count() == 1
    assert Message.objects.count() == 10  # each pair's second thread repeated the same ids
    assert seqs_of(alice) == seqs_of(bob) == list(range(1, 11))


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_of_one_client_msg_id_store_one_message(alice, bob):
    results = []

    def send_once(_: int) -> None:
        results.append(message_send(sender_id=alice.pk, to=bob.pk, content="once", client_msg_id="c-1"))

    run_in_threads(send_once, range(6))

    assert Message.objects.count() == 1
    assert {r.message.pk for r in results} == {Message.objects.get().pk}
    assert {r.sender_seq for r in results} == {1}
    assert sum(r.created for r in results) == 1
    assert seqs_of(alice) == seqs_of(bob) == [1]


# --- ack -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_ack_marks_items_delivered_and_drops_them_from_the_offline_store(alice, bob):
    first, second = send(alice, bob), send(alice, bob)

    assert items_ack(user_id=bob.pk, seqs=[1]) == 1

    acked, waiting = item_of(bob, first), item_of(bob, second)
    assert acked.status == ItemStatus.DELIVERED
    assert acked.delivered_at is not None
    assert waiting.status == ItemStatus.SENT
    assert waiting.delivered_at is None
    assert list(PendingItem.objects.filter(user=bob).values_list("seq", flat=True)) == [2]


@pytest.mark.django_db
def test_acking_again_changes_nothing(alice, bob, published, django_capture_on_commit_callbacks):
    message = send(alice, bob)
    items_ack(user_id=bob.pk, seqs=[1])
    delivered_at = item_of(bob, message).delivered_at

    with django_capture_on_commit_callbacks(execute=True):
        assert items_ack(user_id=bob.pk, seqs=[1]) == 0
        assert items_ack(user_id=bob.pk, seqs=[1, 999]) == 0

    assert item_of(bob, message).delivered_at == delivered_at
    assert published == []


@pytest.mark.django_db
def test_ack_sends_each_sender_one_receipt_for_all_its_messages(
    alice, bob, carol, published, django_capture_on_commit_callbacks
):
    from_alice = [send(alice, bob), send(alice, bob)]
    from_carol = send(carol, bob)

    with django_capture_on_commit_callbacks(execute=True):
        assert items_ack(user_id=bob.pk, seqs=[1, 2, 3, 404]) == 3

    sent = dict(receipts(published))
    assert len(receipts(published)) == 2
    assert sent[alice.pk]["msg_ids"] == [m.msg_id for m in from_alice]
    assert sent[carol.pk]["msg_ids"] == [from_carol.msg_id]
    for frame in sent.values():
        assert frame["status"] == "delivered"
        assert frame["user_id"] == bob.pk
        assert frame["at"] == frames.iso(item_of(bob, from_carol).delivered_at)


@pytest.mark.django_db
def test_ack_touches_only_the_acking_users_stream(alice, bob):
    message = send(alice, bob)  # seq 1 in both streams

    assert items_ack(user_id=alice.pk, seqs=[1]) == 0  # her own copy: nothing to deliver

    assert item_of(bob, message).status == ItemStatus.SENT
    assert PendingItem.objects.filter(user=bob, seq=1).exists()


@pytest.mark.django_db
def test_acking_a_notification_item_delivers_it_without_a_receipt(
    alice, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        stream_append(
            entry=StreamEntry(
                recipients=[NewItem(user_id=alice.pk, pending=True)],
                kind=StreamItem.Kind.NOTIFICATION,
                body={"data": {"id": 7, "title": "Build failed"}},
                priority="P0",
                created_at=timezone.now(),
            )
        )
    published.clear()

    with django_capture_on_commit_callbacks(execute=True):
        assert items_ack(user_id=alice.pk, seqs=[1]) == 1

    item = StreamItem.objects.get(user=alice)
    assert item.status == ItemStatus.DELIVERED
    assert (item.payload, item.priority) == ({"data": {"id": 7, "title": "Build failed"}}, "P0")
    assert not PendingItem.objects.exists()
    assert published == []


# --- read ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_reading_marks_read_implies_delivery_and_stops_pending(
    alice, bob, published, django_capture_on_commit_callbacks
):
    message = send(alice, bob)

    with django_capture_on_commit_callbacks(execute=True):
        assert messages_mark_read(user_id=bob.pk, msg_ids=[message.msg_id]) == 1

    item = item_of(bob, message)
    assert item.status == ItemStatus.READ
    assert item.read_at is not None
    assert item.delivered_at == item.read_at
    assert not PendingItem.objects.filter(user=bob).exists()
    [(to, frame), (own, own_frame)] = receipts(published)
    assert (to, own) == (alice.pk, bob.pk)  # the sender, and the reader's other devices
    assert own_frame == {**frame, "type": "receipt"}
    assert frame == {
        "type": "receipt",
        "msg_ids": [message.msg_id],
        "status": "read",
        "user_id": bob.pk,
        "at": frames.iso(item.read_at),
    }


@pytest.mark.django_db
def test_reading_keeps_the_earlier_delivery_time(alice, bob):
    message = send(alice, bob)
    items_ack(user_id=bob.pk, seqs=[1])
    delivered_at = item_of(bob, message).delivered_at

    messages_mark_read(user_id=bob.pk, msg_ids=[message.msg_id])

    item = item_of(bob, message)
    assert item.delivered_at == delivered_at <= item.read_at


@pytest.mark.django_db
def test_reading_again_or_reading_others_messages_changes_nothing(
    alice, bob, carol, published, django_capture_on_commit_callbacks
):
    message = send(alice, bob)
    messages_mark_read(user_id=bob.pk, msg_ids=[message.msg_id])
    read_at = item_of(bob, message).read_at

    with django_capture_on_commit_callbacks(execute=True):
        assert messages_mark_read(user_id=bob.pk, msg_ids=[message.msg_id]) == 0
        assert messages_mark_read(user_id=carol.pk, msg_ids=[message.msg_id]) == 0  # not hers
        assert messages_mark_read(user_id=alice.pk, msg_ids=[message.msg_id]) == 0  # her own

    assert item_of(bob, message).read_at == read_at
    assert item_of(alice, message).status == ItemStatus.SENT
    assert published == []


@pytest.mark.django_db
@pytest.mark.parametrize("bad", [["not-a-uuid"], [42], [{"id": 1}]])
def test_reading_with_malformed_msg_ids_is_a_bad_request_and_changes_nothing(alice, bob, bad):
    message = send(alice, bob)

    with pytest.raises(BadRequest) as error:
        messages_mark_read(user_id=bob.pk, msg_ids=[message.msg_id, *bad])

    assert error.value.field == "msg_ids"
    assert item_of(bob, message).status == ItemStatus.SENT


# --- purge -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_purge_drops_expired_pending_entries_but_keeps_items_and_messages(alice, bob):
    old, fresh = send(alice, bob), send(alice, bob)
    later = timezone.now() + dt.timedelta(days=settings.IMS_OFFLINE_TTL_DAYS, minutes=1)
    PendingItem.objects.filter(item__message=fresh).update(expires_at=later + dt.timedelta(days=1))

    assert stream_purge_expired(now=later) == (1, 0)

    assert list(PendingItem.objects.values_list("item__message", flat=True)) == [fresh.pk]
    assert StreamItem.objects.filter(message=old).count() == 2
    assert Message.objects.count() == 2


@pytest.mark.django_db
def test_purge_drops_stream_items_past_retention_and_counts_only_items(alice, bob):
    old, recent = send(alice, bob), send(alice, bob)
    now = timezone.now() + dt.timedelta(days=settings.IMS_STREAM_RETENTION_DAYS)
    StreamItem.objects.filter(message=recent).update(created_at=now - dt.timedelta(days=1))
    # A pending entry that somehow outlived its item's retention goes with the item.
    PendingItem.objects.update(expires_at=now + dt.timedelta(days=1))

    assert stream_purge_expired(now=now) == (0, 2)

    assert not StreamItem.objects.filter(message=old).exists()
    assert StreamItem.objects.filter(message=recent).count() == 2
    assert set(Message.objects.values_list("pk", flat=True)) == {old.pk, recent.pk}
    assert list(PendingItem.objects.values_list("item__message", flat=True)) == [recent.pk]


@pytest.mark.django_db
def test_a_retry_after_the_senders_copy_was_purged_still_answers_the_message(alice, bob):
    first = message_send(sender_id=alice.pk, to=bob.pk, content="hi", client_msg_id="c-1")
    stream_purge_expired(now=timezone.now() + dt.timedelta(days=settings.IMS_STREAM_RETENTION_DAYS + 1))

    retry = message_send(sender_id=alice.pk, to=bob.pk, content="hi", client_msg_id="c-1")

    assert retry.message.pk == first.message.pk
    assert not retry.created


# --- replay selectors ------------------------------------------------------------------


@pytest.fixture
def bob_has_five(alice, bob) -> list[Message]:
    return [send(alice, bob, f"m{n}") for n in range(1, 6)]


def page_seqs(page) -> list[int]:
    return [item["seq"] for item in page.items]


@pytest.mark.django_db
def test_pending_pages_hold_unacked_items_oldest_first(bob, bob_has_five):
    items_ack(user_id=bob.pk, seqs=[2])

    first = pending_items_page(user_id=bob.pk, after_seq=0, upto_seq=5, limit=2)
    second = pending_items_page(user_id=bob.pk, after_seq=first.items[-1]["seq"], upto_seq=5, limit=2)

    assert (page_seqs(first), first.more) == ([1, 3], True)
    assert (page_seqs(second), second.more) == ([4, 5], False)


@pytest.mark.django_db
def test_pending_pages_stop_at_upto_and_skip_expired_entries(bob, bob_has_five):
    PendingItem.objects.filter(user=bob, seq=1).update(expires_at=timezone.now() - dt.timedelta(seconds=1))

    page = pending_items_page(user_id=bob.pk, after_seq=0, upto_seq=3, limit=100)

    assert (page_seqs(page), page.more) == ([2, 3], False)


@pytest.mark.django_db
def test_pending_pages_are_for_their_user_only(alice, bob, bob_has_five):
    page = pending_items_page(user_id=alice.pk, after_seq=0, upto_seq=5, limit=100)

    assert (page.items, page.more) == ([], False)  # her own copies are never pending


@pytest.mark.django_db
def test_stream_pages_hold_every_kept_item_acked_or_not(bob, bob_has_five):
    items_ack(user_id=bob.pk, seqs=[1, 2, 3, 4, 5])

    first = stream_items_page(user_id=bob.pk, after_seq=1, upto_seq=5, limit=3)
    second = stream_items_page(user_id=bob.pk, after_seq=4, upto_seq=5, limit=3)

    assert (page_seqs(first), first.more) == ([2, 3, 4], True)
    assert (page_seqs(second), second.more) == ([5], False)


@pytest.mark.django_db
def test_pages_asked_for_together_are_those_each_would_get_alone(alice, bob, carol, bob_has_five):
    for n in range(3):
        send(alice, carol, f"c{n}")
    items_ack(user_id=bob.pk, seqs=[2])

    def request(user: User, after: int, upto: int, *, pending_only: bool = False) -> PageRequest:
        return PageRequest(
            user_id=user.pk, pending_only=pending_only, after_seq=after, upto_seq=upto, limit=3
        )

    requests = [
        request(bob, 1, 3),  # two of bob's connections behind by a little, overlapping
        request(bob, 2, 5),
        request(carol, 0, 2),
        request(bob, 0, 3, pending_only=True),  # his seq 2 is acked: no longer pending
        request(bob, 0, 5),  # more than `limit` seqs: a page of three, and more
        request(carol, 5, 9),  # beyond her stream: nothing
    ]

    pages = stream_pages(requests=requests)

    alone = [
        (pending_items_page if r.pending_only else stream_items_page)(
            user_id=r.user_id, after_seq=r.after_seq, upto_seq=r.upto_seq, limit=r.limit
        )
        for r in requests
    ]
    assert pages == alone
    assert [(page_seqs(page), page.more) for page in pages] == [
        ([2, 3], False),
        ([3, 4, 5], False),
        ([1, 2], False),
        ([1, 3], False),
        ([1, 2, 3], True),
        ([], False),
    ]
    assert pages[1].items[0] is not pages[0].items[1]  # each connection gets frames of its own


@pytest.mark.django_db
def test_short_pages_of_many_connections_are_read_in_one_query(alice, bob, carol, django_assert_num_queries):
    send(alice, bob, "to bob")
    send(alice, carol, "to carol")
    requests = [
        PageRequest(user_id=user.pk, pending_only=False, after_seq=0, upto_seq=1, limit=100)
        for user in (alice, bob, carol)
    ]

    with django_assert_num_queries(1):
        pages = stream_pages(requests=requests)

    assert [[item["data"]["content"] for item in page.items] for page in pages] == [
        ["to bob"],  # alice's seq 1: her own copy
        ["to bob"],
        ["to carol"],
    ]


@pytest.mark.django_db
def test_a_page_is_one_query_including_its_messages(bob, bob_has_five, django_assert_num_queries):
    with django_assert_num_queries(1):
        page = stream_items_page(user_id=bob.pk, after_seq=0, upto_seq=5, limit=100)
        built = list(page.items)
    with django_assert_num_queries(1):
        page = pending_items_page(user_id=bob.pk, after_seq=0, upto_seq=5, limit=100)
        built += page.items

    assert [frame["data"]["content"] for frame in built] == [f"m{n}" for n in range(1, 6)] * 2


@pytest.mark.django_db
def test_the_stream_is_truncated_only_when_items_after_the_cursor_were_purged(bob, bob_has_five):
    assert not stream_is_truncated(user_id=bob.pk, after_seq=0, upto_seq=5)

    StreamItem.objects.filter(user=bob, seq__lte=2).delete()

    assert stream_is_truncated(user_id=bob.pk, after_seq=0, upto_seq=5)
    assert stream_is_truncated(user_id=bob.pk, after_seq=1, upto_seq=5)
    assert not stream_is_truncated(user_id=bob.pk, after_seq=2, upto_seq=5)
    assert not stream_is_truncated(user_id=bob.pk, after_seq=5, upto_seq=5)  # nothing asked for


@pytest.mark.django_db
def test_the_stream_is_truncated_when_every_item_after_the_cursor_was_purged(bob, bob_has_five):
    StreamItem.objects.filter(user=bob).delete()

    assert stream_is_truncated(user_id=bob.pk, after_seq=3, upto_seq=5)
