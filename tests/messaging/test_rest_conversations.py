"""GET and POST /api/conversations/, GET /api/conversations/{id}/messages/."""

from __future__ import annotations

import base64

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from messaging import frames
from messaging.models import Conversation, StreamItem
from messaging.services.conversations import conversation_create_group
from messaging.services.receipts import messages_mark_read
from messaging.services.stream import items_ack
from messaging.views.messages import HistoryPagination
from tests.factories import GroupFactory, UserFactory
from tests.messaging.rest_client import api_as, row_counts, send, use_fast_password_hashing

LIST_URL = "/api/conversations/"
READ_URL = "/api/messages/read/"

pytestmark = pytest.mark.django_db


def history_url(conversation_id: int) -> str:
    return f"/api/conversations/{conversation_id}/messages/"


def by_id(conversations: list[dict]) -> dict[int, dict]:
    return {c["id"]: c for c in conversations}


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    use_fast_password_hashing(settings)


# --- list --------------------------------------------------------------------------------


def test_conversation_list_shows_members_unread_count_and_last_message(alice, bob, carol):
    send(alice, "one", to=bob.pk)
    last_direct = send(alice, "two", to=bob.pk)
    group = GroupFactory(title="Ops", members=[alice, bob, carol])
    last_group = send(carol, "deploy done", conversation_id=group.pk)

    response = api_as(bob).get(LIST_URL)

    assert response.status_code == 200
    listed = by_id(response.json())
    direct = listed[last_direct.conversation_id]
    assert direct["kind"] == "direct"
    assert direct["title"] == ""
    assert direct["members"] == [
        {"id": alice.pk, "username": "alice", "display_name": "Alice"},
        {"id": bob.pk, "username": "bob", "display_name": "Bob"},
    ]
    assert direct["unread_count"] == 2
    assert direct["last_message"] == frames.message_data(last_direct)
    assert direct["created_at"].endswith("Z")
    ops = listed[group.pk]
    assert ops["kind"] == "group"
    assert ops["title"] == "Ops"
    assert [m["id"] for m in ops["members"]] == sorted([alice.pk, bob.pk, carol.pk])
    assert ops["unread_count"] == 1
    assert ops["last_message"] == frames.message_data(last_group)


def test_conversation_list_puts_the_latest_activity_first(alice, bob, carol):
    quiet = GroupFactory(title="Quiet", members=[alice, bob])
    direct = send(alice, "first", to=bob.pk).conversation_id
    busy = GroupFactory(title="Busy", members=[alice, bob, carol])
    send(carol, "news", conversation_id=busy.pk)
    send(bob, "reply", to=alice.pk)  # the direct conversation is now the latest
    fresh = GroupFactory(title="Fresh", members=[alice, bob])  # created last, no message yet

    order = [c["id"] for c in api_as(alice).get(LIST_URL).json()]

    assert order == [fresh.pk, direct, busy.pk, quiet.pk]


def test_a_conversation_without_messages_has_no_last_message_and_nothing_unread(alice, bob):
    group = GroupFactory(members=[alice, bob])

    (listed,) = api_as(alice).get(LIST_URL).json()

    assert listed["id"] == group.pk
    assert listed["last_message"] is None
    assert listed["unread_count"] == 0


def test_group_changes_are_not_counted_as_unread_messages(alice, bob, carol):
    """Creating, renaming and joining a group put `conversation` items in members' streams;
    the unread count counts messages only."""
    client = api_as(bob)
    created = client.post(LIST_URL, {"title": "Ops", "member_ids": [alice.pk]}, format="json")
    group_id = created.json()["id"]
    client.patch(f"/api/conversations/{group_id}/", {"title": "Ops team"}, format="json")
    client.post(f"/api/conversations/{group_id}/members/", {"user_ids": [carol.pk]}, format="json")
    assert StreamItem.objects.filter(kind=StreamItem.Kind.CONVERSATION, user=alice).count() == 3

    for member in (alice, bob, carol):
        (listed,) = api_as(member).get(LIST_URL).json()
        assert listed["title"] == "Ops team"
        assert listed["unread_count"] == 0, member.username

    send(bob, "welcome", conversation_id=group_id)
    assert api_as(carol).get(LIST_URL).json()[0]["unread_count"] == 1


