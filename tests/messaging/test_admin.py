"""The Django admin: staff see every message with its delivery per recipient, the streams,
the offline queue and presence; nobody edits what would break a stream."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import strip_tags

from messaging.admin import MAX_INLINE_ROWS
from messaging.api import send_message, send_message_to_conversation
from messaging.models import (
    Connection,
    Conversation,
    Message,
    PendingItem,
    StreamCounter,
    StreamItem,
    User,
    WsTicket,
)
from messaging.services.conversations import conversation_create_group
from messaging.services.receipts import messages_mark_read
from messaging.services.stream import items_ack
from messaging.services.tickets import ws_ticket_issue
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

CHANGELISTS = [
    "messaging_user",
    "messaging_conversation",
    "messaging_message",
    "messaging_streamitem",
    "messaging_pendingitem",
    "messaging_streamcounter",
    "messaging_connection",
]


@pytest.fixture
def staff(admin_client: Client) -> Client:
    """A logged-in staff superuser (pytest-django's `admin`)."""
    return admin_client


def changelist(name: str) -> str:
    return reverse(f"admin:{name}_changelist")


def change_page(message: Message) -> str:
    return reverse("admin:messaging_message_change", args=[message.pk])


@pytest.fixture
def team(alice, bob, carol) -> tuple[Conversation, User]:
    dave = UserFactory(username="dave")
    group = conversation_create_group(
        creator_id=alice.pk, title="Team", member_ids=[bob.pk, carol.pk, dave.pk]
    )
    return group, dave


@pytest.fixture
def announcement(alice, bob, carol, team) -> Message:
    """Alice to the team: Bob acked it, Carol read it, Dave has not seen it yet."""
    group, _ = team
    message = send_message_to_conversation(alice, group, "Release at five", client_msg_id="rel-5")
    items_ack(user_id=bob.pk, seqs=[StreamItem.objects.get(user=bob, message=message).seq])
    messages_mark_read(user_id=carol.pk, msg_ids=[message.msg_id])
    return message


# --- who may look --------------------------------------------------------------------------


@pytest.mark.parametrize("name", CHANGELISTS)
def test_staff_see_every_changelist(staff, announcement, name):
    Connection.objects.create(user=announcement.sender, channel_name="c1", last_seen_at=timezone.now())

    response = staff.get(changelist(name))

    assert response.status_code == 200


@pytest.mark.parametrize("name", CHANGELISTS)
def test_a_user_who_is_not_staff_is_sent_to_the_login_page(client: Client, alice, name):
    client.force_login(alice)

    response = client.get(changelist(name))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_an_anonymous_visitor_is_sent_to_the_login_page(client: Client, announcement):
    response = client.get(change_page(announcement))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_staff_without_permissions_are_refused_and_with_view_permission_may_look(
    client: Client, announcement
):
    clerk = UserFactory(username="clerk", is_staff=True)
    client.force_login(clerk)
    assert client.get(changelist("messaging_message")).status_code == 403

    clerk.user_permissions.add(Permission.objects.get(codename="view_message"))

    assert client.get(changelist("messaging_message")).status_code == 200
    assert client.get(change_page(announcement)).status_code == 200


def test_websocket_tickets_are_not_in_the_admin(staff, alice):
    key = ws_ticket_issue(user_id=alice.pk).key

    assert not admin.site.is_registered(WsTicket)
    assert key not in staff.get(reverse("admin:index")).content.decode()


# --- messages and their delivery -------------------------------------------------------------


def delivery_rows(response) -> dict[str, dict[str, str]]:
    """username -> {field: the text the delivery inline renders for it}."""
    inline = next(f for f in response.context["inline_admin_formsets"] if f.opts.model is StreamItem)
    rows = {}
    for form in inline:
        shown = {
            field.field["name"]: str(field.contents())
            for fieldset in form
            for line in fieldset
            for field in line
        }
        rows[strip_tags(shown["user"])] = shown  # the name links to the user
    return rows


def yes(html: str) -> bool:
    return 'alt="True"' in html


def test_a_message_page_shows_its_delivery_to_each_recipient(staff, announcement):
    response = staff.get(change_page(announcement))

    html = response.content.decode()
    assert response.status_code == 200
    assert "2/3 delivered, 1 read" in html
    assert "Release at five" in html
    assert "rel-5" in html
    rows = delivery_rows(response)
    assert list(rows) == ["Bob", "Carol", "Dave", "Alice"]  # recipients by user id, own copy last
    status = {user: row["status"] for user, row in rows.items()}
    assert status == {"Bob": "Delivered", "Carol": "Read", "Dave": "Sent", "Alice": "Sent"}
    pending = {user: yes(row["waiting"]) for user, row in rows.items()}
    assert pending == {"Bob": False, "Carol": False, "Dave": True, "Alice": False}
    assert [yes(row["is_own"]) for row in rows.values()] == [False, False, False, True]
    assert rows["Bob"]["delivered_at"] != "-"
    assert rows["Bob"]["read_at"] == "-"
    assert rows["Carol"]["read_at"] != "-"
    assert rows["Dave"]["delivered_at"] == rows["Dave"]["read_at"] == "-"
    # Each stream's second item: the first is the `conversation` item of the team's creation.
    assert [row["seq"] for row in rows.values()] == ["2", "2", "2", "2"]
    for row in rows.values():
        assert row["status"] in html


def test_an_attachment_and_markup_in_text_are_shown_as_text(staff, alice, bob):
    image = send_message(
        alice,
        bob,
        {"url": "https://files.example/p.png", "name": "<b>p</b>.png", "size": 5, "mime": "image/png"},
        "image",
    )
    script = send_message(alice, bob, "<script>alert(1)</script>")

    image_page = staff.get(change_page(image)).content.decode()
    script_page = staff.get(change_page(script)).content.decode()

    assert (
        "url: https://files.example/p.png, name: &lt;b&gt;p&lt;/b&gt;.png, size: 5, mime: image/png"
        in image_page
    )
    assert "<script>alert(1)</script>" not in script_page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in script_page


def test_the_message_page_offers_no_save_and_refuses_a_post(staff, announcement):
    html = staff.get(change_page(announcement)).content.decode()

    assert 'name="_save"' not in html
    assert staff.post(change_page(announcement), {"content": "edited"}).status_code == 403
    announcement.refresh_from_db()
    assert announcement.content == "Release at five"


def test_the_message_list_shows_a_delivery_summary_and_short_content(staff, alice, bob, announcement):
    long_text = "word " * 40
    send_message(alice, bob, long_text)

    html = staff.get(changelist("messaging_message")).content.decode()

    assert "2/3 delivered, 1 read" in html
    assert "0/1 delivered, 0 read" in html
    assert long_text.strip() not in html
    assert long_text[:59] in html
    assert announcement.msg_id in html


@pytest.mark.parametrize(
    ("term", "finds"),
    [
        ("msg_id", True),
        ("rel-5", True),
        ("alice", True),
        ("carol", False),
        ("not-a-thing", False),
    ],
)
def test_messages_are_found_by_msg_id_client_msg_id_or_sender(staff, alice, carol, announcement, term, finds):
    send_message(carol, alice, "unrelated", client_msg_id="other")
    if term == "msg_id":
        term = announcement.msg_id

    response = staff.get(changelist("messaging_message"), {"q": term})

    assert response.status_code == 200
    shown = list(response.context["cl"].result_list)
    if finds:
        assert announcement in shown
    else:
        assert announcement not in shown


def test_messages_filter_by_type_and_date(staff, alice, bob, announcement):
    image = send_message(
        alice,
        bob,
        {"url": "https://files.example/p.png", "name": "p.png", "size": 1, "mime": "image/png"},
        "image",
    )
    old = send_message(alice, bob, "last year")
    Message.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=400))

    by_type = staff.get(changelist("messaging_message"), {"msg_type__exact": "image"})
    this_week = staff.get(
        changelist("messaging_message"),
        {"created_at__gte": str(timezone.now() - dt.timedelta(days=7))},  # as "Past 7 days" links
    )

    assert list(by_type.context["cl"].result_list) == [image]
    assert "[image] p.png" in by_type.content.decode()
    assert set(this_week.context["cl"].result_list) == {announcement, image}


