"""POST /api/messages/ and POST /api/messages/read/."""

from __future__ import annotations

import uuid

import pytest
from asgiref.sync import async_to_sync

from messaging import frames
from messaging.delivery import user_group
from messaging.models import ItemStatus, Message, PendingItem, StreamItem
from tests.factories import GroupFactory, UserFactory
from tests.messaging.rest_client import (
    api_as,
    fresh_channel_layer,
    row_counts,
    send,
    use_fast_password_hashing,
)

SEND_URL = "/api/messages/"
READ_URL = "/api/messages/read/"

pytestmark = pytest.mark.django_db


def text_to(user, content="Lunch at noon?", **extra):
    return {"to": user.pk, "msg_type": "text", "content": content, **extra}


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    use_fast_password_hashing(settings)


# --- sending ---------------------------------------------------------------------------


def test_direct_message_is_stored_for_both_users_and_answered_with_the_senders_seq(alice, bob):
    response = api_as(alice).post(SEND_URL, text_to(bob, client_msg_id="c-1"), format="json")

    assert response.status_code == 201
    message = Message.objects.get()
    own = StreamItem.objects.get(message=message, user=alice)
    assert response.json() == {**frames.message_data(message), "seq": own.seq}
    assert response.json()["receiver_id"] == bob.pk
    assert response.json()["client_msg_id"] == "c-1"
    assert not PendingItem.objects.filter(user=alice).exists()
    assert PendingItem.objects.filter(user=bob, item__message=message).exists()


def test_group_message_reaches_every_member_with_its_mentions(alice, bob, carol):
    group = GroupFactory(members=[alice, bob, carol])
    body = {
        "conversation_id": group.pk,
        "msg_type": "text",
        "content": "@bob @carol standup",
        "mentions": [carol.pk, bob.pk],
    }

    response = api_as(alice).post(SEND_URL, body, format="json")

    assert response.status_code == 201
    data = response.json()
    assert data["conversation_id"] == group.pk
    assert data["receiver_id"] is None
    assert data["mentions"] == [bob.pk, carol.pk]
    assert set(StreamItem.objects.filter(message_id=data["msg_id"]).values_list("user_id", flat=True)) == {
        alice.pk,
        bob.pk,
        carol.pk,
    }


