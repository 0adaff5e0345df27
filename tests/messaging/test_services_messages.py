"""message_send: what is stored, who gets it, and that bad input stores nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import override_settings

from messaging.errors import BadRequest, Forbidden, IMSError, NotFound
from messaging.models import (
    Conversation,
    ConversationMember,
    Message,
    PendingItem,
    StreamCounter,
    StreamItem,
    User,
)
from messaging.services.conversations import conversation_create_group
from messaging.services.messages import message_send
from tests.factories import UserFactory

ATTACHMENT = {"url": "https://files.example.com/a.png", "name": "a.png", "size": 2048, "mime": "image/png"}


@pytest.fixture
def group(alice, bob, carol) -> Conversation:
    return conversation_create_group(creator_id=alice.pk, title="Team", member_ids=[bob.pk, carol.pk])


def stored() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (Message, StreamItem, PendingItem, StreamCounter, Conversation, ConversationMember)
    }


# --- what a send stores ----------------------------------------------------------------


@pytest.mark.django_db
def test_a_direct_message_opens_the_conversation_and_reaches_both_streams(alice, bob):
    result = message_send(sender_id=alice.pk, to=bob.pk, content="Hello Bob", client_msg_id="c-1")

    message = result.message
    assert result.created
    assert (message.sender_id, message.receiver_id, message.content) == (alice.pk, bob.pk, "Hello Bob")
    assert (message.msg_type, message.client_msg_id, message.mentions) == ("text", "c-1", [])
    conversation = message.conversation
    assert conversation.kind == Conversation.Kind.DIRECT
    assert set(conversation.members.all()) == {alice, bob}
    items = {item.user_id: item for item in StreamItem.objects.filter(message=message)}
    assert set(items) == {alice.pk, bob.pk}
    assert items[bob.pk].conversation_id == conversation.pk
    assert items[bob.pk].kind == StreamItem.Kind.MESSAGE
    assert result.sender_seq == items[alice.pk].seq


@pytest.mark.django_db
def test_both_directions_of_a_pair_share_one_direct_conversation(alice, bob):
    there = message_send(sender_id=alice.pk, to=bob.pk, content="hi").message
    back = message_send(sender_id=bob.pk, to=alice.pk, content="hello").message
    again = message_send(sender_id=alice.pk, conversation_id=there.conversation_id, content="ok").message

    assert there.conversation_id == back.conversation_id == again.conversation_id
    assert Conversation.objects.count() == 1


@pytest.mark.django_db
def test_a_direct_message_sent_by_conversation_id_names_its_receiver(alice, bob, carol):
    conversation_id = message_send(sender_id=alice.pk, to=bob.pk, content="hi").message.conversation_id
    pair_group = conversation_create_group(creator_id=alice.pk, title="Two of us", member_ids=[carol.pk])

    reply = message_send(sender_id=bob.pk, conversation_id=conversation_id, content="hello").message
    in_group = message_send(sender_id=alice.pk, conversation_id=pair_group.pk, content="hey").message

    assert reply.receiver_id == alice.pk
    assert in_group.receiver_id is None  # PROTOCOL.md: null in a group, however small


@pytest.mark.django_db
def test_a_group_message_reaches_every_member_and_only_the_others_wait_for_it(alice, bob, carol, group):
    result = message_send(sender_id=alice.pk, conversation_id=group.pk, content="Morning all")

    assert result.message.receiver_id is None
    assert set(StreamItem.objects.filter(message=result.message).values_list("user_id", flat=True)) == {
        alice.pk,
        bob.pk,
        carol.pk,
    }
    assert set(PendingItem.objects.values_list("user_id", flat=True)) == {bob.pk, carol.pk}


@pytest.mark.django_db
def test_mentions_are_stored_sorted_and_once(alice, bob, carol, group):
    mentions = [carol.pk, bob.pk, carol.pk]
    message = message_send(
        sender_id=alice.pk, conversation_id=group.pk, content="@carol @bob", mentions=mentions
    ).message

    assert message.mentions == sorted([bob.pk, carol.pk])


@pytest.mark.django_db
@pytest.mark.parametrize("msg_type", ["image", "file"])
def test_an_attachment_is_stored_with_exactly_its_four_fields(alice, bob, msg_type):
    content = {**ATTACHMENT, "thumbnail": "https://x.example/t.png"}

    message = message_send(sender_id=alice.pk, to=bob.pk, msg_type=msg_type, content=content).message

    message.refresh_from_db()
    assert message.msg_type == msg_type
    assert message.content == ATTACHMENT


@pytest.mark.django_db
def test_an_attachment_may_point_to_a_path_on_this_site(alice, bob):
    content = {**ATTACHMENT, "url": "/media/uploads/a.png", "size": 0}

    message = message_send(sender_id=alice.pk, to=bob.pk, msg_type="image", content=content).message

    assert message.content["url"] == "/media/uploads/a.png"


@pytest.mark.django_db
def test_without_a_client_msg_id_each_send_is_a_new_message(alice, bob):
    first = message_send(sender_id=alice.pk, to=bob.pk, content="hi")
    second = message_send(sender_id=alice.pk, to=bob.pk, content="hi")

    assert first.message.pk != second.message.pk
    assert first.message.client_msg_id != second.message.client_msg_id


@pytest.mark.django_db
def test_message_ids_follow_the_order_of_sending(alice, bob):
    sent = [message_send(sender_id=alice.pk, to=bob.pk, content=str(n)).message for n in range(20)]

    assert [m.pk for m in sent] == sorted(m.pk for m in sent)


# --- retries ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_retry_answers_the_first_message_and_delivers_nothing_again(
    alice, bob, published, django_capture_on_commit_callbacks
):
    first = message_send(sender_id=alice.pk, to=bob.pk, content="hi", client_msg_id="c-1")
    before = stored()

    with django_capture_on_commit_callbacks(execute=True):
        retry = message_send(sender_id=alice.pk, to=bob.pk, content="hi", client_msg_id="c-1")

    assert (retry.message.pk, retry.sender_seq, retry.created) == (first.message.pk, first.sender_seq, False)
    assert stored() == before
    assert published == []


@pytest.mark.django_db
def test_client_msg_ids_are_per_sender(alice, bob):
    from_alice = message_send(sender_id=alice.pk, to=bob.pk, content="hi", client_msg_id="c-1")
    from_bob = message_send(sender_id=bob.pk, to=alice.pk, content="hi", client_msg_id="c-1")

    assert from_bob.created
    assert from_alice.message.pk != from_bob.message.pk


# --- bad input stores nothing ----------------------------------------------------------


@dataclass(frozen=True)
class Cast:
    alice: User
    bob: User
    carol: User
    erin: User  # active, in no conversation
    dave: User  # inactive
    group: Conversation  # alice, bob, carol


def attachment(**changes: Any) -> dict[str, Any]:
    return {key: value for key, value in {**ATTACHMENT, **changes}.items() if value is not None}


# Each: who sends what (to alice's name unless said), and the error it must raise.
BAD_SENDS: dict[str, Callable[[Cast], tuple[type[IMSError], dict[str, Any]]]] = {
    "unknown msg_type": lambda c: (BadRequest, {"to": c.bob.pk, "msg_type": "video", "content": "hi"}),
    "msg_type not a string": lambda c: (BadRequest, {"to": c.bob.pk, "msg_type": ["text"], "content": "hi"}),
    "empty text": lambda c: (BadRequest, {"to": c.bob.pk, "content": ""}),
    "blank text": lambda c: (BadRequest, {"to": c.bob.pk, "content": " \n\t "}),
    "text not a string": lambda c: (BadRequest, {"to": c.bob.pk, "content": {"text": "hi"}}),
    "text too long": lambda c: (BadRequest, {"to": c.bob.pk, "content": "x" * 10_001}),
    "attachment not an object": lambda c: (
        BadRequest,
        {"to": c.bob.pk, "msg_type": "image", "content": "a.png"},
    ),
    "attachment without url": lambda c: (
        BadRequest,
        {"to": c.bob.pk, "msg_type": "file", "content": attachment(url=None)},
    ),
    "attachment size a string": lambda c: (
        BadRequest,
        {"to": c.bob.pk, "msg_type": "file", "content": attachment(size="2048")},
    ),
    "attachment size a bool": lambda c: (
        BadRequest,
        {"to": c.bob.pk, "msg_type": "file", "content": attachment(size=True)},
    ),
    "attachment size negative": lambda c: (
        BadRequest,
        {"to": c.bob.pk, "msg_type": "file", "content": attachment(size=-1)},
    ),
    "attachment empty name": lambda c: (
        BadRequest,
        {"to": c.bob.pk, "msg_type": "file", "content": attachment(name="")},
    ),
    "attachment javascript url": lambda c: (
        BadRequest,
        {"to": c.bob.pk, "msg_type": "image", "content": attachment(url="javascript:alert(1)")},
    ),
    "attachment protocol-relative url": lambda c: (
        BadRequest,
        {"to": c.bob.pk, "msg_type": "image", "content": attachment(url="//evil.example/a.png")},
    ),
    "attachment backslash url": lambda c: (
        BadRequest,
        {"to": c.bob.pk, "msg_type": "image", "content": attachment(url="/\\evil.example/a.png")},
    ),
    "mention of a non-member in a new direct conversation": lambda c: (
        BadRequest,
        {"to": c.erin.pk, "content": "hi", "mentions": [c.carol.pk]},
    ),
    "mention of a non-member in a group": lambda c: (
        BadRequest,
        {"conversation_id": c.group.pk, "content": "hi", "mentions": [c.bob.pk, c.erin.pk]},
    ),
    "mentions not ids": lambda c: (BadRequest, {"to": c.bob.pk, "content": "hi", "mentions": ["bob"]}),
    "mentions not a list": lambda c: (BadRequest, {"to": c.bob.pk, "content": "hi", "mentions": c.bob.pk}),
    "to self": lambda c: (BadRequest, {"to": c.alice.pk, "content": "hi"}),
    "unknown user": lambda c: (NotFound, {"to": 987_654, "content": "hi"}),
    "inactive user": lambda c: (NotFound, {"to": c.dave.pk, "content": "hi"}),
    "both to and conversation": lambda c: (
        BadRequest,
        {"to": c.bob.pk, "conversation_id": c.group.pk, "content": "hi"},
    ),
    "neither to nor conversation": lambda c: (BadRequest, {"content": "hi"}),
    "unknown conversation": lambda c: (NotFound, {"conversation_id": 987_654, "content": "hi"}),
    "client_msg_id too long": lambda c: (
        BadRequest,
        {"to": c.bob.pk, "content": "hi", "client_msg_id": "c" * 65},
    ),
    "client_msg_id blank": lambda c: (BadRequest, {"to": c.bob.pk, "content": "hi", "client_msg_id": "  "}),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", list(BAD_SENDS))
def test_a_bad_send_raises_and_stores_nothing(
    alice, bob, carol, group, case, published, django_capture_on_commit_callbacks
):
    cast = Cast(
        alice=alice,
        bob=bob,
        carol=carol,
        erin=UserFactory(username="erin"),
        dave=UserFactory(username="dave", is_active=False),
        group=group,
    )
    message_send(sender_id=alice.pk, to=bob.pk, content="earlier")  # the pair already talks
    error_type, arguments = BAD_SENDS[case](cast)
    before = stored()

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(error_type) as error:
        message_send(sender_id=alice.pk, **arguments)

    assert stored() == before
    assert published == []
    assert error.value.detail
    assert error.value.field


@pytest.mark.django_db
def test_a_non_member_may_not_send_to_a_group(alice, bob, carol):
    closed = conversation_create_group(creator_id=alice.pk, title="Private", member_ids=[bob.pk])
    before = stored()

    with pytest.raises(Forbidden) as error:
        message_send(sender_id=carol.pk, conversation_id=closed.pk, content="let me in")

    assert error.value.field == "conversation_id"
    assert stored() == before


@pytest.mark.django_db
def test_a_non_member_may_not_write_into_someone_elses_direct_conversation(alice, bob, carol):
    theirs = message_send(sender_id=alice.pk, to=bob.pk, content="private").message.conversation_id
    before = stored()

    with pytest.raises(Forbidden):
        message_send(sender_id=carol.pk, conversation_id=theirs, content="hi")

    assert stored() == before


@pytest.mark.django_db
@override_settings(IMS_MAX_TEXT_LENGTH=5)
def test_the_text_limit_comes_from_the_setting(alice, bob):
    assert message_send(sender_id=alice.pk, to=bob.pk, content="12345").created

    with pytest.raises(BadRequest, match="5 characters"):
        message_send(sender_id=alice.pk, to=bob.pk, content="123456")