def test_a_broadcast_page_lists_a_bounded_number_of_recipients(staff, alice):
    members = User.objects.bulk_create([User(username=f"m{n}") for n in range(MAX_INLINE_ROWS + 20)])
    group = conversation_create_group(creator_id=alice.pk, title="All", member_ids=[m.pk for m in members])
    message = send_message_to_conversation(alice, group, "to everyone")

    response = staff.get(change_page(message))

    assert response.status_code == 200
    assert len(response.context["inline_admin_formsets"][0].formset.forms) == MAX_INLINE_ROWS
    assert f"0/{MAX_INLINE_ROWS + 20} delivered, 0 read" in response.content.decode()


# --- streams, offline queue, presence --------------------------------------------------------


def test_stream_items_and_pending_entries_are_read_only(staff, announcement):
    item = StreamItem.objects.filter(message=announcement).first()
    pending = PendingItem.objects.first()

    for url in (
        reverse("admin:messaging_streamitem_add"),
        reverse("admin:messaging_pendingitem_add"),
        reverse("admin:messaging_message_add"),
        reverse("admin:messaging_conversation_add"),
        reverse("admin:messaging_streamitem_delete", args=[item.pk]),
        reverse("admin:messaging_pendingitem_delete", args=[pending.pk]),
        reverse("admin:messaging_message_delete", args=[announcement.pk]),
    ):
        assert staff.get(url).status_code == 403, url
    assert (
        staff.post(
            reverse("admin:messaging_streamitem_change", args=[item.pk]), {"seq": 99, "status": "read"}
        ).status_code
        == 403
    )
    item.refresh_from_db()
    assert item.seq != 99


