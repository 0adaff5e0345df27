"""Text that cannot be stored (a lone UTF-16 surrogate, U+0000) is refused with bad_request
at every edge and stored nowhere; rows stored before it was refused never break a page."""

from __future__ import annotations

import json

import pytest
from django.conf import settings

from messaging.api import send_message, send_message_to_conversation
from messaging.errors import BadRequest
from messaging.models import Message, StreamItem
from messaging.services.conversations import conversation_create_group
from tests.factories import UserFactory
from tests.messaging.rest_client import api_as, row_counts
from tests.messaging.wsclient import ws_connect, ws_isolation  # noqa: F401  (fixture)

LONE_SURROGATE = "cut emoji \ud83d"
NUL = "a\x00b"
BAD_TEXTS = [pytest.param(LONE_SURROGATE, id="lone surrogate"), pytest.param(NUL, id="U+0000")]


def raw_json(frame: dict) -> str:
    """What JavaScript's JSON.stringify sends: a lone surrogate as a \\ud83d escape."""
    return json.dumps(frame)


@pytest.mark.django_db
@pytest.mark.parametrize("text", BAD_TEXTS)
def test_the_python_api_refuses_unstorable_content_with_bad_request(alice, bob, text):
    before = row_counts()
    with pytest.raises(BadRequest):
        send_message(alice, bob, text)
    with pytest.raises(BadRequest):
        send_message(alice, bob, "fine", client_msg_id=text)
    with pytest.raises(BadRequest):
        send_message(alice, bob, {"url": "/f", "name": text, "size": 1, "mime": "text/plain"}, "file")
    assert row_counts() == before


@pytest.mark.django_db
@pytest.mark.parametrize("text", BAD_TEXTS)
@pytest.mark.parametrize("field", ["content", "client_msg_id"])
def test_rest_refuses_unstorable_text_with_400_and_stores_nothing(alice, bob, text, field):
    body = {"to": bob.pk, "msg_type": "text", "content": "fine", "client_msg_id": "c1", field: text}
    before = row_counts()

    response = api_as(alice).post(
        "/api/messages/", data=raw_json(body).encode(), content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"
    assert row_counts() == before


@pytest.mark.django_db
@pytest.mark.parametrize("text", BAD_TEXTS)
def test_a_group_title_must_be_storable_text(alice, bob, text):
    with pytest.raises(BadRequest):
        conversation_create_group(creator_id=alice.pk, title=text, member_ids=[bob.pk])
    response = api_as(alice).post(
        "/api/conversations/",
        data=raw_json({"title": text, "member_ids": [bob.pk]}).encode(),
        content_type="application/json",
    )
    assert response.status_code == 400


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("ws_isolation")
@pytest.mark.parametrize("text", BAD_TEXTS)
async def test_a_websocket_send_of_unstorable_text_is_refused_and_the_recipient_is_unharmed(alice, bob, text):
    async with ws_connect(alice) as alices, ws_connect(bob) as bobs:
        send = {"type": "send", "client_msg_id": "p1", "to": bob.pk, "msg_type": "text", "content": text}
        await alices.send_text(raw_json(send))
        error = await alices.receive_type("error")
        assert (error["code"], error["ref"]) == ("bad_request", "p1")

        # The same escape in client_msg_id: an error echoing it, and the socket lives on.
        await alices.send_text(raw_json({**send, "client_msg_id": text, "content": "x"}))
        error = await alices.receive_type("error")
        assert error["code"] == "bad_request"
        await alices.send({"type": "ping"})
        assert (await alices.receive_type("pong"))["type"] == "pong"
        await bobs.assert_nothing()
    async with ws_connect(bob) as bobs:
        assert bobs.replay["items"] == []


# PostgreSQL never stored such text (jsonb refuses it); SQLite did, before it was refused.
sqlite_only = pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3",
    reason="only SQLite ever stored lone surrogates; PostgreSQL's jsonb refuses them",
)


@pytest.fixture
def poisoned_message(alice, bob) -> Message:
    """A message with a lone surrogate, stored as SQLite did before such text was refused."""
    message = send_message(alice, bob, "placeholder")
    Message.objects.filter(pk=message.pk).update(content=LONE_SURROGATE)
    return message


@sqlite_only
@pytest.mark.django_db
def test_a_stored_unencodable_row_never_breaks_history_or_the_conversation_list(bob, poisoned_message):
    history = api_as(bob).get(f"/api/conversations/{poisoned_message.conversation_id}/messages/")
    conversations = api_as(bob).get("/api/conversations/")

    assert history.status_code == 200
    assert history.json()["results"][0]["content"] == LONE_SURROGATE
    assert conversations.status_code == 200


@sqlite_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("ws_isolation")
async def test_a_stored_unencodable_row_never_breaks_a_replay(bob, poisoned_message):
    async with ws_connect(bob, empty_replay=False) as bobs:
        [item] = (await bobs.receive_type("offline_messages"))["items"]
        assert item["data"]["content"] == LONE_SURROGATE
        await bobs.send({"type": "ack", "seqs": [item["seq"]]})


@pytest.mark.django_db
def test_a_group_send_to_a_deactivated_member_skips_them(alice, bob, carol):
    group = conversation_create_group(creator_id=alice.pk, title="Trio", member_ids=[bob.pk, carol.pk])
    carol.is_active = False
    carol.save()

    message = send_message_to_conversation(alice, group, "still here?")

    assert set(StreamItem.objects.filter(message=message).values_list("user_id", flat=True)) == {
        alice.pk,
        bob.pk,
    }


@sqlite_only
@pytest.mark.django_db
def test_a_stored_unencodable_row_never_breaks_the_admin(client, poisoned_message):
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(admin)

    listing = client.get("/admin/messaging/message/")
    page = client.get(f"/admin/messaging/message/{poisoned_message.pk}/change/")

    assert listing.status_code == page.status_code == 200
    assert "cut emoji \ufffd" in page.content.decode()
