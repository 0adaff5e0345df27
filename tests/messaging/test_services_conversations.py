"""Conversations: one direct conversation per pair, groups, and who may write where."""

from __future__ import annotations

import pytest
from django.test import override_settings

from messaging.errors import BadRequest, Forbidden, NotFound
from messaging.models import Conversation, ConversationMember
from messaging.services.conversations import (
    conversation_create_group,
    conversation_get_or_create_direct,
    conversation_member_ids,
    direct_key,
)
from tests.factories import UserFactory


def test_the_direct_key_is_the_same_from_both_sides():
    assert direct_key(7, 3) == direct_key(3, 7) == "3:7"


@pytest.mark.django_db
def test_a_pair_gets_one_direct_conversation_whoever_starts(alice, bob):
    first = conversation_get_or_create_direct(user_id=alice.pk, peer_id=bob.pk)
    second = conversation_get_or_create_direct(user_id=bob.pk, peer_id=alice.pk)

    assert first.pk == second.pk
    assert first.kind == Conversation.Kind.DIRECT
    assert first.created_by_id == alice.pk
    assert set(first.members.all()) == {alice, bob}


@pytest.mark.django_db
def test_a_direct_conversation_with_oneself_is_a_bad_request(alice):
    with pytest.raises(BadRequest) as error:
        conversation_get_or_create_direct(user_id=alice.pk, peer_id=alice.pk)

    assert error.value.field == "to"
    assert not Conversation.objects.exists()


@pytest.mark.django_db
def test_a_direct_conversation_needs_an_existing_active_peer(alice):
    gone = UserFactory(username="gone", is_active=False)

    for peer_id in (gone.pk, 987_654):
        with pytest.raises(NotFound):
            conversation_get_or_create_direct(user_id=alice.pk, peer_id=peer_id)

    assert not Conversation.objects.exists()


@pytest.mark.django_db
def test_members_read_the_member_list(alice, bob, carol):
    group = conversation_create_group(creator_id=alice.pk, title="T", member_ids=[bob.pk])

    assert sorted(conversation_member_ids(conversation_id=group.pk, user_id=bob.pk)) == sorted(
        [alice.pk, bob.pk]
    )


@pytest.mark.django_db
def test_a_stranger_is_forbidden_and_a_missing_conversation_is_not_found(alice, bob, carol):
    group = conversation_create_group(creator_id=alice.pk, title="T", member_ids=[bob.pk])

    with pytest.raises(Forbidden):
        conversation_member_ids(conversation_id=group.pk, user_id=carol.pk)
    with pytest.raises(NotFound):
        conversation_member_ids(conversation_id=987_654, user_id=carol.pk)


@pytest.mark.django_db
def test_a_conversation_everyone_left_is_still_forbidden_not_missing(alice, bob):
    group = conversation_create_group(creator_id=alice.pk, title="T", member_ids=[bob.pk])
    ConversationMember.objects.filter(conversation=group).delete()

    with pytest.raises(Forbidden):
        conversation_member_ids(conversation_id=group.pk, user_id=alice.pk)


@pytest.mark.django_db
def test_a_group_holds_its_creator_and_each_member_once(alice, bob, carol):
    group = conversation_create_group(
        creator_id=alice.pk, title="  Team  ", member_ids=[bob.pk, carol.pk, bob.pk, alice.pk]
    )

    assert group.kind == Conversation.Kind.GROUP
    assert group.title == "Team"
    assert group.direct_key is None
    assert sorted(group.memberships.values_list("user_id", flat=True)) == sorted([alice.pk, bob.pk, carol.pk])


@pytest.mark.django_db
def test_a_group_needs_a_title(alice, bob):
    with pytest.raises(BadRequest) as error:
        conversation_create_group(creator_id=alice.pk, title="   ", member_ids=[bob.pk])

    assert error.value.field == "title"
    assert not Conversation.objects.exists()


@pytest.mark.django_db
def test_a_group_of_unknown_or_inactive_users_is_not_created(alice, bob):
    gone = UserFactory(username="gone", is_active=False)

    with pytest.raises(NotFound) as error:
        conversation_create_group(creator_id=alice.pk, title="T", member_ids=[bob.pk, gone.pk, 987_654])

    assert str(gone.pk) in error.value.detail
    assert "987654" in error.value.detail
    assert not Conversation.objects.exists()
    assert not ConversationMember.objects.exists()


@pytest.mark.django_db
@override_settings(IMS_MAX_GROUP_MEMBERS=2)
def test_a_group_is_limited_in_size_counting_its_creator(alice, bob, carol):
    assert conversation_create_group(creator_id=alice.pk, title="pair", member_ids=[bob.pk])

    with pytest.raises(BadRequest) as error:
        conversation_create_group(creator_id=alice.pk, title="trio", member_ids=[bob.pk, carol.pk])

    assert error.value.field == "member_ids"
    assert Conversation.objects.count() == 1