def test_stream_items_filter_by_status_and_user(staff, bob, announcement):
    delivered = staff.get(changelist("messaging_streamitem"), {"status__exact": "delivered"})
    bobs = staff.get(changelist("messaging_streamitem"), {"q": "bob"})

    assert [i.user.username for i in delivered.context["cl"].result_list] == ["bob"]
    assert {i.user for i in bobs.context["cl"].result_list} == {bob}


def test_the_offline_queue_shows_whether_entries_expired(staff, alice, bob, announcement):
    send_message(alice, bob, "old")
    PendingItem.objects.filter(user=bob).update(expires_at=timezone.now() - dt.timedelta(minutes=1))

    expired = staff.get(changelist("messaging_pendingitem"), {"expired": "yes"})
    waiting = staff.get(changelist("messaging_pendingitem"), {"expired": "no"})

    assert [p.user.username for p in expired.context["cl"].result_list] == ["bob", "bob"]
    # The team's `conversation` item waits for Carol and Dave, the announcement for Dave.
    assert sorted(p.user.username for p in waiting.context["cl"].result_list) == ["carol", "dave", "dave"]


def test_connections_show_whether_they_are_alive(staff, alice, bob):
    Connection.objects.create(user=alice, channel_name="alive", last_seen_at=timezone.now())
    Connection.objects.create(
        user=bob, channel_name="silent", last_seen_at=timezone.now() - dt.timedelta(hours=1)
    )

    alive = staff.get(changelist("messaging_connection"), {"alive": "yes"})
    silent = staff.get(changelist("messaging_connection"), {"alive": "no"})

    assert [c.channel_name for c in alive.context["cl"].result_list] == ["alive"]
    assert [c.channel_name for c in silent.context["cl"].result_list] == ["silent"]


def test_a_conversation_page_lists_members_and_counts(staff, announcement, team):
    group, _ = team

    response = staff.get(reverse("admin:messaging_conversation_change", args=[group.pk]))
    listing = staff.get(changelist("messaging_conversation")).content.decode()

    html = response.content.decode()
    assert response.status_code == 200
    assert len(response.context["inline_admin_formsets"][0].formset.forms) == 4
    assert re.search(r"field-member_count[^>]*>\s*4\s*<", listing)
    assert re.search(r"field-message_count[^>]*>\s*1\s*<", listing)
    assert "Team" in html


