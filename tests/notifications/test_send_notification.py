"""send_notification: into each recipient's stream, pending, published on commit, validated."""

from __future__ import annotations

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from messaging.errors import BadRequest, NotFound
from messaging.models import PendingItem, StreamItem, User
from notifications.api import ALL, asend_notification, send_notification
from notifications.models import Notification
from notifications.services.notifications import MAX_EXTRA_DEPTH

pytestmark = pytest.mark.django_db


def test_a_notification_becomes_a_pending_notification_item_of_each_recipient(alice, bob):
    notification = send_notification(
        [alice, bob.pk],
        "Disk almost full",
        "db-3 at 91 %",
        priority="P0",
        category="alert",
        extra={"host": "db-3"},
        sender="monitoring",
    )
    items = StreamItem.objects.filter(kind="notification").order_by("user_id")
    assert [item.user_id for item in items] == [alice.pk, bob.pk]
    assert items[0].payload == {
        "data": {
            "id": notification.pk,
            "title": "Disk almost full",
            "content": "db-3 at 91 %",
            "extra": {"host": "db-3"},
            "priority": "P0",
            "category": "alert",
            "created_at": notification.created_at.isoformat().replace("+00:00", "Z"),
        }
    }
    assert items[0].priority == "P0"
    assert PendingItem.objects.filter(item__in=items).count() == 2
    assert notification.sender_service == "monitoring"
    assert notification.recipient_count == 2


@pytest.mark.django_db(transaction=True)
def test_the_frame_is_published_only_after_the_callers_transaction_commits(alice, published_frames):
    with transaction.atomic():
        send_notification([alice], "Hello", "", priority="P2", category="todo")
        assert published_frames == []
    assert [event["frame"]["type"] for _, event in published_frames] == ["notification"]
    frame = published_frames[0][1]["frame"]
    assert set(frame) == {"type", "seq", "data"}
    assert set(frame["data"]) == {"id", "title", "content", "extra", "priority", "category", "created_at"}


@pytest.mark.django_db(transaction=True)
def test_nothing_is_stored_or_published_when_the_callers_transaction_rolls_back(alice, published_frames):
    def callers_work() -> None:
        with transaction.atomic():
            send_notification([alice], "Hello", "", priority="P2", category="todo")
            raise RuntimeError("the caller's work failed")

    with pytest.raises(RuntimeError):
        callers_work()
    assert not Notification.objects.exists()
    assert not StreamItem.objects.exists()
    assert published_frames == []


def test_a_broadcast_to_10000_users_is_a_fixed_handful_of_statements(db):
    User.objects.bulk_create([User(username=f"u{n}", password="!") for n in range(10_000)])
    User.objects.bulk_create([User(username=f"gone{n}", password="!", is_active=False) for n in range(10)])
    with CaptureQueriesContext(connection) as queries:
        notification = send_notification(
            ALL, "Office closed Friday", "", priority="P3", category="announcement"
        )
    assert notification.recipient_count == 10_000
    assert StreamItem.objects.filter(kind="notification").count() == 10_000
    assert PendingItem.objects.count() == 10_000
    # savepoint, users, notification, counters, items, pending entries (SQLite may split
    # the two bulk inserts at its variable limit, hence a little headroom).
    assert len(queries) <= 12, [query["sql"][:80] for query in queries]


def nested(depth: int) -> list:
    """A list `depth` levels deep: [[[...]]]."""
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", "nul \x00 inside"),
        ("title", "cut emoji \ud83d"),
        ("title", "   "),
        ("title", "x" * 201),
        ("content", "nul \x00 inside"),
        ("content", "cut emoji \ud83d"),
        ("extra", {"key": "nul \x00"}),
        ("extra", {"\ud800": 1}),
        ("extra", ["not", "an", "object"]),
        ("extra", {"deep": nested(300)}),
        ("extra", {"deep": nested(MAX_EXTRA_DEPTH)}),
        ("extra", {"big": 2**63}),
        ("extra", {"small": -(2**63)}),
        ("extra", {"nan": float("nan")}),
        ("extra", {"inf": float("inf")}),
        ("extra", {"not json": {1, 2}}),
        ("priority", "P9"),
        ("category", "gossip"),
    ],
)
def test_a_bad_notification_is_refused_with_the_field_named_and_nothing_is_stored(alice, field, value):
    fields = {
        "title": "Fine",
        "content": "fine",
        "priority": "P2",
        "category": "todo",
        "extra": None,
        field: value,
    }
    with pytest.raises(BadRequest) as refused:
        send_notification(
            [alice],
            fields["title"],
            fields["content"],
            priority=fields["priority"],
            category=fields["category"],
            extra=fields["extra"],
        )
    assert refused.value.field == field
    assert not Notification.objects.exists()
    assert not StreamItem.objects.exists()


def test_extra_at_its_limits_is_stored_and_encodes_for_the_redis_layer(
    alice, published_frames, django_capture_on_commit_callbacks
):
    # The Redis layer publishes a batch as orjson.dumps([[group, event], ...]); orjson
    # refuses more than 254 levels and integers beyond 64 bits.
    extra = {"deep": nested(MAX_EXTRA_DEPTH - 1), "big": 2**63 - 1, "small": -(2**63 - 1), "x": 1.5}
    with django_capture_on_commit_callbacks(execute=True):
        send_notification([alice], "Edge", "", priority="P2", category="todo", extra=extra)
    assert Notification.objects.get().extra == extra
    ((user_id, event),) = published_frames
    published = orjson.loads(orjson.dumps([[f"user.{user_id}", event]]))
    assert published[0][1]["frame"]["data"]["extra"] == extra


@pytest.mark.parametrize("user_id", [0, -1, 2**63, True, "1"])
def test_a_recipient_id_outside_1_to_2_63_is_a_bad_request_on_every_backend(alice, user_id):
    with pytest.raises(BadRequest) as refused:
        send_notification([alice.pk, user_id], "Hello", "", priority="P2", category="todo")
    assert refused.value.field == "user_ids"
    assert not StreamItem.objects.exists()


def test_an_unknown_or_inactive_recipient_refuses_the_whole_send(alice, bob):
    bob.is_active = False
    bob.save()
    with pytest.raises(NotFound, match="no active users"):
        send_notification([alice, bob], "Hello", "", priority="P2", category="todo")
    with pytest.raises(NotFound, match="no active users"):
        send_notification([alice.pk, 999_999], "Hello", "", priority="P2", category="todo")
    assert not StreamItem.objects.exists()


@pytest.mark.django_db(transaction=True)
async def test_the_async_twin_sends_the_same_way(alice):
    notification = await asend_notification([alice.pk], "Async", "works", priority="P1", category="mention")
    assert await StreamItem.objects.filter(user_id=alice.pk, payload__data__id=notification.pk).aexists()
    # The worker thread keeps its connection (CONN_MAX_AGE); PostgreSQL will not drop a
    # test database someone is still connected to.
    await sync_to_async(connections.close_all, thread_sensitive=True)()