def test_own_messages_are_never_unread(alice, bob):
    send(alice, to=bob.pk)

    (listed,) = api_as(alice).get(LIST_URL).json()

    assert listed["unread_count"] == 0


def test_conversation_list_shows_only_the_callers_conversations(alice, bob, carol):
    send(bob, to=carol.pk)
    GroupFactory(members=[bob, carol])

    assert api_as(alice).get(LIST_URL).json() == []


def test_unread_count_goes_down_after_reading(alice, bob):
    first = send(alice, "one", to=bob.pk)
    send(alice, "two", to=bob.pk)
    client = api_as(bob)
    assert client.get(LIST_URL).json()[0]["unread_count"] == 2

    client.post(READ_URL, {"msg_ids": [first.msg_id]}, format="json")

    assert client.get(LIST_URL).json()[0]["unread_count"] == 1


def test_conversation_list_costs_the_same_queries_for_one_conversation_or_many(alice, bob):
    client = api_as(alice)
    send(bob, to=alice.pk)
    with CaptureQueriesContext(connection) as one:
        client.get(LIST_URL)

    for n in range(8):
        peer = UserFactory(username=f"peer{n}")
        send(peer, "a", to=alice.pk)
        send(alice, "b", to=peer.pk)
        GroupFactory(members=[alice, bob, peer])
    with CaptureQueriesContext(connection) as many:
        response = client.get(LIST_URL)

    assert len(response.json()) == 17
    assert len(many) == len(one)


# --- create a group ----------------------------------------------------------------------


def test_creating_a_group_returns_it_with_the_creator_among_its_members(alice, bob, carol):
    response = api_as(alice).post(
        LIST_URL, {"title": "  Launch  ", "member_ids": [bob.pk, carol.pk]}, format="json"
    )

    assert response.status_code == 201
    data = response.json()
    group = Conversation.objects.get(pk=data["id"])
    assert group.kind == "group"
    assert group.created_by == alice
    assert data["kind"] == "group"
    assert data["title"] == "Launch"
    assert [m["id"] for m in data["members"]] == sorted([alice.pk, bob.pk, carol.pk])
    assert data["unread_count"] == 0
    assert data["last_message"] is None
    assert data["id"] in by_id(api_as(carol).get(LIST_URL).json())


def test_a_group_member_listed_twice_or_the_creator_listed_is_a_member_once(alice, bob):
    response = api_as(alice).post(
        LIST_URL, {"title": "Pair", "member_ids": [bob.pk, bob.pk, alice.pk]}, format="json"
    )

    assert response.status_code == 201
    assert [m["id"] for m in response.json()["members"]] == sorted([alice.pk, bob.pk])


@pytest.mark.parametrize(
    ("case", "body", "field"),
    [
        ("no title", {"member_ids": []}, "title"),
        ("blank title", {"title": "   ", "member_ids": []}, "title"),
        ("title too long", {"title": "x" * 201, "member_ids": []}, "title"),
        ("title is an object", {"title": {"en": "x"}, "member_ids": []}, "title"),
        ("no member_ids", {"title": "Team"}, "member_ids"),
        ("member_ids is a number", {"title": "Team", "member_ids": 3}, "member_ids"),
        ("member id is a name", {"title": "Team", "member_ids": ["bob"]}, "member_ids"),
        ("member id is negative", {"title": "Team", "member_ids": [-1]}, "member_ids"),
    ],
)
def test_a_malformed_group_is_a_400_and_creates_nothing(alice, case, body, field):
    before = row_counts()

    response = api_as(alice).post(LIST_URL, body, format="json")

    assert response.status_code == 400, case
    assert field in response.json(), (case, response.json())
    assert row_counts() == before


def test_a_group_with_unknown_or_inactive_members_is_not_found_and_creates_nothing(alice, bob):
    gone = UserFactory(username="gone", is_active=False)
    before = row_counts()

    response = api_as(alice).post(
        LIST_URL, {"title": "Team", "member_ids": [bob.pk, gone.pk, 999_999]}, format="json"
    )

    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "not_found"
    assert str(gone.pk) in body["member_ids"][0]
    assert "999999" in body["member_ids"][0]
    assert row_counts() == before