def test_a_group_title_can_be_changed_but_a_direct_conversations_members_cannot(staff, alice, bob, team):
    group, _ = team
    direct = send_message(alice, bob, "hi").conversation

    direct_page = staff.get(reverse("admin:messaging_conversation_change", args=[direct.pk]))

    assert not direct_page.context["inline_admin_formsets"][0].has_add_permission
    assert not direct_page.context["inline_admin_formsets"][0].has_delete_permission
    group_page = staff.get(reverse("admin:messaging_conversation_change", args=[group.pk]))
    assert group_page.context["inline_admin_formsets"][0].has_add_permission


# --- query counts ---------------------------------------------------------------------------


def add_traffic(alice: User, bob: User, group: Conversation, count: int) -> None:
    for n in range(count):
        send_message(alice, bob, f"direct {n}")
        send_message_to_conversation(bob, group, f"group {n}")
        Connection.objects.create(user=bob, channel_name=f"tab-{count}-{n}", last_seen_at=timezone.now())
    for user in User.objects.bulk_create([User(username=f"x{n}-{count}") for n in range(count)]):
        conversation_create_group(creator_id=user.pk, title=f"g{n}", member_ids=[alice.pk])


def queries_for(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries.captured_queries)


@pytest.mark.parametrize("name", CHANGELISTS)
def test_a_changelist_takes_the_same_queries_for_3_rows_or_60(
    staff, alice, bob, team, name, django_assert_max_num_queries
):
    group, _ = team
    add_traffic(alice, bob, group, 3)
    few = queries_for(staff, changelist(name))

    add_traffic(alice, bob, group, 60)

    with django_assert_max_num_queries(few):
        assert staff.get(changelist(name)).status_code == 200
    assert StreamCounter.objects.count() >= 4


def test_a_message_page_takes_the_same_queries_for_4_recipients_or_100(
    staff, alice, django_assert_max_num_queries
):
    few_users = User.objects.bulk_create([User(username=f"s{n}") for n in range(3)])
    many_users = User.objects.bulk_create([User(username=f"r{n}") for n in range(99)])
    small = conversation_create_group(creator_id=alice.pk, title="s", member_ids=[u.pk for u in few_users])
    large = conversation_create_group(creator_id=alice.pk, title="l", member_ids=[u.pk for u in many_users])
    to_few = send_message_to_conversation(alice, small, "hi")
    to_many = send_message_to_conversation(alice, large, "hi")
    items_ack(user_id=many_users[0].pk, seqs=[1])
    few = queries_for(staff, change_page(to_few))

    with django_assert_max_num_queries(few):
        assert staff.get(change_page(to_many)).status_code == 200


def test_the_offline_queue_filters_expired_entries(staff, alice, bob):
    send_message(alice, bob, "fresh", client_msg_id="fresh")
    send_message(alice, bob, "stale", client_msg_id="stale")
    PendingItem.objects.filter(item__message__content="stale").update(
        expires_at=timezone.now() - dt.timedelta(minutes=1)
    )

    def seqs(expired: str) -> set[int]:
        response = staff.get(changelist("messaging_pendingitem"), {"expired": expired})
        return {item.seq for item in response.context["cl"].result_list}

    assert seqs("yes") == {2}
    assert seqs("no") == {1}


def test_connections_filter_by_whether_they_are_alive(staff, alice, bob, settings):
    settings.IMS_HEARTBEAT_SECONDS = 30
    now = timezone.now()
    Connection.objects.create(channel_name="fresh", user=alice, last_seen_at=now)
    Connection.objects.create(channel_name="silent", user=bob, last_seen_at=now - dt.timedelta(minutes=5))

    def names(alive: str) -> set[str]:
        response = staff.get(changelist("messaging_connection"), {"alive": alive})
        return {conn.channel_name for conn in response.context["cl"].result_list}

    assert names("yes") == {"fresh"}
    assert names("no") == {"silent"}