@pytest.mark.parametrize("msg_type", ["image", "file"])
def test_attachment_message_keeps_its_url_name_size_and_mime(alice, bob, msg_type):
    content = {"url": "https://files.example/a.png", "name": "a.png", "size": 2048, "mime": "image/png"}

    response = api_as(alice).post(
        SEND_URL, {"to": bob.pk, "msg_type": msg_type, "content": content}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["msg_type"] == msg_type
    assert response.json()["content"] == content


def test_client_msg_id_is_generated_when_absent(alice, bob):
    first = api_as(alice).post(SEND_URL, text_to(bob), format="json").json()
    second = api_as(alice).post(SEND_URL, text_to(bob), format="json").json()

    assert first["client_msg_id"]
    assert first["client_msg_id"] != second["client_msg_id"]
    assert Message.objects.count() == 2


def test_senders_seq_follows_its_own_stream(alice, bob):
    seqs = [api_as(alice).post(SEND_URL, text_to(bob), format="json").json()["seq"] for _ in range(3)]

    assert seqs == [1, 2, 3]


def test_retry_with_same_client_msg_id_returns_the_same_message(
    alice, bob, django_capture_on_commit_callbacks
):
    client = api_as(alice)
    first = client.post(SEND_URL, text_to(bob, client_msg_id="retry-me"), format="json")
    before = row_counts()

    with django_capture_on_commit_callbacks() as published:
        again = client.post(SEND_URL, text_to(bob, client_msg_id="retry-me"), format="json")

    assert again.status_code == 201
    assert again.json() == first.json()
    assert row_counts() == before
    assert published == []  # nothing delivered twice


def test_retry_returns_the_first_message_even_if_the_body_changed(alice, bob, carol):
    client = api_as(alice)
    first = client.post(SEND_URL, text_to(bob, "first", client_msg_id="x"), format="json").json()

    again = client.post(SEND_URL, text_to(carol, "second", client_msg_id="x"), format="json").json()

    assert again == first
    assert Message.objects.count() == 1


def test_same_client_msg_id_from_another_sender_is_another_message(alice, bob):
    from_alice = api_as(alice).post(SEND_URL, text_to(bob, client_msg_id="same"), format="json").json()
    from_bob = api_as(bob).post(SEND_URL, text_to(alice, client_msg_id="same"), format="json").json()

    assert from_alice["msg_id"] != from_bob["msg_id"]


def test_sent_message_is_published_to_the_recipient_after_commit(
    alice, bob, django_capture_on_commit_callbacks
):
    layer = fresh_channel_layer()
    try:
        channel = async_to_sync(layer.new_channel)()
        async_to_sync(layer.group_add)(user_group(bob.pk), channel)

        with django_capture_on_commit_callbacks(execute=True):
            data = api_as(alice).post(SEND_URL, text_to(bob), format="json").json()

        event = async_to_sync(layer.receive)(channel)
        assert event["frame"]["type"] == "message"
        assert event["frame"]["data"]["msg_id"] == data["msg_id"]
    finally:
        async_to_sync(layer.flush)()
        fresh_channel_layer()


def test_a_message_to_a_direct_conversation_by_its_id_names_the_receiver(alice, bob):
    # A client that has the conversation from GET /api/conversations/ sends to it by id.
    conversation_id = send(alice, to=bob.pk).conversation_id

    response = api_as(bob).post(
        SEND_URL, {"conversation_id": conversation_id, "msg_type": "text", "content": "hi"}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["receiver_id"] == alice.pk


# --- sending: bad input ------------------------------------------------------------------

ATTACHMENT = {"url": "https://files.example/a.pdf", "name": "a.pdf", "size": 10, "mime": "application/pdf"}


def bad_send_bodies(bob_id: int) -> list[tuple[str, object, str]]:
    """(case, body, the field the 400 names)."""
    text = {"to": bob_id, "msg_type": "text", "content": "hi"}
    return [
        ("no content", {"to": bob_id, "msg_type": "text"}, "content"),
        ("null content", {**text, "content": None}, "content"),
        ("no msg_type", {"to": bob_id, "content": "hi"}, "msg_type"),
        ("unknown msg_type", {**text, "msg_type": "video"}, "msg_type"),
        ("text content is an object", {**text, "content": {"a": 1}}, "content"),
        ("blank text", {**text, "content": "   "}, "content"),
        ("image content is a string", {**text, "msg_type": "image", "content": "a.png"}, "content"),
        (
            "attachment without size",
            {**text, "msg_type": "file", "content": {k: v for k, v in ATTACHMENT.items() if k != "size"}},
            "content",
        ),
        (
            "attachment size as text",
            {**text, "msg_type": "file", "content": {**ATTACHMENT, "size": "10"}},
            "content",
        ),
        ("negative size", {**text, "msg_type": "file", "content": {**ATTACHMENT, "size": -1}}, "content"),
        (
            "javascript url",
            {**text, "msg_type": "file", "content": {**ATTACHMENT, "url": "javascript:alert(1)"}},
            "content",
        ),
        ("both to and conversation_id", {**text, "conversation_id": 1}, "to"),
        ("neither to nor conversation_id", {"msg_type": "text", "content": "hi"}, "to"),
        ("to is not a number", {**text, "to": "bob"}, "to"),
        ("to is zero", {**text, "to": 0}, "to"),
        (
            "conversation_id is a list",
            {"conversation_id": [1], "msg_type": "text", "content": "hi"},
            "conversation_id",
        ),
        ("mentions is not a list", {**text, "mentions": 5}, "mentions"),
        ("mentions hold a name", {**text, "mentions": ["carol"]}, "mentions"),
        ("blank client_msg_id", {**text, "client_msg_id": ""}, "client_msg_id"),
        ("client_msg_id too long", {**text, "client_msg_id": "x" * 65}, "client_msg_id"),
        ("client_msg_id is an object", {**text, "client_msg_id": {"id": 1}}, "client_msg_id"),
    ]


def test_every_malformed_send_is_a_400_naming_the_field_and_stores_nothing(alice, bob):
    client = api_as(alice)
    before = row_counts()

    for case, body, field in bad_send_bodies(bob.pk):
        response = client.post(SEND_URL, body, format="json")
        assert response.status_code == 400, case
        assert field in response.json(), (case, response.json())
        assert isinstance(response.json()[field], list | dict), case
        assert response.json()["code"] == "bad_request", case

    assert row_counts() == before


def test_sends_over_the_per_user_rate_limit_get_429_rate_limited_and_store_nothing(alice, bob, settings):
    settings.IMS_REST_SENDS_PER_MINUTE = 3
    client = api_as(alice)
    for n in range(3):
        assert client.post(SEND_URL, text_to(bob, client_msg_id=f"r-{n}"), format="json").status_code == 201
    before = row_counts()

    response = client.post(SEND_URL, text_to(bob, client_msg_id="r-over"), format="json")

    assert response.status_code == 429
    assert response.json()["code"] == "rate_limited"
    assert row_counts() == before
    assert api_as(bob).post(SEND_URL, text_to(alice), format="json").status_code == 201  # per user


def test_text_over_the_length_limit_is_refused(alice, bob, settings):
    settings.IMS_MAX_TEXT_LENGTH = 10
    before = row_counts()

    response = api_as(alice).post(SEND_URL, text_to(bob, "x" * 11), format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"
    assert "10 characters" in response.json()["content"][0]
    assert row_counts() == before


def test_domain_errors_carry_the_protocol_code_and_detail(alice):
    response = api_as(alice).post(SEND_URL, text_to(alice), format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "bad_request"
    assert body["to"] == [body["detail"]]


@pytest.mark.parametrize(
    ("case", "raw"),
    [("invalid json", "{not json"), ("a json list", '[{"to": 2}]'), ("a json string", '"hi"')],
)
def test_a_body_that_is_not_a_json_object_is_a_400(alice, case, raw):
    before = row_counts()

    response = api_as(alice).post(SEND_URL, raw, content_type="application/json")

    assert response.status_code == 400, case
    assert response.json()["code"] == "bad_request", case
    assert row_counts() == before


def test_mentioning_someone_outside_the_conversation_is_refused(alice, bob, carol):
    before = row_counts()

    response = api_as(alice).post(SEND_URL, text_to(bob, mentions=[carol.pk]), format="json")

    assert response.status_code == 400
    assert str(carol.pk) in response.json()["mentions"][0]
    assert row_counts() == before  # not even the direct conversation was opened


def test_sending_to_a_group_the_sender_is_not_in_is_forbidden(alice, bob, carol):
    group = GroupFactory(members=[bob, carol])
    before = row_counts()

    response = api_as(alice).post(
        SEND_URL, {"conversation_id": group.pk, "msg_type": "text", "content": "let me in"}, format="json"
    )

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert row_counts() == before


def test_sending_to_an_unknown_conversation_is_not_found(alice):
    before = row_counts()

    response = api_as(alice).post(
        SEND_URL, {"conversation_id": 999_999, "msg_type": "text", "content": "anyone?"}, format="json"
    )

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert row_counts() == before


def test_sending_to_an_unknown_user_is_not_found_and_opens_no_conversation(alice):
    before = row_counts()

    response = api_as(alice).post(
        SEND_URL, {"to": 999_999, "msg_type": "text", "content": "hi"}, format="json"
    )

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert "to" in response.json()
    assert row_counts() == before


def test_sending_to_an_inactive_user_is_not_found(alice):
    gone = UserFactory(username="gone", is_active=False)

    response = api_as(alice).post(SEND_URL, text_to(gone), format="json")

    assert response.status_code == 404
    assert not Message.objects.exists()


# --- read --------------------------------------------------------------------------------


def test_reading_messages_marks_them_read_and_stops_them_pending(alice, bob):
    first, second = send(alice, "one", to=bob.pk), send(alice, "two", to=bob.pk)

    response = api_as(bob).post(READ_URL, {"msg_ids": [first.msg_id]}, format="json")

    assert response.status_code == 200
    assert response.json() == {"read": 1}
    item = StreamItem.objects.get(user=bob, message=first)
    assert item.status == ItemStatus.READ
    assert item.read_at is not None
    assert not PendingItem.objects.filter(item=item).exists()
    assert StreamItem.objects.get(user=bob, message=second).read_at is None


def test_reading_tells_the_sender_after_commit(alice, bob, django_capture_on_commit_callbacks):
    message = send(alice, to=bob.pk)

    with django_capture_on_commit_callbacks() as published:
        api_as(bob).post(READ_URL, {"msg_ids": [message.msg_id]}, format="json")

    assert len(published) == 1


def test_reading_twice_counts_once(alice, bob):
    message = send(alice, to=bob.pk)
    client = api_as(bob)

    client.post(READ_URL, {"msg_ids": [message.msg_id]}, format="json")
    again = client.post(READ_URL, {"msg_ids": [message.msg_id]}, format="json")

    assert again.status_code == 200
    assert again.json() == {"read": 0}


def test_reading_messages_the_caller_never_received_reads_nothing(alice, bob, carol):
    message = send(alice, to=bob.pk)

    by_sender = api_as(alice).post(READ_URL, {"msg_ids": [message.msg_id]}, format="json")
    by_stranger = api_as(carol).post(
        READ_URL, {"msg_ids": [message.msg_id, str(uuid.uuid4())]}, format="json"
    )

    assert by_sender.json() == {"read": 0}
    assert by_stranger.json() == {"read": 0}
    assert StreamItem.objects.get(user=bob, message=message).read_at is None


@pytest.mark.parametrize(
    ("case", "body"),
    [
        ("no msg_ids", {}),
        ("empty list", {"msg_ids": []}),
        ("not a list", {"msg_ids": "0190c5c4-0000-7000-8000-000000000000"}),
        ("not a uuid", {"msg_ids": ["42"]}),
        ("blank id", {"msg_ids": [""]}),
        ("too many", {"msg_ids": [str(uuid.uuid4()) for _ in range(1001)]}),
    ],
)
def test_bad_msg_ids_are_a_400_and_read_nothing(alice, bob, case, body):
    message = send(alice, to=bob.pk)
    if body.get("msg_ids") and isinstance(body["msg_ids"], list):
        # A good id beside the bad ones is not read either: the request is refused whole.
        body = {"msg_ids": [message.msg_id, *body["msg_ids"]]}
    before = row_counts()

    response = api_as(bob).post(READ_URL, body, format="json")

    assert response.status_code == 400, case
    assert "msg_ids" in response.json(), case
    assert row_counts() == before