def test_a_group_over_the_member_limit_is_refused(alice, bob, carol, settings):
    settings.IMS_MAX_GROUP_MEMBERS = 2
    before = row_counts()

    response = api_as(alice).post(LIST_URL, {"title": "Big", "member_ids": [bob.pk, carol.pk]}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"
    assert "member_ids" in response.json()
    assert row_counts() == before


# --- history -----------------------------------------------------------------------------


def walk(client, url: str) -> tuple[list[str], int]:
    """Every msg_id on every page, following `next`; and the number of pages."""
    seen, pages = [], 0
    while url:
        response = client.get(url)
        assert response.status_code == 200
        pages += 1
        seen += [m["msg_id"] for m in response.json()["results"]]
        url = response.json()["next"]
    return seen, pages


def test_history_pages_walk_every_message_newest_first_without_duplicates(alice, bob, carol):
    group = GroupFactory(members=[alice, bob, carol])
    sent = [send([alice, bob, carol][n % 3], f"m{n}", conversation_id=group.pk).msg_id for n in range(23)]

    seen, pages = walk(api_as(bob), f"{history_url(group.pk)}?page_size=5")

    assert pages == 5
    assert seen == list(reversed(sent))


def test_history_page_is_in_the_message_shape(alice, bob):
    message = send(alice, to=bob.pk)

    body = api_as(bob).get(history_url(message.conversation_id)).json()

    assert body["results"] == [frames.message_data(message)]
    assert body["next"] is None
    assert body["previous"] is None


def test_history_is_stable_while_new_messages_arrive(alice, bob):
    conversation_id = send(alice, "m0", to=bob.pk).conversation_id
    sent = [send(alice, f"m{n}", to=bob.pk).msg_id for n in range(1, 6)]
    client = api_as(bob)
    first = client.get(f"{history_url(conversation_id)}?page_size=3").json()

    send(bob, "a new one", to=alice.pk)
    rest, _ = walk(client, first["next"])

    older = [m["msg_id"] for m in first["results"]] + rest
    assert len(older) == len(set(older)) == 6
    assert older[:5] == list(reversed(sent))


def test_history_page_size_is_capped(alice, bob, monkeypatch):
    monkeypatch.setattr(HistoryPagination, "max_page_size", 3)
    conversation_id = None
    for n in range(5):
        conversation_id = send(alice, f"m{n}", to=bob.pk).conversation_id

    body = api_as(bob).get(f"{history_url(conversation_id)}?page_size=1000").json()

    assert len(body["results"]) == 3
    assert body["next"]


def test_history_of_an_empty_conversation_is_an_empty_page(alice, bob):
    group = GroupFactory(members=[alice, bob])

    body = api_as(alice).get(history_url(group.pk)).json()

    assert body == {"next": None, "previous": None, "results": []}


def test_history_of_a_conversation_the_caller_is_not_in_is_forbidden(alice, bob, carol):
    conversation_id = send(bob, "secret", to=carol.pk).conversation_id

    response = api_as(alice).get(history_url(conversation_id))

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert "secret" not in response.content.decode()


def test_history_of_an_unknown_conversation_is_not_found(alice):
    response = api_as(alice).get(history_url(999_999))

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64!",
        base64.b64encode(b"p=not-a-uuid").decode(),
        base64.b64encode(b"o=-1&p=x").decode(),
    ],
)
def test_history_with_a_forged_cursor_is_not_found(alice, bob, cursor):
    conversation_id = send(alice, to=bob.pk).conversation_id

    response = api_as(bob).get(history_url(conversation_id), {"cursor": cursor})

    assert response.status_code == 404


def test_history_tells_the_sender_how_far_each_own_message_got(alice, bob, carol):
    group = conversation_create_group(creator_id=alice.pk, title="Trio", member_ids=[bob.pk, carol.pk])
    mine = send(alice, "status?", conversation_id=group.pk)
    theirs = send(bob, "fine", conversation_id=group.pk)
    items_ack(user_id=bob.pk, seqs=[StreamItem.objects.get(user=bob, message=mine).seq])
    messages_mark_read(user_id=carol.pk, msg_ids=[mine.msg_id])

    results = api_as(alice).get(f"/api/conversations/{group.pk}/messages/").json()["results"]

    by_id = {result["msg_id"]: result for result in results}
    assert by_id[mine.msg_id]["delivery"] == {"recipients": 2, "delivered": 2, "read": 1}
    assert "delivery" not in by_id[theirs.msg_id]  # only the sender learns how far it got
